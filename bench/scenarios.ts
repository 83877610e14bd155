import type { Options, ScenarioKind } from './options.js';
import type { TargetName } from './servers/service.js';

export type RunTarget = TargetName | 'database';

export interface Scenario {
  /** Stable id used in file names and results: get-10, post-hey, pages, overload-by-id… */
  id: string;
  kind: ScenarioKind;
  title: string;
  /** The table size pinned before each run (GET, random and mix kinds). */
  rows?: number;
  /** Connections of the HTTP runs. */
  connections: number;
  /** Who runs it: the servers that can serve it, and `database` when pgbench runs the same SQL. */
  targets: RunTarget[];
}

export interface PlannedRun {
  rep: number;
  scenario: Scenario;
  target: RunTarget;
}

/** The seed's own scenarios: the only ones its FastAPI service can serve (it has GET /items, every row, and POST /items). */
const SEED_KINDS: ReadonlySet<ScenarioKind> = new Set(['get', 'post-hey', 'post-wrk', 'overload-get', 'overload-post']);
/** Scenarios whose SQL pgbench runs too, in the same repetition: the database's ceiling for that traffic. */
export const CEILING_KINDS: ReadonlySet<ScenarioKind> = new Set(['same-page', 'pages', 'by-id']);
/** Scenarios that pick each request at random in wrk's Lua (autocannon cannot stand in). */
export const RANDOM_KINDS: ReadonlySet<ScenarioKind> = new Set(['pages', 'by-id', 'mix', 'overload-by-id']);
/** The 100-connection run that each overload run is compared with. */
export const OVERLOAD_BASELINE: Partial<Record<ScenarioKind, ScenarioKind>> = { 'overload-get': 'get', 'overload-post': 'post-wrk', 'overload-by-id': 'by-id' };

/** Short names of the realistic traffic, for the comparison table. */
export const TRAFFIC_LABELS: Partial<Record<ScenarioKind, string>> = {
  'same-page': 'every client GET /items?limit=10',
  pages: 'pages at random positions',
  'by-id': 'GET /items/{id}, random ids',
  mix: '70% pages, 20% by id, 10% POST',
};

/** The page sizes of the `pages` traffic (each request picks one). */
export const PAGE_LIMITS = [10, 50, 100];
/** The page every client of `same-page` asks for. */
export const SAME_PAGE_LIMIT = 10;

function targetsFor(kind: ScenarioKind): RunTarget[] {
  if (kind === 'pgbench') return ['database'];
  const servers: RunTarget[] = SEED_KINDS.has(kind) ? ['ours', 'minimal', 'peer'] : ['ours', 'minimal'];
  return CEILING_KINDS.has(kind) ? [...servers, 'database'] : servers;
}

/**
 * The scenarios in the order they run within a repetition: the seed's GETs first (each pins its
 * table), then POSTs and the INSERT ceiling, then the realistic traffic on the large table, then the
 * overload runs, which leave the most backlog behind.
 */
export function scenariosFor(options: Options): Scenario[] {
  const wanted = new Set(options.scenarios);
  const list: Scenario[] = [];
  const c = options.connections;
  const overload = options.overloadConnections;
  const table = options.tableRows;
  const rowsText = table.toLocaleString('en-US');
  const add = (scenario: Omit<Scenario, 'targets'>) => list.push({ ...scenario, targets: targetsFor(scenario.kind) });
  if (wanted.has('get')) {
    for (const rows of options.rows) add({ id: `get-${rows}`, kind: 'get', rows, connections: c, title: `GET /items, ${rows} rows, ${c} connections` });
  }
  if (wanted.has('post-hey')) add({ id: 'post-hey', kind: 'post-hey', connections: c, title: `POST /items, ${options.heyRequests} requests on ${c} connections (the seed's hey run)` });
  if (wanted.has('post-wrk')) add({ id: 'post-wrk', kind: 'post-wrk', connections: c, title: `POST /items, ${c} connections for ${options.durationS} s` });
  if (wanted.has('pgbench')) {
    add({ id: 'pgbench', kind: 'pgbench', connections: options.pgbenchClients, title: `pgbench: the same INSERT … RETURNING without HTTP, ${options.pgbenchClients} clients (POST's ceiling)` });
  }
  if (wanted.has('same-page')) add({ id: 'same-page', kind: 'same-page', rows: table, connections: c, title: `every client GET /items?limit=${SAME_PAGE_LIMIT}, ${rowsText} rows, ${c} connections` });
  if (wanted.has('pages')) add({ id: 'pages', kind: 'pages', rows: table, connections: c, title: `GET /items?after=A&limit=L, A uniform over ${rowsText} rows, L one of ${PAGE_LIMITS.join('/')}, ${c} connections` });
  if (wanted.has('by-id')) add({ id: 'by-id', kind: 'by-id', rows: table, connections: c, title: `GET /items/{id}, random ids of ${rowsText} rows, ${c} connections` });
  if (wanted.has('mix')) add({ id: 'mix', kind: 'mix', rows: table, connections: c, title: `70% pages, 20% by id, 10% POST, ${rowsText} rows, ${c} connections` });
  if (wanted.has('overload-get')) {
    for (const rows of options.rows) add({ id: `overload-get-${rows}`, kind: 'overload-get', rows, connections: overload, title: `overload: GET /items, ${rows} rows, ${overload} connections` });
  }
  if (wanted.has('overload-post')) add({ id: 'overload-post', kind: 'overload-post', connections: overload, title: `overload: POST /items, ${overload} connections` });
  if (wanted.has('overload-by-id')) add({ id: 'overload-by-id', kind: 'overload-by-id', rows: table, connections: overload, title: `overload: GET /items/{id}, random ids of ${rowsText} rows, ${overload} connections` });
  return list;
}

