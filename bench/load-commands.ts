import path from 'node:path';
import type { Options } from './options.js';
import { RANDOM_KINDS, SAME_PAGE_LIMIT, type RunTarget, type Scenario } from './scenarios.js';
import type { Service } from './servers/service.js';
import { autocannonArgs, parseAutocannon, type AutocannonJob } from './tools/autocannon.js';
import type { Tools } from './tools/detect.js';
import { heyArgs, parseHey } from './tools/hey.js';
import type { LoadResult } from './tools/load-result.js';
import { parsePgbench, pgbenchArgs, type PgbenchScript } from './tools/pgbench.js';
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
  /** Lua scripts and pgbench scripts, written once into the results folder. */
  scripts: { wrk: Record<WrkScript, string>; pgbench: Record<PgbenchScript, string> };
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

/** pgbench's script for a scenario: the INSERT, or the same SQL as the scenario's HTTP traffic. */
function pgbenchScriptOf(scenario: Scenario): PgbenchScript {
  if (scenario.kind === 'same-page' || scenario.kind === 'pages' || scenario.kind === 'by-id') return scenario.kind;
  if (scenario.kind === 'pgbench') return 'insert';
  throw new Error(`pgbench has no script for ${scenario.id}`);
}

/** The Lua script of an HTTP run (warm-ups: the same traffic at the normal connection count, without the overload hooks). */
function wrkScriptOf(scenario: Scenario, forWarmup: boolean): WrkScript {
  switch (scenario.kind) {
    case 'get':
    case 'same-page':
      return 'get';
    case 'overload-get':
      return forWarmup ? 'get' : 'overload-get';
    case 'overload-post':
      return forWarmup ? 'post' : 'overload-post';
    case 'overload-by-id':
      return forWarmup ? 'by-id' : 'overload-by-id';
    case 'pages':
    case 'by-id':
    case 'mix':
      return scenario.kind;
    default:
      return 'post';
  }
}

/** The URL wrk is given: the list path for GETs, /items for POSTs, the origin where the script picks each path. */
function urlOf(scenario: Scenario, service: Service): string {
  switch (scenario.kind) {
    case 'get':
    case 'overload-get':
      return `${service.baseUrl}${service.listPath(scenario.rows)}`;
    case 'same-page':
      return `${service.baseUrl}/items?limit=${SAME_PAGE_LIMIT}`;
    case 'pages':
    case 'by-id':
    case 'mix':
    case 'overload-by-id':
      return service.baseUrl;
    default:
      return `${service.baseUrl}/items`;
  }
}

/** The timed command of a scenario against one target. */
export function runCommandFor(scenario: Scenario, target: RunTarget, context: CommandContext, durationS = context.options.durationS, forWarmup = false): LoadCommand {
  const { options, tools, scripts } = context;
  if (target === 'database') {
    if (!context.databaseUrl) throw new Error('pgbench needs our database (--db when the server is external)');
    const logPrefix = forWarmup ? undefined : `${context.rawPrefix}.pgbench-log`;
    return {
      tool: 'pgbench',
      argv: pgbenchArgs({ binDir: options.pgBin, databaseUrl: context.databaseUrl, clients: options.pgbenchClients, threads: options.threads, durationS, scriptPath: scripts.pgbench[pgbenchScriptOf(scenario)], ...(logPrefix ? { logPrefix } : {}) }),
      parse: (output) => parsePgbench(output, logPrefix),
    };
  }
  const service = context.service;
  if (!service) throw new Error(`${scenario.id} needs a server`);
  const url = urlOf(scenario, service);

  if (scenario.kind === 'post-hey' && !forWarmup) {
    if (tools.hey) return { tool: 'hey', argv: heyArgs({ url, requests: options.heyRequests, connections: scenario.connections, body: POST_BODY }), parse: parseHey };
    return autocannon({ url, method: 'POST', body: POST_BODY, headers: { 'content-type': 'application/json' }, connections: scenario.connections, amount: options.heyRequests, timeoutS: 20 });
  }
  // Warm-ups use the cheap generator at the normal connection count, whatever the scenario.
  const connections = forWarmup ? options.connections : scenario.connections;
  const script = wrkScriptOf(scenario, forWarmup);
  if (tools.wrk) {
    return { tool: 'wrk', argv: wrkArgs({ url, connections, threads: options.threads, durationS, timeoutS: options.wrkTimeoutS, scriptPath: scripts.wrk[script] }), parse: parseWrk };
  }
  if (RANDOM_KINDS.has(scenario.kind)) throw new Error(`${scenario.id} needs wrk (its requests are drawn in wrk's Lua)`);
  const isGet = script === 'get' || script === 'overload-get';
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
export function warmupCommandFor(scenario: Scenario, target: RunTarget, context: CommandContext): LoadCommand | undefined {
  if (context.options.warmupS <= 0) return undefined;
  return runCommandFor(scenario, target, context, context.options.warmupS, true);
}

/** A command line a person can paste (quoted where needed), with paths relative to the results folder. */
export function shellLine(argv: string[], resultsDir: string): string {
  const relative = (text: string) => (text.startsWith(resultsDir) ? path.relative(resultsDir, text) : text);
  return argv
    // A path may also be an option's value: --log-prefix=/…/raw/x.
    .map((arg) => (/^--[\w-]+=/.test(arg) ? arg.replace(/^(--[\w-]+=)(.*)$/, (_, option: string, value: string) => `${option}${relative(value)}`) : relative(arg)))
    .map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`))
    .join(' ');
}
