import { defineConfig, type ViteUserConfig } from 'vitest/config';

/**
 * The test files that start processes (the service, its supervisor, drizzle-kit, a crashing
 * PostgreSQL) or a browser: `npm test` runs them with the rest, `npm run test:fast` leaves them out.
 * Every other test file is fast (units, and the app in-process through `inject`). A new test file is
 * fast unless it is listed here; test/unit/test-split.test.ts fails when a file reaches
 * `node:child_process`, `node:cluster` or `playwright-core` and is not listed, or is listed and does not.
 */
export const SLOW_TESTS = [
  'test/bench/minimal-peer.test.ts',
  'test/bench/pgbench-scripts.test.ts',
  'test/bench/report.test.ts',
  'test/bench/wrk-scripts.test.ts',
  'test/contract/client.test.ts',
  'test/contract/document.test.ts',
  'test/e2e/chromium.test.ts',
  'test/e2e/docs.test.ts',
  'test/faults/database-crash.test.ts',
  'test/faults/worker-crash.test.ts',
  'test/integration/cluster-metrics.test.ts',
  'test/integration/consistency.test.ts',
  'test/integration/database-at-start.test.ts',
  'test/integration/db-commands.test.ts',
  'test/integration/embedded.test.ts',
  'test/integration/log-format.test.ts',
  'test/integration/migrations.test.ts',
  'test/integration/optional-packages.test.ts',
  'test/integration/rate-limit-cluster.test.ts',
  'test/integration/rate-limit-redis.test.ts',
  'test/integration/secrets.test.ts',
  'test/integration/seed.test.ts',
  'test/integration/server.test.ts',
  'test/integration/single-process.test.ts',
  'test/integration/supervisor.test.ts',
  'test/unit/rate-limit-counting.test.ts',
];

export const sharedTestOptions: NonNullable<ViteUserConfig['test']> = {
  // One throwaway PostgreSQL server for the run; each test file gets databases of its own.
  globalSetup: ['test/global-setup.ts'],
  // The contract: every response of a test app is checked against the OpenAPI document it serves.
  setupFiles: ['test/setup/contract.ts'],
  pool: 'forks',
  testTimeout: 30_000,
  hookTimeout: 60_000,
  teardownTimeout: 30_000,
};

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    ...sharedTestOptions,
  },
});
