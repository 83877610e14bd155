/**
 * `npm run test:scale`: the service scaled out past one process, on loopback. Two instances (each
 * its own supervisor with one worker, as in a pod) over one PostgreSQL, behind Debian's nginx with
 * the retry policy of deploy/nginx/proxy.conf. It checks that
 *   - an item created through any instance is visible through every instance;
 *   - an instance stopped under load (SIGTERM, then SIGKILL of all its processes) fails no GET and
 *     no POST with an Idempotency-Key at the balancer; a POST without a key that nginx had sent to
 *     the stopped instance is answered 502 rather than replayed (see proxy.conf); no POST is
 *     stored twice, and every 201 is stored;
 * and measures GET and POST throughput with wrk through nginx, one instance against two.
 * Exits non-zero naming the failed check; stops everything it started, by pid.
 */
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmod, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pino from 'pino';
import postgres from 'postgres';
import { startEmbeddedDatabase } from '../../src/db/embedded.js';
import { migrateUp } from '../../src/db/migrate.js';
import { startLoad, waitUntil, type LoadResult, type RunningLoad } from '../helpers/load.js';
import { freePort } from '../helpers/ports.js';
import { ServiceProcess } from '../helpers/service-process.js';
import { isAlive } from '../helpers/processes.js';

const DEADLINE_MS = 10 * 60_000;
const WRK = { threads: 2, connections: 64, seconds: 5, rounds: 3 };
const LOAD_CLIENTS = 16;
/** nginx's fail_timeout in scale-test.conf.template: how long it avoids an instance that failed. */
const NGINX_FAIL_TIMEOUT_MS = 5_000;

const cleanups: (() => Promise<unknown>)[] = [];

async function main(): Promise<void> {
  ensureCommands({ nginx: 'nginx', wrk: 'wrk' });
  const dir = await mkdtemp(path.join(tmpdir(), 'fastify-sqlasync-scale-'));
  // As root, the embedded PostgreSQL runs as the postgres user, which must enter this folder.
  await chmod(dir, 0o711);
  cleanups.push(() => rm(dir, { recursive: true, force: true }));

  const databaseUrl = await startDatabase(dir);
  const sql = postgres(databaseUrl, { max: 2, onnotice: () => {} });
  cleanups.push(() => sql.end());

  const a = new Instance('A', await freePort(), databaseUrl);
  const b = new Instance('B', await freePort(), databaseUrl);
  cleanups.push(() => a.stop(), () => b.stop());
  await Promise.all([a.start(), b.start()]);
  const nginx = await startNginx(dir, a.port, b.port);

  await checkVisibility([a.url, b.url, nginx.two]);
  log('every item created through one instance is visible through every instance and nginx');

  const throughput = await measureThroughput(nginx, a.url, sql);
  const failovers = await checkFailover(nginx, b, sql);
  printReport(throughput, failovers);
}

// ---- processes ----

/** One instance of the service: a supervisor with one worker, like a pod. */
class Instance {
  private service: ServiceProcess | undefined;

  constructor(
    readonly name: string,
    readonly port: number,
    private readonly databaseUrl: string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.service = new ServiceProcess({
      DATABASE_URL: this.databaseUrl,
      HOST: '127.0.0.1',
      PORT: String(this.port),
      WEB_CONCURRENCY: '1',
      // Not a line per request: the load runs would spend their time logging.
      LOG_LEVEL: 'warn',
    });
    const service = this.service;
    let exited = false;
    void service.exited.then(() => (exited = true));
    await waitUntil(async () => {
      if (exited) throw new Error(`instance ${this.name} exited while starting:\n${service.output.join('\n')}`);
      return (await fetchStatus(`${this.url}/readyz`)) === 200;
    }, `instance ${this.name} ready`);
  }

