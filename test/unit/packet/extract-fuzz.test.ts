/**
 * extract() against garbage: random bytes and mutated fixtures must never throw, must
 * return a parse-time DropReason, must store offsets inside the frame, and must read
 * nothing outside buf[off … off+len).
 *
 * Crashers found here are saved as hex under test/fixtures/fuzz-regression/extract/ (one
 * frame per file, '#' lines are comments) and replayed by the last test forever.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { extract } from '../../../src/packet/extract.js';
import { K, KEY_WORDS, OFF_ABSENT } from '../../../src/packet/key.js';
import { DropReason } from '../../../src/packet/drop.js';
import * as fx from '../../fixtures/packet/frames.js';

const FIXTURES = [
  fx.arpRequest,
  fx.icmpEcho,
  fx.tcpSyn,
  fx.udpPadded,
  fx.ipv4Options,
  fx.ipv4FragFirst,
  fx.ipv4FragLater,
  fx.ipv6HbhFrag,
  fx.ipv6FragLater,
  fx.icmpv6Ns,
  fx.ipv6ExtChain,
  fx.vlanSingle,
  fx.vlanDouble,
  fx.vlanQinq9100,
  fx.llcStp,
  fx.greCks,
  fx.greKey,
];

/** Checks the invariants for one frame; returns the reason. */
function check(frame: Uint8Array, inPort: number, prefix: Uint8Array, suffix: Uint8Array): DropReason {
  // 1. The frame alone in its own buffer.
  const key = new Uint32Array(KEY_WORDS);
  let reason: DropReason = DropReason.NONE;
  expect(() => {
    reason = extract(frame, 0, frame.length, key, 0, inPort);
  }).not.toThrow();
  expect(Number.isInteger(reason)).toBe(true);
  expect(reason).toBeGreaterThanOrEqual(DropReason.NONE);
  expect(reason).toBeLessThanOrEqual(DropReason.GRE_BAD_FLAGS);
  expect(key[K.IN_PORT]).toBe(inPort >>> 0);
  const l3 = key[K.L3_OFF]!;
  const l4 = key[K.L4_OFF]!;
  const l7 = key[K.L7_OFF]!;
  for (const o of [l3, l4, l7]) if (o !== OFF_ABSENT) expect(o).toBeLessThanOrEqual(frame.length);
  if (reason === DropReason.NONE) {
    if (l4 !== OFF_ABSENT) expect(l3 !== OFF_ABSENT && l3 < l4).toBe(true);
    if (l7 !== OFF_ABSENT) expect(l4 !== OFF_ABSENT && l4 < l7).toBe(true);
  }
  // 2. The same frame between garbage: identical result (reads stay inside the frame).
  const buf = new Uint8Array(prefix.length + frame.length + suffix.length);
  buf.set(prefix, 0);
  buf.set(frame, prefix.length);
  buf.set(suffix, prefix.length + frame.length);
  const key2 = new Uint32Array(KEY_WORDS + 3).fill(0x5a5a5a5a);
  expect(extract(buf, prefix.length, frame.length, key2, 3, inPort)).toBe(reason);
  expect(Array.from(key2.subarray(3))).toEqual(Array.from(key));
  return reason;
}

const garbage = fc.uint8Array({ minLength: 0, maxLength: 24 });
const inPort = fc.integer({ min: 0, max: 0xffff });

/** A fixture with byte edits (biased to the first 80 bytes, where the headers are) and an optional cut. */
const mutatedFixture = fc
  .record({
    which: fc.nat({ max: FIXTURES.length - 1 }),
    edits: fc.array(
      fc.tuple(fc.oneof(fc.nat({ max: 79 }), fc.nat({ max: 200 })), fc.integer({ min: 0, max: 255 })),
      { minLength: 1, maxLength: 6 },
    ),
    cut: fc.option(fc.nat({ max: 130 }), { nil: undefined }),
  })
  .map(({ which, edits, cut }) => {
    const f = FIXTURES[which]!.slice();
    for (const [i, v] of edits) if (i < f.length) f[i] = v;
    return cut === undefined ? f : f.subarray(0, Math.min(cut, f.length));
  });

/** Random bytes behind a plausible Ethernet type, so the fuzzer reaches the inner layers. */
const typedRandom = fc
  .tuple(
    fc.uint8Array({ minLength: 12, maxLength: 12 }),
    fc.constantFrom(0x0800, 0x86dd, 0x0806, 0x8035, 0x8100, 0x88a8, 0x9100, 0x0026, 0x88cc),
    fc.uint8Array({ minLength: 0, maxLength: 120 }),
  )
  .map(([macs, type, rest]) => Uint8Array.from([...macs, type >>> 8, type & 0xff, ...rest]));

describe('extract fuzz', () => {
  it('random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 160 }), inPort, garbage, garbage, (f, p, a, b) => {
        check(f, p, a, b);
      }),
      { numRuns: 3000 },
    );
  });

  it('random bytes behind known EtherTypes', () => {
    fc.assert(
      fc.property(typedRandom, inPort, garbage, garbage, (f, p, a, b) => {
        check(f, p, a, b);
      }),
      { numRuns: 3000 },
    );
  });

  it('mutated fixtures', () => {
    const seen = new Set<DropReason>();
    fc.assert(
      fc.property(mutatedFixture, inPort, garbage, garbage, (f, p, a, b) => {
        seen.add(check(f, p, a, b));
      }),
      { numRuns: 5000 },
    );
    // The mutations reach deep layers, not just RUNT.
    expect(seen.size).toBeGreaterThan(8);
  });

  it('replays saved crashers (test/fixtures/fuzz-regression/extract)', () => {
    const dir = join(fileURLToPath(new URL('.', import.meta.url)), '../../fixtures/fuzz-regression/extract');
    const files = existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.hex')) : [];
    for (const name of files) {
      const text = readFileSync(join(dir, name), 'utf8')
        .split('\n')
        .filter((l) => !l.startsWith('#'))
        .join('');
      check(fx.hex(text), 1, new Uint8Array([0xa5]), new Uint8Array([0xa5, 0xa5]));
    }
    expect(files.length).toBeGreaterThan(0);
  });
});
