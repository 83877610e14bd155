import { chmod, chown, mkdtemp, readFile, rm, writeFile, appendFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';
import { runCommand, sleep } from './processes.js';

export const DEFAULT_PG_BIN = '/usr/lib/postgresql/15/bin';

/**
 * The settings of the seed's pg-up.sh, so that both services meet the same database the seed
 * was measured on. Durability stays on: every committed INSERT waits for its WAL flush to disk.
 */
export const CLUSTER_SETTINGS: Record<string, string> = {
  max_connections: '200',
  shared_buffers: '256MB',
  effective_cache_size: '4GB',
  max_wal_size: '2GB',
  // Fewer checkpoints inside a run; the bench also checkpoints before each measurement.
  checkpoint_timeout: '15min',
  fsync: 'on',
  synchronous_commit: 'on',
  full_page_writes: 'on',
  logging_collector: 'off',
  log_min_messages: 'warning',
};

export interface Cluster {
  dataDir: string;
  port: number;
  binDir: string;
  /** A connection URL for one database of the cluster, as the superuser `postgres`. */
  url(database: string): string;
  postmasterPid(): Promise<number>;
  stop(): Promise<void>;
}

interface OsUser {
  name: string;
  uid: number;
  gid: number;
}

/** PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` user. */
async function serverUser(): Promise<OsUser | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const lookup = await runCommand('id', ['postgres'], { allowFailure: true });
  if (lookup.code !== 0) {
    throw new Error('running as root needs the `postgres` OS user (installed with the postgresql-15 package) to own the cluster');
  }
  const uid = Number((await runCommand('id', ['-u', 'postgres'])).stdout.trim());
  const gid = Number((await runCommand('id', ['-g', 'postgres'])).stdout.trim());
  return { name: 'postgres', uid, gid };
}

function asServerUser(user: OsUser | undefined, command: string, args: string[]) {
  return user ? runCommand('runuser', ['-u', user.name, '--', command, ...args]) : runCommand(command, args);
}

/**
 * initdb's a fresh cluster under the system temp folder on a free loopback port, starts it with
 * pg_ctl and returns how to reach and stop it. `stop()` also deletes the data directory.
 */
export async function startCluster(binDir = DEFAULT_PG_BIN): Promise<Cluster> {
  for (const program of ['initdb', 'pg_ctl']) {
    if (!existsSync(path.join(binDir, program))) {
      throw new Error(`${path.join(binDir, program)} not found: apt-get install -y postgresql-15 (or pass --pg-bin DIR)`);
    }
  }
  const user = await serverUser();
  // Under the system temp folder: reachable by the `postgres` user, unlike a checkout under /root.
  const dataDir = await mkdtemp(path.join(tmpdir(), 'fastify-sqlasync-bench-pg-'));
  await chmod(dataDir, 0o700);
  if (user) await chown(dataDir, user.uid, user.gid);
  const port = await freePort();
  const pgCtl = path.join(binDir, 'pg_ctl');
  let started = false;

  const cluster: Cluster = {
    dataDir,
    port,
    binDir,
    url: (database) => `postgresql://postgres@127.0.0.1:${port}/${database}`,
    postmasterPid: async () => Number((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n', 1)[0]),
    stop: async () => {
      if (started) {
        const stopped = await (user
          ? runCommand('runuser', ['-u', user.name, '--', pgCtl, '-D', dataDir, '-m', 'fast', '-w', '-t', '60', 'stop'], { allowFailure: true })
          : runCommand(pgCtl, ['-D', dataDir, '-m', 'fast', '-w', '-t', '60', 'stop'], { allowFailure: true }));
        if (stopped.code !== 0) {
          // pg_ctl could not stop it: stop the postmaster by its pid (SIGQUIT: immediate shutdown).
          const pid = await cluster.postmasterPid().catch(() => undefined);
          if (pid) {
            try {
              process.kill(pid, 'SIGQUIT');
            } catch {
              // already gone
            }
            await sleep(1_000);
          }
        }
        started = false;
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };

  try {
    await asServerUser(user, path.join(binDir, 'initdb'), [
      '-D', dataDir, '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--auth-local=trust', '--auth-host=trust',
    ]);
    // Loopback only, trust: a throwaway cluster that nothing outside this machine can reach.
    await writeFile(
      path.join(dataDir, 'pg_hba.conf'),
      '# TYPE  DATABASE  USER  ADDRESS        METHOD\nlocal   all       all                  trust\nhost    all       all   127.0.0.1/32   trust\n',
    );
    const settings = {
      listen_addresses: "'127.0.0.1'",
      port: String(port),
      unix_socket_directories: `'${dataDir}'`,
      ...CLUSTER_SETTINGS,
    };
    await appendFile(
      path.join(dataDir, 'postgresql.conf'),
      `\n# ---- bench/postgres.ts ----\n${Object.entries(settings).map(([key, value]) => `${key} = ${value}`).join('\n')}\n`,
    );
    if (user) {
      await chown(path.join(dataDir, 'pg_hba.conf'), user.uid, user.gid);
      await chown(path.join(dataDir, 'postgresql.conf'), user.uid, user.gid);
    }
    await asServerUser(user, pgCtl, ['-D', dataDir, '-l', path.join(dataDir, 'server.log'), '-w', '-t', '60', 'start']);
    started = true;
  } catch (error) {
    await cluster.stop().catch(() => undefined);
    throw error;
  }
  return cluster;
}
