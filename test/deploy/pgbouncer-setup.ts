import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { waitUntil } from '../helpers/load.js';
import { freePort } from '../helpers/ports.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Only under `npm run test:pgbouncer`: a PgBouncer in front of the run's PostgreSQL. */
    pgbouncerPort?: number;
  }
}

/**
 * The global setup of `npm run test:pgbouncer`, after test/global-setup.ts has started the run's
 * PostgreSQL: Debian's PgBouncer in transaction pooling mode in front of it, on a free port.
 * test/helpers/app.ts then connects every app through it.
 */
export default async function setup(project: TestProject) {
  const server = new URL(project.getProvidedContext().adminUrl);
  const dir = await mkdtemp(path.join(tmpdir(), 'fastify-sqlasync-pgbouncer-'));
  const port = await freePort();
  await writeFile(path.join(dir, 'pgbouncer.ini'), pgbouncerIni(dir, port, server));
  await writeFile(path.join(dir, 'userlist.txt'), `"${server.username}" "${server.password}"\n`);

  // PgBouncer refuses to run as root: it then switches to the postgres user, who owns its folder.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) await chown(dir, Number(execFileSync('id', ['-u', 'postgres'])), Number(execFileSync('id', ['-g', 'postgres'])));
  // --quiet: it logs to pgbouncer.log only.
  const bouncer = spawn('pgbouncer', ['--quiet', ...(asRoot ? ['-u', 'postgres'] : []), path.join(dir, 'pgbouncer.ini')], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = once(bouncer, 'exit');
  try {
    await waitUntil(() => bouncer.exitCode === null && accepts(port), `PgBouncer listening on ${port}`, 10_000);
  } catch (error) {
    bouncer.kill('SIGKILL');
    const log = await readFile(path.join(dir, 'pgbouncer.log'), 'utf8').catch(() => '');
    await rm(dir, { recursive: true, force: true });
    throw new Error(`PgBouncer did not start:\n${log}`, { cause: error });
  }

  project.provide('pgbouncerPort', port);
  return async () => {
    bouncer.kill('SIGTERM');
    await exited;
    const log = await readFile(path.join(dir, 'pgbouncer.log'), 'utf8');
    await rm(dir, { recursive: true, force: true });
    // Had the tests bypassed PgBouncer, they would have proven nothing: scripts/test-pgbouncer.sh
    // fails unless this line counts some. (Throwing here would skip the database's teardown.)
    console.log(`PgBouncer served ${log.match(/login attempt/g)?.length ?? 0} client connections`);
  };
}

function pgbouncerIni(dir: string, port: number, server: URL): string {
  return `
[databases]
; Every database of the run's server (each test file clones its own).
* = host=${server.hostname} port=${server.port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = ${dir}/userlist.txt
; A server connection per transaction, not per client: what lets many replicas share a database.
pool_mode = transaction
; Few server connections, handed out in turn: a client's transactions move between them.
default_pool_size = 4
server_round_robin = 1
max_client_conn = 1000
; postgres.js sends statement_timeout in its startup packet, which PgBouncer 1.18 refuses
; ("unsupported startup parameter") unless ignored. In production, set it on the role instead.
ignore_startup_parameters = statement_timeout
logfile = ${dir}/pgbouncer.log
pidfile = ${dir}/pgbouncer.pid
`;
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}
