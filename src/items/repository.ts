import type { Database } from '../db/client.js';
import { DatabaseUnavailableError, isRejectedData } from '../db/errors.js';
import type { items } from '../db/schema.js';
import type { IdempotencyClaim } from './idempotency.js';
import type { ItemCreate, ItemUpdate } from './schemas.js';

/**
 * All of the items resource's SQL, written by hand for postgres.js: each statement's text is fixed,
 * so it is prepared once per connection, and rows come back in the API's shape (see client.ts).
 * Each function takes the database first.
 */

export type ItemRow = typeof items.$inferSelect;

export interface PageRequest {
  /** Items whose id is greater (0: from the start). */
  after: number;
  limit: number;
}

export interface ItemPage {
  items: ItemRow[];
  /** True when rows follow the last one returned. */
  hasMore: boolean;
}

/** The items with these ids, in no particular order (missing ids are simply absent). */
export async function findItems(db: Database, ids: number[]): Promise<ItemRow[]> {
  return db<ItemRow[]>`
    SELECT id, name, description, created_at, updated_at FROM items WHERE id = ANY(${ids}::int8[])`;
}

/**
 * Several pages in one statement, one per request, in the requests' order. Each page reads one row
 * more than asked, which tells whether another page follows without a COUNT.
 */
export async function listPages(db: Database, requests: PageRequest[]): Promise<ItemPage[]> {
  const rows = await db<(ItemRow & { page: number })[]>`
    SELECT page.ord::int4 AS page, item.*
    FROM unnest(${requests.map((request) => request.after)}::int8[], ${requests.map((request) => request.limit)}::int4[])
      WITH ORDINALITY AS page(after, lim, ord)
    CROSS JOIN LATERAL (
      SELECT id, name, description, created_at, updated_at FROM items
      WHERE id > page.after ORDER BY id LIMIT page.lim + 1
    ) AS item
    ORDER BY page.ord, item.id`;
  const pages: ItemPage[] = requests.map(() => ({ items: [], hasMore: false }));
  // Each row keeps its `page` column: the response's serializer writes only an item's fields, and
  // not copying a row per item spares the garbage collector on the busiest path.
  for (const row of rows) {
    const { items: pageItems } = pages[row.page - 1]!;
    if (pageItems.length < requests[row.page - 1]!.limit) pageItems.push(row);
    else pages[row.page - 1]!.hasMore = true;
  }
  return pages;
}

/** A creation, with the `Idempotency-Key` claim it was sent with, if any. */
export interface NewItem extends ItemCreate {
  idempotency?: IdempotencyClaim;
}

/** The response remembered for an idempotency key. */
export interface StoredResponse {
  requestHash: string;
  status: number;
  item: ItemRow;
}

/** What one creation came to: a new row, or the response stored under its key (a replay or a reuse). */
export type InsertOutcome = { created: ItemRow } | { stored: StoredResponse };

interface InsertedRow extends Omit<ItemRow, 'id'> {
  id: number | null;
  stored_hash: string | null;
  stored_status: number | null;
  stored_response: ItemRow | null;
}

/**
 * Inserts many items with one statement, so one commit serves them all.
 *
 * - Ids are drawn in the statement and joined back to each input's ordinality: outcomes are matched
 *   to inputs by position, never by the order of RETURNING (which SQL does not promise).
 * - Idempotency keys are claimed in the same statement: an item is inserted only if its key was
 *   free (or expired), its response stored with the key in the same commit. A key already held
 *   (by an earlier request, or by a concurrent one on any worker, which PostgreSQL makes this
 *   statement wait for) comes back with the response stored under it, from the same statement:
 *   once this statement has answered, nothing is left to ask the database.
 * - Keys are claimed in one fixed order (owner, key), so two batches holding the same keys
 *   cannot deadlock.
 * - A key may appear once per batch: the caller sends repeats in a later batch.
 */
