import { describe, expect, it } from 'vitest';
import { workerExecArgv } from '../../src/supervisor/worker-flags.js';

describe("the workers' Node flags", () => {
  it('add 64 MB semi-spaces to the flags node was given', () => {
    expect(workerExecArgv(['--import', 'tsx'])).toEqual(['--import', 'tsx', '--max-semi-space-size=64']);
  });

  it('leave a size given to node alone, in either spelling', () => {
    expect(workerExecArgv(['--max-semi-space-size=16'])).toEqual(['--max-semi-space-size=16']);
    expect(workerExecArgv(['--max_semi_space_size', '8'])).toEqual(['--max_semi_space_size', '8']);
  });
});
