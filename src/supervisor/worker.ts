import cluster from 'node:cluster';
import { randomInt } from 'node:crypto';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { metricsSnapshot } from '../metrics.js';
import { buildServing, type Serving } from '../serve.js';
import { heartbeatInterval, isPrimaryMessage, sendToSupervisor, type PrimaryMessage, type WorkerMessage } from './messages.js';
import { SupervisorRateLimitStore } from './rate-limit-store.js';

/**
 * A worker process: serves the connections the supervisor hands it until the supervisor says
 * stop, beating a heartbeat that only a free event loop can send. The database was prepared by
 * the supervisor.
 */
export async function runWorker(config: Config & { databaseUrl: string }, logger: Logger): Promise<void> {
  const send = (message: WorkerMessage) => sendToSupervisor(message);

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
  /** The supervisor was told: it hands out connections to this worker from then on. */
  let takingConnections = false;
  let stopRequested = false;
  let stopping: Promise<void> | undefined;
  const heartbeat = setInterval(() => send({ type: 'heartbeat' }), heartbeatInterval(config.workerTimeoutMs));
  const stop = async () => {
    stopRequested = true;
    if (!serving) return;
    const running = serving;
    stopping ??= (async () => {
      clearInterval(heartbeat);
      logger.info({ event: 'worker-draining', workerPid: process.pid }, 'worker draining');
      await running.stop();
      await sendFinalMetrics();
      // Also for a worker whose supervisor is gone, which no one else would log.
      logger.info({ event: 'worker-drained', workerPid: process.pid }, 'worker drained: exiting');
      process.exit(0);
    })();
    await stopping;
  };
  process.on('message', (message, socket?: Socket) => {
    if (!isPrimaryMessage(message)) return;
    if (message.type === 'connection') takeConnection(message.id, socket);
    else if (message.type === 'shutdown') void stop();
    else if (message.type === 'metrics-snapshot-request') answerSnapshotRequest(message.id);
    else answerMetricsRequest(message);
  });
  // A signal of its own (`kill <pid>`, a service manager signalling every process): a serving
  // worker asks its supervisor to replace it, and the supervisor's 'shutdown' comes after every
  // connection it handed out before, so that none is refused. Booting, alone, or signalled again
  // (a supervisor that does not answer), it stops at once.
  let replacementAsked = false;
  process.on('SIGTERM', () => {
    if (takingConnections && process.connected && !stopRequested && !replacementAsked) {
      replacementAsked = true;
      send({ type: 'stop-requested' });
    } else {
      void stop();
    }
  });
  // Ctrl-C reaches the whole process group: the supervisor got it too, and stops every worker in
  // order (listening socket first). A worker without a supervisor stops on its own.
  process.on('SIGINT', () => {
    if (!process.connected) void stop();
  });
  // A vanished supervisor must not leave workers behind, nor requests unanswered. node:cluster
  // makes a worker whose channel closes unexpectedly exit at once, dropping the requests in
  // flight: marked as a disconnect it expected (before node:cluster's own listener runs), the
  // worker drains instead.
  process.prependOnceListener('disconnect', () => {
    cluster.worker!.exitedAfterDisconnect = true;
  });
  process.on('disconnect', () => void stop());

  /**
   * Answered in the same turn, before a byte of it is read: a connection the supervisor sees
   * neither taken nor refused when this worker dies was never read, and it gives it to another
   * worker. A stopping worker refuses it, closing only its own copy: the supervisor keeps the
   * connection open and hands it on.
   */
  const takeConnection = (id: number, socket: Socket | undefined) => {
    if (stopRequested || !serving || !socket) {
      send({ type: 'connection-refused', id });
      socket?.destroy();
      return;
    }
    send({ type: 'connection-taken', id });
    serving.app.server.emit('connection', socket);
  };

  try {
    serving = await buildServing(config, logger, { onResponse, collectMetrics: askSupervisorForMetrics, rateLimitStore: SupervisorRateLimitStore });
    await serving.app.ready();
    takeConnectionsFromSupervisor(serving.app);
  } catch (error) {
    logger.fatal({ err: error }, 'worker failed to start');
    send({ type: 'boot-error', message: error instanceof Error ? error.message : String(error) });
    process.exit(1);
  }
  if (stopRequested) {
    await stop();
  } else {
    takingConnections = true;
    send({ type: 'serving' });
  }
}

/**
 * A worker never listens: its connections come from the supervisor (dispatcher.ts). Node's HTTP
 * server starts tracking its connections (the headers and request timeouts, closing idle ones)
 * when it starts listening, on its 'listening' event: the worker starts that tracking itself.
 */
function takeConnectionsFromSupervisor(app: FastifyInstance): void {
  app.server.emit('listening');
}

/** This worker's metrics, for the supervisor to add up with the others'. */
function answerSnapshotRequest(id: number): void {
  metricsSnapshot().then(
    (metrics) => sendToSupervisor({ type: 'metrics-snapshot', id, metrics } satisfies WorkerMessage),
    () => {
      // The supervisor counts this worker with its last snapshot.
    },
  );
}

/**
 * After the last response, before exiting: the supervisor keeps this worker's counters, so that
 * the totals it serves do not go down when the worker is gone.
 */
async function sendFinalMetrics(): Promise<void> {
  if (!process.connected) return;
  const metrics = await metricsSnapshot();
  // Sent before exiting: the callback comes once the message is in the IPC channel (or is lost).
  await new Promise<void>((resolve) => sendToSupervisor({ type: 'final-metrics', metrics } satisfies WorkerMessage, () => resolve()));
}

const METRICS_TIMEOUT_MS = 10_000;
const metricsRequests = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void }>();
let lastMetricsRequest = 0;

/** Every worker's metrics, added up by the supervisor. */
function askSupervisorForMetrics(): Promise<string> {
  const id = ++lastMetricsRequest;
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      metricsRequests.delete(id);
      reject(new Error('The supervisor did not answer the metrics request'));
    }, METRICS_TIMEOUT_MS);
    metricsRequests.set(id, {
      resolve: (text) => (clearTimeout(timer), resolve(text)),
      reject: (error) => (clearTimeout(timer), reject(error)),
    });
    sendToSupervisor({ type: 'metrics-request', id } satisfies WorkerMessage, (error) => {
      if (error) answerMetricsRequest({ type: 'metrics-response', id, error: error.message });
    });
  });
}

function answerMetricsRequest(message: Extract<PrimaryMessage, { type: 'metrics-response' }>): void {
  const request = metricsRequests.get(message.id);
  metricsRequests.delete(message.id);
  if (message.text !== undefined) request?.resolve(message.text);
  else request?.reject(new Error(`Aggregating metrics failed: ${message.error}`));
}
