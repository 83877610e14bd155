import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitUntil } from './load.js';

export interface LifecycleEvent {
  event: string;
  time: number;
  pid: number;
  [field: string]: unknown;
}

/**
 * The service as users run it: a real process started from `src/server.ts`, serving real HTTP.
 * Each instance gets the environment the test gives it (its own ports and data directory).
 */
export class ServiceProcess {
  readonly output: string[] = [];
  private readonly child: ChildProcessByStdio<null, Readable, Readable>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  /**
   * `groupLeader`: start the service in a process group of its own, as a shell starts a command,
   * so that `signalGroup` can do what Ctrl-C does (signal every process of the group).
   */
  constructor(
    env: Record<string, string>,
    {
      args = [],
      preload = [],
      groupLeader = false,
      wrapper = [],
    }: {
      args?: string[];
      preload?: string[];
      groupLeader?: boolean;
      /** A command that execs the service (`unshare …`), so that the pid stays the service's. */
      wrapper?: string[];
    } = {},
  ) {
    const imports = ['tsx', ...preload].flatMap((module) => ['--import', module]);
    const command = [...wrapper, process.execPath, ...imports, 'src/server.ts', ...args];
    this.child = spawn(command[0]!, command.slice(1), {
      env: { ...process.env, LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: groupLeader,
    });
    for (const stream of [this.child.stdout, this.child.stderr]) {
      // A chunk may end in the middle of a line: keep the rest until the line is complete.
      let partial = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        this.output.push(...lines.filter(Boolean));
      });
      stream.on('end', () => partial && this.output.push(partial));
    }
    this.exited = once(this.child, 'exit').then(([code, signal]) => ({
      code: code as number | null,
      signal: signal as NodeJS.Signals | null,
    }));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolves when a log line contains `text`; rejects if the process exits or time runs out first. */
  async waitForLog(text: string, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.output.find((candidate) => candidate.includes(text));
      if (line) return line;
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`the service exited before logging "${text}":\n${this.output.join('\n')}`);
      }
      if (Date.now() > deadline) throw new Error(`no "${text}" within ${timeoutMs} ms:\n${this.output.join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** The supervisor's lifecycle events logged so far, optionally of one kind. */
  events(kind?: string): LifecycleEvent[] {
    return this.output
      .filter((line) => line.startsWith('{') && line.includes('"event"'))
      .map((line) => JSON.parse(line) as LifecycleEvent)
      .filter((event) => kind === undefined || event.event === kind);
  }

  async waitForEvent(kind: string, count = 1, timeoutMs = 30_000): Promise<LifecycleEvent[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.events(kind).length < count) {
      if (Date.now() > deadline) throw new Error(`fewer than ${count} "${kind}" events within ${timeoutMs} ms:\n${this.output.join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    return this.events(kind);
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Signals the whole process group (the service must have been started as its leader). */
  signalGroup(signal: NodeJS.Signals): void {
    process.kill(-this.pid, signal);
  }

  /** Stops the process (SIGTERM, then SIGKILL after a grace period) unless it has exited already. */
  async stop(graceMs = 15_000) {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    return this.exited;
  }
}

/**
 * A process's state letter from Linux's /proc (`R`, `S`, `T` stopped, `Z` zombie: exited, its
 * files closed, not yet reaped), or undefined once it is gone.
 */
export async function processState(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return stat?.slice(stat.lastIndexOf(')') + 2)[0];
}

/**
 * Kills the worker `pid` with SIGKILL while its supervisor is stopped (SIGSTOP), and lets the
 * supervisor run again once the worker is a zombie (its end of the IPC channel closed): the
 * supervisor then reads what waits for it (the worker's last messages, new connections) before it
 * learns of the death, as when it is busy at that moment.
 */
export async function killWorkerWhileSupervisorPaused(service: ServiceProcess, pid: number): Promise<void> {
  service.signal('SIGSTOP');
  await sleep(200);
  process.kill(pid, 'SIGKILL');
  await waitUntil(async () => (await processState(pid)) === 'Z', 'the killed worker to be a zombie', 10_000);
  service.signal('SIGCONT');
}
