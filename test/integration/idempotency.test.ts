import type { FastifyInstance } from 'fastify';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp } from '../helpers/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let database: TestDatabase;
let app: FastifyInstance;
let sql: postgres.Sql;

beforeAll(async () => {
  database = await createTestDatabase();
  app = await buildTestApp(database.url, { IDEMPOTENCY_TTL_SECONDS: '1' });
  sql = postgres(database.url, { max: 1, onnotice: () => {} });
});

afterAll(async () => {
  await app?.close();
  await sql?.end();
  await database?.drop();
});

function post(payload: object, key?: string) {
  return app.inject({ method: 'POST', url: '/items', payload, headers: key === undefined ? {} : { 'idempotency-key': key } });
}

async function countNamed(name: string): Promise<number> {
  const [row] = await sql<{ count: number }[]>`SELECT count(*)::int AS count FROM items WHERE name = ${name}`;
  return row!.count;
}

describe('POST /items with an Idempotency-Key', () => {
  it('answers a retry with the original status and body, marked as replayed, and creates nothing', async () => {
    const first = await post({ name: 'pay once', description: 'd' }, 'order-1');
    expect(first.statusCode).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();

    const retry = await post({ name: 'pay once', description: 'd' }, 'order-1');
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.headers['location']).toBe(first.headers['location']);
    expect(retry.json()).toEqual(first.json());
    expect(await countNamed('pay once')).toBe(1);
  });

  it('treats unknown fields as not part of the request, as validation drops them', async () => {
    await post({ name: 'extra fields' }, 'order-extra');
    const retry = await post({ name: 'extra fields', ignored: 'anything' }, 'order-extra');
    expect(retry.headers['idempotent-replayed']).toBe('true');
  });

  it('answers 422 for the same key with a different body', async () => {
    await post({ name: 'original' }, 'order-2');
    const reused = await post({ name: 'different' }, 'order-2');
    expect(reused.statusCode).toBe(422);
    expect(reused.json()).toMatchObject({ status: 422, code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(await countNamed('different')).toBe(0);
  });

  it('creates once for 20 simultaneous requests with one key', async () => {
    const responses = await Promise.all(Array.from({ length: 20 }, () => post({ name: 'stampede' }, 'order-3')));
    expect(responses.map((response) => response.statusCode)).toEqual(Array(20).fill(201));
    expect(new Set(responses.map((response) => response.json<{ id: number }>().id)).size).toBe(1);
    expect(responses.filter((response) => response.headers['idempotent-replayed'] === 'true')).toHaveLength(19);
    expect(await countNamed('stampede')).toBe(1);
  });

  it('forgets a key after IDEMPOTENCY_TTL_SECONDS', async () => {
    await post({ name: 'expires' }, 'order-4');
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const later = await post({ name: 'expires' }, 'order-4');
    expect(later.statusCode).toBe(201);
    expect(later.headers['idempotent-replayed']).toBeUndefined();
    expect(await countNamed('expires')).toBe(2);
  });

  it.each([
    ['empty', ''],
    ['too long', 'k'.repeat(256)],
    ['with a space', 'two words'],
    ['with a control character', 'tab\there'],
  ])('answers 422 for a key that is %s', async (_, key) => {
    const response = await post({ name: 'x' }, key);
    expect(response.statusCode).toBe(422);
    expect(response.json().errors).toEqual([{ in: 'headers', field: 'idempotency-key', message: expect.any(String) }]);
  });
});

describe('Idempotency-Key with API keys', () => {
  it('belongs to the caller: another API key sending the same key and body creates its own item', async () => {
    const keyed = await buildTestApp(database.url, { API_KEYS: 'key-of-alice,key-of-bob' });
    try {
      const as = (apiKey: string) =>
        keyed.inject({
          method: 'POST',
          url: '/items',
          payload: { name: 'same order' },
          headers: { authorization: `Bearer ${apiKey}`, 'idempotency-key': 'order-shared' },
        });
      const alice = await as('key-of-alice');
      const bob = await as('key-of-bob');
      const aliceAgain = await as('key-of-alice');
      expect([alice.statusCode, bob.statusCode, aliceAgain.statusCode]).toEqual([201, 201, 201]);
      expect(bob.headers['idempotent-replayed']).toBeUndefined();
      expect(bob.json<{ id: number }>().id).not.toBe(alice.json<{ id: number }>().id);
      expect(aliceAgain.headers['idempotent-replayed']).toBe('true');
      expect(aliceAgain.json()).toEqual(alice.json());
      expect(await countNamed('same order')).toBe(2);
      // The owner is stored as a fingerprint, never as the key itself.
      const owners = await sql<{ owner: string }[]>`SELECT owner FROM idempotency_keys WHERE key = 'order-shared' ORDER BY owner`;
      expect(owners).toHaveLength(2);
      for (const { owner } of owners) expect(owner).toMatch(/^[0-9a-f]{32}$/);
    } finally {
      await keyed.close();
    }
  });
});
