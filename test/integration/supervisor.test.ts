import { createServer, type Server } from 'node:net';
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startLoad, waitUntil, type LoadResult } from '../helpers/load.js';
import { freePort } from '../helpers/ports.js';
import { ServiceProcess } from '../helpers/service-process.js';

/**
 * The supervisor as production runs it: a real primary forking real workers, on a real PostgreSQL,
 * under a concurrent HTTP load generated here, signalled by pid.
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

interface Started {
  service: ServiceProcess;
  baseUrl: string;
}

async function startSupervisor(env: Record<string, string> = {}, preload: string[] = []): Promise<Started> {
  const port = await freePort();
  const service = new ServiceProcess(
    { DATABASE_URL: database.url, HOST: '127.0.0.1', PORT: String(port), WEB_CONCURRENCY: '2', DB_POOL_MAX: '5', ...env },
    { preload },
  );
  running.push(service);
  await service.waitForEvent('worker-listening', Number(env['WEB_CONCURRENCY'] ?? 2));
  return { service, baseUrl: `http://127.0.0.1:${port}` };
}

/** The pids of the workers serving now (listening, and not exited since), oldest first. */
function liveWorkers(service: ServiceProcess): number[] {
  const pids = (kind: string) => new Set(service.events(kind).map((event) => event['workerPid'] as number));
  const listening = pids('worker-listening');
  const exited = pids('worker-exited');
  return [...pids('worker-started')].filter((pid) => listening.has(pid) && !exited.has(pid));
}

function failures(result: LoadResult): number {
  const errors = Object.values(result.errors).reduce((sum, count) => sum + count, result.notAccepted);
  const unsuccessful = Object.entries(result.statuses)
    .filter(([status]) => Number(status) >= 300)
    .reduce((sum, [, count]) => sum + count, 0);
  return errors + unsuccessful;
}

async function storedIds(ids: number[]): Promise<number> {
  const [row] = await sql<{ count: number }[]>`SELECT count(*)::int AS count FROM items WHERE id = ANY(${ids})`;
  return row!.count;
}

