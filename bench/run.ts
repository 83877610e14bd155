import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, readdir, rm, writeFile } from 'node:fs/promises';
import { release, tmpdir } from 'node:os';
import path from 'node:path';
import { Cleanup } from './cleanup.js';
import { runLine, SHORT_NAMES, summaryText } from './console.js';
import { MACHINE_CORES } from './cpu.js';
import { connect, createDatabase, databaseName, postmasterPid, serverSettings, withDatabase, type Sql } from './database.js';
import { Executor, isAlive } from './executor.js';
import { parseOptions, REPO_ROOT, USAGE, type Options } from './options.js';
import { startCluster, type Cluster } from './postgres.js';
import { writeReport } from './report/write.js';
import { readResults, RESULTS_SCHEMA, writeResults, type Results } from './results.js';
import { checkOverload } from './overload.js';
import { baselineScenarioId, buildPlan, CEILING_KINDS, estimateSeconds, PAGE_LIMITS, RANDOM_KINDS, SAME_PAGE_LIMIT, scenariosFor, type RunTarget } from './scenarios.js';
import { useExternal } from './servers/external.js';
import { startMinimal } from './servers/minimal.js';
import { migrateOurSchema, startOurs } from './servers/ours.js';
import { buildSnapshot, SNAPSHOT_OUT_DIR } from './servers/snapshot.js';
import { startPeer } from './servers/peer.js';
import { TARGET_NAMES, type Service, type TargetName } from './servers/service.js';
import { summarize } from './summary.js';
import { detectTools } from './tools/detect.js';
import { writePgbenchScripts } from './tools/pgbench.js';
import { writeWrkScript, type WrkScript } from './tools/wrk.js';

const OUR_DATABASE = 'bench_ours';
const MINIMAL_DATABASE = 'bench_minimal';
const PEER_DATABASE = 'bench_peer';

/** The targets the options ask for: ours, the chosen peers (the seed runs as `peer`), and pgbench. */
function requestedTargets(options: Options): RunTarget[] {
  return ['ours', ...(options.peers.includes('minimal') ? ['minimal' as const] : []), ...(options.peers.includes('seed') ? ['peer' as const] : []), 'database'];
}

function timestamp(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, '').replaceAll(':', '-').replace('T', '_');
}

/** Host and port of a postgres URL: which databases the admin connection can count. */
function serverOf(url: string): string {
  const parsed = new URL(url);
  return `${parsed.hostname}:${parsed.port || '5432'}`;
}

/** The last megabyte of a log: enough for the last lines, however much a run logged at info level. */
async function copyTail(source: string, target: string, bytes = 1 << 20): Promise<void> {
  const handle = await open(source, 'r');
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, bytes);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    await writeFile(target, buffer);
  } finally {
    await handle.close();
  }
}

async function reportOnly(file: string): Promise<void> {
  const results = await readResults(file);
  const html = await writeReport(path.dirname(file), results);
  console.log(summaryText(summarize(results)));
  console.log(`\nreport: ${html}`);
}

/** The plan as it would run (pgbench included; it is dropped at run time when it cannot run). */
function dryRun(options: Options): void {
  const plan = buildPlan(scenariosFor(options), requestedTargets(options), options.repeat);
  for (const run of plan) console.log(`rep ${run.rep}  ${run.scenario.id.padEnd(18)} ${SHORT_NAMES[run.target].padEnd(8)} ${run.scenario.title}`);
  console.log(`${plan.length} runs; estimated ${Math.ceil(estimateSeconds(plan, options) / 60)} min`);
}

