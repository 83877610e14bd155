import type postgres from 'postgres';
import type { Migration } from './migrations-files.js';

/**
 * Drizzle's own journal table, so that `drizzle-kit migrate` and our migrator agree on what is
 * applied, plus an `applied_at` column for `db:history` (drizzle ignores it; its inserts get the
 * default). The SQL is shared by the migrator and by the script that `db:migrate --sql` prints.
 */

export const JOURNAL_TABLE = 'drizzle.__drizzle_migrations';

/** An arbitrary constant that identifies this service's migration lock among advisory locks. */
export const ADVISORY_LOCK_KEY = 7_239_001;

export interface JournalRow {
  id: number;
  hash: string;
  /** The migration's `when`, as drizzle stores it. */
  createdAt: number | null;
  /** Null for rows written before applied_at existed. */
  appliedAt: Date | null;
}

/** Idempotent: creates the journal, or adds applied_at to one that drizzle-kit created. */
export const JOURNAL_SETUP: readonly string[] = [
  'CREATE SCHEMA IF NOT EXISTS drizzle',
  `CREATE TABLE IF NOT EXISTS ${JOURNAL_TABLE} (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)`,
  // Added without a default, so rows applied earlier stay NULL instead of getting today's time.
  `ALTER TABLE ${JOURNAL_TABLE} ADD COLUMN IF NOT EXISTS applied_at timestamptz`,
  `ALTER TABLE ${JOURNAL_TABLE} ALTER COLUMN applied_at SET DEFAULT now()`,
];

/** The row that records a migration as applied. Literal values: the hash is hex, `when` an integer. */
export function recordApplied(migration: Migration): string {
  if (!/^[0-9a-f]{64}$/.test(migration.hash) || !Number.isSafeInteger(migration.createdAt)) {
    throw new Error(`Unexpected hash or timestamp for ${migration.tag}`);
  }
  return `INSERT INTO ${JOURNAL_TABLE} (hash, created_at) VALUES ('${migration.hash}', ${migration.createdAt})`;
}

export function forgetApplied(row: JournalRow): string {
  return `DELETE FROM ${JOURNAL_TABLE} WHERE id = ${row.id}`;
}

/** The journal in applied order; empty when the table does not exist yet. Reads only. */
export async function readJournal(sql: postgres.Sql): Promise<JournalRow[]> {
  const [table] = await sql<{ name: string | null }[]>`SELECT to_regclass(${JOURNAL_TABLE})::text AS name`;
  if (!table?.name) return [];
  // to_jsonb(row) reads applied_at where the column exists and gives NULL where it does not yet.
  const rows = await sql.unsafe<{ id: number; hash: string; created_at: string | null; applied_at: Date | null }[]>(
    `SELECT id, hash, created_at, (to_jsonb(journal) ->> 'applied_at')::timestamptz AS applied_at
     FROM ${JOURNAL_TABLE} AS journal ORDER BY created_at, id`,
  );
  return rows.map((row) => ({
    id: row.id,
    hash: row.hash,
    createdAt: row.created_at === null ? null : Number(row.created_at),
    appliedAt: row.applied_at,
  }));
}
