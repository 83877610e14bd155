import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { migrateUp } from './migrate.js';

export interface PreparedDatabase {
  url: string;
  /** Stops the embedded server, if this process started one. */
  stop(): Promise<void>;
}

export interface PrepareOptions {
  /**
   * Connect to the embedded server that a running service holds, and leave it running, instead of
   * refusing the data directory: what the db commands do. A second service always refuses.
   */
  shareRunningServer?: boolean;
}

/**
 * What must happen once, before any request is served: start the embedded database when no
 * DATABASE_URL is given, and apply pending migrations when asked to. Kept out of `buildApp`, so a
 * supervisor can do it once for all its workers. The service itself opens and migrates in two
 * steps (see startup/prepare-to-serve.ts), since an external database may not be there yet.
 */
export async function prepareDatabase(config: Config, logger: Logger, options: PrepareOptions = {}): Promise<PreparedDatabase> {
  const database = await openDatabase(config, logger, options);
  try {
    if (config.migrateOnStart) await applyMigrations(database.url, logger);
  } catch (error) {
    await database.stop();
    throw error;
  }
  return database;
}

/** The database to use: DATABASE_URL's (connecting nowhere yet), or the embedded one, started. */
export async function openDatabase(
  config: Config,
  logger: Logger,
  { shareRunningServer = false }: PrepareOptions = {},
): Promise<PreparedDatabase> {
  if (config.databaseUrl) return { url: config.databaseUrl, stop: async () => {} };
  // Loaded only when used: a production image with DATABASE_URL never loads the embedded server.
  const { startEmbeddedDatabase } = await import('./embedded.js');
  const embedded = await startEmbeddedDatabase({ dataDir: config.dataDir, port: config.embeddedDbPort, logger, shareRunningServer });
  // For the developer at a terminal, so that `psql` works; logs (which ship) never carry the password.
  if (!embedded.shared && !shareRunningServer && process.stdout.isTTY) console.log(`embedded PostgreSQL: psql '${embedded.url}'`);
  return { url: embedded.url, stop: () => embedded.stop() };
}

/** Applies pending migrations (under the migrator's advisory lock) and says what it did. */
export async function applyMigrations(databaseUrl: string, logger: Logger): Promise<void> {
  const applied = await migrateUp(databaseUrl);
  logger.info({ applied }, applied.length > 0 ? 'applied migrations' : 'database schema is up to date');
}
