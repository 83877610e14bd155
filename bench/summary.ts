import type { CpuSplit } from './measure.js';
import type { ScenarioKind } from './options.js';
import type { Results, RunResult } from './results.js';
import { LITTLE_FACTOR, littleMs, non503Errors } from './overload.js';
import { baselineScenarioId, type RunTarget } from './scenarios.js';
import type { TargetName } from './servers/service.js';
import { median } from './stats.js';

export interface TargetSummary {
  /** Repetitions that produced a result. */
  n: number;
  rps?: number;
  okRps?: number;
  p50?: number;
  p90?: number;
  p99?: number;
  max?: number;
  /** Summed over repetitions. */
  requests: number;
  non2xx: number;
  statuses: Record<string, number>;
  socketErrors: number;
  timeouts: number;
  share503?: number;
  cpu: Partial<CpuSplit>;
  commitsPerRequest?: number;
  rollbacksPerRequest?: number;
  rowsPerCommit?: number;
  rowsServed?: number;
  errors: string[];
}

/** ours ÷ another target, from the medians: req/s above 1 and p99 below 1 favour ours. */
export interface Ratio {
  rps?: number;
  okRps?: number;
  p99?: number;
}

/** An overload scenario's medians against its 100-connection scenario and Little's law. */
export interface OverloadSummary {
  /** Median goodput as a % of the baseline scenario's median goodput, same server. */
  throughputPct?: number;
  /** Summed over repetitions: neither 2xx nor 503, plus socket errors and timeouts. */
  non503Errors: number;
  /** connections ÷ median req/s, in ms. */
  littleMs?: number;
  p99?: number;
  p99OverLittle?: number;
  withinTarget?: boolean;
}

export interface ScenarioSummary {
  scenario: string;
  title: string;
  kind: ScenarioKind;
  rows?: number;
  /** Connections of the HTTP runs. */
  connections?: number;
  byTarget: Partial<Record<RunTarget, TargetSummary>>;
  /** ours ÷ the seed's FastAPI service (`peer`), kept under this name from the first results. */
  ratio?: Ratio;
  /** ours ÷ each other target: the minimal peer, the seed (`peer`), pgbench running the same SQL (`database`). */
  ratios: Partial<Record<Exclude<RunTarget, 'ours'>, Ratio>>;
  /** Overload scenarios: each server against its own 100-connection run (`baseline`) and Little's law. */
  overload?: { baseline: string; byTarget: Partial<Record<TargetName, OverloadSummary>> };
}

function summarizeTarget(runs: RunResult[]): TargetSummary {
  const ok = runs.filter((run) => !run.error || run.requests > 0);
  const statuses: Record<string, number> = {};
  for (const run of runs) for (const [code, count] of Object.entries(run.statuses ?? {})) statuses[code] = (statuses[code] ?? 0) + count;
  const pick = (value: (run: RunResult) => number | undefined) => median(ok.map(value));
  const cpu: Partial<CpuSplit> = {};
  for (const key of ['loadgen', 'server', 'postgres', 'machine', 'other', 'steal'] as const) {
    const value = pick((run) => run.cpu[key]);
    if (value !== undefined) cpu[key] = value;
  }
  const optional = (name: string, value: number | undefined) => (value === undefined ? {} : { [name]: value });
  return {
    n: ok.length,
    ...optional('rps', pick((run) => run.rps)),
    ...optional('okRps', pick((run) => run.okRps)),
    ...optional('p50', pick((run) => run.latencyMs.p50)),
    ...optional('p90', pick((run) => run.latencyMs.p90)),
    ...optional('p99', pick((run) => run.latencyMs.p99)),
    ...optional('max', pick((run) => run.latencyMs.max)),
    requests: runs.reduce((sum, run) => sum + run.requests, 0),
    non2xx: runs.reduce((sum, run) => sum + run.non2xx, 0),
    statuses,
    socketErrors: runs.reduce((sum, run) => sum + run.socketErrors.connect + run.socketErrors.read + run.socketErrors.write + run.socketErrors.other, 0),
    timeouts: runs.reduce((sum, run) => sum + run.timeouts, 0),
    ...optional('share503', pick((run) => run.share503)),
    cpu,
    ...optional('commitsPerRequest', pick((run) => run.database?.commitsPerRequest)),
    ...optional('rollbacksPerRequest', pick((run) => run.database?.rollbacksPerRequest)),
    ...optional('rowsPerCommit', pick((run) => run.database?.rowsPerCommit)),
    ...optional('rowsServed', pick((run) => run.rowsServed)),
    errors: runs.filter((run) => run.error).map((run) => `rep ${run.rep}: ${run.error}`),
  };
}

