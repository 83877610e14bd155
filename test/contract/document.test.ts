import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentText, OPENAPI_FILE } from '../../scripts/contract-files.js';
import { ERROR_CODES } from '../../src/errors.js';
import { buildTestApp } from '../helpers/app.js';
import { takeViolations } from '../helpers/contract.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

/** The OpenAPI document the service serves: linted, committed, complete, and checked against what the service does. */

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- untyped JSON, read as the tests read response bodies
type JsonObject = Record<string, any>;

let database: TestDatabase;
let app: FastifyInstance;
let document: JsonObject;

beforeAll(async () => {
  database = await createTestDatabase();
  app = await buildTestApp(database.url);
  document = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
});

afterAll(async () => {
  await app?.close();
  await database?.drop();
});

const OPERATIONS = {
  listItems: ['get', '/items'],
  createItem: ['post', '/items'],
  getItem: ['get', '/items/{id}'],
  updateItem: ['patch', '/items/{id}'],
  deleteItem: ['delete', '/items/{id}'],
  getHealth: ['get', '/healthz'],
  getReadiness: ['get', '/readyz'],
} as const;

type OperationId = keyof typeof OPERATIONS;

const operation = (id: OperationId): JsonObject => {
  const [method, route] = OPERATIONS[id];
  return document['paths'][route][method];
};

/** Each operation's statuses and, for each problem status, its codes. */
const RESPONSES: Record<OperationId, Record<string, string[]>> = {
  listItems: { 200: [], 422: ['VALIDATION_FAILED'], 429: ['RATE_LIMITED'], 500: ['INTERNAL_ERROR'], 503: ['OVERLOADED', 'DATABASE_UNAVAILABLE'] },
  createItem: {
    201: [],
    400: ['MALFORMED_JSON', 'EMPTY_BODY', 'INVALID_UTF8', 'BAD_REQUEST'],
    401: ['UNAUTHORIZED'],
    413: ['BODY_TOO_LARGE'],
    415: ['UNSUPPORTED_MEDIA_TYPE'],
    422: ['VALIDATION_FAILED', 'UNSTORABLE_VALUE', 'IDEMPOTENCY_KEY_REUSED'],
    429: ['RATE_LIMITED'],
    500: ['INTERNAL_ERROR'],
    503: ['OVERLOADED', 'DATABASE_UNAVAILABLE', 'OUTCOME_UNKNOWN'],
  },
  getItem: {
    200: [],
    404: ['ITEM_NOT_FOUND'],
    422: ['VALIDATION_FAILED'],
    429: ['RATE_LIMITED'],
    500: ['INTERNAL_ERROR'],
    503: ['OVERLOADED', 'DATABASE_UNAVAILABLE'],
  },
  updateItem: {
    200: [],
    400: ['MALFORMED_JSON', 'EMPTY_BODY', 'INVALID_UTF8', 'BAD_REQUEST'],
    401: ['UNAUTHORIZED'],
    404: ['ITEM_NOT_FOUND'],
    413: ['BODY_TOO_LARGE'],
    415: ['UNSUPPORTED_MEDIA_TYPE'],
    422: ['VALIDATION_FAILED', 'UNSTORABLE_VALUE'],
    429: ['RATE_LIMITED'],
    500: ['INTERNAL_ERROR'],
    503: ['OVERLOADED', 'DATABASE_UNAVAILABLE', 'OUTCOME_UNKNOWN'],
  },
  deleteItem: {
    204: [],
    400: ['MALFORMED_JSON', 'EMPTY_BODY', 'INVALID_UTF8', 'BAD_REQUEST'],
    401: ['UNAUTHORIZED'],
    404: ['ITEM_NOT_FOUND'],
    413: ['BODY_TOO_LARGE'],
    415: ['UNSUPPORTED_MEDIA_TYPE'],
    422: ['VALIDATION_FAILED'],
    429: ['RATE_LIMITED'],
    500: ['INTERNAL_ERROR'],
    503: ['OVERLOADED', 'DATABASE_UNAVAILABLE', 'OUTCOME_UNKNOWN'],
  },
  getHealth: { 200: [], 431: ['HEADERS_TOO_LARGE'] },
  getReadiness: { 200: [], 431: ['HEADERS_TOO_LARGE'], 503: ['NOT_READY'] },
};

