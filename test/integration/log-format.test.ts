import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { freePort } from '../helpers/ports.js';
import { ServiceProcess } from '../helpers/service-process.js';
import { TerminalProcess } from '../helpers/terminal.js';

/**
 * Logs are JSON lines wherever they go, a terminal included (`docker run -t` must still ship
 * JSON); pretty lines only when asked for with LOG_FORMAT=pretty, which `npm run dev` does.
 */

let database: TestDatabase;
let env: Record<string, string>;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  env = { HOST: '127.0.0.1', PORT: String(await freePort()), DATABASE_URL: database.url };
});

afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

afterAll(async () => {
  await database.drop();
});

const PRETTY_LINE = /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(\d+\): Server listening at http:\/\/127\.0\.0\.1:\d+/;

describe('the log format', () => {
  it('is JSON on a terminal unless pretty is asked for', async () => {
    const terminal = new TerminalProcess([process.execPath, '--import', 'tsx', 'src/server.ts', '--single-process'], env);
    cleanups.push(async () => {
      terminal.kill();
      await terminal.exited;
    });
    const line = await terminal.waitForLine((candidate) => candidate.includes('Server listening'));
    expect(() => JSON.parse(line)).not.toThrow();
    const { pid, level } = JSON.parse(line) as { pid: number; level: number };
    expect(level).toBe(30);
    process.kill(pid, 'SIGTERM');
    expect(await terminal.exited).toBe(0);
  });

  it('is pretty with LOG_FORMAT=pretty, on a pipe too', async () => {
    const service = new ServiceProcess({ ...env, LOG_FORMAT: 'pretty' }, { args: ['--single-process'] });
    cleanups.push(() => service.stop());
    expect(await service.waitForLog('Server listening')).toMatch(PRETTY_LINE);
  });

  it('is pretty in `npm run dev`', async () => {
    // Its own process group, so that npm, tsx's watcher and the server stop together.
    const dev = spawn('npm', ['run', 'dev'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const exited = once(dev, 'exit');
    cleanups.push(async () => {
      if (dev.exitCode === null && dev.signalCode === null) process.kill(-dev.pid!, 'SIGTERM');
      await exited;
    });
    let output = '';
    dev.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    dev.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    for (let waited = 0; !output.includes('Server listening'); waited += 50) {
      if (waited > 30_000 || dev.exitCode !== null) throw new Error(`npm run dev did not listen:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const line = output.split('\n').find((candidate) => candidate.includes('Server listening'))!;
    expect(line).toMatch(PRETTY_LINE);
  });
});
