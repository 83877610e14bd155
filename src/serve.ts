import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp, type AppOptions } from './app.js';
import type { Config } from './config.js';

export interface Serving {
  app: FastifyInstance;
  /** Drains connections (at most the graceful timeout), then closes the app and its pool. */
  stop(): Promise<void>;
}

export interface ServeOptions {
  /** Called after each response: the supervisor's worker counts requests for max-requests. */
  onResponse?: () => void;
  /** What GET /metrics serves (default: this process's metrics). */
  collectMetrics?: () => Promise<string>;
  /** Where the rate limit counts with the other workers (default: this process). */
  rateLimitStore?: AppOptions['rateLimitStore'];
}

export interface BuiltServing extends Serving {
  listen(): Promise<void>;
}

/**
 * The app built but not listening yet: what single-process mode readies while its holding server
 * (startup/holding-server.ts) still answers, so that the port goes unanswered only for the
 * moment between the two. `stop` works before `listen` too.
 */
export async function buildServing(config: Config & { databaseUrl: string }, logger: Logger, options: ServeOptions = {}): Promise<BuiltServing> {
  const { onResponse, collectMetrics, rateLimitStore } = options;
  const app = await buildApp(config, { logger, rateLimitStore, ...(collectMetrics && { collectMetrics }) });
  if (onResponse) {
    app.addHook('onResponse', (_request, _reply, done) => {
      onResponse();
      done();
    });
  }

  let stopping: Promise<void> | undefined;
  return {
    app,
    async listen() {
      await app.listen({ host: config.host, port: config.port });
    },
    stop() {
      stopping ??= (async () => {
        await app.drain(config.gracefulTimeoutMs);
        await app.close();
      })();
      return stopping;
    },
  };
}
