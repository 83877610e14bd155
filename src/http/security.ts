import fastifyCors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import helmet from 'helmet';

export interface SecurityOptions {
  /** Origins allowed to call the API from a browser; empty: CORS off. */
  corsOrigins: string[];
}

/** Security headers and CORS, CORS off unless configured. API keys: api-keys.ts; rate limiting: rate-limit.ts. */
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
});
