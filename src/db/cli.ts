import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config.js';
import { createLogger } from '../logger.js';
import { formatError } from '../redact.js';
import { migrateUp, migrationHistory, migrationScript, rollback } from './migrate.js';
import { MigrationError } from './migrations-error.js';
import { MIGRATIONS_DIR } from './migrations-files.js';
import { formatHistory } from './migrations-history.js';
import { prepareDatabase } from './prepare.js';

/**
 * `db:migrate`, `db:rollback` and `db:history` (alias `db:status`): the one-shot migration steps,
 * for the configured DATABASE_URL or, without one, for the embedded database (started and stopped
 * around the command). Results go to stdout, logs to stderr, so `--sql` and history can be piped.
 */

const HELP = `Migrations, with the seed's Alembic verbs. Each runs on DATABASE_URL or, when it is unset,
on the embedded database (started for the command). Production image: node dist/db/cli.js <verb> ...

  npm run db:generate -- --name <name>       alembic revision --autogenerate
      drizzle-kit writes migrations/<tag>.sql from src/db/schema.ts; then migrations/down/<tag>.sql
      is created with a header saying it must be written: db:migrate refuses the migration until it is.
  npm run db:migrate                         alembic upgrade head
  npm run db:migrate -- --to <name>          alembic upgrade <rev>: apply pending migrations up to <name>
  npm run db:migrate -- --sql [--to <name>]  alembic upgrade --sql: print the SQL instead of running it,
      for psql -v ON_ERROR_STOP=1 -f. It reads the database's journal to know what is pending (and
      changes nothing); it fails when the database cannot be reached.
  npm run db:rollback                        alembic downgrade -1
  npm run db:rollback -- --steps <n>         alembic downgrade -<n>
  npm run db:rollback -- --to <name>         alembic downgrade <rev>: until <name> is the newest applied
  npm run db:history                         alembic history / current: each migration, applied (with
      when, in UTC) or pending. db:status is the same command.

  <name>       a tag (0001_idempotency_keys) or its number (0001)
  --dir <dir>  the migrations folder (default: ${MIGRATIONS_DIR})

Every command holds a PostgreSQL advisory lock, so concurrent runs take turns; each migration is
applied or rolled back in its own transaction. Migrations whose applied file was edited since, or
whose down file is missing or unwritten, are refused before anything changes.
Exit status: 0 on success, 1 on any failure, with one message on stderr.`;

const VERBS = ['migrate', 'rollback', 'history', 'status'] as const;
type Verb = (typeof VERBS)[number];

interface Command {
  verb: Verb;
  dir: string;
  to: string | undefined;
  steps: number | undefined;
  sql: boolean;
}

/** The command line, or undefined when help was asked for. */
function parseCommand(args: string[]): Command | undefined {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        to: { type: 'string' },
        steps: { type: 'string' },
        sql: { type: 'boolean' },
        dir: { type: 'string' },
      },
    });
  } catch (error) {
    // Node's message goes on to explain `--` for positionals, which only confuses here.
    throw new ConfigError(`${(error as Error).message.split('. ')[0]}; see --help`);
  }
  const { values, positionals } = parsed;
  if (values.help) return undefined;
  const [verb, ...extra] = positionals;
  if (!VERBS.includes(verb as Verb) || extra.length > 0) {
    throw new ConfigError(`Expected one of ${VERBS.join(', ')}${verb ? `, not "${[verb, ...extra].join(' ')}"` : ''}; see --help`);
  }
  const allowed: Record<Verb, string[]> = { migrate: ['to', 'sql'], rollback: ['to', 'steps'], history: [], status: [] };
  for (const option of ['to', 'steps', 'sql'] as const) {
    if (values[option] !== undefined && !allowed[verb as Verb].includes(option)) {
      throw new ConfigError(`--${option} does not apply to ${verb}; see --help`);
    }
  }
  if (values.to !== undefined && values.steps !== undefined) throw new ConfigError('Give --to or --steps, not both');
  if (values.steps !== undefined && !/^[1-9]\d*$/.test(values.steps)) {
    throw new ConfigError(`--steps takes a whole number above 0, not "${values.steps}"`);
  }
  return {
    verb: verb as Verb,
    dir: values.dir ?? MIGRATIONS_DIR,
    to: values.to,
    steps: values.steps === undefined ? undefined : Number(values.steps),
    sql: values.sql ?? false,
  };
}

async function main(): Promise<void> {
  const command = parseCommand(process.argv.slice(2));
  if (!command) {
    console.log(HELP);
    return;
  }
  const config = { ...loadConfig(), migrateOnStart: false };
  const logger = createLogger({ level: config.logLevel, format: config.logFormat, fd: 2 });
  const database = await prepareDatabase(config, logger, { shareRunningServer: true });
  try {
    await run(command, database.url);
  } catch (error) {
    if (!(error instanceof MigrationError)) throw error;
    console.error(error.message);
    process.exitCode = 1;
  } finally {
    await database.stop();
  }
}

async function run({ verb, dir, to, steps, sql }: Command, url: string): Promise<void> {
  if (verb === 'migrate' && sql) {
    process.stdout.write(await migrationScript(url, { dir, to }));
  } else if (verb === 'migrate') {
    const applied = await migrateUp(url, { dir, to });
    console.log(applied.length > 0 ? applied.map((tag) => `applied  ${tag}`).join('\n') : 'nothing to apply');
  } else if (verb === 'rollback') {
    const reverted = await rollback(url, { dir, steps, to });
    console.log(reverted.length > 0 ? reverted.map((tag) => `rolled back  ${tag}`).join('\n') : 'nothing to roll back');
  } else {
    process.stdout.write(formatHistory(await migrationHistory(url, dir)));
  }
}

main().catch((error: unknown) => {
  console.error(formatError(error));
  process.exit(1);
});
