import type { ServerLog } from './server-log.js';

/** ours; the minimal peer (bench/minimal-peer); the seed's FastAPI service (`peer`, its name since results schema 1). */
export type TargetName = 'ours' | 'minimal' | 'peer';
export const TARGET_NAMES: readonly TargetName[] = ['ours', 'minimal', 'peer'];

/** A service under test, however it was started. */
export interface Service {
  name: TargetName;
  /** Shown in tables and charts. */
  label: string;
  /** Origin, e.g. http://127.0.0.1:41234 (loopback only). */
  baseUrl: string;
  /** Its database, when the bench may pin the table size and read counters. */
  databaseUrl?: string;
  /** The root of the server's process tree (supervisor or Gunicorn master), for CPU accounting. */
  rootPid?: number;
  /** The GET path for a table of `rows` rows: ours and the minimal peer page (limit ≤ 1000), the seed lists everything. */
  listPath(rows: number | undefined): string;
  /** Where stdout and stderr go, when the bench started the server. */
  log?: ServerLog;
  /** How it was started, for the results. */
  description: ServiceDescription;
  stop(): Promise<void>;
}

export interface ServiceDescription {
  command: string[];
  workers?: number;
  /** LOG_LEVEL for ours; the seed runs with Gunicorn's defaults. */
  logging: string;
  environment: Record<string, string>;
  version?: string;
  external: boolean;
}

/** Our GET: `limit` is bounded (default 100, max 1000), so a table of N ≤ 1000 rows is fetched whole with limit=N. */
export const OUR_LIMIT_MAX = 1000;

export function ourListPath(rows: number | undefined): string {
  return rows === undefined ? '/items' : `/items?limit=${Math.max(1, Math.min(rows, OUR_LIMIT_MAX))}`;
}

/** Waits until GET `url` answers 200, or fails after `timeoutMs` naming the last answer. */
export async function waitForHttp(url: string, timeoutMs: number, alive: () => boolean = () => true): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`the server exited before ${url} answered`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
      last = `status ${response.status}`;
    } catch (error) {
      last = describe(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs / 1000} s (last: ${last})`);
}

/** Waits until the server's log holds `count` lines containing `needle` (one per worker that is ready). */
export async function waitForLog(log: ServerLog, needle: string, count: number, timeoutMs: number, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await log.count(needle)) < count) {
    if (!alive()) throw new Error(`the server exited before it was ready:\n${(await log.text()).slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`fewer than ${count} "${needle}" lines within ${timeoutMs / 1000} s:\n${(await log.text()).slice(-3000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The number of rows a GET returns: checks that the table was pinned and that the service serves it. */
export async function countListed(url: string): Promise<number> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(120_000) });
  } catch (error) {
    // undici's "fetch failed" hides the reason in `cause`.
    throw new Error(`GET ${url} failed: ${describe(error)}`);
  }
  const body: unknown = await response.json();
  if (response.status !== 200 || !Array.isArray(body)) throw new Error(`GET ${url} answered ${response.status}, not a JSON array`);
  return body.length;
}

/** Checks that GET /items/{id} answers 200 with that item: the random traffic's ids exist. */
export async function checkItem(baseUrl: string, id: number): Promise<void> {
  const url = `${baseUrl}/items/${id}`;
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  } catch (error) {
    throw new Error(`GET ${url} failed: ${describe(error)}`);
  }
  const body = (await response.json()) as { id?: unknown };
  if (response.status !== 200 || Number(body.id) !== id) throw new Error(`GET ${url} answered ${response.status} ${JSON.stringify(body).slice(0, 200)}, not item ${id}`);
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return error.cause instanceof Error ? `${error.message}: ${error.cause.message}` : error.message;
}
