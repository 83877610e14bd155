// @fastify/rate-limit builds its RedisStore itself when given `redis`, and exports no type for it;
// the service wraps it (to log and fail open), so it constructs one from the package's own file.
declare module '@fastify/rate-limit/store/RedisStore.js' {
  import type { FastifyRateLimitStore } from '@fastify/rate-limit';
  import type { Redis } from 'ioredis';

  const RedisStore: new (continueExceeding: boolean, exponentialBackoff: boolean, redis: Redis, keyPrefix?: string) => FastifyRateLimitStore;
  export default RedisStore;
}
