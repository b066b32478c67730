// The harness's C tools (bench/c/*.c), compiled into bench/build/ when missing or older than
// their source.
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { log, runSync } from './exec.mjs';

export function buildC(repo, name) {
  const src = join(repo, `bench/c/${name}.c`);
  const bin = join(repo, `bench/build/${name}`);
  if (existsSync(bin) && statSync(bin).mtimeMs >= statSync(src).mtimeMs) return bin;
  mkdirSync(dirname(bin), { recursive: true });
  log(`building bench/build/${name}`);
  const r = runSync('cc', ['-O2', '-o', bin, src]);
  if (r.code !== 0) throw new Error(`cc ${name}.c failed: ${r.stderr.trim()}`);
  return bin;
}
