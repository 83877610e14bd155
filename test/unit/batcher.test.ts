import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Batcher } from '../../src/db/batcher.js';
import { OverloadedError } from '../../src/db/errors.js';
import { createLoader } from '../../src/db/loader.js';
import { Semaphore } from '../../src/db/semaphore.js';

/** A controllable execute: records each batch and lets the test decide when it returns. */
function recordingExecute() {
  const batches: number[][] = [];
  const pending: (() => void)[] = [];
  const execute = async (inputs: number[]) => {
    batches.push(inputs);
    await new Promise<void>((resolve) => pending.push(resolve));
    return inputs.map((input) => (input < 0 ? new Error(`bad ${input}`) : input * 10));
  };
  const releaseNext = () => pending.shift()?.();
  return { batches, execute, releaseNext };
}

/** Lets every pending turn of the event loop run (batches leave on the next turn). */
async function settle() {
  for (let turn = 0; turn < 5; turn++) await nextTurn();
}

const roomy = { maxBatchSize: 100, maxInFlight: 1, maxQueued: 100, maxWaitMs: 1000 };
const semaphore = (permits = 10, maxQueued = 100, maxWaitMs = 1000) => new Semaphore({ permits, maxQueued, maxWaitMs });

describe('Batcher', () => {
  it('gathers the calls of one turn of the event loop into one batch', async () => {
    const { batches, execute, releaseNext } = recordingExecute();
    const batcher = new Batcher({ ...roomy, execute, semaphore: semaphore() });
    const results = [1, 2, 3].map((input) => batcher.submit(input));
    await settle();
    expect(batches).toEqual([[1, 2, 3]]);
    releaseNext();
    expect(await Promise.all(results)).toEqual([10, 20, 30]);
  });

  it('never lets a call join a batch already running: it goes in the next one', async () => {
    const { batches, execute, releaseNext } = recordingExecute();
    const batcher = new Batcher({ ...roomy, execute, semaphore: semaphore() });
    const first = batcher.submit(1);
    await settle();
    const later = [2, 3].map((input) => batcher.submit(input));
    await settle();
    expect(batches).toEqual([[1]]);
    releaseNext();
    await first;
    await settle();
    expect(batches).toEqual([[1], [2, 3]]);
    releaseNext();
    expect(await Promise.all(later)).toEqual([20, 30]);
  });

  it('starts a batch only once it holds a connection, and takes the calls that arrived meanwhile', async () => {
    const { batches, execute, releaseNext } = recordingExecute();
    const connections = semaphore(1);
    await connections.acquire();
    const batcher = new Batcher({ ...roomy, execute, semaphore: connections });
    const early = batcher.submit(1);
    await settle();
    const late = batcher.submit(2);
    await settle();
    expect(batches).toEqual([]);
    connections.release();
    await settle();
    expect(batches).toEqual([[1, 2]]);
    releaseNext();
    expect(await Promise.all([early, late])).toEqual([10, 20]);
  });

  it('runs up to maxInFlight batches at once, each of at most maxBatchSize calls', async () => {
    const { batches, execute, releaseNext } = recordingExecute();
    const batcher = new Batcher({ ...roomy, maxBatchSize: 2, maxInFlight: 2, execute, semaphore: semaphore() });
    const results = [1, 2, 3, 4, 5].map((input) => batcher.submit(input));
    await settle();
    await settle();
    expect(batches).toEqual([[1, 2], [3, 4]]);
    releaseNext();
    await results[0];
    await settle();
    expect(batches).toEqual([[1, 2], [3, 4], [5]]);
    releaseNext();
    releaseNext();
    expect(await Promise.all(results)).toEqual([10, 20, 30, 40, 50]);
  });

  it('fails only the call whose result is an error', async () => {
    const { execute, releaseNext } = recordingExecute();
    const batcher = new Batcher({ ...roomy, execute, semaphore: semaphore() });
    const results = [1, -2, 3].map((input) => batcher.submit(input).catch((error: Error) => error.message));
    await settle();
    releaseNext();
    expect(await Promise.all(results)).toEqual([10, 'bad -2', 30]);
  });

  it('fails the whole batch when execute throws, gives its connection back, and goes on', async () => {
    let calls = 0;
    const connections = semaphore(1);
    const batcher = new Batcher<number, number>({
      ...roomy,
      semaphore: connections,
      execute: async (inputs) => {
        if (calls++ === 0) throw new Error('connection lost');
        return inputs;
      },
    });
    await expect(batcher.submit(1)).rejects.toThrow('connection lost');
    expect(connections.inUse).toBe(0);
    expect(await batcher.submit(2)).toBe(2);
  });

  it('refuses calls beyond maxQueued at once with OverloadedError', async () => {
    const { execute, releaseNext } = recordingExecute();
    const batcher = new Batcher({ ...roomy, maxQueued: 2, execute, semaphore: semaphore() });
    const running = batcher.submit(1);
    await settle();
    const queued = [batcher.submit(2), batcher.submit(3)];
    await expect(batcher.submit(4)).rejects.toBeInstanceOf(OverloadedError);
    releaseNext();
    await running;
    await settle();
    releaseNext();
    expect(await Promise.all(queued)).toEqual([20, 30]);
  });

  it('fails calls that waited longer than maxWaitMs while the batch in flight is stuck', async () => {
    const { execute, releaseNext } = recordingExecute();
    const batcher = new Batcher({ ...roomy, maxWaitMs: 50, execute, semaphore: semaphore() });
    const stuck = batcher.submit(1);
    await settle();
    const started = performance.now();
    await expect(batcher.submit(2)).rejects.toBeInstanceOf(OverloadedError);
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
    expect(performance.now() - started).toBeLessThan(1000);
    releaseNext();
    expect(await stuck).toBe(10);
  });
});

