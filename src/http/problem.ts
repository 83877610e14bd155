import { STATUS_CODES } from 'node:http';
import type { FastifyReply } from 'fastify';
import { Type, type Static } from 'typebox';
import { ERROR_CODES, type ErrorCode } from '../errors.js';
import { ref } from './schema-ref.js';

/** The one error body of the service: RFC 9457 problem details. */

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export const FieldError = Type.Object(
  {
    in: Type.String({ description: 'body, querystring, params or headers' }),
    field: Type.String({ description: 'The offending field, dotted for nested ones; empty for the whole part' }),
    message: Type.String(),
  },
  { $id: 'FieldError', additionalProperties: false, description: 'One field that broke the schema' },
);

const problemMembers = {
  type: Type.String({ description: '"about:blank": the status and `code` say what happened' }),
  title: Type.String({ description: "The status's reason phrase" }),
  status: Type.Integer({ minimum: 400, maximum: 599, description: 'The HTTP status, repeated' }),
  detail: Type.String({ description: 'What happened, for a person to read' }),
};

export const Problem = Type.Object(
  {
    ...problemMembers,
    code: Type.Enum(ERROR_CODES, { description: 'A stable, machine-readable error code' }),
    errors: Type.Optional(Type.Array(ref(FieldError), { description: 'With VALIDATION_FAILED: each field that broke the schema' })),
    request_id: Type.Optional(Type.String({ description: 'On a 500: the request id under which the log has the cause' })),
  },
  { $id: 'Problem', additionalProperties: false, description: 'An RFC 9457 problem: every error this service answers' },
);

/** A Problem whose `errors` name each field that broke the schema: the 422 of a request that fails validation. */
export const ValidationProblem = Type.Object(
  {
    ...problemMembers,
    code: Type.Literal('VALIDATION_FAILED'),
    errors: Type.Array(ref(FieldError), { minItems: 1 }),
  },
  { $id: 'ValidationProblem', additionalProperties: false, description: 'A request that broke the schema, field by field' },
);

/** Registered once with the app (app.addSchema) and referenced by `$ref` from the routes. */
export const problemSchemas = [FieldError, Problem, ValidationProblem];

export type FieldError = Static<typeof FieldError>;
export type Problem = Static<typeof Problem>;

export function problem(status: number, code: ErrorCode, detail: string, errors?: FieldError[]): Problem {
  return { type: 'about:blank', title: STATUS_CODES[status] ?? 'Error', status, detail, code, ...(errors && { errors }) };
}

/** A 503 means "not now": every one says when to come back. */
const RETRY_AFTER_SECONDS = 1;

export function sendProblem(reply: FastifyReply, body: Problem): FastifyReply {
  if (body.status === 503) reply.header('retry-after', RETRY_AFTER_SECONDS);
  return reply.code(body.status).type(PROBLEM_CONTENT_TYPE).send(body);
}
