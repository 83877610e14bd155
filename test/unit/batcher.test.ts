import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Batcher, Gate, OverloadedError } from '../../src/db/batcher.js';

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

describe('Batcher', () => {
  it('sends a lone call at once, without waiting for company', async () => {
    const { batches, execute, releaseNext } = recordingExecute();
    const batcher = new Batcher({ execute, maxBatchSize: 100, maxQueued: 100, maxWaitMs: 1000 });
    const result = batcher.submit(1);
    expect(batches).toEqual([[1]]);
    releaseNext();
    expect(await result).toBe(10);
  });

  it('gathers the calls that arrive during a batch into the next one, each getting its own result', async () => {
    const { batches, execute, releaseNext } = recordingExecute();
    const batcher = new Batcher({ execute, maxBatchSize: 100, maxQueued: 100, maxWaitMs: 1000 });
    const first = batcher.submit(1);
    const later = [2, 3, 4].map((input) => batcher.submit(input));
    expect(batches).toEqual([[1]]);
    releaseNext();
    await first;
    expect(batches).toEqual([[1], [2, 3, 4]]);
    releaseNext();
    expect(await Promise.all(later)).toEqual([20, 30, 40]);
    expect(batcher.idle).toBe(true);
  });

  it('splits a long queue into batches of at most maxBatchSize', async () => {
    const { batches, execute, releaseNext } = recordingExecute();
    const batcher = new Batcher({ execute, maxBatchSize: 2, maxQueued: 100, maxWaitMs: 1000 });
    const results = [1, 2, 3, 4, 5].map((input) => batcher.submit(input));
    for (let round = 0; round < 3; round++) {
      releaseNext();
      await sleep(0);
    }
    expect(await Promise.all(results)).toEqual([10, 20, 30, 40, 50]);
    expect(batches).toEqual([[1], [2, 3], [4, 5]]);
  });

  it('fails only the input whose result is an error', async () => {
    const { execute, releaseNext } = recordingExecute();
    const batcher = new Batcher({ execute, maxBatchSize: 100, maxQueued: 100, maxWaitMs: 1000 });
    const blocker = batcher.submit(0);
    const results = [1, -2, 3].map((input) => batcher.submit(input).catch((error: Error) => error.message));
    releaseNext();
    await blocker;
    releaseNext();
    expect(await Promise.all(results)).toEqual([10, 'bad -2', 30]);
  });

  it('fails the whole batch when execute throws, and goes on with the next', async () => {
    let calls = 0;
    const batcher = new Batcher<number, number>({
      execute: async (inputs) => {
        if (calls++ === 0) throw new Error('connection lost');
        return inputs;
      },
      maxBatchSize: 100,
      maxQueued: 100,
      maxWaitMs: 1000,
    });
    await expect(batcher.submit(1)).rejects.toThrow('connection lost');
    expect(await batcher.submit(2)).toBe(2);
  });

  it('refuses calls beyond maxQueued at once with OverloadedError', async () => {
    const { execute, releaseNext } = recordingExecute();
    const batcher = new Batcher({ execute, maxBatchSize: 100, maxQueued: 2, maxWaitMs: 1000 });
    const running = batcher.submit(1);
    const queued = [batcher.submit(2), batcher.submit(3)];
    const started = Date.now();
    await expect(batcher.submit(4)).rejects.toBeInstanceOf(OverloadedError);
    expect(Date.now() - started).toBeLessThan(50);
    releaseNext();
    await running;
    releaseNext();
    expect(await Promise.all(queued)).toEqual([20, 30]);
  });

  it('fails calls that waited longer than maxWaitMs while the batch in flight is stuck', async () => {
    const { execute, releaseNext } = recordingExecute();
    const batcher = new Batcher({ execute, maxBatchSize: 100, maxQueued: 100, maxWaitMs: 50 });
    const stuck = batcher.submit(1);
    const started = Date.now();
    await expect(batcher.submit(2)).rejects.toBeInstanceOf(OverloadedError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(Date.now() - started).toBeLessThan(500);
    releaseNext();
    expect(await stuck).toBe(10);
  });
});

describe('Gate', () => {
  it('runs at most `concurrency` tasks at once and returns each result, undefined included', async () => {
    const gate = new Gate({ concurrency: 2, maxQueued: 10, maxWaitMs: 1000 });
    let running = 0;
    let most = 0;
    const task = (value: number | undefined) => async () => {
      most = Math.max(most, ++running);
      await sleep(10);
      running--;
      return value;
    };
    expect(await Promise.all([task(1), task(undefined), task(3), task(4), task(5)].map((each) => gate.run(each)))).toEqual([
      1,
      undefined,
      3,
      4,
      5,
    ]);
    expect(most).toBe(2);
  });
});
