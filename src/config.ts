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
  BODY_LIMIT: Type.Integer({ default: 1048576, minimum: 1024 }),
  MIGRATE_ON_START: Type.Optional(Type.Boolean()),
  SHUTDOWN_TIMEOUT_MS: Type.Integer({ default: 30000, minimum: 0 }),
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
  bodyLimit: number;
  /** Run pending migrations before serving: on by default for the embedded database only. */
  migrateOnStart: boolean;
  shutdownTimeoutMs: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Reads and validates the settings. `env` defaults to the process environment merged over `.env`;
 * tests pass their own object. Throws a `ConfigError` naming the offending variable.
 */
export function loadConfig(env?: Record<string, string | undefined>): Readonly<Config> {
  let parsed: Env;
  try {
    parsed = envSchema<Env>({
      schema: structuredClone(ConfigSchema),
      ...(env ? { env: false, data: [withoutEmptyValues(env)] } : { dotenv: true }),
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
    bodyLimit: parsed.BODY_LIMIT,
    migrateOnStart: parsed.MIGRATE_ON_START ?? parsed.DATABASE_URL === undefined,
    shutdownTimeoutMs: parsed.SHUTDOWN_TIMEOUT_MS,
  });
}

/** An empty variable (`PORT=`) means "unset", as most shells and orchestrators intend. */
function withoutEmptyValues(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== ''),
  );
}
