import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import postgres from 'postgres';
import { isConnectionFailure } from '../db/errors.js';

/** The first retry comes after 1 s; each wait doubles, up to 30 s: patient, without hammering the database. */
export const FIRST_RETRY_MS = 1_000;
export const MAX_RETRY_MS = 30_000;
/** A step still running after this long (a migration waiting for another instance's lock) is a wait too. */
export const SLOW_STEP_MS = 2_000;

/** What the service must do with the database before it serves; `enter` names each step for the log. */
export type Preparation<T> = (databaseUrl: string, enter: (step: string) => void) => Promise<T>;

export interface WaitOptions<T> {
  databaseUrl: string;
  logger: Logger;
  connectTimeoutMs: number;
  prepare: Preparation<T>;
  /** Aborted: stop waiting (a signal to stop came). */
  signal: AbortSignal;
  /** Called once, when the wait begins to take time: an attempt failed, or a step is slow. */
  onWaiting: (step: string) => void;
}

/** The wait after failed attempt number `attempt` (from 1). */
export function retryDelayMs(attempt: number): number {
  return Math.min(FIRST_RETRY_MS * 2 ** (attempt - 1), MAX_RETRY_MS);
}

/**
 * Connects to the database, then runs `prepare` (migrations, the connection budget), again and
 * again with backoff until both succeed. Whatever keeps the first connection from being made is
 * retried (down, starting, unreachable, refusing the credentials: each may be fixed without us);
 * after that, only a lost or refused connection is: a migration that fails, or a budget that does
 * not fit, is an error that retrying cannot fix, thrown at once. Resolves with `prepare`'s result,
 * or undefined once `signal` is aborted, without waiting for the attempt under way.
 */
export async function waitForDatabase<T>({ databaseUrl, logger, connectTimeoutMs, prepare, signal, onWaiting }: WaitOptions<T>): Promise<{ value: T } | undefined> {
  const target = describeDatabase(databaseUrl);
  const startedAt = Date.now();
  let step = 'connection';
  let waiting = false;
  const wait = () => {
    if (waiting) return;
    waiting = true;
    onWaiting(step);
  };
  const slowStep = setTimeout(wait, SLOW_STEP_MS);
  try {
    for (let attempt = 1; ; attempt++) {
      step = 'connection';
      try {
        const outcome = await unlessAborted(
          (async () => {
            await ping(databaseUrl, connectTimeoutMs);
            step = 'preparation';
            return prepare(databaseUrl, (name) => (step = name));
          })(),
          signal,
        );
        if (outcome === undefined) return undefined;
        if (waiting || attempt > 1) {
          logger.info(
            { event: 'database-ready', database: target, attempts: attempt, waitedMs: Date.now() - startedAt },
            `database ${target} ready after ${attempt} attempt${attempt > 1 ? 's' : ''}: serving`,
          );
        }
        return outcome;
      } catch (error) {
        if (step !== 'connection' && !isConnectionFailure(error)) throw error;
        const retryInMs = retryDelayMs(attempt);
        const reason = describeError(error);
        logger.warn(
          { event: 'database-unreachable', database: target, attempt, step, retryInMs, error: reason },
          `database ${target} unreachable (attempt ${attempt}, ${step}): ${reason}; retrying in ${retryInMs / 1000} s`,
        );
        wait();
        try {
          await sleep(retryInMs, undefined, { signal });
        } catch {
          return undefined;
        }
      }
    }
  } finally {
    clearTimeout(slowStep);
  }
}

/** One round trip on a connection of its own, bounded by the connect timeout. */
async function ping(databaseUrl: string, connectTimeoutMs: number): Promise<void> {
  const sql = postgres(databaseUrl, { max: 1, connect_timeout: Math.ceil(connectTimeoutMs / 1000), onnotice: () => {} });
  // postgres.js's connect timeout ends at the login: a pooler that logs in and then holds the
  // query (PgBouncer with its server down) would stall the attempt, so the whole ping has a limit.
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(Object.assign(new Error(`no answer within ${connectTimeoutMs} ms`), { code: 'CONNECT_TIMEOUT' })),
      connectTimeoutMs,
    );
  });
  // Settled either way, so that ending the connection under a held query is no unhandled rejection.
  const answered = sql`SELECT 1`.then(() => undefined);
  answered.catch(() => {});
  try {
    await Promise.race([answered, timedOut]);
  } finally {
    clearTimeout(timer);
    // Ended once the query has its answer. Ending by force under a query still held makes postgres.js
    // reject a promise of its own that nothing handles (the process would crash); the pooler gives
    // the held query up in time (PgBouncer's query_wait_timeout), and the connection goes with it.
    void sql.end().catch(() => {});
  }
}

/** Resolves with `{ value }`, or with undefined as soon as `signal` aborts (the work is left to the exit). */
async function unlessAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<{ value: T } | undefined> {
  if (signal.aborted) return undefined;
  let onAbort: () => void = () => {};
  const aborted = new Promise<undefined>((resolve) => {
    onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  // Abandoned when aborted: its failure must not become an unhandled rejection.
  work.catch(() => {});
  try {
    return await Promise.race([work.then((value) => ({ value })), aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/**
 * `host:port/database` as postgres.js reads DATABASE_URL (several hosts, PGHOST and the like):
 * enough for an operator to know which server, never the user or the password.
 */
export function describeDatabase(databaseUrl: string): string {
  const sql = postgres(databaseUrl, { max: 1 });
  const { host, port, database } = sql.options;
  void sql.end();
  return `${host.map((name, index) => `${name}:${port[index] ?? port[0]}`).join(',')}/${database}`;
}

/** The error in one line: Node's connection errors to several addresses carry only a code. */
function describeError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || message.includes(code)) return message || 'unknown error';
  return message ? `${code}: ${message}` : code;
}
