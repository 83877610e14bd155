import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import type { Readable } from 'node:stream';

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
   * `processGroup`: the service leads a process group of its own (its workers join it), as in a
   * terminal, so that `signalProcessGroup` can do what Ctrl-C does.
   */
  constructor(
    env: Record<string, string>,
    { args = [], preload = [], processGroup = false }: { args?: string[]; preload?: string[]; processGroup?: boolean } = {},
  ) {
    const imports = ['tsx', ...preload].flatMap((module) => ['--import', module]);
    this.child = spawn(process.execPath, [...imports, 'src/server.ts', ...args], {
      env: { ...process.env, LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: processGroup,
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

  /** The signal to every process of the group, as a terminal's Ctrl-C (SIGINT) does. */
  signalProcessGroup(signal: NodeJS.Signals): void {
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
