#!/usr/bin/env node
// limectl: the operator CLI (src/cli/limectl.ts). Exit code: 0 ok, 1 runtime failure, 2 bad usage.
import { main } from '../cli/limectl.js';

// `limectl dump-flows | head`: a reader that goes away is not an error worth a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

process.exitCode = await main(process.argv.slice(2));
