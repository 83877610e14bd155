import type { components } from './schema.js';

export type Problem = components['schemas']['Problem'];
export type ValidationProblem = components['schemas']['ValidationProblem'];
export type FieldError = components['schemas']['FieldError'];
/** Every code the service can answer with: one closed list. */
export type ErrorCode = Problem['code'];

/** An error answer of the service: an RFC 9457 problem with its stable `code`. */
export class ProblemError extends Error {
  override readonly name = 'ProblemError';

  constructor(
    readonly problem: Problem | ValidationProblem,
    /** The response it came in (its headers: Retry-After, x-request-id). */
    readonly response: Response,
  ) {
    super(`${problem.status} ${problem.code}: ${problem.detail}`);
  }

  get status(): number {
    return this.problem.status;
  }

  get code(): ErrorCode {
    return this.problem.code;
  }

  /** With VALIDATION_FAILED: each field that broke the schema. */
  get fieldErrors(): FieldError[] {
    return this.problem.errors ?? [];
  }
}

/** An answer that is neither a success nor a problem (a proxy's error page, say). */
export class UnexpectedResponseError extends Error {
  override readonly name = 'UnexpectedResponseError';

  constructor(
    readonly response: Response,
    readonly body: unknown,
  ) {
    super(`Unexpected answer ${response.status} from ${response.url}`);
  }
}

/** The error to throw for a failed response: a ProblemError when the body is a problem. */
export function errorFor(response: Response, body: unknown): ProblemError | UnexpectedResponseError {
  const isProblem =
    response.headers.get('content-type')?.startsWith('application/problem+json') === true &&
    typeof body === 'object' &&
    body !== null &&
    typeof (body as { code?: unknown }).code === 'string';
  return isProblem ? new ProblemError(body as Problem, response) : new UnexpectedResponseError(response, body);
}
