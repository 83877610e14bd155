import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { envSchema } from 'env-schema';
import { Type, type Static } from 'typebox';

/**
 * The service's settings. This module is the only reader of the environment (and of `.env`);
 * everything else receives a frozen `Config`.
 */
const ConfigSchema = Type.Object({
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  HOST: Type.String({ default: '0.0.0.0', minLength: 1 }),
  PORT: Type.Integer({ default: 8000, minimum: 0, maximum: 65535 }),
  DATA_DIR: Type.String({ default: './data', minLength: 1 }),
  EMBEDDED_DB_PORT: Type.Integer({ default: 54329, minimum: 1, maximum: 65535 }),
  LOG_LEVEL: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { default: 'info' }),
  DB_POOL_MAX: Type.Integer({ default: 10, minimum: 1, maximum: 1000 }),
  DB_CONNECT_TIMEOUT_MS: Type.Integer({ default: 5000, minimum: 100 }),
  DB_STATEMENT_TIMEOUT_MS: Type.Integer({ default: 10000, minimum: 0 }),
  DB_PREPARE: Type.Boolean({ default: true }),
  DB_QUEUE_MAX: Type.Integer({ default: 1000, minimum: 1 }),
  DB_QUEUE_TIMEOUT_MS: Type.Integer({ default: 2000, minimum: 1 }),
  BODY_LIMIT: Type.Integer({ default: 1048576, minimum: 1024 }),
  MAX_IN_FLIGHT: Type.Integer({ default: 1024, minimum: 1 }),
  IDEMPOTENCY_TTL_SECONDS: Type.Integer({ default: 86400, minimum: 1 }),
  MAX_EVENT_LOOP_DELAY_MS: Type.Integer({ default: 1000, minimum: 0 }),
  MAX_RSS_MB: Type.Integer({ default: 0, minimum: 0 }),
  CORS_ORIGINS: Type.String({ default: '' }),
  API_KEYS: Type.String({ default: '' }),
  RATE_LIMIT_PER_MINUTE: Type.Integer({ default: 0, minimum: 0 }),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  TRUST_PROXY: Type.String({ default: '' }),
  MIGRATE_ON_START: Type.Optional(Type.Boolean()),
  WEB_CONCURRENCY: Type.Integer({ default: availableParallelism(), minimum: 1, maximum: 256 }),
  WORKER_TIMEOUT: Type.Number({ default: 30, exclusiveMinimum: 0 }),
  GRACEFUL_TIMEOUT: Type.Number({ default: 30, minimum: 0 }),
  MAX_REQUESTS: Type.Integer({ default: 0, minimum: 0 }),
  MAX_REQUESTS_JITTER: Type.Integer({ default: 0, minimum: 0 }),
  SINGLE_PROCESS: Type.Boolean({ default: false }),
});

type Env = Static<typeof ConfigSchema>;

