import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseDuration } from './stats.js';

export const SCENARIO_KINDS = ['get', 'post-hey', 'post-wrk', 'pgbench', 'same-page', 'pages', 'by-id', 'mix', 'overload-get', 'overload-post', 'overload-by-id'] as const;
export type ScenarioKind = (typeof SCENARIO_KINDS)[number];

/** The servers --compare can start beside ours: the minimal peer (bench/minimal-peer) and the seed's FastAPI service. */
export const PEER_NAMES = ['minimal', 'seed'] as const;
export type PeerName = (typeof PEER_NAMES)[number];

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The project's copy of the seed's FastAPI service, with the script that installs its packages. */
export const DEFAULT_PEER_DIR = path.join(REPO_ROOT, 'bench', 'fastapi-seed');

export interface Options {
  /** Our server, already running (origin); otherwise the bench builds and starts it. */
  url?: string;
  peerUrl?: string;
  compare: boolean;
  /** The peers measured beside ours (none without --compare). */
  peers: PeerName[];
  db?: string;
  peerDb?: string;
  serverPid?: number;
  peerPid?: number;
  rows: number[];
  /** The table size of the realistic scenarios (same-page, pages, by-id, mix, overload-by-id). */
  tableRows: number;
  repeat: number;
  durationS: number;
  warmupS: number;
  scenarios: ScenarioKind[];
  workers: number;
  logLevel: string;
  connections: number;
  overloadConnections: number;
  threads: number;
  heyRequests: number;
  pgbenchClients: number;
  wrkTimeoutS: number;
  settleMaxS: number;
  settleCores: number;
  statsLagS: number;
  peerDir: string;
  pgBin: string;
  out?: string;
  build: boolean;
  /** Keep the servers the bench started running across repetitions, instead of restarting them before each. */
  keepServers: boolean;
  forceAutocannon: boolean;
  reportOnly?: string;
  dryRun: boolean;
}

export const USAGE = `npm run bench -- [options]

Load-tests fastify-sqlasync (and with --compare its peers, interleaved) on a throwaway PostgreSQL 15
it starts itself, and writes bench/results/<timestamp>/{results.json,report.html}.

What to measure
  --compare               also run the peers, interleaved with ours (the order rotates between repetitions)
  --peers LIST            which peers: any of ${PEER_NAMES.join(',')} (default: both; implies --compare).
                          minimal: plain Fastify + postgres.js (bench/minimal-peer), every scenario it can
                          serve; seed: the seed's FastAPI service, the seed's scenarios only
  --rows LIST             table sizes for the seed's GET runs (default 10,1000)
  --table-rows N          table size of same-page, pages, by-id, mix, overload-by-id (default 100000)
  --scenarios LIST        any of ${SCENARIO_KINDS.join(',')} (default: all)
  --repeat K              repetitions; tables show medians (default 3)
  --duration D            length of each timed run: 10s, 1m… (default 10s)
  --warmup D              load before each run, not measured (default 3s; 0 to skip)

Servers (default: the bench starts both, each on its own database)
  --workers N             workers of each server (default 2)
  --log-level LEVEL       our LOG_LEVEL (default info: the production default, access log on)
  --no-build              run dist/ as it is (default: npm run build into a private snapshot,
                          so that a rebuild of dist/ during the run cannot change what is measured)
  --keep-servers          keep the servers running from one repetition to the next (default: the bench
                          restarts each server it started before every repetition, so that a server
                          slowing down over its lifetime does not tilt later repetitions)
  --peer-dir DIR          the seed's FastAPI source (default bench/fastapi-seed)
  --url URL               measure our server already running at URL instead of starting one
  --peer-url URL          the same for the seed's service (implies --compare and the seed peer)
  --db URL, --peer-db URL their databases (to pin table sizes, count commits, run pgbench)
  --server-pid PID, --peer-pid PID   roots of their process trees (for CPU accounting)

Load
  --connections N         connections of the GET and POST runs (default 100)
  --overload-connections N   connections of the overload runs (default 1000)
  --threads N             wrk threads (default 2: one per core)
  --hey-requests N        requests of the hey POST run (default 10000)
  --pgbench-clients N     pgbench clients (default 50)
  --wrk-timeout D         wrk's --timeout: slower responses count as timeouts (default 30s)
  --autocannon            use autocannon even where wrk and hey are installed

Method
  --settle-max S          before each run, wait at most S seconds for the machine to go quiet (default 60)
  --settle-cores C        "quiet" means fewer than C busy cores over one second (default 0.3)
  --stats-lag S           wait for PostgreSQL 15 to publish a database's counters (default 11)
  --pg-bin DIR            PostgreSQL binaries (default /usr/lib/postgresql/15/bin)
  --out DIR               results folder (default bench/results/<timestamp>)
  --report-only FILE      re-render report.html beside an existing results.json, and print its tables
  --dry-run               print the runs in order and the estimated time, start nothing
  --help
`;

function positiveInteger(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer, not ${text}`);
  return value;
}

function loopback(name: string, text: string): string {
  const url = new URL(text);
  if (url.protocol !== 'http:' || !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
    throw new Error(`--${name} must be an http:// URL on loopback (127.0.0.1), not ${text}: load tests never leave this machine`);
  }
  // The origin: a URL given as …/items works too.
  return `${url.protocol}//${url.host}`;
}

