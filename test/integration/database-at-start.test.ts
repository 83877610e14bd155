import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedDatabase, type EmbeddedDatabase } from '../../src/db/embedded.js';
import { migrateUp } from '../../src/db/migrate.js';
import { ADVISORY_LOCK_KEY } from '../../src/db/migrations-journal.js';
import { urlPassword } from '../../src/redact.js';
import { createTestDatabase } from '../helpers/database.js';
import { DatabaseProxy } from '../helpers/database-proxy.js';
import { waitUntil } from '../helpers/load.js';
import { freePort } from '../helpers/ports.js';
import { isAlive } from '../helpers/processes.js';
import { ServiceProcess } from '../helpers/service-process.js';

/**
 * The service started before its database (issue 11): it must not exit into a crash loop. It
 * answers /healthz 200 and /readyz 503, logs each attempt naming the host (never the password),
 * and once PostgreSQL is there (started by the test on the port the service was given) migrates
 * when asked, checks the connection budget, and serves, in the same process.
 */

const logger = pino({ level: 'warn' });
let dataDir: string;
let databasePort: number;
/** Databases on the test's own server, each as the service will reach it. */
const urls = { unmigrated: '', migrated: '', budget: '', locked: '' };
let server: EmbeddedDatabase | undefined;
const running: ServiceProcess[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'fastify-sqlasync-db-at-start-'));
  databasePort = await freePort();
  // Initialised once to learn its URLs (the superuser's password stays in the data directory),
  // then stopped: nothing listens on the port when each service starts.
  const initial = await startEmbeddedDatabase({ dataDir, port: databasePort, logger, database: 'unmigrated' });
  urls.unmigrated = initial.url;
  const admin = postgres(initial.url, { max: 1, onnotice: () => {} });
  try {
    for (const name of ['migrated', 'budget', 'locked'] as const) {
      await admin.unsafe(`CREATE DATABASE ${name}`);
      urls[name] = initial.url.replace(/\/unmigrated$/, `/${name}`);
    }
  } finally {
    await admin.end();
  }
  await migrateUp(urls.migrated);
  await initial.stop();
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((service) => service.stop()));
  await server?.stop();
  server = undefined;
});

afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

async function startService(env: Record<string, string>, args: string[] = []): Promise<{ service: ServiceProcess; baseUrl: string }> {
  const port = await freePort();
  const service = new ServiceProcess({ HOST: '127.0.0.1', PORT: String(port), ...env }, { args });
  running.push(service);
  return { service, baseUrl: `http://127.0.0.1:${port}` };
}

async function startDatabase(database: keyof typeof urls): Promise<void> {
  server = await startEmbeddedDatabase({ dataDir, port: databasePort, logger, database });
  expect(server.url).toBe(urls[database]);
}

async function get(url: string): Promise<{ status: number; type: string | null; body: unknown }> {
  const response = await fetch(url);
  return { status: response.status, type: response.headers.get('content-type'), body: await response.json() };
}

