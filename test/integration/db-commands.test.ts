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

/** Every migration in the folder, oldest first. */
async function migrationTags(): Promise<string[]> {
  const journal = JSON.parse(await readFile(new URL('../../migrations/meta/_journal.json', import.meta.url), 'utf8')) as { entries: { tag: string }[] };
  return journal.entries.map((entry) => entry.tag);
}

/** db:status as `tag → applied | pending`, from its lines (`applied  0000_create_items  …`). */
async function status(): Promise<Record<string, string>> {
  const result = await cli('status');
  expect(result.code).toBe(0);
  return Object.fromEntries([...result.stdout.matchAll(/^(applied|pending) +(\S+)/gm)].map(([, state, tag]) => [tag!, state!]));
}

const cli = (command: string, extraEnv: Record<string, string> = {}) => runEntryPoint('src/db/cli.ts', [command], { ...env, ...extraEnv });

describe('the db commands on the embedded database', () => {
  it('use the embedded database when DATABASE_URL is empty, as `${DATABASE_URL:-}` in compose passes it', async () => {
    const migrated = await cli('migrate', { DATABASE_URL: '' });
    expect(migrated.code).toBe(0);
    const tags = await migrationTags();
    expect(await status()).toEqual(Object.fromEntries(tags.map((tag) => [tag, 'applied'])));
  });

  it('connect to the server of a running service and leave it running', async () => {
    const service = new ServiceProcess(env);
    running.push(service);
    await service.waitForLog('Server listening');
    const server = await postmasterPid();
    const tags = await migrationTags();
    const newest = tags.at(-1)!;

    const rolledBack = await cli('rollback');
    expect(rolledBack.code).toBe(0);
    expect(rolledBack.stdout + rolledBack.stderr).toContain(newest);
    expect(rolledBack.stdout + rolledBack.stderr).toContain('using the embedded PostgreSQL of the running service');
    expect(await status()).toEqual(Object.fromEntries(tags.map((tag) => [tag, tag === newest ? 'pending' : 'applied'])));
    const migrated = await cli('migrate');
    expect(migrated.code).toBe(0);
    expect(migrated.stdout + migrated.stderr).toContain(newest);
    expect(await status()).toEqual(Object.fromEntries(tags.map((tag) => [tag, 'applied'])));
    const seeded = await runEntryPoint('src/db/seed.ts', ['1000'], env);
    expect(seeded.code).toBe(0);
    expect(seeded.stdout).toMatch(/^inserted 1000 items in /);
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
