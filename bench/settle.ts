import { busyCores, clockTicksPerSecond, readMachineTicks, readProcessTable, type ProcessTable } from './cpu.js';
import { sleep } from './processes.js';

export interface Settled {
  /** Seconds waited beyond the first one-second window. */
  waitedS: number;
  /** Busy cores in the last window. */
  busyCores: number;
  /** When the wait ran out: the processes that kept the machine busy in the last window. */
  busiest?: Array<{ pid: number; name: string; cores: number }>;
}

/** The processes that used most CPU between two tables (their own time, not their children's). */
function busiest(before: ProcessTable, after: ProcessTable, seconds: number): NonNullable<Settled['busiest']> {
  const hz = clockTicksPerSecond();
  return [...after.values()]
    .map((entry) => ({ pid: entry.pid, name: entry.name, cores: Math.round(((entry.ticks - (before.get(entry.pid)?.ticks ?? entry.ticks)) / hz / seconds) * 100) / 100 }))
    .filter((entry) => entry.cores >= 0.05)
    .sort((a, b) => b.cores - a.cores)
    .slice(0, 5);
}

/**
 * Waits until the machine is quiet (fewer than `maxCores` busy over one second), at most `maxS`
 * seconds: the servers drain the previous run's backlog, and a burst of another process passes,
 * before the next run starts. The seed's peer-bench.sh does the same.
 */
export async function settle(maxCores: number, maxS: number): Promise<Settled> {
  const start = performance.now();
  for (;;) {
    const before = readMachineTicks();
    const tableBefore = readProcessTable();
    await sleep(1000);
    const busy = busyCores(before, readMachineTicks());
    const waitedS = (performance.now() - start) / 1000 - 1;
    const settled = { waitedS: Math.round(waitedS * 10) / 10, busyCores: Math.round(busy * 100) / 100 };
    if (busy < maxCores) return settled;
    if (waitedS >= maxS) return { ...settled, busiest: busiest(tableBefore, readProcessTable(), 1) };
  }
}
