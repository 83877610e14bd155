import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MigrationError } from './migrations-error.js';

/** The committed migrations: drizzle-kit's SQL, its journal in meta/, our down files in down/. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations', import.meta.url));

const STATEMENT_BREAKPOINT = '--> statement-breakpoint';

export interface Migration {
  tag: string;
  /**
   * drizzle-kit's `when` for the migration. The journal table stores it as created_at, so it is
   * what ties an applied row to its file (and orders the journal).
   */
  createdAt: number;
  /** SHA-256 of the up file, as drizzle records it in the journal. */
  hash: string;
  upFile: string;
  downFile: string;
  up: string[];
  down: string[];
  /** The down file's text; undefined when the file does not exist. */
  downSource: string | undefined;
}

interface JournalFile {
  entries: { tag: string; when: number }[];
}

/** The migrations that drizzle-kit's journal lists, in its order. Down files may be missing. */
export async function readMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const journalFile = path.join(dir, 'meta', '_journal.json');
  const journal = JSON.parse(
    await readFile(journalFile, 'utf8').catch((error: unknown) => {
      throw new MigrationError(`Cannot read the migrations' journal ${displayPath(journalFile)}`, { cause: error });
    }),
  ) as JournalFile;
  const migrations = await Promise.all(journal.entries.map(({ tag, when }) => readMigration(dir, tag, when)));
  assertDistinctTimestamps(migrations);
  return migrations;
}

async function readMigration(dir: string, tag: string, when: number): Promise<Migration> {
  const upFile = path.join(dir, `${tag}.sql`);
  const downFile = downFilePath(dir, tag);
  const up = await readFile(upFile, 'utf8').catch((error: unknown) => {
    throw new MigrationError(`The journal lists ${tag}, but ${displayPath(upFile)} cannot be read`, { cause: error });
  });
  const downSource = await readFile(downFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  return {
    tag,
    createdAt: when,
    hash: createHash('sha256').update(up).digest('hex'),
    upFile,
    downFile,
    up: splitStatements(up),
    down: downSource === undefined ? [] : splitStatements(downSource),
    downSource,
  };
}

export function downFilePath(dir: string, tag: string): string {
  return path.join(dir, 'down', `${tag}.sql`);
}

/** Applied rows are matched to files by `when`: two files with one `when` would be ambiguous. */
function assertDistinctTimestamps(migrations: Migration[]): void {
  const seen = new Map<number, string>();
  for (const migration of migrations) {
    const other = seen.get(migration.createdAt);
    if (other) {
      throw new MigrationError(`${other} and ${migration.tag} share the journal timestamp ${migration.createdAt}: give one a later "when"`);
    }
    seen.set(migration.createdAt, migration.tag);
  }
}

/** drizzle-kit's files separate statements with breakpoint lines; chunks of comments alone are dropped. */
function splitStatements(script: string): string[] {
  return script
    .split(STATEMENT_BREAKPOINT)
    .map((statement) => statement.trim())
    .filter((statement) => statement.replace(/^--.*$/gm, '').trim() !== '');
}

/** A path as the operator would type it: relative to the working folder when inside it. */
export function displayPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
}
