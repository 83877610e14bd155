import cluster from 'node:cluster';
import closeWithGrace from 'close-with-grace';
import type { Logger } from 'pino';
import { helpText, parseCommandLine } from './command-line.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { applyMigrations, openDatabase, type PreparedDatabase } from './db/prepare.js';
import { createLogger } from './logger.js';
import { formatError } from './redact.js';
import { buildServing } from './serve.js';
import { prepareToServe } from './startup/prepare-to-serve.js';
import { connectionBudgetProblem, readConnectionBudget } from './supervisor/connection-budget.js';
import { Supervisor } from './supervisor/primary.js';
import { workerExecArgv } from './supervisor/worker-flags.js';
import { runWorker } from './supervisor/worker.js';

/**
 * The process entry. The supervisor (cluster primary) prepares the database once, then forks
 * workers that re-run this file; `--single-process` serves right here (development, and the
 * container image: one process per container). Either way, a database that is not there yet is
 * waited for, alive and unready, rather than a reason to exit (startup/prepare-to-serve.ts).
 */

async function main(): Promise<void> {
  const commandLine = parseCommandLine(process.argv.slice(2));
  if (commandLine.help) {
    console.log(helpText());
    return;
  }
  const config = loadConfig(undefined, commandLine.overrides);
  // Workers log a line per request: buffered. The supervisor's few lines go out at once.
  const logger = createLogger({ level: config.logLevel, format: config.logFormat, buffered: cluster.isWorker || config.singleProcess });

  if (cluster.isWorker) return runWorker(withDatabaseUrl(config), logger);
  if (config.singleProcess) return serveInThisProcess(config, logger);
  return supervise(config, logger);
}

async function supervise(config: Config, logger: Logger): Promise<void> {
  const database = await openDatabase(config, logger);
  try {
    const budget = await prepareToServe({
      config,
      logger,
      databaseUrl: database.url,
      onStopped: () => database.stop(),
      prepare: async (url, enter) => {
        await migrateIfAsked(config, url, logger, enter);
        enter('connection budget');
        const budget = await readConnectionBudget(url);
        const problem = connectionBudgetProblem(budget, config.workers, config.dbPoolMax);
        if (problem) throw new ConfigError(problem);
        return budget;
      },
      build: async (budget) => budget,
    });
    cluster.setupPrimary({ execArgv: workerExecArgv(process.execArgv) });
    await new Supervisor({
      config,
      logger,
      budget,
      workerEnv: { DATABASE_URL: database.url },
      onStopped: () => database.stop(),
    }).start();
  } catch (error) {
    await database.stop();
    throw error;
  }
}

async function serveInThisProcess(config: Config, logger: Logger): Promise<void> {
  const database = await openDatabase(config, logger);
  const configWithDatabase = { ...config, databaseUrl: database.url };
  // The app is built before the holding server closes: the port goes unanswered only while it binds.
  const serving = await prepareToServe({
    config,
    logger,
    databaseUrl: database.url,
    onStopped: () => database.stop(),
    prepare: (url, enter) => migrateIfAsked(config, url, logger, enter),
    build: () => buildServing(configWithDatabase, logger),
  }).catch(stopAndRethrow(database));
  // Installed before listening: node as PID 1 (a container) ignores a SIGTERM that nobody handles.
  closeWithGrace({ delay: config.gracefulTimeoutMs + 5_000, logger, skip: ['SIGHUP'] }, async ({ signal, err }) => {
    if (err) logger.fatal({ err }, 'shutting down after an unexpected error');
    else logger.info({ signal }, 'shutting down: finishing in-flight requests');
    await serving.stop();
    await database.stop();
    logger.info('shutdown complete');
  });
  await serving.listen().catch(stopAndRethrow(database));
}

async function migrateIfAsked(config: Config, databaseUrl: string, logger: Logger, enter: (step: string) => void): Promise<void> {
  if (!config.migrateOnStart) return;
  enter('migrations');
  await applyMigrations(databaseUrl, logger);
}

function stopAndRethrow(database: PreparedDatabase): (error: unknown) => Promise<never> {
  return async (error) => {
    await database.stop();
    throw error;
  };
}

/** Workers learn the database from the supervisor, which may have started it. */
function withDatabaseUrl(config: Config): Config & { databaseUrl: string } {
  if (!config.databaseUrl) throw new ConfigError('Invalid configuration: a worker needs DATABASE_URL from its supervisor');
  return { ...config, databaseUrl: config.databaseUrl };
}

main().catch((error: unknown) => {
  // Configuration errors are the user's to fix: one clear line. Anything else: the whole error.
  // Either way without secrets (a URL's password, API keys).
  if (error instanceof ConfigError) console.error(formatError(error));
  else console.error(`fastify-sqlasync failed to start: ${formatError(error)}`);
  process.exit(1);
});
