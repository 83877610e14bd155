import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { TestProject } from 'vitest/node';
import { startEmbeddedDatabase } from '../src/db/embedded.js';
import { migrateUp } from '../src/db/migrate.js';
import { freePort } from './helpers/ports.js';
import { TEMPLATE_DATABASE } from './helpers/database.js';

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string;
  }
}

/**
 * Starts the test run's own PostgreSQL (never the development database): a fresh data directory
 * under the system temp folder (reachable by the `postgres` user when running as root) and a free
 * port. It prepares a migrated template from which each test file clones its own databases.
 */
export default async function setup(project: TestProject) {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'fastify-sqlasync-test-'));
  const port = await freePort();
  const logger = pino({ level: 'warn' });
  const server = await startEmbeddedDatabase({ dataDir, port, logger, database: TEMPLATE_DATABASE });
  await migrateUp(server.url);

  project.provide('adminUrl', server.url.replace(/\/[^/]+$/, '/postgres'));
  return async () => {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
}
