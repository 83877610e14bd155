import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';

/**
 * The contract is what the code does: every response an app built by the test helper gives, in
 * any test, is checked against the OpenAPI document that app serves. An operation's response
 * must have a documented status and content type and a body its schema accepts; an error on any
 * other path (404, 405, a refused url) must be a Problem. What does not fit is recorded here, and
 * test/setup/contract.ts fails the test that caused it.
 */

type JsonObject = Record<string, unknown>;

export interface Exchange {
  method: string;
  /** The route's pattern (`/items/:id`), or undefined when no route matched. */
  route: string | undefined;
  status: number;
  contentType: string | undefined;
  /** The body as sent, or undefined when it is a stream (a static file). */
  body: string | undefined;
}

const DOCUMENT_ID = 'openapi.json';
const PROBLEM_POINTER = '/components/schemas/Problem';

/** One Ajv for the process, for as long as the apps serve the same document (they all do). */
let compiled: { text: string; document: JsonObject; ajv: Ajv2020; validators: Map<string, ValidateFunction> } | undefined;

export function useDocument(document: JsonObject): void {
  const text = JSON.stringify(document);
  if (compiled?.text === text) return;
  const ajv = addFormats.default(new Ajv2020({ strict: false, allErrors: true }));
  ajv.addSchema(document, DOCUMENT_ID);
  compiled = { text, document, ajv, validators: new Map() };
}

function validatorAt(pointer: string): ValidateFunction {
  if (!compiled) throw new Error('no OpenAPI document to check against: call useDocument first');
  let validate = compiled.validators.get(pointer);
  if (!validate) {
    const fragment = pointer.split('/').map(encodeURIComponent).join('/');
    validate = compiled.ajv.getSchema(`${DOCUMENT_ID}#${fragment}`);
    if (!validate) throw new Error(`no schema at ${pointer} in the OpenAPI document`);
    compiled.validators.set(pointer, validate);
  }
  return validate;
}

const escapePointer = (segment: string) => segment.replaceAll('~', '~0').replaceAll('/', '~1');

/** Fastify's `/items/:id` is OpenAPI's `/items/{id}`. */
const openApiPath = (route: string) => route.replace(/:(\w+)/g, '{$1}');

/** What is wrong with a response, measured against the document; an empty list when nothing is. */
export function contractViolations(exchange: Exchange): string[] {
  if (!compiled) throw new Error('no OpenAPI document to check against: call useDocument first');
  const { method, route, status, body } = exchange;
  const mediaType = exchange.contentType?.split(';', 1)[0]!.trim().toLowerCase();
  const where = `${method} ${route ?? '(no route)'} → ${status} ${exchange.contentType ?? '(no content type)'} ${body?.slice(0, 300) ?? '(stream)'}`;
  // HEAD is GET without a body.
  const operationMethod = method === 'HEAD' ? 'get' : method.toLowerCase();
  const paths = compiled.document['paths'] as Record<string, Record<string, JsonObject>>;
  const path = route === undefined ? undefined : openApiPath(route);
  const operation = path === undefined ? undefined : paths[path]?.[operationMethod];

  if (!operation) {
    // Not an operation of the document (no such route or method, the docs, /metrics): an error
    // must still be a Problem.
    if (status < 400) return [];
    if (mediaType !== 'application/problem+json') return [`an error that is not application/problem+json: ${where}`];
    return bodyViolations(PROBLEM_POINTER, status, body, where);
  }

  const responses = operation['responses'] as Record<string, JsonObject>;
  const key = [String(status), `${String(status)[0]}XX`, 'default'].find((candidate) => candidate in responses);
  if (key === undefined) return [`a status the document does not list for this operation: ${where}`];
  const content = responses[key]!['content'] as Record<string, JsonObject> | undefined;
  // No body goes out with HEAD, 204 or 304, whatever the handler passed on.
  if (method === 'HEAD' || status === 204 || status === 304) return [];
  if (!content) return body ? [`a body where the document says there is none: ${where}`] : [];
  if (mediaType === undefined || !(mediaType in content)) {
    return [`a content type the document does not list (${Object.keys(content).join(', ')}): ${where}`];
  }
  const pointer = `/paths/${escapePointer(path!)}/${operationMethod}/responses/${key}/content/${escapePointer(mediaType)}/schema`;
  return bodyViolations(pointer, status, body, where);
}

function bodyViolations(pointer: string, status: number, body: string | undefined, where: string): string[] {
  if (body === undefined) return [`a stream where the document describes a body: ${where}`];
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return [`a body that is not JSON: ${where}`];
  }
  const validate = validatorAt(pointer);
  if (!validate(value)) return [`a body the document's schema refuses (${compiled!.ajv.errorsText(validate.errors)}): ${where}`];
  if (status >= 400 && (value as { status?: unknown }).status !== status) return [`a problem whose status is not the response's: ${where}`];
  return [];
}

const recorded: string[] = [];

/** The violations recorded since the last call, which forgets them. */
export function takeViolations(): string[] {
  return recorded.splice(0);
}

/** Checks every response `app` sends against the document it serves (see test/setup/contract.ts). */
export function checkResponsesAgainstDocument(app: FastifyInstance): void {
  app.addHook('onReady', async () => useDocument(app.swagger() as JsonObject));
  app.addHook('onSend', async (request, reply, payload) => {
    const body = typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString('utf8') : payload == null ? '' : undefined;
    const contentType = reply.getHeader('content-type');
    recorded.push(
      ...contractViolations({
        method: request.method,
        // A route found (the 404 handler's has no url).
        route: request.routeOptions.url,
        status: reply.statusCode,
        contentType: typeof contentType === 'string' ? contentType : undefined,
        body,
      }),
    );
    return payload;
  });
}
