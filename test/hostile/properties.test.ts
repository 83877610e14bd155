import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { buildTestApp } from '../helpers/app.js';
import { createTestDatabase } from '../helpers/database.js';

/**
 * Property-based tests generated from the service's own OpenAPI document: for every operation it
 * lists, arbitrary requests (any JSON, extra keys, any unicode, hostile path and query text) must
 * get a documented status, never a 5xx, and a body that the documented schema accepts.
 *
 * The seed is fixed so that a failure reproduces; fast-check prints it with the failing path.
 * HOSTILE_SEED and HOSTILE_RUNS override them to explore further.
 */
const SEED = Number(process.env['HOSTILE_SEED'] ?? 20_261_129);
const RUNS = Number(process.env['HOSTILE_RUNS'] ?? 1_000);
const PROPERTY_TIMEOUT_MS = 60_000;

/** Statuses any route may answer whatever its document says: no such route or item, wrong method, body too large or not JSON. */
const ANY_ROUTE_STATUSES = new Set([404, 405, 413, 415]);

// ---------------------------------------------------------------------------------------------
// The parts of OpenAPI 3.1 this file reads
// ---------------------------------------------------------------------------------------------

type JsonSchema = Record<string, unknown>;

interface MediaType {
  schema?: JsonSchema;
}

interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  schema?: JsonSchema;
}

interface OperationObject {
  parameters?: Parameter[];
  requestBody?: { required?: boolean; content: Record<string, MediaType> };
  responses: Record<string, { content?: Record<string, MediaType> }>;
}

interface OpenApiDocument {
  openapi: string;
  components?: { schemas?: Record<string, JsonSchema> };
  paths: Record<string, Record<string, OperationObject>>;
}

interface Operation extends OperationObject {
  method: string;
  path: string;
  /** Where the operation sits in the document, as a JSON pointer. */
  pointer: string;
}

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

function operationsOf(document: OpenApiDocument): Operation[] {
  return Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => HTTP_METHODS.includes(method))
      .map(([method, operation]) => ({ ...operation, method: method.toUpperCase(), path, pointer: `/paths/${escapePointer(path)}/${method}` })),
  );
}

function escapePointer(segment: string): string {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1');
}

// ---------------------------------------------------------------------------------------------
// The service, its document, and validators compiled from it
// ---------------------------------------------------------------------------------------------

const database = await createTestDatabase();
const app: FastifyInstance = await buildTestApp(database.url);
const document = (await app.inject({ method: 'GET', url: '/openapi.json' })).json<OpenApiDocument>();
const operations = operationsOf(document);

afterAll(async () => {
  await app.close();
  await database.drop();
});

/**
 * The whole document is added to Ajv under one id, and each schema is compiled by its JSON
 * pointer into it, so a `$ref` into `#/components/…` resolves as it does for any OpenAPI reader.
 * OpenAPI 3.1 schemas are JSON Schema 2020-12.
 */
const DOCUMENT_ID = 'openapi.json';
const ajv = addFormats.default(new Ajv2020({ strict: false, allErrors: true }));
ajv.addSchema(document, DOCUMENT_ID);

function validatorAt(pointer: string): ValidateFunction {
  const fragment = pointer.split('/').map(encodeURIComponent).join('/');
  const validate = ajv.getSchema(`${DOCUMENT_ID}#${fragment}`);
  if (!validate) throw new Error(`no schema at ${pointer} in the OpenAPI document`);
  return validate;
}

function responseSchemaPointer(operation: Operation, key: string, mediaType: string): string {
  return `${operation.pointer}/responses/${escapePointer(key)}/content/${escapePointer(mediaType)}/schema`;
}

/** The Problem schema, for statuses a route answers without documenting them. */
const problemSchemaPointer = '/components/schemas/Problem';

/** The documented response key for a status: the exact code, else its range ('4XX'), else 'default'. */
function documentedKey(operation: Operation, status: number): string | undefined {
  const candidates = [String(status), `${String(status)[0]}XX`, 'default'];
  return candidates.find((key) => key in operation.responses);
}

