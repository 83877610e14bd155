import { readdir, readFile, readlink, realpath } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Finding a PostgreSQL server's processes through Linux's /proc, to kill one server without
 * touching the others on the machine (the test run's shared server also runs as `postgres`).
 */

/** The postmaster's pid: the first line of `postmaster.pid` in the data directory. */
export async function postmasterPid(dataDir: string): Promise<number> {
  const contents = await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8');
  const pid = Number.parseInt(contents.split('\n')[0] ?? '', 10);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no pid in ${dataDir}/postmaster.pid: ${JSON.stringify(contents)}`);
  return pid;
}

/**
 * Live (not zombie) processes whose working directory is `dir`. A postmaster changes into its data
 * directory and every process it forks inherits that, so this finds a server's backends and
 * auxiliary processes even after the postmaster died and they were re-parented.
 */
export async function processesIn(dir: string): Promise<number[]> {
  const target = await realpath(dir);
  const pids = (await readdir('/proc')).filter((entry) => /^\d+$/.test(entry)).map(Number);
  const found: number[] = [];
  await Promise.all(
    pids.map(async (pid) => {
      // A zombie's cwd cannot be read: it has released everything, shared memory included.
      const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => undefined);
      if (cwd === target) found.push(pid);
    }),
  );
  return found.sort((a, b) => a - b);
}

/** Waits until no process runs in `dir`; returns how long that took. Throws after `timeoutMs`. */
export async function waitUntilNoProcessIn(dir: string, timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const remaining = await processesIn(dir);
    if (remaining.length === 0) return Date.now() - started;
    if (Date.now() - started > timeoutMs) {
      throw new Error(`processes still running in ${dir} after ${timeoutMs} ms: ${remaining.join(', ')}`);
    }
    await sleep(50);
  }
}

/** Kills every process running in `dir` (cleanup of a test's own server) and waits for them. */
export async function killEveryProcessIn(dir: string, timeoutMs = 10_000): Promise<void> {
  for (const pid of await processesIn(dir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Exited meanwhile.
    }
  }
  await waitUntilNoProcessIn(dir, timeoutMs);
}
