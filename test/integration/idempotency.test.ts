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
