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
 * supervisor can do it once for all its workers.
 */
export async function prepareDatabase(
  config: Config,
  logger: Logger,
  { shareRunningServer = false }: PrepareOptions = {},
): Promise<PreparedDatabase> {
  // Loaded only when used: a production image with DATABASE_URL never loads the embedded server.
  const embedded = config.databaseUrl
    ? undefined
    : await (
        await import('./embedded.js')
      ).startEmbeddedDatabase({ dataDir: config.dataDir, port: config.embeddedDbPort, logger, shareRunningServer });
  const url = config.databaseUrl ?? embedded!.url;
  try {
    if (config.migrateOnStart) {
      const applied = await migrateUp(url);
      logger.info({ applied }, applied.length > 0 ? 'applied migrations' : 'database schema is up to date');
    }
  } catch (error) {
    await embedded?.stop();
    throw error;
  }
  // For the developer at a terminal, so that `psql` works; logs (which ship) never carry the password.
  if (embedded && !embedded.shared && !shareRunningServer && process.stdout.isTTY) console.log(`embedded PostgreSQL: psql '${url}'`);
  return { url, stop: async () => embedded?.stop() };
}
