import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { buildApp, type AppConfig } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';

/** The app as production builds it, on the given database, with defaults for everything else. */
export async function buildTestApp(databaseUrl: string, env: Record<string, string> = {}): Promise<FastifyInstance> {
  const config: AppConfig = { ...loadConfig({ DATABASE_URL: databaseUrl, ...env }), databaseUrl };
  return buildApp(config, { logger: pino({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent' }) });
}
