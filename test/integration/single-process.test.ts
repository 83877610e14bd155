import { readdir, readFile } from 'node:fs/promises';
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { waitUntil } from '../helpers/load.js';
import { freePort } from '../helpers/ports.js';
import { ServiceProcess } from '../helpers/service-process.js';

/**
 * Single-process mode as the container image runs it (SINGLE_PROCESS=true in its environment, node
 * as PID 1, one process per container): the process that starts is the one that serves, forks
 * nothing, serves its own metrics, logs JSON lines, and on SIGTERM answers what it accepted, then
 * exits 0.
 */

let database: TestDatabase;
let sql: postgres.Sql;
const running: ServiceProcess[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((service) => service.stop()));
});

afterAll(async () => {
  await sql?.end();
  await database?.drop();
});

async function startSingleProcess(): Promise<{ service: ServiceProcess; baseUrl: string }> {
  const port = await freePort();
  const service = new ServiceProcess({ DATABASE_URL: database.url, HOST: '127.0.0.1', PORT: String(port), SINGLE_PROCESS: 'true' });
  running.push(service);
  await service.waitForLog('Server listening');
  return { service, baseUrl: `http://127.0.0.1:${port}` };
}

/** The pids whose parent is `pid` (Linux /proc). */
async function childrenOf(pid: number): Promise<number[]> {
  const children: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // The fields after the command name (which may hold spaces) in parentheses: state, ppid, …
    const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (parent === pid) children.push(Number(entry));
  }
  return children;
}

function post(baseUrl: string, name: string): Promise<Response> {
  return fetch(`${baseUrl}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name }) });
}

describe('SINGLE_PROCESS=true (the container image)', () => {
  it('serves from the process that started, forks nothing, counts its own metrics and logs JSON lines', async () => {
    const { service, baseUrl } = await startSingleProcess();
    expect(await childrenOf(service.pid)).toEqual([]);
    expect((await post(baseUrl, 'counted')).status).toBe(201);

    const metrics = await fetch(`${baseUrl}/metrics`);
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(text).toContain('http_requests_total{method="POST",route="/items",status="201"} 1\n');
    expect(service.events()).toEqual([]);

    service.signal('SIGTERM');
    expect(await service.exited).toEqual({ code: 0, signal: null });
    const notJson = service.output.filter((line) => {
      try {
        return typeof JSON.parse(line) !== 'object';
      } catch {
        return true;
      }
    });
    expect(notJson).toEqual([]);
    expect(service.output.map((line) => (JSON.parse(line) as { msg: string }).msg).slice(-2)).toEqual([
      'shutting down: finishing in-flight requests',
      'shutdown complete',
    ]);
  });

  it('answers the request in flight when SIGTERM comes, refuses new connections, then exits 0', async () => {
    const { service, baseUrl } = await startSingleProcess();
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const transaction = sql.begin(async (tx) => {
      await tx`LOCK TABLE items IN ACCESS EXCLUSIVE MODE`;
      locked();
      await released;
    });
    await Promise.race([isLocked, transaction]);

    const inFlight = post(baseUrl, 'in flight');
    // In flight for sure: the service's insert waits for the lock.
    await waitUntil(async () => {
      const [row] = await sql<{ waiting: number }[]>`
        SELECT count(*)::int AS waiting FROM pg_stat_activity
        WHERE application_name = 'fastify-sqlasync' AND wait_event_type = 'Lock'`;
      return row!.waiting > 0;
    }, 'the POST waiting for the table lock');

    service.signal('SIGTERM');
    await service.waitForLog('shutting down: finishing in-flight requests');
    const refused = () => fetch(`${baseUrl}/healthz`).then(() => false, (error: Error) => (error.cause as { code?: string } | undefined)?.code === 'ECONNREFUSED');
    await waitUntil(refused, 'new connections refused');

    release();
    await transaction;
    const answer = await inFlight;
    expect(answer.status).toBe(201);
    expect(answer.headers.get('connection')).toBe('close');
    expect(await service.exited).toEqual({ code: 0, signal: null });
  });
});
