import { execFile } from 'node:child_process';
import { appendFile, cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { drizzle } from 'drizzle-orm/postgres-js';
import { migrate as drizzleMigrate } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import { afterEach, describe, expect, it } from 'vitest';
import { MIGRATIONS_DIR, migrateUp, migrationHistory, readMigrations, rollback } from '../../src/db/migrate.js';
import { ADVISORY_LOCK_KEY } from '../../src/db/migrations-journal.js';
import { downFileProblem, unwrittenDownFile } from '../../src/db/migrations-down-files.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { freePort } from '../helpers/ports.js';
import { systemTool } from '../helpers/system-tools.js';

const run = promisify(execFile);
const databases: TestDatabase[] = [];
const folders: string[] = [];

afterEach(async () => {
  await Promise.all(databases.splice(0).map((database) => database.drop()));
  await Promise.all(folders.splice(0).map((folder) => rm(folder, { recursive: true, force: true })));
});

async function emptyDatabase(): Promise<string> {
  const database = await createTestDatabase({ migrated: false });
  databases.push(database);
  return database.url;
}

/**
 * The first two committed migrations (applied everywhere, so never edited), and two more for the
 * cases that move several steps. Tests build their folders from these, so later migrations
 * committed to migrations/ change nothing here.
 */
const BASE_TAGS = ['0000_create_items', '0001_idempotency_keys'];
const EXTRA_MIGRATIONS = [
  { tag: '0002_notes', up: 'CREATE TABLE "notes" ("id" integer PRIMARY KEY, "body" text NOT NULL);', down: 'DROP TABLE "notes";' },
  { tag: '0003_note_author', up: 'ALTER TABLE "notes" ADD COLUMN "author" text;', down: 'ALTER TABLE "notes" DROP COLUMN "author";' },
];
const ALL_TAGS = [...BASE_TAGS, ...EXTRA_MIGRATIONS.map((migration) => migration.tag)];

interface JournalFile {
  entries: { idx: number; tag: string; when: number }[];
}

/**
 * A migrations folder in the temp folder: the base migrations (with drizzle-kit's snapshots), or
 * every committed one, then `extra`.
 */
async function migrationsFolder(extra: { tag: string; up: string; down: string }[] = [], { committed: copyAll = false } = {}): Promise<string> {
  const folder = await mkdtemp(path.join(tmpdir(), 'migrations-'));
  folders.push(folder);
  await mkdir(path.join(folder, 'down'));
  await mkdir(path.join(folder, 'meta'));
  const committed = JSON.parse(await readFile(path.join(MIGRATIONS_DIR, 'meta', '_journal.json'), 'utf8')) as JournalFile;
  const journal = { ...committed, entries: committed.entries.filter((entry) => copyAll || BASE_TAGS.includes(entry.tag)) };
  for (const { tag } of journal.entries) {
    const snapshot = `${tag.split('_')[0]}_snapshot.json`;
    for (const file of [`${tag}.sql`, path.join('down', `${tag}.sql`), path.join('meta', snapshot)]) {
      await cp(path.join(MIGRATIONS_DIR, file), path.join(folder, file));
    }
  }
  for (const migration of extra) {
    const previous = journal.entries.at(-1)!;
    journal.entries.push({ ...previous, idx: previous.idx + 1, tag: migration.tag, when: previous.when + 1000 });
    await writeFile(path.join(folder, `${migration.tag}.sql`), migration.up);
    await writeFile(path.join(folder, 'down', `${migration.tag}.sql`), migration.down);
  }
  await writeFile(path.join(folder, 'meta', '_journal.json'), JSON.stringify(journal));
  return folder;
}

interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The CLI as `npm run db:<verb> -- <args>` runs it; never throws. */
async function cli(url: string, ...args: string[]): Promise<CommandResult> {
  return run('node_modules/.bin/tsx', ['src/db/cli.ts', ...args], { env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'warn' } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: CommandResult) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );
}

async function query<T extends object>(url: string, text: string): Promise<T[]> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    return [...(await sql.unsafe<T[]>(text))];
  } finally {
    await sql.end();
  }
}

