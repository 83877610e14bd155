import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, type Database } from '../../src/db/client.js';
import { UnstorableValueError } from '../../src/db/errors.js';
import { IdempotencyKeyReusedError, type IdempotencyClaim } from '../../src/items/idempotency.js';
import { insertItems, insertItemsOrEach, type InsertOutcome, type NewItem } from '../../src/items/repository.js';
import { createItemsService, type Creation } from '../../src/items/service.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let database: TestDatabase;
let db: Database;
let sql: postgres.Sql;

const open = (max: number) => createDatabase({ databaseUrl: database.url, max, connectTimeoutMs: 5000, statementTimeoutMs: 10000, prepare: true });

beforeAll(async () => {
  database = await createTestDatabase();
  db = open(4);
  sql = postgres(database.url, { max: 1, onnotice: () => {} });
});

afterAll(async () => {
  await db?.end();
  await sql?.end();
  await database?.drop();
});

/** The row of an outcome that must be a fresh creation. */
function created(outcome: InsertOutcome | Creation | Error | undefined) {
  if (outcome && 'created' in outcome) return outcome.created;
  if (outcome && 'replayed' in outcome && !outcome.replayed) return outcome.item;
  throw new Error(`not a creation: ${JSON.stringify(outcome)}`);
}

const claim = (key: string, requestHash: string, ttlSeconds = 60, owner = ''): IdempotencyClaim => ({ owner, key, requestHash, ttlSeconds });
const withKey = (name: string, key: string, ttlSeconds = 60): NewItem => ({ name, idempotency: claim(key, name, ttlSeconds) });

