import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { cpus } from 'node:os';

/**
 * CPU accounting from /proc, the same way as the seed's peer-bench.sh: per process,
 * utime + stime + cutime + cstime, so that the time of children that exited and were reaped
 * (PostgreSQL backends, replaced workers) stays in their parent's total.
 */

let ticksPerSecond: number | undefined;

/** USER_HZ, the unit of the tick counters in /proc (100 on every common Linux build). */
export function clockTicksPerSecond(): number {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return ticksPerSecond;
}

export const MACHINE_CORES = cpus().length;

export interface ProcessEntry {
  pid: number;
  ppid: number;
  /** The command name (/proc/PID/comm, 15 characters at most). */
  name: string;
  /** utime + stime + cutime + cstime, in ticks. */
  ticks: number;
}

export type ProcessTable = Map<number, ProcessEntry>;

export function readProcessEntry(pid: number): ProcessEntry | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // exited between the directory listing and the read
  }
  // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const number = (index: number) => Number(fields[index] ?? 0);
  // After ')': state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
  const name = text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'));
  return { pid, ppid: number(1), name, ticks: number(11) + number(12) + number(13) + number(14) };
}

export function readProcessTable(): ProcessTable {
  const table: ProcessTable = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const entry = readProcessEntry(Number(name));
    if (entry) table.set(entry.pid, entry);
  }
  return table;
}

/** The pids of a process and all its descendants that are alive in `table`. */
export function processTree(table: ProcessTable, rootPid: number | undefined): number[] {
  if (rootPid === undefined || !table.has(rootPid)) return [];
  const children = new Map<number, number[]>();
  for (const entry of table.values()) {
    const siblings = children.get(entry.ppid);
    if (siblings) siblings.push(entry.pid);
    else children.set(entry.ppid, [entry.pid]);
  }
  const tree: number[] = [];
  const pending = [rootPid];
  while (pending.length > 0) {
    const pid = pending.pop()!;
    tree.push(pid);
    pending.push(...(children.get(pid) ?? []));
  }
  return tree;
}

export function treeTicks(table: ProcessTable, rootPid: number | undefined): number {
  return processTree(table, rootPid).reduce((sum, pid) => sum + (table.get(pid)?.ticks ?? 0), 0);
}

export interface MachineTicks {
  /** Ticks spent on anything but idle and iowait, summed over all cores. */
  busy: number;
  total: number;
  /** Time the hypervisor gave to other guests: CPU we were not given at all. */
  steal: number;
}

export function readMachineTicks(): MachineTicks {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  // cpu user nice system idle iowait irq softirq steal (guest time is already inside user).
  const values = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = values.reduce((sum, value) => sum + value, 0);
  const idle = (values[3] ?? 0) + (values[4] ?? 0);
  return { busy: total - idle, total, steal: values[7] ?? 0 };
}

/** Busy cores on average between two readings: 2.0 means both cores of a 2-core machine. */
export function busyCores(before: MachineTicks, after: MachineTicks): number {
  return (MACHINE_CORES * (after.busy - before.busy)) / Math.max(1, after.total - before.total);
}

/** Bytes a process received through read() (sockets included), from /proc/PID/io. */
export function readBytesReceived(pid: number): number {
  try {
    const match = /^rchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}