/** A url that reached no route after all (`/items/..`): the not-found handler's problem, not the operation's. */
function answeredWithoutRoute(response: LightMyRequestResponse): boolean {
  return response.statusCode === 404 && response.body.includes('"code":"NOT_FOUND"');
}

function expectDocumentedResponse(operation: Operation, response: LightMyRequestResponse): void {
  const contentType = String(response.headers['content-type']);
  const context = `${operation.method} ${operation.path} → ${response.statusCode} ${contentType} ${response.body.slice(0, 300)}`;
  expect(response.statusCode, context).toBeLessThan(500);
  const key = answeredWithoutRoute(response) ? undefined : documentedKey(operation, response.statusCode);
  expect(key !== undefined || ANY_ROUTE_STATUSES.has(response.statusCode), `undocumented status: ${context}`).toBe(true);

  const documented = key === undefined ? undefined : operation.responses[key];
  if (documented && !documented.content) {
    expect(response.body, `a response without content has a body: ${context}`).toBe('');
    return;
  }
  const mediaType = contentType.split(';')[0]!.trim();
  let pointer = problemSchemaPointer;
  if (key !== undefined) {
    expect(Object.keys(documented!.content!), `undocumented content type: ${context}`).toContain(mediaType);
    pointer = responseSchemaPointer(operation, key, mediaType);
  } else {
    expect(mediaType, context).toBe('application/problem+json');
  }
  const validate = validatorAt(pointer);
  const body: unknown = JSON.parse(response.body);
  expect(validate(body), `${ajv.errorsText(validate.errors)}: ${context}`).toBe(true);
  if (response.statusCode >= 400) expect((body as { status: unknown }).status, context).toBe(response.statusCode);
}

// ---------------------------------------------------------------------------------------------
// Arbitraries: values a schema allows, and the hostile ones around them
// ---------------------------------------------------------------------------------------------

/** The schema a `$ref` into the document's components names. */
function componentAt(reference: string): JsonSchema {
  const name = reference.replace('#/components/schemas/', '');
  const schema = document.components?.schemas?.[name];
  if (!schema) throw new Error(`no component for ${reference}`);
  return schema;
}

/** Any unicode text: whole graphemes, or any code point at all (NUL, lone surrogates included). */
function anyText(constraints: { minLength?: number; maxLength?: number } = {}): fc.Arbitrary<string> {
  return fc.oneof(fc.string({ unit: 'grapheme', ...constraints }), fc.string({ unit: 'binary', ...constraints }));
}

/** Values that a JSON schema (the subset the document uses) allows, with its length limits probed at the edges. */
function valuesOf(schema: JsonSchema | undefined): fc.Arbitrary<unknown> {
  if (!schema) return fc.jsonValue();
  if (typeof schema['$ref'] === 'string') return valuesOf(componentAt(schema['$ref']));
  const union = (schema['anyOf'] ?? schema['oneOf']) as JsonSchema[] | undefined;
  if (union) return fc.oneof(...union.map(valuesOf));
  if (Array.isArray(schema['enum'])) return fc.constantFrom(...(schema['enum'] as unknown[]));
  switch (schema['type']) {
    case 'object':
      return objectsOf(schema);
    case 'string': {
      const minLength = (schema['minLength'] as number | undefined) ?? 0;
      const maxLength = (schema['maxLength'] as number | undefined) ?? 1_000;
      return fc.oneof(
        { arbitrary: anyText({ minLength, maxLength }), weight: 4 },
        { arbitrary: anyText({ minLength: Math.max(0, maxLength - 1), maxLength: maxLength + 1 }), weight: 1 },
        { arbitrary: matching(schema['pattern'], minLength, maxLength), weight: 2 },
      );
    }
    case 'integer': {
      const min = BigInt((schema['minimum'] as number | undefined) ?? Number.MIN_SAFE_INTEGER);
      const max = BigInt((schema['maximum'] as number | undefined) ?? Number.MAX_SAFE_INTEGER);
      return fc.oneof(fc.bigInt({ min, max: min + 20n < max ? min + 20n : max }), fc.bigInt({ min, max })).map(Number);
    }
    case 'number':
      return fc.double({ noNaN: true });
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array':
      return fc.array(valuesOf(schema['items'] as JsonSchema | undefined), { maxLength: 5 });
    default:
      return fc.jsonValue();
  }
}

