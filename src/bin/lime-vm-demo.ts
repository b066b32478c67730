#!/usr/bin/env node
// lime-vm-demo: live migration of a QEMU VM between two limed sites (src/demo/vm-demo.ts,
// docs/vm-demo.md). Exit code: 0 every check passed, 1 a check failed or the demo could not
// run, 2 bad usage.
import { runVmDemo } from '../demo/vm-demo.js';

runVmDemo(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`lime-vm-demo: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
