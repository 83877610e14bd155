import { asc, eq, gt, sql } from 'drizzle-orm';
import type { Database } from '../db/client.js';
import { isRejectedData } from '../db/errors.js';
import { items, type ItemRow } from '../db/schema.js';
import type { ItemCreate, ItemUpdate } from './schemas.js';

/** All of the items resource's SQL. Each function takes the database (or a transaction) first. */

export interface ItemPage {
  items: ItemRow[];
  /** True when rows follow the last one returned. */
  hasMore: boolean;
}

export async function listItems(db: Database, { after = 0, limit }: { after?: number; limit: number }): Promise<ItemPage> {
  // One row more than asked tells whether another page follows, without a COUNT.
  const rows = await db.select().from(items).where(gt(items.id, after)).orderBy(asc(items.id)).limit(limit + 1);
  return { items: rows.slice(0, limit), hasMore: rows.length > limit };
}

export async function findItem(db: Database, id: number): Promise<ItemRow | undefined> {
  const [row] = await db.select().from(items).where(eq(items.id, id));
  return row;
}

/** A creation, with the `Idempotency-Key` it was sent with, if any. */
export interface NewItem extends ItemCreate {
  idempotency?: { key: string; requestHash: string; ttlSeconds: number };
}

/** The JSON of a response remembered for an idempotency key. */
export interface StoredItem {
  id: number;
  name: string;
  description: string | null;
  created_at: string;
  updated_at: string;
}

export type Creation = { replayed: false; item: ItemRow } | { replayed: true; status: number; item: StoredItem };

/** The key was used before with another request: a client bug, never silently replayed. */
export class IdempotencyKeyReusedError extends Error {
  readonly statusCode = 422;
  readonly code = 'IDEMPOTENCY_KEY_REUSED';
  constructor(key: string) {
    super(`The Idempotency-Key "${key}" was already used with a different request`);
  }
}

interface InsertedRow {
  ord: string;
  id: string | null;
  name: string;
  description: string | null;
  created_at: string;
  updated_at: string;
}

/**
 * Inserts many items in one statement, so one commit serves them all. Ids are drawn in the
 * statement and joined back to each input's ordinality: results are matched to inputs by their
 * position in the input, never by the order of RETURNING (which SQL does not promise).
 *
 * Idempotency keys are claimed in the same statement: an item is inserted only if its key was
 * free (or expired), and its response is stored with the key, in the same commit. A key already
 * taken (by an earlier request, or a concurrent one on any worker, which PostgreSQL makes us wait
 * for) gets the stored response back, or an error if the request differs.
 *
 * If the batch is refused for one bad value, each item is retried alone, so only that one fails.
 */
