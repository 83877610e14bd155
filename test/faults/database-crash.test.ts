import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedDatabase, type EmbeddedDatabase } from '../../src/db/embedded.js';
import { migrateUp } from '../../src/db/migrate.js';
import { waitUntil } from '../helpers/load.js';
import { freePort } from '../helpers/ports.js';
import { ServiceProcess } from '../helpers/service-process.js';
import { account, latency, slowest } from './accounting.js';
import { killEveryProcessIn, postmasterPid, processesIn, waitUntilNoProcessIn } from './processes.js';
import { brokenLines, liveWorkers, ServedBy, streaksByWorker } from './served-by.js';
import { outcomes, startWriteLoad, type WriteLoad, type WriteRecord } from './write-load.js';

/**
 * PostgreSQL killed with SIGKILL (a crash, an OOM kill) under a write load, then restarted on the
 * same data directory: the service must fail fast while it is down (503 with Retry-After, never a
 * hang or a 500), stay alive (/healthz) but unready (/readyz), recover by itself once it is back,
 * and never lose or duplicate an acknowledged write. The server is this file's own, never the test
 * run's shared one, since it is killed.
 *
 * A batch whose COMMIT was sent when the server died may or may not have committed: its clients
 * were answered 503, not 201. So the invariant is "every acknowledged write is stored, nothing is
 * stored twice", not "every stored row was acknowledged"; rows stored but never acknowledged are
 * counted apart, by the answer their request got.
 */

const CONNECT_TIMEOUT_MS = 1_000;
const QUEUE_TIMEOUT_MS = 1_000;
/**
 * The slowest an answer may legitimately be while the database is down: a wait in the queue, then
 * a batch that spends its connect timeout, plus a second for a busy 2-core machine.
 */
const FAIL_FAST_BOUND_MS = QUEUE_TIMEOUT_MS + CONNECT_TIMEOUT_MS + 1_000;
/** Long enough for every path to meet the dead server: fresh connects, queue expiry, readiness. */
const OUTAGE_MS = 4_000;
const RECOVERY_BOUND_MS = 15_000;
/** A request unanswered this long is given up on and counted as hung. */
const HANG_AFTER_MS = 10_000;
const CONCURRENCY = 20;
const DATABASE = 'fault_crash';

const logger = pino({ level: 'warn' });
let dataDir: string;
let databasePort: number;
let firstServer: EmbeddedDatabase | undefined;
let restartedServer: EmbeddedDatabase | undefined;
let killed = false;
let service: ServiceProcess | undefined;
let baseUrl: string;
let load: WriteLoad | undefined;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'fastify-sqlasync-fault-'));
  databasePort = await freePort();
  firstServer = await startEmbeddedDatabase({ dataDir, port: databasePort, logger, database: DATABASE });
  await migrateUp(firstServer.url);

  const port = await freePort();
  service = new ServiceProcess({
    DATABASE_URL: firstServer.url,
    HOST: '127.0.0.1',
    PORT: String(port),
    WEB_CONCURRENCY: '2',
    DB_POOL_MAX: '5',
    DB_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS),
    DB_QUEUE_TIMEOUT_MS: String(QUEUE_TIMEOUT_MS),
  });
  baseUrl = `http://127.0.0.1:${port}`;
  await service.waitForEvent('worker-listening', 2);
});

afterAll(async () => {
  await load?.stop();
  await service?.stop();
  // The first server's stop() would wait forever for an exit that already happened once it was killed.
  if (!killed) await firstServer?.stop();
  await restartedServer?.stop();
  if (dataDir) {
    await killEveryProcessIn(dataDir);
    await rm(dataDir, { recursive: true, force: true });
  }
});

interface Probe {
  path: string;
  requestId: string;
  status: number | string;
  ms: number;
}

let probes = 0;
/** One GET on a connection of its own, so that the supervisor's round robin spreads probes over the workers. */
function probe(probePath: string): Promise<Probe> {
  const requestId = `probe-${++probes}`;
  const started = Date.now();
  return new Promise((resolve) => {
    const outgoing = get(`${baseUrl}${probePath}`, { agent: false, headers: { 'x-request-id': requestId } }, (response) => {
      response.resume();
      response.on('end', () => resolve({ path: probePath, requestId, status: response.statusCode ?? 0, ms: Date.now() - started }));
    });
    outgoing.setTimeout(10_000, () => outgoing.destroy(Object.assign(new Error('no answer'), { code: 'HUNG' })));
    outgoing.on('error', (error: NodeJS.ErrnoException) =>
      resolve({ path: probePath, requestId, status: error.code ?? error.name, ms: Date.now() - started }),
    );
  });
}

