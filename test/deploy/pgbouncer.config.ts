import { defineConfig } from 'vitest/config';
import base from '../../vitest.config.js';

/**
 * `npm run test:pgbouncer`: the app's integration tests with every app connected through PgBouncer
 * (transaction pooling), started after the run's PostgreSQL by test/deploy/pgbouncer-setup.ts.
 */
export default defineConfig({
  test: {
    ...base.test,
    include: ['test/integration/items.test.ts', 'test/integration/http.test.ts'],
    globalSetup: ['test/global-setup.ts', 'test/deploy/pgbouncer-setup.ts'],
  },
});
