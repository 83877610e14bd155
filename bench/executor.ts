import path from 'node:path';
import type { Cleanup } from './cleanup.js';
import { CounterLedger } from './counters.js';
import { checkpoint, databaseName, pinRows, readCounters, type Sql, type TransactionCounters } from './database.js';
import { runCommandFor, shellLine, warmupCommandFor, type CommandContext, type LoadCommand } from './load-commands.js';
import { measureTool, type Measurement } from './measure.js';
import type { Options } from './options.js';
import type { RunResult } from './results.js';
import { SAME_PAGE_LIMIT, type PlannedRun, type Scenario } from './scenarios.js';
import { checkItem, countListed, type Service, type TargetName } from './servers/service.js';
import { settle, type Settled } from './settle.js';
import { round } from './stats.js';
import { timelineFromBytes } from './timeline.js';
import type { Tools } from './tools/detect.js';
import type { LoadResult } from './tools/load-result.js';

export interface ExecutorContext {
  options: Options;
  cleanup: Cleanup;
  resultsDir: string;
  rawDir: string;
  logDir: string;
  services: Partial<Record<TargetName, Service>>;
  /** A connection to the `postgres` database of the server holding the services' databases. */
  admin?: Sql;
  /** Databases the admin connection can count (on its server). */
  countable: Set<string>;
  postgresPid?: number;
  /** Only on our own cluster: CHECKPOINT needs superuser rights and touches everyone's database. */
  checkpointBeforeRuns: boolean;
  tools: Tools;
  scripts: CommandContext['scripts'];
}

/**
 * Runs one planned run from start to end: close what the previous run on the same server and
 * database left open (its server log, its counters), pin the table, warm up, checkpoint, settle,
 * measure, and record. A run that fails is recorded with its error; a server that died stops the bench.
 */
export class Executor {
  private readonly ledger: CounterLedger | undefined;
  private needsSettle = true;
  private readonly lastRun = new Map<TargetName, RunResult>();

  constructor(private readonly context: ExecutorContext) {
    this.ledger = context.admin ? new CounterLedger(context.admin, context.options.statsLagS * 1000) : undefined;
    // Migrations and readiness probes just touched these databases: their first reading waits too.
    for (const database of context.countable) this.ledger?.markActive(database);
  }

  private async settleNow(): Promise<Settled> {
    const settled = await settle(this.context.options.settleCores, this.context.options.settleMaxS);
    this.ledger?.markQuiet();
    this.needsSettle = false;
    return settled;
  }

  /** Ends the previous run of a server: what it logged, now that its backlog has drained. */
  private async closeServerLog(target: TargetName): Promise<void> {
    const service = this.context.services[target];
    const previous = this.lastRun.get(target);
    if (!service?.log || !previous) return;
    previous.serverLog = await service.log.take(path.join(this.context.logDir, `${target}-warnings.log`));
    this.lastRun.delete(target);
  }

