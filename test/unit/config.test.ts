import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../src/command-line.js';
import { CONFIG_VARIABLES, ConfigError, loadConfig, readEnvironment } from '../../src/config.js';

describe('loadConfig', () => {
  it('has production defaults and runs the embedded database when DATABASE_URL is absent', () => {
    expect(loadConfig({})).toEqual({
      databaseUrl: undefined,
      host: '0.0.0.0',
      port: 8000,
      dataDir: './data',
      embeddedDbPort: 54329,
      logLevel: 'info',
      logFormat: 'json',
      dbPoolMax: 10,
      dbConnectTimeoutMs: 5000,
      dbStatementTimeoutMs: 10000,
      dbPrepare: true,
      dbQueueMax: 1000,
      dbQueueTimeoutMs: 2000,
      bodyLimit: 1048576,
      maxInFlight: 1024,
      idempotencyTtlSeconds: 86400,
      maxEventLoopDelayMs: 1000,
      maxRssMb: 0,
      corsOrigins: [],
      apiKeys: [],
      rateLimitPerMinute: 0,
      redisUrl: undefined,
      trustProxy: false,
      migrateOnStart: true,
      workers: availableParallelism(),
      workerTimeoutMs: 30000,
      gracefulTimeoutMs: 30000,
      maxRequests: 0,
      maxRequestsJitter: 0,
      singleProcess: false,
    });
  });

  it('reads every variable, converting numbers and booleans', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgresql://u:p@db:5432/items',
      HOST: '127.0.0.1',
      PORT: '9000',
      DATA_DIR: '/var/lib/items',
      EMBEDDED_DB_PORT: '6000',
      LOG_LEVEL: 'debug',
      LOG_FORMAT: 'pretty',
      DB_POOL_MAX: '20',
      DB_CONNECT_TIMEOUT_MS: '2000',
      DB_STATEMENT_TIMEOUT_MS: '500',
      DB_PREPARE: 'false',
      DB_QUEUE_MAX: '50',
      DB_QUEUE_TIMEOUT_MS: '100',
      BODY_LIMIT: '2048',
      MAX_IN_FLIGHT: '32',
      IDEMPOTENCY_TTL_SECONDS: '60',
      MAX_EVENT_LOOP_DELAY_MS: '200',
      MAX_RSS_MB: '512',
      CORS_ORIGINS: 'https://app.example.com, https://admin.example.com',
      API_KEYS: 'key-one,key-two',
      RATE_LIMIT_PER_MINUTE: '600',
      REDIS_URL: 'rediss://:secret@cache:6380/2',
      TRUST_PROXY: '10.0.0.0/8, 127.0.0.1, ::1, fd00::/8, loopback',
      MIGRATE_ON_START: 'true',
      WEB_CONCURRENCY: '3',
      WORKER_TIMEOUT: '1.5',
      GRACEFUL_TIMEOUT: '5',
      MAX_REQUESTS: '1000',
      MAX_REQUESTS_JITTER: '50',
      SINGLE_PROCESS: 'true',
    });
    expect(config).toEqual({
      databaseUrl: 'postgresql://u:p@db:5432/items',
      host: '127.0.0.1',
      port: 9000,
      dataDir: '/var/lib/items',
      embeddedDbPort: 6000,
      logLevel: 'debug',
      logFormat: 'pretty',
      dbPoolMax: 20,
      dbConnectTimeoutMs: 2000,
      dbStatementTimeoutMs: 500,
      dbPrepare: false,
      dbQueueMax: 50,
      dbQueueTimeoutMs: 100,
      bodyLimit: 2048,
      maxInFlight: 32,
      idempotencyTtlSeconds: 60,
      maxEventLoopDelayMs: 200,
      maxRssMb: 512,
      corsOrigins: ['https://app.example.com', 'https://admin.example.com'],
      apiKeys: ['key-one', 'key-two'],
      rateLimitPerMinute: 600,
      redisUrl: 'rediss://:secret@cache:6380/2',
      trustProxy: ['10.0.0.0/8', '127.0.0.1', '::1', 'fd00::/8', 'loopback'],
      migrateOnStart: true,
      workers: 3,
      workerTimeoutMs: 1500,
      gracefulTimeoutMs: 5000,
      maxRequests: 1000,
      maxRequestsJitter: 50,
      singleProcess: true,
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('does not migrate on start against an external database unless asked to', () => {
    expect(loadConfig({ DATABASE_URL: 'postgres://db/items' }).migrateOnStart).toBe(false);
  });

  it('never repeats REDIS_URL (its password) in an error', () => {
    expect(() => loadConfig({ REDIS_URL: 'http://:hunter2-secret@cache:6379' })).toThrow(ConfigError);
    expect(() => loadConfig({ REDIS_URL: 'http://:hunter2-secret@cache:6379' })).not.toThrow(/hunter2/);
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ PORT: '', DATABASE_URL: '' })).toMatchObject({ port: 8000, databaseUrl: undefined });
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT must be integer'],
    [{ PORT: '70000' }, 'PORT must be <= 65535'],
    [{ DATABASE_URL: 'mysql://db/items' }, 'DATABASE_URL must match pattern'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL must be equal to one of the allowed values'],
    [{ DB_POOL_MAX: '0' }, 'DB_POOL_MAX must be >= 1'],
    [{ BODY_LIMIT: '1mb' }, 'BODY_LIMIT must be integer'],
    [{ MIGRATE_ON_START: 'maybe' }, 'MIGRATE_ON_START must be boolean'],
    [{ WEB_CONCURRENCY: '0' }, 'WEB_CONCURRENCY must be >= 1'],
    [{ WORKER_TIMEOUT: '0' }, 'WORKER_TIMEOUT must be > 0'],
    [{ REDIS_URL: 'cache:6379' }, 'REDIS_URL must match pattern'],
    [{ TRUST_PROXY: '1' }, 'TRUST_PROXY takes the addresses or CIDRs of the proxies in front, not a hop count'],
    [{ TRUST_PROXY: 'true' }, 'TRUST_PROXY must be a comma-separated list of addresses, CIDRs or loopback/linklocal/uniquelocal; "true" is none'],
    [{ TRUST_PROXY: '10.0.0.0/33' }, '"10.0.0.0/33" is none'],
    [{ TRUST_PROXY: '127.0.0.1, nginx' }, '"nginx" is none'],
    [{ TRUST_PROXY: '::1/129' }, '"::1/129" is none'],
    [{ TRUST_PROXY: '10.0.0.0/8/8' }, '"10.0.0.0/8/8" is none'],
    [{ LOG_FORMAT: 'fancy' }, 'LOG_FORMAT must be equal to one of the allowed values'],
    [{ IDEMPOTENCY_TTL_SECONDS: '2592001' }, 'IDEMPOTENCY_TTL_SECONDS must be <= 2592000'],
  ])('fails fast naming the variable for %j', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});

