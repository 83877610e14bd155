import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../bench/options.js';
import { startMinimal } from '../../bench/servers/minimal.js';
import { migrateOurSchema } from '../../bench/servers/ours.js';
import type { Service } from '../../bench/servers/service.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { isAlive } from '../helpers/processes.js';

// Three processes started through tsx on a shared 2-core machine.
const TIMEOUT = 60_000;

let database: TestDatabase;
let logDir: string;
let peer: Service;
let sql: postgres.Sql;

interface Row {
  id: string;
  name: string;
  description: string | null;
  created_at: Date;
  updated_at: Date;
}
const asJson = (row: Row) => ({ id: Number(row.id), name: row.name, description: row.description, created_at: row.created_at.toISOString(), updated_at: row.updated_at.toISOString() });
const rows = async () => (await sql<Row[]>`SELECT id, name, description, created_at, updated_at FROM items ORDER BY id`).map(asJson);

beforeAll(async () => {
  // An empty database, migrated as the bench does it when ours runs outside the bench (src/ through tsx).
  database = await createTestDatabase({ migrated: false });
  await migrateOurSchema(undefined, REPO_ROOT, database.url);
  sql = postgres(database.url, { max: 1, onnotice: () => {} });
  await sql`INSERT INTO items (name, description) VALUES ('a', 'first'), ('b', NULL), ('c', 'third')`;
  logDir = await mkdtemp(path.join(tmpdir(), 'bench-minimal-peer-'));
  peer = await startMinimal({ repoRoot: REPO_ROOT, databaseUrl: database.url, workers: 2, logDir });
}, TIMEOUT);

afterAll(async () => {
  await peer?.stop();
  await sql?.end();
  await database?.drop();
  if (logDir) await rm(logDir, { recursive: true, force: true });
}, TIMEOUT);

async function call(method: string, url: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${peer.baseUrl}${url}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  return { status: response.status, body: await response.json() };
}

describe('the minimal peer (bench/minimal-peer), started as the bench starts it', { timeout: TIMEOUT }, () => {
  it('runs two workers under a cluster primary', async () => {
    const listening = (await peer.log!.text()).split('\n').filter((line) => line.includes('listening on'));
    expect(listening).toHaveLength(2);
    expect(new Set(listening.map((line) => /worker (\d+)/.exec(line)?.[1])).size).toBe(2);
  });

  it('lists pages by ascending id after a given id, with every field and RFC 3339 timestamps', async () => {
    const all = await rows();
    expect(await call('GET', '/items?limit=2')).toEqual({ status: 200, body: all.slice(0, 2) });
    expect(await call('GET', '/items?after=1&limit=10')).toEqual({ status: 200, body: all.slice(1) });
    expect(await call('GET', '/items?after=3')).toEqual({ status: 200, body: [] });
    expect(all[0]!.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('reads one item by id, and answers 404 for a missing one', async () => {
    const all = await rows();
    expect(await call('GET', '/items/2')).toEqual({ status: 200, body: all[1] });
    expect((await call('GET', '/items/999')).status).toBe(404);
  });

  it('creates an item with 201 and returns it whole', async () => {
    const created = await call('POST', '/items', { name: 'new', description: 'made by the test' });
    const stored = (await rows()).find((row) => row.name === 'new');
    expect(stored).toMatchObject({ name: 'new', description: 'made by the test' });
    expect(created).toEqual({ status: 201, body: stored });
  });

  it('validates input with the route schemas (limit 1–1000, a positive id, a name of 1–255 characters)', async () => {
    for (const url of ['/items?limit=0', '/items?limit=1001', '/items?after=-1', '/items?limit=ten', '/items/0', '/items/x']) {
      expect((await call('GET', url)).status, url).toBe(400);
    }
    expect((await call('POST', '/items', { name: '' })).status).toBe(400);
    expect((await call('POST', '/items', { name: 'x'.repeat(256) })).status).toBe(400);
    expect((await call('POST', '/items', { description: 'no name' })).status).toBe(400);
  });

  it('stops its whole process tree on SIGTERM', async () => {
    const workers = (await peer.log!.text()).split('\n').flatMap((line) => /worker (\d+) listening/.exec(line)?.[1] ?? []).map(Number);
    const pids = [peer.rootPid!, ...workers];
    expect(pids.every(isAlive)).toBe(true);
    await peer.stop();
    expect(pids.filter(isAlive)).toEqual([]);
    await expect(fetch(`${peer.baseUrl}/items`)).rejects.toThrow();
  });
});
