import postgres from 'postgres';
import { readProcessEntry } from './cpu.js';
import { sleep } from './processes.js';

export type Sql = postgres.Sql;

/** A small connection of the bench's own, marked so that it is easy to tell apart in pg_stat_activity. */
export function connect(url: string): Sql {
  return postgres(url, {
    max: 1,
    onnotice: () => {},
    connection: { application_name: 'fastify-sqlasync-bench' },
  });
}

/** The database name in a postgres:// URL. */
export function databaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
}

/** The same server, another database: the bench reads statistics from `postgres`, never from a service's database. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

export async function createDatabase(admin: Sql, name: string): Promise<void> {
  await admin.unsafe(`DROP DATABASE IF EXISTS "${name}"`);
  await admin.unsafe(`CREATE DATABASE "${name}"`);
}

export interface TransactionCounters {
  commits: number;
  rollbacks: number;
  rowsInserted: number;
  /** Connections established: a pool that churns pays for each (and its setup queries commit too). */
  sessions: number;
}

/**
 * The cumulative counters of pg_stat_database for one database. PostgreSQL 15 backends publish them
 * at most once a second while busy and up to 10 s after they go idle, so a reading is complete only
 * once the service has been idle that long (see `CounterLedger`).
 */
export async function readCounters(admin: Sql, database: string): Promise<TransactionCounters> {
  const rows = await admin<Array<{ commits: string; rollbacks: string; inserted: string; sessions: string }>>`
    SELECT pg_stat_get_db_xact_commit(oid) AS commits,
           pg_stat_get_db_xact_rollback(oid) AS rollbacks,
           pg_stat_get_db_tuples_inserted(oid) AS inserted,
           pg_stat_get_db_sessions(oid) AS sessions
    FROM pg_database WHERE datname = ${database}`;
  const row = rows[0];
  if (!row) throw new Error(`no database ${database}`);
  return { commits: Number(row.commits), rollbacks: Number(row.rollbacks), rowsInserted: Number(row.inserted), sessions: Number(row.sessions) };
}

/**
 * Pins the items table to exactly `rows` rows (the seed's reset: TRUNCATE … RESTART IDENTITY,
 * INSERT … generate_series, VACUUM ANALYZE) and returns the count it then holds. It waits for its
 * own backend to exit, which publishes that backend's statistics at once, so that the reset's
 * transactions land before the next counter reading and are never charged to a service.
 */
export async function pinRows(admin: Sql, url: string, rows: number): Promise<number> {
  const sql = connect(url);
  let backendPid: number;
  let count: number;
  try {
    const [self] = await sql<Array<{ pid: number }>>`SELECT pg_backend_pid() AS pid`;
    backendPid = self!.pid;
    await sql`TRUNCATE items RESTART IDENTITY`;
    await sql`INSERT INTO items (name, description)
              SELECT 'item ' || g, 'description of item ' || g FROM generate_series(1, ${rows}::int) AS g`;
    await sql.unsafe('VACUUM ANALYZE items');
    const [counted] = await sql<Array<{ count: string }>>`SELECT count(*) AS count FROM items`;
    count = Number(counted!.count);
  } finally {
    await sql.end({ timeout: 5 });
  }
  await waitForBackendExit(admin, backendPid);
  return count;
}

async function waitForBackendExit(admin: Sql, pid: number): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const rows = await admin`SELECT 1 FROM pg_stat_activity WHERE pid = ${pid}`;
    if (rows.length === 0) return;
    await sleep(20);
  }
  throw new Error(`backend ${pid} did not exit`);
}

/** A checkpoint before each measurement, so that no run pays for another run's dirty buffers. */
export async function checkpoint(admin: Sql): Promise<void> {
  await admin.unsafe('CHECKPOINT');
}

/** The postmaster's pid: the parent of this connection's backend (the server must run on this machine). */
export async function postmasterPid(admin: Sql): Promise<number | undefined> {
  const [row] = await admin<Array<{ pid: number }>>`SELECT pg_backend_pid() AS pid`;
  return row ? readProcessEntry(row.pid)?.ppid : undefined;
}

export interface ServerSettings {
  version: string;
  [setting: string]: string;
}

/** What the results record about the database: durability settings above all. */
export async function serverSettings(admin: Sql): Promise<ServerSettings> {
  const names = ['server_version', 'fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method', 'shared_buffers', 'max_connections', 'max_wal_size', 'checkpoint_timeout'];
  const rows = await admin<Array<{ name: string; setting: string }>>`
    SELECT name, current_setting(name) AS setting FROM pg_settings WHERE name = ANY(${names})`;
  const settings: ServerSettings = { version: '' };
  for (const row of rows) settings[row.name] = row.setting;
  settings.version = settings['server_version'] ?? '';
  return settings;
}

export async function isSuperuser(admin: Sql): Promise<boolean> {
  const [row] = await admin<Array<{ superuser: boolean }>>`SELECT rolsuper AS superuser FROM pg_roles WHERE rolname = current_user`;
  return row?.superuser ?? false;
}
