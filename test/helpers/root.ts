/**
 * Integration tests need root (network namespaces, TAP devices). Outside CI they skip with
 * a visible reason when not root; under CI (env CI set) they must not skip, so the suite
 * registers a failing test instead.
 */
import { describe, it } from 'vitest';
import { isRoot } from '../../src/demo/netns.js';

export const ROOT = isRoot();
const CI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';

/** `describe` that runs only as root; skips visibly outside CI, fails under CI. */
export function describeAsRoot(name: string, body: () => void): void {
  if (ROOT) {
    describe(name, body);
    return;
  }
  if (CI) {
    describe(name, () => {
      it('runs as root (CI must not skip integration tests)', () => {
        throw new Error(`${name}: integration tests need root (network namespaces and TAP devices), and CI is set`);
      });
    });
    return;
  }
  console.warn(`skipping "${name}": integration tests need root (network namespaces and TAP devices)`);
  describe.skip(`${name} (skipped: needs root)`, body);
}
