import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createItemsClient, ProblemError, type Item } from '../../client/src/index.js';
import { clientTypesText, CLIENT_TYPES_FILE } from '../../scripts/contract-files.js';
import { buildTestApp } from '../helpers/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { freePort } from '../helpers/ports.js';

/** The typed client in client/, against the service listening on a real socket. */

const API_KEY = 'client-test-key';

let database: TestDatabase;
const apps: FastifyInstance[] = [];
let baseUrl: string;
let keyedBaseUrl: string;

async function listening(app: FastifyInstance): Promise<string> {
  apps.push(app);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address() as { port: number };
  return `http://127.0.0.1:${address.port}`;
}

beforeAll(async () => {
  database = await createTestDatabase();
  baseUrl = await listening(await buildTestApp(database.url));
  keyedBaseUrl = await listening(await buildTestApp(database.url, { API_KEYS: API_KEY }));
});

afterAll(async () => {
  await Promise.all(apps.map((app) => app.close()));
  await database?.drop();
});

/** A fetch that notes each answer's status (the client's own retries included), then hands it on. */
function countingFetch() {
  const statuses: number[] = [];
  const fetchAndCount = async (request: Request) => {
    const response = await fetch(request);
    statuses.push(response.status);
    return response;
  };
  return { statuses, fetch: fetchAndCount };
}

/** The ProblemError a call rejects with. */
async function problemOf(call: Promise<unknown>): Promise<ProblemError> {
  const error: unknown = await call.then(
    () => new Error('expected the call to fail'),
    (failure: unknown) => failure,
  );
  if (!(error instanceof ProblemError)) throw error;
  return error;
}

describe('the typed client', () => {
  it('runs every operation against the live service', async () => {
    const client = createItemsClient({ baseUrl });
    expect(await client.health()).toEqual({ status: 'ok' });
    expect(await client.readiness()).toEqual({ status: 'ready' });

    const created = await client.createItem({ name: 'from the client', description: 'typed' });
    expect(created).toEqual({
      id: expect.any(Number),
      name: 'from the client',
      description: 'typed',
      created_at: expect.stringMatching(/Z$/),
      updated_at: created.created_at,
    });
    expect(await client.getItem(created.id)).toEqual(created);

    const updated = await client.updateItem(created.id, { description: null });
    expect(updated).toEqual({ ...created, description: null, updated_at: expect.any(String) });

    const page = await client.listItems({ after: created.id - 1, limit: 1 });
    expect(page).toEqual({ items: [updated], next: undefined });

    await client.deleteItem(created.id);
    const gone = await problemOf(client.getItem(created.id));
    expect(gone.status).toBe(404);
    expect(gone.problem).toEqual({ type: 'about:blank', title: 'Not Found', status: 404, detail: `Item ${created.id} does not exist`, code: 'ITEM_NOT_FOUND' });
  });

  it('follows Link from page to page to the end', async () => {
    const client = createItemsClient({ baseUrl });
    const created: Item[] = [];
    for (const name of ['a', 'b', 'c', 'd', 'e']) created.push(await client.createItem({ name: `paged ${name}` }));
    const after = created[0]!.id - 1;

    const pages = [];
    for await (const page of client.pages({ after, limit: 2 })) pages.push(page);
    expect(pages.map((page) => page.items.map((item) => item.name))).toEqual([
      ['paged a', 'paged b'],
      ['paged c', 'paged d'],
      ['paged e'],
    ]);
    expect(pages.map((page) => page.next)).toEqual([
      `/items?after=${created[1]!.id}&limit=2`,
      `/items?after=${created[3]!.id}&limit=2`,
      undefined,
    ]);

    const items = [];
    for await (const item of client.items({ after, limit: 2 })) items.push(item);
    expect(items).toEqual(created);
  });

  it('throws each refusal as a ProblemError with its code: 422 with its fields, 401 without the API key', async () => {
    const client = createItemsClient({ baseUrl });
    const invalid = await problemOf(client.createItem({ name: '' }));
    expect(invalid.code).toBe('VALIDATION_FAILED');
    expect(invalid.fieldErrors).toEqual([{ in: 'body', field: 'name', message: 'must NOT have fewer than 1 characters' }]);
    const badQuery = await problemOf(client.listItems({ limit: 0 }));
    expect(badQuery.problem).toMatchObject({ status: 422, code: 'VALIDATION_FAILED', errors: [{ in: 'querystring', field: 'limit' }] });

    const withoutKey = await problemOf(createItemsClient({ baseUrl: keyedBaseUrl }).createItem({ name: 'refused' }));
    expect(withoutKey.problem).toEqual({
      type: 'about:blank',
      title: 'Unauthorized',
      status: 401,
      detail: 'Writes need an API key: Authorization: Bearer <key>',
      code: 'UNAUTHORIZED',
    });
    expect(withoutKey.response.headers.get('www-authenticate')).toBe('Bearer realm="fastify-sqlasync"');
    const withKey = createItemsClient({ baseUrl: keyedBaseUrl, apiKey: API_KEY });
    expect(await withKey.createItem({ name: 'allowed' })).toMatchObject({ name: 'allowed' });
  });

  it('answers a retry with the same Idempotency-Key with the first creation: one item', async () => {
    const client = createItemsClient({ baseUrl });
    const idempotencyKey = `client-${Date.now()}`;
    const first = await client.createItem({ name: 'once' }, { idempotencyKey });
    const again = await client.createItem({ name: 'once' }, { idempotencyKey });
    expect(again).toEqual(first);
    const reused = await problemOf(client.createItem({ name: 'another body' }, { idempotencyKey }));
    expect(reused.code).toBe('IDEMPOTENCY_KEY_REUSED');
    const stored = [];
    for await (const item of client.items({ after: first.id - 1 })) if (item.name === 'once') stored.push(item);
    expect(stored).toEqual([first]);
  });
});

