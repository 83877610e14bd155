/**
 * Sorts database errors by whose fault they are: the client's data, or the database's availability.
 * Codes are PostgreSQL SQLSTATEs and postgres.js's own connection error codes.
 */

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EPIPE',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  '53300', // too_many_connections
  '57014', // query_canceled: the statement timeout fired
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: starting up or shutting down
  '40001', // serialization_failure: retrying later succeeds
  '40P01', // deadlock_detected
  '40003', // statement_completion_unknown (distributed databases): retry with an Idempotency-Key
]);

/** The driver's error, also when Drizzle wraps it (as `cause`) in its own query error. */
function driverError(error: unknown): { name?: unknown; code?: unknown } | undefined {
  for (let current = error; current instanceof Error; current = current.cause) {
    if (typeof (current as { code?: unknown }).code === 'string') return current;
  }
  return undefined;
}

function codeOf(error: unknown): string | undefined {
  return driverError(error)?.code as string | undefined;
}

/** The database cannot serve now but may soon: the client should retry later (503). */
export function isDatabaseUnavailable(error: unknown): boolean {
  const code = codeOf(error);
  return code !== undefined && (UNAVAILABLE_CODES.has(code) || code.startsWith('08'));
}

/** The database refused the data itself (bad encoding, too long, out of range, a check): a 422. */
export function isRejectedData(error: unknown): boolean {
  const cause = driverError(error);
  const code = cause?.code as string | undefined;
  return cause?.name === 'PostgresError' && code !== undefined && (code.startsWith('22') || code === '23514');
}
