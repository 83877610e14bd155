import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { startHoldingServer, type HoldingServer } from './holding-server.js';
import { waitForDatabase, type Preparation } from './wait-for-database.js';

export interface PrepareToServeOptions<T, Built> {
  config: Config;
  logger: Logger;
  databaseUrl: string;
  /** The work that needs the database before serving: migrations, the connection budget. Retried. */
  prepare: Preparation<T>;
  /** Then what needs only this process (building the app), done while the holding server still answers. */
  build: (prepared: T) => Promise<Built>;
  /** Undoes what was started before (the embedded database) when a signal ends the wait. */
  onStopped: () => Promise<void>;
}

/** What stops the wait; the supervisor and single-process mode install their own handlers after it. */
const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGQUIT'] as const;
/**
 * What the supervisor acts on once it serves (reload, add or retire a worker). Before that there is
 * nothing to reload or scale, and their default actions would kill (HUP) or stop (TTIN, TTOU) the
 * process, holding server and all: ignored, and said so.
 */
const LATER_SIGNALS = ['SIGHUP', 'SIGTTIN', 'SIGTTOU'] as const;

/**
 * Runs `prepare` once the database answers, retrying (wait-for-database.ts) rather than exiting
 * into a crash loop when it is not there yet. While it waits, a holding server answers on the
 * service's port (alive, not ready); it closes before the caller serves. A signal during the wait
 * stops the service: `onStopped`, then exit 0. Resolves with what `build` made of `prepare`'s result.
 */
export async function prepareToServe<T, Built>({
  config,
  logger,
  databaseUrl,
  prepare,
  build,
  onStopped,
}: PrepareToServeOptions<T, Built>): Promise<Built> {
  const controller = new AbortController();
  const stop = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) return;
    logger.info({ signal }, 'stopping before serving');
    controller.abort();
  };
  for (const signal of STOP_SIGNALS) process.on(signal, stop);
  const ignore = (signal: NodeJS.Signals) => logger.warn({ signal }, `${signal} ignored: not serving yet (waiting for the database)`);
  for (const signal of LATER_SIGNALS) process.on(signal, ignore);

  let holding: Promise<HoldingServer | undefined> | undefined;
  let holdingFailure: Error | undefined;
  const onWaiting = (step: string) => {
    holding = startHoldingServer(config, logger).then(
      (server) => {
        logger.info(
          { event: 'waiting-for-database', step, host: config.host, port: config.port },
          `not serving yet: waiting for the database (${step}); /healthz answers 200 and /readyz 503 meanwhile`,
        );
        return server;
      },
      (error: unknown) => {
        // The port is taken, say: the service could not serve either.
        holdingFailure = error instanceof Error ? error : new Error(String(error));
        controller.abort();
        return undefined;
      },
    );
  };

  let built: { value: Built } | undefined;
  try {
    const prepared = await waitForDatabase({
      databaseUrl,
      logger,
      connectTimeoutMs: config.dbConnectTimeoutMs,
      prepare,
      signal: controller.signal,
      onWaiting,
    });
    if (prepared) built = { value: await build(prepared.value) };
  } finally {
    // Closed before the caller listens on the same port.
    await (await holding)?.close();
    for (const signal of STOP_SIGNALS) process.off(signal, stop);
    for (const signal of LATER_SIGNALS) process.off(signal, ignore);
  }
  if (holdingFailure !== undefined) throw holdingFailure;
  if (built === undefined || controller.signal.aborted) {
    await onStopped();
    logger.info({ event: 'stopped-before-serving' }, 'stopped before serving: the database was not ready');
    process.exit(0);
  }
  return built.value;
}
