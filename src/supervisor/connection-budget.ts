import postgres from 'postgres';

/**
 * Every worker has its own pool, so the database must accept workers × pool size connections,
 * plus some for migrations, psql sessions and monitoring.
 */
export const HEADROOM_CONNECTIONS = 5;

export interface ConnectionBudget {
  maxConnections: number;
  reserved: number;
}

export async function readConnectionBudget(databaseUrl: string): Promise<ConnectionBudget> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    const [row] = await sql<{ max_connections: number; reserved: number }[]>`
      SELECT current_setting('max_connections')::int AS max_connections,
             current_setting('superuser_reserved_connections')::int AS reserved`;
    return { maxConnections: row!.max_connections, reserved: row!.reserved };
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/**
 * Undefined when `workers` fit; otherwise a message that says which numbers to change. A rolling
 * reload (SIGHUP, --max-requests) starts each new worker before the old one retires, so for a
 * while there is one pool more than there are workers: the budget counts it.
 */
export function connectionBudgetProblem(budget: ConnectionBudget, workers: number, poolMax: number): string | undefined {
  const pools = workers + 1;
  const needed = pools * poolMax + HEADROOM_CONNECTIONS;
  const available = budget.maxConnections - budget.reserved;
  if (needed <= available) return undefined;
  return (
    `Connection budget exceeded: (${workers} workers + 1 started during a rolling reload) × DB_POOL_MAX ${poolMax} + ` +
    `${HEADROOM_CONNECTIONS} headroom = ${needed} connections, but the database allows ${available} (max_connections ` +
    `${budget.maxConnections} − ${budget.reserved} superuser_reserved_connections). Lower --workers (WEB_CONCURRENCY) ` +
    `or DB_POOL_MAX, or raise max_connections (or put PgBouncer in front).`
  );
}
