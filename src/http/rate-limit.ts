import { isIPv4 } from 'node:net';
import fastifyRateLimit, { type FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import ipaddr from 'ipaddr.js';
import { ServiceError } from '../errors.js';
import { CounterOutage, reportingStore } from './rate-limit-fail-open.js';
import { connectRedisCounter } from './rate-limit-redis.js';

export interface RateLimitOptions {
  /** Requests per minute per client; 0: no limit. */
  perMinute: number;
  /** Count in this Redis, shared by every instance. */
  redisUrl: string | undefined;
  /** Without Redis: the store the workers of this instance share (the supervisor's); none: this process's memory. */
  workersStore: FastifyRateLimitStoreCtor | undefined;
  /** Route patterns never limited nor counted. */
  exempt: string[];
}

const WINDOW_MS = 60_000;

/**
 * RATE_LIMIT_PER_MINUTE per client, in fixed one-minute windows: 429 beyond, with Retry-After
 * and the x-ratelimit-* headers on every counted response. The count lives in Redis when there
 * is one, else with the supervisor (all workers of the instance), else in this process.
 *
 * The count is an onRequest hook of the instance, so it runs in registration order: register this
 * before any hook that refuses requests it should count (the API keys', whose 401s would else let
 * keys be guessed at full speed). The plugin's own per-route hooks would run after all of those.
 */
export const rateLimit = fastifyPlugin(async function rateLimit(app: FastifyInstance, options: RateLimitOptions) {
  if (options.perMinute <= 0) return;
  const store = await sharedStore(app, options);
  const exempt = new Set(options.exempt);
  await app.register(fastifyRateLimit, {
    global: false,
    max: options.perMinute,
    timeWindow: WINDOW_MS,
    ...(store && { store }),
    // A count that cannot be had lets the request through (see rate-limit-fail-open.ts).
    skipOnError: true,
    keyGenerator: clientKey,
    // Paths that match no route (404, 405) have no pattern: not counted.
    allowList: (request) => request.routeOptions.url === undefined || exempt.has(request.routeOptions.url),
    errorResponseBuilder: (_request, context) =>
      new ServiceError(429, 'RATE_LIMITED', `Rate limit exceeded: ${context.max} requests per minute; retry in ${Math.ceil(context.ttl / 1000)} s`),
  });
  app.addHook('onRequest', app.rateLimit());
});

async function sharedStore(app: FastifyInstance, options: RateLimitOptions): Promise<FastifyRateLimitStoreCtor | undefined> {
  if (options.redisUrl) {
    const redis = await connectRedisCounter(options.redisUrl, new CounterOutage(app.log, 'Redis'));
    app.addHook('onClose', () => redis.close());
    return redis.store;
  }
  const WorkersStore = options.workersStore;
  if (WorkersStore) return reportingStore((settings) => new WorkersStore(settings), new CounterOutage(app.log, 'the supervisor'));
  return undefined;
}

/**
 * The client a request counts against: the address Fastify derives (the socket's, or the one
 * X-Forwarded-For gives when the peer is a trusted proxy: TRUST_PROXY). An IPv6 subscriber gets
 * a whole /64 and could otherwise take a fresh address per request, so the /64 is the client;
 * an IPv4-mapped IPv6 address is its IPv4 address.
 */
export function clientKey(request: FastifyRequest): string {
  const { ip } = request;
  if (isIPv4(ip) || !ipaddr.isValid(ip)) return ip;
  const address = ipaddr.process(ip);
  if (address.kind() === 'ipv4') return address.toString();
  const hextets = (address as ipaddr.IPv6).parts.slice(0, 4).map((part) => part.toString(16));
  return `${hextets.join(':')}::/64`;
}
