#!/usr/bin/env node
// First: V8 settings that must hold before the daemon allocates (see gc-tuning.ts).
import '../daemon/gc-tuning.js';
import { main } from '../daemon/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Nothing is left to run after a stop; leave even if a library kept a handle open.
    setImmediate(() => process.exit(code));
  },
  (err: unknown) => {
    process.stderr.write(`limed: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
