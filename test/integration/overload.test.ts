import type { FastifyInstance, InjectOptions } from 'fastify';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp } from '../helpers/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

/**
 * A database that cannot keep up (here: a table lock held by another session) must turn into fast,
 * bounded failures: 503 with Retry-After, never requests piling up or hanging.
 */

let database: TestDatabase;
let app: FastifyInstance;
let locker: postgres.Sql;

beforeAll(async () => {
  database = await createTestDatabase();
  app = await buildTestApp(database.url, {
    MAX_IN_FLIGHT: '4',
    DB_STATEMENT_TIMEOUT_MS: '500',
    DB_QUEUE_MAX: '2',
    DB_QUEUE_TIMEOUT_MS: '300',
  });
  // Ready before the clock starts: the first inject would otherwise start the app (compile every
  // schema and hook), which on a busy machine took longer than the "at once" the tests allow.
  await app.ready();
  locker = postgres(database.url, { max: 1, onnotice: () => {} });
});

afterAll(async () => {
  await app?.close();
  await locker?.end();
  await database?.drop();
});

/** Holds an exclusive lock on items for `milliseconds`, as a long migration or a stuck batch job would. */
async function holdTableLock(milliseconds: number): Promise<void> {
  await locker.begin(async (transaction) => {
    await transaction`LOCK TABLE items IN ACCESS EXCLUSIVE MODE`;
    await new Promise((resolve) => setTimeout(resolve, milliseconds));
  });
}

async function timed(request: InjectOptions, on = app) {
  const started = Date.now();
  const response = await on.inject(request);
  return { response, ms: Date.now() - started };
}

describe('overload', () => {
  it('sheds requests beyond MAX_IN_FLIGHT at once with 503 and Retry-After, but never the health probes', async () => {
    const lock = holdTableLock(1_500);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const results = await Promise.all(Array.from({ length: 12 }, (_, index) => timed({ method: 'GET', url: `/items/${index + 1}` })));
    const health = await timed({ method: 'GET', url: '/healthz' });
    await lock;

    const shed = results.filter(({ response }) => response.json<{ code?: string }>().code === 'OVERLOADED');
    expect(shed.length).toBeGreaterThanOrEqual(8);
    // "At once": long before the lock (1.5 s) or the statement timeout (0.5 s) could end them, with
    // room for a busy 2-core CI machine running other test files in parallel.
    for (const { response, ms } of shed) {
      expect(response.statusCode).toBe(503);
      expect(response.headers['retry-after']).toBe('1');
      expect(ms).toBeLessThan(300);
    }
    expect(health.response.statusCode).toBe(200);
    expect(health.ms).toBeLessThan(300);
  });

  it('ends requests stuck behind a lock with 503 at the statement timeout instead of piling up', async () => {
    const lock = holdTableLock(2_000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const results = await Promise.all([
      timed({ method: 'POST', url: '/items', payload: { name: 'blocked' } }),
      timed({ method: 'GET', url: '/items' }),
    ]);
    await lock;
    for (const { response, ms } of results) {
      expect(response.statusCode).toBe(503);
      expect(response.headers['retry-after']).toBe('1');
      expect(response.json()).toMatchObject({ status: 503, code: 'DATABASE_UNAVAILABLE' });
      expect(ms).toBeLessThan(1_200);
    }
    // Once the lock is gone, the service serves again by itself.
    expect((await app.inject({ method: 'POST', url: '/items', payload: { name: 'after the lock' } })).statusCode).toBe(201);
  });

  it('answers 503 when the database queue is full, and when a request waited too long for it', async () => {
    // One connection, so that a request stuck on the lock holds it and the next ones must wait.
    const oneConnection = await buildTestApp(database.url, { DB_POOL_MAX: '1', DB_STATEMENT_TIMEOUT_MS: '500', DB_QUEUE_MAX: '2', DB_QUEUE_TIMEOUT_MS: '300' });
    try {
      await oneConnection.ready();
      const lock = holdTableLock(1_500);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const post = (index: number) => timed({ method: 'POST', url: '/items', payload: { name: `queued ${index}` } }, oneConnection);
      const running = post(0);
      await new Promise((resolve) => setTimeout(resolve, 50));
      // The first creation holds the connection (stuck on the lock); two may wait; the next is refused at once.
      const others = await Promise.all([1, 2, 3].map(post));
      const results = [await running, ...others];
      await lock;
      expect(results.map(({ response }) => response.statusCode)).toEqual([503, 503, 503, 503]);
      const [stuck, ...rest] = results.map(({ response, ms }) => ({ code: response.json<{ code: string }>().code, ms }));
      expect(stuck!.code).toBe('DATABASE_UNAVAILABLE');
      const refused = rest.filter(({ ms }) => ms < 200);
      const expired = rest.filter(({ ms }) => ms >= 250 && ms < 1_000);
      expect(refused).toEqual([{ code: 'OVERLOADED', ms: expect.any(Number) }]);
      expect(expired.map(({ code }) => code)).toEqual(['OVERLOADED', 'OVERLOADED']);
    } finally {
      await oneConnection.close();
    }
  });
});
