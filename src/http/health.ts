import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { ignorePressure } from './pressure.js';
import { problem, sendProblem } from './problem.js';
import { problemResponses, REQUEST_ID_HEADER } from './responses.js';

export interface HealthOptions {
  /** A round trip to the database (SELECT 1). */
  pingDatabase: () => Promise<unknown>;
  readyTimeoutMs: number;
}

const status = (value: string, description: string) =>
  Type.Object({ status: Type.Literal(value) }, { additionalProperties: false, description, headers: REQUEST_ID_HEADER, examples: [{ status: value }] });

/** Probes take no input: the only refusal they can meet is the HTTP parser's, for any path. */
const PARSER_REFUSALS = ['HEADERS_TOO_LARGE'] as const;

/** Liveness never touches the database (a slow database must not get the process restarted); readiness does. */
export async function healthRoutes(app: FastifyInstance, { pingDatabase, readyTimeoutMs }: HealthOptions) {
  // Probes answer under pressure too: an orchestrator must not restart a busy but healthy worker.
  const config = { pressureHandler: ignorePressure };

  app.get(
    '/healthz',
    {
      config,
      schema: {
        operationId: 'getHealth',
        tags: ['health'],
        summary: 'The process is alive',
        description: 'Never touches the database, and is never shed or rate-limited.',
        security: [],
        response: { 200: status('ok', 'Alive'), ...problemResponses(PARSER_REFUSALS) },
      },
    },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      config,
      schema: {
        operationId: 'getReadiness',
        tags: ['health'],
        summary: 'The database answers',
        description: `Ready when the database answers \`SELECT 1\` within ${readyTimeoutMs} ms; never shed or rate-limited.`,
        security: [],
        response: { 200: status('ready', 'Ready to serve'), ...problemResponses(['NOT_READY', ...PARSER_REFUSALS]) },
      },
    },
    async (request, reply) => {
      try {
        await withTimeout(pingTwiceAtMost(pingDatabase), readyTimeoutMs);
        return { status: 'ready' };
      } catch (error) {
        request.log.warn({ err: error }, 'readiness check failed');
        return sendProblem(reply, problem(503, 'NOT_READY', 'The database does not answer'));
      }
    },
  );
}

/**
 * A pooled connection opened before the database restarted fails its next query once, and the
 * pool replaces it: a second ping, on another connection, tells a database that is up from one
 * that is down. (Seen after a PostgreSQL crash: one /readyz in four answered 503 after recovery.)
 */
async function pingTwiceAtMost(pingDatabase: () => Promise<unknown>): Promise<void> {
  try {
    await pingDatabase();
  } catch {
    await pingDatabase();
  }
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
