import type { RunResult } from './results.js';
import { round } from './stats.js';

/** The overload target: the p99 stays within this multiple of Little's law's bound. */
export const LITTLE_FACTOR = 1.5;

/** How one overload run compares with its 100-connection run and with Little's law. */
export interface OverloadCheck {
  /** The 100-connection scenario it is compared with (overload-by-id → by-id). */
  baseline: string;
  /** Goodput (<400/s) as a % of the baseline's, same server and repetition, when that run exists. */
  throughputPct?: number;
  /** Responses that were neither 2xx nor 503, plus socket errors and timeouts: failures that shedding does not explain. */
  non503Errors: number;
  /**
   * Little's law: with every connection always waiting for one response, the mean time in the
   * system is connections ÷ throughput (all responses per second), in milliseconds.
   */
  littleMs: number;
  /** p99 ÷ littleMs; the target is at most LITTLE_FACTOR. */
  p99OverLittle: number;
  withinTarget: boolean;
}

export function non503Errors(run: Pick<RunResult, 'statuses' | 'non2xx' | 'socketErrors' | 'timeouts'>): number {
  const statuses = run.statuses;
  const badStatuses = statuses
    ? Object.entries(statuses).reduce((sum, [code, count]) => sum + (code.startsWith('2') || code === '503' ? 0 : count), 0)
    : run.non2xx;
  const { connect, read, write, other } = run.socketErrors;
  return badStatuses + connect + read + write + other + run.timeouts;
}

/** Little's law's mean time in the system, in ms: connections ÷ responses per second. */
export function littleMs(connections: number, rps: number): number {
  return rps > 0 ? (1000 * connections) / rps : Number.POSITIVE_INFINITY;
}

export function checkOverload(run: RunResult, baselineId: string, baseline: RunResult | undefined): OverloadCheck {
  const bound = littleMs(run.connections, run.rps);
  const ratio = Number.isFinite(bound) ? run.latencyMs.p99 / bound : Number.POSITIVE_INFINITY;
  return {
    baseline: baselineId,
    ...(baseline && baseline.okRps > 0 ? { throughputPct: round((100 * run.okRps) / baseline.okRps, 1) } : {}),
    non503Errors: non503Errors(run),
    littleMs: Number.isFinite(bound) ? round(bound, 2) : 0,
    p99OverLittle: Number.isFinite(ratio) ? round(ratio, 3) : 0,
    withinTarget: Number.isFinite(ratio) && ratio <= LITTLE_FACTOR,
  };
}
