import { createHash, timingSafeEqual } from 'node:crypto';
import fastifyCors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import helmet from 'helmet';
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

export interface SecurityOptions {
  /** Origins allowed to call the API from a browser; empty: CORS off. */
  corsOrigins: string[];
  /** Bearer keys that writes (POST, PATCH, DELETE) need; empty: writes are open. */
  apiKeys: string[];
}

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Security headers, CORS and API keys for writes, each off unless configured (but the headers). Rate limiting: rate-limit.ts. */
export const security = fastifyPlugin(async function security(app: FastifyInstance, options: SecurityOptions) {
  // Built once: @fastify/helmet would rebuild the middleware (and re-parse the policy) per request.
  const setSecurityHeaders = helmet({
    // TLS is terminated in front of the service; upgrading requests would break plain-HTTP setups.
    contentSecurityPolicy: { directives: { 'upgrade-insecure-requests': null } },
  });
  app.addHook('onRequest', (request, reply, next) => setSecurityHeaders(request.raw, reply.raw, (error?: unknown) => next(error as Error | undefined)));

  if (options.corsOrigins.length > 0) {
    await app.register(fastifyCors, {
      origin: options.corsOrigins,
      methods: ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'],
      allowedHeaders: ['authorization', 'content-type', 'idempotency-key', 'x-request-id'],
      exposedHeaders: ['location', 'link', 'x-request-id', 'idempotent-replayed', 'retry-after'],
    });
  }

  app.decorateRequest('caller', '');
  if (options.apiKeys.length > 0) {
    const digests = options.apiKeys.map(digest);
    app.addHook('onRequest', async (request, reply) => {
      if (!WRITE_METHODS.has(request.method)) return;
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
  }
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
