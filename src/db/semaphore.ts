import { OverloadedError } from './errors.js';
import { WaitingLine } from './waiting-line.js';

export interface SemaphoreOptions {
  /** Work that may hold a connection at once: the pool's size. */
  permits: number;
  /** Waiters beyond this fail at once with OverloadedError. */
  maxQueued: number;
  /** A waiter not served within this many milliseconds fails with OverloadedError. */
  maxWaitMs: number;
}

interface Waiter {
  grant: () => void;
  reject: (error: Error) => void;
}

/**
 * The connection budget of a process: at most `permits` pieces of database work at once, the rest
 * waiting in a bounded line, first come first served. Nothing waits on postgres.js's own
 * (unbounded) queue.
 */
export class Semaphore {
  private available: number;
  private readonly line: WaitingLine<Waiter>;

  constructor(private readonly options: SemaphoreOptions) {
    this.available = options.permits;
    this.line = new WaitingLine(options);
  }

  get inUse(): number {
    return this.options.permits - this.available;
  }

  get waiting(): number {
    return this.line.length;
  }

  /** Resolves when a permit is the caller's; `release()` it when the work is done. */
  acquire(): Promise<void> {
    if (this.available > 0) {
      this.available--;
      return Promise.resolve();
    }
    return new Promise<void>((grant, reject) => {
      if (!this.line.push({ grant, reject })) reject(new OverloadedError());
    });
  }

  release(): void {
    const [next] = this.line.take(1);
    if (next) next.grant();
    else this.available++;
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await work();
    } finally {
      this.release();
    }
  }
}
