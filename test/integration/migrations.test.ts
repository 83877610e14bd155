import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { afterEach, describe, expect, it } from 'vitest';
import { MIGRATIONS_DIR, migrateDown, migrateUp, migrationStatus, readMigrations } from '../../src/db/migrate.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { freePort } from '../helpers/ports.js';

const run = promisify(execFile);
const databases: TestDatabase[] = [];

afterEach(async () => {
  await Promise.all(databases.splice(0).map((database) => database.drop()));
});

async function emptyDatabase(): Promise<string> {
  const database = await createTestDatabase({ migrated: false });
  databases.push(database);
  return database.url;
}

/** What a schema looks like from outside: tables, columns, types, defaults and constraints. */
async function describeSchema(url: string) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const columns = await sql`
      SELECT table_name, column_name, data_type, character_maximum_length, is_nullable, column_default, is_identity
      FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`;
    const indexes = await sql`SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname`;
    const constraints = await sql`
      SELECT conrelid::regclass::text AS table_name, conname, pg_get_constraintdef(oid) AS definition
      FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY conname`;
    return { columns: [...columns], constraints: [...constraints], indexes: [...indexes] };
  } finally {
    await sql.end();
  }
}

describe('the committed migrations', () => {
  it('match the table definitions: generating from them produces nothing new', async () => {
    const copy = await mkdtemp(path.join(tmpdir(), 'migrations-check-'));
    try {
      await cp(MIGRATIONS_DIR, copy, { recursive: true });
      const before = await readdir(copy, { recursive: true });
      // drizzle-kit resolves --out relative to the working directory.
      const { stdout } = await run(
        'node_modules/.bin/drizzle-kit',
        ['generate', '--dialect', 'postgresql', '--schema', 'src/db/schema.ts', '--out', path.relative(process.cwd(), copy)],
        { env: { ...process.env, NO_COLOR: '1' } },
      );
      expect(stdout).toContain('No schema changes');
      expect(await readdir(copy, { recursive: true })).toEqual(before);
    } finally {
      await rm(copy, { recursive: true, force: true });
    }
  });

  it('each ship a down script', async () => {
    const migrations = await readMigrations();
    expect(migrations.length).toBeGreaterThan(0);
    for (const migration of migrations) expect(migration.down.length, migration.tag).toBeGreaterThan(0);
  });

  it('refuse to load a migration without a down script', async () => {
    const copy = await mkdtemp(path.join(tmpdir(), 'migrations-nodown-'));
    try {
      await cp(MIGRATIONS_DIR, copy, { recursive: true });
      await rm(path.join(copy, 'down'), { recursive: true });
      await expect(readMigrations(copy)).rejects.toThrow(/has no down script/);
    } finally {
      await rm(copy, { recursive: true, force: true });
    }
  });
});

describe('the migrator', () => {
  it('upgrades an empty database, and does nothing the second time', async () => {
    const url = await emptyDatabase();
    const tags = (await readMigrations()).map((migration) => migration.tag);
    expect(await migrationStatus(url)).toEqual({ applied: [], pending: tags });
    expect(await migrateUp(url)).toEqual(tags);
    expect(await migrateUp(url)).toEqual([]);
    expect(await migrationStatus(url)).toEqual({ applied: tags, pending: [] });
  });

  it('round-trips up, down to nothing, and up again to the same schema', async () => {
    const url = await emptyDatabase();
    const empty = await describeSchema(url);
    await migrateUp(url);
    const migrated = await describeSchema(url);
    const itemColumns = migrated.columns.filter((column) => column['table_name'] === 'items');
    expect(itemColumns.map((column) => column['column_name'])).toEqual(['id', 'name', 'description', 'created_at', 'updated_at']);

    const migrations = await readMigrations();
    for (const migration of [...migrations].reverse()) expect(await migrateDown(url)).toBe(migration.tag);
    expect(await migrateDown(url)).toBeUndefined();
    expect(await describeSchema(url)).toEqual(empty);

    await migrateUp(url);
    expect(await describeSchema(url)).toEqual(migrated);
  });

  it('is safe when several instances migrate at once: one applies, the others wait and find nothing to do', async () => {
    const url = await emptyDatabase();
    const results = await Promise.all(Array.from({ length: 4 }, () => migrateUp(url)));
    const tags = (await readMigrations()).map((migration) => migration.tag);
    expect(results.filter((applied) => applied.length > 0)).toEqual([tags]);
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    const [journal] = await sql`SELECT count(*)::int AS count FROM drizzle.__drizzle_migrations`;
    await sql.end();
    expect(journal).toEqual({ count: tags.length });
  });

  it('rolls a failing migration back whole and reports why', async () => {
    const url = await emptyDatabase();
    const copy = await mkdtemp(path.join(tmpdir(), 'migrations-broken-'));
    try {
      await cp(MIGRATIONS_DIR, copy, { recursive: true });
      const journalPath = path.join(copy, 'meta', '_journal.json');
      const journal = JSON.parse(await readFile(journalPath, 'utf8')) as { entries: { idx: number; tag: string; when: number }[] };
      journal.entries.push({ ...journal.entries.at(-1)!, idx: journal.entries.length, tag: '9999_broken', when: Date.now() });
      await writeFile(journalPath, JSON.stringify(journal));
      await writeFile(path.join(copy, '9999_broken.sql'), 'CREATE TABLE half_done (id int);\n--> statement-breakpoint\nSELECT no_such_function();');
      await writeFile(path.join(copy, 'down', '9999_broken.sql'), 'DROP TABLE half_done;');

      await expect(migrateUp(url, copy)).rejects.toThrow(/no_such_function/);
      const status = await migrationStatus(url, copy);
      expect(status.pending).toEqual(['9999_broken']);
      const sql = postgres(url, { max: 1, onnotice: () => {} });
      const [table] = await sql`SELECT to_regclass('half_done') AS name`;
      await sql.end();
      expect(table).toEqual({ name: null });
    } finally {
      await rm(copy, { recursive: true, force: true });
    }
  });
});

describe('npm run db:migrate', () => {
  it('exits non-zero and names the cause when the database is unreachable', async () => {
    const port = await freePort();
    const failure = await run('node_modules/.bin/tsx', ['src/db/cli.ts', 'migrate'], {
      env: { ...process.env, DATABASE_URL: `postgres://postgres:postgres@127.0.0.1:${port}/none`, LOG_LEVEL: 'silent' },
    }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toContain('ECONNREFUSED');
  });

  it('applies the migrations to DATABASE_URL and reports its status', async () => {
    const url = await emptyDatabase();
    const env = { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'silent' };
    await run('node_modules/.bin/tsx', ['src/db/cli.ts', 'migrate'], { env });
    const tags = (await readMigrations()).map((migration) => migration.tag);
    const { stdout } = await run('node_modules/.bin/tsx', ['src/db/cli.ts', 'status'], { env });
    expect(stdout).toBe(tags.map((tag) => `applied  ${tag}\n`).join(''));
    await run('node_modules/.bin/tsx', ['src/db/cli.ts', 'rollback'], { env });
    const afterRollback = [...tags.slice(0, -1).map((tag) => `applied  ${tag}\n`), `pending  ${tags.at(-1)}\n`].join('');
    expect((await run('node_modules/.bin/tsx', ['src/db/cli.ts', 'status'], { env })).stdout).toBe(afterRollback);
  });
});
