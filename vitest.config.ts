import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    globalSetup: ['test/helpers/global-setup.ts'],
    // Generous: tests that spawn the CLI or real clients several times take 5-10 s on a quiet
    // 2-core machine and three times that when it is busy; a hung test still fails.
    testTimeout: 90_000,
    hookTimeout: 90_000,
    // Integration tests share one PostgreSQL server; files still run in parallel workers.
    pool: 'forks',
    maxWorkers: 2,
  },
});
