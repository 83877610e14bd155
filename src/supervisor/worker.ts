import { randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { serve, type Serving } from '../serve.js';
import { heartbeatInterval, isPrimaryMessage, type WorkerMessage } from './messages.js';

/**
 * A worker process: serves on the shared port until the supervisor says stop, beating a heartbeat
 * that only a free event loop can send. The database was prepared by the supervisor.
 */
export async function runWorker(config: Config & { databaseUrl: string }, logger: Logger): Promise<void> {
  const send = (message: WorkerMessage) => process.send?.(message);

  process.on('uncaughtException', (error) => {
    logger.fatal({ err: error }, 'worker crashed');
    process.exit(1);
  });
  process.on('unhandledRejection', (reason) => {
    logger.fatal({ err: reason }, 'worker crashed: unhandled rejection');
    process.exit(1);
  });

  // Each worker recycles after its own count, so that they do not all restart at once.
  const requestLimit = config.maxRequests > 0 ? config.maxRequests + randomInt(config.maxRequestsJitter + 1) : 0;
  let served = 0;
  const onResponse =
    requestLimit > 0
      ? () => {
          if (++served === requestLimit) send({ type: 'retire' });
        }
      : undefined;

  // Registered before booting: a shutdown asked for while the worker boots waits for the boot.
  let serving: Serving | undefined;
  let stopRequested = false;
  const heartbeat = setInterval(() => send({ type: 'heartbeat' }), heartbeatInterval(config.workerTimeoutMs));
  const stop = async () => {
    stopRequested = true;
    if (!serving) return;
    clearInterval(heartbeat);
    await serving.stop();
    process.exit(0);
  };
  process.on('message', (message) => {
    if (isPrimaryMessage(message)) void stop();
  });
  // Ctrl-C reaches the whole process group; a vanished supervisor must not leave workers behind.
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
  process.on('disconnect', () => void stop());

  try {
    serving = await serve(config, logger, { onResponse });
  } catch (error) {
    logger.fatal({ err: error }, 'worker failed to start');
    send({ type: 'boot-error', message: error instanceof Error ? error.message : String(error) });
    process.exit(1);
  }
  if (stopRequested) await stop();
}
