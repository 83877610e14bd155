import type { FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import RedisStore from '@fastify/rate-limit/store/RedisStore.js';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { reportingStore, type CounterOutage } from './rate-limit-fail-open.js';

/** A first connection (and each reconnection) gives up after this long. */
export const REDIS_CONNECT_TIMEOUT_MS = 1_000;
/** A count Redis has not answered after this long lets its request through. */
export const REDIS_COMMAND_TIMEOUT_MS = 500;
const KEY_PREFIX = 'fastify-sqlasync:rate-limit:';

export interface RedisCounter {
  store: FastifyRateLimitStoreCtor;
  close(): Promise<void>;
}

/**
 * Counts in Redis with @fastify/rate-limit's own store (one atomic script per request), on a
 * client that never lets a request wait for Redis: no queue while disconnected, no retry, a
 * short timeout. It keeps reconnecting in the background (ioredis: every 2 s at most).
 */
export async function connectRedisCounter(url: string, outage: CounterOutage): Promise<RedisCounter> {
  const redis = new Redis(url, {
    connectTimeout: REDIS_CONNECT_TIMEOUT_MS,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
  });
  redis.on('error', (error: Error) => outage.failed(error, false));
  redis.on('ready', () => outage.recovered());
  // Serve with or without Redis, but give it its chance first, so the first requests are counted.
  await once(redis, 'ready', { signal: AbortSignal.timeout(2 * REDIS_CONNECT_TIMEOUT_MS) }).catch(() => {});
  return {
    store: reportingStore((options) => new RedisStore(options.continueExceeding ?? false, options.exponentialBackoff ?? false, redis, KEY_PREFIX), outage),
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