describe('the bounds of IDEMPOTENCY_TTL_SECONDS', () => {
  it('accept up to 30 days', () => {
    expect(loadConfig({ IDEMPOTENCY_TTL_SECONDS: '2592000' }).idempotencyTtlSeconds).toBe(2_592_000);
  });
});

describe('a DATABASE_URL that does not parse', () => {
  it('is a configuration error that hides the password and says how to write it', () => {
    const load = () => loadConfig({ DATABASE_URL: 'postgres://app:pa#ss@db:5432/items' });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(
      'Invalid configuration: DATABASE_URL is not a valid connection URL (postgres://app:[redacted]@db:5432/items); ' +
        'percent-encode special characters in the password: # as %23, @ as %40, / as %2F, % as %25',
    );
  });

  it.each(['postgres://app:pa%ss@db/items', 'postgres://app:pw@db:99999/items'])('is refused for %s', (url) => {
    expect(() => loadConfig({ DATABASE_URL: url })).toThrow('DATABASE_URL is not a valid connection URL');
  });

  it.each(['postgres://app:pa%23ss@db:5432/items', 'postgres://app:pw@db1:5432,db2:5432/items?sslmode=require', 'postgresql:///items'])(
    'is accepted when encoded: %s',
    (url) => {
      expect(loadConfig({ DATABASE_URL: url }).databaseUrl).toBe(url);
    },
  );
});

describe('readEnvironment', () => {
  it('merges the environment over .env, an empty value counting as unset in either', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'fastify-sqlasync-env-'));
    try {
      await writeFile(path.join(dir, '.env'), 'PORT=9001\nHOST=10.0.0.1\nLOG_LEVEL=\nDB_POOL_MAX=3\n');
      const environment = { PORT: '', HOST: '127.0.0.1', DATABASE_URL: '', LOG_LEVEL: '', BODY_LIMIT: undefined };
      expect(readEnvironment(environment, dir)).toEqual({ PORT: '9001', HOST: '127.0.0.1', DB_POOL_MAX: '3' });
      expect(loadConfig(readEnvironment(environment, dir))).toMatchObject({ port: 9001, host: '127.0.0.1', databaseUrl: undefined, logLevel: 'info', dbPoolMax: 3 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('needs no .env', () => {
    expect(readEnvironment({ PORT: '1', HOST: '' }, path.join(tmpdir(), 'no-such-folder'))).toEqual({ PORT: '1' });
  });
});

describe('.env.example', () => {
  it('lists every variable the configuration reads, each with its default', async () => {
    const example = await readFile(new URL('../../.env.example', import.meta.url), 'utf8');
    // Every setting is a commented-out assignment: `cp .env.example .env` changes nothing until edited.
    const assignments = example
      .split('\n')
      .filter((line) => /^# [A-Z_]+=/.test(line))
      .map((line) => line.slice(2));
    const documented = parseEnv(assignments.join('\n'));
    expect(Object.keys(documented).sort()).toEqual([...CONFIG_VARIABLES].sort());
    expect(assignments).toHaveLength(CONFIG_VARIABLES.length);
    expect(loadConfig(documented)).toEqual(loadConfig({}));
  });
});

describe('command-line options', () => {
  it('override the environment', () => {
    const { overrides } = parseCommandLine(['--workers', '4', '--bind', '127.0.0.1:9000', '--timeout', '10', '--no-migrate']);
    expect(overrides).toEqual({ WEB_CONCURRENCY: '4', HOST: '127.0.0.1', PORT: '9000', WORKER_TIMEOUT: '10', MIGRATE_ON_START: 'false' });
    expect(loadConfig({ WEB_CONCURRENCY: '2', PORT: '8000' }, overrides)).toMatchObject({ workers: 4, port: 9000, migrateOnStart: false });
  });

  it('accept an IPv6 bind address in brackets', () => {
    expect(parseCommandLine(['--bind', '[::]:8000']).overrides).toEqual({ HOST: '::', PORT: '8000' });
  });

  it.each([[['--bind', 'localhost']], [['--workers']], [['--unknown']]])('refuse %j with a message and the usage', (argv) => {
    expect(() => parseCommandLine(argv)).toThrow(ConfigError);
  });

  it('are validated like their variables', () => {
    expect(() => loadConfig({}, parseCommandLine(['--workers', 'many']).overrides)).toThrow('WEB_CONCURRENCY must be integer');
  });
});
