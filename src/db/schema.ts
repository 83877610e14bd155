import { sql } from 'drizzle-orm';
import { bigint, check, index, integer, jsonb, pgTable, primaryKey, text, timestamp, varchar } from 'drizzle-orm/pg-core';

/**
 * The table definitions: the single source for migrations (drizzle-kit) and for row types.
 * Property names match the column names, so that a row is already the API's item shape, and
 * timestamps are the text the API sends (see `timestampText` in client.ts).
 */
export const items = pgTable(
  'items',
  {
    // Identity rather than serial: the modern form, and it refuses hand-picked ids by default.
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    name: varchar('name', { length: 255 }).notNull(),
    description: text('description'),
    created_at: timestamp('created_at', { withTimezone: true, mode: 'string' }).notNull().defaultNow(),
    updated_at: timestamp('updated_at', { withTimezone: true, mode: 'string' }).notNull().defaultNow(),
  },
  (table) => [check('items_description_length', sql`char_length(${table.description}) <= 10000`)],
);

export type ItemRow = typeof items.$inferSelect;

/**
 * Responses remembered for `Idempotency-Key`s: a retry with the same key and body gets the
 * original response instead of a second item. Rows expire. A key belongs to the caller that sent
 * it (`owner`), and (owner, key) is the primary key, so two requests with one key (on any
 * workers) cannot both create, and two callers cannot see each other's responses.
 */
export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    /** A fingerprint of the caller's API key; empty when the service takes none. */
    owner: text('owner').notNull().default(''),
    key: varchar('key', { length: 255 }).notNull(),
    /** SHA-256 of the request it answered: the same key with another body is refused. */
    request_hash: text('request_hash').notNull(),
    status: integer('status').notNull(),
    response: jsonb('response').notNull(),
    expires_at: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (table) => [primaryKey({ columns: [table.owner, table.key] }), index('idempotency_keys_expires_at').on(table.expires_at)],
);
