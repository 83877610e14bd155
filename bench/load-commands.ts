import path from 'node:path';
import type { Options } from './options.js';
import type { Scenario } from './scenarios.js';
import type { Service } from './servers/service.js';
import { autocannonArgs, parseAutocannon, type AutocannonJob } from './tools/autocannon.js';
import type { Tools } from './tools/detect.js';
import { heyArgs, parseHey } from './tools/hey.js';
import type { LoadResult } from './tools/load-result.js';
import { parsePgbench, pgbenchArgs } from './tools/pgbench.js';
import { parseWrk, wrkArgs, type WrkScript } from './tools/wrk.js';

export const POST_BODY = '{"name":"x","description":"y"}';

export interface LoadCommand {
  tool: 'wrk' | 'hey' | 'pgbench' | 'autocannon';
  argv: string[];
  parse(output: string): Promise<LoadResult> | LoadResult;
  /** For autocannon: its own CPU over the run, without Node's start-up. */
  ownCpuSeconds?: (output: string) => number | undefined;
}

export interface CommandContext {
  options: Options;
  tools: Tools;
  /** Lua scripts and the pgbench script, written once into the results folder. */
  scripts: Record<WrkScript, string> & { pgbench: string };
  service?: Service;
  /** Our database, for pgbench. */
  databaseUrl?: string;
  /** Prefix for per-run files (pgbench's transaction logs). */
  rawPrefix: string;
}

function autocannon(job: AutocannonJob): LoadCommand {
  return {
    tool: 'autocannon',
    argv: autocannonArgs(job),
    parse: parseAutocannon,
    ownCpuSeconds: (output) => parseAutocannon(output).cpuSeconds,
  };
}

/** The timed command of a scenario against one target. */
export function runCommandFor(scenario: Scenario, context: CommandContext, durationS = context.options.durationS, forWarmup = false): LoadCommand {
  const { options, tools, scripts } = context;
  if (scenario.kind === 'pgbench') {
    if (!context.databaseUrl) throw new Error('pgbench needs our database (--db when the server is external)');
    const logPrefix = forWarmup ? undefined : `${context.rawPrefix}.pgbench-log`;
    return {
      tool: 'pgbench',
      argv: pgbenchArgs({ binDir: options.pgBin, databaseUrl: context.databaseUrl, clients: scenario.connections, threads: options.threads, durationS, scriptPath: scripts.pgbench, ...(logPrefix ? { logPrefix } : {}) }),
      parse: (output) => parsePgbench(output, logPrefix),
    };
  }
  const service = context.service;
  if (!service) throw new Error(`${scenario.id} needs a server`);
  const isGet = scenario.kind === 'get' || scenario.kind === 'overload-get';
  const url = `${service.baseUrl}${isGet ? service.listPath(scenario.rows) : '/items'}`;

  if (scenario.kind === 'post-hey' && !forWarmup) {
    if (tools.hey) return { tool: 'hey', argv: heyArgs({ url, requests: options.heyRequests, connections: scenario.connections, body: POST_BODY }), parse: parseHey };
    return autocannon({ url, method: 'POST', body: POST_BODY, headers: { 'content-type': 'application/json' }, connections: scenario.connections, amount: options.heyRequests, timeoutS: 20 });
  }
  // Warm-ups use the cheap generator at the normal connection count, whatever the scenario.
  const connections = forWarmup ? options.connections : scenario.connections;
  const script: WrkScript = forWarmup ? (isGet ? 'get' : 'post') : scenario.kind === 'get' ? 'get' : scenario.kind === 'overload-get' ? 'overload-get' : scenario.kind === 'overload-post' ? 'overload-post' : 'post';
  if (tools.wrk) {
    return { tool: 'wrk', argv: wrkArgs({ url, connections, threads: options.threads, durationS, timeoutS: options.wrkTimeoutS, scriptPath: scripts[script] }), parse: parseWrk };
  }
  return autocannon({
    url,
    method: isGet ? 'GET' : 'POST',
    ...(isGet ? {} : { body: POST_BODY }),
    headers: isGet ? {} : { 'content-type': 'application/json' },
    connections,
    durationS,
    timeoutS: options.wrkTimeoutS,
  });
}

/** The warm-up before a timed run: the same requests for --warmup seconds (pgbench: the same transactions). */
export function warmupCommandFor(scenario: Scenario, context: CommandContext): LoadCommand | undefined {
  if (context.options.warmupS <= 0) return undefined;
  return runCommandFor(scenario, context, context.options.warmupS, true);
}

/** A command line a person can paste (quoted where needed), with paths relative to the results folder. */
export function shellLine(argv: string[], resultsDir: string): string {
  return argv
    .map((arg) => (arg.startsWith(resultsDir) ? path.relative(resultsDir, arg) : arg))
    .map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`))
    .join(' ');
}