async function tables(url: string): Promise<string[]> {
  const rows = await query<{ name: string }>(url, `SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`);
  return rows.map((row) => row.name);
}

/** The journal as drizzle reads it; null when the database has never been migrated. */
async function journal(url: string): Promise<{ hash: string; created_at: string }[] | null> {
  const [schema] = await query<{ name: string | null }>(url, `SELECT to_regnamespace('drizzle')::text AS name`);
  if (!schema?.name) return null;
  return query(url, 'SELECT hash, created_at FROM drizzle.__drizzle_migrations ORDER BY created_at');
}

/** What a schema looks like from outside: tables, columns, types, defaults and constraints. */
async function describeSchema(url: string, schemas = ['public']) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const columns = await sql`
      SELECT table_schema, table_name, column_name, data_type, character_maximum_length, is_nullable, column_default, is_identity
      FROM information_schema.columns WHERE table_schema IN ${sql(schemas)} ORDER BY table_schema, table_name, ordinal_position`;
    const indexes = await sql`SELECT schemaname, indexname, indexdef FROM pg_indexes WHERE schemaname IN ${sql(schemas)} ORDER BY schemaname, indexname`;
    const constraints = await sql`
      SELECT conrelid::regclass::text AS table_name, conname, pg_get_constraintdef(oid) AS definition
      FROM pg_constraint WHERE connamespace::regnamespace::text IN ${sql(schemas)} ORDER BY table_name, conname`;
    return { columns: [...columns], constraints: [...constraints], indexes: [...indexes] };
  } finally {
    await sql.end();
  }
}

const psql = systemTool('psql');

