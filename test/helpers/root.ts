/**
 * Tests that need something of the machine (root for namespaces and TAP devices, tshark,
 * Open vSwitch): outside CI they skip with a visible reason when it is missing; under CI
 * (env CI set) they must not skip, so the suite registers a failing test instead.
 */
import { describe, it } from 'vitest';
import { isRoot } from '../../src/demo/netns.js';

export const ROOT = isRoot();
export const CI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';

/** `describe` that runs when `available`; otherwise skips visibly (outside CI) or fails (under CI). */
export function describeWhen(available: boolean, need: string, name: string, body: () => void): void {
  if (available) {
    describe(name, body);
    return;
  }
  if (CI) {
    describe(name, () => {
      it(`has ${need} (CI must not skip)`, () => {
        throw new Error(`${name}: needs ${need}, and CI is set`);
      });
    });
    return;
  }
  console.warn(`skipping "${name}": needs ${need}`);
  describe.skip(`${name} (skipped: needs ${need})`, body);
}

/** `describe` that runs only as root (network namespaces and TAP devices). */
export function describeAsRoot(name: string, body: () => void): void {
  describeWhen(ROOT, 'root (network namespaces and TAP devices)', name, body);
}