  /** SIGTERM: the supervisor drains its worker and exits 0. */
  async terminate(): Promise<void> {
    const service = this.running();
    service.signal('SIGTERM');
    const { code } = await service.exited;
    if (code !== 0) throw new Error(`instance ${this.name} exited ${code} after SIGTERM:\n${service.output.join('\n')}`);
  }

  /** SIGKILL to the supervisor and its workers at once: the whole instance crashes (OOM, lost node). */
  async kill(): Promise<void> {
    const service = this.running();
    const pids = [service.pid, ...(await childrenOf(service.pid))];
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    await service.exited;
    await waitUntil(() => pids.every((pid) => !isAlive(pid)), `instance ${this.name}'s processes gone`);
  }

  async stop(): Promise<void> {
    await this.service?.stop();
  }

  private running(): ServiceProcess {
    if (!this.service) throw new Error(`instance ${this.name} was never started`);
    return this.service;
  }
}

async function startDatabase(dir: string): Promise<string> {
  const database = await startEmbeddedDatabase({
    dataDir: path.join(dir, 'postgres'),
    port: await freePort(),
    logger: pino({ level: 'warn' }),
    database: 'items',
  });
  cleanups.push(() => database.stop());
  await migrateUp(database.url);
  return database.url;
}

interface Nginx {
  /** Balancing over instance A only. */
  one: string;
  /** Over A and B, with proxy.conf's policy. */
  two: string;
  /** Over A and B, also replaying POSTs without a key that reached a crashed instance. */
  twoReplay: string;
}

async function startNginx(dir: string, portA: number, portB: number): Promise<Nginx> {
  const ports = { PORT_ONE: await freePort(), PORT_TWO: await freePort(), PORT_TWO_REPLAY: await freePort() };
  const values: Record<string, string> = {
    DIR: dir,
    PROXY_CONF: path.resolve('deploy/nginx/proxy.conf'),
    INSTANCE_A: String(portA),
    INSTANCE_B: String(portB),
    ...Object.fromEntries(Object.entries(ports).map(([key, port]) => [key, String(port)])),
  };
  const template = await readFile('deploy/nginx/scale-test.conf.template', 'utf8');
  const config = template.replaceAll(/\{\{(\w+)\}\}/g, (_, key: string) => {
    if (!(key in values)) throw new Error(`scale-test.conf.template: unknown {{${key}}}`);
    return values[key]!;
  });
  const configPath = path.join(dir, 'nginx.conf');
  await writeFile(configPath, config);

  const nginx = spawn('nginx', ['-p', `${dir}/`, '-e', path.join(dir, 'error.log'), '-c', configPath], { stdio: ['ignore', 'inherit', 'inherit'] });
  cleanups.push(() => stopProcess(nginx));
  const urls = {
    one: `http://127.0.0.1:${ports.PORT_ONE}`,
    two: `http://127.0.0.1:${ports.PORT_TWO}`,
    twoReplay: `http://127.0.0.1:${ports.PORT_TWO_REPLAY}`,
  };
  for (const url of Object.values(urls)) {
    await waitUntil(async () => nginx.exitCode === null && (await fetchStatus(`${url}/healthz`)) === 200, `nginx on ${url}`, 10_000);
  }
  return urls;
}

// ---- checks ----

