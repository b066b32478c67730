#!/usr/bin/env node
import { runDemo } from '../demo/demo.js';

runDemo().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`lime-demo: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
