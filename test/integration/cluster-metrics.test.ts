import { request } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { freePort } from '../helpers/ports.js';
import { decreases, parsePrometheus, total, type Scrape } from '../helpers/prometheus.js';
import { ServiceProcess } from '../helpers/service-process.js';

/**
 * GET /metrics from the supervisor with several real workers: the totals add up every worker,
 * including the ones that are gone, so that no counter goes down across a recycle, a reload or
 * a kill -9, and a scrape during a reload answers at once.
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

async function startSupervisor(env: Record<string, string> = {}): Promise<{ service: ServiceProcess; baseUrl: string }> {
  const port = await freePort();
  const service = new ServiceProcess({ DATABASE_URL: database.url, HOST: '127.0.0.1', PORT: String(port), WEB_CONCURRENCY: '2', DB_POOL_MAX: '5', ...env });
  running.push(service);
  await service.waitForEvent('worker-listening', 2);
  return { service, baseUrl: `http://127.0.0.1:${port}` };
}

/** One request on a connection of its own: the supervisor deals connections out to every worker. */
function get(baseUrl: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(`${baseUrl}${path}`, { agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

async function scrape(baseUrl: string): Promise<Scrape> {
  const { status, body } = await get(baseUrl, '/metrics');
  expect(status).toBe(200);
  return parsePrometheus(body);
}

async function healthChecks(baseUrl: string, count: number): Promise<void> {
  for (let index = 0; index < count; index++) expect((await get(baseUrl, '/healthz')).status).toBe(200);
}

const healthzCount = (metrics: Scrape) => total(metrics, 'http_requests_total', 'route="/healthz"');

describe('GET /metrics with several workers', () => {
  it('adds up every worker, and no counter goes down across reloads (nothing lost) or a kill -9', async () => {
    const { service, baseUrl } = await startSupervisor();
    await healthChecks(baseUrl, 40);
    // Whichever worker answers the scrape, the total is both workers' (each served 20).
    const first = await scrape(baseUrl);
    expect(healthzCount(first)).toBe(40);
    expect(healthzCount(await scrape(baseUrl))).toBe(40);
    expect(total(first, 'http_request_duration_seconds_count', 'route="/healthz"')).toBe(40);

    // Served, never scraped, then both workers exit gracefully: their final counts are kept.
    await healthChecks(baseUrl, 10);
    service.signal('SIGHUP');
    await service.waitForEvent('reload-ended');
    const afterReload = await scrape(baseUrl);
    expect(healthzCount(afterReload)).toBe(50);
    expect(decreases(first, afterReload)).toEqual([]);

    // Scrapes during a reload answer at once, from the workers that listen (never waiting for a
    // booting one), and never go down.
    service.signal('SIGHUP');
    await service.waitForEvent('reload-began', 2);
    const duringReload: { scrape: Scrape; ms: number }[] = [];
    while (service.events('reload-ended').length < 2) {
      const started = performance.now();
      duringReload.push({ scrape: await scrape(baseUrl), ms: performance.now() - started });
    }
    const slowest = Math.max(...duringReload.map(({ ms }) => ms));
    console.info(`${duringReload.length} scrapes during a reload, the slowest in ${Math.round(slowest)} ms`);
    expect(slowest).toBeLessThan(1_500);
    let previous = afterReload;
    for (const { scrape: next } of [...duringReload, { scrape: await scrape(baseUrl) }]) {
      expect(decreases(previous, next)).toEqual([]);
      expect(healthzCount(next)).toBe(50);
      previous = next;
    }

    await healthChecks(baseUrl, 40);
    const beforeKill = await scrape(baseUrl);
    expect(healthzCount(beforeKill)).toBe(90);
    const victim = service.events('worker-listening').at(-1)!['workerPid'] as number;
    process.kill(victim, 'SIGKILL');
    await service.waitForEvent('worker-replaced');
    await service.waitForEvent('worker-listening', 7);
    // A killed worker sends nothing more: what it had counted at the last scrape stays.
    const afterKill = await scrape(baseUrl);
    expect(decreases(beforeKill, afterKill)).toEqual([]);
    expect(healthzCount(afterKill)).toBe(90);
  }, 120_000);

  it('keeps the counts of workers recycled after --max-requests', async () => {
    const { service, baseUrl } = await startSupervisor({ MAX_REQUESTS: '60' });
    const scrapes: Scrape[] = [];
    for (let round = 0; round < 10; round++) {
      await healthChecks(baseUrl, 20);
      scrapes.push(await scrape(baseUrl));
    }
    // 200 health checks and 10 scrapes: each worker recycled at least once.
    await service.waitForEvent('worker-exited', 2);
    await service.waitForEvent('worker-listening', 4);
    scrapes.push(await scrape(baseUrl));

    for (let index = 1; index < scrapes.length; index++) expect(decreases(scrapes[index - 1]!, scrapes[index]!)).toEqual([]);
    expect(scrapes.map(healthzCount)).toEqual([20, 40, 60, 80, 100, 120, 140, 160, 180, 200, 200]);
    expect(service.events('worker-exited').every((event) => event['expected'] === true && event['code'] === 0)).toBe(true);
  }, 90_000);
});