/** Text that the schema's pattern accepts, when there is one, within its length limits (counted in code points). */
function matching(pattern: unknown, minLength: number, maxLength: number): fc.Arbitrary<string> {
  if (typeof pattern !== 'string') return anyText({ minLength, maxLength });
  return fc.stringMatching(new RegExp(pattern, 'u')).filter((text) => {
    const length = [...text].length;
    return length >= minLength && length <= maxLength;
  });
}

function objectsOf(schema: JsonSchema): fc.Arbitrary<Record<string, unknown>> {
  const properties = (schema['properties'] ?? {}) as Record<string, JsonSchema>;
  const required = (schema['required'] ?? []) as string[];
  const model = Object.fromEntries(Object.entries(properties).map(([name, property]) => [name, valuesOf(property)]));
  return fc.record(model, { requiredKeys: required });
}

/** Scalars that break parsers and coercions: signs, exponents, hex, blanks, huge and empty values. */
const hostileScalar = fc.constantFrom(
  '', ' ', '0', '-0', '-1', '1.5', '1e3', '1e400', '-1e400', '0x10', '+1', '01', ' 1', '1 ', 'NaN', 'Infinity', 'null', 'true',
  '9007199254740992', '9223372036854775808', '123456789012345678901234567890', '١٢٣', '\u0000', '%', '..', '__proto__',
);

/**
 * Text for a URL: the UTF-8 bytes of any string, percent-encoded, as a client sends it (a lone
 * surrogate cannot be encoded in UTF-8, so it arrives as U+FFFD). Always well-formed: malformed
 * percent-encoding gets the router's own answer before the app's, which the corpus covers ('%zz').
 */
function urlText(text: string): string {
  return encodeURIComponent(Buffer.from(text, 'utf8').toString('utf8'));
}

/** A parameter's value as text: one its schema allows, an id that exists, a hostile scalar, any number or text. */
function parameterText(parameter: Parameter, existingIds: number[], maxTextLength: number): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: valuesOf(parameter.schema).map(String), weight: 4 },
    { arbitrary: fc.constantFrom(...existingIds).map(String), weight: parameter.name === 'id' ? 4 : 1 },
    { arbitrary: hostileScalar, weight: 2 },
    { arbitrary: fc.oneof(fc.integer(), fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }), fc.double()).map(String), weight: 1 },
    { arbitrary: anyText({ maxLength: maxTextLength }), weight: 2 },
  );
}

/**
 * Path segments stay under find-my-way's maxParamLength (100 characters once encoded): longer ones
 * get the router's own 414 answer, which the corpus covers ('101 digits'). Eight code points
 * encode to at most 8 × 12 characters.
 */
const PATH_TEXT_MAX_LENGTH = 8;

function pathOf(operation: Operation, existingIds: number[]): fc.Arbitrary<string> {
  const parameters = (operation.parameters ?? []).filter((parameter) => parameter.in === 'path');
  return fc
    .tuple(...parameters.map((parameter) => parameterText(parameter, existingIds, PATH_TEXT_MAX_LENGTH)))
    .map((values) =>
      parameters.reduce((path, parameter, index) => path.replace(`{${parameter.name}}`, urlText(values[index]!)), operation.path),
    );
}

function queryOf(operation: Operation, existingIds: number[]): fc.Arbitrary<string> {
  const parameters = (operation.parameters ?? []).filter((parameter) => parameter.in === 'query');
  const documented = parameters.map((parameter) =>
    fc.option(parameterText(parameter, existingIds, 20).map((value): [string, string] => [parameter.name, value]), { nil: undefined }),
  );
  const names = parameters.map((parameter) => parameter.name);
  const trickyNames = fc.constantFrom('__proto__', 'constructor', ...names, ...names.map((name) => `${name}[]`));
  const extraName = fc.oneof(anyText({ maxLength: 10 }), trickyNames);
  const extra = fc.array(fc.tuple(extraName, anyText({ maxLength: 10 })), { maxLength: 3 });
  return fc.tuple(fc.tuple(...documented), extra).map(([known, unknown]) => {
    const pairs = [...known.filter((pair) => pair !== undefined), ...unknown];
    return pairs.length === 0 ? '' : `?${pairs.map(([name, value]) => `${urlText(name)}=${urlText(value)}`).join('&')}`;
  });
}

