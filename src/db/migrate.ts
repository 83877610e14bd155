import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';

/**
 * Applies and reverts the SQL migrations that drizzle-kit generates into `migrations/`.
 *
 * Written here rather than taken from drizzle-orm's `migrate()` because that one takes no lock
 * (concurrent instances collide) and has no down migrations. It keeps drizzle's own journal table,
 * so `drizzle-kit migrate` and this migrator agree on what is applied.
 */

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations', import.meta.url));

const JOURNAL_TABLE = 'drizzle.__drizzle_migrations';
const STATEMENT_BREAKPOINT = '--> statement-breakpoint';
/** An arbitrary constant that identifies this service's migration lock among advisory locks. */
const ADVISORY_LOCK_KEY = 7_239_001;

export interface Migration {
  tag: string;
  /** drizzle-kit's timestamp for the migration: the journal orders by it. */
  createdAt: number;
  hash: string;
  up: string[];
  down: string[];
}

export interface MigrationStatus {
  applied: string[];
  pending: string[];
}

interface JournalFile {
  entries: { tag: string; when: number }[];
}

export async function readMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const journal = JSON.parse(await readFile(path.join(dir, 'meta', '_journal.json'), 'utf8')) as JournalFile;
  return Promise.all(
    journal.entries.map(async ({ tag, when }) => {
      const up = await readFile(path.join(dir, `${tag}.sql`), 'utf8');
      const down = await readFile(path.join(dir, 'down', `${tag}.sql`), 'utf8').catch(() => {
        throw new Error(`Migration ${tag} has no down script at migrations/down/${tag}.sql`);
      });
      return {
        tag,
        createdAt: when,
        hash: createHash('sha256').update(up).digest('hex'),
        up: splitStatements(up),
        down: splitStatements(down),
      };
    }),
  );
}

function splitStatements(script: string): string[] {
  return script
    .split(STATEMENT_BREAKPOINT)
    .map((statement) => statement.trim())
    .filter((statement) => statement.replace(/^--.*$/gm, '').trim() !== '');
}

/** Applies every pending migration, each in its own transaction. Returns the tags it applied. */
export async function migrateUp(databaseUrl: string, dir = MIGRATIONS_DIR): Promise<string[]> {
  const migrations = await readMigrations(dir);
  return withMigrationLock(databaseUrl, async (sql) => {
    const appliedHashes = new Set((await readJournal(sql)).map((row) => row.hash));
    const pending = migrations.filter((migration) => !appliedHashes.has(migration.hash));
    for (const migration of pending) {
      await sql.begin(async (transaction) => {
        for (const statement of migration.up) await transaction.unsafe(statement);
        await transaction.unsafe(`INSERT INTO ${JOURNAL_TABLE} (hash, created_at) VALUES ($1, $2)`, [
          migration.hash,
          migration.createdAt,
        ]);
      });
    }
    return pending.map((migration) => migration.tag);
  });
}

/** Reverts the newest applied migration with its down script. Returns its tag, or undefined if none. */
export async function migrateDown(databaseUrl: string, dir = MIGRATIONS_DIR): Promise<string | undefined> {
  const migrations = await readMigrations(dir);
  return withMigrationLock(databaseUrl, async (sql) => {
    const newest = (await readJournal(sql)).at(-1);
    if (!newest) return undefined;
    const migration = migrations.find((candidate) => candidate.hash === newest.hash);
    if (!migration) {
      throw new Error(`The newest applied migration (hash ${newest.hash}) is not in ${dir}: cannot roll it back`);
    }
    await sql.begin(async (transaction) => {
      for (const statement of migration.down) await transaction.unsafe(statement);
      await transaction.unsafe(`DELETE FROM ${JOURNAL_TABLE} WHERE id = $1`, [newest.id]);
    });
    return migration.tag;
  });
}

export async function migrationStatus(databaseUrl: string, dir = MIGRATIONS_DIR): Promise<MigrationStatus> {
  const migrations = await readMigrations(dir);
  return withMigrationLock(databaseUrl, async (sql) => {
    const appliedHashes = new Set((await readJournal(sql)).map((row) => row.hash));
    return {
      applied: migrations.filter((migration) => appliedHashes.has(migration.hash)).map((migration) => migration.tag),
      pending: migrations.filter((migration) => !appliedHashes.has(migration.hash)).map((migration) => migration.tag),
    };
  });
}

/**
 * Runs `work` on one dedicated connection that holds a session advisory lock, so that several
 * instances migrating at once take turns instead of colliding.
 */
async function withMigrationLock<T>(databaseUrl: string, work: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    await sql`SELECT pg_advisory_lock(${ADVISORY_LOCK_KEY})`;
    await sql.unsafe(`CREATE SCHEMA IF NOT EXISTS drizzle`);
    await sql.unsafe(
      `CREATE TABLE IF NOT EXISTS ${JOURNAL_TABLE} (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)`,
    );
    return await work(sql);
  } finally {
    // Closing the connection releases the session lock as well.
    await sql.end({ timeout: 5 });
  }
}

async function readJournal(sql: postgres.Sql): Promise<{ id: number; hash: string }[]> {
  return sql.unsafe<{ id: number; hash: string }[]>(`SELECT id, hash FROM ${JOURNAL_TABLE} ORDER BY created_at, id`);
}
