import { OverloadedError } from './errors.js';
import type { Semaphore } from './semaphore.js';
import { WaitingLine } from './waiting-line.js';

/**
 * Many concurrent calls, few database round trips. Calls wait in a bounded line; a batch takes
 * the calls in line at the moment it gets a connection (the semaphore's permit) and runs them as
 * one statement. A call therefore only ever joins a batch that starts after it arrived: the batch
 * sees every write committed before the call was made, so batched reads are never stale.
 *
 * The calls made in one turn of the event loop (the requests parsed from one read of the sockets)
 * are gathered before a batch leaves, so batches form even while connections are free.
 */

export interface BatcherOptions<Input, Output> {
  /**
   * Runs one batch on one connection. Returns one entry per input, in input order: the output, or
   * the Error for that input alone (one bad input must not fail the others). A throw fails them all.
   */
  execute: (inputs: Input[]) => Promise<(Output | Error)[]>;
  semaphore: Semaphore;
  /** Most calls in one batch. */
  maxBatchSize: number;
  /** Batches of this kind holding or waiting for a connection at once. */
  maxInFlight: number;
  /** Most calls waiting; beyond, a call fails at once with OverloadedError. */
  maxQueued: number;
  /** A call still waiting after this many milliseconds fails with OverloadedError. */
  maxWaitMs: number;
  /** Told the size of each batch as it starts (for metrics). */
  onBatch?: (size: number) => void;
}

interface Call<Input, Output> {
  input: Input;
  resolve: (output: Output) => void;
  reject: (error: Error) => void;
}

export class Batcher<Input, Output> {
  private readonly line: WaitingLine<Call<Input, Output>>;
  private active = 0;
  private dispatchScheduled = false;

  constructor(private readonly options: BatcherOptions<Input, Output>) {
    this.line = new WaitingLine(options);
  }

  /** Calls waiting for a batch (not those in one). */
  get waiting(): number {
    return this.line.length;
  }

  submit(input: Input): Promise<Output> {
    return new Promise<Output>((resolve, reject) => {
      if (!this.line.push({ input, resolve, reject })) return reject(new OverloadedError());
      this.scheduleDispatch();
    });
  }

  private scheduleDispatch(): void {
    if (this.dispatchScheduled || this.line.length === 0 || this.active >= this.options.maxInFlight) return;
    this.dispatchScheduled = true;
    this.active++;
    setImmediate(() => {
      this.dispatchScheduled = false;
      void this.runBatch();
    });
  }

  private async runBatch(): Promise<void> {
    try {
      await this.options.semaphore.acquire();
    } catch (overloaded) {
      // No connection for too long: the calls waiting now share the refusal.
      for (const call of this.line.take(Infinity)) call.reject(overloaded as Error);
      this.active--;
      return;
    }
    try {
      // Taken only now that the batch holds its connection: each call in it arrived before it starts.
      const batch = this.line.take(this.options.maxBatchSize);
      this.scheduleDispatch();
      if (batch.length > 0) await this.execute(batch);
    } finally {
      this.options.semaphore.release();
      this.active--;
      this.scheduleDispatch();
    }
  }

  private async execute(batch: Call<Input, Output>[]): Promise<void> {
    this.options.onBatch?.(batch.length);
    let outputs: (Output | Error)[];
    try {
      outputs = await this.options.execute(batch.map((call) => call.input));
    } catch (error) {
      for (const call of batch) call.reject(error as Error);
      return;
    }
    if (outputs.length !== batch.length) {
      const error = new Error(`A batch of ${batch.length} returned ${outputs.length} results`);
      for (const call of batch) call.reject(error);
      return;
    }
    batch.forEach((call, index) => {
      const output = outputs[index]!;
      if (output instanceof Error) call.reject(output);
      else call.resolve(output);
    });
  }
}
