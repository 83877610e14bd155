import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One throwaway PostgreSQL server for the run; each test file gets databases of its own.
    globalSetup: ['test/global-setup.ts'],
    // The contract: every response of a test app is checked against the OpenAPI document it serves.
    setupFiles: ['test/setup/contract.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
  },
});
