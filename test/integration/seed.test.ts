import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEntryPoint } from '../helpers/command.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

/**
 * `npm run db:seed -- N`: N realistic items, in one statement, into DATABASE_URL (here) or the
 * embedded database (db-commands.test.ts seeds the one a running service holds).
 */

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await database.drop();
});

const seed = (args: string[], env: Record<string, string> = {}) => runEntryPoint('src/db/seed.ts', args, { DATABASE_URL: database.url, ...env });

describe('db:seed', () => {
  it('inserts 100,000 realistic items in one go', async () => {
    const result = await seed(['100000']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^inserted 100000 items in \d+(\.\d+)? s \(100000 in the table\)\n$/);

    const sql = postgres(database.url, { max: 1, onnotice: () => {} });
    try {
      const [stats] = await sql<[{ rows: number; distinctNames: number; withoutDescription: number; minId: number; maxId: number }]>`
        SELECT count(*)::int AS rows, count(DISTINCT name)::int AS "distinctNames",
               count(*) FILTER (WHERE description IS NULL)::int AS "withoutDescription",
               min(id)::int AS "minId", max(id)::int AS "maxId"
        FROM items`;
      expect(stats).toEqual({ rows: 100_000, distinctNames: expect.any(Number), withoutDescription: 10_000, minId: 1, maxId: 100_000 });
      expect(stats.distinctNames).toBeGreaterThan(1000);
      const sample = await sql<{ name: string; description: string | null }[]>`SELECT name, description FROM items WHERE id IN (1, 2, 10)`;
      for (const { name, description } of sample) {
        expect(name).toMatch(/^[A-Z][a-z]+ [a-z]+ [a-z]+$/);
        if (description !== null) expect(description).toMatch(/^A [a-z]+ [a-z]+ made of [a-z]+\./);
      }
    } finally {
      await sql.end();
    }
  }, 120_000);

  it.each([[[]], [['many']], [['0']], [['1.5']], [['10', '20']]])('refuses %j with its usage', async (args) => {
    const result = await seed(args);
    expect(result).toEqual({
      code: 1,
      stdout: '',
      stderr: 'usage: npm run db:seed -- <count>      (1 to 10,000,000 items; or: node dist/db/seed.js <count>)\n',
    });
  });

  it('says to migrate first when the items table is missing', async () => {
    const empty = await createTestDatabase({ migrated: false });
    try {
      const result = await seed(['10'], { DATABASE_URL: empty.url });
      expect(result).toEqual({ code: 1, stdout: '', stderr: 'The items table does not exist: run `npm run db:migrate` first\n' });
    } finally {
      await empty.drop();
    }
  });
});
