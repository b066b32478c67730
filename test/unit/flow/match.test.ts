/**
 * The match algebra against brute force: over a small key space (a few low bits of a few
 * words, every other bit zero), matchCovers is set inclusion of the packets each match
 * admits, and matchOverlaps is a non-empty intersection.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { K, KEY_WORDS } from '../../../src/packet/key.js';
import { fieldIsSet, getField, matchCovers, matchEquals, matchesKey, matchIsNormal, matchOverlaps, newMatch, setField } from '../../../src/flow/match.js';
import type { Match } from '../../../src/flow/types.js';

/** The small key space: 3 low bits of each of these words → 2^9 keys. */
const WORDS = [K.NW_PROTO, K.TP_SRC, K.METADATA_LO];
const BITS = 3;
const N_KEYS = 1 << (BITS * WORDS.length);

function keyOf(i: number): Uint32Array {
  const k = new Uint32Array(KEY_WORDS);
  WORDS.forEach((w, j) => (k[w] = (i >>> (BITS * j)) & ((1 << BITS) - 1)));
  return k;
}
const KEYS = Array.from({ length: N_KEYS }, (_, i) => keyOf(i));

const smallMatch: fc.Arbitrary<Match> = fc
  .array(fc.tuple(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 7 })), { minLength: WORDS.length, maxLength: WORDS.length })
  .map((pairs) => {
    const m = newMatch();
    pairs.forEach(([v, mask], j) => {
      m.mask[WORDS[j]!] = mask;
      m.value[WORDS[j]!] = v & mask;
    });
    return m;
  });

const admits = (m: Match): boolean[] => KEYS.map((k) => matchesKey(m, k, 0));

describe('matchCovers / matchOverlaps vs brute force', () => {
  it('covers(filter, flow) ⟺ every packet the flow matches, the filter matches', () => {
    fc.assert(
      fc.property(smallMatch, smallMatch, (filter, flow) => {
        const a = admits(flow);
        const b = admits(filter);
        const subset = a.every((x, i) => !x || b[i]);
        expect(matchCovers(filter, flow)).toBe(subset);
      }),
      { numRuns: 3000 },
    );
  });
  it('overlaps(a, b) ⟺ some packet matches both', () => {
    fc.assert(
      fc.property(smallMatch, smallMatch, (x, y) => {
        const a = admits(x);
        const b = admits(y);
        expect(matchOverlaps(x, y)).toBe(a.some((v, i) => v && b[i]));
        expect(matchOverlaps(y, x)).toBe(matchOverlaps(x, y));
      }),
      { numRuns: 3000 },
    );
  });
  it('equal matches admit the same packets and cover each other', () => {
    fc.assert(
      fc.property(smallMatch, smallMatch, (x, y) => {
        if (matchEquals(x, y)) expect(admits(x)).toEqual(admits(y));
        expect(matchEquals(x, y)).toBe(matchCovers(x, y) && matchCovers(y, x));
      }),
      { numRuns: 2000 },
    );
  });
  it('a key at an offset inside a batch of keys', () => {
    const m = newMatch();
    setField(m, 'tp_dst', [22]);
    const rows = new Uint32Array(KEY_WORDS * 3);
    rows[KEY_WORDS * 2 + K.TP_DST] = 22;
    expect(matchesKey(m, rows, 0)).toBe(false);
    expect(matchesKey(m, rows, KEY_WORDS * 2)).toBe(true);
  });
});

describe('setField', () => {
  it('replaces only the field\'s bits and keeps the match normalised', () => {
    const m = newMatch();
    setField(m, 'nw_ecn', [3]);
    setField(m, 'nw_tos', [0xff]); // low 2 bits belong to nw_ecn: untouched
    expect(m.value[K.NW_TOS]).toBe(0xff);
    expect(m.mask[K.NW_TOS]).toBe(0xff);
    setField(m, 'ip_dscp', [0x04]);
    expect(m.value[K.NW_TOS]).toBe(0x07);
    setField(m, 'tun_id', [0x1, 0xffffffff], [0, 0xff]);
    expect(getField(m, 'tun_id')).toEqual({ value: [0, 0xff], mask: [0, 0xff] });
    expect(fieldIsSet(m, 'metadata')).toBe(false);
    expect(matchIsNormal(m)).toBe(true);
  });
});
