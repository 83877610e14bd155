import { downFileProblem } from './migrations-down-files.js';
import type { Ledger } from './migrations-plan.js';

/** `db:history`: every migration, applied (and when) or pending, in order; then any the folder lacks. */

export interface HistoryEntry {
  /** Undefined for an applied migration that the folder does not list. */
  tag: string | undefined;
  applied: boolean;
  /** When it was applied; null when pending, or applied before the journal recorded times. */
  appliedAt: Date | null;
  /** What stops a command: an edited file, an unwritten down file, a migration the folder lacks. */
  notes: string[];
}

export function historyEntries({ states, unknown }: Ledger): HistoryEntry[] {
  const entries = states.map(({ migration, applied }) => {
    const notes: string[] = [];
    if (applied && applied.hash !== migration.hash) {
      notes.push(`edited since applied (journal sha256 ${applied.hash.slice(0, 12)}…, file ${migration.hash.slice(0, 12)}…)`);
    }
    if (downFileProblem(migration)) notes.push(migration.downSource === undefined ? 'no down file' : 'down file not written');
    return { tag: migration.tag, applied: applied !== undefined, appliedAt: applied?.appliedAt ?? null, notes };
  });
  const foreign = unknown.map((row) => ({
    tag: undefined,
    applied: true,
    appliedAt: row.appliedAt,
    notes: [`not in the migrations folder (created_at ${row.createdAt}, sha256 ${row.hash.slice(0, 12)}…)`],
  }));
  return [...entries, ...foreign];
}

/** One line each: state, tag, applied time (ISO 8601, UTC), notes. Aligned for reading, split on spaces for scripts. */
export function formatHistory(entries: HistoryEntry[]): string {
  const width = Math.max(0, ...entries.map((entry) => (entry.tag ?? '?').length));
  return entries
    .map((entry) => {
      const time = entry.appliedAt?.toISOString() ?? (entry.applied ? 'time-not-recorded' : '');
      const columns = [entry.applied ? 'applied' : 'pending', (entry.tag ?? '?').padEnd(width), time.padEnd(24), ...entry.notes];
      return `${columns.join('  ').trimEnd()}\n`;
    })
    .join('');
}
