import { availableParallelism } from 'node:os';
import { configDefaults, defineConfig } from 'vitest/config';
import { SLOW_TESTS, sharedTestOptions } from './vitest.config.js';

/** `npm run test:fast`: every test file but those that start processes or a browser (see SLOW_TESTS). */
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: [...configDefaults.exclude, ...SLOW_TESTS],
    ...sharedTestOptions,
    // Vitest's default is one worker per core but one, so a single file at a time on 2 cores. These
    // files mostly wait on PostgreSQL, so two at once overlap: 17 s instead of 31 s here.
    maxWorkers: Math.max(2, availableParallelism() - 1),
  },
});
