import { defineConfig } from 'drizzle-kit';

// Used by `npm run db:generate` only; it needs no database connection.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema.ts',
  out: './migrations',
});
