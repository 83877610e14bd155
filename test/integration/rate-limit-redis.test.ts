import { request } from 'node:http';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { waitUntil } from '../helpers/load.js';
import { freePort } from '../helpers/ports.js';
import { RedisServer } from '../helpers/redis.js';
import { systemTool } from '../helpers/system-tools.js';
import { ServiceProcess } from '../helpers/service-process.js';

/**
 * With REDIS_URL, every instance counts in one Redis (a real redis-server, started here): a
 * client's limit holds whichever instance it reaches. When Redis is unreachable or hangs, the
 * service fails open: it serves without a limit and says so in its log, once per interval.
 */

const redisServer = systemTool('redis-server');
let database: TestDatabase;
let redis: RedisServer;
const apps: FastifyInstance[] = [];
const running: ServiceProcess[] = [];

beforeAll(async () => {
  [database, redis] = await Promise.all([createTestDatabase(), RedisServer.start()]);
});

afterEach(async () => {
  await Promise.all([...apps.splice(0).map((app) => app.close()), ...running.splice(0).map((service) => service.stop())]);
  // Each test starts on an empty Redis that answers, whatever the previous one left.
  if (redis) {
    redis.resume();
    await redis.stop();
    await redis.restart();
  }
});

afterAll(async () => {
  await redis?.remove();
  await database?.drop();
});

interface LoggedApp {
  app: FastifyInstance;
  /** The app's log, one parsed JSON line each. */
  lines: Record<string, unknown>[];
}

async function appOn(redisUrl: string, env: Record<string, string> = {}): Promise<LoggedApp> {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  const config = {
    ...loadConfig({ DATABASE_URL: database.url, REDIS_URL: redisUrl, MAX_EVENT_LOOP_DELAY_MS: '0', ...env }),
    databaseUrl: database.url,
  };
  const app = await buildApp(config, { logger: createLogger({ level: 'info', destination }) });
  apps.push(app);
  return { app, lines };
}

const get = async (app: FastifyInstance, remoteAddress = '192.0.2.1') =>
  (await app.inject({ method: 'GET', url: '/items?limit=1', remoteAddress })).statusCode;

const warningsAbout = (lines: Record<string, unknown>[], text: string) => lines.filter((line) => String(line['msg']).includes(text));

describe.skipIf(redisServer.missing)('REDIS_URL', () => {
  it('gives two instances on one Redis one limit per client', async () => {
    const [first, second] = [await appOn(redis.url, { RATE_LIMIT_PER_MINUTE: '4' }), await appOn(redis.url, { RATE_LIMIT_PER_MINUTE: '4' })];
    const statuses = [];
    for (const { app } of [first, second, first, second, first, second]) statuses.push(await get(app));
    expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
    const limited = await second.app.inject({ method: 'GET', url: '/items?limit=1', remoteAddress: '192.0.2.1' });
    expect(limited.headers).toMatchObject({ 'x-ratelimit-limit': '4', 'x-ratelimit-remaining': '0', 'retry-after': expect.stringMatching(/^\d+$/) });
    // Another client has its own count.
    expect(await get(second.app, '192.0.2.2')).toBe(200);
  });

  it('gives two service processes (their workers) on one Redis one limit per client', async () => {
    const baseUrls: string[] = [];
    for (let index = 0; index < 2; index++) {
      const port = await freePort();
      const service = new ServiceProcess({
        DATABASE_URL: database.url,
        REDIS_URL: redis.url,
        RATE_LIMIT_PER_MINUTE: '4',
        HOST: '127.0.0.1',
        PORT: String(port),
        WEB_CONCURRENCY: '1',
        DB_POOL_MAX: '2',
        MAX_EVENT_LOOP_DELAY_MS: '0',
      });
      running.push(service);
      baseUrls.push(`http://127.0.0.1:${port}`);
    }
    await Promise.all(running.map((service) => service.waitForEvent('worker-listening')));
    const statuses = [];
    for (let index = 0; index < 6; index++) statuses.push(await getStatus(`${baseUrls[index % 2]}/items?limit=1`));
    expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
  });

  it('fails open while Redis is unreachable, with one warning per interval, and limits again once it is back', async () => {
    await redis.stop();
    // The app starts although Redis does not answer.
    const { app, lines } = await appOn(redis.url, { RATE_LIMIT_PER_MINUTE: '2' });
    const statuses = [];
    for (let index = 0; index < 6; index++) statuses.push(await get(app));
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);
    expect(warningsAbout(lines, 'rate limit not enforced')).toHaveLength(1);
    expect(warningsAbout(lines, 'rate limit not enforced')[0]).toMatchObject({ level: 40, reason: expect.stringContaining('ECONNREFUSED') });

    await redis.restart();
    await waitUntil(async () => (await get(app, '192.0.2.3')) === 429, 'the limit to hold again', 15_000);
    expect(warningsAbout(lines, 'rate limit enforced again')).toHaveLength(1);
  });

  it('never logs the password in REDIS_URL', async () => {
    const guarded = await RedisServer.start(['--requirepass', 'the-right-secret']);
    try {
      const wrong = await appOn(`redis://:a-wrong-secret@127.0.0.1:${guarded.port}`, { RATE_LIMIT_PER_MINUTE: '1' });
      expect([await get(wrong.app), await get(wrong.app)]).toEqual([200, 200]);
      expect(warningsAbout(wrong.lines, 'rate limit not enforced')[0]).toMatchObject({ reason: expect.stringContaining('WRONGPASS') });
      const right = await appOn(`redis://:the-right-secret@127.0.0.1:${guarded.port}`, { RATE_LIMIT_PER_MINUTE: '1' });
      expect([await get(right.app), await get(right.app)]).toEqual([200, 429]);
      const logged = JSON.stringify([...wrong.lines, ...right.lines]);
      expect(logged).not.toContain('a-wrong-secret');
      expect(logged).not.toContain('the-right-secret');
    } finally {
      await Promise.all(apps.splice(0).map((app) => app.close()));
      await guarded.remove();
    }
  });

  it('fails open when Redis hangs, after the command timeout, not the request timeout', async () => {
    const { app } = await appOn(redis.url, { RATE_LIMIT_PER_MINUTE: '1' });
    expect([await get(app), await get(app)]).toEqual([200, 429]);
    redis.pause();
    const started = Date.now();
    const whileHung = await get(app);
    const waited = Date.now() - started;
    redis.resume();
    expect(whileHung).toBe(200);
    // The command timeout is 500 ms; the request timeout (30 s) is what a missing one would cost.
    expect(waited).toBeGreaterThanOrEqual(400);
    expect(waited).toBeLessThan(10_000);
  });
});

function getStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request(url, { agent: false }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode!));
    })
      .on('error', reject)
      .end();
  });
}
