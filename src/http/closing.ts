import type { FastifyInstance } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { problem, sendProblem } from './problem.js';

export interface ClosingOptions {
  /** Answered as usual while the app closes: they need nothing the close takes away (liveness, the scrape). */
  exempt: string[];
  /** The readiness probe: while the app closes, not ready. */
  readiness: string;
}

/**
 * A request can still arrive while the app closes, on a keep-alive connection that was busy when
 * the close began. Fastify's own answer (return503OnClosing) is a bare JSON 503 with no code and
 * no Retry-After, outside the contract: a client takes it for an unexpected response and does not
 * retry. This one is the service's problem body; Fastify marks every response of a closing app
 * `Connection: close`, so the client retries on a fresh connection (another worker or instance).
 * preClose is the first public sign of the close: Fastify runs it before it stops listening.
 */
export const closing = fastifyPlugin(async function closing(app: FastifyInstance, options: ClosingOptions) {
  const exempt = new Set(options.exempt);
  let isClosing = false;
  app.addHook('preClose', async () => {
    isClosing = true;
  });

  // Callback style: no promise per request on the hot path (a hook that answers never calls done).
  app.addHook('onRequest', (request, reply, done) => {
    if (!isClosing) return done();
    const route = request.routeOptions.url;
    if (route !== undefined && exempt.has(route)) return done();
    if (route === options.readiness) sendProblem(reply, problem(503, 'NOT_READY', 'The service is shutting down'));
    else sendProblem(reply, problem(503, 'OVERLOADED', 'The service is shutting down; retry shortly'));
  });
});