export async function insertItems(db: Database, inputs: NewItem[]): Promise<(Creation | Error)[]> {
  // One statement may claim a key once: a key repeated within the batch waits for the replay.
  const claimedHere = new Set<string>();
  const repeated = new Set<number>();
  inputs.forEach((input, index) => {
    const key = input.idempotency?.key;
    if (key === undefined) return;
    if (claimedHere.has(key)) repeated.add(index);
    else claimedHere.add(key);
  });
  const batch = inputs.filter((_, index) => !repeated.has(index));
  const positions = inputs.map((_, index) => index).filter((index) => !repeated.has(index));

  const rows = await db.$client<InsertedRow[]>`
    WITH input AS (
      SELECT nextval('items_id_seq') AS id, name, description, key, request_hash, ttl, ord
      FROM unnest(
        ${batch.map((item) => item.name)}::varchar[],
        ${batch.map((item) => item.description ?? null)}::text[],
        ${batch.map((item) => item.idempotency?.key ?? null)}::varchar[],
        ${batch.map((item) => item.idempotency?.requestHash ?? null)}::text[],
        ${batch.map((item) => item.idempotency?.ttlSeconds ?? null)}::int[]
      ) WITH ORDINALITY AS t(name, description, key, request_hash, ttl, ord)
    ), claimed AS (
      INSERT INTO idempotency_keys (key, request_hash, status, response, expires_at)
      SELECT key, request_hash, 201, jsonb_build_object(
          'id', id, 'name', name, 'description', description,
          'created_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
          'updated_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
        now() + make_interval(secs => ttl)
      FROM input WHERE key IS NOT NULL
      ON CONFLICT (key) DO UPDATE
        SET request_hash = EXCLUDED.request_hash, status = EXCLUDED.status,
            response = EXCLUDED.response, expires_at = EXCLUDED.expires_at
        WHERE idempotency_keys.expires_at < now()
      RETURNING key
    ), inserted AS (
      INSERT INTO items (id, name, description) OVERRIDING SYSTEM VALUE
      SELECT id, name, description FROM input
      WHERE key IS NULL OR key IN (SELECT key FROM claimed)
      RETURNING id, name, description, created_at, updated_at
    )
    SELECT input.ord, inserted.* FROM input LEFT JOIN inserted USING (id)`.catch(async (error: unknown) => {
    if (inputs.length > 1 && isRejectedData(error)) return undefined;
    throw error;
  });
  if (!rows) return Promise.all(inputs.map((input) => insertItems(db, [input]).then(([result]) => result!, (error: Error) => error)));

  // Filled in below; an Error (costly: it captures a stack) is made only for a row that is missing.
  const results: (Creation | Error | undefined)[] = new Array<undefined>(inputs.length);
  const replays = [...repeated];
  for (const row of rows) {
    const index = positions[Number(row.ord) - 1]!;
    if (row.id === null) {
      replays.push(index);
      continue;
    }
    results[index] = {
      replayed: false,
      item: {
        id: Number(row.id),
        name: row.name,
        description: row.description,
        created_at: new Date(row.created_at),
        updated_at: new Date(row.updated_at),
      },
    };
  }
  if (replays.length > 0) await replayStoredResponses(db, inputs, replays, results);
  return Array.from(results, (result) => result ?? new Error('The database returned no row for this item'));
}

/** For inputs whose key was taken: the response stored with it, if the request is the same one. */
async function replayStoredResponses(db: Database, inputs: NewItem[], indexes: number[], results: (Creation | Error | undefined)[]) {
  const keys = indexes.map((index) => inputs[index]!.idempotency!.key);
  const stored = await db.$client<{ key: string; request_hash: string; status: number; response: StoredItem }[]>`
    SELECT key, request_hash, status, response FROM idempotency_keys WHERE key = ANY(${keys}::varchar[])`;
  const byKey = new Map(stored.map((row) => [row.key, row]));
  for (const index of indexes) {
    const { key, requestHash } = inputs[index]!.idempotency!;
    const row = byKey.get(key);
    results[index] = !row
      ? new Error(`The response stored for Idempotency-Key "${key}" has expired meanwhile; retry`)
      : row.request_hash !== requestHash
        ? new IdempotencyKeyReusedError(key)
        : { replayed: true, status: row.status, item: row.response };
  }
}

/** Forgets responses whose keys expired: a retry after that creates a new item. */
export async function deleteExpiredIdempotencyKeys(db: Database): Promise<number> {
  const deleted = await db.$client`DELETE FROM idempotency_keys WHERE expires_at < now()`;
  return deleted.count;
}

export async function updateItem(db: Database, id: number, changes: ItemUpdate): Promise<ItemRow | undefined> {
  // An empty patch changes nothing, so it does not touch updated_at either.
  if (changes.name === undefined && changes.description === undefined) return findItem(db, id);
  const [row] = await db
    .update(items)
    .set({ name: changes.name, description: changes.description, updated_at: sql`now()` })
    .where(eq(items.id, id))
    .returning();
  return row;
}

export async function deleteItem(db: Database, id: number): Promise<boolean> {
  const deleted = await db.delete(items).where(eq(items.id, id)).returning({ id: items.id });
  return deleted.length > 0;
}
