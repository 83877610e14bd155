import type { ServiceProcess } from '../helpers/service-process.js';
import type { WriteRecord } from './write-load.js';

/**
 * Which worker answered each request, read from the service's access log: every response is one
 * `request completed` line with the request id the client sent and the worker's pid. Lines are read
 * once, as they arrive. Workers buffer their log (4 KiB), so the latest answers may not be
 * attributed yet; a line split across two output chunks does not parse and is skipped.
 */
export class ServedBy {
  private readonly workers = new Map<string, number>();
  private scanned = 0;

  constructor(private readonly service: ServiceProcess) {}

  worker(requestId: string): number | undefined {
    const { output } = this.service;
    for (; this.scanned < output.length; this.scanned++) {
      const line = output[this.scanned]!;
      if (!line.includes('"request completed"')) continue;
      try {
        const entry = JSON.parse(line) as { requestId?: string; pid?: number };
        if (entry.requestId !== undefined && entry.pid !== undefined) this.workers.set(entry.requestId, entry.pid);
      } catch {
        // Half a line: skipped.
      }
    }
    return this.workers.get(requestId);
  }
}

/**
 * Output entries that are not whole JSON lines: ServiceProcess splits each chunk it reads at
 * newlines, so a line that straddles two chunks of the pipe becomes two broken entries.
 */
export function brokenLines(service: ServiceProcess): number {
  return service.output.filter((line) => {
    try {
      JSON.parse(line);
      return false;
    } catch {
      return true;
    }
  }).length;
}

export interface WorkerStreak {
  /** 201s answered in a row by this worker, up to its latest answer. */
  created: number;
  /** When the first of those 201s was answered. */
  since: number;
  /** When this worker last answered. */
  lastAnswerAt: number;
}

/** For each worker, its current run of 201s among the answers that finished at or after `from`. */
export function streaksByWorker(records: readonly WriteRecord[], servedBy: ServedBy, from: number): Map<number, WorkerStreak> {
  const streaks = new Map<number, WorkerStreak>();
  for (const record of records) {
    if (record.finishedAt < from) continue;
    const worker = servedBy.worker(record.requestId);
    if (worker === undefined) continue;
    const streak = streaks.get(worker) ?? { created: 0, since: record.finishedAt, lastAnswerAt: 0 };
    if (record.status === 201) {
      if (streak.created === 0) streak.since = record.finishedAt;
      streak.created++;
    } else {
      streak.created = 0;
    }
    streak.lastAnswerAt = record.finishedAt;
    streaks.set(worker, streak);
  }
  return streaks;
}

/** The pids of the workers serving now (listening, and not exited since), oldest first. */
export function liveWorkers(service: ServiceProcess): number[] {
  const pids = (kind: string) => new Set(service.events(kind).map((event) => event['workerPid'] as number));
  const listening = pids('worker-listening');
  const exited = pids('worker-exited');
  return [...pids('worker-started')].filter((pid) => listening.has(pid) && !exited.has(pid));
}