/** Header parameters, each present or not: a value its schema allows, or any printable ASCII (what a header can carry). */
function headersOf(operation: Operation): fc.Arbitrary<Record<string, string>> {
  const parameters = (operation.parameters ?? []).filter((parameter) => parameter.in === 'header');
  const value = (parameter: Parameter) =>
    fc.oneof(valuesOf(parameter.schema).map(String), fc.string({ unit: 'grapheme-ascii', maxLength: 300 }), hostileScalar);
  const headers = parameters.map((parameter) =>
    fc.option(value(parameter).map((text): [string, string] => [parameter.name.toLowerCase(), headerSafe(text)]), { nil: undefined }),
  );
  return fc.tuple(...headers).map((pairs) => Object.fromEntries(pairs.filter((pair) => pair !== undefined)));
}

/** What a header value can carry at all (tab, visible ASCII and Latin-1); a client could not send the rest. */
function headerSafe(text: string): string {
  return text.replace(/[^\t\x20-\x7e\x80-\xff]/g, '?');
}

interface Body {
  payload: string;
  contentType: string | undefined;
}

/** Bodies for an operation that takes one: mostly what its schema allows, with extra keys, any JSON, or not JSON at all. */
function bodyOf(operation: Operation): fc.Arbitrary<Body | undefined> {
  if (!operation.requestBody) return fc.constant(undefined);
  const schema = operation.requestBody.content['application/json']?.schema;
  const extraKey = fc.oneof(anyText({ maxLength: 10 }), fc.constantFrom('__proto__', 'constructor', 'prototype', 'id'));
  const extraKeys = fc.dictionary(extraKey, fc.jsonValue(), { maxKeys: 3 });
  const json = fc.oneof(
    { arbitrary: valuesOf(schema), weight: 4 },
    { arbitrary: fc.tuple(valuesOf(schema), extraKeys).map(([value, extra]) => ({ ...extra, ...(value as object) })), weight: 2 },
    { arbitrary: fc.jsonValue(), weight: 2 },
  );
  const contentType = fc.oneof(
    { arbitrary: fc.constant('application/json'), weight: 8 },
    { arbitrary: fc.constantFrom('application/json; charset=utf-8', 'text/plain', 'application/xml', 'APPLICATION/JSON', undefined), weight: 1 },
  );
  const payload = fc.oneof(
    { arbitrary: json.map((value) => JSON.stringify(value) ?? 'null'), weight: 5 },
    { arbitrary: anyText({ maxLength: 30 }), weight: 1 },
  );
  return fc.record({ payload, contentType });
}

function takesInput(operation: Operation): boolean {
  return (operation.parameters ?? []).length > 0 || operation.requestBody !== undefined;
}

function requestsFor(operation: Operation, existingIds: number[]): fc.Arbitrary<InjectOptions> {
  return fc
    .record({
      path: pathOf(operation, existingIds),
      query: queryOf(operation, existingIds),
      headers: headersOf(operation),
      body: bodyOf(operation),
    })
    .map(({ path, query, headers, body }) => ({
      method: operation.method,
      url: path + query,
      headers: { ...headers, ...(body?.contentType !== undefined && { 'content-type': body.contentType }) },
      ...(body && { payload: body.payload }),
    }));
}

// ---------------------------------------------------------------------------------------------
// The properties
// ---------------------------------------------------------------------------------------------

/** Items for generated ids to find, so that 2xx answers are exercised as well as 4xx ones. */
async function seedItems(count: number): Promise<number[]> {
  const ids: number[] = [];
  for (let index = 0; index < count; index++) {
    const payload = { name: `seed ${index}`, description: index % 2 ? null : 'd' };
    const response = await app.inject({ method: 'POST', url: '/items', payload });
    ids.push(response.json<{ id: number }>().id);
  }
  return ids;
}
const existingIds = await seedItems(20);

