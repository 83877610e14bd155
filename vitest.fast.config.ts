import { configDefaults, defineConfig } from 'vitest/config';
import { SLOW_TESTS, sharedTestOptions } from './vitest.config.js';

/** `npm run test:fast`: every test file but those that start processes or a browser (see SLOW_TESTS). */
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: [...configDefaults.exclude, ...SLOW_TESTS],
    ...sharedTestOptions,
  },
});
