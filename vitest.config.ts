import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Drops test databases a file left behind (a restarted server shares the first one's).
    setupFiles: ['test/support/after-each-file.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
  },
});
