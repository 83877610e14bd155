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

interface InsertedRow {
  ord: string;
  id: string;
  name: string;
  description: string | null;
  created_at: string;
  updated_at: string;
}

/**
 * Inserts many items in one statement, so one commit serves them all. Ids are drawn in the
 * statement and joined back to each input's ordinality: the result is matched to the inputs by
 * position in the input, never by the order of RETURNING (which SQL does not promise).
 * If the batch is refused for one bad value, each item is retried alone, so only that one fails.
 */
export async function insertItems(db: Database, inputs: ItemCreate[]): Promise<(ItemRow | Error)[]> {
  const rows = await db.$client<InsertedRow[]>`
    WITH input AS (
      SELECT nextval('items_id_seq') AS id, name, description, ord
      FROM unnest(${inputs.map((item) => item.name)}::varchar[], ${inputs.map((item) => item.description ?? null)}::text[])
        WITH ORDINALITY AS t(name, description, ord)
    ), inserted AS (
      INSERT INTO items (id, name, description) OVERRIDING SYSTEM VALUE
      SELECT id, name, description FROM input
      RETURNING id, name, description, created_at, updated_at
    )
    SELECT input.ord, inserted.* FROM inserted JOIN input USING (id)`.catch(async (error: unknown) => {
    if (inputs.length > 1 && isRejectedData(error)) return undefined;
    throw error;
  });
  if (!rows) return Promise.all(inputs.map((input) => insertItems(db, [input]).then(([row]) => row!, (error: Error) => error)));

  const byOrdinality: (ItemRow | Error)[] = inputs.map(() => new Error('The database returned no row for this item'));
  for (const row of rows) {
    byOrdinality[Number(row.ord) - 1] = {
      id: Number(row.id),
      name: row.name,
      description: row.description,
      created_at: new Date(row.created_at),
      updated_at: new Date(row.updated_at),
    };
  }
  return byOrdinality;
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
