import { performance } from 'node:perf_hooks';
import { OverloadedError } from './errors.js';

export interface WaitingLineOptions {
  /** Most entries waiting; `push` refuses beyond. */
  maxQueued: number;
  /** An entry still waiting after this many milliseconds is refused with OverloadedError. */
  maxWaitMs: number;
}

interface Waiting<Entry> {
  entry: Entry;
  deadline: number;
}

/**
 * A first-come-first-served line of work waiting for the database, bounded in length and in
 * waiting time: what cannot be served soon is refused at once (a fast 503), never left to pile up.
 */
export class WaitingLine<Entry extends { reject: (error: Error) => void }> {
  private entries: Waiting<Entry>[] = [];
  private expiryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: WaitingLineOptions) {}

  get length(): number {
    return this.entries.length;
  }

  /** Adds an entry at the back; false when the line is full. */
  push(entry: Entry): boolean {
    if (this.entries.length >= this.options.maxQueued) return false;
    this.entries.push({ entry, deadline: performance.now() + this.options.maxWaitMs });
    this.scheduleExpiry();
    return true;
  }

  /** Takes up to `count` entries from the front, refusing those that waited too long. */
  take(count: number): Entry[] {
    this.expireOverdue();
    return this.entries.splice(0, count).map((waiting) => waiting.entry);
  }

  /** Entries past their deadline are the oldest, at the front. */
  private expireOverdue(): void {
    const now = performance.now();
    let overdue = 0;
    while (overdue < this.entries.length && this.entries[overdue]!.deadline <= now) overdue++;
    for (const { entry } of this.entries.splice(0, overdue)) entry.reject(new OverloadedError('Waited too long for the database; retry shortly'));
  }

  private scheduleExpiry(): void {
    if (this.expiryTimer || this.entries.length === 0) return;
    const delay = Math.max(0, this.entries[0]!.deadline - performance.now()) + 1;
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = undefined;
      this.expireOverdue();
      this.scheduleExpiry();
    }, delay);
    this.expiryTimer.unref();
  }
}