async function checkVisibility(urls: string[]): Promise<void> {
  for (const origin of urls) {
    const response = await fetch(`${origin}/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: `created through ${origin}` }),
    });
    if (response.status !== 201) throw new Error(`POST through ${origin}: ${response.status}`);
    const created = await response.text();
    const { id } = JSON.parse(created) as { id: number };
    for (const reader of urls) {
      const read = await fetch(`${reader}/items/${id}`);
      const body = await read.text();
      if (read.status !== 200 || body !== created) {
        throw new Error(`item ${id} created through ${origin} reads through ${reader} as ${read.status} ${body}`);
      }
    }
  }
}

interface Throughput {
  target: string;
  get: number[];
  post: number[];
}

/** wrk through nginx with one instance and with two, and straight at one instance; interleaved rounds. */
async function measureThroughput(nginx: Nginx, direct: string, sql: postgres.Sql): Promise<Throughput[]> {
  const targets: Throughput[] = [
    { target: 'one instance, no nginx', get: [], post: [] },
    { target: 'nginx → 1 instance', get: [], post: [] },
    { target: 'nginx → 2 instances', get: [], post: [] },
  ];
  const urls = [direct, nginx.one, nginx.two];
  for (let round = 1; round <= WRK.rounds; round++) {
    for (const [index, target] of targets.entries()) {
      target.get.push(await wrk(`${urls[index]}/items?limit=10`));
      target.post.push(await wrk(`${urls[index]}/items`, 'test/deploy/wrk-post.lua'));
    }
    log(`throughput round ${round}/${WRK.rounds} done`);
  }
  // The POST runs stored many rows; GET reads the first 10 regardless, but keep the table small.
  await sql`TRUNCATE items`;
  return targets;
}

/** Requests per second of one wrk run; any error or non-2xx answer fails the run. */
async function wrk(url: string, script?: string): Promise<number> {
  const args = [`-t${WRK.threads}`, `-c${WRK.connections}`, `-d${WRK.seconds}s`, ...(script ? ['-s', script] : []), url];
  const { stdout } = await promisify(execFile)('wrk', args, { timeout: (WRK.seconds + 30) * 1000 });
  const rate = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
  const problems = /(Non-2xx or 3xx responses: \d+|Socket errors: .*)/.exec(stdout);
  if (!rate || problems) throw new Error(`wrk ${args.join(' ')}: ${problems?.[0] ?? 'no rate'}\n${stdout}`);
  return Number(rate[1]);
}

interface Scenario {
  scenario: string;
  url: string;
  load: 'GET' | 'POST' | 'POST with Idempotency-Key';
  stop: () => Promise<void>;
  /**
   * POSTs without a key that nginx sent to the stopped instance and lost are answered 502, never
   * replayed (see proxy.conf): at most one per client. After SIGKILL, those in flight; after
   * SIGTERM, rarely one: a connection that the closing listener still held in its queue is reset.
   */
  mayFail?: boolean;
  /** Only the measurement of replaying every POST may store one twice. */
  mayDuplicate?: boolean;
}

interface Failover {
  scenario: Scenario;
  result: LoadResult;
  failed: number;
  /** POST only: rows stored, and rows stored twice (the same request replayed). */
  stored?: number;
  duplicates?: number;
}

/** Stops instance B under a load through nginx, seven ways, restarting it after each. */
async function checkFailover(nginx: Nginx, b: Instance, sql: postgres.Sql): Promise<Failover[]> {
  const terminate = () => b.terminate();
  const kill = () => b.kill();
  const scenarios: Scenario[] = [
    { scenario: 'GET, SIGTERM', url: nginx.two, load: 'GET', stop: terminate },
    { scenario: 'GET, SIGKILL', url: nginx.two, load: 'GET', stop: kill },
    { scenario: 'POST with Idempotency-Key, SIGTERM', url: nginx.two, load: 'POST with Idempotency-Key', stop: terminate },
    { scenario: 'POST with Idempotency-Key, SIGKILL', url: nginx.two, load: 'POST with Idempotency-Key', stop: kill },
    { scenario: 'POST, SIGTERM', url: nginx.two, load: 'POST', stop: terminate, mayFail: true },
    { scenario: 'POST, SIGKILL', url: nginx.two, load: 'POST', stop: kill, mayFail: true },
    { scenario: 'POST, SIGKILL, every POST replayed', url: nginx.twoReplay, load: 'POST', stop: kill, mayDuplicate: true },
  ];
  const results: Failover[] = [];
  for (const scenario of scenarios) {
    const { url, load: kind, stop } = scenario;
    if (kind !== 'GET') await sql`TRUNCATE items`;
    const load = kind === 'POST with Idempotency-Key'
      ? startKeyedPostLoad(url, LOAD_CLIENTS)
      : startLoad(url, { concurrency: LOAD_CLIENTS, method: kind, path: kind === 'GET' ? '/items?limit=10' : '/items' });
    // Some traffic on both instances, the stop, then enough traffic for the survivor alone.
    await waitUntil(() => load.answered() > 500, 'load before the stop');
    await stop();
    const stoppedAt = load.answered();
    await waitUntil(() => load.answered() > stoppedAt + 500, 'load after the stop');
    const result = await load.stop();
    const failed = result.total - (result.statuses[200] ?? 0) - (result.statuses[201] ?? 0);
    const failover: Failover = { scenario, result, failed };
    if (kind !== 'GET') Object.assign(failover, await checkStored(sql, result));
    results.push(failover);
    log(`failover ${scenario.scenario}: ${result.total} requests, ${failed} failed ${JSON.stringify({ ...result.statuses, ...result.errors })}`);

    await b.start();
    // nginx avoids a failed instance for fail_timeout: wait for it to take traffic again.
    await sleep(NGINX_FAIL_TIMEOUT_MS + 500);
  }
  assertFailovers(results);
  return results;
}

/** Every 201 is stored; counts the rows and the names stored more than once. */
async function checkStored(sql: postgres.Sql, result: LoadResult): Promise<{ stored: number; duplicates: number }> {
  const ids = result.createdIds;
  const [found] = await sql<{ count: string }[]>`SELECT count(*) FROM items WHERE id = ANY(${ids}::bigint[])`;
  if (Number(found!.count) !== ids.length) throw new Error(`${ids.length - Number(found!.count)} items answered 201 are not stored`);
  const [rows] = await sql<{ stored: string; names: string }[]>`SELECT count(*) AS stored, count(DISTINCT name) AS names FROM items`;
  return { stored: Number(rows!.stored), duplicates: Number(rows!.stored) - Number(rows!.names) };
}

function assertFailovers(results: Failover[]): void {
  for (const { scenario, result, failed, stored, duplicates } of results) {
    const { statuses, errors, notAccepted } = result;
    const only502 = Object.keys(errors).length === 0 && notAccepted === 0 &&
      Object.keys(statuses).every((status) => ['200', '201', '502'].includes(status));
    if (failed > (scenario.mayFail ? LOAD_CLIENTS : 0) || !only502) {
      throw new Error(`failover ${scenario.scenario}: ${failed} failed requests: ${JSON.stringify({ statuses, errors, notAccepted })}`);
    }
    if (duplicates && !scenario.mayDuplicate) throw new Error(`failover ${scenario.scenario}: ${duplicates} POSTs stored twice`);
    // With a key, each request is stored exactly once, whichever instance answered it.
    if (scenario.load === 'POST with Idempotency-Key' && stored !== statuses[201]) {
      throw new Error(`failover ${scenario.scenario}: ${stored} rows stored for ${statuses[201]} answers 201`);
    }
  }
}

/**
 * startLoad's POST, but each request carries an Idempotency-Key of its own (also its name), as a
 * client that retries safely would send.
 */
function startKeyedPostLoad(baseUrl: string, concurrency: number): RunningLoad {
  const result: LoadResult = { statuses: {}, errors: {}, notAccepted: 0, createdIds: [], total: 0 };
  const run = randomBytes(4).toString('hex');
  let running = true;

  async function client(index: number): Promise<void> {
    for (let sequence = 0; running; sequence++) {
      const key = `scale-${run}-${index}.${sequence}`;
      try {
        const response = await fetch(`${baseUrl}/items`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': key },
          body: JSON.stringify({ name: key }),
        });
        const body = await response.text();
        result.statuses[response.status] = (result.statuses[response.status] ?? 0) + 1;
        if (response.status === 201) result.createdIds.push((JSON.parse(body) as { id: number }).id);
      } catch (error) {
        const code = ((error as Error).cause as NodeJS.ErrnoException | undefined)?.code ?? (error as Error).name;
        result.errors[code] = (result.errors[code] ?? 0) + 1;
      }
      result.total++;
    }
  }

  const clients = Array.from({ length: concurrency }, (_, index) => client(index));
  return {
    answered: () => result.total,
    async stop() {
      running = false;
      await Promise.all(clients);
      return result;
    },
  };
}

// ---- report ----

function printReport(throughput: Throughput[], failovers: Failover[]): void {
  const median = (values: number[]) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)]!;
  const [direct, one, two] = throughput.map((target) => ({ ...target, get: median(target.get), post: median(target.post) }));
  const row = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  const rate = (value: number) => `${Math.round(value).toLocaleString('en-US')} req/s`;
  console.log(`\nThroughput: wrk -t${WRK.threads} -c${WRK.connections} -d${WRK.seconds}s, median of ${WRK.rounds} interleaved rounds; each instance one worker; all on this machine's cores.\n`);
  console.log(row(['', direct!.target, one!.target, two!.target, '2 instances / 1']));
  console.log(row(['---', '---', '---', '---', '---']));
  console.log(row(['GET /items?limit=10', rate(direct!.get), rate(one!.get), rate(two!.get), `${(two!.get / one!.get).toFixed(2)}×`]));
  console.log(row(['POST /items', rate(direct!.post), rate(one!.post), rate(two!.post), `${(two!.post / one!.post).toFixed(2)}×`]));
  console.log(`\nFailover: ${LOAD_CLIENTS} keep-alive clients through nginx, instance B stopped mid-load, then restarted.\n`);
  console.log(row(['load, signal to B', 'requests', 'failed at nginx', 'answered 201', 'rows stored', 'stored twice']));
  console.log(row(['---', '---', '---', '---', '---', '---']));
  for (const { scenario, result, failed, stored, duplicates } of failovers) {
    console.log(row([scenario.scenario, result.total, failed, result.statuses[201] ?? '–', stored ?? '–', duplicates ?? '–']));
  }
  console.log('\ntest:scale: PASS');
}

// ---- helpers ----

function log(message: string): void {
  console.log(`[${new Date().toISOString().slice(11, 19)}] ${message}`);
}

/** Installs the Debian packages whose command is missing (as root), or says what to install. */
function ensureCommands(packages: Record<string, string>): void {
  const missing = Object.entries(packages)
    .filter(([command]) => spawnSync('sh', ['-c', `command -v ${command}`]).status !== 0)
    .map(([, name]) => name);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) throw new Error(`install ${missing.join(' ')} (apt-get install) and run again`);
  log(`installing ${missing.join(' ')} from Debian`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: 'inherit', env });
}

async function fetchStatus(url: string): Promise<number> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await response.arrayBuffer();
    return response.status;
  } catch {
    return 0;
  }
}

/** The pids whose parent is `pid` (Linux /proc). */
async function childrenOf(pid: number): Promise<number[]> {
  const children: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // The fields after the command name (which may hold spaces) in parentheses: state, ppid, …
    const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (parent === pid) children.push(Number(entry));
  }
  return children;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await once(child, 'exit');
  clearTimeout(timer);
}

async function cleanUp(): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) {
    await cleanup().catch((error: unknown) => console.error('cleanup:', error));
  }
}

const deadline = setTimeout(() => {
  console.error(`test:scale: FAIL: not finished within ${DEADLINE_MS / 60_000} minutes`);
  void cleanUp().finally(() => process.exit(1));
}, DEADLINE_MS);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void cleanUp().finally(() => process.exit(130)));
}

main()
  .then(async () => {
    await cleanUp();
    clearTimeout(deadline);
  })
  .catch(async (error: unknown) => {
    console.error('test:scale: FAIL:', error instanceof Error ? error.message : error);
    await cleanUp();
    clearTimeout(deadline);
    process.exitCode = 1;
  });
