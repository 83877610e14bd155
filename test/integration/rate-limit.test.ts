import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp } from '../helpers/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

/**
 * Rate limiting in one process (the in-memory store): the 429 a client sees, the routes never
 * limited, and which address a request is counted against (X-Forwarded-For believed only from
 * TRUST_PROXY). Counting across workers and instances: rate-limit-cluster and rate-limit-redis.
 */

let database: TestDatabase;
const apps: FastifyInstance[] = [];
const agents: Agent[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
});

afterEach(async () => {
  for (const agent of agents.splice(0)) agent.destroy();
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

afterAll(async () => {
  await database?.drop();
});

async function appWith(env: Record<string, string>): Promise<FastifyInstance> {
  const app = await buildTestApp(database.url, env);
  apps.push(app);
  return app;
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** The request went out on a connection that an earlier request had opened. */
  reusedSocket: boolean;
}

/** A GET over real HTTP through `agent` (one keep-alive socket: every request from one peer). */
function get(agent: Agent, url: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const outgoing = request(url, { agent, headers }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body, reusedSocket: outgoing.reusedSocket }));
    });
    outgoing.on('error', reject).end();
  });
}

async function listening(env: Record<string, string>): Promise<{ baseUrl: string; agent: Agent }> {
  const app = await appWith(env);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  agents.push(agent);
  return { baseUrl: `http://127.0.0.1:${port}`, agent };
}