export function parseOptions(argv: string[]): Options | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      compare: { type: 'boolean', default: false },
      peers: { type: 'string' },
      url: { type: 'string' },
      'peer-url': { type: 'string' },
      db: { type: 'string' },
      'peer-db': { type: 'string' },
      'server-pid': { type: 'string' },
      'peer-pid': { type: 'string' },
      rows: { type: 'string', default: '10,1000' },
      'table-rows': { type: 'string', default: '100000' },
      scenarios: { type: 'string', default: SCENARIO_KINDS.join(',') },
      repeat: { type: 'string', default: '3' },
      duration: { type: 'string', default: '10s' },
      warmup: { type: 'string', default: '3s' },
      workers: { type: 'string', default: '2' },
      'log-level': { type: 'string', default: 'info' },
      'no-build': { type: 'boolean', default: false },
      'keep-servers': { type: 'boolean', default: false },
      // Inside the repository: the project depends on no path outside itself.
      'peer-dir': { type: 'string', default: DEFAULT_PEER_DIR },
      connections: { type: 'string', default: '100' },
      'overload-connections': { type: 'string', default: '1000' },
      threads: { type: 'string', default: '2' },
      'hey-requests': { type: 'string', default: '10000' },
      'pgbench-clients': { type: 'string', default: '50' },
      'wrk-timeout': { type: 'string', default: '30s' },
      autocannon: { type: 'boolean', default: false },
      'settle-max': { type: 'string', default: '60' },
      'settle-cores': { type: 'string', default: '0.3' },
      'stats-lag': { type: 'string', default: '11' },
      'pg-bin': { type: 'string', default: '/usr/lib/postgresql/15/bin' },
      out: { type: 'string' },
      'report-only': { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return 'help';

  const rows = values.rows.split(',').map((text) => {
    const value = Number(text.trim());
    if (!Number.isInteger(value) || value < 0) throw new Error(`--rows takes non-negative integers, not ${text}`);
    return value;
  });
  const scenarios = values.scenarios.split(',').map((text) => text.trim());
  for (const scenario of scenarios) {
    if (!(SCENARIO_KINDS as readonly string[]).includes(scenario)) throw new Error(`unknown scenario ${scenario}; choose from ${SCENARIO_KINDS.join(', ')}`);
  }
  const peers = values.peers === undefined ? [...PEER_NAMES] : [...new Set(values.peers.split(',').map((text) => text.trim()))];
  for (const peer of peers) {
    if (!(PEER_NAMES as readonly string[]).includes(peer)) throw new Error(`unknown peer ${peer}; choose from ${PEER_NAMES.join(', ')}`);
  }
  if (values['peer-url'] !== undefined && !peers.includes('seed')) peers.push('seed');
  const compare = values.compare || values.peers !== undefined || values['peer-url'] !== undefined;
  const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  if (!logLevels.includes(values['log-level'])) throw new Error(`--log-level must be one of ${logLevels.join(', ')}`);
  const seconds = (name: string, text: string) => {
    const value = Number(text);
    if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} must be a number of seconds, not ${text}`);
    return value;
  };
  const durationS = parseDuration(values.duration);
  if (durationS < 1) throw new Error('--duration must be at least 1s');

  return {
    ...(values.url ? { url: loopback('url', values.url) } : {}),
    ...(values['peer-url'] ? { peerUrl: loopback('peer-url', values['peer-url']) } : {}),
    compare,
    peers: compare ? (peers as PeerName[]) : [],
    ...(values.db ? { db: values.db } : {}),
    ...(values['peer-db'] ? { peerDb: values['peer-db'] } : {}),
    ...(values['server-pid'] ? { serverPid: positiveInteger('server-pid', values['server-pid']) } : {}),
    ...(values['peer-pid'] ? { peerPid: positiveInteger('peer-pid', values['peer-pid']) } : {}),
    rows: [...new Set(rows)],
    tableRows: positiveInteger('table-rows', values['table-rows']),
    repeat: positiveInteger('repeat', values.repeat),
    durationS,
    warmupS: parseDuration(values.warmup),
    scenarios: scenarios as ScenarioKind[],
    workers: positiveInteger('workers', values.workers),
    logLevel: values['log-level'],
    connections: positiveInteger('connections', values.connections),
    overloadConnections: positiveInteger('overload-connections', values['overload-connections']),
    threads: positiveInteger('threads', values.threads),
    heyRequests: positiveInteger('hey-requests', values['hey-requests']),
    pgbenchClients: positiveInteger('pgbench-clients', values['pgbench-clients']),
    wrkTimeoutS: parseDuration(values['wrk-timeout']),
    settleMaxS: seconds('settle-max', values['settle-max']),
    settleCores: seconds('settle-cores', values['settle-cores']),
    statsLagS: seconds('stats-lag', values['stats-lag']),
    peerDir: path.resolve(values['peer-dir']),
    pgBin: values['pg-bin'],
    ...(values.out ? { out: path.resolve(values.out) } : {}),
    build: !values['no-build'],
    keepServers: values['keep-servers'],
    forceAutocannon: values.autocannon,
    ...(values['report-only'] ? { reportOnly: path.resolve(values['report-only']) } : {}),
    dryRun: values['dry-run'],
  };
}
