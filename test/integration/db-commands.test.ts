import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runEntryPoint } from '../helpers/command.js';
import { freePort } from '../helpers/ports.js';
import { isAlive } from '../helpers/processes.js';
import { ServiceProcess } from '../helpers/service-process.js';

/**
 * `npm run db:status|db:migrate|db:rollback` (and db:seed) on the embedded database: alone (they start the
 * server and stop it again), and while `npm start` holds it (they connect to that server and
 * leave it running).
 */

let dataDir: string;
let env: Record<string, string>;
let baseUrl: string;
const running: ServiceProcess[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'fastify-sqlasync-db-commands-'));
  const port = await freePort();
  env = { HOST: '127.0.0.1', PORT: String(port), DATA_DIR: dataDir, EMBEDDED_DB_PORT: String(await freePort()) };
  baseUrl = `http://127.0.0.1:${port}`;
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((service) => service.stop()));
});

afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

async function postmasterPid(): Promise<number> {
  return Number((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
}

/** What a command printed for the user, without its JSON log lines. */
function printed(stdout: string): string {
  return stdout
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('{'))
    .join('\n');
}

const cli = (command: string, extraEnv: Record<string, string> = {}) => runEntryPoint('src/db/cli.ts', [command], { ...env, ...extraEnv });

describe('the db commands on the embedded database', () => {
  it('use the embedded database when DATABASE_URL is empty, as `${DATABASE_URL:-}` in compose passes it', async () => {
    const migrated = await cli('migrate', { DATABASE_URL: '' });
    expect(migrated.stderr).toBe('');
    expect(migrated.code).toBe(0);
    const status = await cli('status', { DATABASE_URL: '' });
    expect(status.code).toBe(0);
    expect(printed(status.stdout)).toBe('applied  0000_create_items\napplied  0001_idempotency_keys');
  });

  it('connect to the server of a running service and leave it running', async () => {
    const service = new ServiceProcess(env);
    running.push(service);
    await service.waitForLog('Server listening');
    const server = await postmasterPid();

    const rolledBack = await cli('rollback');
    expect(rolledBack.code).toBe(0);
    expect(rolledBack.stdout).toContain('"reverted":"0001_idempotency_keys"');
    expect(rolledBack.stdout).toContain('using the embedded PostgreSQL of the running service');
    expect(printed((await cli('status')).stdout)).toBe('applied  0000_create_items\npending  0001_idempotency_keys');
    expect((await cli('migrate')).stdout).toContain('"applied":["0001_idempotency_keys"]');
    expect(printed((await cli('status')).stdout)).toBe('applied  0000_create_items\napplied  0001_idempotency_keys');
    const seeded = await runEntryPoint('src/db/seed.ts', ['1000'], env);
    expect(seeded.code).toBe(0);
    expect(seeded.stdout).toContain('"inserted":1000');
    const page = (await (await fetch(`${baseUrl}/items?limit=1000`)).json()) as unknown[];
    expect(page).toHaveLength(1000);

    expect(await postmasterPid()).toBe(server);
    expect(isAlive(server)).toBe(true);
    const created = await fetch(`${baseUrl}/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'after the commands' }),
    });
    expect(created.status).toBe(201);

    service.signal('SIGTERM');
    expect(await service.exited).toEqual({ code: 0, signal: null });
    expect(isAlive(server)).toBe(false);
  });
});