describe('the OpenAPI document at /openapi.json', () => {
  it("passes Redocly's recommended ruleset with no error and no warning", async () => {
    const folder = await mkdtemp(path.join(tmpdir(), 'fastify-sqlasync-redocly-'));
    try {
      const file = path.join(folder, 'openapi.json');
      await writeFile(file, JSON.stringify(document));
      const report = await redoclyLint(file, folder);
      const problems = report.problems.map((problem) => `${problem.severity} ${problem.ruleId}: ${problem.message} at ${problem.location[0]?.pointer}`);
      expect(problems).toEqual([]);
      expect(report.totals).toEqual({ errors: 0, warnings: 0, ignored: 0 });
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });

  it('is the committed openapi.json, byte for byte', async () => {
    const committed = await readFile(OPENAPI_FILE, 'utf8').catch(() => '(missing)');
    const served = documentText(document);
    expect(committed === served, 'openapi.json differs from the document the service serves: run `npm run openapi` and commit openapi.json').toBe(true);
  });

  it('names every operation with a stable operationId', () => {
    const found: Record<string, string[]> = {};
    for (const [route, item] of Object.entries(document['paths'] as Record<string, JsonObject>)) {
      for (const [method, { operationId }] of Object.entries(item)) found[operationId] = [method, route];
    }
    expect(found).toEqual(OPERATIONS);
  });

  it('defines each shared schema once, under components, and refers to it everywhere else', () => {
    expect(Object.keys(document['components']['schemas']).sort()).toEqual(['FieldError', 'Item', 'ItemCreate', 'ItemUpdate', 'Problem', 'ValidationProblem']);
    expect(document['components']['schemas']['Problem']['properties']['code']['enum']).toEqual(ERROR_CODES);
    expect(document['components']['schemas']['ValidationProblem']['required']).toContain('errors');
    // Outside components, no schema spells out an item's or a problem's members again.
    const inline = objectsWithin(document['paths']).filter((schema) => schema['properties']?.['created_at'] || schema['properties']?.['detail']);
    expect(inline).toEqual([]);
    expect(operation('createItem')['requestBody']['content']['application/json']['schema']).toEqual({ $ref: '#/components/schemas/ItemCreate' });
    expect(operation('updateItem')['requestBody']['content']['application/json']['schema']).toEqual({ $ref: '#/components/schemas/ItemUpdate' });
    expect(operation('getItem')['responses']['200']['content']['application/json']['schema']).toEqual({ $ref: '#/components/schemas/Item' });
    expect(operation('listItems')['responses']['200']['content']['application/json']['schema']).toMatchObject({
      type: 'array',
      items: { $ref: '#/components/schemas/Item' },
    });
  });

  it.each(Object.keys(OPERATIONS) as OperationId[])('%s: documents each status it answers, its codes, and an example of each', (id) => {
    const responses = operation(id)['responses'] as Record<string, JsonObject>;
    expect(Object.keys(responses).sort()).toEqual(Object.keys(RESPONSES[id]).sort());
    const ajv = addFormats.default(new Ajv2020({ strict: false }));
    ajv.addSchema(document, 'openapi.json');
    for (const [status, codes] of Object.entries(RESPONSES[id])) {
      const response = responses[status]!;
      expect(response['headers'], `${status} names its x-request-id`).toHaveProperty('x-request-id');
      if (status === '204') {
        expect(response['content']).toBeUndefined();
        continue;
      }
      const [[mediaType, media]] = Object.entries(response['content'] as Record<string, JsonObject>) as [[string, JsonObject]];
      expect(mediaType).toBe(Number(status) >= 400 ? 'application/problem+json' : 'application/json');
      const examples = media['examples'] ? Object.values(media['examples'] as Record<string, { value: unknown }>).map(({ value }) => value) : [media['example']];
      expect(examples.length, `${status} has an example`).toBeGreaterThan(0);
      const validate = ajv.compile({ $ref: `openapi.json#/paths/${pointerSegment(OPERATIONS[id][1])}/${OPERATIONS[id][0]}/responses/${status}/content/${pointerSegment(mediaType)}/schema` });
      for (const example of examples) expect(validate(example), `${status} example ${JSON.stringify(example)}: ${ajv.errorsText(validate.errors)}`).toBe(true);
      if (codes.length === 0) continue;
      // One example per code, and the schema takes those codes and no other.
      expect(Object.keys(media['examples'] as object)).toEqual(codes);
      for (const code of ERROR_CODES) {
        const body = { type: 'about:blank', title: 'Title', status: Number(status), detail: 'Detail', code };
        const sent = code === 'VALIDATION_FAILED' ? { ...body, errors: [{ in: 'body', field: 'name', message: 'is invalid' }] } : body;
        expect(validate(sent), `${status} with ${code}`).toBe(codes.includes(code));
      }
    }
  });

  it('documents the headers the API relies on', () => {
    const headersOf = (id: OperationId, status: number) => Object.keys(operation(id)['responses'][status]['headers']);
    expect(headersOf('listItems', 200)).toEqual(expect.arrayContaining(['Link', 'x-request-id', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset']));
    expect(headersOf('createItem', 201)).toEqual(expect.arrayContaining(['Location', 'Idempotent-Replayed', 'x-request-id']));
    for (const id of ['listItems', 'createItem', 'getItem', 'updateItem', 'deleteItem'] as const) {
      expect(headersOf(id, 503)).toContain('Retry-After');
      expect(headersOf(id, 429)).toEqual(expect.arrayContaining(['Retry-After', 'x-ratelimit-limit']));
    }
    expect(headersOf('createItem', 401)).toContain('WWW-Authenticate');
    expect(headersOf('getReadiness', 503)).toContain('Retry-After');
    expect(operation('createItem')['parameters']).toEqual([
      expect.objectContaining({ in: 'header', name: 'idempotency-key', required: false, schema: expect.objectContaining({ type: 'string', maxLength: 255 }) }),
    ]);
  });

  it('asks for the bearer API key on the writes only, and says when it applies', () => {
    expect(document['components']['securitySchemes']).toEqual({
      apiKey: { type: 'http', scheme: 'bearer', description: expect.stringContaining('API_KEYS') },
    });
    const security = Object.fromEntries((Object.keys(OPERATIONS) as OperationId[]).map((id) => [id, operation(id)['security']]));
    expect(security).toEqual({
      listItems: [],
      createItem: [{ apiKey: [] }],
      getItem: [],
      updateItem: [{ apiKey: [] }],
      deleteItem: [{ apiKey: [] }],
      getHealth: [],
      getReadiness: [],
    });
  });

  it('names a relative server and the license of package.json', async () => {
    const { license } = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'));
    expect(license).toBe('MIT');
    expect(document['info']['license']).toEqual({ name: 'MIT', identifier: 'MIT' });
    expect(document['servers']).toEqual([{ url: '/', description: 'This service' }]);
  });
});

describe('serialization with shared schemas', () => {
  it('serializes GET /items with the route schema, compiled with its $refs (unknown members dropped)', async () => {
    const serializers: ((payload: unknown) => string)[] = [];
    const probe = await buildTestApp(database.url);
    try {
      probe.addHook('onSend', async (request, reply, payload) => {
        if (request.method === 'GET' && request.routeOptions.url === '/items') serializers.push(reply.getSerializationFunction('200') as (payload: unknown) => string);
        return payload;
      });
      const created = await probe.inject({ method: 'POST', url: '/items', payload: { name: 'serialized', description: null } });
      const item = created.json();
      const listed = await probe.inject({ method: 'GET', url: `/items?after=${item.id - 1}&limit=1` });

      expect(listed.json()).toEqual([item]);
      const [serialize] = serializers;
      expect(serialize, 'a serializer compiled from the route schema').toBeTypeOf('function');
      expect(serialize!([item])).toBe(listed.body);
      // fast-json-stringify writes what the schema lists, in its order; JSON.stringify would keep `secret`.
      expect(serialize!([{ secret: 'not for clients', ...item }])).toBe(JSON.stringify([item]));
    } finally {
      await probe.close();
    }
  });
});

describe('the contract check on every test response (test/helpers/contract.ts)', () => {
  it('records responses the document does not describe: a status, a member, a code, a content type', async () => {
    const mutant = await buildTestApp(database.url);
    try {
      // Hooks that break responses after the handler, before the check sees them (it runs last, in onSend).
      mutant.addHook('preSerialization', async (request, reply, payload: JsonObject) => {
        const mutation = request.headers['x-mutation'];
        if (mutation === 'status') reply.code(202);
        if (mutation === 'member') return { ...payload, extra: true };
        if (mutation === 'code') return { ...payload, code: 'NOT_FOUND' };
        if (mutation === 'content-type') reply.type('application/json');
        return payload;
      });
      const item = (await mutant.inject({ method: 'POST', url: '/items', payload: { name: 'mutated' } })).json();
      expect(takeViolations()).toEqual([]);

      await mutant.inject({ method: 'GET', url: `/items/${item.id}`, headers: { 'x-mutation': 'status' } });
      await mutant.inject({ method: 'GET', url: '/no/such/path', headers: { 'x-mutation': 'member' } });
      await mutant.inject({ method: 'GET', url: '/items/999999', headers: { 'x-mutation': 'code' } });
      await mutant.inject({ method: 'GET', url: '/items/999999', headers: { 'x-mutation': 'content-type' } });
      await mutant.inject({ method: 'GET', url: '/no/such/path', headers: { 'x-mutation': 'content-type' } });

      expect(takeViolations().map((violation) => violation.replace(/ → .*/, ''))).toEqual([
        'a status the document does not list for this operation: GET /items/:id',
        "a body the document's schema refuses (data must NOT have additional properties): GET (no route)",
        expect.stringMatching(/^a body the document's schema refuses \(.*must be equal to one of the allowed values.*\): GET \/items\/:id$/),
        'a content type the document does not list (application/problem+json): GET /items/:id',
        'an error that is not application/problem+json: GET (no route)',
      ]);
    } finally {
      await mutant.close();
    }
  });
});

interface RedoclyReport {
  totals: { errors: number; warnings: number; ignored: number };
  problems: { ruleId: string; severity: string; message: string; location: { pointer: string }[] }[];
}

/** Redocly CLI's lint with its recommended rules, as a reviewer would run it; exits non-zero on errors. */
async function redoclyLint(file: string, cwd: string): Promise<RedoclyReport> {
  const cli = path.resolve('node_modules/@redocly/cli/bin/cli.js');
  const args = [cli, 'lint', file, '--extends=recommended', '--format=json'];
  // No telemetry, no update check: nothing leaves the machine.
  const env = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' };
  const { stdout } = await promisify(execFile)(process.execPath, args, { cwd, env, maxBuffer: 10 * 1024 * 1024 }).catch(
    (error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }),
  );
  return JSON.parse(stdout) as RedoclyReport;
}

function pointerSegment(segment: string): string {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1');
}

/** Every object nested in a value. */
function objectsWithin(value: unknown): JsonObject[] {
  if (typeof value !== 'object' || value === null) return [];
  const children = Object.values(value).flatMap(objectsWithin);
  return Array.isArray(value) ? children : [value, ...children];
}
