import postgres from 'postgres';
import { MigrationError } from './migrations-error.js';
import { MIGRATIONS_DIR, readMigrations, type Migration } from './migrations-files.js';
import { historyEntries, type HistoryEntry } from './migrations-history.js';
import { ADVISORY_LOCK_KEY, JOURNAL_SETUP, forgetApplied, readJournal, recordApplied } from './migrations-journal.js';
import { assertJournalMatchesFiles, reconcile, resolveName, rollbackPlan, upgradePlan, type Ledger } from './migrations-plan.js';
import { upgradeScript } from './migrations-script.js';

/**
 * Applies and reverts the SQL migrations that drizzle-kit generates into `migrations/`.
 *
 * Written here rather than taken from drizzle-orm's `migrate()` because that one takes no lock
 * (concurrent instances collide), has no down migrations, and never compares the stored hashes
 * with the files. It keeps drizzle's own journal table, so `drizzle-kit migrate` and this migrator
 * agree on what is applied. Every command holds the advisory lock for its whole run; each
 * migration is applied or reverted in its own transaction, together with its journal row.
 */

export { MIGRATIONS_DIR, readMigrations } from './migrations-files.js';

export interface UpgradeOptions {
  dir?: string;
  /** Stop after this migration (a tag or its number); default: the newest. */
  to?: string;
}

export interface RollbackOptions {
  dir?: string;
  /** Revert this many of the newest applied migrations (default 1). */
  steps?: number;
  /** Revert until this migration (a tag or its number) is the newest applied. */
  to?: string;
}

/** Applies pending migrations in order, up to `to`. Returns the tags it applied. */
export async function migrateUp(databaseUrl: string, { dir = MIGRATIONS_DIR, to }: UpgradeOptions = {}): Promise<string[]> {
  const migrations = await readMigrations(dir);
  const toIndex = to === undefined ? undefined : resolveName(migrations, to);
  return withMigrationLock(databaseUrl, async (sql) => {
    const pending = upgradePlan(await checkedLedger(sql, migrations, dir), toIndex);
    if (pending.length === 0) return [];
    for (const statement of JOURNAL_SETUP) await sql.unsafe(statement);
    const applied: string[] = [];
    for (const migration of pending) {
      await runInTransaction(sql, migration, 'applying', [...migration.up, recordApplied(migration)], applied);
      applied.push(migration.tag);
    }
    return applied;
  });
}

/** Reverts applied migrations with their down files, newest first. Returns the tags it reverted. */
export async function rollback(databaseUrl: string, { dir = MIGRATIONS_DIR, steps, to }: RollbackOptions = {}): Promise<string[]> {
  const migrations = await readMigrations(dir);
  const toIndex = to === undefined ? undefined : resolveName(migrations, to);
  return withMigrationLock(databaseUrl, async (sql) => {
    const revert = rollbackPlan(await checkedLedger(sql, migrations, dir), { steps, toIndex });
    const reverted: string[] = [];
    for (const { migration, applied } of revert) {
      await runInTransaction(sql, migration, 'rolling back', [...migration.down, forgetApplied(applied)], reverted);
      reverted.push(migration.tag);
    }
    return reverted;
  });
}

/** Every migration, applied or pending, with when it was applied. Changes nothing. */
export async function migrationHistory(databaseUrl: string, dir = MIGRATIONS_DIR): Promise<HistoryEntry[]> {
  const migrations = await readMigrations(dir);
  return withMigrationLock(databaseUrl, async (sql) => historyEntries(reconcile(migrations, await readJournal(sql))));
}

/**
 * The script `migrateUp` would run now, for `psql -v ON_ERROR_STOP=1 -f`. Reads the journal to know
 * what is pending, and changes nothing; refuses what `migrateUp` refuses.
 */
export async function migrationScript(databaseUrl: string, { dir = MIGRATIONS_DIR, to }: UpgradeOptions = {}): Promise<string> {
  const migrations = await readMigrations(dir);
  const toIndex = to === undefined ? undefined : resolveName(migrations, to);
  return withMigrationLock(databaseUrl, async (sql) => upgradeScript(upgradePlan(await checkedLedger(sql, migrations, dir), toIndex)));
}

async function checkedLedger(sql: postgres.Sql, migrations: Migration[], dir: string): Promise<Ledger> {
  const ledger = reconcile(migrations, await readJournal(sql));
  assertJournalMatchesFiles(ledger, dir);
  return ledger;
}

async function runInTransaction(sql: postgres.Sql, migration: Migration, action: string, statements: string[], done: string[]): Promise<void> {
  try {
    await sql.begin(async (transaction) => {
      // The simple protocol: a hand-written down file may hold several statements in one chunk.
      for (const statement of statements) await transaction.unsafe(statement).simple();
    });
  } catch (error) {
    const before = done.length > 0 ? ` (done before it: ${done.join(', ')})` : '';
    throw new MigrationError(`${migration.tag} failed while ${action} and was rolled back whole${before}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/**
 * Runs `work` on one dedicated connection that holds a session advisory lock, so that several
 * instances migrating at once take turns instead of colliding, and readers see no half-done run.
 */
async function withMigrationLock<T>(databaseUrl: string, work: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    // Waiting for another instance's migrations, and running our own, take as long as they take: a
    // statement_timeout set on the role or database (as managed services do) must not cut them.
    // One connection (max: 1) holds the session, its lock and this setting.
    const lock = async () => {
      await sql`SET statement_timeout = 0`;
      await sql`SELECT pg_advisory_lock(${ADVISORY_LOCK_KEY})`;
    };
    await lock().catch((error: Error) => {
      throw new MigrationError(`Cannot connect to the database (for the migration lock): ${error.message}`, { cause: error });
    });
    return await work(sql);
  } finally {
    // Closing the connection releases the session lock as well.
    await sql.end({ timeout: 5 });
  }
}
