import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { percentile } from '../stats.js';
import type { LoadResult, TimelinePoint } from './load-result.js';

/** The same single-row INSERT our POST performs, without HTTP: the database's ceiling for POST. */
export const INSERT_SCRIPT = "INSERT INTO items (name, description) VALUES ('x', 'y') RETURNING *;\n";

/** The page query of GET /items?after=A&limit=L, as the services send it (prepared, two parameters). */
export const PAGE_QUERY = 'SELECT id, name, description, created_at, updated_at FROM items WHERE id > :after ORDER BY id LIMIT :lim;';
/** The query of GET /items/{id}. */
export const ITEM_QUERY = 'SELECT id, name, description, created_at, updated_at FROM items WHERE id = :id;';

/** pgbench's scripts: the INSERT ceiling, and the SQL of the realistic traffic it runs beside the servers. */
export type PgbenchScript = 'insert' | 'same-page' | 'pages' | 'by-id';

/**
 * The SQL of each script. In prepared mode (-M prepared) `\set` variables arrive as text, so the page
 * size is drawn with a pgbench expression (`\set lim case …`), never with SQL CASE on a parameter.
 */
export function pgbenchScriptText(script: PgbenchScript, rows: number, limits: number[], samePageLimit: number): string {
  if (script === 'insert') return INSERT_SCRIPT;
  if (script === 'same-page') return `\\set after 0\n\\set lim ${samePageLimit}\n${PAGE_QUERY}\n`;
  if (script === 'by-id') return `\\set id random(1, ${rows})\n${ITEM_QUERY}\n`;
  const cases = limits.slice(0, -1).map((limit, index) => `when :pick = ${index + 1} then ${limit}`).join(' ');
  return `\\set after random(0, ${rows - 1})\n\\set pick random(1, ${limits.length})\n\\set lim case ${cases} else ${limits.at(-1)} end\n${PAGE_QUERY}\n`;
}

/** Writes every pgbench script into `directory`; returns their paths. */
export async function writePgbenchScripts(directory: string, rows: number, limits: number[], samePageLimit: number): Promise<Record<PgbenchScript, string>> {
  const paths = {} as Record<PgbenchScript, string>;
  for (const script of ['insert', 'same-page', 'pages', 'by-id'] as const) {
    paths[script] = path.join(directory, `pgbench-${script}.sql`);
    await writeFile(paths[script], pgbenchScriptText(script, rows, limits, samePageLimit));
  }
  return paths;
}

export interface PgbenchArgs {
  binDir: string;
  databaseUrl: string;
  clients: number;
  threads: number;
  durationS: number;
  scriptPath: string;
  /** Prefix of the per-transaction log files (-l); none for a warm-up. */
  logPrefix?: string;
}

export async function writePgbenchScript(directory: string): Promise<string> {
  const file = path.join(directory, 'pgbench-insert.sql');
  await writeFile(file, INSERT_SCRIPT);
  return file;
}

export function pgbenchArgs(options: PgbenchArgs): string[] {
  return [
    path.join(options.binDir, 'pgbench'), '-n', '-f', options.scriptPath, `-c${options.clients}`, `-j${options.threads}`,
    '-T', String(Math.max(1, Math.round(options.durationS))), '-M', 'prepared', '-P', '1',
    ...(options.logPrefix ? ['-l', `--log-prefix=${options.logPrefix}`] : []),
    options.databaseUrl,
  ];
}

/**
 * Parses pgbench's summary, and its per-transaction logs (-l) for the latency percentiles and the
 * per-second throughput that the summary lacks. The logs are then kept gzipped as one file.
 */
export async function parsePgbench(output: string, logPrefix?: string): Promise<LoadResult> {
  const number = (pattern: RegExp) => {
    const match = pattern.exec(output);
    return match ? Number(match[1]) : undefined;
  };
  const processed = number(/number of transactions actually processed: (\d+)/);
  const tps = number(/tps = ([\d.]+) \(without initial connection time\)/);
  if (processed === undefined || tps === undefined) throw new Error(`pgbench printed no summary:\n${output.trim().slice(-1500)}`);
  const failed = number(/number of failed transactions: (\d+)/) ?? 0;
  const average = number(/latency average = ([\d.]+) ms/) ?? 0;
  const durationS = number(/duration: (\d+) s/) ?? processed / tps;

  let latencies: number[] = [];
  let timeline: TimelinePoint[] | undefined;
  if (logPrefix) ({ latencies, timeline } = await readTransactionLogs(logPrefix));
  const curve: Array<[number, number]> = latencies.length
    ? [1, 5, 10, 25, 50, 75, 90, 95, 97.5, 99, 99.5, 99.9, 99.99, 100].map((pct) => [pct, percentile(latencies, pct)])
    : [];
  return {
    requests: processed,
    durationS,
    rps: tps,
    latencyMs: latencies.length
      ? { mean: average, p50: percentile(latencies, 50), p90: percentile(latencies, 90), p99: percentile(latencies, 99), max: latencies[latencies.length - 1]! }
      : { mean: average, p50: 0, p90: 0, p99: 0, max: 0 },
    latencyCurve: curve,
    statuses: { committed: processed, ...(failed > 0 ? { failed } : {}) },
    non2xx: failed,
    socketErrors: { connect: 0, read: 0, write: 0, other: 0 },
    timeouts: 0,
    ...(timeline ? { timeline, timelineSource: 'pgbench per-transaction log (-l), transactions per second' } : {}),
  };
}

async function readTransactionLogs(prefix: string): Promise<{ latencies: number[]; timeline: TimelinePoint[] }> {
  const directory = path.dirname(prefix);
  const base = path.basename(prefix);
  const files = (await readdir(directory)).filter((name) => name.startsWith(`${base}.`) && !name.endsWith('.gz')).sort();
  const latencies: number[] = [];
  const perSecond = new Map<number, number>();
  const texts: string[] = [];
  for (const name of files) {
    const text = await readFile(path.join(directory, name), 'utf8');
    texts.push(text);
    // client_id transaction_no time_us script_no epoch_s epoch_us [...]
    for (const line of text.split('\n')) {
      const fields = line.split(' ');
      const latencyUs = Number(fields[2]);
      const epoch = Number(fields[4]);
      if (!Number.isFinite(latencyUs) || !Number.isFinite(epoch)) continue;
      latencies.push(latencyUs / 1000);
      perSecond.set(epoch, (perSecond.get(epoch) ?? 0) + 1);
    }
    await rm(path.join(directory, name));
  }
  if (texts.length > 0) await writeFile(`${prefix}.log.gz`, gzipSync(texts.join('')));
  latencies.sort((a, b) => a - b);
  const seconds = [...perSecond.keys()].sort((a, b) => a - b);
  const first = seconds[0] ?? 0;
  const timeline = seconds.map((second) => ({ t: second - first + 1, rps: perSecond.get(second)! }));
  return { latencies, timeline };
}
