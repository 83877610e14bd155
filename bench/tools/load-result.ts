/** What every load generator's output is turned into, whichever tool produced it. */
export interface LoadResult {
  /** Completed responses (any status). */
  requests: number;
  /** The tool's own measure of the run's length. */
  durationS: number;
  rps: number;
  latencyMs: LatencySummary;
  /** [percentile, milliseconds], ascending: the latency distribution as the tool reports it. */
  latencyCurve: Array<[number, number]>;
  /** Responses by status, when the tool counts them (hey, autocannon, the overload Lua script). */
  statuses?: Record<string, number>;
  /** Responses with a status outside 2xx (wrk without a response hook counts only statuses ≥ 400). */
  non2xx: number;
  socketErrors: { connect: number; read: number; write: number; other: number };
  /** Error messages and their counts, when the tool lists them (hey, autocannon). */
  errorDetail?: Record<string, number>;
  /** Requests without a response within the tool's timeout. */
  timeouts: number;
  /** Client-side latency by status, when responses can be matched to requests. */
  latencyByStatus?: Record<string, LatencySummary & { count: number }>;
  /** Per-second throughput, when the tool itself provides it (else the bench samples it). */
  timeline?: TimelinePoint[];
  timelineSource?: string;
  /** The tool's own CPU seconds, when it measures them itself (autocannon runs inside Node). */
  cpuSeconds?: number;
}

export interface LatencySummary {
  mean?: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface TimelinePoint {
  /** Seconds since the run started (the end of the interval). */
  t: number;
  rps: number;
  byStatus?: Record<string, number>;
}

/** Interpolates the latency at `pct` from a curve of [percentile, value] points (nearest below when exact points are missing). */
export function curveAt(curve: Array<[number, number]>, pct: number): number {
  let value = curve[0]?.[1] ?? 0;
  for (const [point, latency] of curve) {
    if (point <= pct) value = latency;
  }
  return value;
}

export function non2xxOf(statuses: Record<string, number>): number {
  return Object.entries(statuses).reduce((sum, [code, count]) => sum + (code.startsWith('2') ? 0 : count), 0);
}
