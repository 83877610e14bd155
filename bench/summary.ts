import type { CpuSplit } from './measure.js';
import type { ScenarioKind } from './options.js';
import type { Results, RunResult } from './results.js';
import type { RunTarget } from './scenarios.js';
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

export interface ScenarioSummary {
  scenario: string;
  title: string;
  kind: ScenarioKind;
  rows?: number;
  byTarget: Partial<Record<RunTarget, TargetSummary>>;
  /** ours ÷ peer, from the medians: req/s above 1 and p99 below 1 favour ours. */
  ratio?: { rps?: number; okRps?: number; p99?: number };
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
  return order.map((scenario) => {
    const runs = byScenario.get(scenario)!;
    const first = runs[0]!;
    const byTarget: ScenarioSummary['byTarget'] = {};
    for (const target of ['ours', 'peer', 'database'] as const) {
      const mine = runs.filter((run) => run.target === target);
      if (mine.length > 0) byTarget[target] = summarizeTarget(mine);
    }
    const ours = byTarget.ours;
    const peer = byTarget.peer;
    const divide = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? a / b : undefined);
    const summary: ScenarioSummary = { scenario, title: first.title, kind: first.kind, byTarget };
    if (first.rows !== undefined) summary.rows = first.rows;
    if (ours && peer) {
      const rps = divide(ours.rps, peer.rps);
      const okRps = divide(ours.okRps, peer.okRps);
      const p99 = divide(ours.p99, peer.p99);
      summary.ratio = { ...(rps === undefined ? {} : { rps }), ...(okRps === undefined ? {} : { okRps }), ...(p99 === undefined ? {} : { p99 }) };
    }
    return summary;
  });
}
