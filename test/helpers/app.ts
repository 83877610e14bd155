import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { inject } from 'vitest';
import { buildApp, type AppConfig } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { checkResponsesAgainstDocument } from './contract.js';

/**
 * The app as production builds it, on the given database, with defaults for everything else; each
 * of its responses is checked against its OpenAPI document (see contract.ts).
 */
export async function buildTestApp(databaseUrl: string, env: Record<string, string> = {}): Promise<FastifyInstance> {
  ({ databaseUrl, env } = throughPgBouncer(databaseUrl, env));
  // A test machine busy with other suites lags: event-loop shedding only where a test asks for it.
  env = { MAX_EVENT_LOOP_DELAY_MS: '0', ...env };
  const config: AppConfig = { ...loadConfig({ DATABASE_URL: databaseUrl, ...env }), databaseUrl };
  const app = await buildApp(config, { logger: pino({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent' }) });
  checkResponsesAgainstDocument(app);
  return app;
}

/**
 * Under `npm run test:pgbouncer`, which provides `pgbouncerPort`, the app reaches the run's server
 * through PgBouncer in transaction mode, without prepared statements (PgBouncer < 1.21). A URL to
 * any other server (an unreachable one, on purpose) is left as it is.
 */
function throughPgBouncer(databaseUrl: string, env: Record<string, string>) {
  const port = inject('pgbouncerPort');
  const url = new URL(databaseUrl);
  if (port === undefined || url.host !== new URL(inject('adminUrl')).host) return { databaseUrl, env };
  url.port = String(port);
  return { databaseUrl: url.href, env: { DB_PREPARE: 'false', ...env } };
}