describe('createLoader', () => {
  it('reads identical keys once per batch, and each caller gets the value of its key', async () => {
    const fetched: number[][] = [];
    const load = createLoader<number, string>({
      ...roomy,
      semaphore: semaphore(),
      fetch: async (keys) => {
        fetched.push(keys);
        return keys.map((key) => `value ${key}`);
      },
    });
    expect(await Promise.all([load(1), load(2), load(1), load(3), load(2)])).toEqual(['value 1', 'value 2', 'value 1', 'value 3', 'value 2']);
    expect(fetched).toEqual([[1, 2, 3]]);
  });

  it('reads a key again for a caller that came while the read of that key was in flight (it may be stale)', async () => {
    // A database whose value changes while the first read is in flight.
    let stored = 'old';
    let release!: () => void;
    const load = createLoader<string, string>({
      ...roomy,
      maxInFlight: 10,
      semaphore: semaphore(),
      fetch: async (keys) => {
        const snapshot = stored;
        if (!release) await new Promise<void>((resolve) => (release = resolve));
        return keys.map(() => snapshot);
      },
    });
    const inFlight = load('item');
    await settle();
    stored = 'new';
    const afterWrite = load('item');
    await sleep(10);
    release();
    expect(await inFlight).toBe('old');
    expect(await afterWrite).toBe('new');
  });
});

describe('Semaphore', () => {
  it('lets at most `permits` tasks run at once and returns each result, undefined included', async () => {
    const connections = semaphore(2);
    let running = 0;
    let most = 0;
    const task = (value: number | undefined) => async () => {
      most = Math.max(most, ++running);
      await sleep(10);
      running--;
      return value;
    };
    const results = await Promise.all([1, undefined, 3, 4, 5].map((value) => connections.run(task(value))));
    expect(results).toEqual([1, undefined, 3, 4, 5]);
    expect(most).toBe(2);
    expect(connections.inUse).toBe(0);
  });

  it('serves waiters first come, first served', async () => {
    const connections = semaphore(1);
    const order: number[] = [];
    await connections.acquire();
    const waiters = [1, 2, 3].map((value) => connections.acquire().then(() => (order.push(value), connections.release())));
    connections.release();
    await Promise.all(waiters);
    expect(order).toEqual([1, 2, 3]);
  });

  it('refuses a waiter beyond maxQueued at once, and one that waited past maxWaitMs', async () => {
    const connections = semaphore(1, 1, 50);
    await connections.acquire();
    const waiting = connections.acquire();
    await expect(connections.acquire()).rejects.toBeInstanceOf(OverloadedError);
    await expect(waiting).rejects.toBeInstanceOf(OverloadedError);
    connections.release();
    expect(connections.inUse).toBe(0);
  });
});