async function psqlFile(url: string, script: string): Promise<{ stdout: string; stderr: string }> {
  const file = path.join(await mkdtemp(path.join(tmpdir(), 'migrate-sql-')), 'upgrade.sql');
  folders.push(path.dirname(file));
  await writeFile(file, script);
  return run(psql.path!, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', file, url]);
}

describe('the committed migrations', () => {
  it('match the table definitions: generating from them produces nothing new', async () => {
    const copy = await mkdtemp(path.join(tmpdir(), 'migrations-check-'));
    folders.push(copy);
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
  });

  it('each ship a written down file', async () => {
    const migrations = await readMigrations();
    expect(migrations.map((migration) => migration.tag).slice(0, 2)).toEqual(BASE_TAGS);
    for (const migration of migrations) expect(downFileProblem(migration), migration.tag).toBeUndefined();
  });
});

describe('npm run db:generate', () => {
  it('creates the down file beside a new migration, and db:migrate refuses the migration until it is written', async () => {
    // Generated against every committed migration, as a developer would: the new one comes next.
    const folder = await migrationsFolder([], { committed: true });
    const committedDowns = await readdir(path.join(folder, 'down'));
    const committedTags = committedDowns.map((file) => file.replace(/\.sql$/, ''));
    const tag = `${String(committedDowns.length).padStart(4, '0')}_notes`;
    const { stdout } = await run(
      'node_modules/.bin/tsx',
      [
        'src/db/migrations-generate.ts',
        ...['--dialect', 'postgresql', '--schema', 'test/fixtures/schema-with-notes.ts'],
        ...['--out', path.relative(process.cwd(), folder), '--name', 'notes'],
      ],
      { env: { ...process.env, NO_COLOR: '1' } },
    );
    const downFile = path.join(folder, 'down', `${tag}.sql`);
    expect(stdout).toContain(`Created ${downFile}: write the SQL that reverses the migration there before db:migrate applies it.\n`);
    expect(await readFile(path.join(folder, `${tag}.sql`), 'utf8')).toContain('CREATE TABLE "notes"');
    expect(await readdir(path.join(folder, 'down'))).toEqual([...committedDowns, `${tag}.sql`]);
    expect(await readFile(downFile, 'utf8')).toBe(
      `-- DOWN MIGRATION NOT WRITTEN. Write below the SQL that reverses ${tag}.sql, then delete\n` +
        `-- these two lines: db:migrate refuses to apply ${tag} while they are here.\n`,
    );
    for (const tag of committedDowns) {
      expect(await readFile(path.join(folder, 'down', tag), 'utf8')).toBe(await readFile(path.join(MIGRATIONS_DIR, 'down', tag), 'utf8'));
    }

    const url = await emptyDatabase();
    expect(await cli(url, 'migrate', '--dir', folder)).toEqual({
      code: 1,
      stdout: '',
      stderr:
        'Refusing to apply a migration without a written down file:\n' +
        `${downFile} is not written yet: write the SQL that reverses ${tag}.sql and delete its "DOWN MIGRATION NOT WRITTEN" header\n` +
        'Nothing was changed.\n',
    });
    expect(await journal(url)).toBeNull();
    expect(await tables(url)).toEqual([]);

    // The migrations before it are not held back.
    const previous = committedTags.at(-1)!;
    expect(await migrateUp(url, { dir: folder, to: previous })).toEqual(committedTags);
    await writeFile(downFile, 'DROP TABLE "notes";\n');
    expect(await migrateUp(url, { dir: folder })).toEqual([tag]);
    expect(await tables(url)).toEqual(['idempotency_keys', 'items', 'notes']);
    expect(await rollback(url, { dir: folder })).toEqual([tag]);
    expect(await tables(url)).toEqual(['idempotency_keys', 'items']);
  });
});

describe('refusals, before anything changes', () => {
  it('refuses an applied migration whose file was edited, naming the file and both hashes', async () => {
    const url = await emptyDatabase();
    const folder = await migrationsFolder(EXTRA_MIGRATIONS);
    await migrateUp(url, { dir: folder, to: '0002' });
    const file = path.join(folder, '0001_idempotency_keys.sql');
    const appliedHash = (await readMigrations(folder))[1]!.hash;
    await appendFile(file, '\n--> statement-breakpoint\nCREATE INDEX "idempotency_keys_status" ON "idempotency_keys" ("status");');
    const editedHash = (await readMigrations(folder))[1]!.hash;
    const journalBefore = await journal(url);

    const refusal =
      `${file} was edited after it was applied: the journal recorded sha256 ${appliedHash}, the file has sha256 ${editedHash}. ` +
      'Restore the file and put the change in a new migration.\nNothing was changed.';
    expect(await cli(url, 'migrate', '--dir', folder)).toEqual({ code: 1, stdout: '', stderr: `${refusal}\n` });
    await expect(rollback(url, { dir: folder })).rejects.toThrow(refusal);
    expect(await journal(url)).toEqual(journalBefore);
    expect(await tables(url)).toEqual(['idempotency_keys', 'items', 'notes']);
    const notes = await query<{ name: string }>(url, `SELECT column_name AS name FROM information_schema.columns WHERE table_name = 'notes'`);
    expect(notes.map((column) => column.name).sort()).toEqual(['body', 'id']);
  });

  it('refuses to apply a migration whose down file is missing or unwritten, and applies none of the others', async () => {
    const url = await emptyDatabase();
    const folder = await migrationsFolder(EXTRA_MIGRATIONS);
    await rm(path.join(folder, 'down', '0002_notes.sql'));
    await writeFile(path.join(folder, 'down', '0003_note_author.sql'), unwrittenDownFile('0003_note_author'));

    await expect(migrateUp(url, { dir: folder })).rejects.toThrow(
      'Refusing to apply a migration without a written down file:\n' +
        `0002_notes has no down migration: ${path.join(folder, 'down', '0002_notes.sql')} is missing (write there the SQL that reverses 0002_notes.sql)\n` +
        `${path.join(folder, 'down', '0003_note_author.sql')} is not written yet: write the SQL that reverses 0003_note_author.sql and delete its "DOWN MIGRATION NOT WRITTEN" header\n` +
        'Nothing was changed.',
    );
    expect(await journal(url)).toBeNull();
    expect(await tables(url)).toEqual([]);
  });

  it('refuses a down file with no SQL', async () => {
    const folder = await migrationsFolder([{ ...EXTRA_MIGRATIONS[0]!, down: '-- nothing to undo\n' }]);
    const url = await emptyDatabase();
    await expect(migrateUp(url, { dir: folder })).rejects.toThrow(
      `${path.join(folder, 'down', '0002_notes.sql')} has no SQL: write the SQL that reverses 0002_notes.sql (for one that cannot be reversed, a statement that raises an error saying why)`,
    );
    expect(await tables(url)).toEqual([]);
  });

  it('refuses to act on a database with an applied migration that the folder does not list', async () => {
    const url = await emptyDatabase();
    const folder = await migrationsFolder(EXTRA_MIGRATIONS);
    await migrateUp(url, { dir: folder });
    const [newest] = await query<{ hash: string; created_at: string }>(url, 'SELECT hash, created_at FROM drizzle.__drizzle_migrations ORDER BY created_at DESC LIMIT 1');
    const base = await migrationsFolder();
    const message =
      `The database has an applied migration that is not in the folder ${base} (created_at ${newest!.created_at}, sha256 ${newest!.hash}): ` +
      'it was applied by another branch or a newer version; act on it from that code.';
    await expect(migrateUp(url, { dir: base })).rejects.toThrow(message);
    await expect(rollback(url, { dir: base })).rejects.toThrow(message);
    expect(await tables(url)).toEqual(['idempotency_keys', 'items', 'notes']);
  });

  it('names the known migrations when --to names none, or several', async () => {
    const url = await emptyDatabase();
    const folder = await migrationsFolder(EXTRA_MIGRATIONS);
    expect(await cli(url, 'migrate', '--dir', folder, '--to', '0009')).toEqual({
      code: 1,
      stdout: '',
      stderr: `Unknown migration "0009". Known: ${ALL_TAGS.join(', ')}\n`,
    });
    await expect(rollback(url, { dir: folder, to: '0002_note' })).rejects.toThrow(`Unknown migration "0002_note". Known: ${ALL_TAGS.join(', ')}`);
    const twins = await migrationsFolder([EXTRA_MIGRATIONS[0]!, { ...EXTRA_MIGRATIONS[1]!, tag: '0002_twin' }]);
    await expect(migrateUp(url, { dir: twins, to: '0002' })).rejects.toThrow(
      '"0002" names several migrations; use the whole tag. Known: 0000_create_items, 0001_idempotency_keys, 0002_notes, 0002_twin',
    );
    expect(await journal(url)).toBeNull();
  });

  it('refuses to move backwards with db:migrate, to stop a rollback at a pending migration, or to roll back more than is applied', async () => {
    const url = await emptyDatabase();
    const folder = await migrationsFolder(EXTRA_MIGRATIONS);
    await migrateUp(url, { dir: folder, to: '0002' });
    await expect(migrateUp(url, { dir: folder, to: '0001' })).rejects.toThrow(
      '0002_notes is applied, newer than 0001_idempotency_keys: db:migrate only moves forward; to go back, db:rollback -- --to 0001_idempotency_keys',
    );
    await expect(rollback(url, { dir: folder, to: '0003' })).rejects.toThrow(
      '0003_note_author is not applied, so rolling back cannot stop at it. Applied: 0000_create_items, 0001_idempotency_keys, 0002_notes',
    );
    expect(await cli(url, 'rollback', '--dir', folder, '--steps', '4')).toEqual({
      code: 1,
      stdout: '',
      stderr: 'Cannot roll back 4 migration(s): 3 applied (0000_create_items, 0001_idempotency_keys, 0002_notes). Nothing was changed.\n',
    });
    expect(await tables(url)).toEqual(['idempotency_keys', 'items', 'notes']);
  });

  it('rejects malformed options with one line and exit code 1, before touching any database', async () => {
    const unreachable = `postgres://postgres:postgres@127.0.0.1:${await freePort()}/none`;
    expect(await cli(unreachable, 'rollback', '--steps', '0')).toEqual({ code: 1, stdout: '', stderr: '--steps takes a whole number above 0, not "0"\n' });
    expect(await cli(unreachable, 'rollback', '--steps', '1', '--to', '0000')).toEqual({ code: 1, stdout: '', stderr: 'Give --to or --steps, not both\n' });
    expect(await cli(unreachable, 'history', '--sql')).toEqual({ code: 1, stdout: '', stderr: '--sql does not apply to history; see --help\n' });
    expect(await cli(unreachable, 'upgrade')).toEqual({
      code: 1,
      stdout: '',
      stderr: 'Expected one of migrate, rollback, history, status, not "upgrade"; see --help\n',
    });
  });
});

describe('moving between migrations', () => {
  it('db:migrate --to and db:rollback --to move forward and back to the named migration', async () => {
    const url = await emptyDatabase();
    const folder = await migrationsFolder(EXTRA_MIGRATIONS);
    expect(await cli(url, 'migrate', '--dir', folder, '--to', '0001')).toEqual({
      code: 0,
      stdout: 'applied  0000_create_items\napplied  0001_idempotency_keys\n',
      stderr: '',
    });
    expect(await tables(url)).toEqual(['idempotency_keys', 'items']);
    expect(await migrateUp(url, { dir: folder, to: '0001_idempotency_keys' })).toEqual([]);
    expect(await migrateUp(url, { dir: folder, to: '0003_note_author' })).toEqual(['0002_notes', '0003_note_author']);
    expect(await tables(url)).toEqual(['idempotency_keys', 'items', 'notes']);

    expect(await cli(url, 'rollback', '--dir', folder, '--to', '0001_idempotency_keys')).toEqual({
      code: 0,
      stdout: 'rolled back  0003_note_author\nrolled back  0002_notes\n',
      stderr: '',
    });
    expect(await tables(url)).toEqual(['idempotency_keys', 'items']);
    expect(await rollback(url, { dir: folder, to: '0001' })).toEqual([]);
    expect(await rollback(url, { dir: folder, to: '0000' })).toEqual(['0001_idempotency_keys']);
    expect((await migrationHistory(url, folder)).map((entry) => [entry.tag, entry.applied])).toEqual([
      ['0000_create_items', true],
      ['0001_idempotency_keys', false],
      ['0002_notes', false],
      ['0003_note_author', false],
    ]);
  });

  it('db:rollback --steps N reverts the N newest, each in its own transaction', async () => {
    const url = await emptyDatabase();
    const folder = await migrationsFolder(EXTRA_MIGRATIONS);
    expect(await migrateUp(url, { dir: folder })).toEqual(ALL_TAGS);
    expect(await cli(url, 'rollback', '--dir', folder, '--steps', '3')).toEqual({
      code: 0,
      stdout: 'rolled back  0003_note_author\nrolled back  0002_notes\nrolled back  0001_idempotency_keys\n',
      stderr: '',
    });
    expect(await tables(url)).toEqual(['items']);
    expect(await journal(url)).toHaveLength(1);

    // A down file that fails midway: the migrations reverted before it stay reverted, it stays applied.
    await migrateUp(url, { dir: folder });
    await writeFile(path.join(folder, 'down', '0002_notes.sql'), 'DROP TABLE "notes";\n--> statement-breakpoint\nSELECT no_such_function();');
    await expect(rollback(url, { dir: folder, steps: 2 })).rejects.toThrow(
      '0002_notes failed while rolling back and was rolled back whole (done before it: 0003_note_author): function no_such_function() does not exist',
    );
    expect((await migrationHistory(url, folder)).filter((entry) => entry.applied).map((entry) => entry.tag)).toEqual(ALL_TAGS.slice(0, 3));
    expect(await tables(url)).toEqual(['idempotency_keys', 'items', 'notes']);
  });
});

describe('npm run db:history', () => {
  it('lists each migration, applied with the time it was applied, or pending; db:status is the same', async () => {
    const url = await emptyDatabase();
    const folder = await migrationsFolder(EXTRA_MIGRATIONS);
    const before = Date.now();
    await migrateUp(url, { dir: folder, to: '0001' });
    const after = Date.now();
    const times = await query<{ applied_at: Date }>(url, 'SELECT applied_at FROM drizzle.__drizzle_migrations ORDER BY created_at');
    for (const { applied_at } of times) {
      expect(applied_at.getTime()).toBeGreaterThanOrEqual(before);
      expect(applied_at.getTime()).toBeLessThanOrEqual(after);
    }
    const history = await cli(url, 'history', '--dir', folder);
    expect(history).toEqual({
      code: 0,
      stdout:
        `applied  0000_create_items      ${times[0]!.applied_at.toISOString()}\n` +
        `applied  0001_idempotency_keys  ${times[1]!.applied_at.toISOString()}\n` +
        'pending  0002_notes\n' +
        'pending  0003_note_author\n',
      stderr: '',
    });
    expect(await cli(url, 'status', '--dir', folder)).toEqual(history);
  });

  it('reads a journal that drizzle-kit wrote (no applied times), and records times from then on', async () => {
    const url = await emptyDatabase();
    const folder = await migrationsFolder(EXTRA_MIGRATIONS);
    const client = postgres(url, { max: 1, onnotice: () => {} });
    await drizzleMigrate(drizzle(client), { migrationsFolder: await migrationsFolder() });
    await client.end();

    expect(await migrateUp(url, { dir: folder })).toEqual(['0002_notes', '0003_note_author']);
    const entries = await migrationHistory(url, folder);
    expect(entries.map(({ tag, applied, appliedAt }) => [tag, applied, appliedAt === null])).toEqual([
      ['0000_create_items', true, true],
      ['0001_idempotency_keys', true, true],
      ['0002_notes', true, false],
      ['0003_note_author', true, false],
    ]);
    const { stdout } = await cli(url, 'history', '--dir', folder);
    expect(stdout.split('\n').slice(0, 2)).toEqual(['applied  0000_create_items      time-not-recorded', 'applied  0001_idempotency_keys  time-not-recorded']);
  });
});

describe('npm run db:migrate -- --sql', () => {
  it.skipIf(psql.missing)('prints the pending SQL as a script that psql applies cleanly, leaving what db:migrate leaves, and changes nothing itself', async () => {
    const bySql = await emptyDatabase();
    const byMigrate = await emptyDatabase();
    const folder = await migrationsFolder(EXTRA_MIGRATIONS);
    const migrations = await readMigrations(folder);

    const first = await cli(bySql, 'migrate', '--dir', folder, '--sql', '--to', '0001');
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(first.stdout).toContain(`-- 0000_create_items (${folder}/0000_create_items.sql)\nBEGIN;\nCREATE TABLE "items"`);
    expect(first.stdout).toContain(`-- 0001_idempotency_keys (${folder}/0001_idempotency_keys.sql)\nBEGIN;\nCREATE TABLE "idempotency_keys"`);
    expect(first.stdout).not.toContain('0002_notes (');
    expect(await journal(bySql)).toBeNull();
    expect(await tables(bySql)).toEqual([]);
    expect(await psqlFile(bySql, first.stdout)).toEqual({ stdout: '', stderr: '' });
    expect(await tables(bySql)).toEqual(['idempotency_keys', 'items']);

    // The journal says 0000 and 0001 are applied now: only the two others remain.
    const [notes, noteAuthor] = migrations.slice(2);
    expect(await cli(bySql, 'migrate', '--dir', folder, '--sql')).toEqual({
      code: 0,
      stderr: '',
      stdout: [
        '-- db:migrate --sql: 2 migration(s), 0002_notes, 0003_note_author.',
        '-- Apply with: psql -v ON_ERROR_STOP=1 -f <this file> <database>',
        "-- The migrator's advisory lock is held throughout, so this waits for another migrator and never",
        '-- overlaps one; each migration is its own transaction, recorded in the journal as db:migrate does.',
        'SET client_min_messages = warning;',
        'DO $$ BEGIN PERFORM pg_advisory_lock(7239001); END $$;',
        'CREATE SCHEMA IF NOT EXISTS drizzle;',
        'CREATE TABLE IF NOT EXISTS drizzle.__drizzle_migrations (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint);',
        'ALTER TABLE drizzle.__drizzle_migrations ADD COLUMN IF NOT EXISTS applied_at timestamptz;',
        'ALTER TABLE drizzle.__drizzle_migrations ALTER COLUMN applied_at SET DEFAULT now();',
        '',
        `-- 0002_notes (${folder}/0002_notes.sql)`,
        'BEGIN;',
        'CREATE TABLE "notes" ("id" integer PRIMARY KEY, "body" text NOT NULL);',
        `INSERT INTO drizzle.__drizzle_migrations (hash, created_at) VALUES ('${notes!.hash}', ${notes!.createdAt});`,
        'COMMIT;',
        '',
        `-- 0003_note_author (${folder}/0003_note_author.sql)`,
        'BEGIN;',
        'ALTER TABLE "notes" ADD COLUMN "author" text;',
        `INSERT INTO drizzle.__drizzle_migrations (hash, created_at) VALUES ('${noteAuthor!.hash}', ${noteAuthor!.createdAt});`,
        'COMMIT;',
        '',
        'DO $$ BEGIN PERFORM pg_advisory_unlock(7239001); END $$;',
        '',
      ].join('\n'),
    });
    expect(await psqlFile(bySql, (await cli(bySql, 'migrate', '--dir', folder, '--sql')).stdout)).toEqual({ stdout: '', stderr: '' });

    expect(await cli(byMigrate, 'migrate', '--dir', folder)).toMatchObject({ code: 0 });
    expect(await describeSchema(bySql, ['public', 'drizzle'])).toEqual(await describeSchema(byMigrate, ['public', 'drizzle']));
    expect(await journal(bySql)).toEqual(await journal(byMigrate));
    expect((await migrationHistory(bySql, folder)).map(({ applied, appliedAt }) => applied && appliedAt instanceof Date)).toEqual([true, true, true, true]);
    expect(await cli(bySql, 'migrate', '--dir', folder, '--sql')).toEqual({ code: 0, stdout: '-- db:migrate --sql: nothing to apply.\n', stderr: '' });
    expect(await migrateUp(bySql, { dir: folder })).toEqual([]);
  });

  it('fails, printing no SQL, when the database cannot be reached to read its journal', async () => {
    const port = await freePort();
    const failure = await cli(`postgres://postgres:postgres@127.0.0.1:${port}/none`, 'migrate', '--sql');
    expect(failure).toEqual({
      code: 1,
      stdout: '',
      stderr: `Cannot connect to the database (for the migration lock): connect ECONNREFUSED 127.0.0.1:${port}\n`,
    });
  });
});

describe('the migrator', () => {
  it('upgrades an empty database, and does nothing the second time', async () => {
    const url = await emptyDatabase();
    const tags = (await readMigrations()).map((migration) => migration.tag);
    expect((await migrationHistory(url)).map((entry) => [entry.tag, entry.applied])).toEqual(tags.map((tag) => [tag, false]));
    expect(await migrateUp(url)).toEqual(tags);
    expect(await migrateUp(url)).toEqual([]);
    expect((await migrationHistory(url)).map((entry) => [entry.tag, entry.applied])).toEqual(tags.map((tag) => [tag, true]));
  });

  it('round-trips up, down to nothing, and up again to the same schema', async () => {
    const url = await emptyDatabase();
    const empty = await describeSchema(url);
    await migrateUp(url);
    const migrated = await describeSchema(url);
    const itemColumns = migrated.columns.filter((column) => column['table_name'] === 'items');
    expect(itemColumns.map((column) => column['column_name'])).toEqual(['id', 'name', 'description', 'created_at', 'updated_at']);

    const migrations = await readMigrations();
    for (const migration of [...migrations].reverse()) expect(await rollback(url)).toEqual([migration.tag]);
    expect(await rollback(url)).toEqual([]);
    expect(await describeSchema(url)).toEqual(empty);

    await migrateUp(url);
    expect(await describeSchema(url)).toEqual(migrated);
  });

  it('waits for another instance\'s migration past a statement_timeout set on the database (as managed PostgreSQL does)', async () => {
    const url = await emptyDatabase();
    const name = new URL(url).pathname.slice(1);
    const other = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await other.unsafe(`ALTER DATABASE "${name}" SET statement_timeout = '100ms'`);
      await other`SELECT pg_advisory_lock(${ADVISORY_LOCK_KEY})`;
      const migrating = migrateUp(url);
      await new Promise((resolve) => setTimeout(resolve, 500));
      await other`SELECT pg_advisory_unlock(${ADVISORY_LOCK_KEY})`;
      expect(await migrating).toEqual((await readMigrations()).map((migration) => migration.tag));
    } finally {
      await other.end();
    }
  });

  it('is safe when several instances migrate at once: one applies, the others wait and find nothing to do', async () => {
    const url = await emptyDatabase();
    const results = await Promise.all(Array.from({ length: 4 }, () => migrateUp(url)));
    const tags = (await readMigrations()).map((migration) => migration.tag);
    expect(results.filter((applied) => applied.length > 0)).toEqual([tags]);
    expect(await journal(url)).toHaveLength(tags.length);
  });

  it('rolls a failing migration back whole and reports why', async () => {
    const url = await emptyDatabase();
    const folder = await migrationsFolder([
      { tag: '9999_broken', up: 'CREATE TABLE half_done (id int);\n--> statement-breakpoint\nSELECT no_such_function();', down: 'DROP TABLE half_done;' },
    ]);
    await expect(migrateUp(url, { dir: folder })).rejects.toThrow(
      '9999_broken failed while applying and was rolled back whole (done before it: 0000_create_items, 0001_idempotency_keys): function no_such_function() does not exist',
    );
    expect((await migrationHistory(url, folder)).filter((entry) => !entry.applied).map((entry) => entry.tag)).toEqual(['9999_broken']);
    expect(await query(url, `SELECT to_regclass('half_done') AS name`)).toEqual([{ name: null }]);
  });
});

