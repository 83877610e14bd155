import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startLoad, waitUntil, type LoadResult } from '../helpers/load.js';
import { freePort } from '../helpers/ports.js';
import { killWorkerWhileSupervisorPaused, processState, ServiceProcess } from '../helpers/service-process.js';

/**
 * The supervisor as production runs it: a real primary forking real workers, on a real PostgreSQL,
 * under a concurrent HTTP load generated here, signalled by pid.
 */

let database: TestDatabase;
let sql: postgres.Sql;
const running: ServiceProcess[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((service) => service.stop()));
});

afterAll(async () => {
  await sql?.end();
  await database?.drop();
});

interface Started {
  service: ServiceProcess;
  baseUrl: string;
}

/**
 * Load shedding is off (no 503 for event-loop delay or database queue time): these tests count
 * failed requests, and on a busy shared machine a worker's loop lags past 1 s (a recycle test
 * got a 503 in a full run), which is the shedding working, not the supervisor failing.
 */
async function startSupervisor(env: Record<string, string> = {}, preload: string[] = [], groupLeader = false): Promise<Started> {
  const port = await freePort();
  const service = new ServiceProcess(
    {
      DATABASE_URL: database.url,
      HOST: '127.0.0.1',
      PORT: String(port),
      WEB_CONCURRENCY: '2',
      DB_POOL_MAX: '5',
      MAX_EVENT_LOOP_DELAY_MS: '0',
      DB_QUEUE_TIMEOUT_MS: '30000',
      ...env,
    },
    { preload, groupLeader },
  );
  running.push(service);
  await service.waitForEvent('worker-listening', Number(env['WEB_CONCURRENCY'] ?? 2));
  return { service, baseUrl: `http://127.0.0.1:${port}` };
}

/** The pids of the workers serving now (listening, and not exited since), oldest first. */
function liveWorkers(service: ServiceProcess): number[] {
  const pids = (kind: string) => new Set(service.events(kind).map((event) => event['workerPid'] as number));
  const listening = pids('worker-listening');
  const exited = pids('worker-exited');
  return [...pids('worker-started')].filter((pid) => listening.has(pid) && !exited.has(pid));
}

function failures(result: LoadResult): number {
  const errors = Object.values(result.errors).reduce((sum, count) => sum + count, result.notAccepted);
  const unsuccessful = Object.entries(result.statuses)
    .filter(([status]) => Number(status) >= 300)
    .reduce((sum, [, count]) => sum + count, 0);
  return errors + unsuccessful;
}

/**
 * Holds an ACCESS EXCLUSIVE lock on the items table: every POST /items waits for it, so a
 * request stays in flight, on purpose, until `release`.
 */
async function lockItems(): Promise<{ release: () => Promise<void> }> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  const transaction = sql.begin(async (tx) => {
    await tx`LOCK TABLE items IN ACCESS EXCLUSIVE MODE`;
    locked();
    await released;
  });
  await Promise.race([isLocked, transaction]);
  return {
    release: async () => {
      release();
      await transaction;
    },
  };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
}

/** A POST /items on `agent`'s connection; resolves with the answer, or the error's code. */
function post(baseUrl: string, agent: Agent | false): Promise<Answer | { error: string }> {
  return sentPost(baseUrl, agent).answer;
}

/** A POST /items; `sent` resolves once the whole request is in the kernel (its connection established). */
function sentPost(baseUrl: string, agent: Agent | false): { sent: Promise<void>; answer: Promise<Answer | { error: string }> } {
  let outgoing!: ReturnType<typeof request>;
  const answer = new Promise<Answer | { error: string }>((resolve) => {
    outgoing = request(`${baseUrl}/items`, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (response) => {
      response.resume();
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers }));
    });
    outgoing.on('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }));
    outgoing.end(JSON.stringify({ name: 'in flight' }));
  });
  const sent = new Promise<void>((resolve, reject) => {
    outgoing.on('finish', resolve);
    outgoing.on('error', reject);
  });
  return { sent, answer };
}

/** Each answer's status, or its error's code when it got none. */
function statusesOrErrors(answers: (Answer | { error: string })[]): (number | string)[] {
  return answers.map((answer) => ('status' in answer ? answer.status : answer.error));
}

/** Ten POSTs, each on a new connection; resolves once every request is sent. */
async function tenSentPosts(baseUrl: string): Promise<Promise<Answer | { error: string }>[]> {
  const posts = Array.from({ length: 10 }, () => sentPost(baseUrl, false));
  await Promise.all(posts.map(({ sent }) => sent));
  return posts.map(({ answer }) => answer);
}

/**
 * Under a stream of new connections, a stop loses none the supervisor accepted: each got its
 * answer. A client may still see a reset of a connection that its kernel completed in the instant
 * the listening socket closed (the kernel resets what waits in its queue then, as for any server):
 * never accepted, that request was never read, and the exact count shows none was lost otherwise.
 */
