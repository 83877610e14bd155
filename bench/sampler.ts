import { MACHINE_CORES, clockTicksPerSecond, processTree, readBytesReceived, readMachineTicks, readProcessTable, treeTicks, type MachineTicks } from './cpu.js';

export interface SampleGroups {
  /** The tool wrapper: the load generator is below it. */
  loadgenRoot: number;
  serverRoot?: number;
  postgresRoot?: number;
}

export interface Sample {
  /** Seconds since sampling started, at the end of the interval. */
  t: number;
  /** Cores used during the interval. */
  loadgen: number;
  server: number;
  postgres: number;
  machine: number;
  /** Bytes the load generator read from its sockets during the interval. */
  bytesReceived: number;
}

interface Reading {
  at: number;
  loadgen: number;
  server: number;
  postgres: number;
  machine: MachineTicks;
  bytes: number;
}

/**
 * Once a second during a run: CPU by group, and the bytes the load generator received. wrk and hey
 * print nothing while they run, so throughput over time is taken from those bytes (see timeline.ts);
 * reading /proc costs a few milliseconds a second and adds nothing to the load generator.
 */
export class Sampler {
  private readonly samples: Sample[] = [];
  private previous: Reading | undefined;
  private readonly start = performance.now();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly groups: SampleGroups) {
    this.previous = this.read();
    this.timer = setInterval(() => this.tick(), 1000);
  }

  private read(): Reading {
    const table = readProcessTable();
    const loadgenPids = processTree(table, this.groups.loadgenRoot);
    return {
      at: performance.now(),
      loadgen: treeTicks(table, this.groups.loadgenRoot),
      server: treeTicks(table, this.groups.serverRoot),
      postgres: treeTicks(table, this.groups.postgresRoot),
      machine: readMachineTicks(),
      bytes: loadgenPids.reduce((sum, pid) => sum + readBytesReceived(pid), 0),
    };
  }

  private tick(): void {
    const now = this.read();
    const before = this.previous;
    this.previous = now;
    if (!before) return;
    const seconds = (now.at - before.at) / 1000;
    const hz = clockTicksPerSecond();
    const cores = (ticks: number) => Math.max(0, ticks) / hz / seconds;
    this.samples.push({
      t: Math.round((now.at - this.start) / 100) / 10,
      loadgen: cores(now.loadgen - before.loadgen),
      server: cores(now.server - before.server),
      postgres: cores(now.postgres - before.postgres),
      machine: (MACHINE_CORES * (now.machine.busy - before.machine.busy)) / Math.max(1, now.machine.total - before.machine.total),
      // A process that exits resets the sum: clamp rather than report a negative interval.
      bytesReceived: Math.max(0, now.bytes - before.bytes),
    });
  }

  stop(): Sample[] {
    clearInterval(this.timer);
    return this.samples;
  }
}