describe('every operation of the OpenAPI document, under arbitrary requests', () => {
  it('lists the operations this file expects to exercise', () => {
    expect(document.openapi).toMatch(/^3\.1/);
    expect(operations.map((operation) => `${operation.method} ${operation.path}`)).toEqual(
      expect.arrayContaining(['GET /items', 'POST /items', 'GET /items/{id}', 'PATCH /items/{id}', 'DELETE /items/{id}']),
    );
  });

  it.each(operations.map((operation) => [`${operation.method} ${operation.path}`, operation] as const))(
    '%s: never a 5xx, always a documented status, and a body its documented schema accepts',
    async (_name, operation) => {
      const statuses = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(requestsFor(operation, existingIds), async (request) => {
          const response = await app.inject(request);
          statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
          expectDocumentedResponse(operation, response);
        }),
        { seed: SEED, numRuns: RUNS },
      );
      // The arbitraries reached the documented success, and a refusal wherever there is input to refuse.
      const seen = `statuses seen: ${JSON.stringify([...statuses])}`;
      const documentedSuccess = Object.keys(operation.responses).find((key) => key.startsWith('2'));
      if (documentedSuccess) expect([...statuses.keys()], seen).toContain(Number(documentedSuccess));
      if (takesInput(operation)) expect([...statuses.keys()].some((status) => status >= 400), seen).toBe(true);
      if (process.env['HOSTILE_VERBOSE']) console.log(`${operation.method} ${operation.path}: ${seen}`);
    },
    PROPERTY_TIMEOUT_MS,
  );
});

describe('the validators compiled from the document', () => {
  // Guards the properties above against a validator that accepts anything (a wrong pointer, a lost $ref).
  it('reject bodies that are not what the document declares', () => {
    const problem = validatorAt(problemSchemaPointer);
    expect(problem({ type: 'about:blank', title: 'Bad Request', status: 400, detail: 'd', code: 'BAD_REQUEST' })).toBe(true);
    expect(problem({ type: 'about:blank', title: 'Bad Request', status: 400, detail: 'd', code: 'NOT_A_CODE' })).toBe(false);
    expect(problem({ error: 'Bad Request', message: 'Client Error', statusCode: 400 })).toBe(false);
    const readItem = operations.find((operation) => operation.method === 'GET' && operation.path === '/items/{id}')!;
    const item = validatorAt(responseSchemaPointer(readItem, '200', 'application/json'));
    const valid = { id: 1, name: 'x', description: null, created_at: '2026-01-01T00:00:00.000Z', updated_at: '2026-01-01T00:00:00.000Z' };
    expect(item(valid)).toBe(true);
    expect(item({ ...valid, id: 0 })).toBe(false);
    expect(item({ ...valid, created_at: 'yesterday' })).toBe(false);
    expect(item({ ...valid, extra: true })).toBe(false);
  });
});

describe('creation against the documented request schema', () => {
  const create = operations.find((operation) => operation.method === 'POST' && operation.path === '/items')!;
  const acceptsBody = validatorAt(`${create.pointer}/requestBody/content/application~1json/schema`);
  const fields = fc.record(
    { name: anyText({ maxLength: 260 }), description: fc.option(anyText({ maxLength: 50 }), { nil: null }) },
    { requiredKeys: ['name'] },
  );

  it(
    'creates exactly the bodies the document accepts (201, else 422) and returns their text verbatim',
    async () => {
      await fc.assert(
        fc.asyncProperty(fields, async (body) => {
          const response = await app.inject({ method: 'POST', url: '/items', payload: body });
          const context = `${JSON.stringify(body)} → ${response.statusCode} ${response.body.slice(0, 300)}`;
          if (!acceptsBody(body)) {
            expect(response.statusCode, context).toBe(422);
            return;
          }
          expect(response.statusCode, context).toBe(201);
          const created = response.json<{ id: number }>();
          expect(created, context).toMatchObject({ name: body.name, description: body.description ?? null });
          const read = await app.inject({ method: 'GET', url: `/items/${created.id}` });
          expect(read.json(), context).toEqual(created);
        }),
        { seed: SEED, numRuns: RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );
});
