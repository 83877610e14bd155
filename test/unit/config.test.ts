import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../src/command-line.js';
import { ConfigError, loadConfig } from '../../src/config.js';

describe('loadConfig', () => {
  it('has production defaults and runs the embedded database when DATABASE_URL is absent', () => {
    expect(loadConfig({})).toEqual({
      databaseUrl: undefined,
      host: '0.0.0.0',
      port: 8000,
      dataDir: './data',
      embeddedDbPort: 54329,
      logLevel: 'info',
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
  ])('fails fast naming the variable for %j', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
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
