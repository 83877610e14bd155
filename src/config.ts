import { isIP } from 'node:net';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { envSchema } from 'env-schema';
import postgres from 'postgres';
import { Type, type Static } from 'typebox';
import { addSecret, redact, urlPassword } from './redact.js';

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
  LOG_FORMAT: Type.Enum(['json', 'pretty'], { default: 'json' }),
  DB_POOL_MAX: Type.Integer({ default: 10, minimum: 1, maximum: 1000 }),
  DB_CONNECT_TIMEOUT_MS: Type.Integer({ default: 5000, minimum: 100 }),
  DB_STATEMENT_TIMEOUT_MS: Type.Integer({ default: 10000, minimum: 0 }),
  DB_PREPARE: Type.Boolean({ default: true }),
  DB_QUEUE_MAX: Type.Integer({ default: 1000, minimum: 1 }),
  DB_QUEUE_TIMEOUT_MS: Type.Integer({ default: 2000, minimum: 1 }),
  BODY_LIMIT: Type.Integer({ default: 1048576, minimum: 1024 }),
  MAX_IN_FLIGHT: Type.Integer({ default: 1024, minimum: 1 }),
  // 30 days: a retry comes within minutes, and a larger value would overflow timers and intervals.
  IDEMPOTENCY_TTL_SECONDS: Type.Integer({ default: 86400, minimum: 1, maximum: 2_592_000 }),
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

/** Every variable the configuration reads (`.env.example` documents each). */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(ConfigSchema.properties);

export interface Config {
  /** Absent when the service should run its own embedded PostgreSQL. */
  databaseUrl: string | undefined;
  host: string;
  port: number;
  dataDir: string;
  embeddedDbPort: number;
  logLevel: string;
  /** JSON lines (the default, also on a terminal), or `pretty` for a person (needs pino-pretty). */
  logFormat: 'json' | 'pretty';
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
  /** Serve in this process, without a supervisor (development, and one process per container). */
  singleProcess: boolean;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Reads and validates the settings: by default from the process environment over `.env` (see
 * `readEnvironment`); tests pass their own object. `overrides` (from the command line) win over
 * both. An empty variable counts as unset. Throws a `ConfigError` naming the offending variable.
 */
export function loadConfig(env: Record<string, string | undefined> = readEnvironment(), overrides: Record<string, string> = {}): Readonly<Config> {
  const values = { ...withoutEmptyValues(env), ...overrides };
  // Known before validation, so that no message about them, from here on, can show them.
  addSecret(urlPassword(values['DATABASE_URL'] ?? ''));
  for (const key of list(values['API_KEYS'] ?? '')) addSecret(key);

  let parsed: Env;
  try {
    parsed = envSchema<Env>({ schema: structuredClone(ConfigSchema), env: false, data: [values] });
  } catch (error) {
    const message = (error as Error).message.replaceAll('env/', '').replace(/^env /, '');
    throw new ConfigError(redact(`Invalid configuration: ${message}`));
  }
  if (parsed.DATABASE_URL !== undefined) assertConnectionUrl(parsed.DATABASE_URL);
  return Object.freeze({
    databaseUrl: parsed.DATABASE_URL,
    host: parsed.HOST,
    port: parsed.PORT,
    dataDir: parsed.DATA_DIR,
    embeddedDbPort: parsed.EMBEDDED_DB_PORT,
    logLevel: parsed.LOG_LEVEL,
    logFormat: parsed.LOG_FORMAT,
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

/**
 * The process environment over the variables of `.env` in `directory` (when there is one). A
 * variable that is empty in the environment leaves `.env`'s value in place: empty means unset
 * (what `${DATABASE_URL:-}` in compose passes), here and in `loadConfig`.
 */
export function readEnvironment(
  environment: Record<string, string | undefined> = process.env,
  directory = process.cwd(),
): Record<string, string> {
  let dotenv: Record<string, string> = {};
  try {
    dotenv = parseEnv(readFileSync(path.join(directory, '.env'), 'utf8')) as Record<string, string>;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  return { ...withoutEmptyValues(dotenv), ...withoutEmptyValues(environment) };
}

/**
 * Parses DATABASE_URL as postgres.js will (creating a client connects nowhere), so that a URL it
 * cannot read is one clear line at start instead of a stack trace carrying the whole URL.
 */
function assertConnectionUrl(url: string): void {
  try {
    void postgres(url, { max: 1 }).end();
  } catch {
    throw new ConfigError(
      redact(`Invalid configuration: DATABASE_URL is not a valid connection URL (${url}); `) +
        'percent-encode special characters in the password: # as %23, @ as %40, / as %2F, % as %25',
    );
  }
}

/** An empty variable (`PORT=`) means "unset", as most shells and orchestrators intend. */
function withoutEmptyValues(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== ''),
  );
}