/** The 100-connection scenario an overload scenario is compared with (overload-get-10 → get-10). */
export function baselineScenarioId(scenario: Pick<Scenario, 'id' | 'kind'>): string | undefined {
  const baseline = OVERLOAD_BASELINE[scenario.kind];
  if (!baseline) return undefined;
  return scenario.id.replace(scenario.kind, baseline);
}

/**
 * Every scenario runs against each of its targets back to back, so that all meet the same machine
 * state; the order rotates between repetitions (A B C, then B C A, then C A B) so that none always
 * goes first. pgbench (`database`) takes its turn like a server.
 */
export function buildPlan(scenarios: Scenario[], available: RunTarget[], repeat: number): PlannedRun[] {
  const plan: PlannedRun[] = [];
  for (let rep = 1; rep <= repeat; rep += 1) {
    for (const scenario of scenarios) {
      const targets = scenario.targets.filter((target) => available.includes(target));
      const shift = targets.length > 0 ? (rep - 1) % targets.length : 0;
      for (const target of [...targets.slice(shift), ...targets.slice(0, shift)]) plan.push({ rep, scenario, target });
    }
  }
  return plan;
}

/**
 * A wall-time estimate, calibrated on full --compare runs on a 2-core machine (22.5 min measured for
 * 45 runs of ours and the seed): each run's warm-up and duration, about 9 s of draining, resets,
 * checkpoint and settling, about 2 s more to pin the large table, and about 30 s more after the
 * seed's heavy runs (large lists, overload), whose backlog drains slowly.
 */
export function estimateSeconds(plan: PlannedRun[], options: Options): number {
  const perRunOverhead = 9;
  const servers = new Set(plan.map((run) => run.target).filter((target) => target !== 'database'));
  const turns = new Map<string, number>();
  for (const run of plan) turns.set(`${run.rep} ${run.scenario.id}`, (turns.get(`${run.rep} ${run.scenario.id}`) ?? 0) + 1);
  let total = 30 + 10 * (servers.size - 1); // PostgreSQL, build, migrations, server starts
  for (const run of plan) {
    const measured = run.scenario.kind === 'post-hey' && run.target !== 'database' ? (run.target === 'peer' ? options.heyRequests / 450 : options.heyRequests / 5000) : options.durationS;
    total += options.warmupS + measured + perRunOverhead;
    if ((run.scenario.rows ?? 0) >= 10_000) total += (2 * (run.scenario.rows ?? 0)) / 100_000;
    const heavy = run.scenario.kind.startsWith('overload') || (run.scenario.rows ?? 0) >= 1000;
    if (run.target === 'peer' && heavy) total += 30;
    // A server's counters are read --stats-lag seconds after its last run: the other targets' runs in
    // between cover that wait, when they are long enough (pgbench's are published at its exit).
    if (run.target !== 'database') {
      const others = (turns.get(`${run.rep} ${run.scenario.id}`) ?? 1) - 1;
      total += Math.max(0, options.statsLagS - perRunOverhead - others * (options.warmupS + options.durationS + perRunOverhead));
    }
  }
  return total + options.statsLagS;
}
