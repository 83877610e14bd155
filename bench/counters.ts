import { readCounters, type Sql, type TransactionCounters } from './database.js';
import { sleep } from './processes.js';
import type { DatabaseCounts, RunResult } from './results.js';
import { round } from './stats.js';

interface Pending {
  run: RunResult;
  before: TransactionCounters;
  /** Responses to divide by: the run's, its warm-up's, the table check's. */
  requests: number;
  /** pgbench's backends exit at its end and publish their counters then: no wait needed. */
  publishedOnExit: boolean;
}

/**
 * Commits per request from pg_stat_database, despite PostgreSQL 15's statistics lag: a backend
 * publishes its counters at most once a second while busy and up to 10 s after it goes idle (there
 * is no pg_stat_force_next_flush() before 16). So a run's "after" reading is taken only once its
 * service has been quiet for `lagMs`, just before the next activity on that database; when two
 * servers are interleaved, the other server's run covers that wait.
 */
export class CounterLedger {
  private readonly pending = new Map<string, Pending>();
  /** Databases with activity since the machine last settled. */
  private readonly dirty = new Set<string>();
  private readonly quietAt = new Map<string, number>();

  constructor(
    private readonly admin: Sql,
    private readonly lagMs: number,
  ) {}

  markActive(database: string): void {
    this.dirty.add(database);
  }

  isDirty(database: string): boolean {
    return this.dirty.has(database);
  }

  /** The machine just settled: every database active since went quiet now (at the latest). */
  markQuiet(): void {
    const now = Date.now();
    for (const database of this.dirty) this.quietAt.set(database, now);
    this.dirty.clear();
  }

  /**
   * Waits until every counter of `database` is published (the caller settles the machine first
   * when the database is dirty), closes the pending run of that database and returns a fresh reading.
   */
  async read(database: string): Promise<TransactionCounters> {
    if (this.dirty.has(database)) throw new Error(`read(${database}) before the machine settled`);
    const pending = this.pending.get(database);
    const quietAt = this.quietAt.get(database);
    const wait = pending?.publishedOnExit ? 200 : quietAt === undefined ? 0 : quietAt + this.lagMs - Date.now();
    if (wait > 0) await sleep(wait);
    const counters = await readCounters(this.admin, database);
    if (pending) {
      this.pending.delete(database);
      pending.run.database = countsBetween(pending.before, counters, pending.requests);
    }
    return counters;
  }

  /** Remembers a run whose "after" reading is due once its database has been quiet long enough. */
  expect(database: string, run: RunResult, before: TransactionCounters, requests: number, publishedOnExit = false): void {
    this.pending.set(database, { run, before, requests, publishedOnExit });
  }

  pendingDatabases(): string[] {
    return [...this.pending.keys()];
  }
}

function countsBetween(before: TransactionCounters, after: TransactionCounters, requests: number): DatabaseCounts {
  const commits = after.commits - before.commits;
  const rollbacks = after.rollbacks - before.rollbacks;
  const rowsInserted = after.rowsInserted - before.rowsInserted;
  return {
    commits,
    rollbacks,
    rowsInserted,
    sessions: after.sessions - before.sessions,
    requests,
    commitsPerRequest: round(commits / Math.max(1, requests), 3),
    rollbacksPerRequest: round(rollbacks / Math.max(1, requests), 3),
    ...(commits > 0 && rowsInserted > 0 ? { rowsPerCommit: round(rowsInserted / commits, 2) } : {}),
  };
}
