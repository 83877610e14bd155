import path from 'node:path';
import { runCommand, startDetached, stopTree } from '../processes.js';
import { freePort } from '../ports.js';
import { ServerLog } from './server-log.js';
import { ourListPath, waitForHttp, waitForLog, type Service } from './service.js';

export interface OursOptions {
  repoRoot: string;
  /** Where the compiled code, migrations/ and package.json are: a snapshot built by the bench, or the repository. */
  codeDir: string;
  /** The compiled code's folder in codeDir: `build` in a snapshot, `dist` in the repository. */
  outDir: string;
  databaseUrl: string;
  workers: number;
  logLevel: string;
  /** Folder for the log file (tmpfs when available). */
  logDir: string;
}

/** Configuration variables of the service that pass through from the bench's environment, and are recorded. */
const PASSED_THROUGH = /^(DB_[A-Z_]+|BODY_LIMIT|WORKER_TIMEOUT|GRACEFUL_TIMEOUT|MAX_REQUESTS(_JITTER)?|[A-Z_]*EVENT_LOOP[A-Z_]*|[A-Z_]*RSS[A-Z_]*|NODE_OPTIONS|UV_THREADPOOL_SIZE)$/;

/** The bench decides these; the rest of the environment passes through to our processes (and is recorded). */
function inheritedEnvironment(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !['DATABASE_URL', 'HOST', 'PORT', 'LOG_LEVEL', 'WEB_CONCURRENCY', 'SINGLE_PROCESS'].includes(name)));
}

/**
 * Migrates a database with our migrator, the one-shot step production runs: the compiled CLI of the
 * code measured, or (when ours runs outside the bench and nothing was built) `src/db/cli.ts` through tsx.
 * The minimal peer's database is migrated this way too: it reads the same table.
 */
export async function migrateOurSchema(code: { codeDir: string; outDir: string } | undefined, repoRoot: string, databaseUrl: string): Promise<void> {
  const args = code ? [path.join(code.codeDir, code.outDir, 'db', 'cli.js'), 'migrate'] : ['--import', 'tsx', path.join(repoRoot, 'src', 'db', 'cli.ts'), 'migrate'];
  await runCommand(process.execPath, args, { cwd: code?.codeDir ?? repoRoot, env: { ...inheritedEnvironment(), DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' } });
}

/**
 * Our service as production runs it: migrated with the compiled CLI (a one-shot step, never inside
 * the workers), then `node dist/server.js --workers N`, from `codeDir`.
 */
export async function startOurs(options: OursOptions): Promise<Service> {
  const { repoRoot, codeDir, outDir } = options;
  const inherited = inheritedEnvironment();
  await migrateOurSchema({ codeDir, outDir }, repoRoot, options.databaseUrl);

  const port = await freePort();
  const environment = { HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: options.logLevel };
  const passed = Object.fromEntries(Object.entries(inherited).filter((entry): entry is [string, string] => PASSED_THROUGH.test(entry[0]) && entry[1] !== undefined));
  const args = [path.join(codeDir, outDir, 'server.js'), '--workers', String(options.workers)];
  const log = new ServerLog(path.join(options.logDir, 'ours.log'));
  const child = startDetached(process.execPath, args, {
    cwd: codeDir,
    env: { ...inherited, ...environment, DATABASE_URL: options.databaseUrl },
    stdout: log.fd,
    stderr: log.fd,
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  const service: Service = {
    name: 'ours',
    label: 'fastify-sqlasync',
    baseUrl,
    databaseUrl: options.databaseUrl,
    rootPid: child.pid,
    listPath: ourListPath,
    log,
    description: {
      command: ['node', path.relative(repoRoot, args[0]!), ...args.slice(1)],
      workers: options.workers,
      logging: `LOG_LEVEL=${options.logLevel}${options.logLevel === 'info' ? ' (production default: one access-log line per request)' : ''}`,
      environment: { ...environment, ...passed },
      version: `${(await gitVersion(repoRoot)) ?? 'unknown commit'}${codeDir === repoRoot ? ', dist/ as built before the run' : ', built by the bench into a snapshot'}`,
      external: false,
    },
    stop: async () => {
      await stopTree(child, { signal: 'SIGTERM', graceMs: 15_000 });
      log.close();
    },
  };
  try {
    // The supervisor logs one worker-listening event per worker: wait for all, not only the first.
    await waitForLog(log, '"worker-listening"', options.workers, 60_000, () => !child.hasExited());
    await waitForHttp(`${baseUrl}/items?limit=1`, 30_000, () => !child.hasExited());
  } catch (error) {
    await service.stop();
    throw error;
  }
  return service;
}

/** The commit measured, and whether the work tree differed from it. */
async function gitVersion(repoRoot: string): Promise<string | undefined> {
  const head = await runCommand('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, allowFailure: true });
  if (head.code !== 0) return undefined;
  const status = await runCommand('git', ['status', '--porcelain', '--', 'src', 'migrations', 'package.json'], { cwd: repoRoot, allowFailure: true });
  return `${head.stdout.trim()}${status.stdout.trim() ? ' + uncommitted changes in src/' : ''}`;
}
