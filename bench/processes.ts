import { spawn, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { processTree, readProcessTable } from './cpu.js';

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Child {
  readonly pid: number;
  readonly exited: Promise<ExitStatus>;
  hasExited(): boolean;
}

export interface StartOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** File descriptors for the child's stdout and stderr ('ignore' to drop them). */
  stdout?: number | 'ignore';
  stderr?: number | 'ignore';
  /** An extra pipe on fd 3, returned as text once the child exits (used by the tool wrapper). */
  fd3?: boolean;
}

export interface StartedChild extends Child {
  /** What the child wrote on fd 3, when `fd3` was asked for. */
  readonly fd3Text: Promise<string>;
}

/**
 * Starts a long-lived child in a process group of its own, so that a Ctrl-C in the terminal reaches
 * the bench only and the bench stops its children in order (load generator, servers, database).
 */
export function startDetached(command: string, args: string[], options: StartOptions = {}): StartedChild {
  const stdio: SpawnOptions['stdio'] = ['ignore', options.stdout ?? 'ignore', options.stderr ?? 'ignore'];
  if (options.fd3) stdio.push('pipe');
  const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio, detached: true });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  const pid = child.pid;
  let done = false;
  const exited = Promise.race([
    once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null })),
    once(child, 'error').then(([error]) => {
      throw error;
    }),
  ]).finally(() => {
    done = true;
  });
  // Callers await `exited` when they care; an unawaited rejection must not crash the bench.
  exited.catch(() => {});
  let fd3Text = Promise.resolve('');
  const extra = child.stdio[3];
  if (options.fd3 && extra && 'setEncoding' in extra) {
    extra.setEncoding('utf8');
    fd3Text = new Promise((resolve) => {
      let text = '';
      extra.on('data', (chunk: string) => (text += chunk));
      extra.on('close', () => resolve(text));
    });
  }
  return { pid, exited, hasExited: () => done, fd3Text };
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/**
 * Stops a child and everything below it: `signal` to the child (a server drains on SIGTERM), then
 * after `graceMs` SIGKILL to its process group and to each descendant seen at the start, by pid.
 */
export async function stopTree(child: Child, { signal = 'SIGTERM', graceMs = 10_000 }: { signal?: NodeJS.Signals; graceMs?: number } = {}): Promise<void> {
  const descendants = processTree(readProcessTable(), child.pid).filter((pid) => pid !== child.pid);
  if (!child.hasExited()) {
    signalPid(child.pid, signal);
    await Promise.race([child.exited.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, graceMs))]);
  }
  signalPid(-child.pid, 'SIGKILL');
  for (const pid of descendants) signalPid(pid, 'SIGKILL');
  if (!child.hasExited()) await child.exited.catch(() => undefined);
}

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a short command to its end and returns its output; throws with that output when it fails. */
export async function runCommand(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; allowFailure?: boolean } = {}): Promise<CommandResult> {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code] = (await Promise.race([once(child, 'close'), once(child, 'error').then(([error]) => Promise.reject(error as Error))])) as [number | null];
  if (code !== 0 && !options.allowFailure) {
    throw new Error(`${command} ${args.join(' ')} exited with ${code}:\n${(stderr || stdout).trim().slice(-2000)}`);
  }
  return { code, stdout, stderr };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
