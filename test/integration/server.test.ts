import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.js';
import { ServiceProcess } from '../helpers/service-process.js';
import { isAlive } from '../helpers/processes.js';

/**
 * `npm start` without DATABASE_URL: the service runs its own embedded PostgreSQL in DATA_DIR.
 * These tests start the real entry point, talk to it over a real socket and signal it by pid.
 */

let dataDir: string;
let env: Record<string, string>;
let baseUrl: string;
const running: ServiceProcess[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'fastify-sqlasync-server-'));
  const port = await freePort();
  env = { HOST: '127.0.0.1', PORT: String(port), DATA_DIR: dataDir, EMBEDDED_DB_PORT: String(await freePort()) };
  baseUrl = `http://127.0.0.1:${port}`;
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((service) => service.stop()));
});

afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

async function start(extraEnv: Record<string, string> = {}): Promise<ServiceProcess> {
  const service = new ServiceProcess({ ...env, ...extraEnv });
  running.push(service);
  await service.waitForLog('Server listening');
  return service;
}

async function postmasterPid(): Promise<number> {
  return Number((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
}

describe('the service on its embedded database', () => {
  it('initialises, migrates, serves over HTTP and stops cleanly on SIGTERM', async () => {
    const service = await start();
    expect(service.output.join('\n')).toContain('initialising a new embedded PostgreSQL data directory');
    expect(service.output.join('\n')).toContain('"applied":["0000_create_items","0001_idempotency_keys","0002_idempotency_key_owner"]');

    const created = await fetch(`${baseUrl}/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'x', description: 'y' }),
    });
    expect(created.status).toBe(201);
    const item = (await created.json()) as { id: number };
    const listed = (await (await fetch(`${baseUrl}/items`)).json()) as { id: number }[];
    expect(listed.map((row) => row.id)).toContain(item.id);

    const server = await postmasterPid();
    service.signal('SIGTERM');
    expect(await service.exited).toEqual({ code: 0, signal: null });
    expect(service.output.join('\n')).toContain('embedded PostgreSQL stopped');
    expect(isAlive(server)).toBe(false);
  });

  it('keeps the data across a restart', async () => {
    await start();
    const listed = (await (await fetch(`${baseUrl}/items`)).json()) as { name: string }[];
    expect(listed.map((row) => row.name)).toContain('x');
  });

  it('recovers from a crash that left its PostgreSQL running as an orphan', async () => {
    const crashed = await start();
    const orphan = await postmasterPid();
    crashed.signal('SIGKILL');
    await crashed.exited;
    expect(isAlive(orphan)).toBe(true);

    const service = await start();
    expect(service.output.join('\n')).toContain('stopping an orphaned PostgreSQL server left by a crash');
    expect(isAlive(orphan)).toBe(false);
    expect((await fetch(`${baseUrl}/items`)).status).toBe(200);
  });

  it('recovers from a stale postmaster.pid', async () => {
    const service = await start();
    await service.stop();
    // A pid file whose process is long gone, as a power cut leaves it.
    await writeFile(path.join(dataDir, 'postmaster.pid'), `999999\n${dataDir}\n1700000000\n${env['EMBEDDED_DB_PORT']}\n\n`);
    const restarted = await start();
    expect(restarted.output.join('\n')).toContain('removing a stale postmaster.pid left by a crash');
    expect((await fetch(`${baseUrl}/readyz`)).status).toBe(200);
  });

  it('refuses to share its data directory with a running service', async () => {
    await start();
    const second = new ServiceProcess({ ...env, PORT: String(await freePort()) });
    running.push(second);
    expect((await second.exited).code).toBe(1);
    expect(second.output.join('\n')).toMatch(/data directory .* is in use by PostgreSQL/);
  });

  it('serves in one process with --single-process (npm run dev), and stops on SIGTERM', async () => {
    const service = new ServiceProcess(env, { args: ['--single-process'] });
    running.push(service);
    await service.waitForLog('Server listening');
    expect((await fetch(`${baseUrl}/healthz`)).status).toBe(200);
    expect(service.events()).toEqual([]);
    service.signal('SIGTERM');
    expect(await service.exited).toEqual({ code: 0, signal: null });
    expect(service.output.join('\n')).toContain('embedded PostgreSQL stopped');
  });

  it('treats empty variables as unset, as `${DATABASE_URL:-}` in compose passes them', async () => {
    const service = await start({ DATABASE_URL: '', WEB_CONCURRENCY: '', GRACEFUL_TIMEOUT: '', LOG_LEVEL: '' });
    expect(service.output.join('\n')).toContain('embedded PostgreSQL is ready');
    expect((await fetch(`${baseUrl}/readyz`)).status).toBe(200);
  });

  it('exits 1 naming the variable when the configuration is invalid', async () => {
    const service = new ServiceProcess({ ...env, PORT: 'eighty' });
    running.push(service);
    expect((await service.exited).code).toBe(1);
    expect(service.output).toContain('Invalid configuration: PORT must be integer');
  });
});
