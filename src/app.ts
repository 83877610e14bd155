import { readFileSync } from 'node:fs';
import type { FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { createDatabase } from './db/client.js';
import { AccessLog } from './http/access-log.js';
import { apiKeys } from './http/api-keys.js';
import { answerClientError, answerFrameworkError } from './http/client-errors.js';
import { closing } from './http/closing.js';
import { docs } from './http/docs.js';
import { drain } from './http/drain.js';
import { errorHandling } from './http/errors.js';
import { healthRoutes } from './http/health.js';
import { strictJsonParser } from './http/json-body.js';
import { loadShedding } from './http/load-shedding.js';
import { metrics } from './http/metrics.js';
import { pressure } from './http/pressure.js';
import { rateLimit } from './http/rate-limit.js';
import { requestIdHeader, requestIdOf } from './http/request-id.js';
import { security } from './http/security.js';
import { problemSchemas } from './http/problem.js';
import { buildValidator } from './http/validation.js';
import { PURGE_INTERVAL_MS } from './items/idempotency.js';
import { itemRoutes } from './items/routes.js';
import { itemSchemas } from './items/schemas.js';
import { createItemsService } from './items/service.js';
import { createLogger } from './logger.js';
import { localMetrics } from './metrics.js';

/** The settings an app needs: by now the database is known, embedded or not. */
export type AppConfig = Omit<Config, 'databaseUrl'> & { databaseUrl: string };

export interface AppOptions {
  logger?: Logger;
  /** What GET /metrics serves; a worker asks its supervisor for every worker's metrics. */
  collectMetrics?: () => Promise<string>;
  /** Where the workers of an instance count for the rate limit together (REDIS_URL wins); default: this process. */
  rateLimitStore?: FastifyRateLimitStoreCtor;
}

const { version, license } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string; license: string };

/**
 * Builds the whole service without listening: the entry point listens, tests inject or listen on
 * port 0. Every plugin and route is registered here, explicitly, so a reader can follow a request
 * from here to its SQL.
 */
export async function buildApp(config: AppConfig, { logger, collectMetrics = localMetrics, rateLimitStore }: AppOptions = {}): Promise<FastifyInstance> {
  const loggerInstance: FastifyBaseLogger = logger ?? createLogger({ level: config.logLevel });
  const app = Fastify({
    loggerInstance,
    logController: new AccessLog(loggerInstance),
    genReqId: requestIdOf,
    requestIdHeader: false,
    // X-Forwarded-For is believed only from the proxies TRUST_PROXY names (by default, from none).
    trustProxy: config.trustProxy,
    bodyLimit: config.bodyLimit,
    // Timeouts are set, not inherited: a client that trickles its request is cut off.
    requestTimeout: 30_000,
    keepAliveTimeout: 65_000,
    // Node checks the headers and request timeouts only this often (30 s by default).
    http: { connectionsCheckingInterval: 1_000 },
    clientErrorHandler: answerClientError,
    frameworkErrors: answerFrameworkError,
    // Shutdown drains connections first (see http/drain.ts); a request that still arrives while
    // the app closes gets the service's own 503 (http/closing.ts), not Fastify's bare one.
    return503OnClosing: false,
    // Validators that know the shared schemas below, which routes reach by $ref.
    schemaController: { compilersFactory: { buildValidator } },
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.server.headersTimeout = 10_000;

  // One definition of each schema that several routes and the OpenAPI document share.
  for (const schema of [...itemSchemas, ...problemSchemas]) app.addSchema(schema);
  // Only JSON bodies are accepted; anything else is a 415, not a string that fails validation.
  app.removeContentTypeParser('text/plain');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, strictJsonParser(app.getDefaultJsonParser('error', 'error')));

  const db = createDatabase({
    databaseUrl: config.databaseUrl,
    max: config.dbPoolMax,
    connectTimeoutMs: config.dbConnectTimeoutMs,
    statementTimeoutMs: config.dbStatementTimeoutMs,
    prepare: config.dbPrepare,
  });
  app.addHook('onClose', async () => {
    await db.end({ timeout: 5 });
  });

  await app.register(errorHandling);
  await app.register(requestIdHeader);
  // Before every hook that can answer early (closing, pressure, shedding, rate limit, API keys):
  // their 503s, 429s and 401s carry the security headers too.
  await app.register(security, { corsOrigins: config.corsOrigins });
  await app.register(closing, { exempt: ['/healthz', '/metrics'], readiness: '/readyz' });
  await app.register(pressure, { maxEventLoopDelayMs: config.maxEventLoopDelayMs, maxRssBytes: config.maxRssMb * 1024 * 1024 });
  await app.register(drain);
  await app.register(loadShedding, { maxInFlight: config.maxInFlight, exempt: ['/healthz', '/readyz', '/metrics'] });
  // The onRequest hooks run in this order: the rate limit counts a request before the API keys
  // can refuse it, so that wrong keys are counted too.
  await app.register(rateLimit, {
    perMinute: config.rateLimitPerMinute,
    redisUrl: config.redisUrl,
    workersStore: rateLimitStore,
    exempt: ['/healthz', '/readyz', '/metrics'],
  });
  await app.register(apiKeys, { apiKeys: config.apiKeys });
  await app.register(metrics, { collect: collectMetrics });
  await app.register(docs, { version, license });
  await app.register(healthRoutes, { pingDatabase: () => db`SELECT 1`.execute(), readyTimeoutMs: 2_000 });
  const items = createItemsService(db, {
    poolSize: config.dbPoolMax,
    maxQueued: config.dbQueueMax,
    maxWaitMs: config.dbQueueTimeoutMs,
  });
  const purge = setInterval(() => {
    items.purgeExpiredIdempotencyKeys().catch((error: unknown) => app.log.warn({ err: error }, 'could not purge idempotency keys'));
  }, PURGE_INTERVAL_MS).unref();
  app.addHook('onClose', async () => clearInterval(purge));
  await app.register(itemRoutes, { items, idempotencyTtlSeconds: config.idempotencyTtlSeconds });
  return app;
}
