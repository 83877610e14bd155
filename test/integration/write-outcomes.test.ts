import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp } from '../helpers/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { DatabaseProxy } from '../helpers/database-proxy.js';

/**
 * What a POST answers when the database fails around its commit. A 2xx means committed; a 503
 * says whether the write surely failed (retry) or may have happened (OUTCOME_UNKNOWN: retry with
 * the same Idempotency-Key). A proxy between the service and PostgreSQL puts the failure exactly
 * where each case needs it. One connection, so that requests sent while one batch is held form
 * the next batch together.
 */

let database: TestDatabase;
let proxy: DatabaseProxy;
let app: FastifyInstance;
let sql: postgres.Sql;

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 1, onnotice: () => {} });
  // A value that passes validation but that this database refuses, as a CHECK would in production.
  await sql`ALTER TABLE items ADD CONSTRAINT no_poison CHECK (name <> 'poison')`;
  proxy = await DatabaseProxy.start(database.url);
  app = await buildTestApp(proxy.url, { DB_POOL_MAX: '1' });
});

afterEach(() => proxy.reset());

afterAll(async () => {
  await app?.close();
  await proxy?.close();
  await sql?.end();
  await database?.drop();
});

const create = (name: string, key?: string): InjectOptions => ({
  method: 'POST',
  url: '/items',
  payload: { name },
  headers: key ? { 'idempotency-key': key } : {},
});

/** Sends requests once the connection is busy with a held batch, so that they form the next batch together. */
async function behindAHeldBatch(requests: InjectOptions[], whileHeld: () => void | Promise<void> = () => {}): Promise<LightMyRequestResponse[]> {
  proxy.holdResults();
  const executed = proxy.count('server', 'C');
  const blocker = app.inject(create('blocker'));
  await proxy.waitFor('server', 'C', executed + 1);
  const queued = requests.map((request) => app.inject(request));
  await new Promise((resolve) => setTimeout(resolve, 50));
  await whileHeld();
  proxy.takePeakInFlight();
  proxy.releaseResults();
  expect((await blocker).statusCode).toBe(201);
  return Promise.all(queued);
}

const countNamed = async (name: string) => (await sql`SELECT count(*)::int AS count FROM items WHERE name = ${name}`)[0]!['count'] as number;

describe('a POST whose batch committed', () => {
  it('gets its 201, even when the database goes away right after the commit, and so does a replay in the same batch', async () => {
    const original = await app.inject(create('kept', 'key-kept'));
    expect(original.statusCode).toBe(201);
    // Any statement the batch sends after its insert never reaches PostgreSQL.
    const [fresh, replay] = await behindAHeldBatch([create('fresh after commit'), create('kept', 'key-kept')], () => proxy.cutAtQuery(2));
    expect(fresh!.statusCode).toBe(201);
    expect(await countNamed('fresh after commit')).toBe(1);
    expect(replay!.statusCode).toBe(201);
    expect(replay!.headers['idempotent-replayed']).toBe('true');
    expect(replay!.json()).toEqual(original.json());
  });

  it('replays the response stored for its key, even if the key is purged the moment after the insert ran', async () => {
    const original = await app.inject(create('purged', 'key-purged'));
    proxy.holdResults();
    const executed = proxy.count('server', 'C');
    const retry = app.inject(create('purged', 'key-purged'));
    await proxy.waitFor('server', 'C', executed + 1);
    await sql`DELETE FROM idempotency_keys WHERE key = 'key-purged'`;
    proxy.releaseResults();
    const answer = await retry;
    expect(answer.json()).toEqual(original.json());
    expect(answer.statusCode).toBe(201);
    expect(answer.headers['idempotent-replayed']).toBe('true');
    expect(answer.json()).toEqual(original.json());
    expect(await countNamed('purged')).toBe(1);
  });
});

describe('a POST whose connection is lost', () => {
  it('after the insert was sent answers 503 OUTCOME_UNKNOWN, never "failed": the row may well be there', async () => {
    proxy.holdResults();
    const executed = proxy.count('server', 'C');
    const lost = app.inject(create('maybe saved'));
    await proxy.waitFor('server', 'C', executed + 1);
    proxy.cutConnections();
    const answer = await lost;
    expect(answer.statusCode).toBe(503);
    expect(answer.headers['retry-after']).toBe('1');
    expect(answer.json()).toMatchObject({ status: 503, code: 'OUTCOME_UNKNOWN', detail: expect.stringContaining('Idempotency-Key') });
    // Committed although the client was not told: why a retry without a key could duplicate it.
    expect(await countNamed('maybe saved')).toBe(1);
    // The service reconnects by itself.
    expect((await app.inject(create('after the cut'))).statusCode).toBe(201);
  });
});