  async execute(planned: PlannedRun, onRecorded: (run: RunResult) => void): Promise<RunResult> {
    const { options, services, admin } = this.context;
    const { scenario, target, rep } = planned;
    const service = target === 'database' ? undefined : services[target];
    if (target !== 'database' && !service) throw new Error(`no ${target} server`);
    if (service?.rootPid !== undefined && !isAlive(service.rootPid)) {
      throw new Error(
        `the ${service.label} server (pid ${service.rootPid}) exited on its own: see logs/${service.name}-last.log ` +
          '(a "supervisor-stopping" line with reason SIGTERM means another process signalled it)',
      );
    }
    const databaseUrl = target === 'database' ? services.ours?.databaseUrl : service?.databaseUrl;
    const database = databaseUrl ? databaseName(databaseUrl) : undefined;
    const counted = database !== undefined && this.ledger !== undefined && this.context.countable.has(database) ? database : undefined;
    const id = `${rep}-${scenario.id}-${target}`;
    const rawPrefix = path.join(this.context.rawDir, id);
    const commandContext: CommandContext = {
      options,
      tools: this.context.tools,
      scripts: this.context.scripts,
      rawPrefix,
      ...(service ? { service } : {}),
      ...(databaseUrl ? { databaseUrl } : {}),
    };

    // Where the time between two measurements goes, in seconds: recorded with the run.
    const phases: Record<string, number> = {};
    let mark = performance.now();
    const phase = (name: string) => {
      const now = performance.now();
      phases[name] = round((now - mark) / 1000, 1);
      mark = now;
    };
    if (this.needsSettle) await this.settleNow();
    phase('drain');
    if (target !== 'database') await this.closeServerLog(target);
    if (counted) await this.ledger!.read(counted);
    phase('previousRun');

    let rows: number | undefined;
    if (scenario.rows !== undefined && databaseUrl && admin) rows = await pinRows(admin, databaseUrl, scenario.rows);
    const before: TransactionCounters | undefined = counted ? await readCounters(admin!, counted) : undefined;
    if (counted) this.ledger!.markActive(counted);
    const probed = service ? await probe(scenario, service) : { requests: 0 };
    const rowsServed = probed.rowsServed;
    phase('pin');

    const warmupCommand = warmupCommandFor(scenario, target, commandContext);
    let warmup: RunResult['warmup'];
    if (warmupCommand) {
      const warm = await this.measure(warmupCommand, `${rawPrefix}.warmup.txt`, service);
      const parsed = await Promise.resolve(warmupCommand.parse(warm.output)).catch(() => undefined);
      warmup = { requests: parsed?.requests ?? 0, seconds: round(warm.wallS, 1) };
    }
    phase('warmup');
    if (this.context.checkpointBeforeRuns && admin) await checkpoint(admin);
    phase('checkpoint');
    const settled = await this.settleNow();
    await service?.log?.discard();
    phase('settle');

    const command = runCommandFor(scenario, target, commandContext);
    const startedAt = new Date().toISOString();
    const measurement = await this.measure(command, `${rawPrefix}.txt`, service);
    this.needsSettle = true;
    if (counted) this.ledger!.markActive(counted);

    let load: LoadResult;
    let error: string | undefined;
    try {
      load = await command.parse(measurement.output);
      if (measurement.exitCode !== 0) error = `${command.tool} exited with ${measurement.exitCode}`;
    } catch (parseError) {
      error = parseError instanceof Error ? parseError.message : String(parseError);
      load = emptyLoad();
    }
    const { timeline, timelineSource, ...measured } = load;
    // The tool's own CPU figure is already in `cpu`.
    delete measured.cpuSeconds;
    const statusTotal = load.statuses ? Object.values(load.statuses).reduce((sum, count) => sum + count, 0) : 0;
    const run: RunResult = {
      ...measured,
      id,
      rep,
      scenario: scenario.id,
      title: scenario.title,
      kind: scenario.kind,
      target,
      tool: command.tool,
      command: shellLine(command.argv, this.context.resultsDir),
      connections: target === 'database' ? options.pgbenchClients : scenario.connections,
      ...(rows === undefined ? {} : { rows }),
      ...(rowsServed === undefined ? {} : { rowsServed }),
      startedAt,
      wallS: round(measurement.wallS, 2),
      okRps: load.non2xx === 0 ? load.rps : round(load.requests > 0 ? (load.rps * (load.requests - load.non2xx)) / load.requests : 0, 1),
      ...(load.statuses && target !== 'database' && statusTotal > 0 ? { share503: round((load.statuses['503'] ?? 0) / statusTotal, 4) } : {}),
      timeline: timeline
        ? { source: timelineSource ?? command.tool, points: timeline }
        : { source: 'bytes read by the load generator per second (/proc/PID/io), scaled to its req/s', points: timelineFromBytes(measurement.samples, load.rps) },
      cpu: roundCpu(measurement.cpu),
      cpuTimeline: measurement.samples.map((sample) => ({ ...sample, loadgen: round(sample.loadgen), server: round(sample.server), postgres: round(sample.postgres), machine: round(sample.machine) })),
      settle: settled,
      phases,
      ...(warmup ? { warmup } : {}),
      raw: [path.relative(this.context.resultsDir, `${rawPrefix}.txt`), ...(warmupCommand ? [path.relative(this.context.resultsDir, `${rawPrefix}.warmup.txt`)] : []), ...(command.tool === 'pgbench' ? [path.relative(this.context.resultsDir, `${rawPrefix}.pgbench-log.log.gz`)] : [])],
      ...(error ? { error } : {}),
    };
    if (counted && before) {
      const requests = probed.requests + (warmup?.requests ?? 0) + load.requests;
      this.ledger!.expect(counted, run, before, requests, target === 'database');
    }
    if (target !== 'database') this.lastRun.set(target, run);
    onRecorded(run);
    return run;
  }

  private measure(command: LoadCommand, rawPath: string, service: Service | undefined): Promise<Measurement> {
    return measureTool(command.argv, {
      rawPath,
      cleanup: this.context.cleanup,
      ...(service?.rootPid === undefined ? {} : { serverRoot: service.rootPid }),
      ...(this.context.postgresPid === undefined ? {} : { postgresRoot: this.context.postgresPid }),
      ...(command.ownCpuSeconds ? { ownCpuSeconds: command.ownCpuSeconds } : {}),
    });
  }

  /**
   * Closes every open run: the last server logs and the last counters (waiting out the statistics
   * lag once), before the servers stop or are restarted, which touches their databases.
   */
  async finish(): Promise<void> {
    if (this.needsSettle) await this.settleNow();
    for (const target of [...this.lastRun.keys()]) await this.closeServerLog(target);
    if (this.ledger) for (const database of this.ledger.pendingDatabases()) await this.ledger.read(database);
  }

  /** The servers started again: their migrations and readiness probes touched their databases. */
  serversRestarted(): void {
    for (const database of this.context.countable) this.ledger?.markActive(database);
    this.needsSettle = true;
  }
}

/**
 * One request before the run, to check that the table was pinned and that the server serves it:
 * a list's length (recorded as rowsServed), or the table's last item for the random traffic.
 */
async function probe(scenario: Scenario, service: Service): Promise<{ requests: number; rowsServed?: number }> {
  switch (scenario.kind) {
    case 'get':
    case 'overload-get':
      return { requests: 1, rowsServed: await countListed(`${service.baseUrl}${service.listPath(scenario.rows)}`) };
    case 'same-page':
      return { requests: 1, rowsServed: await countListed(`${service.baseUrl}/items?limit=${SAME_PAGE_LIMIT}`) };
    case 'pages':
    case 'by-id':
    case 'mix':
    case 'overload-by-id':
      await checkItem(service.baseUrl, scenario.rows ?? 1);
      return { requests: 1 };
    default:
      return { requests: 0 };
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function roundCpu(cpu: Measurement['cpu']): Measurement['cpu'] {
  return { loadgen: round(cpu.loadgen), server: round(cpu.server), postgres: round(cpu.postgres), machine: round(cpu.machine), other: round(cpu.other), steal: round(cpu.steal) };
}

function emptyLoad(): LoadResult {
  return {
    requests: 0,
    durationS: 0,
    rps: 0,
    latencyMs: { p50: 0, p90: 0, p99: 0, max: 0 },
    latencyCurve: [],
    non2xx: 0,
    socketErrors: { connect: 0, read: 0, write: 0, other: 0 },
    timeouts: 0,
  };
}