describe('over the limit', () => {
  it('answers 429 with the problem body, Retry-After and the x-ratelimit-* headers', async () => {
    const app = await appWith({ RATE_LIMIT_PER_MINUTE: '3' });
    for (const remaining of [2, 1, 0]) {
      const allowed = await app.inject({ method: 'GET', url: '/items?limit=1' });
      expect(allowed.statusCode).toBe(200);
      expect(allowed.headers['x-ratelimit-limit']).toBe('3');
      expect(allowed.headers['x-ratelimit-remaining']).toBe(String(remaining));
      expect(Number(allowed.headers['x-ratelimit-reset'])).toBeGreaterThan(0);
      expect(Number(allowed.headers['x-ratelimit-reset'])).toBeLessThanOrEqual(60);
    }

    const limited = await app.inject({ method: 'GET', url: '/items?limit=1' });
    const retryAfter = Number(limited.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(limited.statusCode).toBe(429);
    expect(limited.headers).toMatchObject({
      'content-type': 'application/problem+json; charset=utf-8',
      'retry-after': String(retryAfter),
      'x-ratelimit-limit': '3',
      'x-ratelimit-remaining': '0',
      'x-ratelimit-reset': String(retryAfter),
    });
    expect(limited.json()).toEqual({
      type: 'about:blank',
      title: 'Too Many Requests',
      status: 429,
      detail: `Rate limit exceeded: 3 requests per minute; retry in ${retryAfter} s`,
      code: 'RATE_LIMITED',
    });
  });

  it('never limits nor counts the probes, the metrics scrape and unmatched paths', async () => {
    const app = await appWith({ RATE_LIMIT_PER_MINUTE: '2' });
    for (const url of ['/healthz', '/readyz', '/metrics', '/healthz?verbose=1']) {
      for (let index = 0; index < 5; index++) {
        const response = await app.inject({ method: 'GET', url });
        expect(response.statusCode, `${url} #${index + 1}`).toBe(200);
        expect(response.headers['x-ratelimit-limit'], url).toBeUndefined();
      }
    }
    // Paths no route matches are answered 404, uncounted too.
    for (let index = 0; index < 3; index++) {
      const response = await app.inject({ method: 'GET', url: '/nothing-here' });
      expect(response.statusCode).toBe(404);
      expect(response.headers['x-ratelimit-limit']).toBeUndefined();
    }
    // The 23 requests above took nothing from the client's allowance.
    const statuses = [];
    for (let index = 0; index < 3; index++) statuses.push((await app.inject({ method: 'GET', url: '/items?limit=1' })).statusCode);
    expect(statuses).toEqual([200, 200, 429]);
  });
});

describe('guessing API keys', () => {
  it('is counted before the key is checked: past the limit, a wrong key gets 429, not another 401', async () => {
    const app = await appWith({ RATE_LIMIT_PER_MINUTE: '3', API_KEYS: 'the-right-key' });
    const guess = (key: string) => app.inject({ method: 'POST', url: '/items', payload: { name: 'x' }, headers: { authorization: `Bearer ${key}` } });

    const answers = [];
    for (const key of ['wrong-1', 'wrong-2', 'wrong-3', 'wrong-4']) answers.push(await guess(key));
    expect(answers.map((answer) => answer.statusCode)).toEqual([401, 401, 401, 429]);
    expect(answers.map((answer) => answer.headers['x-ratelimit-remaining'])).toEqual(['2', '1', '0', '0']);

    const limited = answers[3]!;
    const retryAfter = Number(limited.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(limited.headers['www-authenticate']).toBeUndefined();
    expect(limited.json()).toEqual({
      type: 'about:blank',
      title: 'Too Many Requests',
      status: 429,
      detail: `Rate limit exceeded: 3 requests per minute; retry in ${retryAfter} s`,
      code: 'RATE_LIMITED',
    });
    // The right key, once the guesses used the allowance up, waits like anyone else.
    expect((await guess('the-right-key')).statusCode).toBe(429);
  });

  it('learns nothing from requests that match no route, which are not counted: the key is not checked there', async () => {
    const app = await appWith({ RATE_LIMIT_PER_MINUTE: '3', API_KEYS: 'the-right-key' });
    const send = (method: 'PUT' | 'POST', url: string, key: string) =>
      app.inject({ method, url, payload: { name: 'x' }, headers: { authorization: `Bearer ${key}` } });
    for (let round = 0; round < 5; round++) {
      for (const key of [`wrong-${round}`, 'the-right-key']) {
        const noMethod = await send('PUT', '/items/1', key);
        expect([noMethod.statusCode, noMethod.json<{ code: string }>().code]).toEqual([405, 'METHOD_NOT_ALLOWED']);
        const noPath = await send('POST', '/nothing-here', key);
        expect([noPath.statusCode, noPath.json<{ code: string }>().code]).toEqual([404, 'NOT_FOUND']);
      }
    }
  });
});

describe('the client a request is counted against', () => {
  const forgedAddresses = ['198.51.100.1', '198.51.100.2', '203.0.113.9, 198.51.100.3', '2001:db8::4', 'unknown', '10.0.0.5'];

  it('is the socket address by default: X-Forwarded-For, forged and rotated on one connection, escapes nothing', async () => {
    const { baseUrl, agent } = await listening({ RATE_LIMIT_PER_MINUTE: '3' });
    const answers = [];
    for (const forwarded of forgedAddresses) answers.push(await get(agent, `${baseUrl}/items?limit=1`, { 'x-forwarded-for': forwarded }));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 429, 429, 429]);
    expect(answers.slice(1).every((answer) => answer.reusedSocket)).toBe(true);
  });

  it('is the socket address when the peer is not among TRUST_PROXY', async () => {
    const { baseUrl, agent } = await listening({ RATE_LIMIT_PER_MINUTE: '3', TRUST_PROXY: '10.0.0.0/8, 192.168.1.1' });
    const statuses = [];
    for (const forwarded of forgedAddresses) statuses.push((await get(agent, `${baseUrl}/items?limit=1`, { 'x-forwarded-for': forwarded })).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429, 429]);
  });

  for (const trustProxy of ['127.0.0.1', 'loopback', '10.0.0.0/8, 127.0.0.0/8']) {
    it(`is the forwarded client behind a trusted proxy (TRUST_PROXY=${trustProxy}): two clients, two buckets`, async () => {
      const { baseUrl, agent } = await listening({ RATE_LIMIT_PER_MINUTE: '2', TRUST_PROXY: trustProxy });
      const send = async (forwarded: string) => (await get(agent, `${baseUrl}/items?limit=1`, { 'x-forwarded-for': forwarded })).status;
      const first = [await send('203.0.113.1'), await send('203.0.113.1'), await send('203.0.113.1')];
      // The proxy appends the address it saw: a client's own forged entries stand before it.
      const second = [await send('203.0.113.2'), await send('198.51.100.7, 203.0.113.2'), await send('203.0.113.2')];
      expect({ first, second }).toEqual({ first: [200, 200, 429], second: [200, 200, 429] });
    });
  }

  it('is one IPv6 /64 (one subscriber), and an IPv4-mapped address is its IPv4 address', async () => {
    const app = await appWith({ RATE_LIMIT_PER_MINUTE: '2' });
    const statusFrom = async (remoteAddress: string) => (await app.inject({ method: 'GET', url: '/items?limit=1', remoteAddress })).statusCode;
    expect([await statusFrom('2001:db8:1:2::1'), await statusFrom('2001:db8:1:2:ffff:1:2:3'), await statusFrom('2001:db8:1:2::99')]).toEqual([200, 200, 429]);
    expect(await statusFrom('2001:db8:1:3::1')).toBe(200);
    expect([await statusFrom('192.0.2.10'), await statusFrom('::ffff:192.0.2.10'), await statusFrom('192.0.2.10')]).toEqual([200, 200, 429]);
  });
});