function describeRecord(record: WriteRecord | undefined, servedBy: ServedBy): string {
  if (!record) return 'none';
  const answer = record.error ?? `${record.status}${record.code ? ` ${record.code}` : ''}`;
  return `${latency(record)} ms (${answer}, ${record.requestId}, worker ${servedBy.worker(record.requestId) ?? '?'})`;
}

describe('PostgreSQL killed with SIGKILL under a write load, then restarted', () => {
  it('fails fast while it is down, recovers by itself, and keeps every acknowledged write exactly once', async () => {
    const prefix = `crash-${randomBytes(4).toString('hex')}`;
    const servedBy = new ServedBy(service!);
    const workers = liveWorkers(service!);
    load = startWriteLoad(baseUrl, { concurrency: CONCURRENCY, prefix, hangAfterMs: HANG_AFTER_MS });
    await waitUntil(() => load!.records.filter((record) => record.status === 201).length >= 300, '300 creations before the crash');

    const postmaster = await postmasterPid(dataDir);
    const serverProcesses = await processesIn(dataDir);
    const killedAt = Date.now();
    process.kill(postmaster, 'SIGKILL');
    killed = true;

    // While it is down: liveness and readiness, probed over the outage.
    const outageProbes: Probe[] = [];
    while (Date.now() - killedAt < OUTAGE_MS) {
      outageProbes.push(...(await Promise.all([probe('/readyz'), probe('/healthz'), probe('/readyz'), probe('/healthz')])));
      await sleep(250);
    }

    // Backends outlive a killed postmaster briefly; PostgreSQL refuses to start while they hold
    // the old shared memory, so the restart waits for them as an operator (or systemd) would.
    const lingeredMs = await waitUntilNoProcessIn(dataDir, 15_000);
    const restartBeganAt = Date.now();
    restartedServer = await startEmbeddedDatabase({ dataDir, port: databasePort, logger, database: DATABASE });
    const restartedAt = Date.now();

    // Recovered: each worker has answered 100 creations in a row again, the latest within a second.
    const recovered = () => {
      const streaks = streaksByWorker(load!.records, servedBy, restartedAt);
      return workers.every((worker) => {
        const streak = streaks.get(worker);
        return streak !== undefined && streak.created >= 100 && streak.lastAnswerAt > Date.now() - 1_000;
      });
    };
    const recoveryError = await waitUntil(recovered, 'every worker to answer 100 creations in a row', RECOVERY_BOUND_MS).then(
      () => undefined,
      (error: Error) => error.message,
    );
    const readyAfter = await Promise.all(Array.from({ length: 4 }, () => probe('/readyz')));
    const records = await load.stop();
    load = undefined;
    const streaks = streaksByWorker(records, servedBy, restartedAt);

    const sql = postgres(restartedServer.url, { max: 1, onnotice: () => {} });
    const accounting = await account(sql, prefix, records).finally(() => sql.end());

    // Phases, by when each request finished.
    const before = records.filter((record) => record.finishedAt < killedAt);
    const down = records.filter((record) => record.finishedAt >= killedAt && record.finishedAt < restartBeganAt);
    const restarting = records.filter((record) => record.finishedAt >= restartBeganAt && record.finishedAt < restartedAt);
    const after = records.filter((record) => record.finishedAt >= restartedAt);
    const failed = records.filter((record) => record.status !== 201);
    const socketErrors = records.filter((record) => record.error !== undefined && record.error !== 'HUNG');
    const hung = records.filter((record) => record.error === 'HUNG');
    const tooSlow = records.filter((record) => latency(record) >= FAIL_FAST_BOUND_MS);
    const firstCreatedAfterRestart = after.find((record) => record.status === 201);
    const recoveryMs = Math.max(...workers.map((worker) => (streaks.get(worker)?.since ?? Infinity) - restartedAt));
    const probeText = (list: Probe[]) =>
      list.map(({ path: probed, requestId, status, ms }) => `${probed} ${status} ${ms}ms w${servedBy.worker(requestId) ?? '?'}`).join(', ');

    console.info(
      [
        `PostgreSQL SIGKILL under ${CONCURRENCY} writing clients (postmaster ${postmaster} and ${serverProcesses.length - 1} other server processes; workers ${workers.join(', ')}):`,
        `  requests ${records.length}: ${JSON.stringify(outcomes(records))}`,
        `  finished before the kill ${before.length}: ${JSON.stringify(outcomes(before))}`,
        `  finished while down ${down.length}: ${JSON.stringify(outcomes(down))}`,
        `  finished while restarting ${restarting.length}: ${JSON.stringify(outcomes(restarting))}`,
        `  finished after the restart ${after.length}: ${JSON.stringify(outcomes(after))}`,
        `  socket errors ${socketErrors.length}; unanswered after ${HANG_AFTER_MS} ms ${hung.length}; answers slower than ${FAIL_FAST_BOUND_MS} ms ${tooSlow.length}: ` +
          tooSlow
            .slice(0, 8)
            .map((record) => `${record.requestId} ${record.status ?? record.error} ${record.code ?? ''} ${latency(record)}ms started t${record.startedAt - killedAt >= 0 ? '+' : ''}${record.startedAt - killedAt}ms w${servedBy.worker(record.requestId) ?? '?'}`)
            .join('; '),
        `  longest answer from the kill on: ${describeRecord(slowest(records.filter((record) => record.finishedAt >= killedAt)), servedBy)}`,
        `  probes while down: ${probeText(outageProbes)}`,
        `  backends lingered ${lingeredMs} ms after the kill; the restart took ${restartedAt - restartBeganAt} ms; down for ${restartedAt - killedAt} ms`,
        `  recovery after the restart: first 201 after ${firstCreatedAfterRestart ? `${firstCreatedAfterRestart.finishedAt - restartedAt} ms` : 'never'}; ` +
          `per worker, only 201s from: ${workers.map((worker) => `w${worker} ${(streaks.get(worker)?.since ?? Infinity) - restartedAt} ms`).join(', ')}` +
          `${recoveryError ? ` (${recoveryError})` : ''}; /readyz then: ${probeText(readyAfter)}`,
        `  accounting: acknowledged ${accounting.acknowledged}, found ${accounting.found}, lost ${accounting.lost.length}, ` +
          `duplicated ${accounting.duplicated.length}, stored but unacknowledged ${JSON.stringify(accounting.storedUnacknowledged)}, unexplained ${accounting.unexplained.length}`,
        `  worker exits: ${JSON.stringify(service!.events('worker-exited'))}; service log entries split by the pipe: ${brokenLines(service!)} of ${service!.output.length}`,
      ].join('\n'),
    );

    // Soft assertions: one run reports every requirement the service misses, not just the first.
    // The outage was real, and the service said so.
    expect.soft(down.filter((record) => record.code === 'DATABASE_UNAVAILABLE').length).toBeGreaterThan(0);
    // Every acknowledged write is stored once; a row never acknowledged is one whose request was
    // told its outcome is unknown (its COMMIT's answer was lost), never one told it failed.
    expect.soft(accounting.lost).toEqual([]);
    expect.soft(accounting.reusedIds).toEqual([]);
    expect.soft(accounting.duplicated).toEqual([]);
    expect.soft(accounting.unexplained).toEqual([]);
    expect.soft(accounting.found).toBe(accounting.acknowledged);
    // (A request the client gave up on may have been committed later: its outcome is unknown too.)
    for (const outcome of Object.keys(accounting.storedUnacknowledged)) expect.soft(['503 OUTCOME_UNKNOWN', 'error HUNG']).toContain(outcome);
    // The service itself never went down: no worker died, no connection broke.
    expect.soft(service!.events('worker-exited')).toEqual([]);
    expect.soft(socketErrors.map(({ requestId, error }) => `${requestId} ${error}`)).toEqual([]);
    // Every failure is a 503 with Retry-After (the database is down, the wait for it expired, or the
    // connection died under the write), no 500.
    const wrongFailures = failed.filter(
      (record) =>
        record.error === undefined &&
        (record.status !== 503 || record.retryAfter !== '1' || !['DATABASE_UNAVAILABLE', 'OVERLOADED', 'OUTCOME_UNKNOWN'].includes(record.code ?? '')),
    );
    expect.soft(wrongFailures.map(({ requestId, status, code, retryAfter }) => ({ requestId, status, code, retryAfter }))).toEqual([]);
    // Alive but not ready while the database is down, each probe answered within its bound.
    expect.soft(outageProbes.filter((entry) => entry.path === '/readyz' && (entry.status !== 503 || entry.ms >= 3_000))).toEqual([]);
    expect.soft(outageProbes.filter((entry) => entry.path === '/healthz' && (entry.status !== 200 || entry.ms >= 1_000))).toEqual([]);
    // Failing fast: every request answered within the configured timeouts, none left hanging.
    expect.soft(tooSlow.map(({ requestId, status, code, error }) => `${requestId} ${status ?? error} ${code ?? ''}`)).toEqual([]);
    // Recovered by itself within the bound, on every worker, and ready again.
    expect.soft(recoveryError).toBeUndefined();
    expect.soft(recoveryMs).toBeLessThan(RECOVERY_BOUND_MS);
    expect.soft(readyAfter.map(({ status }) => status)).toEqual([200, 200, 200, 200]);
  }, 60_000);
});
