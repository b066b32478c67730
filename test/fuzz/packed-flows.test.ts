/**
 * Fuzz target "packed-flows": the binary flow packing a peer sends in a resync snapshot
 * (ReplSnapshot.packed, src/flow/pack.ts), unpacked by the follower from untrusted bytes.
 *
 * Packs of flows parsed from the ovs-ofctl golden corpus unpack to the same flows and
 * ages; mutated packs and random bytes unpack or throw FlowPackError (which the follower
 * answers with BAD_REQUEST) — never another error.
 *
 * Findings (malformed packs that must be refused) are saved in
 * test/fixtures/fuzz-regression/packed-flows/*.hex and replayed here.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FlowPackError, packFlows, unpackFlows } from '../../src/flow/pack.js';
import { parseFlow } from '../../src/flow/parse.js';
import type { InstalledFlow, PortNames } from '../../src/flow/types.js';
import { GOLDEN_FLOWS, PORT_NAMES } from './arbitraries/flows.js';
import { mutated } from './arbitraries/mutate.js';
import { fuzzCheck, testTimeout, type Budget } from './budget.js';
import { hexRegressions, replay } from './regressions.js';

const ports: PortNames = {
  numberOf: (name) => (Object.hasOwn(PORT_NAMES, name) ? PORT_NAMES[name] : undefined),
  nameOf: (num) => Object.keys(PORT_NAMES).find((n) => PORT_NAMES[n] === num),
};

const NOW = 1_000_000;

/** The golden flows as rules of a table, each with an age. */
const rules: fc.Arbitrary<InstalledFlow[]> = fc.array(
  fc.tuple(fc.constantFrom(...GOLDEN_FLOWS), fc.nat({ max: 100_000 })).map(([text, age]) => ({ ...parseFlow(text, { command: 'add', ports }), createdAt: NOW - age })),
  { maxLength: 6 },
);

/** Unpacks `bytes`: flows, or FlowPackError and nothing else. */
function checkUnpack(bytes: Uint8Array): boolean {
  try {
    unpackFlows(bytes, ports);
    return true;
  } catch (err) {
    if (!(err instanceof FlowPackError)) throw new Error(`not a FlowPackError: ${String(err)}`, { cause: err });
    expect(err.message.length).toBeGreaterThan(0);
    return false;
  }
}

const BUDGET = {
  valid: { share: 0.2, cost: 2 },
  mutated: { share: 0.6, cost: 2 },
  random: { share: 0.2, cost: 1 },
} satisfies Record<string, Budget>;

describe('fuzz: packed flows of a resync snapshot', () => {
  it('unpacks what it packs, with the same flows and ages', () => {
    fuzzCheck('packed-flows/valid', fc.property(rules, (rs) => {
      const got = unpackFlows(packFlows(rs, NOW, ports), ports);
      expect(got.map((g) => g.ageMs)).toEqual(rs.map((r) => NOW - r.createdAt));
      expect(got.map((g) => ({ ...g.spec, match: { value: [...g.spec.match.value], mask: [...g.spec.match.mask] } }))).toEqual(
        rs.map(({ createdAt: _, ...spec }) => ({ ...spec, cookieMask: 0n, match: { value: [...spec.match.value], mask: [...spec.match.mask] } })),
      );
    }), BUDGET.valid);
  }, testTimeout(BUDGET.valid));

  it('unpacks or throws FlowPackError on mutated packs', () => {
    const packs = rules.map((rs) => packFlows(rs, NOW, ports));
    fuzzCheck('packed-flows/mutated', fc.property(mutated(packs, 4), (b) => void checkUnpack(b)), BUDGET.mutated);
  }, testTimeout(BUDGET.mutated));

  it('unpacks or throws FlowPackError on random bytes behind a valid header', () => {
    const header = packFlows([], NOW).subarray(0, 8); // magic and key size: the rest is random
    const bytes = fc.tuple(fc.uint32Array({ maxLength: 1 }), fc.uint8Array({ maxLength: 120 })).map(([count, rest]) => {
      const out = new Uint8Array(12 + rest.length);
      out.set(header, 0);
      new DataView(out.buffer).setUint32(8, count[0] ?? rest.length % 4, true);
      out.set(rest, 12);
      return out;
    });
    fuzzCheck('packed-flows/random', fc.property(bytes, (b) => void checkUnpack(b)), BUDGET.random);
  }, testTimeout(BUDGET.random));

  it('replays the saved findings (test/fixtures/fuzz-regression/packed-flows)', () => {
    // Every saved input is malformed: it must be refused, with FlowPackError.
    const ran = replay(hexRegressions('packed-flows'), (bytes) => expect(checkUnpack(bytes)).toBe(false));
    expect(ran).toBeGreaterThan(0);
  });
});
