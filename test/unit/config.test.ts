import { describe, expect, it } from 'vitest';
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
      bodyLimit: 1048576,
      migrateOnStart: true,
      shutdownTimeoutMs: 30000,
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
      BODY_LIMIT: '2048',
      MIGRATE_ON_START: 'true',
      SHUTDOWN_TIMEOUT_MS: '5000',
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
      bodyLimit: 2048,
      migrateOnStart: true,
      shutdownTimeoutMs: 5000,
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('does not migrate on start against an external database unless asked to', () => {
    expect(loadConfig({ DATABASE_URL: 'postgres://db/items' }).migrateOnStart).toBe(false);
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
  ])('fails fast naming the variable for %j', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});