describe('the typed client while the database is down', () => {
  let forwarder: DatabaseForwarder;
  let offlineBaseUrl: string;

  beforeAll(async () => {
    forwarder = await DatabaseForwarder.create(database.url);
    offlineBaseUrl = await listening(await buildTestApp(forwarder.url, { DB_CONNECT_TIMEOUT_MS: '1000' }));
  });

  afterAll(async () => {
    await forwarder?.stop();
  });

  it('throws 503 DATABASE_UNAVAILABLE, retrying a creation a bounded number of times after Retry-After', async () => {
    const counting = countingFetch();
    const client = createItemsClient({ baseUrl: offlineBaseUrl, fetch: counting.fetch, retry: { attempts: 2 } });

    const read = await problemOf(client.getItem(1));
    expect(read.problem).toMatchObject({ status: 503, code: 'DATABASE_UNAVAILABLE' });
    expect(read.response.headers.get('retry-after')).toBe('1');
    expect(counting.statuses).toEqual([503]);

    const started = Date.now();
    const write = await problemOf(client.createItem({ name: 'never stored' }));
    expect(write.code).toBe('DATABASE_UNAVAILABLE');
    // Two attempts, a second apart (Retry-After: 1), and no third.
    expect(counting.statuses).toEqual([503, 503, 503]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
  });

  it('creates the item once the database is back, retrying with the same key', async () => {
    const counting = countingFetch();
    const client = createItemsClient({ baseUrl: offlineBaseUrl, fetch: counting.fetch });
    const creation = client.createItem({ name: 'after the outage' });
    await until(() => counting.statuses.length === 1);
    expect(counting.statuses).toEqual([503]);
    await forwarder.start();

    const created = await creation;
    expect(created).toMatchObject({ name: 'after the outage' });
    expect(counting.statuses).toEqual([503, 201]);
    const stored = [];
    for await (const item of createItemsClient({ baseUrl }).items({ after: created.id - 1 })) stored.push(item);
    expect(stored).toEqual([created]);
  });
});

describe('the client package', () => {
  it('carries the types openapi-typescript makes of the served document', async () => {
    const app = apps[0]!;
    const document = (await app.inject({ method: 'GET', url: '/openapi.json' })).json<object>();
    const committed = await readFile(CLIENT_TYPES_FILE, 'utf8').catch(() => '(missing)');
    expect(
      committed === (await clientTypesText(document)),
      'client/src/schema.ts differs from the types of the served document: run `npm run openapi && npm run client:generate` and commit both',
    ).toBe(true);
  });

  it('pins the same openapi-fetch and http-link-header as the tests run with', async () => {
    const root = JSON.parse(await readFile('package.json', 'utf8'));
    const client = JSON.parse(await readFile('client/package.json', 'utf8'));
    for (const [name, version] of Object.entries(client.dependencies as Record<string, string>)) {
      expect(root.devDependencies[name], name).toBe(version);
    }
  });

  it('builds with tsc and is imported by its name, with its types, from another project', { timeout: 120_000 }, async () => {
    const run = promisify(execFile);
    await run(process.execPath, [path.resolve('node_modules/typescript/bin/tsc'), '-p', 'client/tsconfig.json']);
    const consumer = await mkdtemp(path.join(tmpdir(), 'fastify-sqlasync-client-consumer-'));
    try {
      await mkdir(path.join(consumer, 'node_modules'));
      await symlink(path.resolve('client'), path.join(consumer, 'node_modules', 'fastify-sqlasync-client'), 'dir');
      await writeFile(path.join(consumer, 'package.json'), JSON.stringify({ type: 'module' }));
      await writeFile(
        path.join(consumer, 'use.ts'),
        "import { createItemsClient, type ErrorCode } from 'fastify-sqlasync-client';\n" +
          "const code: ErrorCode = 'ITEM_NOT_FOUND';\n" +
          "export const name: Promise<string> = createItemsClient({ baseUrl: 'http://127.0.0.1:1' }).getItem(1).then((item) => item.name + code);\n",
      );
      const compilerOptions = { noEmit: true, strict: true, module: 'nodenext', moduleResolution: 'nodenext', lib: ['es2023', 'dom'], types: [] };
      await writeFile(path.join(consumer, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['use.ts'] }));
      await run(process.execPath, [path.resolve('node_modules/typescript/bin/tsc'), '-p', consumer]).catch((error: { stdout?: string }) => {
        throw new Error(`the consumer does not type-check:\n${error.stdout}`);
      });
      const { stdout } = await run(process.execPath, ['--input-type=module', '-e', "const m = await import('fastify-sqlasync-client'); console.log(Object.keys(m).sort().join(','))"], {
        cwd: consumer,
      });
      expect(stdout.trim()).toBe('ProblemError,RETRYABLE_CODES,UnexpectedResponseError,createItemsClient');
    } finally {
      await rm(consumer, { recursive: true, force: true });
    }
  });
});

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * The database as the service sees it, at an address of its own: down (nothing listens: the
 * connection is refused) until start(), then every connection is passed to the real server.
 */
class DatabaseForwarder {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly target: URL,
    private readonly port: number,
  ) {}

  static async create(databaseUrl: string): Promise<DatabaseForwarder> {
    return new DatabaseForwarder(new URL(databaseUrl), await freePort());
  }

  get url(): string {
    const url = new URL(this.target.href);
    url.hostname = '127.0.0.1';
    url.port = String(this.port);
    return url.href;
  }

  async start(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(Number(this.target.port), this.target.hostname);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(this.port, '127.0.0.1', resolve));
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => (this.server ? this.server.close(resolve) : resolve(undefined)));
  }
}