function expectEveryAcceptedConnectionAnswered(service: ServiceProcess, result: LoadResult): void {
  const [closed] = service.events('listening-socket-closed');
  expect(closed).toMatchObject({ waiting: expect.any(Number) });
  expect(Object.keys(result.statuses)).toEqual(['201']);
  expect(result.statuses[201]).toBe(closed!['acceptedConnections']);
  for (const failure of Object.keys(result.errors)) expect(failure).toMatch(/^(ECONNRESET|EPIPE)\b/);
  // 1–6 measured in 4 of 30 stops; a drain that left the kernel's queue unread would reset most of
  // the 50 clients' connections.
  expect(Object.values(result.errors).reduce((sum, count) => sum + count, 0)).toBeLessThanOrEqual(15);
}

/** Fixtures that keep the supervisor busy on SIGTERM until released, and report what workers send it. */
const HOLD_FIXTURES = ['./test/fixtures/busy-supervisor-on-sigterm.ts', './test/fixtures/report-messages-to-supervisor.ts'];

/** The file that releases a supervisor held by busy-supervisor-on-sigterm.ts, once it exists. */
async function supervisorHold(): Promise<{ file: string; release: () => Promise<void> }> {
  const directory = await mkdtemp(path.join(tmpdir(), 'supervisor-hold-'));
  const file = path.join(directory, 'release');
  onTestFinished(() => rm(directory, { recursive: true, force: true }));
  return { file, release: () => writeFile(file, '') };
}

/** Waits until PostgreSQL shows a statement waiting for the lock on items (the only lock a test takes). */
async function waitForBlockedInsert(): Promise<void> {
  await waitUntil(async () => {
    const [row] = await sql<{ count: number }[]>`
      SELECT count(*)::int AS count FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event_type = 'Lock'`;
    return row!.count > 0;
  }, 'a POST blocked by the lock');
}

/** A GET on `agent`'s connection; resolves with the status and body, or the error's code. */
function get(baseUrl: string, path: string, agent: Agent | false): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    request(`${baseUrl}${path}`, { agent }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    })
      .on('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }))
      .end();
  });
}

/** Rejects, with the service's output, once it exits: raced against what a test waits for. */
function failOnExit(service: ServiceProcess): Promise<never> {
  return service.exited.then((exit) => {
    throw new Error(`the service exited (${JSON.stringify(exit)}):\n${service.output.join('\n')}`);
  });
}

/**
 * Waits until every one of `pids` has exited (gone, or a zombie that nobody reaps): workers
 * orphaned by their supervisor's death, whose exit codes no process here can read.
 */
async function waitUntilExited(pids: number[]): Promise<void> {
  await waitUntil(async () => (await Promise.all(pids.map(processState))).every((state) => state === undefined || state === 'Z'), `workers ${pids.join(', ')} to exit`);
}

/** SIGKILLs whichever of `pids` still runs: a test's orphaned workers, when it failed. */
function killRemaining(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Exited already.
    }
  }
}

/** The workers' fatal lines: an uncaught exception or rejection. */
function workerCrashes(service: ServiceProcess): string[] {
  return service.output.filter((line) => line.includes('"worker crashed'));
}

async function storedIds(ids: number[]): Promise<number> {
  const [row] = await sql<{ count: number }[]>`SELECT count(*)::int AS count FROM items WHERE id = ANY(${ids})`;
  return row!.count;
}

