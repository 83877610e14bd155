import { downFileProblem } from './migrations-down-files.js';
import { MigrationError } from './migrations-error.js';
import { displayPath, type Migration } from './migrations-files.js';
import type { JournalRow } from './migrations-journal.js';

/**
 * What to apply or revert, decided from the migration files and the database's journal before
 * anything runs, so that a refusal leaves the database as it was.
 */

export interface MigrationState {
  migration: Migration;
  /** The journal row that records it, matched by created_at (drizzle's `when`); undefined if pending. */
  applied: JournalRow | undefined;
}

export type AppliedState = MigrationState & { applied: JournalRow };

export interface Ledger {
  /** Every migration file, in the journal file's order. */
  states: MigrationState[];
  /** Applied rows that no file matches: applied from another branch or a newer version. */
  unknown: JournalRow[];
}

export function reconcile(migrations: Migration[], rows: JournalRow[]): Ledger {
  const unmatched = new Set(rows);
  const states = migrations.map((migration) => {
    const applied = rows.find((row) => unmatched.has(row) && row.createdAt === migration.createdAt);
    if (applied) unmatched.delete(applied);
    return { migration, applied };
  });
  return { states, unknown: [...unmatched] };
}

/** An applied migration whose file changed since, or one the folder does not have, stops every command that acts. */
export function assertJournalMatchesFiles({ states, unknown }: Ledger, dir: string): void {
  const problems = [
    ...states
      .filter(({ migration, applied }) => applied && applied.hash !== migration.hash)
      .map(
        ({ migration, applied }) =>
          `${displayPath(migration.upFile)} was edited after it was applied: the journal recorded sha256 ${applied!.hash}, ` +
          `the file has sha256 ${migration.hash}. Restore the file and put the change in a new migration.`,
      ),
    ...unknown.map(
      (row) =>
        `The database has an applied migration that is not in the folder ${displayPath(dir)} (created_at ${row.createdAt}, sha256 ${row.hash}): ` +
        'it was applied by another branch or a newer version; act on it from that code.',
    ),
  ];
  if (problems.length > 0) throw new MigrationError([...problems, 'Nothing was changed.'].join('\n'));
}

/** The index of a migration named by its tag (0001_idempotency_keys) or its number (0001). */
export function resolveName(migrations: Migration[], name: string): number {
  const exact = migrations.findIndex((migration) => migration.tag === name);
  if (exact !== -1) return exact;
  const byNumber = migrations.flatMap((migration, index) => (migration.tag.startsWith(`${name}_`) ? [index] : []));
  if (byNumber.length === 1) return byNumber[0]!;
  const known = migrations.map((migration) => migration.tag).join(', ') || '(none)';
  if (byNumber.length > 1) throw new MigrationError(`"${name}" names several migrations; use the whole tag. Known: ${known}`);
  throw new MigrationError(`Unknown migration "${name}". Known: ${known}`);
}

/** Pending migrations up to `toIndex` (default: all), in order. */
export function upgradePlan({ states }: Ledger, toIndex?: number): Migration[] {
  const last = toIndex ?? states.length - 1;
  const appliedAfter = states.slice(last + 1).filter((state) => state.applied);
  if (appliedAfter.length > 0) {
    const target = states[last]!.migration.tag;
    throw new MigrationError(
      `${tags(appliedAfter)} ${appliedAfter.length === 1 ? 'is' : 'are'} applied, newer than ${target}: ` +
        `db:migrate only moves forward; to go back, db:rollback -- --to ${target}`,
    );
  }
  const pending = states.slice(0, last + 1).filter((state) => !state.applied);
  assertDownFilesWritten(pending, 'apply');
  return pending.map((state) => state.migration);
}

export interface RollbackTarget {
  /** How many of the newest applied migrations to revert (default 1, or none when nothing is applied). */
  steps?: number;
  /** Revert until this one is the newest applied. */
  toIndex?: number;
}

/** Applied migrations to revert, newest first. */
export function rollbackPlan({ states }: Ledger, { steps, toIndex }: RollbackTarget): AppliedState[] {
  const applied = states.filter((state): state is AppliedState => state.applied !== undefined);
  let revert: AppliedState[];
  if (toIndex !== undefined) {
    const target = states[toIndex]!;
    if (!target.applied) {
      throw new MigrationError(`${target.migration.tag} is not applied, so rolling back cannot stop at it. Applied: ${tags(applied) || '(none)'}`);
    }
    revert = applied.filter((state) => states.indexOf(state) > toIndex);
  } else if (steps !== undefined && steps > applied.length) {
    throw new MigrationError(`Cannot roll back ${steps} migration(s): ${applied.length} applied (${tags(applied) || 'none'}). Nothing was changed.`);
  } else {
    revert = applied.slice(applied.length - Math.min(steps ?? 1, applied.length));
  }
  revert.reverse();
  assertDownFilesWritten(revert, 'roll back');
  return revert;
}

function assertDownFilesWritten(states: MigrationState[], action: string): void {
  const problems = states.flatMap(({ migration }) => downFileProblem(migration) ?? []);
  if (problems.length > 0) {
    throw new MigrationError([`Refusing to ${action} a migration without a written down file:`, ...problems, 'Nothing was changed.'].join('\n'));
  }
}

function tags(states: MigrationState[]): string {
  return states.map((state) => state.migration.tag).join(', ');
}
