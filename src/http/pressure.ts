import underPressure from '@fastify/under-pressure';
import type { FastifyInstance } from 'fastify';
import fastifyPlugin from 'fastify-plugin';

export interface PressureOptions {
  /** Refuse work while the event loop lags more than this (0: never). */
  maxEventLoopDelayMs: number;
  /** Refuse work while the process's resident memory exceeds this (0: never). */
  maxRssBytes: number;
}

/**
 * A worker whose event loop lags or whose memory balloons answers 503 (the error handler's
 * `OVERLOADED`) until it recovers, rather than taking work it would serve late or run out of
 * memory on. Routes opt out with `config: { pressureHandler: ignorePressure }` (health probes).
 */
export const pressure = fastifyPlugin(async function pressure(app: FastifyInstance, options: PressureOptions) {
  await app.register(underPressure, {
    maxEventLoopDelay: options.maxEventLoopDelayMs,
    maxRssBytes: options.maxRssBytes,
    retryAfter: 1,
  });
});

/** A route-level pressure handler that lets the request through. */
export function ignorePressure(): void {}