export async function insertItems(db: Database, inputs: NewItem[]): Promise<InsertOutcome[]> {
  const rows = await db<InsertedRow[]>`
    WITH input AS (
      SELECT nextval('items_id_seq') AS id, name, description, owner, key, request_hash, ttl, ord
      FROM unnest(
        ${inputs.map((input) => input.name)}::varchar[],
        ${inputs.map((input) => input.description ?? null)}::text[],
        ${inputs.map((input) => input.idempotency?.owner ?? null)}::text[],
        ${inputs.map((input) => input.idempotency?.key ?? null)}::varchar[],
        ${inputs.map((input) => input.idempotency?.requestHash ?? null)}::text[],
        ${inputs.map((input) => input.idempotency?.ttlSeconds ?? null)}::int4[]
      ) WITH ORDINALITY AS t(name, description, owner, key, request_hash, ttl, ord)
    ), claim AS (
      INSERT INTO idempotency_keys AS held (owner, key, request_hash, status, response, expires_at)
      SELECT owner, key, request_hash, 201, jsonb_build_object(
          'id', id, 'name', name, 'description', description,
          'created_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
          'updated_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
        now() + make_interval(secs => ttl)
      FROM input WHERE key IS NOT NULL
      ORDER BY owner, key
      -- A live key keeps its response (the no-op update returns it); an expired one is taken over.
      ON CONFLICT (owner, key) DO UPDATE SET
        request_hash = CASE WHEN held.expires_at < now() THEN EXCLUDED.request_hash ELSE held.request_hash END,
        status = CASE WHEN held.expires_at < now() THEN EXCLUDED.status ELSE held.status END,
        response = CASE WHEN held.expires_at < now() THEN EXCLUDED.response ELSE held.response END,
        expires_at = CASE WHEN held.expires_at < now() THEN EXCLUDED.expires_at ELSE held.expires_at END
      RETURNING owner, key, request_hash, status, response
    ), inserted AS (
      INSERT INTO items (id, name, description) OVERRIDING SYSTEM VALUE
      SELECT input.id, input.name, input.description
      FROM input LEFT JOIN claim ON claim.owner = input.owner AND claim.key = input.key
      WHERE input.key IS NULL OR (claim.response->>'id')::int8 = input.id
      RETURNING id, name, description, created_at, updated_at
    )
    SELECT input.ord::int4 AS ord, inserted.*,
      claim.request_hash AS stored_hash, claim.status AS stored_status, claim.response AS stored_response
    FROM input
    LEFT JOIN inserted ON inserted.id = input.id
    LEFT JOIN claim ON claim.owner = input.owner AND claim.key = input.key
    ORDER BY input.ord`;
  return rows.map((row): InsertOutcome => {
    if (row.id !== null) {
      return { created: { id: row.id, name: row.name, description: row.description, created_at: row.created_at, updated_at: row.updated_at } };
    }
    return { stored: { requestHash: row.stored_hash!, status: row.stored_status!, item: row.stored_response! } };
  });
}

/**
 * `insertItems` for a batch that PostgreSQL may refuse as a whole for one input's value: then each
 * input is retried alone, one after another on the same connection, so only that one fails.
 *
 * Each retry commits on its own, so a retry that fails for another reason (a timeout, the database
 * going away) must not fail the batch: the inputs before it keep the outcome they earned (their
 * rows are committed), it gets its own error, and the inputs after it, never sent, get a
 * DatabaseUnavailableError: nothing was done for them.
 */
export async function insertItemsOrEach(db: Database, inputs: NewItem[]): Promise<(InsertOutcome | Error)[]> {
  try {
    return await insertItems(db, inputs);
  } catch (error) {
    if (inputs.length === 1 || !isRejectedData(error)) throw error;
  }
  const outcomes: (InsertOutcome | Error)[] = [];
  for (const input of inputs) {
    try {
      outcomes.push((await insertItems(db, [input]))[0]!);
    } catch (error) {
      outcomes.push(error instanceof Error ? error : new Error(`Non-error thrown: ${String(error)}`));
      if (isRejectedData(error)) continue;
      // Retrying the rest now would most likely fail the same way, after as long a wait.
      while (outcomes.length < inputs.length) outcomes.push(new DatabaseUnavailableError({ cause: error }));
      break;
    }
  }
  return outcomes;
}

/** Forgets responses whose keys expired: a retry after that creates a new item. */
export async function deleteExpiredIdempotencyKeys(db: Database): Promise<number> {
  const deleted = await db`DELETE FROM idempotency_keys WHERE expires_at < now()`;
  return deleted.count;
}

/** Sets the fields given (an empty change touches nothing, not even updated_at). */
export async function updateItem(db: Database, id: number, changes: ItemUpdate): Promise<ItemRow | undefined> {
  const setsName = changes.name !== undefined;
  const setsDescription = changes.description !== undefined;
  if (!setsName && !setsDescription) return (await findItems(db, [id]))[0];
  const [row] = await db<ItemRow[]>`
    UPDATE items SET
      name = CASE WHEN ${setsName} THEN ${changes.name ?? null}::varchar ELSE name END,
      description = CASE WHEN ${setsDescription} THEN ${changes.description ?? null}::text ELSE description END,
      updated_at = now()
    WHERE id = ${id}
    RETURNING id, name, description, created_at, updated_at`;
  return row;
}

export async function deleteItem(db: Database, id: number): Promise<boolean> {
  const deleted = await db`DELETE FROM items WHERE id = ${id}`;
  return deleted.count > 0;
}
