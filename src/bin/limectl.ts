#!/usr/bin/env node
// limectl: the operator CLI (src/cli/limectl.ts). Exit code: 0 ok, 1 runtime failure, 2 bad usage.
import { main } from '../cli/limectl.js';

process.exitCode = await main(process.argv.slice(2));
