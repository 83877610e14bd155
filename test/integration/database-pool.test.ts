import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, type Database } from '../../src/db/client.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

/**
 * The connection pool as the service configures it, on a real PostgreSQL, over a long life.
 *
 * postgres.js 3.4.9 keeps its pool's connections in queues that grow by an empty slot each time a
 * connection is taken from a queue that is not emptied, and it searches a queue from its first
 * slot on every move: once a burst has opened every connection, a steady load that leaves some of
 * them idle pays, per query, for every query before it (plain postgres.js, measured: 34 → 141 µs
 * of CPU per query over 500,000 queries, and rising). patches/postgres+3.4.9.patch bounds both
 * the search and the array. The work is counted here, not timed: what Array.prototype.indexOf
 * searches during one query.
 */

let database: TestDatabase;
let sql: Database;

beforeAll(async () => {
  database = await createTestDatabase({ migrated: false });
  sql = createDatabase({ databaseUrl: database.url, max: 10, connectTimeoutMs: 5_000, statementTimeoutMs: 5_000, prepare: true });
});

afterAll(async () => {
  await sql?.end();
  await database?.drop();
});

/**
 * What the pool's searches for a connection (Array.prototype.indexOf of an object with a `queue`,
 * as postgres.js's connections have) did while `work` ran: the most elements one searched, and the
 * longest array searched in. Other searches (another test file's timers, say) are not counted.
 */
async function indexOfWork(work: () => Promise<unknown>): Promise<{ searched: number; arrayLength: number }> {
  const original = Array.prototype.indexOf;
  const seen = { searched: 0, arrayLength: 0 };
  Array.prototype.indexOf = function (this: unknown[], ...args: [unknown, number?]) {
    const [item, from = 0] = args;
    if (typeof item !== 'object' || item === null || !('queue' in item)) return original.apply(this, args);
    seen.searched = Math.max(seen.searched, this.length - from);
    seen.arrayLength = Math.max(seen.arrayLength, this.length);
    return original.apply(this, args);
  };
  try {
    await work();
  } finally {
    Array.prototype.indexOf = original;
  }
  return seen;
}

describe('the connection pool', () => {
  it('searches and keeps as little for a query after 20,000 queries as at first, with connections left idle after a burst', async () => {
    // A burst opens every connection; then a steady load of two queries at a time leaves the
    // others idle: the pool's queue of idle connections is never emptied.
    await Promise.all(Array.from({ length: 10 }, () => sql`SELECT pg_sleep(0.05)`));
    const first = await indexOfWork(() => sql`SELECT 1`);
    for (let round = 0; round < 10_000; round++) await Promise.all([sql`SELECT 1`, sql`SELECT 2`]);

    const later = await indexOfWork(() => sql`SELECT 1`);
    // The spy saw the queues (a pool of 10 searches at most 10 items); unpatched, a search spans
    // every query run so far (20,011), and the array keeps a slot for each.
    expect(first.searched).toBeGreaterThan(0);
    expect(later.searched).toBeLessThanOrEqual(10);
    // Compacted once more than 1,024 slots are empty: never far beyond twice that.
    expect(later.arrayLength).toBeLessThanOrEqual(2_100);
  }, 60_000);
});
