// Vitest runs only the official @keyv/test-suite here (it is written for vitest); everything else
// uses node's test runner. test/integration/keyv-suite.test.ts runs this config and reads its JSON report.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/keyv/**/*.spec.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
