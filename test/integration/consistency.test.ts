import { Agent, request } from 'node:http';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startLoad } from '../helpers/load.js';
import { freePort } from '../helpers/ports.js';
import { ServiceProcess } from '../helpers/service-process.js';

/**
 * Coalesced reads must never be stale: a GET that arrives after a 201 was sent, on any worker,
 * sees the item, even while identical GETs are in flight (and it could have joined them).
 */

let database: TestDatabase;
let service: ServiceProcess;
let baseUrl: string;
/** The page under test: 500 heavy rows (so each read of it takes a while) and then the new items. */
let page: string;

beforeAll(async () => {
  database = await createTestDatabase();
  const sql = postgres(database.url, { max: 1, onnotice: () => {} });
  await sql`INSERT INTO items (name, description) SELECT 'seed ' || n, repeat('x', 400) FROM generate_series(1, 1000) AS n`;
  await sql.end();
  page = '/items?after=500&limit=1000';
  const port = await freePort();
  service = new ServiceProcess({ DATABASE_URL: database.url, HOST: '127.0.0.1', PORT: String(port), WEB_CONCURRENCY: '2' });
  await service.waitForEvent('worker-listening', 2);
  baseUrl = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  sameConnection.destroy();
  await service?.stop();
  await database?.drop();
});

/**
 * One keep-alive connection, so that a read follows its write on the same worker within a fraction
 * of a millisecond; or, with `agent: false`, a connection of its own, landing on another worker.
 */
const sameConnection = new Agent({ keepAlive: true, maxSockets: 1 });

interface Answer {
  status: number;
  json: unknown;
  headers: Record<string, string | string[] | undefined>;
}

function send(method: string, path: string, body?: unknown, agent: Agent | false = sameConnection, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const outgoing = request(`${baseUrl}${path}`, {
      method,
      agent,
      headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) },
    });
    outgoing.on('response', (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, json: JSON.parse(text) as unknown, headers: response.headers }));
    });
    outgoing.on('error', reject);
    outgoing.end(body ? JSON.stringify(body) : undefined);
  });
}

describe('reads after writes', () => {
  it('see every item answered 201, on any worker, while the same page is read under load', async () => {
    // Keeps a read of exactly this page in flight on both workers all the time.
    const load = startLoad(baseUrl, { concurrency: 20, path: page });
    const missing: number[] = [];
    try {
      for (let attempt = 0; attempt < 100; attempt++) {
        const created = await send('POST', '/items', { name: `fresh ${attempt}` });
        expect(created.status).toBe(201);
        const id = (created.json as { id: number }).id;
        for (const agent of [sameConnection, false] as const) {
          const listed = await send('GET', page, undefined, agent);
          if (!(listed.json as { id: number }[]).some((item) => item.id === id)) missing.push(id);
        }
        expect((await send('GET', `/items/${id}`, undefined, false)).status).toBe(200);
      }
    } finally {
      const result = await load.stop();
      expect(result.errors).toEqual({});
      expect(Object.keys(result.statuses)).toEqual(['200']);
      expect(result.total).toBeGreaterThan(500);
    }
    expect(missing).toEqual([]);
  });
});

describe('idempotent writes', () => {
  it('create once when retries with one key arrive at the same moment on different workers', async () => {
    for (let round = 0; round < 20; round++) {
      const key = `multi-worker-${round}`;
      const answers = await Promise.all(
        Array.from({ length: 4 }, () => send('POST', '/items', { name: key }, false, { 'idempotency-key': key })),
      );
      expect(answers.map((answer) => answer.status)).toEqual([201, 201, 201, 201]);
      expect(new Set(answers.map((answer) => (answer.json as { id: number }).id)).size).toBe(1);
      expect(answers.filter((answer) => answer.headers['idempotent-replayed'] === 'true')).toHaveLength(3);
    }
    const sql = postgres(database.url, { max: 1, onnotice: () => {} });
    const rows = await sql`SELECT name, count(*)::int AS count FROM items WHERE name LIKE 'multi-worker-%' GROUP BY name`;
    await sql.end();
    expect(rows).toHaveLength(20);
    expect(rows.every((row) => row['count'] === 1)).toBe(true);
  });
});

describe('metrics', () => {
  it('add up every worker, whichever worker is scraped', async () => {
    const count = (text: string) =>
      text
        .split('\n')
        .filter((line) => line.startsWith('http_requests_total{') && line.includes('route="/healthz"'))
        .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
    const scrape = async () => {
      const text = await new Promise<string>((resolve, reject) => {
        request(`${baseUrl}/metrics`, { agent: false }, (response) => {
          let body = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (body += chunk));
          response.on('end', () => resolve(body));
        })
          .on('error', reject)
          .end();
      });
      return count(text);
    };
    const before = await scrape();
    // Separate connections: the supervisor deals them out to both workers.
    for (let index = 0; index < 40; index++) await send('GET', '/healthz', undefined, false);
    const scrapes = [await scrape(), await scrape(), await scrape(), await scrape()];
    expect(scrapes.every((total) => total === before + 40)).toBe(true);
  });
});
