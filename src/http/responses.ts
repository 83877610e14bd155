import type { ErrorCode } from '../errors.js';
import { PROBLEM_CONTENT_TYPE, problem, type FieldError, type Problem as ProblemBody } from './problem.js';

/**
 * The parts of the route schemas that document responses for the OpenAPI document: the headers
 * the service sends, and a problem response per status with the codes an operation can answer and
 * an example of each. Only `content[…].schema` matters to Fastify (it serializes with it); the
 * rest is documentation.
 */

export interface HeaderDocument {
  type: 'string' | 'integer';
  description: string;
  [keyword: string]: unknown;
}

export const REQUEST_ID_HEADER: Record<string, HeaderDocument> = {
  'x-request-id': {
    type: 'string',
    description: 'The request id that the log lines carry: the request\'s own `x-request-id` when short and plain, else a new UUID',
  },
};

const RETRY_AFTER_HEADER: Record<string, HeaderDocument> = {
  'Retry-After': { type: 'integer', minimum: 0, description: 'Seconds to wait before retrying' },
};

/** What @fastify/rate-limit sends on every response of a limited route. */
export const RATE_LIMIT_HEADERS: Record<string, HeaderDocument> = {
  'x-ratelimit-limit': { type: 'integer', minimum: 0, description: 'With RATE_LIMIT_PER_MINUTE set: requests allowed per minute' },
  'x-ratelimit-remaining': { type: 'integer', minimum: 0, description: 'With RATE_LIMIT_PER_MINUTE set: requests left in this minute' },
  'x-ratelimit-reset': { type: 'integer', minimum: 0, description: 'With RATE_LIMIT_PER_MINUTE set: seconds until the count starts again' },
};

/** Each code's status and an example of its problem: a Record, so that a new code cannot go undocumented. */
const EXAMPLES: Record<ErrorCode, { status: number; detail: string; errors?: FieldError[] }> = {
  MALFORMED_REQUEST: { status: 400, detail: 'The request is not valid HTTP/1.1' },
  MALFORMED_JSON: { status: 400, detail: 'The body is not valid JSON' },
  EMPTY_BODY: { status: 400, detail: 'The body is empty but its content type says JSON' },
  INVALID_UTF8: { status: 400, detail: 'The body is not valid UTF-8' },
  BAD_REQUEST: { status: 400, detail: 'Request body size did not match Content-Length' },
  UNAUTHORIZED: { status: 401, detail: 'Writes need an API key: Authorization: Bearer <key>' },
  NOT_FOUND: { status: 404, detail: 'No such resource' },
  ITEM_NOT_FOUND: { status: 404, detail: 'Item 42 does not exist' },
  METHOD_NOT_ALLOWED: { status: 405, detail: 'PUT is not allowed here; use GET, HEAD, POST' },
  REQUEST_TIMEOUT: { status: 408, detail: 'The request was not received in time' },
  BODY_TOO_LARGE: { status: 413, detail: 'The request body is larger than this service accepts' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, detail: 'Send the body as application/json' },
  VALIDATION_FAILED: {
    status: 422,
    detail: 'The request is invalid; see errors',
    errors: [{ in: 'body', field: 'name', message: 'must NOT have fewer than 1 characters' }],
  },
  UNSTORABLE_VALUE: { status: 422, detail: 'A value cannot be stored by the database' },
  IDEMPOTENCY_KEY_REUSED: {
    status: 422,
    detail: 'The Idempotency-Key "3f1c0a4e-7d5b-4c1e-9a51-0b6f2f1d8c27" was already used with a different request',
  },
  RATE_LIMITED: { status: 429, detail: 'Rate limit exceeded: 600 requests per minute; retry in 12 seconds' },
  HEADERS_TOO_LARGE: { status: 431, detail: 'The request headers are larger than this service accepts' },
  INTERNAL_ERROR: { status: 500, detail: 'An unexpected error occurred; the log has the details under this request id' },
  OVERLOADED: { status: 503, detail: 'The service is at capacity; retry shortly' },
  DATABASE_UNAVAILABLE: { status: 503, detail: 'The database is unavailable; retry shortly' },
  OUTCOME_UNKNOWN: {
    status: 503,
    detail:
      'The connection to the database was lost after the change was sent: it may or may not have been saved. ' +
      'A POST retried with the same Idempotency-Key is safe; without one, check before retrying',
  },
  NOT_READY: { status: 503, detail: 'The database does not answer' },
};

const DESCRIPTIONS: Record<number, string> = {
  400: 'The body cannot be read as JSON',
  401: 'A write without a valid API key, when the service runs with API_KEYS',
  404: 'No such item',
  413: 'The body is larger than BODY_LIMIT',
  415: 'The body is not application/json',
  422: 'The request breaks the schema, or its values cannot be stored',
  429: 'Too many requests from this address, when the service runs with RATE_LIMIT_PER_MINUTE',
  431: 'The request headers are too large (answered before routing, for any path)',
  500: 'A bug: the body names the request id under which the log has the cause',
  503: 'Not now, and nothing was done unless the code is OUTCOME_UNKNOWN: retry after Retry-After seconds',
};

const EXTRA_HEADERS: Record<number, Record<string, HeaderDocument>> = {
  401: { 'WWW-Authenticate': { type: 'string', description: 'Bearer realm="fastify-sqlasync"' } },
  429: { ...RETRY_AFTER_HEADER, ...RATE_LIMIT_HEADERS },
  503: RETRY_AFTER_HEADER,
};

function exampleOf(code: ErrorCode): ProblemBody {
  const { status, detail, errors } = EXAMPLES[code];
  const body = problem(status, code, detail, errors);
  return code === 'INTERNAL_ERROR' ? { ...body, request_id: '0b0e7a4c-51f4-4d6e-b1c2-6c8f0f5d2a9e' } : body;
}

/**
 * The schema of a status's problems: a Problem whose `code` is one of those listed, or, for the
 * codes of a failed validation, a ValidationProblem (its `errors` always there).
 */
function schemaFor(codes: ErrorCode[]): object {
  const others = codes.filter((code) => code !== 'VALIDATION_FAILED');
  const validation = { $ref: 'ValidationProblem' };
  if (others.length === 0) return validation;
  const narrowed = { allOf: [{ $ref: 'Problem' }, { type: 'object', required: ['code'], properties: { code: { enum: others } } }] };
  return others.length === codes.length ? narrowed : { oneOf: [validation, narrowed] };
}

/** The problem responses of an operation, one per status, from the codes it can answer. */
export function problemResponses(codes: readonly ErrorCode[]): Record<number, object> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    const { status } = EXAMPLES[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return Object.fromEntries(
    [...byStatus].map(([status, statusCodes]) => [
      status,
      {
        description: `${DESCRIPTIONS[status] ?? 'An error'} (${statusCodes.join(', ')})`,
        headers: { ...REQUEST_ID_HEADER, ...EXTRA_HEADERS[status] },
        content: {
          [PROBLEM_CONTENT_TYPE]: {
            schema: schemaFor(statusCodes),
            examples: Object.fromEntries(statusCodes.map((code) => [code, { summary: code, value: exampleOf(code) }])),
          },
        },
      },
    ]),
  );
}
