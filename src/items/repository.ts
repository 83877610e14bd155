import { asc, eq, gt, sql } from 'drizzle-orm';
import type { Database } from '../db/client.js';
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

export async function insertItem(db: Database, item: ItemCreate): Promise<ItemRow> {
  const [row] = await db
    .insert(items)
    .values({ name: item.name, description: item.description ?? null })
    .returning();
  return row!;
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
