import { METHODS } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import type { FastifySchemaValidationError } from 'fastify/types/schema.js';
import fastifyPlugin from 'fastify-plugin';
import FindMyWay from 'find-my-way';
import { ServiceError } from '../errors.js';
import { problem, sendProblem, type FieldError, type Problem } from './problem.js';
import { STORABLE_TEXT_PATTERN } from './validation.js';

/**
 * Maps any error to the problem it shows the client. A ServiceError says its own status and code;
 * Fastify's own errors are client mistakes with a 4xx; anything else is a bug: a 500 whose body
 * reveals nothing internal but the request id its log lines carry.
 */
export function toProblem(error: FastifyError, requestId: string): Problem {
  if (error instanceof ServiceError) return problem(error.statusCode, error.code, error.message);
  if (error.validation) {
    return problem(422, 'VALIDATION_FAILED', 'The request is invalid; see errors', fieldErrors(error));
  }
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return problem(415, 'UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return problem(413, 'BODY_TOO_LARGE', 'The request body is larger than this service accepts');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return problem(400, 'EMPTY_BODY', 'The body is empty but its content type says JSON');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return problem(400, 'MALFORMED_JSON', 'The body is not valid JSON');
  }
  if (error instanceof SyntaxError && error.statusCode === 400) {
    return problem(400, 'MALFORMED_JSON', `The body is not valid JSON: ${error.message}`);
  }
  if (error.code === 'FST_UNDER_PRESSURE') {
    return problem(503, 'OVERLOADED', 'The service is at capacity; retry shortly');
  }
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    return problem(status, 'BAD_REQUEST', error.message);
  }
  return {
    ...problem(500, 'INTERNAL_ERROR', 'An unexpected error occurred; the log has the details under this request id'),
    request_id: requestId,
  };
}

function fieldErrors(error: FastifyError): FieldError[] {
  const location = error.validationContext ?? 'body';
  const byField = new Map<string, FieldError>();
  for (const issue of error.validation ?? []) {
    const field = fieldOf(issue);
    // A union (string or null) reports one error per branch: the first one is the useful one.
    if (!byField.has(field)) byField.set(field, { in: location, field, message: messageOf(issue) });
  }
  return [...byField.values()];
}

function fieldOf(issue: FastifySchemaValidationError): string {
  const path = issue.instancePath.split('/').slice(1).map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'));
  const missing = issue.params['missingProperty'];
  if (issue.keyword === 'required' && typeof missing === 'string') path.push(missing);
  return path.join('.');
}

function messageOf(issue: FastifySchemaValidationError): string {
  if (issue.keyword === 'pattern' && issue.params['pattern'] === STORABLE_TEXT_PATTERN) {
    return 'must not contain NUL characters or unpaired UTF-16 surrogates';
  }
  return issue.message ?? 'is invalid';
}

/** One error handler and one not-found handler for the whole service, both answering problems. */
export const errorHandling = fastifyPlugin(async function errorHandling(app: FastifyInstance) {
  // A second router that knows every route's methods, to tell "wrong method" (405) from "no such path" (404).
  const routesByMethod = FindMyWay();
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routesByMethod.on(method as FindMyWay.HTTPMethod, route.url, () => {});
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const body = toProblem(error, request.id);
    if (body.status >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ code: body.code, reason: error.message }, 'request rejected');
    return sendProblem(reply, body);
  });

  app.setNotFoundHandler((request, reply) => {
    const allowed = allowedMethods(routesByMethod, request);
    if (allowed.length > 0) {
      reply.header('allow', allowed.join(', '));
      return sendProblem(reply, problem(405, 'METHOD_NOT_ALLOWED', `${request.method} is not allowed here; use ${allowed.join(', ')}`));
    }
    return sendProblem(reply, problem(404, 'NOT_FOUND', 'No such resource'));
  });
});

/**
 * The methods a path answers to, when the request's is not one of them. When it is (a route that
 * found nothing, such as a missing static file), the answer is a 404, not a 405.
 */
function allowedMethods(router: FindMyWay.Instance<FindMyWay.HTTPVersion.V1>, request: FastifyRequest): string[] {
  const path = request.url.split('?', 1)[0] ?? '/';
  const allowed = METHODS.filter((method) => router.find(method as FindMyWay.HTTPMethod, path) !== null);
  return allowed.includes(request.method) ? [] : allowed;
}
