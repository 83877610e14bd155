import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import type { Readable } from 'node:stream';

/**
 * A command run on a pseudo-terminal, as a developer runs it in a shell (or `docker run -t`):
 * util-linux's `script` gives it a terminal for stdout and stderr, whose output this collects.
 */
export class TerminalProcess {
  readonly output: string[] = [];
  private readonly child: ChildProcessByStdio<null, Readable, null>;
  readonly exited: Promise<number | null>;

  constructor(command: string[], env: Record<string, string>) {
    const quoted = command.map((word) => `'${word.replaceAll("'", `'\\''`)}'`).join(' ');
    // `exec`: the command replaces script's shell, so it is the terminal's only process.
    this.child = spawn('script', ['--quiet', '--flush', '--return', '--command', `exec ${quoted}`, '/dev/null'], {
      env: { ...process.env, LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let partial = '';
    this.child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      this.output.push(...lines.map((line) => line.replace(/\r$/, '')).filter(Boolean));
    });
    this.exited = once(this.child, 'exit').then(([code]) => code as number | null);
  }

  async waitForLine(predicate: (line: string) => boolean, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.output.find(predicate);
      if (line) return line;
      if (this.child.exitCode !== null) throw new Error(`the command exited first:\n${this.output.join('\n')}`);
      if (Date.now() > deadline) throw new Error(`no such line within ${timeoutMs} ms:\n${this.output.join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Kills `script` (and with it the terminal) if it still runs. */
  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}
