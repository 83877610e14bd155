import type { Options, ScenarioKind } from './options.js';
import type { TargetName } from './servers/service.js';

export interface Scenario {
  /** Stable id used in file names and results: get-10, post-hey, overload-get-1000… */
  id: string;
  kind: ScenarioKind;
  title: string;
  /** The table size pinned before each run (GET kinds only). */
  rows?: number;
  connections: number;
  /** pgbench talks to our database directly: no HTTP server is involved. */
  onDatabase: boolean;
}

export type RunTarget = TargetName | 'database';

export interface PlannedRun {
  rep: number;
  scenario: Scenario;
  target: RunTarget;
}

/**
 * The scenarios in the order they run within a repetition: GETs first (each pins its table), then
 * POSTs and the pgbench ceiling, then the overload runs, which leave the most backlog behind.
 */
export function scenariosFor(options: Options): Scenario[] {
  const wanted = new Set(options.scenarios);
  const list: Scenario[] = [];
  const c = options.connections;
  const overload = options.overloadConnections;
  if (wanted.has('get')) {
    for (const rows of options.rows) list.push({ id: `get-${rows}`, kind: 'get', rows, connections: c, onDatabase: false, title: `GET /items, ${rows} rows, ${c} connections` });
  }
  if (wanted.has('post-hey')) list.push({ id: 'post-hey', kind: 'post-hey', connections: c, onDatabase: false, title: `POST /items, ${options.heyRequests} requests on ${c} connections (the seed's hey run)` });
  if (wanted.has('post-wrk')) list.push({ id: 'post-wrk', kind: 'post-wrk', connections: c, onDatabase: false, title: `POST /items, ${c} connections for ${options.durationS} s` });
  if (wanted.has('pgbench')) {
    list.push({ id: 'pgbench', kind: 'pgbench', connections: options.pgbenchClients, onDatabase: true, title: `pgbench: the same INSERT … RETURNING without HTTP, ${options.pgbenchClients} clients (POST's ceiling)` });
  }
  if (wanted.has('overload-get')) {
    for (const rows of options.rows) list.push({ id: `overload-get-${rows}`, kind: 'overload-get', rows, connections: overload, onDatabase: false, title: `overload: GET /items, ${rows} rows, ${overload} connections` });
  }
  if (wanted.has('overload-post')) list.push({ id: 'overload-post', kind: 'overload-post', connections: overload, onDatabase: false, title: `overload: POST /items, ${overload} connections` });
  return list;
}

/**
 * Every scenario runs against each server back to back, so that both meet the same machine state;
 * the order alternates between repetitions (A/B, then B/A) so that neither always goes first.
 * pgbench measures the database alone, once per repetition.
 */
export function buildPlan(scenarios: Scenario[], targets: TargetName[], repeat: number): PlannedRun[] {
  const plan: PlannedRun[] = [];
  for (let rep = 1; rep <= repeat; rep += 1) {
    const order = rep % 2 === 1 ? targets : [...targets].reverse();
    for (const scenario of scenarios) {
      if (scenario.onDatabase) plan.push({ rep, scenario, target: 'database' });
      else for (const target of order) plan.push({ rep, scenario, target });
    }
  }
  return plan;
}

/**
 * A wall-time estimate, calibrated on a full --compare run on a 2-core machine (22.5 min measured for
 * 45 runs): each run's warm-up and duration, about 9 s of draining, resets, checkpoint and settling,
 * and about 30 s more after the reference's heavy runs (large lists, overload), whose backlog drains slowly.
 */
export function estimateSeconds(plan: PlannedRun[], options: Options, compare: boolean): number {
  const perRunOverhead = 9;
  let total = 30; // PostgreSQL, build, migrations, server starts
  for (const run of plan) {
    const measured = run.scenario.kind === 'post-hey' ? (run.target === 'peer' ? options.heyRequests / 450 : options.heyRequests / 5000) : options.durationS;
    total += options.warmupS + measured + perRunOverhead;
    const heavy = run.scenario.kind.startsWith('overload') || (run.scenario.rows ?? 0) >= 1000;
    if (run.target === 'peer' && heavy) total += 30;
    // Alone, a server waits for its own counters; interleaved, the other server's run covers the wait.
    if (!compare && run.target !== 'database') total += Math.max(0, options.statsLagS - perRunOverhead);
  }
  return total + options.statsLagS;
}
