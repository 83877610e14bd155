import path from 'node:path';
import { startDetached, stopTree } from '../processes.js';
import { freePort } from '../ports.js';
import { ServerLog } from './server-log.js';
import { ourListPath, waitForHttp, waitForLog, type Service } from './service.js';

export interface MinimalOptions {
  repoRoot: string;
  /** A database already migrated with the project's migrator (the peer reads the same table). */
  databaseUrl: string;
  workers: number;
  /** Folder for the log file (tmpfs when available). */
  logDir: string;
}

/** The peer's source, in the repository: run with tsx (a dev dependency), no build step. */
export const MINIMAL_PEER_ENTRY = path.join('bench', 'minimal-peer', 'server.ts');

/**
 * The minimal peer (plain Fastify 5 + postgres.js, node:cluster): `node --import tsx
 * bench/minimal-peer/server.ts` with DATABASE_URL, HOST, PORT and WORKERS. Each worker prints one
 * "listening" line; nothing else is logged but errors.
 */
export async function startMinimal(options: MinimalOptions): Promise<Service> {
  const port = await freePort();
  const environment = { HOST: '127.0.0.1', PORT: String(port), WORKERS: String(options.workers) };
  const args = ['--import', 'tsx', MINIMAL_PEER_ENTRY];
  const log = new ServerLog(path.join(options.logDir, 'minimal.log'));
  const child = startDetached(process.execPath, args, {
    cwd: options.repoRoot,
    env: { ...process.env, ...environment, DATABASE_URL: options.databaseUrl },
    stdout: log.fd,
    stderr: log.fd,
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  const service: Service = {
    name: 'minimal',
    label: 'minimal peer',
    baseUrl,
    databaseUrl: options.databaseUrl,
    rootPid: child.pid,
    // Its list is bounded like ours (limit 1–1000).
    listPath: ourListPath,
    log,
    description: {
      command: ['node', ...args],
      workers: options.workers,
      logging: 'errors only (Fastify logger at warn, no access log)',
      environment,
      version: 'plain Fastify 5 + postgres.js with its defaults (pool 10; patched, see patches/), node:cluster',
      external: false,
    },
    stop: async () => {
      await stopTree(child, { signal: 'SIGTERM', graceMs: 15_000 });
      log.close();
    },
  };
  try {
    await waitForLog(log, 'listening on', options.workers, 60_000, () => !child.hasExited());
    await waitForHttp(`${baseUrl}/items?limit=1`, 30_000, () => !child.hasExited());
  } catch (error) {
    await service.stop();
    throw error;
  }
  return service;
}