describe('the supervisor', () => {
  it('replaces a worker killed with SIGKILL under load within a second, while the others keep serving', async () => {
    const { service, baseUrl } = await startSupervisor();
    const load = startLoad(baseUrl, { concurrency: 20, method: 'POST', path: '/items' });
    await waitUntil(() => load.answered() > 200, 'load to flow');

    const [victim, survivor] = liveWorkers(service);
    process.kill(victim!, 'SIGKILL');
    const [replaced] = await service.waitForEvent('worker-replaced');
    const [exit] = service.events('worker-exited');
    const replacementListening = (await service.waitForEvent('worker-listening', 3)).at(-1)!;
    const answeredAtReplacement = load.answered();
    await waitUntil(() => load.answered() > answeredAtReplacement + 200, 'load after the replacement');
    const result = await load.stop();

    expect(exit).toMatchObject({ workerPid: victim, signal: 'SIGKILL', expected: false });
    expect(replaced).toMatchObject({ workerPid: victim });
    // Forked at once; listening includes booting a fresh Node.js process on a busy 2-core machine.
    expect(replaced!.time - exit!.time).toBeLessThan(1_000);
    console.info(
      `worker replacement: forked ${replaced!.time - exit!.time} ms after the kill, listening after ` +
        `${replacementListening.time - exit!.time} ms; ${result.total} requests, ${failures(result)} failed`,
    );
    expect(liveWorkers(service)).toContain(survivor);
    expect(liveWorkers(service)).toHaveLength(2);
    // Only requests in flight on the killed worker's connections can fail: at most one per client.
    expect(failures(result)).toBeLessThanOrEqual(20);
    expect(result.statuses[201]).toBeGreaterThan(400);
    // Every 201 is a committed row.
    expect(await storedIds(result.createdIds)).toBe(result.createdIds.length);
  });

  it('kills and replaces a worker whose event loop is blocked for longer than --timeout', async () => {
    const { service, baseUrl } = await startSupervisor({ WORKER_TIMEOUT: '1.5' }, ['./test/fixtures/busy-loop-on-sigusr2.ts']);
    const [stuck] = liveWorkers(service);
    const blockedAt = Date.now();
    process.kill(stuck!, 'SIGUSR2');

    const [hung] = await service.waitForEvent('worker-hung');
    expect(hung).toMatchObject({ workerPid: stuck });
    expect(hung!.time - blockedAt).toBeGreaterThanOrEqual(1_400);
    expect(hung!.time - blockedAt).toBeLessThan(4_000);
    await service.waitForEvent('worker-replaced');
    await service.waitForEvent('worker-listening', 3);
    expect(liveWorkers(service)).not.toContain(stuck);
    expect(liveWorkers(service)).toHaveLength(2);
    expect((await fetch(`${baseUrl}/healthz`)).status).toBe(200);
  });

  it('reloads every worker on SIGHUP under load with zero failed requests', async () => {
    const { service, baseUrl } = await startSupervisor();
    const before = liveWorkers(service);
    const load = startLoad(baseUrl, { concurrency: 20, method: 'POST', path: '/items' });
    await waitUntil(() => load.answered() > 200, 'load to flow');

    service.signal('SIGHUP');
    const [ended] = await service.waitForEvent('reload-ended');
    const answeredAtEnd = load.answered();
    await waitUntil(() => load.answered() > answeredAtEnd + 200, 'load after the reload');
    const result = await load.stop();

    expect(ended).toMatchObject({ replaced: 2 });
    const after = liveWorkers(service);
    expect(after).toHaveLength(2);
    expect(after.filter((pid) => before.includes(pid))).toEqual([]);
    console.info(`SIGHUP under load: ${result.total} requests, ${failures(result)} failed`, result.statuses, result.errors);
    expect(result.errors).toEqual({});
    expect(result.notAccepted).toBe(0);
    expect(Object.keys(result.statuses)).toEqual(['201']);
    expect(await storedIds(result.createdIds)).toBe(result.createdIds.length);
  });

  it('answers every in-flight request on SIGTERM under load, then exits 0', async () => {
    const { service, baseUrl } = await startSupervisor();
    const load = startLoad(baseUrl, { concurrency: 20, method: 'POST', path: '/items' });
    await waitUntil(() => load.answered() > 200, 'load to flow');

    service.signal('SIGTERM');
    const exit = await service.exited;
    const result = await load.stop();

    expect(exit).toEqual({ code: 0, signal: null });
    expect(service.events('worker-exited').map((event) => event['code'])).toEqual([0, 0]);
    console.info(`SIGTERM under load: ${result.total} requests, ${result.notAccepted} not accepted`, result.statuses, result.errors);
    // Once the listener closes, new connections are refused: those requests were never accepted.
    // A reset or hang-up on an established connection, or a 5xx, would be a request left unanswered.
    expect(result.errors).toEqual({});
    expect(Object.keys(result.statuses)).toEqual(['201']);
    expect(await storedIds(result.createdIds)).toBe(result.createdIds.length);
  });

  it('adds a worker on SIGTTIN and retires one on SIGTTOU', async () => {
    const { service } = await startSupervisor();
    service.signal('SIGTTIN');
    await service.waitForEvent('worker-listening', 3);
    expect(liveWorkers(service)).toHaveLength(3);

    const oldest = liveWorkers(service)[0];
    service.signal('SIGTTOU');
    await service.waitForEvent('worker-exited');
    expect(service.events('worker-exited')[0]).toMatchObject({ workerPid: oldest, code: 0, expected: true });
    expect(liveWorkers(service)).toHaveLength(2);
    expect(service.events('scaled').map((event) => event['workers'])).toEqual([3, 2]);
  });

  it('recycles workers after --max-requests without failing a request', async () => {
    const { service, baseUrl } = await startSupervisor({ MAX_REQUESTS: '150', MAX_REQUESTS_JITTER: '50' });
    const load = startLoad(baseUrl, { concurrency: 10 });
    await service.waitForEvent('worker-recycling', 2);
    await service.waitForEvent('worker-exited', 2);
    const result = await load.stop();

    expect(service.events('worker-exited').every((event) => event['expected'] === true && event['code'] === 0)).toBe(true);
    expect(result.errors).toEqual({});
    expect(result.notAccepted).toBe(0);
    expect(Object.keys(result.statuses)).toEqual(['200']);
  });

  it('exits non-zero naming the workers’ error when they keep dying at boot', async () => {
    const blocker: Server = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    try {
      const service = new ServiceProcess({ DATABASE_URL: database.url, HOST: '127.0.0.1', PORT: String(port), WEB_CONCURRENCY: '2' });
      running.push(service);
      const exit = await service.exited;
      expect(exit.code).toBe(1);
      const [crashLoop] = service.events('crash-loop');
      expect(crashLoop).toMatchObject({ failures: 5 });
      expect(String(crashLoop!['error'])).toContain('EADDRINUSE');
    } finally {
      blocker.close();
    }
  });

  it('refuses to start when workers × pool size exceed the database’s connections, saying what to change', async () => {
    const service = new ServiceProcess({ DATABASE_URL: database.url, WEB_CONCURRENCY: '20', DB_POOL_MAX: '10', PORT: String(await freePort()) });
    running.push(service);
    expect((await service.exited).code).toBe(1);
    expect(service.output.join('\n')).toMatch(
      /Connection budget exceeded: 20 workers × DB_POOL_MAX 10 \+ 5 headroom = 205 connections, but the database allows \d+ .*Lower --workers \(WEB_CONCURRENCY\) or DB_POOL_MAX/,
    );
  });

  it('explains its options and signals with --help', async () => {
    const service = new ServiceProcess({}, { args: ['--help'] });
    running.push(service);
    expect((await service.exited).code).toBe(0);
    const help = service.output.join('\n');
    for (const option of ['--workers', '--bind', '--timeout', '--graceful-timeout', '--max-requests', '--max-requests-jitter', 'WEB_CONCURRENCY', 'HUP']) {
      expect(help).toContain(option);
    }
  });
});
