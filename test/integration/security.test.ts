import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { buildTestApp } from '../helpers/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { parseRawResponse, sendRaw } from '../hostile/raw-http.js';

let database: TestDatabase;
const apps: FastifyInstance[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await Promise.all(apps.map((app) => app.close()));
  await database?.drop();
});

async function appWith(env: Record<string, string> = {}): Promise<FastifyInstance> {
  const app = await buildTestApp(database.url, env);
  apps.push(app);
  return app;
}

describe('security headers', () => {
  const htmlOnly = ['referrer-policy', 'cross-origin-opener-policy', 'origin-agent-cluster', 'x-dns-prefetch-control', 'x-download-options', 'x-permitted-cross-domain-policies', 'x-xss-protection'];

  const apiHeaders = {
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
    'cross-origin-resource-policy': 'same-origin',
    'strict-transport-security': 'max-age=31536000; includeSubDomains',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
  };

  it("are the API's own on every API response, and nothing meant for HTML pages: routes, errors, probes, and answers of the hooks, of Fastify and of Node's parser", async () => {
    const app = await appWith();
    const guarded = await appWith({ API_KEYS: 'headers-key', RATE_LIMIT_PER_MINUTE: '3' });
    const responses = await Promise.all([
      app.inject({ method: 'GET', url: '/items' }),
      app.inject({ method: 'POST', url: '/items', payload: { name: 'headers' } }),
      app.inject({ method: 'GET', url: '/items/x' }),
      app.inject({ method: 'GET', url: '/nothing' }),
      app.inject({ method: 'GET', url: '/docsx' }),
      app.inject({ method: 'PUT', url: '/items' }),
      app.inject({ method: 'GET', url: '/healthz' }),
      app.inject({ method: 'GET', url: '/openapi.json' }),
      // Answered by Fastify before routing, and by hooks before the route.
      app.inject({ method: 'GET', url: '/items/%ZZ' }),
      app.inject({ method: 'GET', url: `/items/${'1'.repeat(101)}` }),
      guarded.inject({ method: 'POST', url: '/items', payload: { name: 'x' } }),
    ]);
    for (let attempt = 0; attempt < 3; attempt++) responses.push(await guarded.inject({ method: 'GET', url: '/items' }));
    expect(responses.map((response) => response.statusCode)).toEqual([200, 201, 422, 404, 404, 405, 200, 200, 400, 414, 401, 200, 200, 429]);

    // Node's parser refuses the bytes before Fastify sees a request.
    await app.listen({ port: 0, host: '127.0.0.1' });
    const malformed = parseRawResponse((await sendRaw((app.server.address() as AddressInfo).port, 'NOT HTTP\r\n\r\n')).received);
    expect(malformed.status).toBe(400);

    for (const headers of [...responses.map((response) => response.headers), malformed.headers]) {
      expect(headers).toMatchObject(apiHeaders);
      for (const name of [...htmlOnly, 'x-powered-by']) expect(headers[name], name).toBeUndefined();
    }
  });

  it("are a web page's on the documentation pages, with the policy Swagger UI needs", async () => {
    const app = await appWith();
    for (const url of ['/docs', '/docs/', '/docs/static/index.html']) {
      const { statusCode, headers } = await app.inject({ method: 'GET', url });
      expect(statusCode, url).toBeLessThan(400);
      expect(headers['content-security-policy'], url).toContain("default-src 'self'");
      expect(headers['content-security-policy'], url).not.toContain('upgrade-insecure-requests');
      expect(headers['x-frame-options'], url).toBe('SAMEORIGIN');
      expect(headers['referrer-policy'], url).toBe('no-referrer');
      expect(headers['x-content-type-options'], url).toBe('nosniff');
      expect(headers['strict-transport-security'], url).toMatch(/max-age=\d+/);
    }
  });
});

describe('CORS', () => {
  const preflight = (app: FastifyInstance, origin: string) =>
    app.inject({
      method: 'OPTIONS',
      url: '/items',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,idempotency-key' },
    });

  it('is off by default: no browser origin is allowed', async () => {
    const response = await preflight(await appWith(), 'https://app.example.com');
    expect(response.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('allows exactly the configured origins', async () => {
    const app = await appWith({ CORS_ORIGINS: 'https://app.example.com' });
    const allowed = await preflight(app, 'https://app.example.com');
    expect(allowed.statusCode).toBe(204);
    expect(allowed.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(allowed.headers['access-control-allow-headers']).toContain('idempotency-key');
    const refused = await preflight(app, 'https://evil.example.com');
    expect(refused.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('API keys', () => {
  it('are needed for writes when API_KEYS is set, compared exactly, and reads stay open', async () => {
    const app = await appWith({ API_KEYS: 'first-key,second-key' });
    const create = (authorization?: string) =>
      app.inject({ method: 'POST', url: '/items', payload: { name: 'x' }, headers: authorization ? { authorization } : {} });

    for (const authorization of [undefined, 'Bearer wrong', 'Bearer first-ke', 'Bearer first-key2', 'Basic Zmlyc3Qta2V5', 'first-key']) {
      const response = await create(authorization);
      expect(response.statusCode, String(authorization)).toBe(401);
      expect(response.headers['www-authenticate']).toBe('Bearer realm="fastify-sqlasync"');
      expect(response.headers['content-type']).toBe('application/problem+json; charset=utf-8');
      expect(response.json()).toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
    }
    expect((await create('Bearer first-key')).statusCode).toBe(201);
    expect((await create('bearer second-key')).statusCode).toBe(201);
    expect((await app.inject({ method: 'GET', url: '/items' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'DELETE', url: '/items/1' })).statusCode).toBe(401);
  });
});

describe('logs', () => {
  it('never carry credentials: API keys, database passwords or bodies', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger({ level: 'trace', destination });
    const config = { ...loadConfig({ DATABASE_URL: database.url, API_KEYS: 'super-secret-key' }), databaseUrl: database.url };
    const app = await buildApp(config, { logger });
    apps.push(app);

    await app.inject({ method: 'POST', url: '/items', payload: { name: 'body-marker' }, headers: { authorization: 'Bearer super-secret-key' } });
    await app.inject({ method: 'POST', url: '/items', payload: { name: 'x' }, headers: { authorization: 'Bearer wrong-secret-key' } });
    await app.inject({ method: 'POST', url: '/items', payload: '{"broken', headers: { 'content-type': 'application/json', cookie: 'session=cookie-secret' } });
    logger.info({ databaseUrl: database.url, req: { headers: { authorization: 'Bearer super-secret-key' } } }, 'a careless line');

    const text = lines.join('');
    expect(text).toContain('request completed');
    expect(text).toContain('[redacted]');
    for (const secret of ['super-secret-key', 'wrong-secret-key', 'cookie-secret', 'body-marker', database.url]) {
      expect(text).not.toContain(secret);
    }
  });
});
