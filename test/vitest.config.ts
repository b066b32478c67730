import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests build network namespaces and run daemons; on a 2-core machine
    // they are more reliable one file at a time. Unit tests are fast either way.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Under CI a skipped test is a failure (see test/helpers/root.ts).
    allowOnly: false,
  },
});
