import type { FastifyInstance } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { problem, sendProblem } from './problem.js';

export interface LoadSheddingOptions {
  /** Requests this worker works on at once; beyond, a 503 at once. */
  maxInFlight: number;
  /** Paths never shed: an orchestrator's probes must see the process alive, loaded or not. */
  exempt: string[];
}

/**
 * Past a point, accepting more concurrent requests only makes every one of them slower (they
 * queue in the event loop). Refusing the excess with a fast 503 and Retry-After keeps the latency
 * of the accepted ones near what it is under normal load, and tells clients when to come back.
 */
export const loadShedding = fastifyPlugin(async function loadShedding(app: FastifyInstance, options: LoadSheddingOptions) {
  const exempt = new Set(options.exempt);
  let inFlight = 0;

  // Callback style: no promise per request on the hot path.
  app.addHook('onRequest', (request, reply, done) => {
    if (exempt.has(request.routeOptions.url ?? '')) return done();
    if (inFlight >= options.maxInFlight) {
      // Answered here: the request goes no further (a callback hook that replies never calls done).
      sendProblem(reply, problem(503, 'OVERLOADED', 'The service is at capacity; retry shortly'));
      return;
    }
    inFlight++;
    // 'close' fires whether the response finished or the client went away.
    reply.raw.once('close', () => inFlight--);
    done();
  });
});
