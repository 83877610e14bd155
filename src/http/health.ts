import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { ignorePressure } from './pressure.js';
import { problem, problemResponses, sendProblem } from './problem.js';

export interface HealthOptions {
  /** A round trip to the database (SELECT 1). */
  pingDatabase: () => Promise<unknown>;
  readyTimeoutMs: number;
}

const Status = Type.Object({ status: Type.String() });

/** Liveness never touches the database (a slow database must not get the process restarted); readiness does. */
export async function healthRoutes(app: FastifyInstance, { pingDatabase, readyTimeoutMs }: HealthOptions) {
  // Probes answer under pressure too: an orchestrator must not restart a busy but healthy worker.
  const config = { pressureHandler: ignorePressure };

  app.get('/healthz', { config, schema: { tags: ['health'], summary: 'The process is alive', response: { 200: Status } } }, async () => ({
    status: 'ok',
  }));

  app.get(
    '/readyz',
    { config, schema: { tags: ['health'], summary: 'The database answers', response: { 200: Status, ...problemResponses } } },
    async (request, reply) => {
      try {
        await withTimeout(pingDatabase(), readyTimeoutMs);
        return { status: 'ready' };
      } catch (error) {
        request.log.warn({ err: error }, 'readiness check failed');
        reply.header('retry-after', 1);
        return sendProblem(reply, problem(503, 'NOT_READY', 'The database does not answer'));
      }
    },
  );
}

async function withTimeout<T>(work: Promise<T>, milliseconds: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${milliseconds} ms`)), milliseconds);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
