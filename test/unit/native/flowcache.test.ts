/**
 * The native flow cache (native/flowcache.c): exact match on a key's match words, two
 * slots per key, an epoch for invalidation, per-entry counters, and a sequence lock per
 * entry so that a reader on another thread never sees a half-written program — checked
 * with a real reader thread racing this (writer) thread.
 */
import { describe, expect, it } from 'vitest';
import { K, KEY_WORDS } from '../../../src/packet/key.js';
import { loadNative } from '../../../src/io/native.js';

const native = loadNative();

/** A key whose match words depend on `n` (nw_dst, tp_src) and whose offsets on `off`. */
function keyOf(n: number, off = 0): Uint32Array {
  const k = new Uint32Array(KEY_WORDS);
  k[K.IN_PORT] = 1;
  k[K.DL_TYPE] = 0x0800;
  k[K.NW_PROTO] = 17;
  k[K.NW_DST] = 0x0a000000 + n;
  k[K.TP_SRC] = n & 0xffff;
  k[K.L3_OFF] = 14 + off;
  k[K.L4_OFF] = 34 + off;
  k[K.L7_OFF] = 42 + off;
  return k;
}

describe('native flow cache', () => {
  it('returns the program installed for a key, counts its packets and bytes, and misses other keys', () => {
    const fc = native.lime_fc_new(64);
    const k = keyOf(1);
    expect(native.lime_fc_lookup(fc, k, 100)).toBeNull();
    expect(native.lime_fc_insert(fc, k, Uint32Array.of(5, 1, 3))).toBe(true);
    expect([...native.lime_fc_lookup(fc, k, 100)!]).toEqual([5, 1, 3]);
    // The same flow with other header offsets (IPv4 options) is the same entry.
    expect([...native.lime_fc_lookup(fc, keyOf(1, 8), 60)!]).toEqual([5, 1, 3]);
    expect(native.lime_fc_counters(fc, k)).toEqual([2, 160]);
    // Any match word differing is another flow.
    for (const w of [K.IN_PORT, K.DL_SRC_LO, K.VLAN_TCI, K.NW_SRC, K.TP_DST, K.TCP_FLAGS, K.TUN_ID, K.METADATA_LO]) {
      const other = keyOf(1);
      other[w] = other[w]! + 1;
      expect(native.lime_fc_lookup(fc, other, 1), `word ${w}`).toBeNull();
    }
    expect(native.lime_fc_counters(fc, k)).toEqual([2, 160]);
    // A new program for the key replaces the old one and keeps the counters.
    expect(native.lime_fc_insert(fc, k, Uint32Array.of(9))).toBe(true);
    expect([...native.lime_fc_lookup(fc, k, 40)!]).toEqual([9]);
    expect(native.lime_fc_counters(fc, k)).toEqual([3, 200]);
  });

  it('forgets everything on invalidate, and starts counting afresh', () => {
    const fc = native.lime_fc_new(64);
    const k = keyOf(2);
    native.lime_fc_insert(fc, k, Uint32Array.of(7, 7));
    native.lime_fc_lookup(fc, k, 10);
    native.lime_fc_invalidate(fc);
    expect(native.lime_fc_lookup(fc, k, 10)).toBeNull();
    expect(native.lime_fc_counters(fc, k)).toBeNull();
    native.lime_fc_insert(fc, k, Uint32Array.of(8));
    expect([...native.lime_fc_lookup(fc, k, 10)!]).toEqual([8]);
    expect(native.lime_fc_counters(fc, k)).toEqual([1, 10]);
  });

  it('stays exact when more flows than slots compete (a hit is always the right program)', () => {
    const fc = native.lime_fc_new(8);
    for (let n = 0; n < 100; n++) expect(native.lime_fc_insert(fc, keyOf(n), Uint32Array.of(n, n + 1))).toBe(true);
    let hits = 0;
    for (let n = 0; n < 100; n++) {
      const p = native.lime_fc_lookup(fc, keyOf(n), 1);
      if (p === null) continue;
      hits++;
      expect([...p]).toEqual([n, n + 1]);
    }
    expect(hits).toBeGreaterThan(0);
    expect(hits).toBeLessThanOrEqual(8);
    // The last one installed is always there.
    expect([...native.lime_fc_lookup(fc, keyOf(99), 1)!]).toEqual([99, 100]);
  });

  it('refuses an empty or too long program, and bad arguments', () => {
    const fc = native.lime_fc_new(4);
    expect(native.lime_fc_insert(fc, keyOf(3), new Uint32Array(0))).toBe(false);
    expect(native.lime_fc_insert(fc, keyOf(3), new Uint32Array(native.LIME_FC_PROG_MAX + 1))).toBe(false);
    expect(native.lime_fc_insert(fc, keyOf(3), new Uint32Array(native.LIME_FC_PROG_MAX))).toBe(true);
    expect(native.lime_fc_lookup(fc, keyOf(4), 1)).toBeNull();
    expect(() => native.lime_fc_lookup({} as never, keyOf(3), 1)).toThrow(/not a flow cache/);
    expect(() => native.lime_fc_lookup(fc, new Uint32Array(KEY_WORDS - 1), 1)).toThrow(/LIME_KEY_WORDS/);
    expect(() => native.lime_fc_insert(fc, keyOf(3), [1, 2] as never)).toThrow(TypeError);
  });

  it('never lets a reader thread see a half-written program while this thread rewrites entries', async () => {
    const fc = native.lime_fc_new(32);
    const nKeys = 96;
    const keys = new Uint32Array(nKeys * KEY_WORDS);
    for (let n = 0; n < nKeys; n++) keys.set(keyOf(n), n * KEY_WORDS);
    native.lime_fc_stress_start(fc, keys);
    let writes = 0;
    try {
      const until = Date.now() + 400;
      let version = 0;
      while (Date.now() < until) {
        for (let i = 0; i < 500; i++) {
          const n = (i * 37 + version) % nKeys;
          native.lime_fc_insert(fc, keys.subarray(n * KEY_WORDS, (n + 1) * KEY_WORDS), native.lime_fc_stress_program(keys.subarray(n * KEY_WORDS, (n + 1) * KEY_WORDS), version));
          writes++;
        }
        version++;
        if (version % 50 === 0) native.lime_fc_invalidate(fc);
        await new Promise((r) => setImmediate(r)); // let the reader run on the other core too
      }
    } finally {
      const [lookups, hits, torn] = native.lime_fc_stress_stop();
      expect(torn).toBe(0);
      expect(lookups).toBeGreaterThan(10_000);
      expect(hits).toBeGreaterThan(1_000);
      expect(writes).toBeGreaterThan(10_000);
    }
    expect(() => native.lime_fc_stress_stop()).toThrow(/not running/);
  });
});