describe('the supervisor', () => {
  it('replaces a worker killed with SIGKILL under load within a second, while the others keep serving', async () => {
    const { service, baseUrl } = await startSupervisor();
    const load = startLoad(baseUrl, { concurrency: 20, method: 'POST', path: '/items' });
    await waitUntil(() => load.answered() > 200, 'load to flow');

    const [victim, survivor] = liveWorkers(service);
    process.kill(victim!, 'SIGKILL');
    const [replaced] = await service.waitForEvent('worker-replaced');
    const [exit] = service.events('worker-exited');
    const replacementListening = (await service.waitForEvent('worker-listening', 3)).at(-1)!;
    const answeredAtReplacement = load.answered();
    await waitUntil(() => load.answered() > answeredAtReplacement + 200, 'load after the replacement');
    const result = await load.stop();

    expect(exit).toMatchObject({ workerPid: victim, signal: 'SIGKILL', expected: false });
    expect(replaced).toMatchObject({ workerPid: victim });
    // Forked at once; listening includes booting a fresh Node.js process on a busy 2-core machine.
    expect(replaced!.time - exit!.time).toBeLessThan(1_000);
    console.info(
      `worker replacement: forked ${replaced!.time - exit!.time} ms after the kill, listening after ` +
        `${replacementListening.time - exit!.time} ms; ${result.total} requests, ${failures(result)} failed`,
    );
    expect(liveWorkers(service)).toContain(survivor);
    expect(liveWorkers(service)).toHaveLength(2);
    // Only requests in flight on the killed worker's connections can fail: at most one per client.
    expect(failures(result)).toBeLessThanOrEqual(20);
    expect(result.statuses[201]).toBeGreaterThan(400);
    // Every 201 is a committed row.
    expect(await storedIds(result.createdIds)).toBe(result.createdIds.length);
  }, 60_000);

  it('gives a connection it was handing to a worker that died to another worker: none is left unanswered', async () => {
    const { service, baseUrl } = await startSupervisor();
    // A new connection for every request: each one is handed out by the supervisor.
    const load = startLoad(baseUrl, { concurrency: 20, freshConnections: true, requestTimeoutMs: 5_000 });
    await waitUntil(() => load.answered() > 200, 'load to flow');

    for (let kill = 1; kill <= 3; kill++) {
      const [victim] = liveWorkers(service);
      // Stopped, the supervisor learns nothing of the death while connections queue for it; once
      // it runs again it accepts them before it reads that the worker is gone, and hands some of
      // them to the dead worker.
      await killWorkerWhileSupervisorPaused(service, victim!);
      await service.waitForEvent('worker-listening', 2 + kill);
    }
    const result = await load.stop();

    // Only the requests in flight on the killed workers' own connections fail, reset; none waits
    // for an answer that never comes.
    expect(result.statuses[200]).toBeGreaterThan(200);
    expect(Object.keys(result.statuses)).toEqual(['200']);
    for (const failure of Object.keys(result.errors)) expect(failure).toMatch(/^ECONNRESET /);
    expect(failures(result)).toBeLessThanOrEqual(3 * 20);
  }, 90_000);

  it("cuts a client that trickles its headers, in a worker as in one process: the headers timeout holds for handed-out connections", async () => {
    const { baseUrl } = await startSupervisor();
    const socket = connect(Number(new URL(baseUrl).port), '127.0.0.1');
    let received = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
    socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ');
    const trickle = setInterval(() => socket.write('a'), 200);
    const startedAt = Date.now();
    try {
      // The app's headers timeout is 10 s, checked every second.
      await waitUntil(() => socket.readableEnded || socket.destroyed, 'the service to close the connection', 20_000);
    } finally {
      clearInterval(trickle);
      socket.destroy();
    }
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(9_000);
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
  }, 40_000);

  it('kills and replaces a worker whose event loop is blocked for longer than --timeout', async () => {
    const { service, baseUrl } = await startSupervisor({ WORKER_TIMEOUT: '1.5' }, ['./test/fixtures/busy-loop-on-sigusr2.ts']);
    const [stuck] = liveWorkers(service);
    const blockedAt = Date.now();
    process.kill(stuck!, 'SIGUSR2');

    const [hung] = await service.waitForEvent('worker-hung');
    expect(hung).toMatchObject({ workerPid: stuck });
    // Killed only after --timeout of silence, which began at most one heartbeat (375 ms) before it blocked.
    expect(hung!['silentForMs']).toBeGreaterThan(1_500);
    expect(hung!.time - blockedAt).toBeGreaterThanOrEqual(1_500 - 375);
    expect(hung!.time - blockedAt).toBeLessThan(4_000);
    await service.waitForEvent('worker-replaced');
    await service.waitForEvent('worker-listening', 3);
    expect(liveWorkers(service)).not.toContain(stuck);
    expect(liveWorkers(service)).toHaveLength(2);
    expect((await fetch(`${baseUrl}/healthz`)).status).toBe(200);
  });

  it('keeps serving new connections while a worker is stuck: the stuck one holds one connection, not a share of them', async () => {
    const { service, baseUrl } = await startSupervisor({ WORKER_TIMEOUT: '6' }, ['./test/fixtures/busy-loop-on-sigusr2.ts']);
    const load = startLoad(baseUrl, { concurrency: 20, freshConnections: true, requestTimeoutMs: 15_000 });
    await waitUntil(() => load.answered() > 200, 'load to flow');
    const [stuck] = liveWorkers(service);
    process.kill(stuck!, 'SIGUSR2');
    // Let the stuck worker's missing answers show, then count what the other one serves.
    await sleep(500);
    const answeredBefore = load.answered();
    await sleep(2_000);
    const answeredWhileStuck = load.answered() - answeredBefore;
    await service.waitForEvent('worker-hung');
    const result = await load.stop();

    console.info(`while a worker was stuck: ${answeredWhileStuck} requests answered in 2 s`);
    // One worker serves on new connections at hundreds a second; handing every other connection
    // to the stuck worker would leave all 20 clients waiting on it within a few requests.
    expect(answeredWhileStuck).toBeGreaterThan(200);
    // What the stuck worker had taken fails when it is killed: at most one connection per client.
    expect(failures(result)).toBeLessThanOrEqual(20);
  }, 60_000);

  it('replaces, then drains, a worker that gets SIGTERM itself: no request fails', async () => {
    const { service, baseUrl } = await startSupervisor();
    const load = startLoad(baseUrl, { concurrency: 20, freshConnections: true, requestTimeoutMs: 10_000 });
    await waitUntil(() => load.answered() > 200, 'load to flow');
    const [stopping] = liveWorkers(service);
    // As `kill <pid>` or a service manager signalling every process would.
    process.kill(stopping!, 'SIGTERM');
    await service.waitForEvent('worker-exited');
    await service.waitForEvent('worker-listening', 3);
    const answeredAfter = load.answered();
    await waitUntil(() => load.answered() > answeredAfter + 200, 'load after the replacement');
    const result = await load.stop();

    expect(service.events('worker-exited')).toMatchObject([{ workerPid: stopping, code: 0 }]);
    expect(Object.keys(result.statuses)).toEqual(['200']);
    expect(failures(result)).toBe(0);
  }, 60_000);

  it('reloads every worker on SIGHUP under load with zero failed requests', async () => {
    const { service, baseUrl } = await startSupervisor();
    const before = liveWorkers(service);
    const load = startLoad(baseUrl, { concurrency: 20, method: 'POST', path: '/items' });
    await waitUntil(() => load.answered() > 200, 'load to flow');

    service.signal('SIGHUP');
    const [ended] = await service.waitForEvent('reload-ended');
    const answeredAtEnd = load.answered();
    await waitUntil(() => load.answered() > answeredAtEnd + 200, 'load after the reload');
    const result = await load.stop();

    expect(ended).toMatchObject({ replaced: 2 });
    const after = liveWorkers(service);
    expect(after).toHaveLength(2);
    expect(after.filter((pid) => before.includes(pid))).toEqual([]);
    console.info(`SIGHUP under load: ${result.total} requests, ${failures(result)} failed`, result.statuses, result.errors);
    expect(result.errors).toEqual({});
    expect(result.notAccepted).toBe(0);
    expect(Object.keys(result.statuses)).toEqual(['201']);
    expect(await storedIds(result.createdIds)).toBe(result.createdIds.length);
  }, 60_000);

  it('answers every in-flight request on SIGTERM under load, then exits 0', async () => {
    const { service, baseUrl } = await startSupervisor();
    const load = startLoad(baseUrl, { concurrency: 20, method: 'POST', path: '/items' });
    await waitUntil(() => load.answered() > 200, 'load to flow');

    service.signal('SIGTERM');
    const exit = await service.exited;
    const result = await load.stop();

    expect(exit).toEqual({ code: 0, signal: null });
    expect(service.events('worker-exited').map((event) => event['code'])).toEqual([0, 0]);
    console.info(`SIGTERM under load: ${result.total} requests, ${result.notAccepted} not accepted`, result.statuses, result.errors);
    // Once the listener closes, new connections are refused: those requests were never accepted.
    // A reset or hang-up on an established connection, or a 5xx, would be a request left unanswered.
    expect(result.errors).toEqual({});
    expect(Object.keys(result.statuses)).toEqual(['201']);
    expect(await storedIds(result.createdIds)).toBe(result.createdIds.length);
  }, 60_000);

  it('refuses new connections cleanly on SIGTERM under a load of fresh connections: every connection it accepted is answered', async () => {
    const { service, baseUrl } = await startSupervisor();
    const load = startLoad(baseUrl, { concurrency: 50, method: 'POST', path: '/items', freshConnections: true });
    await waitUntil(() => load.answered() > 300, 'load to flow');

    service.signal('SIGTERM');
    const exit = await service.exited;
    const result = await load.stop();

    expect(exit).toEqual({ code: 0, signal: null });
    console.info(`SIGTERM under fresh connections: ${result.total} requests, ${result.notAccepted} refused`, result.statuses, result.errors);
    // Refused before connecting (ECONNREFUSED) is fine; an accepted connection left unanswered is not.
    expectEveryAcceptedConnectionAnswered(service, result);
    expect(await storedIds(result.createdIds)).toBe(result.createdIds.length);
  }, 60_000);

  it('stops as cleanly when SIGTERM reaches every process at once, as a service manager sends it: every connection it accepted is answered', async () => {
    const { service, baseUrl } = await startSupervisor({}, [], true);
    const load = startLoad(baseUrl, { concurrency: 50, method: 'POST', path: '/items', freshConnections: true });
    await waitUntil(() => load.answered() > 300, 'load to flow');

    service.signalGroup('SIGTERM');
    const exit = await service.exited;
    const result = await load.stop();

    expect(exit).toEqual({ code: 0, signal: null });
    console.info(`SIGTERM to the group under fresh connections: ${result.total} requests, ${result.notAccepted} refused`, result.statuses, result.errors);
    expectEveryAcceptedConnectionAnswered(service, result);
    expect(await storedIds(result.createdIds)).toBe(result.createdIds.length);
  }, 60_000);

  it('hands every connection it accepted to the workers before they stop, when they got SIGTERM too and asked it for a stop', async () => {
    const hold = await supervisorHold();
    const { service, baseUrl } = await startSupervisor({ FIXTURE_RELEASE_FILE: hold.file }, HOLD_FIXTURES);
    // As a service manager signals every process: the supervisor begins its stop, and only then
    // reads the workers' requests to stop and these connections, together.
    service.signal('SIGTERM');
    await service.waitForEvent('fixture-busy');
    for (const pid of liveWorkers(service)) process.kill(pid, 'SIGTERM');
    await waitUntil(() => service.events('fixture-sent').filter((event) => event['type'] === 'stop-requested').length === 2, 'both stop requests sent');
    const posts = await tenSentPosts(baseUrl);
    await hold.release();

    const answers = await Promise.all(posts);
    expect(statusesOrErrors(answers)).toEqual(Array(10).fill(201));
    expect(await service.exited).toEqual({ code: 0, signal: null });
    expect(service.events('worker-stop-requested')).toMatchObject([{ deferred: true }, { deferred: true }]);
  });

  it('keeps handing connections to the worker a recycle was replacing when a stop begins, even once the new worker serves', async () => {
    const hold = await supervisorHold();
    const { service, baseUrl } = await startSupervisor({ WEB_CONCURRENCY: '1', FIXTURE_RELEASE_FILE: hold.file }, HOLD_FIXTURES);
    service.signal('SIGHUP');
    const [, replacement] = await service.waitForEvent('worker-started', 2);
    service.signal('SIGTERM');
    await service.waitForEvent('fixture-busy');
    // The new worker's 'serving' waits in the channel, read with the connections after the stop began.
    await waitUntil(() => service.events('fixture-sent').some((event) => event['type'] === 'serving' && event['workerPid'] === replacement!['workerPid']), 'the new worker serving');
    const posts = await tenSentPosts(baseUrl);
    await hold.release();

    const answers = await Promise.all(posts);
    expect(statusesOrErrors(answers)).toEqual(Array(10).fill(201));
    expect(await service.exited).toEqual({ code: 0, signal: null });
    expect(service.events('replace-aborted')).toEqual([]);
  });

  it('answers on SIGTERM the connections the supervisor had accepted but not yet handed to a worker', async () => {
    const { service, baseUrl } = await startSupervisor({}, ['./test/fixtures/pause-on-sigwinch.ts']);
    // Both workers busy: the supervisor accepts the next connections and queues them.
    for (const pid of liveWorkers(service)) process.kill(pid, 'SIGWINCH');
    await service.waitForEvent('fixture-paused', 2);
    const posts = await tenSentPosts(baseUrl);
    service.signal('SIGTERM');

    const answers = await Promise.all(posts);
    expect(statusesOrErrors(answers)).toEqual(Array(10).fill(201));
    expect(await service.exited).toEqual({ code: 0, signal: null });
  });

  it('answers on SIGTERM the connections still waiting in the kernel’s accept queue', async () => {
    const { service, baseUrl } = await startSupervisor();
    // The supervisor stopped: the kernel completes the handshakes and queues the connections,
    // the clients send their requests, and SIGTERM is the first thing the supervisor sees again.
    service.signal('SIGSTOP');
    const posts = await tenSentPosts(baseUrl);
    service.signal('SIGTERM');
    service.signal('SIGCONT');

    const answers = await Promise.all(posts);
    expect(statusesOrErrors(answers)).toEqual(Array(10).fill(201));
    expect(await service.exited).toEqual({ code: 0, signal: null });
  });

  it('answers with Connection: close while a worker drains', async () => {
    const { service, baseUrl } = await startSupervisor({ GRACEFUL_TIMEOUT: '60', DB_STATEMENT_TIMEOUT_MS: '60000' });
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
    const lock = await lockItems();
    try {
      const inFlight = post(baseUrl, keepAlive);
      await waitForBlockedInsert();
      service.signal('SIGTERM');
      await service.waitForEvent('worker-draining', 2);
      await lock.release();
      const answer = await inFlight;
      expect(answer).toMatchObject({ status: 201, headers: { connection: 'close' } });
      expect(await service.exited).toEqual({ code: 0, signal: null });
    } finally {
      await lock.release();
      keepAlive.destroy();
    }
  }, 60_000);

  it.each([
    { name: 'SIGQUIT', second: (service: ServiceProcess) => service.signal('SIGQUIT') },
    { name: 'a second SIGTERM', second: (service: ServiceProcess) => service.signal('SIGTERM') },
    { name: 'a second Ctrl-C', second: (service: ServiceProcess) => service.signalGroup('SIGINT') },
  ])('stops at once on $name during a graceful stop that waits for a request', async ({ name, second }) => {
    const ctrlC = name === 'a second Ctrl-C';
    const { service, baseUrl } = await startSupervisor({ GRACEFUL_TIMEOUT: '60', DB_STATEMENT_TIMEOUT_MS: '60000' }, [], ctrlC);
    const lock = await lockItems();
    try {
      const inFlight = post(baseUrl, false);
      await waitForBlockedInsert();
      if (ctrlC) service.signalGroup('SIGINT');
      else service.signal('SIGTERM');
      await service.waitForEvent('supervisor-stopping');
      await service.waitForEvent('worker-draining');
      second(service);
      // The drain would wait up to 60 s for the locked request.
      const exit = await Promise.race([service.exited, sleep(10_000).then(() => 'still running after 10 s')]);
      expect(exit).toEqual({ code: 0, signal: null });
      expect(service.events('stop-hastened')).toHaveLength(1);
      // The worker with the locked request is killed; the idle one may have finished its drain first.
      const exits = service.events('worker-exited').map((event) => event['signal'] ?? `code ${String(event['code'])}`);
      expect(exits).toContain('SIGKILL');
      expect(exits.every((exit) => exit === 'SIGKILL' || exit === 'code 0')).toBe(true);
      expect(await inFlight).toMatchObject({ error: expect.any(String) as string });
    } finally {
      await lock.release();
    }
  }, 60_000);

  it('replaces every worker on SIGHUP, also when one of them dies during the reload', async () => {
    const { service } = await startSupervisor({ WEB_CONCURRENCY: '3' });
    const before = liveWorkers(service);
    expect(before).toHaveLength(3);

    service.signal('SIGHUP');
    // The first new worker is booting: the second old one dies before its turn.
    await service.waitForEvent('worker-started', 4);
    process.kill(before[1]!, 'SIGKILL');
    const [ended] = await service.waitForEvent('reload-ended', 1, 60_000);
    expect(ended).toMatchObject({ replaced: 2, exited: [before[1]], notReplaced: [] });
    await waitUntil(() => liveWorkers(service).length === 3, 'three workers listening');

    expect(service.events('worker-replaced')).toMatchObject([{ workerPid: before[1] }]);
    const after = liveWorkers(service);
    expect(after.filter((pid) => before.includes(pid))).toEqual([]);
  }, 90_000);

  it('stops a reload whose new worker cannot start, and keeps the old workers serving', async () => {
    const marker = path.join(await mkdtemp(path.join(tmpdir(), 'supervisor-test-')), 'broken-build');
    try {
      const { service, baseUrl } = await startSupervisor({ FAIL_BOOT_WHEN: marker }, ['./test/fixtures/fail-boot-when-file-exists.ts']);
      const before = liveWorkers(service);
      await writeFile(marker, '');

      service.signal('SIGHUP');
      const [ended] = await service.waitForEvent('reload-ended');
      expect(service.events('reload-aborted')).toHaveLength(1);
      expect(ended).toMatchObject({ replaced: 0, exited: [], notReplaced: before });
      expect(liveWorkers(service)).toEqual(before);
      expect((await fetch(`${baseUrl}/healthz`)).status).toBe(200);
    } finally {
      await rm(path.dirname(marker), { recursive: true, force: true });
    }
  });

  it('keeps serving through reload after reload whose new workers cannot start, then stops with exit 0', async () => {
    const marker = path.join(await mkdtemp(path.join(tmpdir(), 'supervisor-test-')), 'broken-build');
    try {
      const { service, baseUrl } = await startSupervisor({ FAIL_BOOT_WHEN: marker }, ['./test/fixtures/fail-boot-when-file-exists.ts']);
      const before = liveWorkers(service);
      await writeFile(marker, '');

      // More aborted reloads than the boot failures in a row that make a crash loop.
      const exited = failOnExit(service);
      for (let reload = 1; reload <= 6; reload++) {
        service.signal('SIGHUP');
        await Promise.race([service.waitForEvent('reload-ended', reload), exited]);
      }
      expect(service.events('reload-aborted')).toHaveLength(6);
      expect(service.events('crash-loop')).toEqual([]);
      expect(liveWorkers(service)).toEqual(before);
      expect((await fetch(`${baseUrl}/healthz`)).status).toBe(200);

      service.signal('SIGTERM');
      expect(await service.exited).toEqual({ code: 0, signal: null });
    } finally {
      await rm(path.dirname(marker), { recursive: true, force: true });
    }
  }, 90_000);

  it('kills no worker after Ctrl-Z then fg: the whole process group stopped for longer than --timeout', async () => {
    const { service, baseUrl } = await startSupervisor({ WORKER_TIMEOUT: '2' }, [], true);
    const workers = liveWorkers(service);

    // Ctrl-Z stops the terminal's foreground group (SIGTSTP): the supervisor and its workers alike.
    // This group has no terminal, and the kernel discards SIGTSTP for it: SIGSTOP stops it the same way.
    service.signalGroup('SIGSTOP');
    await sleep(4_000);
    service.signalGroup('SIGCONT');
    // Its watchdog (every 500 ms) runs many times while a third worker boots.
    service.signal('SIGTTIN');
    await service.waitForEvent('worker-listening', 3);

    expect(service.events('worker-hung')).toEqual([]);
    expect(service.events('worker-exited')).toEqual([]);
    expect(liveWorkers(service).slice(0, 2)).toEqual(workers);
    for (let attempt = 0; attempt < 4; attempt++) expect(await get(baseUrl, '/healthz', false)).toMatchObject({ status: 200 });
  }, 60_000);

  it('kills no worker after the supervisor itself was paused for longer than --timeout, and still kills a hung one', async () => {
    const { service } = await startSupervisor({ WORKER_TIMEOUT: '1' }, ['./test/fixtures/busy-loop-on-sigusr2.ts']);
    const workers = liveWorkers(service);

    service.signal('SIGSTOP');
    await sleep(2_500);
    service.signal('SIGCONT');
    // Its watchdog runs many times while a third worker boots.
    service.signal('SIGTTIN');
    await service.waitForEvent('worker-listening', 3);
    expect(service.events('worker-hung')).toEqual([]);
    expect(service.events('worker-exited')).toEqual([]);

    process.kill(workers[0]!, 'SIGUSR2');
    const [hung] = await service.waitForEvent('worker-hung');
    expect(hung).toMatchObject({ workerPid: workers[0] });
    await service.waitForEvent('worker-exited');
    expect(service.events('worker-exited').map((event) => event['workerPid'])).toEqual([workers[0]]);
  }, 60_000);

  it('adds a worker on SIGTTIN and retires one on SIGTTOU', async () => {
    const { service } = await startSupervisor();
    service.signal('SIGTTIN');
    await service.waitForEvent('worker-listening', 3);
    expect(liveWorkers(service)).toHaveLength(3);

    const oldest = liveWorkers(service)[0];
    service.signal('SIGTTOU');
    await service.waitForEvent('worker-exited');
    expect(service.events('worker-exited')[0]).toMatchObject({ workerPid: oldest, code: 0, expected: true });
    expect(liveWorkers(service)).toHaveLength(2);
    expect(service.events('scaled').map((event) => event['workers'])).toEqual([3, 2]);
  });

  it('retires a worker on a SIGTTOU that comes during a reload, once the reload is over', async () => {
    const { service } = await startSupervisor();
    const before = liveWorkers(service);
    service.signal('SIGHUP');
    // The first new worker is booting: the oldest worker, which it replaces, still serves.
    await service.waitForEvent('worker-started', 3);
    service.signal('SIGTTOU');

    const [ended] = await service.waitForEvent('reload-ended');
    expect(ended).toMatchObject({ replaced: 2, notReplaced: [] });
    // Both old workers, then one of the new ones.
    const exits = await service.waitForEvent('worker-exited', 3, 15_000);
    expect(exits.every((exit) => exit['expected'] === true && exit['code'] === 0)).toBe(true);
    expect(service.events('scaled').map((event) => event['workers'])).toEqual([1]);
    const after = liveWorkers(service);
    expect(after).toHaveLength(1);
    expect(before).not.toContain(after[0]);
  }, 60_000);

  it('recycles workers after --max-requests without failing a request', async () => {
    const { service, baseUrl } = await startSupervisor({ MAX_REQUESTS: '150', MAX_REQUESTS_JITTER: '50' });
    const load = startLoad(baseUrl, { concurrency: 10 });
    await service.waitForEvent('worker-recycling', 2);
    await service.waitForEvent('worker-exited', 2);
    const result = await load.stop();

    expect(service.events('worker-exited').every((event) => event['expected'] === true && event['code'] === 0)).toBe(true);
    expect(result.errors).toEqual({});
    expect(result.notAccepted).toBe(0);
    expect(Object.keys(result.statuses)).toEqual(['200']);
  }, 60_000);

  it('lets its workers drain and exit 0 when it is killed, also a worker that reaches --max-requests meanwhile', async () => {
    const { service, baseUrl } = await startSupervisor({ MAX_REQUESTS: '1', MAX_REQUESTS_JITTER: '0', GRACEFUL_TIMEOUT: '60', DB_STATEMENT_TIMEOUT_MS: '60000' });
    const workers = liveWorkers(service);
    const lock = await lockItems();
    try {
      // The first request of its worker: answering it reaches --max-requests.
      const inFlight = post(baseUrl, false);
      await waitForBlockedInsert();
      service.signal('SIGKILL');
      await service.exited;
      // Both workers noticed (or are gone, having dropped the request): then the request ends.
      await Promise.race([service.waitForEvent('worker-draining', 2), waitUntilExited(workers)]);
      await lock.release();

      expect(await inFlight).toMatchObject({ status: 201 });
      await waitUntilExited(workers);
      expect(workerCrashes(service)).toEqual([]);
      expect(service.events('worker-drained').map((event) => event['workerPid']).sort()).toEqual([...workers].sort());
    } finally {
      await lock.release();
      killRemaining(workers);
    }
  }, 60_000);

  it('answers a /metrics request that reaches a worker after its supervisor was killed, and the worker exits 0', async () => {
    const { service, baseUrl } = await startSupervisor();
    const workers = liveWorkers(service);
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect(await get(baseUrl, '/healthz', keepAlive)).toMatchObject({ status: 200 });
      service.signal('SIGKILL');
      await service.exited;
      // On the connection its worker already holds: the worker serves it during its drain, and
      // asks the supervisor that is gone for every worker's metrics.
      const answer = await get(baseUrl, '/metrics', keepAlive);

      await waitUntilExited(workers);
      expect(workerCrashes(service)).toEqual([]);
      // As when the supervisor does not answer: a 500, and the cause in the worker's log.
      expect(answer).toMatchObject({ status: 500 });
      expect(JSON.parse((answer as { body: string }).body)).toEqual({
        type: 'about:blank',
        title: 'Internal Server Error',
        status: 500,
        code: 'INTERNAL_ERROR',
        detail: 'An unexpected error occurred; the log has the details under this request id',
        request_id: expect.any(String) as string,
      });
      expect(service.output.filter((line) => line.includes('Aggregating metrics failed: the supervisor is gone'))).toHaveLength(1);
      expect(service.events('worker-drained').map((event) => event['workerPid']).sort()).toEqual([...workers].sort());
    } finally {
      keepAlive.destroy();
      killRemaining(workers);
    }
  });

  it('exits non-zero when workers keep dying at boot, saying how they died', async () => {
    const marker = path.join(await mkdtemp(path.join(tmpdir(), 'supervisor-test-')), 'broken-build');
    try {
      await writeFile(marker, '');
      const service = new ServiceProcess(
        { DATABASE_URL: database.url, HOST: '127.0.0.1', PORT: String(await freePort()), WEB_CONCURRENCY: '2', FAIL_BOOT_WHEN: marker },
        { preload: ['./test/fixtures/fail-boot-when-file-exists.ts'] },
      );
      running.push(service);
      const exit = await service.exited;
      expect(exit.code).toBe(1);
      const [crashLoop] = service.events('crash-loop');
      expect(crashLoop).toMatchObject({ failures: 5 });
      // A build that fails as it loads says why on the worker's stderr, before the worker could tell the supervisor.
      expect(crashLoop!['error']).toBe('exit code 1');
      expect(service.output.join('\n')).toContain('this build cannot start');
    } finally {
      await rm(path.dirname(marker), { recursive: true, force: true });
    }
  });

  it('exits non-zero at once, forking no worker, when its port is taken', async () => {
    const blocker: Server = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    try {
      const service = new ServiceProcess({ DATABASE_URL: database.url, HOST: '127.0.0.1', PORT: String(port), WEB_CONCURRENCY: '2' });
      running.push(service);
      expect((await service.exited).code).toBe(1);
      expect(service.events('worker-started')).toEqual([]);
      expect(service.output.join('\n')).toContain(`EADDRINUSE: address already in use 127.0.0.1:${port}`);
    } finally {
      blocker.close();
    }
  });

  it('refuses to start when workers × pool size exceed the database’s connections, saying what to change', async () => {
    const service = new ServiceProcess({ DATABASE_URL: database.url, WEB_CONCURRENCY: '20', DB_POOL_MAX: '10', PORT: String(await freePort()) });
    running.push(service);
    expect((await service.exited).code).toBe(1);
    expect(service.output.join('\n')).toMatch(
      /Connection budget exceeded: \(20 workers \+ 1 started during a rolling reload\) × DB_POOL_MAX 10 \+ 5 headroom = 215 connections, but the database allows \d+ .*Lower --workers \(WEB_CONCURRENCY\) or DB_POOL_MAX/,
    );
  });

  /** A pool size with which 2 pools fit the database's connections and 3 do not. */
  async function poolSizeForTwoPools(): Promise<number> {
    const [row] = await sql<{ available: number }[]>`
      SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int AS available`;
    const poolMax = Math.floor((row!.available - 5) / 2);
    expect(3 * poolMax + 5).toBeGreaterThan(row!.available);
    return poolMax;
  }

  it('counts the extra pool of a rolling reload in the connection budget at start', async () => {
    const poolMax = await poolSizeForTwoPools();
    const service = new ServiceProcess({ DATABASE_URL: database.url, HOST: '127.0.0.1', WEB_CONCURRENCY: '2', DB_POOL_MAX: String(poolMax), PORT: String(await freePort()) });
    running.push(service);
    // Two workers fit, but not the third pool that a reload starts before retiring an old one.
    const outcome = await Promise.race([service.exited, service.waitForEvent('worker-listening', 2).then(() => 'started')]);
    expect(outcome).toMatchObject({ code: 1 });
    expect(service.output.join('\n')).toContain(
      `Connection budget exceeded: (2 workers + 1 started during a rolling reload) × DB_POOL_MAX ${poolMax} + 5 headroom = ${3 * poolMax + 5} connections`,
    );
  });

  it('counts the extra pool of a rolling reload in the connection budget on SIGTTIN', async () => {
    const poolMax = await poolSizeForTwoPools();
    const { service } = await startSupervisor({ WEB_CONCURRENCY: '1', DB_POOL_MAX: String(poolMax) });
    service.signal('SIGTTIN');
    const [refused] = await Promise.race([service.waitForEvent('scale-refused'), service.waitForEvent('scaled')]);
    expect(refused).toMatchObject({ event: 'scale-refused', workers: 1 });
    expect(service.output.join('\n')).toContain(`(2 workers + 1 started during a rolling reload) × DB_POOL_MAX ${poolMax}`);
  });

  it('explains its options and signals with --help', async () => {
    const service = new ServiceProcess({}, { args: ['--help'] });
    running.push(service);
    expect((await service.exited).code).toBe(0);
    const help = service.output.join('\n');
    for (const option of ['--workers', '--bind', '--timeout', '--graceful-timeout', '--max-requests', '--max-requests-jitter', 'WEB_CONCURRENCY', 'HUP']) {
      expect(help).toContain(option);
    }
  });
});
