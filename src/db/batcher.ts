/**
 * Turns many concurrent calls into few database round trips. Calls that arrive while a batch is
 * in flight wait for it to return and then go together in the next one: a lone call waits for
 * nothing (no timer), and under load each round trip (and each commit) serves many calls.
 *
 * The queue is bounded, in length and in waiting time, so that a database that cannot keep up
 * turns excess work into fast `OverloadedError`s (503) instead of an ever-growing backlog.
 */

export class OverloadedError extends Error {
  override name = 'OverloadedError';
  readonly code = 'OVERLOADED';
}

export interface BatcherOptions<Input, Output> {
  /**
   * Runs one batch. Returns one entry per input, in input order: the output, or the Error for
   * that input alone (one bad input must not fail the others). A thrown error fails the batch.
   */
  execute: (inputs: Input[]) => Promise<(Output | Error)[]>;
  /** Most inputs in one batch. */
  maxBatchSize: number;
  /** Most calls waiting for a batch; beyond, calls fail at once with OverloadedError. */
  maxQueued: number;
  /** A call that waited this long for its batch to start fails with OverloadedError. */
  maxWaitMs: number;
  /** Batches in flight at once (each uses one connection). */
  concurrency?: number;
  /** Told the size of each batch as it starts (for metrics). */
  onBatch?: (size: number) => void;
}

interface Waiting<Input, Output> {
  input: Input;
  enqueuedAt: number;
  resolve: (output: Output) => void;
  reject: (error: Error) => void;
}

export class Batcher<Input, Output> {
  private queue: Waiting<Input, Output>[] = [];
  private inFlight = 0;
  private readonly concurrency: number;
  /** Fails calls that wait too long while every batch slot is stuck (a locked table, a stalled server). */
  private expiryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: BatcherOptions<Input, Output>) {
    this.concurrency = options.concurrency ?? 1;
  }

  /** Calls waiting for a batch to start (not those in flight). */
  get queued(): number {
    return this.queue.length;
  }

  /** Batches running now. */
  get running(): number {
    return this.inFlight;
  }

  /** True when nothing waits and nothing runs. */
  get idle(): boolean {
    return this.queue.length === 0 && this.inFlight === 0;
  }

  submit(input: Input): Promise<Output> {
    if (this.queue.length >= this.options.maxQueued) {
      return Promise.reject(new OverloadedError('Too many requests are waiting for the database'));
    }
    return new Promise<Output>((resolve, reject) => {
      this.queue.push({ input, enqueuedAt: Date.now(), resolve, reject });
      this.flush();
    });
  }

  private flush(): void {
    this.expireStale();
    while (this.inFlight < this.concurrency && this.queue.length > 0) {
      void this.run(this.queue.splice(0, this.options.maxBatchSize));
    }
    this.scheduleExpiry();
  }

  /** Calls that waited longer than maxWaitMs are failed: they are the oldest, at the front. */
  private expireStale(): void {
    const oldestAllowed = Date.now() - this.options.maxWaitMs;
    let stale = 0;
    while (stale < this.queue.length && this.queue[stale]!.enqueuedAt < oldestAllowed) stale++;
    for (const waiting of this.queue.splice(0, stale)) waiting.reject(new OverloadedError('Waited too long for the database'));
  }

  private scheduleExpiry(): void {
    const oldest = this.queue[0];
    if (!oldest || this.expiryTimer) return;
    const delay = Math.max(0, oldest.enqueuedAt + this.options.maxWaitMs - Date.now()) + 1;
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = undefined;
      this.flush();
    }, delay);
    this.expiryTimer.unref();
  }

  private async run(batch: Waiting<Input, Output>[]): Promise<void> {
    this.inFlight++;
    this.options.onBatch?.(batch.length);
    try {
      const outputs = await this.options.execute(batch.map((waiting) => waiting.input));
      batch.forEach((waiting, index) => {
        const output = outputs[index];
        if (output instanceof Error) waiting.reject(output);
        else if (output === undefined) waiting.reject(new Error(`The batch returned no result for input ${index}`));
        else waiting.resolve(output);
      });
    } catch (error) {
      for (const waiting of batch) waiting.reject(error as Error);
    } finally {
      this.inFlight--;
      this.flush();
    }
  }
}

export interface GateOptions {
  /** Tasks running at once: the pool's connections. */
  concurrency: number;
  maxQueued: number;
  maxWaitMs: number;
}

/**
 * At most `concurrency` database tasks at once, with the same bounded queue as a Batcher: every
 * query waits here rather than in the driver's unbounded queue.
 */
export class Gate {
  private readonly tasks: Batcher<() => Promise<unknown>, { value: unknown }>;

  constructor(options: GateOptions) {
    this.tasks = new Batcher({ ...options, maxBatchSize: 1, execute: async ([task]) => [{ value: await task!() }] });
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    return (await this.tasks.submit(task)).value as T;
  }

  get running(): number {
    return this.tasks.running;
  }

  get waiting(): number {
    return this.tasks.queued;
  }
}
