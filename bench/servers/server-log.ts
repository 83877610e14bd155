import { closeSync, createReadStream, openSync } from 'node:fs';
import { appendFile, readFile, truncate } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { percentile } from '../stats.js';

/** What a server logged while serving one measured run. */
export interface ServerLogSummary {
  lines: number;
  /** Responses by status, from access-log lines that carry `"status"` (our JSON access log). */
  statuses: Record<string, number>;
  /** Server-side response time by status (`"ms"` of the access log), in milliseconds. */
  latencyByStatus: Record<string, { count: number; p50: number; p99: number; max: number }>;
  warnings: number;
  errors: number;
  /** A few distinct warning and error lines, shortened. */
  samples: string[];
}

const SAMPLE_LIMIT = 8;
const SAMPLE_LENGTH = 400;

/**
 * A server's stdout and stderr go to one file on tmpfs (opened O_APPEND, so the bench can truncate it
 * between runs while the server keeps writing). On tmpfs the access log costs the server what a pipe
 * to a log collector would, without disk writes that would compete with PostgreSQL's WAL flushes.
 */
export class ServerLog {
  readonly fd: number;
  private closed = false;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'a');
  }

  async text(): Promise<string> {
    return readFile(this.path, 'utf8');
  }

  /** Counts the lines containing `needle` (readiness: one "listening" line per worker). */
  async count(needle: string): Promise<number> {
    return (await this.text()).split(needle).length - 1;
  }

  /**
   * Summarizes what was logged since the last call, appends its warnings and errors to `keepPath`,
   * and empties the file. Line by line: a long run at info level logs hundreds of megabytes.
   */
  async take(keepPath?: string): Promise<ServerLogSummary> {
    const summarizer = new LogSummarizer();
    const lines = createInterface({ input: createReadStream(this.path, { encoding: 'utf8' }), crlfDelay: Infinity });
    for await (const line of lines) summarizer.add(line);
    await truncate(this.path, 0);
    const summary = summarizer.finish();
    if (keepPath && summary.samples.length > 0) await appendFile(keepPath, summary.samples.map((line) => `${line}\n`).join(''));
    return summary;
  }

  /** Forgets what was logged so far (startup lines, a warm-up), keeping it in `keepPath` when given. */
  async discard(keepPath?: string): Promise<void> {
    if (keepPath) await appendFile(keepPath, await this.text());
    await truncate(this.path, 0);
  }

  /** Closes the bench's handle (once: a service may be stopped by a test and again by the cleanup). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}

const JSON_LEVEL = /"level":(\d+)/;
const JSON_STATUS = /"status":(\d{3})\b/;
const JSON_MS = /"ms":([\d.]+)/;
// Python's logging and Gunicorn write levels as words; a traceback's lines are part of an error.
const TEXT_ERROR = /\b(ERROR|CRITICAL|Traceback|Exception)\b/;
const TEXT_WARNING = /\bWARNING\b/;

/** Regular expressions rather than JSON.parse: a run can log a million lines, and this runs between runs. */
export class LogSummarizer {
  private readonly statuses: Record<string, number> = {};
  private readonly latencies = new Map<string, number[]>();
  private readonly samples = new Set<string>();
  private lines = 0;
  private warnings = 0;
  private errors = 0;

  add(line: string): void {
    if (line === '') return;
    this.lines += 1;
    const level = JSON_LEVEL.exec(line);
    const severity = level
      ? Number(level[1]) >= 50 ? 'error' : Number(level[1]) >= 40 ? 'warning' : undefined
      : TEXT_ERROR.test(line) ? 'error' : TEXT_WARNING.test(line) ? 'warning' : undefined;
    if (severity === 'error') this.errors += 1;
    if (severity === 'warning') this.warnings += 1;
    if (severity && this.samples.size < SAMPLE_LIMIT) this.samples.add(line.slice(0, SAMPLE_LENGTH));
    const status = level ? JSON_STATUS.exec(line) : null;
    if (!status) return;
    const code = status[1]!;
    this.statuses[code] = (this.statuses[code] ?? 0) + 1;
    const ms = JSON_MS.exec(line);
    if (ms) {
      const list = this.latencies.get(code) ?? [];
      list.push(Number(ms[1]));
      this.latencies.set(code, list);
    }
  }

  finish(): ServerLogSummary {
    const latencyByStatus: ServerLogSummary['latencyByStatus'] = {};
    for (const [code, list] of this.latencies) {
      list.sort((a, b) => a - b);
      latencyByStatus[code] = { count: list.length, p50: percentile(list, 50), p99: percentile(list, 99), max: list[list.length - 1] ?? 0 };
    }
    return { lines: this.lines, statuses: this.statuses, latencyByStatus, warnings: this.warnings, errors: this.errors, samples: [...this.samples] };
  }
}

export function summarizeLog(text: string): ServerLogSummary {
  const summarizer = new LogSummarizer();
  for (const line of text.split('\n')) summarizer.add(line);
  return summarizer.finish();
}
