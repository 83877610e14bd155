import { request } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { liveWorkers, ServedBy } from '../faults/served-by.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startLoad, waitUntil } from '../helpers/load.js';
import { freePort } from '../helpers/ports.js';
import { killWorkerWhileSupervisorPaused, ServiceProcess } from '../helpers/service-process.js';

/**
 * The limit of one instance holds per client whichever worker serves it: the supervisor keeps
 * the count for all its workers. Every request here opens its own connection, and the primary
 * hands connections to the workers in turn, so both workers answer.
 */

let database: TestDatabase;
const running: ServiceProcess[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((service) => service.stop()));
});

afterAll(async () => {
  await database?.drop();
});

async function startSupervisor(env: Record<string, string>): Promise<{ service: ServiceProcess; baseUrl: string }> {
  const port = await freePort();
  const service = new ServiceProcess({
    DATABASE_URL: database.url,
    HOST: '127.0.0.1',
    PORT: String(port),
    WEB_CONCURRENCY: '2',
    DB_POOL_MAX: '2',
    MAX_EVENT_LOOP_DELAY_MS: '0',
    ...env,
  });
  running.push(service);
  await service.waitForEvent('worker-listening', 2);
  return { service, baseUrl: `http://127.0.0.1:${port}` };
}

/** A GET on a connection of its own (closed after the answer), with our request id. */
function getOnNewConnection(url: string, requestId: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request(url, { agent: false, headers: { 'x-request-id': requestId, connection: 'close' } }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode!));
    })
      .on('error', reject)
      .end();
  });
}

describe('RATE_LIMIT_PER_MINUTE under the supervisor', () => {
  it('holds per client across the workers of an instance: the supervisor keeps one count', async () => {
    const { service, baseUrl } = await startSupervisor({ RATE_LIMIT_PER_MINUTE: '10' });
    const servedBy = new ServedBy(service);
    const answers: { requestId: string; status: number }[] = [];
    for (let index = 0; index < 30; index++) {
      const requestId = `rate-limit-${index}`;
      answers.push({ requestId, status: await getOnNewConnection(`${baseUrl}/items?limit=1`, requestId) });
    }
    // Workers write their access log in batches: wait until every answer is attributed.
    await waitUntil(() => answers.every(({ requestId }) => servedBy.worker(requestId) !== undefined), 'every answer in the access log', 10_000);

    const workersOf = (status: number) => new Set(answers.filter((answer) => answer.status === status).map(({ requestId }) => servedBy.worker(requestId)));
    expect(new Set(answers.map(({ requestId }) => servedBy.worker(requestId)))).toEqual(new Set(liveWorkers(service)));
    expect(workersOf(200).size).toBe(2);
    expect(workersOf(429).size).toBe(2);
    expect(answers.filter((answer) => answer.status === 200)).toHaveLength(10);
    expect(answers.filter((answer) => answer.status === 429)).toHaveLength(20);
    // The first ten are the allowed ones, whichever worker they reached.
    expect(answers.slice(0, 10).every((answer) => answer.status === 200)).toBe(true);
  });

  it('survives workers killed while it still answers their last hits: replaces them and keeps serving', async () => {
    const { service, baseUrl } = await startSupervisor({ RATE_LIMIT_PER_MINUTE: '1000000' });
    const load = startLoad(baseUrl, { concurrency: 20, requestTimeoutMs: 5_000 });
    await waitUntil(() => load.answered() > 200, 'load to flow');

    for (let kill = 1; kill <= 3; kill++) {
      const [victim] = liveWorkers(service);
      // The victim's last hits wait in its IPC channel, and the supervisor answers them after the
      // victim is gone.
      await killWorkerWhileSupervisorPaused(service, victim!);
      await service.waitForEvent('worker-replaced', kill);
      await service.waitForEvent('worker-listening', 2 + kill);
    }
    const answeredAfterKills = load.answered();
    await waitUntil(() => load.answered() > answeredAfterKills + 200, 'load after the kills');
    const result = await load.stop();

    expect(service.events('worker-exited').map((exit) => exit['signal'])).toEqual(['SIGKILL', 'SIGKILL', 'SIGKILL']);
    expect(liveWorkers(service)).toHaveLength(2);
    // Only the requests in flight on the killed workers' connections can fail: reset.
    expect(result.statuses[200]).toBeGreaterThan(400);
    expect(Object.keys(result.statuses)).toEqual(['200']);
    for (const failure of Object.keys(result.errors)) expect(failure).toMatch(/^ECONNRESET /);
    service.signal('SIGTERM');
    expect(await service.exited).toEqual({ code: 0, signal: null });
  }, 90_000);
});
