import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createMissingDownFiles } from './migrations-down-files.js';
import { MigrationError } from './migrations-error.js';
import { MIGRATIONS_DIR, displayPath, readMigrations } from './migrations-files.js';

/**
 * `npm run db:generate -- --name <name>` (Alembic's `revision --autogenerate`): drizzle-kit
 * generate with the arguments given, then beside each new migration the down file to write,
 * migrations/down/<tag>.sql, whose header makes db:migrate refuse it until it is written.
 * A development tool: drizzle-kit is a dev dependency.
 */

const args = process.argv.slice(2);
const drizzleKit = path.join(path.dirname(createRequire(import.meta.url).resolve('drizzle-kit')), 'bin.cjs');
const generate = spawnSync(process.execPath, [drizzleKit, 'generate', ...args], { stdio: 'inherit' });
if (generate.status !== 0) process.exit(generate.status ?? 1);

// drizzle-kit resolves --out against the working folder, as path.resolve does.
const { values } = parseArgs({ args, strict: false, options: { out: { type: 'string' } } });
const dir = typeof values.out === 'string' ? path.resolve(values.out) : MIGRATIONS_DIR;
try {
  for (const file of await createMissingDownFiles(await readMigrations(dir))) {
    console.log(`Created ${displayPath(file)}: write the SQL that reverses the migration there before db:migrate applies it.`);
  }
} catch (error) {
  console.error(error instanceof MigrationError ? error.message : error);
  process.exit(1);
}
