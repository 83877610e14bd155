import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp } from '../helpers/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let database: TestDatabase;
let app: FastifyInstance;

beforeAll(async () => {
  database = await createTestDatabase();
  app = await buildTestApp(database.url);
});

afterAll(async () => {
  await app?.close();
  await database?.drop();
});

/** The value of the sample of `name` whose labels include each of `labels` (`route="/items"`, …). */
function sample(text: string, name: string, labels: string): number {
  const wanted = labels.split(',');
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name}{`) && wanted.every((label) => candidate.includes(label)));
  return line === undefined ? Number.NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('GET /metrics', () => {
  it('serves Prometheus text with requests, latency, batches, pool use, event-loop lag and memory', async () => {
    const before = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    const startCount = sample(before, 'http_requests_total', 'route="/items",status="201"') || 0;
    await Promise.all(Array.from({ length: 30 }, (_, index) => app.inject({ method: 'POST', url: '/items', payload: { name: `m${index}` } })));
    await app.inject({ method: 'GET', url: '/items/999999' });
    await app.inject({ method: 'GET', url: '/no/such/route' });

    const response = await app.inject({ method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = response.body;
    expect(sample(text, 'http_requests_total', 'method="POST",route="/items",status="201"') - startCount).toBe(30);
    expect(sample(text, 'http_requests_total', 'method="GET",route="/items/:id",status="404"')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'http_requests_total', 'route="unmatched",status="404"')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'http_request_duration_seconds_bucket', 'route="/items",status="201",le="+Inf"')).toBeGreaterThanOrEqual(30);
    // 30 concurrent creations go in fewer round trips than requests.
    const batches = sample(text, 'db_batch_size_count', 'kind="create"');
    const batched = sample(text, 'db_batch_size_sum', 'kind="create"');
    expect(batched).toBeGreaterThanOrEqual(30);
    expect(batches).toBeLessThan(batched);
    for (const name of ['db_pool_in_use ', 'db_pool_waiting ', 'nodejs_eventloop_lag_seconds ', 'process_resident_memory_bytes ']) {
      expect(text).toContain(`\n${name}`);
    }
  });
});
