import { availableParallelism } from 'node:os';
import { configDefaults, defineConfig } from 'vitest/config';
import { SLOW_TESTS, sharedTestOptions } from './vitest.config.js';

/**
 * Tests of what a process holds once for its whole life (the secrets it hides from its output):
 * each of these files gets a process of its own, as in `npm test`.
 */
const PROCESS_STATE_TESTS = ['test/unit/config.test.ts', 'test/unit/redact.test.ts'];

// The run's PostgreSQL is started by the project that uses it, once: a global setup at the root
// would run again for each project.
const { globalSetup, ...options } = sharedTestOptions;

/** `npm run test:fast`: every test file but those that start processes or a browser (see SLOW_TESTS). */
export default defineConfig({
  test: {
    ...options,
    // Vitest's default is one worker per core but one, so a single file at a time on 2 cores. These
    // files mostly wait on PostgreSQL, so two at once overlap.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    projects: [
      {
        extends: true,
        test: { name: 'process-state', include: PROCESS_STATE_TESTS },
      },
      {
        extends: true,
        test: {
          name: 'in-process',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...SLOW_TESTS, ...PROCESS_STATE_TESTS],
          globalSetup,
          // These files share a process per worker, one after another, instead of each starting
          // its own and importing Fastify and the rest again: about 5 s of 26 here.
          isolate: false,
        },
      },
    ],
  },
});
