import type { FastifyInstance } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { METRICS_CONTENT_TYPE, serviceMetrics } from '../metrics.js';
import { ignorePressure } from './pressure.js';

export interface MetricsOptions {
  /** The text to serve: every worker's metrics, aggregated by the supervisor, or this process's. */
  collect: () => Promise<string>;
}

/** Counts and times every response by route pattern (not raw url, to keep the label set small). */
export const metrics = fastifyPlugin(async function metrics(app: FastifyInstance, { collect }: MetricsOptions) {
  const { requests, requestDuration } = serviceMetrics();
  // Callback style: no promise per request on the hot path.
  app.addHook('onResponse', (request, reply, done) => {
    const labels = { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: reply.statusCode };
    requests.inc(labels);
    requestDuration.observe(labels, reply.elapsedTime / 1000);
    done();
  });

  // Scrapes answer under pressure too: that is when they matter most.
  app.get('/metrics', { schema: { hide: true }, config: { pressureHandler: ignorePressure } }, async (_request, reply) => {
    return reply.type(METRICS_CONTENT_TYPE).send(await collect());
  });
});
