/**
 * A full collection on demand, for the allocation tests: they assert that no GC runs during
 * a measured loop, which garbage left by their set-up (or a concurrent marking it began,
 * whose final pause V8 may take at any loop back-edge) could break without any allocation
 * of ours. `--expose-gc` set at run time, `gc` taken from a fresh context.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | undefined;

export function collectGarbage(): void {
  if (gc === undefined) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}
