import { ServiceError } from '../errors.js';

/**
 * The database's failures, in the client's terms: whose fault it is (the data, or the database's
 * availability) and, for a write, whether it may have been saved. Codes are PostgreSQL SQLSTATEs
 * and postgres.js's own connection error codes.
 */

/** The database cannot take the work now, and none of it was done: retry later. */
export class DatabaseUnavailableError extends ServiceError {
  constructor(options?: ErrorOptions) {
    super(503, 'DATABASE_UNAVAILABLE', 'The database is unavailable; retry shortly', options);
  }
}

/** Too much work is waiting for the database: a fast refusal instead of a long queue. */
export class OverloadedError extends ServiceError {
  constructor(message = 'The service is at capacity; retry shortly') {
    super(503, 'OVERLOADED', message);
  }
}

/**
 * The connection was lost after a write was sent: it may or may not have committed. Never
 * reported as "failed", since a client that then retries without a key could write twice.
 */
export class OutcomeUnknownError extends ServiceError {
  constructor(options?: ErrorOptions) {
    super(
      503,
      'OUTCOME_UNKNOWN',
      'The connection to the database was lost after the change was sent: it may or may not have been saved. ' +
        'A POST retried with the same Idempotency-Key is safe; without one, check before retrying',
      options,
    );
  }
}

/** PostgreSQL refused a value that passed validation (an encoding, a length, a check): the client's data. */
export class UnstorableValueError extends ServiceError {
  constructor(options?: ErrorOptions) {
    super(422, 'UNSTORABLE_VALUE', 'A value cannot be stored by the database', options);
  }
}

/** The work never reached the database: it cannot have been done. */
const NOT_SENT = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'CONNECT_TIMEOUT',
  '57P03', // cannot_connect_now: starting up or shutting down
  '57P04', // database_dropped: refused while connecting
  '57P05', // idle_session_timeout: the server closed a session that had nothing to run
]);

/**
 * The database answered that the statement failed: it was rolled back, retrying later may work.
 * PostgreSQL raises these before a commit record is written; what goes wrong after it (a crash, a
 * shutdown during a synchronous-replication wait) ends the connection instead: LOST, below.
 */
const REFUSED = new Set([
  '57014', // query_canceled: the statement timeout fired
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '55P03', // lock_not_available
  '25006', // read_only_sql_transaction: a standby, as pooled connections find after a failover
]);

/** insufficient_resources (disk full, out of memory, a limit): a statement refused, or a connection (53300). */
const REFUSED_CLASS = '53';
/** A server that is full refuses connections: a service waiting for its database waits for a free one. */
const TOO_MANY_CONNECTIONS = '53300';

/** The connection died under the statement: done or not, nobody can tell from here. */
const LOST = new Set([
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '40003', // statement_completion_unknown
]);

/** The driver's error code (SQLSTATE or connection code), if the error carries one. */
function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** PostgreSQL refused a value (a batch so refused is worth retrying row by row, so only that row fails). */
export function isRejectedData(error: unknown): boolean {
  const code = codeOf(error);
  return (error as Error | null)?.name === 'PostgresError' && code !== undefined && (code.startsWith('22') || code === '23514');
}

/**
 * The error a client should see for a failed database call, or the error itself when it is a bug
 * (a 500). A write whose connection was lost mid-statement is an unknown outcome; a read is
 * simply unavailable.
 */
export function translateDatabaseError(error: unknown, work: 'read' | 'write'): Error {
  if (!(error instanceof Error)) return new Error(`Non-error thrown: ${String(error)}`);
  if (error instanceof ServiceError) return error;
  const code = codeOf(error);
  if (code === undefined) return error;
  if (isRejectedData(error)) return new UnstorableValueError({ cause: error });
  if (NOT_SENT.has(code) || REFUSED.has(code) || code.startsWith(REFUSED_CLASS)) return new DatabaseUnavailableError({ cause: error });
  if (LOST.has(code) || code.startsWith('08')) {
    return work === 'write' ? new OutcomeUnknownError({ cause: error }) : new DatabaseUnavailableError({ cause: error });
  }
  return error;
}

/** The network's failures beside those above: what keeps a connection from being opened at all. */
const UNREACHABLE = new Set(['ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED', 'EADDRNOTAVAIL']);

/**
 * No session could be had, or it was lost: the database is down, starting, unreachable or full,
 * not the work's fault, so the same work may succeed later. Looks through `cause`, since the
 * migrator wraps the driver's error in its own.
 */
export function isConnectionFailure(error: unknown): boolean {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    const code = codeOf(current);
    if (code === undefined) continue;
    if (NOT_SENT.has(code) || LOST.has(code) || UNREACHABLE.has(code) || code.startsWith('08') || code === TOO_MANY_CONNECTIONS) return true;
  }
  return false;
}
