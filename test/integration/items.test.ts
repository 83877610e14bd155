import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { buildTestApp } from '../helpers/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let database: TestDatabase;
let app: FastifyInstance;
let sql: postgres.Sql;

beforeAll(async () => {
  database = await createTestDatabase();
  app = await buildTestApp(database.url);
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
});

afterAll(async () => {
  await app?.close();
  await sql?.end();
  await database?.drop();
});

// This file owns its database, so each test may start from an empty table.
beforeEach(async () => {
  await sql`TRUNCATE items RESTART IDENTITY`;
});

const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

async function create(body: Record<string, unknown>) {
  const response = await app.inject({ method: 'POST', url: '/items', payload: body });
  expect(response.statusCode, response.body).toBe(201);
  return response.json<{ id: number; name: string; description: string | null; created_at: string; updated_at: string }>();
}

async function seed(count: number) {
  await sql`INSERT INTO items (name) SELECT 'item ' || n FROM generate_series(1, ${count}) AS n`;
}

describe('POST /items', () => {
  it('creates an item and answers 201 with the whole item and its Location', async () => {
    const response = await app.inject({ method: 'POST', url: '/items', payload: { name: 'x', description: 'y' } });
    expect(response.statusCode).toBe(201);
    const item = response.json();
    expect(item).toEqual({ id: 1, name: 'x', description: 'y', created_at: expect.stringMatching(RFC3339_UTC), updated_at: item.created_at });
    expect(response.headers['location']).toBe('/items/1');
    expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
    const [row] = await sql`SELECT name, description FROM items WHERE id = 1`;
    expect(row).toEqual({ name: 'x', description: 'y' });
  });

  it('defaults description to null and accepts an explicit null', async () => {
    expect((await create({ name: 'a' })).description).toBeNull();
    expect((await create({ name: 'b', description: null })).description).toBeNull();
  });

  it('accepts unknown fields and ignores them, as Pydantic does: the id and timestamps are the server\'s', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/items',
      payload: { name: 'x', id: 999, created_at: '2000-01-01T00:00:00Z', updated_at: '2000-01-01T00:00:00Z', extra: true },
    });
    // Refusing them (a 422) is what the schema's additionalProperties would do without removeAdditional.
    expect(response.statusCode).toBe(201);
    const item = response.json<{ id: number; created_at: string }>();
    expect(item).toEqual({ id: 1, name: 'x', description: null, created_at: expect.stringMatching(RFC3339_UTC), updated_at: item.created_at });
    const [row] = await sql`SELECT id::int, created_at > now() - interval '1 minute' AS fresh FROM items`;
    expect(row).toEqual({ id: 1, fresh: true });
  });

  it('stores unicode verbatim: accents, CJK, emoji, right-to-left, combining marks', async () => {
    const name = 'Grüße 東京 🚀👩🏽‍💻 שלום é';
    const item = await create({ name, description: '\u{1F600}'.repeat(10) });
    expect(item.name).toBe(name);
    const fetched = await app.inject({ method: 'GET', url: `/items/${item.id}` });
    expect(fetched.json().name).toBe(name);
  });

  it('accepts 255-character names counted in characters, not bytes or UTF-16 units', async () => {
    expect((await create({ name: '🚀'.repeat(255) })).name).toHaveLength(510);
    const tooLong = await app.inject({ method: 'POST', url: '/items', payload: { name: 'a'.repeat(256) } });
    expect(tooLong.statusCode).toBe(422);
    // Refused by validation, naming the field, not by the database's varchar(255).
    expect(tooLong.json()).toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [{ in: 'body', field: 'name', message: 'must NOT have more than 255 characters' }],
    });
  });

  it('accepts a 10,000-character description and refuses one more', async () => {
    await create({ name: 'x', description: 'd'.repeat(10_000) });
    const response = await app.inject({ method: 'POST', url: '/items', payload: { name: 'x', description: 'd'.repeat(10_001) } });
    expect(response.statusCode).toBe(422);
    expect(response.json().errors).toEqual([{ in: 'body', field: 'description', message: 'must NOT have more than 10000 characters' }]);
  });

  it.each([
    [{}, [{ in: 'body', field: 'name', message: "must have required property 'name'" }]],
    [{ name: '' }, [{ in: 'body', field: 'name', message: 'must NOT have fewer than 1 characters' }]],
    [{ name: 123 }, [{ in: 'body', field: 'name', message: 'must be string' }]],
    [{ name: null }, [{ in: 'body', field: 'name', message: 'must be string' }]],
    [{ name: ['x'] }, [{ in: 'body', field: 'name', message: 'must be string' }]],
    [{ name: 'x', description: 5 }, [{ in: 'body', field: 'description', message: 'must be string' }]],
    [
      { name: 'a\u0000b', description: 'ok' },
      [{ in: 'body', field: 'name', message: 'must not contain NUL characters or unpaired UTF-16 surrogates' }],
    ],
    [
      { name: 'x', description: 'lone \ud800 surrogate' },
      [{ in: 'body', field: 'description', message: 'must not contain NUL characters or unpaired UTF-16 surrogates' }],
    ],
    [
      { name: '', description: false },
      [
        { in: 'body', field: 'name', message: 'must NOT have fewer than 1 characters' },
        { in: 'body', field: 'description', message: 'must be string' },
      ],
    ],
  ])('answers 422 naming each offending field for %j', async (payload, errors) => {
    const response = await app.inject({ method: 'POST', url: '/items', payload });
    expect(response.statusCode).toBe(422);
    expect(response.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(response.json()).toEqual({
      type: 'about:blank',
      title: 'Unprocessable Entity',
      status: 422,
      detail: 'The request is invalid; see errors',
      code: 'VALIDATION_FAILED',
      errors,
    });
    expect(await sql`SELECT count(*)::int AS count FROM items`).toEqual([{ count: 0 }]);
  });

  it.each([['[]'], ['"x"'], ['42'], ['null']])('answers 422 for a JSON body that is not an object: %s', async (payload) => {
    const response = await app.inject({ method: 'POST', url: '/items', payload, headers: { 'content-type': 'application/json' } });
    expect(response.statusCode).toBe(422);
    expect(response.json().code).toBe('VALIDATION_FAILED');
  });

  it('gives each of 100 concurrent POSTs its own row: the one it sent, under the id it was answered', async () => {
    const sent = Array.from({ length: 100 }, (_, index) => ({ name: `concurrent ${index}`, description: `sent by request ${index}` }));
    const responses = await Promise.all(sent.map((payload) => app.inject({ method: 'POST', url: '/items', payload })));
    expect(responses.map((response) => response.statusCode)).toEqual(Array(100).fill(201));
    const answered = responses.map((response) => response.json<{ id: number; name: string; description: string }>());
    answered.forEach((item, index) => {
      expect(item).toMatchObject(sent[index]!);
      expect(responses[index]!.headers['location']).toBe(`/items/${item.id}`);
    });
    expect(new Set(answered.map((item) => item.id)).size).toBe(100);
    const stored = await sql<{ id: number; name: string; description: string }[]>`SELECT id::int, name, description FROM items`;
    const byId = new Map(stored.map(({ id, ...row }) => [id, row]));
    expect(byId.size).toBe(100);
    answered.forEach((item, index) => expect(byId.get(item.id)).toEqual(sent[index]));
  });
});

