import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // End-to-end suites start their own influxd / mosquitto / platform processes; on a
    // 2-core machine running them all at once only makes every one of them slower.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
