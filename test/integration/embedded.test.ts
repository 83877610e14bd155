import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.js';
import { isAlive } from '../helpers/processes.js';
import { ServiceProcess } from '../helpers/service-process.js';
import { TerminalProcess } from '../helpers/terminal.js';

/**
 * The embedded PostgreSQL as `npm start` runs it: its lifetime around the service's (Ctrl-C),
 * its superuser password, and how it is recognised across processes.
 */

let dataDir: string;
let databasePort: number;
let env: Record<string, string>;
let baseUrl: string;
const running: ServiceProcess[] = [];
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'fastify-sqlasync-embedded-'));
  const port = await freePort();
  databasePort = await freePort();
  env = { HOST: '127.0.0.1', PORT: String(port), DATA_DIR: dataDir, EMBEDDED_DB_PORT: String(databasePort), WEB_CONCURRENCY: '2' };
  baseUrl = `http://127.0.0.1:${port}`;
});

afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
  await Promise.all(running.splice(0).map((service) => service.stop()));
});

afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

async function postmasterPid(): Promise<number> {
  return Number((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
}

/** The embedded database as its superuser, with the password the service keeps in its data directory. */
async function embeddedUrl(password?: string): Promise<string> {
  password ??= (await readFile(path.join(dataDir, 'superuser.password'), 'utf8')).trim();
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${databasePort}/fastify_sqlasync`;
}

async function send(method: string, url: string, body?: object): Promise<number> {
  const response = await fetch(`${baseUrl}${url}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  await response.arrayBuffer();
  return response.status;
}

// Each test starts the service (with PostgreSQL) once or twice, on a machine other tests load too.
const SLOW = 120_000;

describe('Ctrl-C in the terminal of `npm start`', () => {
  it('lets the workers answer their in-flight requests before PostgreSQL stops', async () => {
    const service = new ServiceProcess(env, { groupLeader: true });
    running.push(service);
    await service.waitForEvent('worker-listening', 2);
    for (const name of ['a', 'b', 'c']) expect(await send('POST', '/items', { name })).toBe(201);

    // Requests of five kinds wait in the database behind a lock the test holds, so each is a
    // statement of its own that PostgreSQL shows waiting: all five are surely in flight.
    const sql = postgres(await embeddedUrl(), { max: 1, onnotice: () => {} });
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const lockTaken = new Promise<void>((resolve) => (locked = resolve));
    const holding = sql
      .begin(async (transaction) => {
        await transaction`LOCK TABLE items IN ACCESS EXCLUSIVE MODE`;
        locked();
        await released;
      })
      .catch((error: unknown) => error);
    cleanups.push(async () => {
      release();
      await sql.end({ timeout: 1 });
    });
    await lockTaken;
    const inFlight = Promise.all([
      send('POST', '/items', { name: 'in flight' }),
      send('GET', '/items?limit=10'),
      send('GET', '/items/1'),
      send('PATCH', '/items/2', { name: 'renamed' }),
      send('DELETE', '/items/3'),
    ]);
    const monitor = postgres(await embeddedUrl(), { max: 1, onnotice: () => {} });
    for (;;) {
      const [{ waiting }] = await monitor<[{ waiting: number }]>`
        SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`;
      if (waiting === 5) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await monitor.end({ timeout: 1 });
    const server = await postmasterPid();

    service.signalGroup('SIGINT');
    await service.waitForEvent('supervisor-stopping');
    release();
    expect(await inFlight).toEqual([201, 200, 200, 200, 204]);
    expect(await holding).toBeUndefined();

    expect(await service.exited).toEqual({ code: 0, signal: null });
    expect(isAlive(server)).toBe(false);
    const lines = service.output.join('\n');
    expect(lines.lastIndexOf('"event":"worker-exited"')).toBeLessThan(lines.indexOf('stopping embedded PostgreSQL'));
  }, SLOW);
});

/** Whether PostgreSQL accepts this password for its superuser, or the SQLSTATE with which it refuses. */
async function logIn(password: string): Promise<string> {
  const sql = postgres(await embeddedUrl(password), { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql<[{ user: string }]>`SELECT current_user AS user`;
    return `logged in as ${row.user}`;
  } catch (error) {
    return `refused: ${(error as { code?: string }).code}`;
  } finally {
    await sql.end();
  }
}

describe('the superuser password', () => {
  it('is random per data directory, kept in a 0600 file, printed for psql on a terminal and never logged', async () => {
    const terminal = new TerminalProcess([process.execPath, '--import', 'tsx', 'src/server.ts'], { ...env, WEB_CONCURRENCY: '1' });
    try {
      const printed = await terminal.waitForLine((line) => line.startsWith('embedded PostgreSQL: psql'));
      await terminal.waitForLine((line) => line.includes('Server listening'));
      const file = path.join(dataDir, 'superuser.password');
      const password = (await readFile(file, 'utf8')).trim();
      expect(password).toMatch(/^[A-Za-z0-9_-]{32}$/);
      expect((await stat(file)).mode & 0o777).toBe(0o600);

      const url = `postgres://postgres:${password}@127.0.0.1:${databasePort}/fastify_sqlasync`;
      expect(printed).toBe(`embedded PostgreSQL: psql '${url}'`);
      const sql = postgres(url, { max: 1, onnotice: () => {} });
      expect(await sql`SELECT current_user, current_database()`).toEqual([{ current_user: 'postgres', current_database: 'fastify_sqlasync' }]);
      await sql.end();
      expect(await logIn('postgres')).toBe('refused: 28P01');

      const logs = terminal.output.filter((line) => line.startsWith('{'));
      expect(logs.join('\n')).not.toContain(password);
      const ready = logs.map((line) => JSON.parse(line) as { msg: string; url?: string }).find((line) => line.msg === 'embedded PostgreSQL is ready');
      expect(ready?.url).toBe(`postgres://postgres:[redacted]@127.0.0.1:${databasePort}/fastify_sqlasync`);

      const { pid } = JSON.parse(logs[0]!) as { pid: number };
      process.kill(pid, 'SIGTERM');
      expect(await terminal.exited).toBe(0);
    } finally {
      terminal.kill();
    }
  }, SLOW);

  it('replaces the old default password of a data directory made before passwords were generated', async () => {
    const service = new ServiceProcess(env);
    running.push(service);
    await service.waitForLog('Server listening');
    expect(await send('POST', '/items', { name: 'made with the old password' })).toBe(201);
    // What older versions left: the password `postgres`, and no password file.
    const sql = postgres(await embeddedUrl(), { max: 1, onnotice: () => {} });
    await sql`ALTER ROLE postgres PASSWORD 'postgres'`;
    await sql.end();
    await service.stop();
    await rm(path.join(dataDir, 'superuser.password'));

    const restarted = new ServiceProcess(env);
    running.push(restarted);
    await restarted.waitForLog('Server listening');
    expect(restarted.output.join('\n')).toContain("replaced the embedded PostgreSQL's old default password with the one in superuser.password");
    const file = path.join(dataDir, 'superuser.password');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await logIn('postgres')).toBe('refused: 28P01');
    expect(await logIn((await readFile(file, 'utf8')).trim())).toBe('logged in as postgres');
    const listed = (await (await fetch(`${baseUrl}/items`)).json()) as { name: string }[];
    expect(listed.map((item) => item.name)).toContain('made with the old password');
  }, SLOW);
});

describe('recognising its server across processes', () => {
  /**
   * Runs the service with the /proc entry of `pid` hidden (an empty folder mounted over it, in a
   * mount namespace of the service's own): what it learns about that process then comes from
   * portable checks only, as on macOS, which has no /proc. (The server's binaries themselves need
   * /proc/self on Linux, so /proc as a whole stays.)
   */
  async function withoutProcEntryOf(pid: number): Promise<string[]> {
    // Mounting needs root; elsewhere the tests still check the recovery, with /proc in sight.
    if (process.getuid?.() !== 0) return [];
    const empty = await mkdtemp(path.join(tmpdir(), 'fastify-sqlasync-empty-'));
    cleanups.push(() => rm(empty, { recursive: true, force: true }));
    return ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', `mount --bind ${empty} /proc/${pid} && exec "$@"`, 'sh'];
  }

  it('stops an orphaned server after a crash without reading its /proc entry', async () => {
    const crashed = new ServiceProcess(env);
    running.push(crashed);
    await crashed.waitForLog('Server listening');
    const orphan = await postmasterPid();
    crashed.signal('SIGKILL');
    await crashed.exited;
    expect(isAlive(orphan)).toBe(true);

    const service = new ServiceProcess(env, { wrapper: await withoutProcEntryOf(orphan) });
    running.push(service);
    await service.waitForLog('Server listening');
    expect(service.output.join('\n')).toContain('stopping an orphaned PostgreSQL server left by a crash');
    expect(isAlive(orphan)).toBe(false);
    expect((await fetch(`${baseUrl}/readyz`)).status).toBe(200);
  }, SLOW);

  it('removes a lock file whose pid now belongs to another program, without reading its /proc entry', async () => {
    const service = new ServiceProcess(env);
    running.push(service);
    await service.waitForLog('Server listening');
    await service.stop();
    // This test's own process: alive, but no PostgreSQL server.
    await writeFile(path.join(dataDir, 'postmaster.pid'), `${process.pid}\n${dataDir}\n1700000000\n${databasePort}\n\n127.0.0.1\n0\nready   \n`);
    const restarted = new ServiceProcess(env, { wrapper: await withoutProcEntryOf(process.pid) });
    running.push(restarted);
    await restarted.waitForLog('Server listening');
    expect(restarted.output.join('\n')).toContain('removing a stale postmaster.pid left by a crash');
  }, SLOW);
});
