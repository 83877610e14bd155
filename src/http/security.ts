import fastifyCors from '@fastify/cors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import helmet from 'helmet';

export interface SecurityOptions {
  /** Origins allowed to call the API from a browser; empty: CORS off. */
  corsOrigins: string[];
}

/**
 * The headers OWASP's REST Security Cheat Sheet asks of every API response (Content-Type is set by
 * each route), and Cross-Origin-Resource-Policy, which keeps other sites from loading a response
 * without CORS. The rest of a web page's set (Referrer-Policy, Cross-Origin-Opener-Policy, …)
 * protects HTML, which the API never sends, and would double each small response's header bytes.
 * No caching: a read sent after a write must reach the service and see it, through any proxy.
 */
export const API_SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'cross-origin-resource-policy': 'same-origin',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
} as const;

/** Everything under /docs: Swagger UI (see docs.ts), the only HTML the service serves, and its assets. */
function isDocsRoute(request: FastifyRequest): boolean {
  // The url first: reading routeOptions builds an object, and almost no request is for the docs.
  if (!request.url.startsWith('/docs')) return false;
  const route = request.routeOptions.url;
  return route === '/docs' || route?.startsWith('/docs/') === true;
}

/** Security headers and CORS, CORS off unless configured. API keys: api-keys.ts; rate limiting: rate-limit.ts. */
export const security = fastifyPlugin(async function security(app: FastifyInstance, options: SecurityOptions) {
  // Built once: @fastify/helmet would rebuild the middleware (and re-parse the policy) per request.
  const setPageHeaders = helmet({
    // TLS is terminated in front of the service; upgrading requests would break plain-HTTP setups.
    contentSecurityPolicy: { directives: { 'upgrade-insecure-requests': null } },
  });
  app.addHook('onRequest', (request, reply, next) => {
    if (isDocsRoute(request)) return setPageHeaders(request.raw, reply.raw, (error?: unknown) => next(error as Error | undefined));
    // Through Fastify, not the raw response: Node then writes the whole head in one pass.
    reply.headers(API_SECURITY_HEADERS);
    next();
  });

  if (options.corsOrigins.length > 0) {
    await app.register(fastifyCors, {
      origin: options.corsOrigins,
      methods: ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'],
      allowedHeaders: ['authorization', 'content-type', 'idempotency-key', 'x-request-id'],
      exposedHeaders: ['location', 'link', 'x-request-id', 'idempotent-replayed', 'retry-after'],
    });
  }
});
