import postgres from 'postgres';

export type Database = postgres.Sql;

export interface PoolOptions {
  databaseUrl: string;
  max: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  prepare: boolean;
}

/**
 * PostgreSQL's text for a timestamptz in UTC ('2026-12-03 07:35:46.123456+00') as the API writes
 * it, RFC 3339 with milliseconds ('2026-12-03T07:35:46.123Z', what Date#toISOString gives): rows
 * go to the response as they come, without a Date made and formatted again for every value.
 */
export function timestampText(text: string): string {
  // Sessions run in UTC (below); anything else (years past 9999, BC) takes the long way.
  if (!text.endsWith('+00') || text[4] !== '-') return new Date(text).toISOString();
  const fraction = text.slice(19, -3);
  return `${text.slice(0, 10)}T${text.slice(11, 19)}${fraction === '' ? '.000' : fraction.padEnd(4, '0').slice(0, 4)}Z`;
}

/**
 * One connection pool per process. postgres.js prepares each statement once per connection and
 * pipelines queries; the semaphore in front of it (see Semaphore) bounds what waits.
 */
export function createDatabase(options: PoolOptions): Database {
  return postgres(options.databaseUrl, {
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
      // Timestamps come back in UTC, ISO style, which `timestampText` turns into the API's form.
      TimeZone: 'UTC',
      DateStyle: 'ISO',
    },
    types: {
      // Ids are bigints; the API keeps them below 2^53, where a number is exact.
      bigint: { to: 20, from: [20], serialize: (value: number) => String(value), parse: Number },
      timestamptz: { to: 1184, from: [1184], serialize: (value: Date) => value.toISOString(), parse: timestampText },
    },
    onnotice: () => {},
    // postgres.js's default reconnect backoff grows to 20 s, and a query handed to a closed
    // connection waits it out before even trying: during an outage requests would hang, and after
    // it workers would recover late. Retry quickly instead; the connect timeout still bounds each try.
    backoff: (retries: number) => Math.min(0.01 * 2 ** retries, 0.5),
  });
}
