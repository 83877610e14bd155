import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { displayPath, type Migration } from './migrations-files.js';

/**
 * Down files: drizzle-kit writes no down migrations (drizzle-orm issue #2352), so each migration's
 * reverse is written by hand in migrations/down/<tag>.sql. `db:generate` creates the file with a
 * header that marks it unwritten; the migrator refuses to apply a migration until it is written.
 */

const UNWRITTEN_MARKER = '-- DOWN MIGRATION NOT WRITTEN.';

export function unwrittenDownFile(tag: string): string {
  return (
    `${UNWRITTEN_MARKER} Write below the SQL that reverses ${tag}.sql, then delete\n` +
    `-- these two lines: db:migrate refuses to apply ${tag} while they are here.\n`
  );
}

/** Why this migration's down file cannot be trusted to reverse it, or undefined when it can. */
export function downFileProblem(migration: Migration): string | undefined {
  const file = displayPath(migration.downFile);
  if (migration.downSource === undefined) {
    return `${migration.tag} has no down migration: ${file} is missing (write there the SQL that reverses ${migration.tag}.sql)`;
  }
  if (migration.downSource.includes(UNWRITTEN_MARKER)) {
    return `${file} is not written yet: write the SQL that reverses ${migration.tag}.sql and delete its "DOWN MIGRATION NOT WRITTEN" header`;
  }
  if (migration.down.length === 0) {
    return `${file} has no SQL: write the SQL that reverses ${migration.tag}.sql (for one that cannot be reversed, a statement that raises an error saying why)`;
  }
  return undefined;
}

/** Creates the unwritten down file of each migration that has none. Returns the files created. */
export async function createMissingDownFiles(migrations: Migration[]): Promise<string[]> {
  const created: string[] = [];
  for (const migration of migrations.filter((candidate) => candidate.downSource === undefined)) {
    await mkdir(path.dirname(migration.downFile), { recursive: true });
    // 'wx': never overwrite a down file written since the migrations were read.
    await writeFile(migration.downFile, unwrittenDownFile(migration.tag), { flag: 'wx' });
    created.push(migration.downFile);
  }
  return created;
}
