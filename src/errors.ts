/**
 * The service's error vocabulary: every error a client can see has an HTTP status and a code from
 * this one closed list. Domain errors carry both, so the HTTP layer renders them without knowing
 * the domains (no import from `http/` into `db/` or `items/`, nor back).
 */

export const ERROR_CODES = [
  // 400
  'MALFORMED_REQUEST',
  'MALFORMED_JSON',
  'EMPTY_BODY',
  'INVALID_UTF8',
  'BAD_REQUEST',
  // 401, 404, 405, 408, 413, 415
  'UNAUTHORIZED',
  'NOT_FOUND',
  'ITEM_NOT_FOUND',
  'METHOD_NOT_ALLOWED',
  'REQUEST_TIMEOUT',
  'BODY_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  // 422, 429, 431
  'VALIDATION_FAILED',
  'UNSTORABLE_VALUE',
  'IDEMPOTENCY_KEY_REUSED',
  'RATE_LIMITED',
  'HEADERS_TOO_LARGE',
  // 500, 503
  'INTERNAL_ERROR',
  'OVERLOADED',
  'DATABASE_UNAVAILABLE',
  'OUTCOME_UNKNOWN',
  'NOT_READY',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** An error whose status and code are the client's to see; its message becomes the problem's `detail`. */
export class ServiceError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: ErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}
