import type { FastifyInstance } from 'fastify';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp } from '../helpers/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { DatabaseProxy } from '../helpers/database-proxy.js';

/**
 * Coalesced reads must never be stale, shown deterministically: a read whose query has already run
 * (its answer held back by a proxy) when a write commits, then the same read sent after the commit.
 * The second read must include the write: a coalescer that lets it join the query in flight fails.
 */

let database: TestDatabase;
let sql: postgres.Sql;
/** Each test's own proxy and app, closed after the file. */
const opened: { close(): Promise<unknown> }[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { onnotice: () => {} });
  await sql`INSERT INTO items (name) SELECT 'before' FROM generate_series(1, 20)`;
});

afterAll(async () => {
  for (const resource of opened.reverse()) await resource.close();
  await sql?.end();
  await database?.drop();
});

/** An app whose database answers pass through a proxy of its own, which the test can hold back. */
async function appBehindProxy(): Promise<{ app: FastifyInstance; proxy: DatabaseProxy }> {
  const proxy = await DatabaseProxy.start(database.url);
  opened.push(proxy);
  const app = await buildTestApp(proxy.url);
  opened.push(app);
  return { app, proxy };
}

type Item = { id: number; name: string };

const nameInPage = (id: number) => (body: unknown) => (body as Item[]).find((item) => item.id === id)?.name;
const nameOfItem = (body: unknown) => (body as Item).name;

/**
 * The read in flight (`url`) sees the old name of item `id`; a read sent after the write committed
 * (`laterUrl`, the same one by default) sees the new one.
 */
async function expectFreshAfterWrite(id: number, url: string, nameOf: (body: unknown) => string | undefined, laterUrl = url, laterNameOf = nameOf) {
  const { app, proxy } = await appBehindProxy();
  await sql`UPDATE items SET name = 'before' WHERE id = ${id}`;
  // Warm the connections and statements, so that the reads below send queries at once.
  for (const warm of [url, laterUrl, url]) expect((await app.inject(warm)).statusCode).toBe(200);

  proxy.holdResults();
  const answered = proxy.count('server', 'C');
  const inFlight = app.inject(url);
  // The first read's query has run in PostgreSQL: its snapshot predates the write below.
  await proxy.waitFor('server', 'C', answered + 1);
  await sql`UPDATE items SET name = 'after' WHERE id = ${id}`;

  const executed = proxy.count('client', 'E');
  const sentAfterCommit = app.inject(laterUrl);
  // A correct service sends a query of its own for the second read (or queues it behind the
  // first): give it the time to. A stale one answers from the first read's result.
  await proxy.waitFor('client', 'E', executed + 1, 1_000).catch(() => {});
  proxy.releaseResults();

  const [first, second] = await Promise.all([inFlight, sentAfterCommit]);
  expect(first.statusCode).toBe(200);
  expect(second.statusCode).toBe(200);
  expect(nameOf(first.json())).toBe('before');
  expect(laterNameOf(second.json())).toBe('after');
}

// Concurrent: each test holds its own proxy's results for a second, and the waits overlap; each
// writes an item of its own, which no other test's reads check.
describe.concurrent('a read sent after a write committed', () => {
  it('includes the write while the same page is already in flight', async () => {
    await expectFreshAfterWrite(5, '/items?after=0&limit=10', nameInPage(5));
  });

  it('includes the write while another page holding the item is already in flight', async () => {
    await expectFreshAfterWrite(6, '/items?after=2&limit=5', nameInPage(6), '/items?after=0&limit=10');
  });

  it('includes the write while a read of the same id is already in flight', async () => {
    await expectFreshAfterWrite(7, '/items/7', nameOfItem);
  });

  it('includes the write while a read of another id is already in flight', async () => {
    await expectFreshAfterWrite(8, '/items/9', nameOfItem, '/items/8');
  });
});
