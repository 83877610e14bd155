import { STATUS_CODES } from 'node:http';
import type { FastifyReply } from 'fastify';
import { Type, type Static } from 'typebox';
import { ERROR_CODES, type ErrorCode } from '../errors.js';

/** The one error body of the service: RFC 9457 problem details. */

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export const FieldError = Type.Object({
  in: Type.String({ description: 'body, querystring, params or headers' }),
  field: Type.String({ description: 'The offending field, dotted for nested ones; empty for the whole part' }),
  message: Type.String(),
});

export const Problem = Type.Object(
  {
    type: Type.String({ description: '"about:blank": the status and `code` say what happened' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.Enum(ERROR_CODES, { description: 'A stable, machine-readable error code' }),
    errors: Type.Optional(Type.Array(FieldError)),
    request_id: Type.Optional(Type.String({ description: 'On a 500: the request id under which the log has the cause' })),
  },
  { additionalProperties: false },
);

export type FieldError = Static<typeof FieldError>;
export type Problem = Static<typeof Problem>;

export function problem(status: number, code: ErrorCode, detail: string, errors?: FieldError[]): Problem {
  return { type: 'about:blank', title: STATUS_CODES[status] ?? 'Error', status, detail, code, ...(errors && { errors }) };
}

export function sendProblem(reply: FastifyReply, body: Problem): FastifyReply {
  return reply.code(body.status).type(PROBLEM_CONTENT_TYPE).send(body);
}

/** The response schemas that every route declares for its errors (and that OpenAPI shows). */
export const problemResponses = {
  '4xx': { description: 'Client error', content: { [PROBLEM_CONTENT_TYPE]: { schema: Problem } } },
  '5xx': { description: 'Server error or unavailable', content: { [PROBLEM_CONTENT_TYPE]: { schema: Problem } } },
} as const;
