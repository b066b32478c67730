import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const shared = {
  testTimeout: 60_000,
  hookTimeout: 60_000,
  // Under CI a skipped test is a failure (see test/helpers/root.ts).
  allowOnly: false,
};

export default defineConfig({
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    ...shared,
    projects: [
      {
        extends: true,
        test: {
          // Pure cores and fuzzing: no devices, no daemons; both cores at once.
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'test/fuzz/**/*.test.ts'],
          fileParallelism: true,
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          // Integration tests build network namespaces and run daemons; on a 2-core machine
          // they are more reliable one file at a time, and after the unit tests.
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
