import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let database: TestDatabase;
let app: FastifyInstance;
const lines: Record<string, unknown>[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  const config = { ...loadConfig({ DATABASE_URL: database.url, API_KEYS: 'access-log-secret-key' }), databaseUrl: database.url };
  app = await buildApp(config, { logger: createLogger({ level: 'info', destination }) });
});

afterAll(async () => {
  await app?.close();
  await database?.drop();
});

/** The one line logged for the request with this id. */
function lineOf(requestId: string): Record<string, unknown> {
  const found = lines.filter((line) => line['requestId'] === requestId);
  expect(found).toHaveLength(1);
  return found[0]!;
}

describe('the access log', () => {
  it('writes one line per request that succeeded: its id, method, url, status and time', async () => {
    const response = await app.inject({ method: 'GET', url: '/items?limit=3' });
    expect(response.statusCode).toBe(200);
    const line = lineOf(response.headers['x-request-id'] as string);
    expect(line).toEqual({
      level: 30,
      time: expect.any(Number),
      pid: process.pid,
      hostname: expect.any(String),
      requestId: response.headers['x-request-id'],
      method: 'GET',
      url: '/items?limit=3',
      status: 200,
      ms: expect.any(Number),
      msg: 'request completed',
    });
  });

  it('writes the line of a request that answered an error the same way, with its status', async () => {
    const response = await app.inject({ method: 'POST', url: '/items', payload: { name: 'x' } });
    expect(response.statusCode).toBe(401);
    expect(lineOf(response.headers['x-request-id'] as string)).toMatchObject({ level: 30, method: 'POST', url: '/items', status: 401, msg: 'request completed' });
  });

  it("follows the level of the request's logger", async () => {
    app.log.level = 'warn';
    try {
      const response = await app.inject({ method: 'GET', url: '/items?limit=1' });
      expect(response.statusCode).toBe(200);
      expect(lines.filter((line) => line['requestId'] === response.headers['x-request-id'])).toEqual([]);
    } finally {
      app.log.level = 'info';
    }
  });

  it('hides secrets that a client put in the url', async () => {
    const urls = ['/items?key=access-log-secret-key', '/items?next=postgres://someone:url-password@db.example/x'];
    for (const url of urls) {
      const response = await app.inject({ method: 'GET', url });
      const line = JSON.stringify(lineOf(response.headers['x-request-id'] as string));
      expect(line).toContain('[redacted]');
      expect(line).not.toContain('access-log-secret-key');
      expect(line).not.toContain('url-password');
    }
  });
});
