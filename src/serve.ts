import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp, type AppOptions } from './app.js';
import type { Config } from './config.js';

export interface StopOptions {
  /**
   * The supervisor has closed the listening socket: keep taking the connections it accepted
   * before, until none is left, instead of closing this worker's side of it at once.
   */
  listenerClosed?: boolean;
}

export interface Serving {
  app: FastifyInstance;
  /** Drains connections (at most the graceful timeout), then closes the app and its pool. */
  stop(options?: StopOptions): Promise<void>;
}

export interface ServeOptions {
  /** Called after each response: the supervisor's worker counts requests for max-requests. */
  onResponse?: () => void;
  /** What GET /metrics serves (default: this process's metrics). */
  collectMetrics?: () => Promise<string>;
  /** Where the rate limit counts with the other workers (default: this process). */
  rateLimitStore?: AppOptions['rateLimitStore'];
}

/** Builds the app on a database that is ready (migrated) and listens: a worker's whole job. */
export async function serve(config: Config & { databaseUrl: string }, logger: Logger, options: ServeOptions = {}): Promise<Serving> {
  const { onResponse, collectMetrics, rateLimitStore } = options;
  const app = await buildApp(config, { logger, rateLimitStore, ...(collectMetrics && { collectMetrics }) });
  if (onResponse) {
    app.addHook('onResponse', (_request, _reply, done) => {
      onResponse();
      done();
    });
  }
  await app.listen({ host: config.host, port: config.port });

  let stopping: Promise<void> | undefined;
  return {
    app,
    stop({ listenerClosed = false } = {}) {
      stopping ??= (async () => {
        await app.drain(config.gracefulTimeoutMs, { keepListening: listenerClosed });
        await app.close();
      })();
      return stopping;
    },
  };
}