async function post(baseUrl: string, name: string): Promise<Response> {
  return fetch(`${baseUrl}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name }) });
}

/** 0: refused, as for the moment between the holding server's closing and the workers' listening. */
const readinessStatus = (baseUrl: string) => fetch(`${baseUrl}/readyz`).then((response) => response.status, () => 0);

/** While the database is not there: alive, not ready, every other request a 503 with Retry-After. */
async function expectWaiting(baseUrl: string): Promise<void> {
  expect(await get(`${baseUrl}/healthz`)).toEqual({ status: 200, type: 'application/json; charset=utf-8', body: { status: 'ok' } });
  // The holding server closes before the app listens: no client may keep a connection into that.
  expect((await fetch(`${baseUrl}/healthz`)).headers.get('connection')).toBe('close');
  expect(await get(`${baseUrl}/readyz`)).toEqual({
    status: 503,
    type: 'application/problem+json; charset=utf-8',
    body: {
      type: 'about:blank',
      title: 'Service Unavailable',
      status: 503,
      detail: 'Not ready: the service is waiting for its database (the log says why)',
      code: 'NOT_READY',
    },
  });
  const refused = await post(baseUrl, 'too early');
  expect(refused.status).toBe(503);
  expect(refused.headers.get('retry-after')).toBe('1');
  expect(await refused.json()).toEqual({
    type: 'about:blank',
    title: 'Service Unavailable',
    status: 503,
    detail: 'The database is unavailable; retry shortly',
    code: 'DATABASE_UNAVAILABLE',
  });
}

/** The attempts logged so far: one warning each, naming the host and port, never the password. */
function expectAttemptsLogged(service: ServiceProcess, url: string): void {
  const attempts = service.events('database-unreachable');
  expect(attempts.map((event) => event['attempt'])).toEqual(attempts.map((_, index) => index + 1));
  const database = `127.0.0.1:${databasePort}/${new URL(url).pathname.slice(1)}`;
  const error = `connect ECONNREFUSED 127.0.0.1:${databasePort}`;
  for (const { attempt, retryInMs, ...event } of attempts) {
    expect(event).toMatchObject({ level: 40, database, step: 'connection', error });
    expect(event['msg']).toBe(`database ${database} unreachable (attempt ${String(attempt)}, connection): ${error}; retrying in ${Number(retryInMs) / 1000} s`);
  }
  // Backoff: 1 s, then doubling.
  expect(attempts.slice(0, 3).map((event) => event['retryInMs'])).toEqual([1000, 2000, 4000].slice(0, attempts.length));
  const password = urlPassword(url)!;
  expect(password.length).toBeGreaterThan(8);
  expect(service.output.filter((line) => line.includes(password))).toEqual([]);
}

async function expectServing(baseUrl: string, name: string): Promise<void> {
  await waitUntil(async () => (await readinessStatus(baseUrl)) === 200, '/readyz 200', 60_000);
  const created = await post(baseUrl, name);
  expect(created.status).toBe(201);
  const { id } = (await created.json()) as { id: number };
  expect(((await get(`${baseUrl}/items/${id}`)).body as { name: string }).name).toBe(name);
}

describe('a database that is unreachable when the service starts', () => {
  it('supervisor: waits alive and unready, logs each attempt, then migrates and serves without a restart; SIGTERM exits 0', async () => {
    const { service, baseUrl } = await startService({ DATABASE_URL: urls.unmigrated, WEB_CONCURRENCY: '1', MIGRATE_ON_START: 'true' });
    await service.waitForLog('"attempt":2');
    await expectWaiting(baseUrl);
    expectAttemptsLogged(service, urls.unmigrated);
    expect(service.events('worker-started')).toEqual([]);
    // A reload or a scale before serving has nothing to act on; by default HUP would kill the process.
    for (const signal of ['SIGHUP', 'SIGTTIN', 'SIGTTOU'] as const) {
      service.signal(signal);
      await service.waitForLog(`${signal} ignored: not serving yet`);
    }
    await expectWaiting(baseUrl);

    await startDatabase('unmigrated');
    await expectServing(baseUrl, 'after the wait');
    expect(service.output.join('\n')).toContain('"applied":["0000_create_items","0001_idempotency_keys","0002_idempotency_key_owner"]');
    const [ready] = service.events('database-ready');
    expect(ready!['attempts']).toBeGreaterThanOrEqual(3);
    // The same process throughout, and its one worker started only once the database was ready.
    expect(isAlive(service.pid)).toBe(true);
    expect(service.events('worker-started')).toHaveLength(1);
    expect(service.events('worker-started')[0]!.time).toBeGreaterThanOrEqual(ready!.time);

    service.signal('SIGTERM');
    expect(await service.exited).toEqual({ code: 0, signal: null });
  });

  it('single process: the same wait, then serves the migrated database; SIGTERM exits 0', async () => {
    const { service, baseUrl } = await startService({ DATABASE_URL: urls.migrated }, ['--single-process']);
    await service.waitForLog('"attempt":2');
    await expectWaiting(baseUrl);
    expectAttemptsLogged(service, urls.migrated);

    await startDatabase('migrated');
    await expectServing(baseUrl, 'single process');
    expect(isAlive(service.pid)).toBe(true);
    // A single process writes its log in batches: the line may follow the first responses.
    await service.waitForLog('"event":"database-ready"');
    expect(service.events('database-ready')).toHaveLength(1);

    service.signal('SIGTERM');
    expect(await service.exited).toEqual({ code: 0, signal: null });
    expect(service.output.join('\n')).toContain('shutdown complete');
  });

  it('stops with the numbers to change when the connection budget, checked once the database is there, does not fit', async () => {
    const { service, baseUrl } = await startService({ DATABASE_URL: urls.budget, WEB_CONCURRENCY: '20', DB_POOL_MAX: '10' });
    // Logged once the holding server listens.
    await service.waitForLog('"event":"waiting-for-database"');
    expect((await fetch(`${baseUrl}/healthz`)).status).toBe(200);

    await startDatabase('budget');
    expect((await service.exited).code).toBe(1);
    expect(service.output.join('\n')).toMatch(/Connection budget exceeded: \(20 workers \+ 1 started during a rolling reload\) × DB_POOL_MAX 10/);
    expect(service.events('worker-started')).toEqual([]);
  });

  it('exits 0 on SIGTERM while it waits', async () => {
    const { service, baseUrl } = await startService({ DATABASE_URL: urls.unmigrated, WEB_CONCURRENCY: '1' });
    // Logged once the holding server listens.
    await service.waitForLog('"event":"waiting-for-database"');
    expect((await fetch(`${baseUrl}/healthz`)).status).toBe(200);
    service.signal('SIGTERM');
    expect(await service.exited).toEqual({ code: 0, signal: null });
    expect(service.events('stopped-before-serving')).toHaveLength(1);
  });
});

describe('a database that is there but not yet migrated', () => {
  it('stays unready while another instance holds the migration lock, then migrates and serves', async () => {
    await startDatabase('locked');
    const other = postgres(urls.locked, { max: 1, onnotice: () => {} });
    try {
      await other`SELECT pg_advisory_lock(${ADVISORY_LOCK_KEY})`;
      const { service, baseUrl } = await startService({ DATABASE_URL: urls.locked, MIGRATE_ON_START: 'true' }, ['--single-process']);
      const [waiting] = await service.waitForEvent('waiting-for-database');
      expect(waiting).toMatchObject({ step: 'migrations' });
      await expectWaiting(baseUrl);

      await other`SELECT pg_advisory_unlock(${ADVISORY_LOCK_KEY})`;
      await expectServing(baseUrl, 'after the lock');
      expect(service.events('database-unreachable')).toEqual([]);
    } finally {
      await other.end();
    }
  });
  it('gives up an attempt whose login succeeded but whose query never answers, after DB_CONNECT_TIMEOUT_MS', async () => {
    // As PgBouncer does while its server is down: it takes the login, then holds the query.
    const database = await createTestDatabase();
    const proxy = await DatabaseProxy.start(database.url);
    try {
      proxy.holdResults();
      const { service, baseUrl } = await startService({ DATABASE_URL: proxy.url, DB_CONNECT_TIMEOUT_MS: '500' }, ['--single-process']);
      await service.waitForLog('"attempt":2');
      expect(service.events('database-unreachable')[0]).toMatchObject({ step: 'connection', error: 'CONNECT_TIMEOUT: no answer within 500 ms' });
      proxy.releaseResults();
      await waitUntil(async () => (await readinessStatus(baseUrl)) === 200, '/readyz 200', 30_000);
      service.signal('SIGTERM');
      expect(await service.exited).toEqual({ code: 0, signal: null });
    } finally {
      await proxy.close();
      await database.drop();
    }
  });
});
