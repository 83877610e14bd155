import { sql } from 'drizzle-orm';
import { bigint, check, pgTable, text, timestamp, varchar } from 'drizzle-orm/pg-core';

/**
 * The table definitions: the single source for migrations (drizzle-kit) and for row types.
 * Property names match the column names, so that a row is already the API's item shape.
 */
export const items = pgTable(
  'items',
  {
    // Identity rather than serial: the modern form, and it refuses hand-picked ids by default.
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    name: varchar('name', { length: 255 }).notNull(),
    description: text('description'),
    created_at: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    updated_at: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (table) => [check('items_description_length', sql`char_length(${table.description}) <= 10000`)],
);

export type ItemRow = typeof items.$inferSelect;