describe('GET /items', () => {
  it('answers an empty array for an empty table, with no Link', async () => {
    const response = await app.inject({ method: 'GET', url: '/items' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual([]);
    expect(response.headers['link']).toBeUndefined();
  });

  it('lists whole items in ascending id order', async () => {
    const first = await create({ name: 'first', description: 'one' });
    const second = await create({ name: 'second' });
    const response = await app.inject({ method: 'GET', url: '/items' });
    expect(response.json()).toEqual([first, second]);
  });

  it('returns 100 items by default and links to the next page', async () => {
    await seed(150);
    const response = await app.inject({ method: 'GET', url: '/items' });
    const page = response.json<{ id: number }[]>();
    expect(page).toHaveLength(100);
    expect(page[0]!.id).toBe(1);
    expect(response.headers['link']).toBe('</items?after=100&limit=100>; rel="next"');
  });

  it('walks every page by following Link until there is none', async () => {
    await seed(25);
    const seen: number[] = [];
    let url: string | undefined = '/items?limit=10';
    while (url) {
      const response: LightMyRequestResponse = await app.inject({ method: 'GET', url });
      seen.push(...response.json<{ id: number }[]>().map((item) => item.id));
      url = /^<([^>]+)>; rel="next"$/.exec(String(response.headers['link'] ?? ''))?.[1];
    }
    expect(seen).toEqual(Array.from({ length: 25 }, (_, index) => index + 1));
  });

  it('gives no Link when the last page is exactly full', async () => {
    await seed(20);
    const response = await app.inject({ method: 'GET', url: '/items?limit=10&after=10' });
    expect(response.json()).toHaveLength(10);
    expect(response.headers['link']).toBeUndefined();
  });

  it('answers an empty page for `after` past the end', async () => {
    await seed(5);
    const response = await app.inject({ method: 'GET', url: '/items?after=1000' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual([]);
  });

  it('accepts limit 1 and 1000', async () => {
    await seed(1001);
    expect((await app.inject({ method: 'GET', url: '/items?limit=1' })).json()).toHaveLength(1);
    const big = await app.inject({ method: 'GET', url: '/items?limit=1000' });
    expect(big.json()).toHaveLength(1000);
    expect(big.headers['link']).toBe('</items?after=1000&limit=1000>; rel="next"');
  });

  it.each([
    ['limit=0', 'limit', 'must be >= 1'],
    ['limit=1001', 'limit', 'must be <= 1000'],
    ['limit=abc', 'limit', 'must be integer'],
    ['limit=1.5', 'limit', 'must be integer'],
    ['after=-1', 'after', 'must be >= 0'],
    ['after=x', 'after', 'must be integer'],
    ['after=99999999999999999999', 'after', 'must be <= 9007199254740991'],
  ])('answers 422 for ?%s', async (query, field, message) => {
    const response = await app.inject({ method: 'GET', url: `/items?${query}` });
    expect(response.statusCode).toBe(422);
    expect(response.json().errors).toEqual([{ in: 'querystring', field, message }]);
  });
});

describe('GET, PATCH and DELETE /items/{id}', () => {
  it('reads one item', async () => {
    const item = await create({ name: 'x', description: 'y' });
    const response = await app.inject({ method: 'GET', url: `/items/${item.id}` });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual(item);
  });

  it('patches only the fields given and moves updated_at forward', async () => {
    const item = await create({ name: 'x', description: 'y' });
    const renamed = await app.inject({ method: 'PATCH', url: `/items/${item.id}`, payload: { name: 'renamed' } });
    expect(renamed.statusCode).toBe(200);
    const body = renamed.json();
    expect(body).toEqual({ ...item, name: 'renamed', updated_at: expect.stringMatching(RFC3339_UTC) });
    expect(Date.parse(body.updated_at)).toBeGreaterThan(Date.parse(item.updated_at));

    const cleared = await app.inject({ method: 'PATCH', url: `/items/${item.id}`, payload: { description: null } });
    expect(cleared.json()).toMatchObject({ name: 'renamed', description: null });
    expect((await app.inject({ method: 'GET', url: `/items/${item.id}` })).json()).toEqual(cleared.json());
  });

  it('treats an empty patch as no change', async () => {
    const item = await create({ name: 'x' });
    const response = await app.inject({ method: 'PATCH', url: `/items/${item.id}`, payload: {} });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual(item);
  });

  it('validates a patch with the same rules as a creation', async () => {
    const item = await create({ name: 'x' });
    const response = await app.inject({ method: 'PATCH', url: `/items/${item.id}`, payload: { name: null, description: 7 } });
    expect(response.statusCode).toBe(422);
    expect(response.json().errors).toEqual([
      { in: 'body', field: 'name', message: 'must be string' },
      { in: 'body', field: 'description', message: 'must be string' },
    ]);
  });

  it('deletes an item: 204 with no body, then 404', async () => {
    const item = await create({ name: 'x' });
    const deleted = await app.inject({ method: 'DELETE', url: `/items/${item.id}` });
    expect(deleted.statusCode).toBe(204);
    expect(deleted.body).toBe('');
    expect((await app.inject({ method: 'GET', url: `/items/${item.id}` })).statusCode).toBe(404);
    expect((await app.inject({ method: 'DELETE', url: `/items/${item.id}` })).statusCode).toBe(404);
  });

  it.each(['GET', 'PATCH', 'DELETE'] as const)('answers %s of an unknown id with a 404 problem', async (method) => {
    const response = await app.inject({ method, url: '/items/4242', ...(method === 'PATCH' && { payload: { name: 'x' } }) });
    expect(response.statusCode).toBe(404);
    expect(response.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(response.json()).toEqual({
      type: 'about:blank',
      title: 'Not Found',
      status: 404,
      detail: 'Item 4242 does not exist',
      code: 'ITEM_NOT_FOUND',
    });
  });

  it.each(['0', '-1', 'abc', '1.5', '1e3', '9223372036854775807', '99999999999999999999999', '%00', '0x10'])(
    'answers an id that is not a positive 64-bit integer (%s) with 404 or 422, never 500',
    async (id) => {
      for (const method of ['GET', 'PATCH', 'DELETE'] as const) {
        const response = await app.inject({ method, url: `/items/${id}`, ...(method === 'PATCH' && { payload: {} }) });
        expect([404, 422]).toContain(response.statusCode);
        expect(response.headers['content-type']).toBe('application/problem+json; charset=utf-8');
      }
    },
  );
});