async function bench(options: Options): Promise<number> {
  const cleanup = new Cleanup();
  cleanup.installSignalHandlers();
  const resultsDir = options.out ?? path.join(REPO_ROOT, 'bench', 'results', timestamp());
  const rawDir = path.join(resultsDir, 'raw');
  const logDir = path.join(resultsDir, 'logs');
  await mkdir(rawDir, { recursive: true });
  await mkdir(logDir, { recursive: true });
  // Live server logs on tmpfs: no disk writes beside PostgreSQL's WAL flushes.
  const liveLogDir = await mkdtemp(path.join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'fastify-sqlasync-bench-'));
  // Runs after the servers stopped: their last lines (shutdown, or why one died) go to logs/.
  cleanup.add('live log folder', async () => {
    for (const name of await readdir(liveLogDir).catch(() => [])) {
      await copyTail(path.join(liveLogDir, name), path.join(logDir, name.replace(/\.log$/, '-last.log'))).catch(() => undefined);
    }
    await rm(liveLogDir, { recursive: true, force: true });
  });

  const recordedOptions = { ...options };
  delete recordedOptions.reportOnly;
  const results: Results = {
    schema: RESULTS_SCHEMA,
    startedAt: new Date().toISOString(),
    partial: true,
    machine: { cores: MACHINE_CORES, kernel: release(), node: process.version, tools: {} },
    options: recordedOptions,
    services: {},
    runs: [],
    notes: [],
  };
  // Registered first, so it runs last: after every process has stopped, whatever ended the run.
  cleanup.add('write results and report', async () => {
    results.finishedAt = new Date().toISOString();
    await writeResults(resultsDir, results);
    const html = await writeReport(resultsDir, results);
    console.log(`\nresults: ${path.join(resultsDir, 'results.json')}\nreport:  ${html}`);
  });

  let exitCode = 0;
  try {
    const tools = await detectTools(options.pgBin, options.forceAutocannon);
    results.machine.tools = tools.versions;
    if (!tools.wrk || !tools.hey) results.notes.push(`autocannon stands in for ${[tools.wrk ? '' : 'wrk', tools.hey ? '' : 'hey'].filter(Boolean).join(' and ')}`);

    const wantsMinimal = options.peers.includes('minimal');
    const wantsSeed = options.peers.includes('seed');
    // The minimal peer is always started here, on a database of this cluster.
    const startsAServer = !options.url || wantsMinimal || (wantsSeed && !options.peerUrl);
    let cluster: Cluster | undefined;
    let admin: Sql | undefined;
    let postgresPid: number | undefined;
    if (startsAServer) {
      console.log('starting a throwaway PostgreSQL 15 (durable: fsync, synchronous_commit and full_page_writes on)…');
      const started = await startCluster(options.pgBin);
      cluster = started;
      cleanup.add('postgres', async () => {
        await copyFile(path.join(started.dataDir, 'server.log'), path.join(logDir, 'postgres.log')).catch(() => undefined);
        await started.stop();
      });
      console.log(`  data ${cluster.dataDir}, port ${cluster.port}`);
      admin = connect(cluster.url('postgres'));
      postgresPid = await cluster.postmasterPid();
      await createDatabase(admin, OUR_DATABASE);
      if (wantsMinimal) await createDatabase(admin, MINIMAL_DATABASE);
      if (wantsSeed) await createDatabase(admin, PEER_DATABASE);
    } else if (options.db) {
      admin = connect(withDatabase(options.db, 'postgres'));
      postgresPid = await postmasterPid(admin);
    }
    if (admin) {
      const connection = admin;
      cleanup.add('admin connection', () => connection.end({ timeout: 5 }));
    }
    const adminServer = cluster ? `127.0.0.1:${cluster.port}` : options.db ? serverOf(options.db) : undefined;

    const services: Partial<Record<TargetName, Service>> = {};
    /** How to start again each server the bench started itself (external ones run as they are). */
    const starters: Partial<Record<TargetName, () => Promise<Service>>> = {};
    let restarting: Promise<void> = Promise.resolve();
    /** A server just started: measured from now on, its start-up lines kept apart. */
    const adopt = async (service: Service) => {
      services[service.name] = service;
      await service.log?.discard(path.join(logDir, `${service.name}-startup.log`));
      results.services[service.name] = { label: service.label, baseUrl: service.baseUrl, description: service.description };
    };
    const register = async (start: () => Promise<Service>, restartable = true) => {
      const service = await start();
      const { name } = service;
      if (restartable) starters[name] = start;
      // Stops whichever server of that name runs when the bench ends, after a restart under way.
      cleanup.add(`${name} server`, async () => {
        await restarting.catch(() => undefined);
        await services[name]?.stop();
      });
      await adopt(service);
    };
    // What our migrator runs from: the snapshot (or dist/) measured, or src/ through tsx when ours is external.
    let ourCode: { codeDir: string; outDir: string } | undefined;
    if (options.url) {
      await register(() => useExternal({ name: 'ours', baseUrl: options.url!, ...(options.db ? { databaseUrl: options.db } : {}), ...(options.serverPid ? { rootPid: options.serverPid } : {}) }), false);
    } else {
      let codeDir = REPO_ROOT;
      let outDir = 'dist';
      if (options.build) {
        console.log('building our server (npm run build, into a snapshot folder)…');
        await mkdir(path.join(REPO_ROOT, 'bench', 'results'), { recursive: true });
        const snapshot = await mkdtemp(path.join(REPO_ROOT, 'bench', 'results', '.build-'));
        cleanup.add('build snapshot', () => rm(snapshot, { recursive: true, force: true }));
        codeDir = await buildSnapshot(REPO_ROOT, snapshot);
        outDir = SNAPSHOT_OUT_DIR;
      }
      ourCode = { codeDir, outDir };
      console.log(`migrating and starting our server (${options.workers} workers, LOG_LEVEL=${options.logLevel})…`);
      await register(() => startOurs({ repoRoot: REPO_ROOT, codeDir, databaseUrl: cluster!.url(OUR_DATABASE), workers: options.workers, logLevel: options.logLevel, logDir: liveLogDir, outDir }));
    }
    if (wantsMinimal) {
      console.log(`migrating (with our migrator) and starting the minimal peer (${options.workers} workers)…`);
      await migrateOurSchema(ourCode, REPO_ROOT, cluster!.url(MINIMAL_DATABASE));
      await register(() => startMinimal({ repoRoot: REPO_ROOT, databaseUrl: cluster!.url(MINIMAL_DATABASE), workers: options.workers, logDir: liveLogDir }));
    }
    if (wantsSeed) {
      if (options.peerUrl) {
        await register(() => useExternal({ name: 'peer', baseUrl: options.peerUrl!, ...(options.peerDb ? { databaseUrl: options.peerDb } : {}), ...(options.peerPid ? { rootPid: options.peerPid } : {}) }), false);
      } else {
        console.log(`migrating and starting the seed's FastAPI service from ${path.relative(REPO_ROOT, options.peerDir) || '.'} (${options.workers} workers)…`);
        await register(() => startPeer({ directory: options.peerDir, databaseUrl: cluster!.url(PEER_DATABASE), workers: options.workers, logDir: liveLogDir }));
      }
    }
    /**
     * Every server the bench started, stopped and started again: each repetition begins on fresh
     * processes. One that died on its own meanwhile stops the bench, as it does between runs.
     */
    const restartServers = async () => {
      await executor.finish();
      for (const [name, start] of Object.entries(starters) as [TargetName, () => Promise<Service>][]) {
        if (cleanup.interrupted) return;
        const stopped = services[name]!;
        if (stopped.rootPid !== undefined && !isAlive(stopped.rootPid)) {
          throw new Error(`the ${stopped.label} server (pid ${stopped.rootPid}) exited on its own: see logs/${name}-last.log`);
        }
        await stopped.stop();
        // Its lines since its last run (its drain, any warning) are kept; the new server's readiness is counted afresh.
        await stopped.log?.discard(path.join(logDir, `${name}-restarts.log`));
        await adopt(await start());
      }
      executor.serversRestarted();
    };
    if (Object.keys(starters).length > 0) {
      results.notes.push(options.keepServers ? 'servers kept running across repetitions (--keep-servers)' : 'each server the bench started was restarted before every repetition');
    }
    for (const service of Object.values(services)) {
      if (service.rootPid === undefined) results.notes.push(`${service.label}: no process id (--server-pid/--peer-pid), so its CPU is counted as "other"`);
      if (!service.databaseUrl) results.notes.push(`${service.label}: no database (--db/--peer-db): table sizes are not pinned and commits are not counted`);
    }
    const countable = new Set(
      Object.values(services)
        .filter((service) => service.databaseUrl && adminServer && serverOf(service.databaseUrl) === adminServer)
        .map((service) => databaseName(service.databaseUrl!)),
    );
    if (admin) {
      results.postgres = {
        settings: await serverSettings(admin),
        ownCluster: cluster !== undefined,
        ...(cluster ? { note: 'throwaway cluster started by the bench with the settings the seed was measured with' } : {}),
      };
    }

    const scriptDir = path.join(rawDir, 'scripts');
    await mkdir(scriptDir, { recursive: true });
    const traffic = { rows: options.tableRows, limits: PAGE_LIMITS };
    const wrkScripts = {} as Record<WrkScript, string>;
    for (const script of ['get', 'post', 'overload-get', 'overload-post', 'pages', 'by-id', 'mix', 'overload-by-id'] as const) {
      wrkScripts[script] = await writeWrkScript(scriptDir, script, traffic);
    }
    const scripts = { wrk: wrkScripts, pgbench: await writePgbenchScripts(scriptDir, options.tableRows, PAGE_LIMITS, SAME_PAGE_LIMIT) };

    let scenarios = scenariosFor(options);
    if (!tools.wrk && scenarios.some((scenario) => RANDOM_KINDS.has(scenario.kind))) {
      results.notes.push(`skipped without wrk (their requests are drawn in its Lua): ${scenarios.filter((scenario) => RANDOM_KINDS.has(scenario.kind)).map((scenario) => scenario.id).join(', ')}`);
      scenarios = scenarios.filter((scenario) => !RANDOM_KINDS.has(scenario.kind));
    }
    const canPgbench = tools.pgbench && services.ours?.databaseUrl !== undefined;
    if (!canPgbench && scenarios.some((scenario) => scenario.kind === 'pgbench' || CEILING_KINDS.has(scenario.kind))) {
      results.notes.push(tools.pgbench ? 'pgbench skipped: our database is unknown (--db)' : `pgbench skipped: not found in ${options.pgBin}`);
    }
    const available: RunTarget[] = [...TARGET_NAMES.filter((name) => services[name]), ...(canPgbench ? ['database' as const] : [])];
    scenarios = scenarios.filter((scenario) => scenario.targets.some((target) => available.includes(target)));
    const plan = buildPlan(scenarios, available, options.repeat);
    const estimate = estimateSeconds(plan, options);
    console.log(`${plan.length} runs (${scenarios.map((scenario) => scenario.id).join(', ')}; ${available.join('/')}; × ${options.repeat}); estimated ${Math.ceil(estimate / 60)} min`);

    const executor = new Executor({
      options,
      cleanup,
      resultsDir,
      rawDir,
      logDir,
      services,
      ...(admin ? { admin } : {}),
      countable,
      ...(postgresPid ? { postgresPid } : {}),
      checkpointBeforeRuns: cluster !== undefined,
      tools,
      scripts,
    });
    let repetition = plan[0]?.rep;
    for (const planned of plan) {
      if (cleanup.interrupted) break;
      if (planned.rep !== repetition) {
        repetition = planned.rep;
        if (!options.keepServers && Object.keys(starters).length > 0) {
          console.log(`restarting the servers for repetition ${repetition}…`);
          restarting = restartServers();
          await restarting;
        }
      }
      await executor.execute(planned, (run) => {
        // Overload runs: against the same server's 100-connection run of this repetition, and Little's law.
        const baselineId = baselineScenarioId(planned.scenario);
        if (baselineId) {
          const baseline = results.runs.find((candidate) => candidate.scenario === baselineId && candidate.rep === run.rep && candidate.target === run.target && !candidate.error);
          run.overload = checkOverload(run, baselineId, baseline);
        }
        results.runs.push(run);
        console.log(runLine(run));
      });
      await writeResults(resultsDir, results);
    }
    console.log('waiting for the last statistics to be published…');
    await executor.finish();
    results.partial = false;
    console.log(`\n${summaryText(summarize(results))}`);
  } catch (error) {
    if (!cleanup.interrupted) {
      results.failure = error instanceof Error ? (error.stack ?? error.message) : String(error);
      console.error(`bench failed: ${error instanceof Error ? error.message : String(error)}`);
      exitCode = 1;
    }
  } finally {
    await cleanup.runAll();
  }
  return exitCode;
}

async function main(): Promise<void> {
  let options: ReturnType<typeof parseOptions>;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n(npm run bench -- --help lists the options)`);
    process.exit(2);
  }
  if (options === 'help') {
    console.log(USAGE);
    return;
  }
  if (options.reportOnly) {
    await reportOnly(options.reportOnly);
    return;
  }
  if (options.dryRun) {
    dryRun(options);
    return;
  }
  process.exitCode = await bench(options);
}

await main();
