import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, type Database } from '../../src/db/client.js';
import { isRejectedData } from '../../src/db/errors.js';
import { IdempotencyKeyReusedError, insertItems, type Creation, type NewItem } from '../../src/items/repository.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let database: TestDatabase;
let db: Database;
let sql: postgres.Sql;

beforeAll(async () => {
  database = await createTestDatabase();
  db = createDatabase({ databaseUrl: database.url, max: 4, connectTimeoutMs: 5000, statementTimeoutMs: 10000, prepare: true });
  sql = postgres(database.url, { max: 1, onnotice: () => {} });
});

afterAll(async () => {
  await db?.$client.end();
  await sql?.end();
  await database?.drop();
});

/** The created item of a result that must be a fresh creation. */
function created(result: Creation | Error | undefined) {
  if (!result || result instanceof Error || result.replayed) throw new Error(`not a creation: ${JSON.stringify(result)}`);
  return result.item;
}

const withKey = (name: string, key: string, requestHash = name, ttlSeconds = 60): NewItem => ({
  name,
  idempotency: { key, requestHash, ttlSeconds },
});

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

  it('shares one transaction: every row of a batch has the same created_at', async () => {
    const items = (await insertItems(db, [{ name: 'a' }, { name: 'b' }, { name: 'c' }])).map(created);
    expect(new Set(items.map((item) => item.created_at.getTime())).size).toBe(1);
  });

  it('fails only the row the database refuses, and stores the others', async () => {
    const results = await insertItems(db, [
      { name: 'good 1' },
      { name: 'x'.repeat(300) }, // longer than varchar(255): refused by PostgreSQL itself
      { name: 'good 2', description: 'kept' },
    ]);
    expect(created(results[0])).toMatchObject({ name: 'good 1' });
    expect(results[1]).toBeInstanceOf(Error);
    expect(isRejectedData(results[1])).toBe(true);
    expect(created(results[2])).toMatchObject({ name: 'good 2', description: 'kept' });
    const [row] = await sql`SELECT count(*)::int AS count FROM items WHERE name IN ('good 1', 'good 2')`;
    expect(row).toEqual({ count: 2 });
  });
});

describe('insertItems with idempotency keys', () => {
  it('creates once per key and replays the stored response for the same request', async () => {
    const [first] = await insertItems(db, [withKey('once', 'key-once')]);
    const original = created(first);
    const [again] = await insertItems(db, [withKey('once', 'key-once')]);
    expect(again).toEqual({
      replayed: true,
      status: 201,
      item: {
        id: original.id,
        name: 'once',
        description: null,
        created_at: original.created_at.toISOString(),
        updated_at: original.updated_at.toISOString(),
      },
    });
    expect(await sql`SELECT count(*)::int AS count FROM items WHERE name = 'once'`).toEqual([{ count: 1 }]);
  });

  it('refuses the same key with a different request', async () => {
    await insertItems(db, [withKey('first body', 'key-reused')]);
    const [second] = await insertItems(db, [withKey('second body', 'key-reused')]);
    expect(second).toBeInstanceOf(IdempotencyKeyReusedError);
    expect(await sql`SELECT count(*)::int AS count FROM items WHERE name = 'second body'`).toEqual([{ count: 0 }]);
  });

  it('creates once when one batch carries the same key twice', async () => {
    const results = await insertItems(db, [withKey('twin', 'key-twin'), { name: 'other' }, withKey('twin', 'key-twin')]);
    const original = created(results[0]);
    expect(created(results[1]).name).toBe('other');
    expect(results[2]).toMatchObject({ replayed: true, item: { id: original.id } });
    expect(await sql`SELECT count(*)::int AS count FROM items WHERE name = 'twin'`).toEqual([{ count: 1 }]);
  });

  it('creates once when two connections send the same key at the same moment', async () => {
    const other = createDatabase({ databaseUrl: database.url, max: 1, connectTimeoutMs: 5000, statementTimeoutMs: 10000, prepare: true });
    try {
      for (let round = 0; round < 20; round++) {
        const key = `key-race-${round}`;
        const results = await Promise.all([insertItems(db, [withKey(`race ${round}`, key)]), insertItems(other, [withKey(`race ${round}`, key)])]);
        const outcomes = results.map(([result]) => (result instanceof Error ? 'error' : result!.replayed ? 'replayed' : 'created')).sort();
        expect(outcomes).toEqual(['created', 'replayed']);
        expect(await sql`SELECT count(*)::int AS count FROM items WHERE name = ${`race ${round}`}`).toEqual([{ count: 1 }]);
      }
    } finally {
      await other.$client.end();
    }
  });

  it('treats an expired key as new', async () => {
    await insertItems(db, [withKey('expiring', 'key-expiring', 'expiring', 1)]);
    await sql`UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = 'key-expiring'`;
    const [again] = await insertItems(db, [withKey('expiring', 'key-expiring')]);
    expect(created(again).name).toBe('expiring');
    expect(await sql`SELECT count(*)::int AS count FROM items WHERE name = 'expiring'`).toEqual([{ count: 2 }]);
  });
});