describe('a batch that PostgreSQL refuses for one value', () => {
  it('fails only that request, with a 422, retrying the others one at a time on its one connection', async () => {
    const names = ['retried 1', 'poison', 'retried 2', 'retried 3', 'retried 4', 'retried 5'];
    const answers = await behindAHeldBatch(names.map((name) => create(name)));
    const peakInFlight = proxy.takePeakInFlight();
    expect(answers.map((answer) => answer.statusCode)).toEqual([201, 422, 201, 201, 201, 201]);
    expect(answers[1]!.json()).toMatchObject({ status: 422, code: 'UNSTORABLE_VALUE' });
    for (const name of names.filter((name) => name !== 'poison')) expect(await countNamed(name)).toBe(1);
    expect(peakInFlight).toBe(1);
  });

  it('keeps the answers it earned when the database goes away partway through the retries', async () => {
    const names = ['committed before the cut', 'poison', 'sent into the cut', 'never sent 1', 'never sent 2'];
    // Queries from now on: the blocker's is already sent; then the batch, 'committed…' alone, 'poison'
    // alone, and the fourth, 'sent into the cut', never reaches PostgreSQL.
    const answers = await behindAHeldBatch(
      names.map((name) => create(name)),
      () => proxy.cutAtQuery(4),
    );
    await expectAnswersTrueToTheTable(names, answers);
    expect(answers.map(answerOf)).toEqual(['201', '422 UNSTORABLE_VALUE', '503 OUTCOME_UNKNOWN', '503 DATABASE_UNAVAILABLE', '503 DATABASE_UNAVAILABLE']);
  });

  it('answers a row refused for another reason with its own 503, the rows committed before it 201, those never sent DATABASE_UNAVAILABLE', async () => {
    // A statement timeout (as when waiting on an Idempotency-Key another transaction holds), for
    // 'times out' inserted alone: an AFTER STATEMENT trigger runs after every row's CHECK, so the
    // batch is still refused for 'poison' first.
    await sql.unsafe(`
      CREATE FUNCTION time_out_alone() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF EXISTS (SELECT FROM inserted_rows WHERE name = 'times out') THEN
          RAISE EXCEPTION 'canceling statement due to statement timeout' USING ERRCODE = 'query_canceled';
        END IF;
        RETURN NULL;
      END $$;
      CREATE TRIGGER time_out_alone AFTER INSERT ON items REFERENCING NEW TABLE AS inserted_rows
        FOR EACH STATEMENT EXECUTE FUNCTION time_out_alone();`);
    try {
      const names = ['committed before the timeout', 'poison', 'times out', 'not tried 1', 'not tried 2'];
      const answers = await behindAHeldBatch(names.map((name) => create(name)));
      await expectAnswersTrueToTheTable(names, answers);
      expect(answers.map(answerOf)).toEqual(['201', '422 UNSTORABLE_VALUE', '503 DATABASE_UNAVAILABLE', '503 DATABASE_UNAVAILABLE', '503 DATABASE_UNAVAILABLE']);
    } finally {
      await sql`DROP TRIGGER time_out_alone ON items`;
    }
  });
});

describe('a database that takes no writes (the pool still pointing at a standby after a failover)', () => {
  it('answers a POST 503 DATABASE_UNAVAILABLE with Retry-After, not a 500, and still serves reads', async () => {
    const readOnly = await createTestDatabase();
    const owner = postgres(readOnly.url, { max: 1, onnotice: () => {} });
    let readOnlyApp: FastifyInstance | undefined;
    try {
      // Every session opened from now on is read-only, as on a hot standby.
      await owner`ALTER DATABASE ${owner(new URL(readOnly.url).pathname.slice(1))} SET default_transaction_read_only = on`;
      readOnlyApp = await buildTestApp(readOnly.url);
      const answer = await readOnlyApp.inject(create('on a standby'));
      expect(answer.statusCode).toBe(503);
      expect(answer.headers['retry-after']).toBe('1');
      expect(answer.json()).toMatchObject({ status: 503, code: 'DATABASE_UNAVAILABLE' });
      expect((await readOnlyApp.inject({ method: 'GET', url: '/items' })).statusCode).toBe(200);
      expect(await owner`SELECT name FROM items`).toHaveLength(0);
    } finally {
      await readOnlyApp?.close();
      await owner.end();
      await readOnly.drop();
    }
  });
});

/** A response in a line: its status, and its problem's code if it has one. */
function answerOf(answer: LightMyRequestResponse): string {
  const { code } = answer.json<{ code?: string }>();
  return code === undefined ? String(answer.statusCode) : `${answer.statusCode} ${code}`;
}

/**
 * What each caller was told matches the table: a 201's row is there (the row it answered with), a
 * refusal's (422, DATABASE_UNAVAILABLE) is not; OUTCOME_UNKNOWN may go either way.
 */
async function expectAnswersTrueToTheTable(names: string[], answers: LightMyRequestResponse[]): Promise<void> {
  for (const [index, name] of names.entries()) {
    const answer = answers[index]!;
    const rows = await sql`SELECT id::int4 AS id, name FROM items WHERE name = ${name}`;
    if (answer.statusCode === 201) expect([...rows], name).toEqual([{ id: answer.json<{ id: number }>().id, name }]);
    else if (answerOf(answer) !== '503 OUTCOME_UNKNOWN') expect([...rows], name).toEqual([]);
  }
}
