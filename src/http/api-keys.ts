import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { problem, sendProblem } from './problem.js';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * Who sent the request, as far as the service can tell: a fingerprint of the API key it
     * presented (not the key), or '' when the service takes no API keys or the request needs none.
     */
    caller: string;
  }
}

export interface ApiKeysOptions {
  /** Bearer keys that writes (POST, PATCH, DELETE) need; empty: writes are open. */
  apiKeys: string[];
}

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Writes need one of API_KEYS as a bearer token (401 otherwise). Register it after the rate limit:
 * its hook answers 401 at once, so a request it refuses is counted only if the limiter ran first,
 * and guessing keys is then as limited as anything else.
 */
export const apiKeys = fastifyPlugin(async function apiKeys(app: FastifyInstance, options: ApiKeysOptions) {
  app.decorateRequest('caller', '');
  if (options.apiKeys.length === 0) return;
  const digests = options.apiKeys.map(digest);
  app.addHook('onRequest', async (request, reply) => {
    // A request that matches no route is a 404 or 405 whatever its key, and is not rate-limited:
    // checking its key there would let a guesser test keys without limit.
    if (!WRITE_METHODS.has(request.method) || request.routeOptions.url === undefined) return;
    const presented = /^Bearer (\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
    const presentedDigest = presented === undefined ? undefined : digest(presented);
    if (presentedDigest && isKnownKey(presentedDigest, digests)) {
      // Half a SHA-256 of a key names it without revealing it (to idempotency, to logs).
      request.caller = presentedDigest.toString('hex', 0, 16);
      return;
    }
    reply.header('www-authenticate', 'Bearer realm="fastify-sqlasync"');
    return sendProblem(reply, problem(401, 'UNAUTHORIZED', 'Writes need an API key: Authorization: Bearer <key>'));
  });
});

/** Keys are compared as fixed-length digests, in constant time, so timing reveals nothing about them. */
function digest(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

function isKnownKey(presented: Buffer, known: Buffer[]): boolean {
  let found = false;
  for (const candidate of known) found = timingSafeEqual(presented, candidate) || found;
  return found;
}
