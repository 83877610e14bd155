import { displayPath, type Migration } from './migrations-files.js';
import { ADVISORY_LOCK_KEY, JOURNAL_SETUP, recordApplied } from './migrations-journal.js';

/**
 * `db:migrate --sql`: the statements the migrator would run, as a script for
 * `psql -v ON_ERROR_STOP=1 -f`: the same lock, journal setup, transactions and journal rows.
 */
export function upgradeScript(pending: Migration[]): string {
  if (pending.length === 0) return '-- db:migrate --sql: nothing to apply.\n';
  const lines = [
    `-- db:migrate --sql: ${pending.length} migration(s), ${pending.map((migration) => migration.tag).join(', ')}.`,
    '-- Apply with: psql -v ON_ERROR_STOP=1 -f <this file> <database>',
    "-- The migrator's advisory lock is held throughout, so this waits for another migrator and never",
    '-- overlaps one; each migration is its own transaction, recorded in the journal as db:migrate does.',
    'SET client_min_messages = warning;',
    `DO $$ BEGIN PERFORM pg_advisory_lock(${ADVISORY_LOCK_KEY}); END $$;`,
    ...JOURNAL_SETUP.map(terminated),
  ];
  for (const migration of pending) {
    lines.push('', `-- ${migration.tag} (${displayPath(migration.upFile)})`, 'BEGIN;');
    lines.push(...migration.up.map(terminated), terminated(recordApplied(migration)), 'COMMIT;');
  }
  lines.push('', `DO $$ BEGIN PERFORM pg_advisory_unlock(${ADVISORY_LOCK_KEY}); END $$;`);
  return `${lines.join('\n')}\n`;
}

/** A statement that ends in a line comment gets its semicolon on a line of its own. */
function terminated(statement: string): string {
  if (statement.endsWith(';')) return statement;
  const lastLine = statement.slice(statement.lastIndexOf('\n') + 1);
  return lastLine.includes('--') ? `${statement}\n;` : `${statement};`;
}