describe('insertItems: one statement for many items', () => {
  it('returns each input its own row, in input order, with distinct ids, all committed', async () => {
    const inputs = Array.from({ length: 200 }, (_, index) => ({
      name: `batch ${index}`,
      description: index % 3 === 0 ? null : `description ${index}`,
    }));
    const items = (await insertItems(db, inputs)).map(created);
    expect(items.map(({ name, description }) => ({ name, description }))).toEqual(inputs);
    expect(new Set(items.map((item) => item.id)).size).toBe(200);
    const stored = await sql<{ id: number; name: string }[]>`SELECT id::int, name FROM items WHERE id = ANY(${items.map((item) => item.id)})`;
    const storedNames = new Map(stored.map((row) => [row.id, row.name]));
    items.forEach((item, index) => expect(storedNames.get(item.id)).toBe(`batch ${index}`));
  });

  it('shares one transaction: every row of a batch has the same created_at, as RFC 3339 UTC text', async () => {
    const items = (await insertItems(db, [{ name: 'a' }, { name: 'b' }, { name: 'c' }])).map(created);
    expect(new Set(items.map((item) => item.created_at)).size).toBe(1);
    expect(items[0]!.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(new Date(items[0]!.created_at).toISOString()).toBe(items[0]!.created_at);
  });

  it('fails only the row the database refuses, retrying the others one at a time, and stores them', async () => {
    const outcomes = await insertItemsOrEach(db, [
      { name: 'good 1' },
      { name: 'x'.repeat(300) }, // longer than varchar(255): refused by PostgreSQL itself
      { name: 'good 2', description: 'kept' },
    ]);
    expect(created(outcomes[0])).toMatchObject({ name: 'good 1' });
    expect(outcomes[1]).toMatchObject({ name: 'PostgresError', code: '22001' });
    expect(created(outcomes[2])).toMatchObject({ name: 'good 2', description: 'kept' });
    const [row] = await sql`SELECT count(*)::int AS count FROM items WHERE name IN ('good 1', 'good 2')`;
    expect(row).toEqual({ count: 2 });
  });
});

describe('creations with idempotency keys', () => {
  const service = () => createItemsService(db, { poolSize: 4, maxQueued: 100, maxWaitMs: 5000 });

  it('creates once per key and replays the stored response for the same request', async () => {
    const items = service();
    const original = created(await items.create(withKey('once', 'key-once')));
    expect(await items.create(withKey('once', 'key-once'))).toEqual({ replayed: true, status: 201, item: original });
    expect(await sql`SELECT count(*)::int AS count FROM items WHERE name = 'once'`).toEqual([{ count: 1 }]);
  });

  it('refuses the same key with a different request', async () => {
    const items = service();
    await items.create(withKey('first body', 'key-reused'));
    await expect(items.create({ name: 'second body', idempotency: claim('key-reused', 'second body') })).rejects.toBeInstanceOf(IdempotencyKeyReusedError);
    expect(await sql`SELECT count(*)::int AS count FROM items WHERE name = 'second body'`).toEqual([{ count: 0 }]);
  });

  it('creates once when one batch carries the same key twice, and refuses a twin with another body', async () => {
    const items = service();
    const [first, other, twin, impostor] = await Promise.allSettled([
      items.create(withKey('twin', 'key-twin')),
      items.create({ name: 'other' }),
      items.create(withKey('twin', 'key-twin')),
      items.create({ name: 'impostor', idempotency: claim('key-twin', 'impostor') }),
    ]);
    const original = created((first as PromiseFulfilledResult<Creation>).value);
    expect(created((other as PromiseFulfilledResult<Creation>).value).name).toBe('other');
    expect(twin).toEqual({ status: 'fulfilled', value: { replayed: true, status: 201, item: original } });
    expect(impostor).toMatchObject({ status: 'rejected', reason: { code: 'IDEMPOTENCY_KEY_REUSED' } });
    expect(await sql`SELECT count(*)::int AS count FROM items WHERE name IN ('twin', 'impostor')`).toEqual([{ count: 1 }]);
  });

  it('keeps the keys of different owners apart', async () => {
    const items = service();
    const mine = created(await items.create({ name: 'shared', idempotency: claim('key-owned', 'shared', 60, 'owner-a') }));
    const theirs = created(await items.create({ name: 'shared', idempotency: claim('key-owned', 'shared', 60, 'owner-b') }));
    expect(theirs.id).not.toBe(mine.id);
  });

  it('creates once when two connections send the same key at the same moment', async () => {
    const other = open(1);
    try {
      const [here, there] = [service(), createItemsService(other, { poolSize: 1, maxQueued: 100, maxWaitMs: 5000 })];
      for (let round = 0; round < 20; round++) {
        const key = `key-race-${round}`;
        const results = await Promise.all([here.create(withKey(`race ${round}`, key)), there.create(withKey(`race ${round}`, key))]);
        expect(results.map((result) => (result.replayed ? 'replayed' : 'created')).sort()).toEqual(['created', 'replayed']);
        expect(await sql`SELECT count(*)::int AS count FROM items WHERE name = ${`race ${round}`}`).toEqual([{ count: 1 }]);
      }
    } finally {
      await other.end();
    }
  });

  it('treats an expired key as new', async () => {
    const items = service();
    await items.create(withKey('expiring', 'key-expiring', 1));
    await sql`UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = 'key-expiring'`;
    expect(created(await items.create(withKey('expiring', 'key-expiring'))).name).toBe('expiring');
    expect(await sql`SELECT count(*)::int AS count FROM items WHERE name = 'expiring'`).toEqual([{ count: 2 }]);
  });

  it('answers a value the database refuses with a 422 error, not a 500', async () => {
    await expect(service().create({ name: 'x'.repeat(300) })).rejects.toBeInstanceOf(UnstorableValueError);
  });
});

describe('two batches claiming the same keys in opposite orders', () => {
  it('do not deadlock: both complete, one creating and the other replaying each key', async () => {
    const first = open(1);
    const second = open(1);
    const blocker = postgres(database.url, { max: 1, onnotice: () => {} });
    const waitersOnLocks = async () =>
      (await sql`SELECT count(*)::int AS count FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`)[0]!['count'] as number;
    const untilWaiting = async (count: number) => {
      while ((await waitersOnLocks()) < count) await new Promise((resolve) => setTimeout(resolve, 5));
    };
    try {
      // A third transaction holds key A, so both batches stop at A: the second one already holding
      // B if it claims in request order. Which batch wins A when it is let go is a race, lost about
      // half the time by a service that claims in request order: enough rounds make that certain.
      for (let round = 0; round < 20; round++) {
        const [a, b] = [`deadlock-a-${round}`, `deadlock-b-${round}`];
        const holder = await blocker.reserve();
        await holder`BEGIN`;
        await holder`INSERT INTO idempotency_keys (key, request_hash, status, response, expires_at)
          VALUES (${a}, 'held', 201, '{}', now() + interval '1 minute')`;
        const forward = insertItems(first, [withKey(a, a), withKey(b, b)]);
        await untilWaiting(1);
        const backward = insertItems(second, [withKey(b, b), withKey(a, a)]);
        await untilWaiting(2);
        await holder`ROLLBACK`;
        holder.release();

        const outcomes = (await Promise.all([forward, backward])).flat();
        const createdNames = outcomes.filter((outcome) => 'created' in outcome).map((outcome) => created(outcome).name);
        expect(createdNames.sort()).toEqual([a, b]);
      }
    } finally {
      await Promise.all([first.end(), second.end(), blocker.end()]);
    }
  });
});
