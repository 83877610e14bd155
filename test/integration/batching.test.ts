import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, type Database } from '../../src/db/client.js';
import { isRejectedData } from '../../src/db/errors.js';
import { insertItems } from '../../src/items/repository.js';
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

describe('insertItems: one statement for many items', () => {
  it('returns each input its own row, in input order, with distinct ids, all committed', async () => {
    const inputs = Array.from({ length: 200 }, (_, index) => ({
      name: `batch ${index}`,
      description: index % 3 === 0 ? null : `description ${index}`,
    }));
    const results = await insertItems(db, inputs);
    expect(results.map((row) => (row instanceof Error ? row.message : { name: row.name, description: row.description }))).toEqual(inputs);
    const ids = results.map((row) => (row instanceof Error ? 0 : row.id));
    expect(new Set(ids).size).toBe(200);
    const stored = await sql<{ id: number; name: string }[]>`SELECT id::int, name FROM items WHERE id = ANY(${ids})`;
    const storedNames = new Map(stored.map((row) => [row.id, row.name]));
    results.forEach((row, index) => expect(storedNames.get((row as { id: number }).id)).toBe(`batch ${index}`));
  });

  it('shares one transaction: every row of a batch has the same created_at', async () => {
    const results = await insertItems(db, [{ name: 'a' }, { name: 'b' }, { name: 'c' }]);
    const times = new Set(results.map((row) => (row as { created_at: Date }).created_at.getTime()));
    expect(times.size).toBe(1);
  });

  it('fails only the row the database refuses, and stores the others', async () => {
    const results = await insertItems(db, [
      { name: 'good 1' },
      { name: 'x'.repeat(300) }, // longer than varchar(255): refused by PostgreSQL itself
      { name: 'good 2', description: 'kept' },
    ]);
    expect(results[0]).toMatchObject({ name: 'good 1' });
    expect(results[1]).toBeInstanceOf(Error);
    expect(isRejectedData(results[1])).toBe(true);
    expect(results[2]).toMatchObject({ name: 'good 2', description: 'kept' });
    const [row] = await sql`SELECT count(*)::int AS count FROM items WHERE name IN ('good 1', 'good 2')`;
    expect(row).toEqual({ count: 2 });
  });
});
