import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { non2xxOf, type LatencySummary, type LoadResult, type TimelinePoint } from './load-result.js';

const LUA_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lua');

export type WrkScript = 'get' | 'post' | 'overload-get' | 'overload-post' | 'pages' | 'by-id' | 'mix' | 'overload-by-id';

/** What the random scripts draw from: the pinned table's size and the page sizes. */
export interface RandomTraffic {
  rows: number;
  limits: number[];
}

/** The random traffic each script sends (random.lua), if any. */
const RANDOM_MODES: Partial<Record<WrkScript, 'pages' | 'by-id' | 'mix'>> = { pages: 'pages', 'by-id': 'by-id', mix: 'mix', 'overload-by-id': 'by-id' };

/**
 * Writes the Lua script for a kind of run into `directory` and returns its path. The pieces are
 * concatenated in a fixed order (the random traffic's settings and generator, or the POST body;
 * the report; the overload hooks), so each run's folder holds the exact script wrk ran.
 */
export async function writeWrkScript(directory: string, script: WrkScript, traffic?: RandomTraffic): Promise<string> {
  const mode = RANDOM_MODES[script];
  if (mode && !traffic) throw new Error(`the ${script} script needs the table size`);
  const pieces = [
    ...(mode ? ['random.lua'] : []),
    ...(script === 'post' || script === 'overload-post' ? ['post.lua'] : []),
    'report.lua',
    ...(script.startsWith('overload') ? ['overload.lua'] : []),
  ];
  const texts = await Promise.all(pieces.map((piece) => readFile(path.join(LUA_DIR, piece), 'utf8')));
  const settings = mode && traffic ? `-- written by bench/tools/wrk.ts\nBENCH_MODE = "${mode}"\nBENCH_ROWS = ${traffic.rows}\nBENCH_LIMITS = { ${traffic.limits.join(', ')} }\n\n` : '';
  const file = path.join(directory, `wrk-${script}.lua`);
  await writeFile(file, settings + texts.map((text, index) => `-- ${pieces[index]}\n${text}`).join('\n'));
  return file;
}

export interface WrkArgs {
  url: string;
  connections: number;
  threads: number;
  durationS: number;
  timeoutS: number;
  scriptPath: string;
}

export function wrkArgs(options: WrkArgs): string[] {
  return [
    'wrk', `-t${options.threads}`, `-c${options.connections}`, `-d${Math.max(1, Math.round(options.durationS))}s`,
    '--timeout', `${options.timeoutS}s`, '--latency', '-s', options.scriptPath, options.url,
  ];
}

interface WrkJson {
  requests: number;
  duration_us: number;
  bytes: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latency_us: { mean: number; stdev: number; max: number; percentiles: Array<[number, number]> };
}

/** What overload.lua adds: exact status counts, and per-second counts and latency buckets by status class. */
interface WrkStatusJson {
  buckets_per_e: number;
  statuses: Record<string, number>;
  /** [second since start, status class, responses] */
  seconds: Array<[number, string, number]>;
  /** [status class, bucket, responses] */
  latency_buckets: Array<[string, number, number]>;
}

function jsonLine<T>(output: string, marker: string): T | undefined {
  const line = output.split('\n').find((candidate) => candidate.startsWith(`${marker} `));
  return line ? (JSON.parse(line.slice(marker.length + 1)) as T) : undefined;
}

export function parseWrk(output: string): LoadResult {
  const report = jsonLine<WrkJson>(output, 'WRKJSON');
  if (!report) throw new Error(`wrk printed no report:\n${output.trim().slice(-1500)}`);
  const ms = (us: number) => us / 1000;
  const curve = report.latency_us.percentiles.map(([pct, us]): [number, number] => [pct, ms(us)]);
  curve.push([100, ms(report.latency_us.max)]);
  const at = (pct: number) => ms(report.latency_us.percentiles.find(([point]) => point === pct)?.[1] ?? 0);
  const durationS = report.duration_us / 1e6;
  const result: LoadResult = {
    requests: report.requests,
    durationS,
    rps: report.requests / Math.max(durationS, 1e-9),
    latencyMs: { mean: ms(report.latency_us.mean), p50: at(50), p90: at(90), p99: at(99), max: ms(report.latency_us.max) },
    latencyCurve: curve,
    non2xx: report.errors.status,
    socketErrors: { connect: report.errors.connect, read: report.errors.read, write: report.errors.write, other: 0 },
    timeouts: report.errors.timeout,
  };
  const statuses = jsonLine<WrkStatusJson>(output, 'WRKSTATUS');
  if (statuses) {
    result.statuses = statuses.statuses;
    result.non2xx = non2xxOf(statuses.statuses);
    result.timeline = secondsToTimeline(statuses.seconds);
    result.timelineSource = 'responses counted per second by the wrk Lua response() hook';
    const byStatus = bucketsToLatency(statuses.latency_buckets, statuses.buckets_per_e);
    if (Object.keys(byStatus).length > 0) result.latencyByStatus = byStatus;
  }
  return result;
}

/** Per-second counts by status class → a timeline whose points close each second (the last one is partial). */
function secondsToTimeline(seconds: WrkStatusJson['seconds']): TimelinePoint[] {
  const bySecond = new Map<number, Record<string, number>>();
  for (const [second, statusClass, count] of seconds) {
    const counts = bySecond.get(second) ?? {};
    counts[statusClass] = (counts[statusClass] ?? 0) + count;
    bySecond.set(second, counts);
  }
  const last = Math.max(-1, ...bySecond.keys());
  const points: TimelinePoint[] = [];
  for (let second = 0; second <= last; second += 1) {
    const byStatus = bySecond.get(second) ?? {};
    points.push({ t: second + 1, rps: Object.values(byStatus).reduce((sum, count) => sum + count, 0), byStatus });
  }
  return points;
}

/** Latency percentiles by status class from the script's log buckets (bucket b ≈ exp(b / perE) µs, ±2.5%). */
function bucketsToLatency(buckets: WrkStatusJson['latency_buckets'], perE: number): NonNullable<LoadResult['latencyByStatus']> {
  const byClass = new Map<string, Array<[number, number]>>();
  for (const [statusClass, bucket, count] of buckets) {
    const list = byClass.get(statusClass) ?? [];
    list.push([Math.exp(bucket / perE) / 1000, count]);
    byClass.set(statusClass, list);
  }
  const result: NonNullable<LoadResult['latencyByStatus']> = {};
  for (const [statusClass, entries] of byClass) {
    entries.sort((a, b) => a[0] - b[0]);
    const total = entries.reduce((sum, [, count]) => sum + count, 0);
    const at = (pct: number) => {
      const rank = Math.max(1, Math.ceil((pct / 100) * total));
      let seen = 0;
      for (const [latencyMs, count] of entries) {
        seen += count;
        if (seen >= rank) return latencyMs;
      }
      return entries[entries.length - 1]?.[0] ?? 0;
    };
    const summary: LatencySummary = {
      mean: entries.reduce((sum, [latencyMs, count]) => sum + latencyMs * count, 0) / Math.max(1, total),
      p50: at(50),
      p90: at(90),
      p99: at(99),
      max: entries[entries.length - 1]?.[0] ?? 0,
    };
    result[statusClass] = { ...summary, count: total };
  }
  return result;
}