const divide = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? a / b : undefined);

function ratioOf(ours: TargetSummary, other: TargetSummary): Ratio {
  const rps = divide(ours.rps, other.rps);
  const okRps = divide(ours.okRps, other.okRps);
  const p99 = divide(ours.p99, other.p99);
  return { ...(rps === undefined ? {} : { rps }), ...(okRps === undefined ? {} : { okRps }), ...(p99 === undefined ? {} : { p99 }) };
}

function overloadOf(runs: RunResult[], summary: TargetSummary, baseline: TargetSummary | undefined, connections: number): OverloadSummary {
  const bound = summary.rps !== undefined && summary.rps > 0 ? littleMs(connections, summary.rps) : undefined;
  const p99OverLittle = divide(summary.p99, bound);
  const throughputPct = divide(summary.okRps, baseline?.okRps);
  return {
    ...(throughputPct === undefined ? {} : { throughputPct: 100 * throughputPct }),
    non503Errors: runs.reduce((sum, run) => sum + non503Errors(run), 0),
    ...(bound === undefined ? {} : { littleMs: bound }),
    ...(summary.p99 === undefined ? {} : { p99: summary.p99 }),
    ...(p99OverLittle === undefined ? {} : { p99OverLittle, withinTarget: p99OverLittle <= LITTLE_FACTOR }),
  };
}

/** Medians over repetitions for each scenario and target, in the order the scenarios ran. */
export function summarize(results: Pick<Results, 'runs'>): ScenarioSummary[] {
  const order: string[] = [];
  const byScenario = new Map<string, RunResult[]>();
  for (const run of results.runs) {
    if (!byScenario.has(run.scenario)) {
      order.push(run.scenario);
      byScenario.set(run.scenario, []);
    }
    byScenario.get(run.scenario)!.push(run);
  }
  const summaries = order.map((scenario) => {
    const runs = byScenario.get(scenario)!;
    const first = runs[0]!;
    const byTarget: ScenarioSummary['byTarget'] = {};
    for (const target of ['ours', 'minimal', 'peer', 'database'] as const) {
      const mine = runs.filter((run) => run.target === target);
      if (mine.length > 0) byTarget[target] = summarizeTarget(mine);
    }
    const summary: ScenarioSummary = { scenario, title: first.title, kind: first.kind, byTarget, ratios: {} };
    if (first.rows !== undefined) summary.rows = first.rows;
    const http = runs.find((run) => run.target !== 'database');
    if (http) summary.connections = http.connections;
    const ours = byTarget.ours;
    for (const other of ['minimal', 'peer', 'database'] as const) {
      const data = byTarget[other];
      if (ours && data) summary.ratios[other] = ratioOf(ours, data);
    }
    if (summary.ratios.peer) summary.ratio = summary.ratios.peer;
    return summary;
  });
  // Overload scenarios, against their 100-connection scenario of the same run.
  for (const summary of summaries) {
    const baselineId = baselineScenarioId({ id: summary.scenario, kind: summary.kind });
    if (!baselineId || summary.connections === undefined) continue;
    const baseline = summaries.find((candidate) => candidate.scenario === baselineId);
    const byTarget: Partial<Record<TargetName, OverloadSummary>> = {};
    for (const target of ['ours', 'minimal', 'peer'] as const) {
      const data = summary.byTarget[target];
      const runs = byScenario.get(summary.scenario)!.filter((run) => run.target === target);
      if (data) byTarget[target] = overloadOf(runs, data, baseline?.byTarget[target], summary.connections);
    }
    summary.overload = { baseline: baselineId, byTarget };
  }
  return summaries;
}
