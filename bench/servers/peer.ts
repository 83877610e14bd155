import { existsSync } from 'node:fs';
import path from 'node:path';
import { runCommand, startDetached, stopTree } from '../processes.js';
import { DEFAULT_PEER_DIR } from '../options.js';
import { freePort } from '../ports.js';
import { ServerLog } from './server-log.js';
import { waitForHttp, waitForLog, type Service } from './service.js';

export interface PeerOptions {
  /** The seed's source folder (read-only is fine: no bytecode is written). */
  directory: string;
  databaseUrl: string;
  workers: number;
  logDir: string;
}

// Debian's interpreter, which has the seed's packages (another python3 on PATH may not).
const PYTHON = '/usr/bin/python3';
const GUNICORN = '/usr/bin/gunicorn';

/**
 * The seed's FastAPI service, started as its README says: `alembic upgrade head`, then Gunicorn with
 * Uvicorn workers bound to loopback, `--workers N --threads 1`, with Gunicorn's default logging.
 */
export async function startPeer(options: PeerOptions): Promise<Service> {
  for (const file of [PYTHON, GUNICORN, path.join(options.directory, 'app', 'main.py')]) {
    if (!existsSync(file)) {
      throw new Error(
        `${file} not found. The seed's service needs its source (--peer-dir, default bench/fastapi-seed) and Debian's ` +
          `packages: run ${path.join(DEFAULT_PEER_DIR, 'install-debian-packages.sh')} as root`,
      );
    }
  }
  // The source folder may be read-only: no __pycache__.
  const env = { ...process.env, DATABASE_URL: options.databaseUrl, PYTHONDONTWRITEBYTECODE: '1' };
  await runCommand(PYTHON, ['-m', 'alembic', 'upgrade', 'head'], { cwd: options.directory, env });

  const port = await freePort();
  const args = [GUNICORN, 'app.main:app', '-k', 'uvicorn.workers.UvicornWorker', '--bind', `127.0.0.1:${port}`, '--workers', String(options.workers), '--threads', '1'];
  const log = new ServerLog(path.join(options.logDir, 'peer.log'));
  const child = startDetached(PYTHON, args, { cwd: options.directory, env, stdout: log.fd, stderr: log.fd });
  const baseUrl = `http://127.0.0.1:${port}`;
  const service: Service = {
    name: 'peer',
    label: 'FastAPI seed',
    baseUrl,
    databaseUrl: options.databaseUrl,
    rootPid: child.pid,
    // The seed has no paging: GET /items returns every row.
    listPath: () => '/items',
    log,
    description: {
      command: ['python3', ...args.map((arg) => (arg === GUNICORN ? 'gunicorn' : arg))],
      workers: options.workers,
      logging: 'Gunicorn defaults (error log at info to stderr, no access log)',
      environment: { PYTHONDONTWRITEBYTECODE: '1' },
      version: (await runCommand(PYTHON, ['-c', 'import fastapi, uvicorn, sqlalchemy, gunicorn; print(f"fastapi {fastapi.__version__}, uvicorn {uvicorn.__version__}, sqlalchemy {sqlalchemy.__version__}, gunicorn {gunicorn.__version__}")'], { allowFailure: true })).stdout.trim() || undefined,
      external: false,
    },
    stop: async () => {
      await stopTree(child, { signal: 'SIGTERM', graceMs: 15_000 });
      log.close();
    },
  };
  try {
    // Uvicorn logs this once per worker, after the application's startup.
    await waitForLog(log, 'Application startup complete', options.workers, 60_000, () => !child.hasExited());
    await waitForHttp(`${baseUrl}/items`, 30_000, () => !child.hasExited());
  } catch (error) {
    await service.stop();
    throw error;
  }
  return service;
}
