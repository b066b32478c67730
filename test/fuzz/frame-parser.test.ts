/**
 * Fuzz target "extract": the frame parsers, src/packet/extract.ts and native/extract.c,
 * on the same inputs: arbitrary bytes, structured frames (arbitraries/frames.ts) and
 * byte-level mutations of both and of the hand-made fixtures.
 *
 * For every input: neither parser throws or crashes; the JavaScript one returns a parse
 * drop reason, stores offsets inside the frame in the right order and writes only its
 * key row; both return the same reason and the same 39 key words; and both give the same
 * answer for the frame alone and for the frame inside a larger buffer of garbage (a read
 * outside the frame would show up as a difference).
 *
 * Findings are saved in test/fixtures/fuzz-regression/extract/*.hex and replayed here
 * against both parsers (test/unit/packet/extract-fuzz.test.ts replays them too, JS only).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { extract } from '../../src/packet/extract.js';
import { K, KEY_WORDS, OFF_ABSENT } from '../../src/packet/key.js';
import { DropReason } from '../../src/packet/drop.js';
import { loadNative } from '../../src/io/native.js';
import * as fx from '../fixtures/packet/frames.js';
import { structuredFrame } from './arbitraries/frames.js';
import { mutated } from './arbitraries/mutate.js';
import { fuzzCheck, testTimeout, type Budget } from './budget.js';
import { hexRegressions, replay } from './regressions.js';

const native = loadNative();

/** The last drop reason extract() can return (the rest are the data path's). */
const LAST_PARSE_REASON = DropReason.GRE_BAD_FLAGS;
const SENTINEL = 0x5a5a5a5a;

/** Parses `frame` every way; checks every invariant; returns the drop reason. */
function checkFrame(frame: Uint8Array, inPort: number, garbage: Uint8Array): DropReason {
  // JavaScript, frame alone.
  const key = new Uint32Array(KEY_WORDS);
  const reason = extract(frame, 0, frame.length, key, 0, inPort) as DropReason;
  expect(Number.isInteger(reason) && reason >= DropReason.NONE && reason <= LAST_PARSE_REASON, `reason ${reason}`).toBe(true);
  expect(key[K.IN_PORT]).toBe(inPort >>> 0);
  const offsets = [key[K.L3_OFF]!, key[K.L4_OFF]!, key[K.L7_OFF]!];
  for (const o of offsets) if (o !== OFF_ABSENT) expect(o).toBeLessThanOrEqual(frame.length);
  if (reason === DropReason.NONE) {
    const present = offsets.filter((o) => o !== OFF_ABSENT);
    expect(present, 'offsets present from L3 down, increasing').toEqual([...present].sort((a, b) => a - b));
    expect(offsets.indexOf(OFF_ABSENT) === -1 || offsets.slice(offsets.indexOf(OFF_ABSENT)).every((o) => o === OFF_ABSENT)).toBe(true);
  }
  const words = [...key];

  // JavaScript, frame inside garbage, key row inside sentinels.
  const split = garbage.length >>> 1;
  const buf = new Uint8Array(garbage.length + frame.length);
  buf.set(garbage.subarray(0, split), 0);
  buf.set(frame, split);
  buf.set(garbage.subarray(split), split + frame.length);
  const row = new Uint32Array(KEY_WORDS + 6).fill(SENTINEL);
  expect(extract(buf, split, frame.length, row, 3, inPort)).toBe(reason);
  expect([...row.subarray(3, 3 + KEY_WORDS)]).toEqual(words);
  expect([...row.subarray(0, 3), ...row.subarray(3 + KEY_WORDS)]).toEqual(new Array(6).fill(SENTINEL));

  // C, frame alone (its own allocation) and inside the same garbage.
  const cKey = new Uint32Array(KEY_WORDS);
  expect(native.lime_extract_key(Buffer.from(frame), cKey, inPort), 'native drop reason').toBe(reason);
  expect([...cKey], 'native key').toEqual(words);
  const inside = Buffer.from(buf.buffer, split, frame.length);
  cKey.fill(SENTINEL);
  expect(native.lime_extract_key(inside, cKey, inPort)).toBe(reason);
  expect([...cKey]).toEqual(words);
  return reason;
}

const inPort = fc.oneof(fc.integer({ min: 0, max: 0xfeff }), fc.constantFrom(0xfffe, 0xffffffff));
const garbage = fc.uint8Array({ minLength: 0, maxLength: 32 });

const FIXTURES = [
  fx.arpRequest, fx.icmpEcho, fx.tcpSyn, fx.udpPadded, fx.ipv4Options, fx.ipv4FragFirst, fx.ipv4FragLater, fx.ipv6HbhFrag,
  fx.ipv6FragLater, fx.icmpv6Ns, fx.ipv6ExtChain, fx.vlanSingle, fx.vlanDouble, fx.vlanQinq9100, fx.llcStp, fx.greCks, fx.greKey,
];

const BUDGET = {
  random: { share: 0.2, cost: 1 },
  structured: { share: 0.25, cost: 2 },
  mutatedStructured: { share: 0.35, cost: 2 },
  mutatedFixtures: { share: 0.2, cost: 1 },
} satisfies Record<string, Budget>;

describe('fuzz: frame parsers (extract.ts and native extract.c)', () => {
  it('never throw on arbitrary bytes, and agree', () => {
    const frame = fc.uint8Array({ minLength: 0, maxLength: 200 });
    fuzzCheck('extract/random', fc.property(frame, inPort, garbage, (f, p, g) => void checkFrame(f, p, g)), BUDGET.random);
  }, testTimeout(BUDGET.random));

  it('agree on structured and mutated frames', () => {
    const check = (f: Uint8Array, p: number, g: Uint8Array): void => void checkFrame(f, p, g);
    fuzzCheck('extract/structured', fc.property(structuredFrame, inPort, garbage, check), BUDGET.structured);
    fuzzCheck('extract/mutated-structured', fc.property(mutated(structuredFrame), inPort, garbage, check), BUDGET.mutatedStructured);
  }, testTimeout(BUDGET.structured, BUDGET.mutatedStructured));

  it('has generators that reach every parse drop reason (a fixed sample)', () => {
    // The generators are worth their cost only if they get past the outer layers. A fixed
    // seed: this checks the generators, not the parsers, and must not be flaky.
    const seen = new Set<number>();
    const key = new Uint32Array(KEY_WORDS);
    for (const f of fc.sample(fc.oneof(structuredFrame, mutated(structuredFrame)), { numRuns: 3000, seed: 42 })) {
      seen.add(extract(f, 0, f.length, key, 0, 1));
    }
    expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: LAST_PARSE_REASON + 1 }, (_, i) => i));
  });

  it('agree on mutated hand-made fixtures', () => {
    const fixture = fc.constantFrom(...FIXTURES);
    fuzzCheck('extract/mutated-fixtures', fc.property(mutated(fixture, 6), inPort, garbage, (f, p, g) => void checkFrame(f, p, g)), BUDGET.mutatedFixtures);
  }, testTimeout(BUDGET.mutatedFixtures));

  it('replays the saved findings (test/fixtures/fuzz-regression/extract) against both parsers', () => {
    const ran = replay(hexRegressions('extract'), (frame) => void checkFrame(frame, 1, Uint8Array.of(0xa5, 0xa5, 0xa5)));
    expect(ran).toBeGreaterThan(0);
  });
});
