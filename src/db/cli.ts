import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config.js';
import { createLogger } from '../logger.js';
import { formatError } from '../redact.js';
import { migrateDown, migrateUp, migrationStatus } from './migrate.js';
import { prepareDatabase } from './prepare.js';

/**
 * `db:migrate`, `db:rollback` and `db:status`: the one-shot migration steps, for the configured
 * DATABASE_URL or, without one, for the embedded database (started and stopped around the command).
 */

const USAGE = 'usage: cli.js <migrate|rollback|status>';

async function main(): Promise<void> {
  const { positionals } = parseArgs({ allowPositionals: true });
  const command = positionals[0];
  if (!command || !['migrate', 'rollback', 'status'].includes(command)) throw new ConfigError(USAGE);

  const config = { ...loadConfig(), migrateOnStart: false };
  const logger = createLogger({ level: config.logLevel, format: config.logFormat });
  const database = await prepareDatabase(config, logger, { shareRunningServer: true });
  try {
    if (command === 'migrate') {
      const applied = await migrateUp(database.url);
      logger.info({ applied }, applied.length > 0 ? `applied ${applied.length} migration(s)` : 'nothing to apply');
    } else if (command === 'rollback') {
      const reverted = await migrateDown(database.url);
      logger.info({ reverted }, reverted ? `rolled back ${reverted}` : 'nothing to roll back');
    } else {
      const status = await migrationStatus(database.url);
      for (const tag of status.applied) console.log(`applied  ${tag}`);
      for (const tag of status.pending) console.log(`pending  ${tag}`);
    }
  } finally {
    await database.stop();
  }
}

main().catch((error: unknown) => {
  console.error(formatError(error));
  process.exit(1);
});
