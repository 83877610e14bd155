import closeWithGrace from 'close-with-grace';
import { buildApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { prepareDatabase } from './db/prepare.js';
import { createLogger } from './logger.js';

/** The process entry: read the settings, prepare the database once, serve, and stop cleanly on a signal. */

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger({ level: config.logLevel });
  const database = await prepareDatabase(config, logger);
  const app = await buildApp({ ...config, databaseUrl: database.url }, { logger }).catch(async (error: unknown) => {
    await database.stop();
    throw error;
  });

  closeWithGrace(
    { delay: config.shutdownTimeoutMs, logger, skip: ['SIGHUP'] },
    async ({ signal, err }) => {
      if (err) logger.fatal({ err }, 'shutting down after an unexpected error');
      else logger.info({ signal }, 'shutting down: finishing in-flight requests');
      await app.close();
      await database.stop();
      logger.info('shutdown complete');
    },
  );

  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    await app.close();
    await database.stop();
    throw error;
  }
}

main().catch((error: unknown) => {
  // Before the logger exists (a configuration error), stderr is the only place to say why.
  if (error instanceof ConfigError) console.error(error.message);
  else console.error('fastify-sqlasync failed to start:', error);
  process.exit(1);
});
