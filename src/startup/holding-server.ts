import Fastify from 'fastify';
import type { Logger } from 'pino';
import { problem, sendProblem } from '../http/problem.js';
import { requestIdHeader, requestIdOf } from '../http/request-id.js';

export interface HoldingServer {
  close(): Promise<void>;
}

/**
 * What answers on the service's port while it waits for its database: alive (`/healthz` 200, so
 * that an orchestrator does not restart it into a crash loop), not ready (`/readyz` 503
 * NOT_READY, so that it gets no traffic), and a 503 with Retry-After for anything else. The same
 * bodies as the app's, without its database, routes or plugins; it closes before the app listens.
 */
export async function startHoldingServer({ host, port }: { host: string; port: number }, logger: Logger): Promise<HoldingServer> {
  const app = Fastify({
    // Quiet: the wait's own log lines say what happens, once per attempt, not once per probe.
    loggerInstance: logger.child({ component: 'holding-server' }, { level: 'error' }),
    genReqId: requestIdOf,
    requestIdHeader: false,
    requestTimeout: 10_000,
    // The app waits for this server to close before it listens: every connection, busy or idle,
    // goes at once (a slow upload must not hold the port), and timeouts are checked every second.
    forceCloseConnections: true,
    http: { connectionsCheckingInterval: 1_000 },
  });
  app.server.headersTimeout = 10_000;
  // Each answer says the connection ends, so a client does not reuse it into the close.
  app.addHook('onSend', async (_request, reply) => {
    reply.header('connection', 'close');
  });
  await app.register(requestIdHeader);

  // Answered before the body is read, for any method and path but the probes'.
  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.url !== undefined) return;
    return sendProblem(reply, problem(503, 'DATABASE_UNAVAILABLE', 'The database is unavailable; retry shortly'));
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    return sendProblem(reply, problem(503, 'NOT_READY', 'Not ready: the service is waiting for its database (the log says why)'));
  });

  await app.listen({ host, port });
  return { close: () => app.close() };
}
