import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { clockTicksPerSecond, MACHINE_CORES, readMachineTicks, readProcessTable, treeTicks } from './cpu.js';
import type { Cleanup } from './cleanup.js';
import { startDetached, stopTree } from './processes.js';
import { Sampler, type Sample } from './sampler.js';

export interface CpuSplit {
  /** Cores used on average over the run, by group. */
  loadgen: number;
  server: number;
  postgres: number;
  machine: number;
  /** machine − the three groups: other processes (the bench's own sampling included) and unattributed kernel work. */
  other: number;
  /** Cores the hypervisor gave to other guests. */
  steal: number;
}

export interface Measurement {
  exitCode: number | null;
  output: string;
  wallS: number;
  cpu: CpuSplit;
  samples: Sample[];
}

export interface MeasureOptions {
  rawPath: string;
  cwd?: string;
  serverRoot?: number;
  postgresRoot?: number;
  cleanup: Cleanup;
  /** The tool's CPU seconds when it measures them itself, instead of its whole process lifetime. */
  ownCpuSeconds?: (output: string) => number | undefined;
}

// The shell waits for the tool, then prints its own /proc stat, whose cutime and cstime are then
// exactly the CPU of the tool and its children (the shell's own is negligible). The fd limit is
// raised to the hard limit for 1,000-connection runs.
const WRAPPER = 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; "$@"; rc=$?; cat /proc/$$/stat >&3; exit $rc';

/** Runs one load-generator command to its end and accounts for the machine's CPU meanwhile. */
export async function measureTool(argv: string[], options: MeasureOptions): Promise<Measurement> {
  const hz = clockTicksPerSecond();
  const tableBefore = readProcessTable();
  const machineBefore = readMachineTicks();
  const serverBefore = treeTicks(tableBefore, options.serverRoot);
  const postgresBefore = treeTicks(tableBefore, options.postgresRoot);
  const started = performance.now();

  const fd = openSync(options.rawPath, 'w');
  let child;
  try {
    child = startDetached('/bin/sh', ['-c', WRAPPER, 'bench-tool', ...argv], { cwd: options.cwd, stdout: fd, stderr: fd, fd3: true });
  } finally {
    closeSync(fd);
  }
  const unregister = options.cleanup.add(`load generator ${argv[0]}`, () => stopTree(child, { signal: 'SIGTERM', graceMs: 2_000 }));
  const sampler = new Sampler({ loadgenRoot: child.pid, ...(options.serverRoot ? { serverRoot: options.serverRoot } : {}), ...(options.postgresRoot ? { postgresRoot: options.postgresRoot } : {}) });
  let status;
  try {
    status = await child.exited;
  } finally {
    unregister();
  }
  const samples = sampler.stop();
  const wallS = (performance.now() - started) / 1000;
  const tableAfter = readProcessTable();
  const machineAfter = readMachineTicks();

  const output = await readFile(options.rawPath, 'utf8');
  const stat = await child.fd3Text;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const toolSeconds = options.ownCpuSeconds?.(output) ?? (Number(fields[13] ?? 0) + Number(fields[14] ?? 0)) / hz;

  const totalTicks = Math.max(1, machineAfter.total - machineBefore.total);
  const cores = (ticks: number) => Math.max(0, ticks) / hz / wallS;
  const loadgen = toolSeconds / wallS;
  const server = cores(treeTicks(tableAfter, options.serverRoot) - serverBefore);
  const postgres = cores(treeTicks(tableAfter, options.postgresRoot) - postgresBefore);
  const machine = (MACHINE_CORES * (machineAfter.busy - machineBefore.busy)) / totalTicks;
  return {
    exitCode: status.code,
    output,
    wallS,
    cpu: {
      loadgen,
      server,
      postgres,
      machine,
      other: Math.max(0, machine - loadgen - server - postgres),
      steal: (MACHINE_CORES * (machineAfter.steal - machineBefore.steal)) / totalTicks,
    },
    samples,
  };
}