export interface Config {
  /** Absent when the service should run its own embedded PostgreSQL. */
  databaseUrl: string | undefined;
  host: string;
  port: number;
  dataDir: string;
  embeddedDbPort: number;
  logLevel: string;
  dbPoolMax: number;
  dbConnectTimeoutMs: number;
  dbStatementTimeoutMs: number;
  /** Protocol-level prepared statements; off for PgBouncer in transaction mode before 1.21. */
  dbPrepare: boolean;
  /** Requests that may wait for the database per worker and kind of work; beyond, 503 at once. */
  dbQueueMax: number;
  /** A request that waited this long for the database gets a 503. */
  dbQueueTimeoutMs: number;
  bodyLimit: number;
  /** Requests a worker works on at once; beyond, a fast 503 (health probes excepted). */
  maxInFlight: number;
  /** How long the response to a request with an Idempotency-Key is remembered. */
  idempotencyTtlSeconds: number;
  /** 503 while the event loop lags more than this (0: never). */
  maxEventLoopDelayMs: number;
  /** 503 while resident memory exceeds this many MiB (0: never). */
  maxRssMb: number;
  /** Browser origins allowed by CORS; empty: CORS off. */
  corsOrigins: string[];
  /** Bearer keys required for writes; empty: writes need none. */
  apiKeys: string[];
  /** Requests per minute per client (0: unlimited), counted for all workers (by the supervisor, or in Redis). */
  rateLimitPerMinute: number;
  /** Where every instance counts its clients' requests; absent: each instance counts its own. */
  redisUrl: string | undefined;
  /** Whose X-Forwarded-For to believe: Fastify's `trustProxy` (proxy addresses and CIDRs); false: nobody's. */
  trustProxy: TrustProxy;
  /** Run pending migrations before serving: on by default for the embedded database only. */
  migrateOnStart: boolean;
  workers: number;
  /** A worker whose event loop is blocked this long is killed and replaced. */
  workerTimeoutMs: number;
  /** On shutdown or reload, in-flight requests get this long to finish. */
  gracefulTimeoutMs: number;
  /** Recycle a worker after this many requests (0: never), plus up to `maxRequestsJitter` more. */
  maxRequests: number;
  maxRequestsJitter: number;
  /** Serve in this process, without a supervisor (development). */
  singleProcess: boolean;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Reads and validates the settings. `env` defaults to the process environment merged over `.env`;
 * tests pass their own object. `overrides` (from the command line) win over both. Throws a
 * `ConfigError` naming the offending variable.
 */
export function loadConfig(env?: Record<string, string | undefined>, overrides: Record<string, string> = {}): Readonly<Config> {
  let parsed: Env;
  try {
    parsed = envSchema<Env>({
      schema: structuredClone(ConfigSchema),
      ...(env
        ? { env: false, data: [{ ...withoutEmptyValues(env), ...overrides }] }
        : { dotenv: true, data: [overrides] }),
    });
  } catch (error) {
    const message = (error as Error).message.replaceAll('env/', '').replace(/^env /, '');
    throw new ConfigError(`Invalid configuration: ${message}`);
  }
  return Object.freeze({
    databaseUrl: parsed.DATABASE_URL,
    host: parsed.HOST,
    port: parsed.PORT,
    dataDir: parsed.DATA_DIR,
    embeddedDbPort: parsed.EMBEDDED_DB_PORT,
    logLevel: parsed.LOG_LEVEL,
    dbPoolMax: parsed.DB_POOL_MAX,
    dbConnectTimeoutMs: parsed.DB_CONNECT_TIMEOUT_MS,
    dbStatementTimeoutMs: parsed.DB_STATEMENT_TIMEOUT_MS,
    dbPrepare: parsed.DB_PREPARE,
    dbQueueMax: parsed.DB_QUEUE_MAX,
    dbQueueTimeoutMs: parsed.DB_QUEUE_TIMEOUT_MS,
    bodyLimit: parsed.BODY_LIMIT,
    maxInFlight: parsed.MAX_IN_FLIGHT,
    idempotencyTtlSeconds: parsed.IDEMPOTENCY_TTL_SECONDS,
    maxEventLoopDelayMs: parsed.MAX_EVENT_LOOP_DELAY_MS,
    maxRssMb: parsed.MAX_RSS_MB,
    corsOrigins: list(parsed.CORS_ORIGINS),
    apiKeys: list(parsed.API_KEYS),
    rateLimitPerMinute: parsed.RATE_LIMIT_PER_MINUTE,
    redisUrl: parsed.REDIS_URL,
    trustProxy: trustProxy(parsed.TRUST_PROXY),
    migrateOnStart: parsed.MIGRATE_ON_START ?? parsed.DATABASE_URL === undefined,
    workers: parsed.WEB_CONCURRENCY,
    workerTimeoutMs: Math.round(parsed.WORKER_TIMEOUT * 1000),
    gracefulTimeoutMs: Math.round(parsed.GRACEFUL_TIMEOUT * 1000),
    maxRequests: parsed.MAX_REQUESTS,
    maxRequestsJitter: parsed.MAX_REQUESTS_JITTER,
    singleProcess: parsed.SINGLE_PROCESS,
  });
}

/** The proxies whose X-Forwarded-For is believed; false: nobody's. */
export type TrustProxy = false | string[];

/** proxy-addr's names for address ranges, which Fastify accepts among the addresses. */
const TRUST_PROXY_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * TRUST_PROXY: the addresses and CIDRs of the proxies in front. Checked here, so that a typo
 * stops the service at start instead of trusting nobody (or everybody).
 */
function trustProxy(value: string): TrustProxy {
  if (/^\s*\d+\s*$/.test(value)) {
    // Fastify (since 5.12) ignores hop counts: they trust any peer, so a client that reaches the
    // service directly could forge X-Forwarded-For. Refused rather than silently trusting nobody.
    throw new ConfigError(
      'Invalid configuration: TRUST_PROXY takes the addresses or CIDRs of the proxies in front, not a hop count ' +
        '(a hop count would believe X-Forwarded-For from any client that reaches the service directly)',
    );
  }
  const entries = list(value);
  for (const entry of entries) {
    const [address = '', prefix, ...rest] = entry.split('/');
    const version = isIP(address);
    const prefixFits = prefix === undefined || (/^\d+$/.test(prefix) && Number(prefix) <= (version === 4 ? 32 : 128));
    if (TRUST_PROXY_RANGES.has(entry) || (version !== 0 && prefixFits && rest.length === 0)) continue;
    throw new ConfigError(
      `Invalid configuration: TRUST_PROXY must be a comma-separated list of addresses, CIDRs or ` +
        `loopback/linklocal/uniquelocal; "${entry}" is none of these`,
    );
  }
  return entries.length > 0 ? entries : false;
}

/** A comma-separated list, blanks dropped. */
function list(value: string): string[] {
  return value
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
}

/** An empty variable (`PORT=`) means "unset", as most shells and orchestrators intend. */
function withoutEmptyValues(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== ''),
  );
}
