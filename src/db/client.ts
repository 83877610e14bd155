import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import * as schema from './schema.js';

export type Database = PostgresJsDatabase<typeof schema> & { $client: postgres.Sql };

export interface PoolOptions {
  databaseUrl: string;
  max: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  prepare: boolean;
}

/**
 * One connection pool per process. postgres.js prepares each distinct statement once per
 * connection and pipelines queries, so the hot paths need no hand-written prepared statements.
 */
export function createDatabase(options: PoolOptions): Database {
  const client = postgres(options.databaseUrl, {
    max: options.max,
    prepare: options.prepare,
    connect_timeout: Math.ceil(options.connectTimeoutMs / 1000),
    idle_timeout: 60,
    // Recycle connections now and then so that a failover or a PgBouncer restart is picked up.
    max_lifetime: 30 * 60,
    connection: {
      application_name: 'fastify-sqlasync',
      // A statement that runs longer is cancelled by the server: a slow query never holds a
      // connection, and the request behind it, indefinitely.
      statement_timeout: options.statementTimeoutMs,
    },
    onnotice: () => {},
    // postgres.js's default reconnect backoff grows to 20 s, and a query handed to a closed
    // connection waits it out before even trying: during an outage requests would hang, and after
    // it workers would recover late. Retry quickly instead; the connect timeout still bounds each try.
    backoff: (retries: number) => Math.min(0.01 * 2 ** retries, 0.5),
  });
  return drizzle(client, { schema });
}