describe('npm run db:migrate', () => {
  it('explains the verbs with --help, without a database', async () => {
    const { code, stdout } = await cli(`postgres://postgres:postgres@127.0.0.1:${await freePort()}/none`, 'migrate', '--help');
    expect(code).toBe(0);
    for (const line of [
      '  npm run db:generate -- --name <name>       alembic revision --autogenerate',
      '  npm run db:migrate                         alembic upgrade head',
      '  npm run db:migrate -- --to <name>          alembic upgrade <rev>: apply pending migrations up to <name>',
      '  npm run db:migrate -- --sql [--to <name>]  alembic upgrade --sql: print the SQL instead of running it,',
      '  npm run db:rollback                        alembic downgrade -1',
      '  npm run db:rollback -- --steps <n>         alembic downgrade -<n>',
      '  npm run db:rollback -- --to <name>         alembic downgrade <rev>: until <name> is the newest applied',
      '  npm run db:history                         alembic history / current: each migration, applied (with',
    ]) {
      expect(stdout.split('\n')).toContain(line);
    }
  });

  it('exits non-zero and names the cause when the database is unreachable', async () => {
    const port = await freePort();
    const failure = await cli(`postgres://postgres:postgres@127.0.0.1:${port}/none`, 'migrate');
    expect(failure.code).toBe(1);
    expect(failure.stderr).toContain('ECONNREFUSED');
  });

  it('applies the migrations to DATABASE_URL, rolls one back, and reports its history', async () => {
    const url = await emptyDatabase();
    const tags = (await readMigrations()).map((migration) => migration.tag);
    expect(await cli(url, 'migrate')).toEqual({ code: 0, stdout: tags.map((tag) => `applied  ${tag}\n`).join(''), stderr: '' });
    expect(await cli(url, 'migrate')).toEqual({ code: 0, stdout: 'nothing to apply\n', stderr: '' });
    expect(await cli(url, 'rollback')).toEqual({ code: 0, stdout: `rolled back  ${tags.at(-1)}\n`, stderr: '' });
    const { stdout } = await cli(url, 'status');
    expect(stdout.split('\n').map((line) => line.split(/ +/).slice(0, 2).join(' '))).toEqual([
      ...tags.slice(0, -1).map((tag) => `applied ${tag}`),
      `pending ${tags.at(-1)}`,
      '',
    ]);
  });
});
