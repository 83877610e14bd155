import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp } from '../helpers/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { freePort } from '../helpers/ports.js';

let database: TestDatabase;
let app: FastifyInstance;

beforeAll(async () => {
  database = await createTestDatabase();
  app = await buildTestApp(database.url, { BODY_LIMIT: '4096' });
});

afterAll(async () => {
  await app?.close();
  await database?.drop();
});

const PROBLEM = 'application/problem+json; charset=utf-8';

describe('request bodies that are not acceptable JSON', () => {
  it.each([
    ['{"name":', 'MALFORMED_JSON'],
    ['{"name": "x",}', 'MALFORMED_JSON'],
    ["{'name': 'x'}", 'MALFORMED_JSON'],
    ['', 'EMPTY_BODY'],
  ])('answers 400 for %j', async (payload, code) => {
    const response = await app.inject({ method: 'POST', url: '/items', payload, headers: { 'content-type': 'application/json' } });
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toBe(PROBLEM);
    expect(response.json()).toMatchObject({ type: 'about:blank', title: 'Bad Request', status: 400, code });
  });

  it.each(['text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x'])(
    'answers 415 for a %s body',
    async (contentType) => {
      const response = await app.inject({ method: 'POST', url: '/items', payload: 'name=x', headers: { 'content-type': contentType } });
      expect(response.statusCode).toBe(415);
      expect(response.headers['content-type']).toBe(PROBLEM);
      expect(response.json()).toMatchObject({ status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' });
    },
  );

  it('answers 413 for a body over BODY_LIMIT', async () => {
    const response = await app.inject({ method: 'POST', url: '/items', payload: { name: 'x', description: 'd'.repeat(5000) } });
    expect(response.statusCode).toBe(413);
    expect(response.json()).toMatchObject({ status: 413, code: 'BODY_TOO_LARGE', title: 'Payload Too Large' });
  });

  it('refuses a body with a __proto__ key (400) and stores nothing, rather than parse it', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/items',
      payload: '{"name":"prototype carrier","__proto__":{"polluted":true}}',
      headers: { 'content-type': 'application/json' },
    });
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toBe(PROBLEM);
    expect(response.json()).toMatchObject({ status: 400, code: 'MALFORMED_JSON' });
    const listed = await app.inject({ method: 'GET', url: '/items?limit=1000' });
    expect(listed.json<{ name: string }[]>().map((item) => item.name)).not.toContain('prototype carrier');
  });
});

describe('routes and methods', () => {
  it('answers an unknown route with a 404 problem', async () => {
    const response = await app.inject({ method: 'GET', url: '/nothing/here' });
    expect(response.statusCode).toBe(404);
    expect(response.headers['content-type']).toBe(PROBLEM);
    expect(response.json()).toEqual({ type: 'about:blank', title: 'Not Found', status: 404, detail: 'No such resource', code: 'NOT_FOUND' });
  });

  it.each([
    ['PUT', '/items', 'GET, HEAD, POST'],
    ['DELETE', '/items', 'GET, HEAD, POST'],
    ['POST', '/items/1', 'DELETE, GET, HEAD, PATCH'],
    ['PUT', '/items/1', 'DELETE, GET, HEAD, PATCH'],
    ['POST', '/healthz', 'GET, HEAD'],
  ])('answers %s %s with 405 and Allow: %s', async (method, url, allow) => {
    const response = await app.inject({ method: method as 'PUT', url });
    expect(response.statusCode).toBe(405);
    expect(response.headers['allow']).toBe(allow);
    expect(response.json()).toMatchObject({ status: 405, code: 'METHOD_NOT_ALLOWED', title: 'Method Not Allowed' });
  });
});

describe('request ids', () => {
  it('gives every response, errors included, an x-request-id', async () => {
    const ids = new Set<string>();
    for (const url of ['/healthz', '/items', '/nothing', '/items/abc']) {
      const response = await app.inject({ method: 'GET', url });
      const id = response.headers['x-request-id'];
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      ids.add(String(id));
    }
    expect(ids.size).toBe(4);
  });

  it('keeps a well-formed incoming id and replaces a malformed one', async () => {
    const kept = await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'edge-1234:abc.def' } });
    expect(kept.headers['x-request-id']).toBe('edge-1234:abc.def');
    for (const bad of ['x'.repeat(200), 'has space', 'new\\nline', '<script>']) {
      const replaced = await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': bad } });
      expect(replaced.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});

describe('health', () => {
  it('answers /healthz and /readyz while the database is up', async () => {
    expect((await app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await app.inject({ method: 'GET', url: '/readyz' })).json()).toEqual({ status: 'ready' });
  });

  it('stays live but not ready, and answers 503 with Retry-After, when the database is unreachable', async () => {
    const port = await freePort();
    const offline = await buildTestApp(`postgres://postgres:postgres@127.0.0.1:${port}/none`, { DB_CONNECT_TIMEOUT_MS: '1000' });
    try {
      expect((await offline.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
      const started = Date.now();
      const ready = await offline.inject({ method: 'GET', url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      expect(ready.headers['retry-after']).toBe('1');
      expect(ready.json()).toMatchObject({ status: 503, code: 'NOT_READY' });
      for (const request of [
        { method: 'GET', url: '/items' },
        { method: 'POST', url: '/items', payload: { name: 'x' } },
        { method: 'GET', url: '/items/1' },
      ] as const) {
        const response = await offline.inject(request);
        expect(response.statusCode).toBe(503);
        expect(response.headers['retry-after']).toBe('1');
        expect(response.json()).toEqual({
          type: 'about:blank',
          title: 'Service Unavailable',
          status: 503,
          detail: 'The database is unavailable; retry shortly',
          code: 'DATABASE_UNAVAILABLE',
        });
      }
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await offline.close();
    }
  });
});
