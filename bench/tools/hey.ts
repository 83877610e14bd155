import { non2xxOf, type LoadResult } from './load-result.js';

export interface HeyArgs {
  url: string;
  requests: number;
  connections: number;
  body: string;
}

/** The seed's POST command: hey -n N -c C -m POST -H 'Content-Type: application/json' -d BODY URL. */
export function heyArgs(options: HeyArgs): string[] {
  return ['hey', '-n', String(options.requests), '-c', String(options.connections), '-m', 'POST', '-H', 'Content-Type: application/json', '-d', options.body, options.url];
}

function seconds(output: string, pattern: RegExp): number | undefined {
  const match = pattern.exec(output);
  return match ? Number(match[1]) : undefined;
}

/** hey prints seconds with 4 decimals: milliseconds to the microsecond, without float noise. */
function toMs(secondsValue: number): number {
  return Math.round(secondsValue * 1e6) / 1e3;
}

/** Parses hey's text summary (it has no machine-readable summary; `-o csv` drops the error list). */
export function parseHey(output: string): LoadResult {
  const rps = seconds(output, /Requests\/sec:\s+([\d.]+)/);
  const total = seconds(output, /Total:\s+([\d.]+) secs/);
  if (rps === undefined || total === undefined) throw new Error(`hey printed no summary:\n${output.trim().slice(-1500)}`);
  const slowest = toMs(seconds(output, /Slowest:\s+([\d.]+) secs/) ?? 0);
  const fastest = toMs(seconds(output, /Fastest:\s+([\d.]+) secs/) ?? 0);
  const average = toMs(seconds(output, /Average:\s+([\d.]+) secs/) ?? 0);

  const curve: Array<[number, number]> = [[0, fastest]];
  for (const match of output.matchAll(/^\s+(\d+(?:\.\d+)?)%+ in ([\d.]+) secs/gm)) curve.push([Number(match[1]), toMs(Number(match[2]))]);
  curve.push([100, slowest]);
  const at = (pct: number) => curve.find(([point]) => point === pct)?.[1] ?? 0;

  const statuses: Record<string, number> = {};
  const statusSection = /Status code distribution:\n([\s\S]*?)(?:\n\n|$)/.exec(output)?.[1] ?? '';
  for (const match of statusSection.matchAll(/\[(\d+)\]\s+(\d+) responses/g)) statuses[match[1]!] = Number(match[2]);

  const errorDetail: Record<string, number> = {};
  let timeouts = 0;
  let connect = 0;
  let read = 0;
  let write = 0;
  let other = 0;
  const errorSection = /Error distribution:\n([\s\S]*?)(?:\n\n|$)/.exec(output)?.[1] ?? '';
  for (const match of errorSection.matchAll(/\[(\d+)\]\s+(.*)/g)) {
    const count = Number(match[1]);
    const message = match[2]!.trim();
    errorDetail[message.slice(0, 200)] = count;
    // Go's net/http messages: classify the usual ones; the detail keeps the exact text.
    if (/Client\.Timeout|timeout|deadline exceeded/i.test(message)) timeouts += count;
    else if (/dial tcp|connection refused|connect:/i.test(message)) connect += count;
    else if (/broken pipe|write:/i.test(message)) write += count;
    else if (/EOF|connection reset|read:/i.test(message)) read += count;
    else other += count;
  }
  const requests = Object.values(statuses).reduce((sum, count) => sum + count, 0);
  return {
    requests,
    durationS: total,
    rps,
    latencyMs: { mean: average, p50: at(50), p90: at(90), p99: at(99), max: slowest },
    latencyCurve: curve,
    statuses,
    non2xx: non2xxOf(statuses),
    socketErrors: { connect, read, write, other },
    ...(Object.keys(errorDetail).length > 0 ? { errorDetail } : {}),
    timeouts,
  };
}
