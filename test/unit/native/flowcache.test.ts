/**
 * The native flow cache (native/flowcache.c): exact match on a key's match words, two
 * slots per key and no eviction (an entry only goes into a free slot), an epoch for
 * invalidation, per-entry counters harvested as deltas (slots are freed by a harvest),
 * and a sequence lock per entry so that a reader on another thread never sees a
 * half-written program — checked with a real reader thread racing this (writer) thread,
 * which also checks that the harvested counts add up exactly to what the reader counted.
 */
import { describe, expect, it } from 'vitest';
import { K, KEY_WORDS } from '../../../src/packet/key.js';
import { loadNative, type NativeFlowCache } from '../../../src/io/native.js';

const native = loadNative();
const PROG_MAX = native.LIME_FC_PROG_MAX;
const RETIRE_ALL = native.LIME_FC_RETIRE_ALL;
const RETIRE_IDLE = native.LIME_FC_RETIRE_IDLE;

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

interface HarvestRecord {
  packets: number;
  bytes: number;
  prog: number[];
}

/**
 * One whole harvest (from cursor 0 until the cursor reaches the slot count) with an `out`
 * of `outWords`: its records, the number of calls it took and whether every call found
 * the reader quiescent.
 */
function harvest(fc: NativeFlowCache, flags = 0, outWords = 4096, between?: (call: number) => void) {
  const out = new Float64Array(outWords);
  const state = new Uint32Array(2);
  const slots = native.lime_fc_usage(fc)[1];
  const records: HarvestRecord[] = [];
  let calls = 0;
  let quiesced = true;
  do {
    if (calls > 0) between?.(calls);
    const w = native.lime_fc_harvest(fc, out, flags, state);
    calls++;
    quiesced &&= state[1] === 1;
    expect(w).toBeLessThanOrEqual(outWords);
    // A call that stops short wrote at least one record (or nothing could ever progress).
    if (state[0]! < slots) expect(w).toBeGreaterThan(0);
    for (let i = 0; i < w; ) {
      const len = out[i + 2]!;
      expect(len).toBeGreaterThan(0);
      expect(len).toBeLessThanOrEqual(PROG_MAX);
      records.push({ packets: out[i]!, bytes: out[i + 1]!, prog: [...out.subarray(i + 3, i + 3 + len)] });
      i += 3 + len;
      expect(i).toBeLessThanOrEqual(w);
    }
  } while (state[0]! < slots);
  expect(state[0]).toBe(slots);
  return { records, calls, quiesced };
}

/** Records by program (the tests give every key a program of its own). */
function byProgram(records: HarvestRecord[]): Map<string, [number, number]> {
  const m = new Map<string, [number, number]>();
  for (const r of records) {
    const k = r.prog.join(',');
    expect(m.has(k), `one record per entry: ${k}`).toBe(false);
    m.set(k, [r.packets, r.bytes]);
  }
  return m;
}

describe('native flow cache', () => {
  it('returns the program installed for a key, counts its packets and bytes, and misses other keys', () => {
    const fc = native.lime_fc_new(64);
    const k = keyOf(1);
    expect(native.lime_fc_lookup(fc, k, 100)).toBeNull();
    expect(native.lime_fc_insert(fc, k, Uint32Array.of(5, 1, 3))).toBe(1);
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
    expect(native.lime_fc_usage(fc)).toEqual([1, 64]);
  });

  it('keeps the first program of a key within an epoch: a second insert returns 0 and changes nothing', () => {
    const fc = native.lime_fc_new(64);
    const k = keyOf(1);
    expect(native.lime_fc_insert(fc, k, Uint32Array.of(5, 1, 3))).toBe(1);
    native.lime_fc_lookup(fc, k, 100);
    // Also with other offsets: the same flow, so the same entry.
    expect(native.lime_fc_insert(fc, keyOf(1, 8), Uint32Array.of(9))).toBe(0);
    expect(native.lime_fc_insert(fc, k, Uint32Array.of(9))).toBe(0);
    expect([...native.lime_fc_lookup(fc, k, 40)!]).toEqual([5, 1, 3]);
    expect(native.lime_fc_counters(fc, k)).toEqual([2, 140]);
    expect(native.lime_fc_usage(fc)).toEqual([1, 64]); // no second slot taken
    expect(byProgram(harvest(fc).records)).toEqual(new Map([['5,1,3', [2, 140]]]));
  });

  it('forgets everything on invalidate and starts counting afresh; the old slots are freed by a harvest', () => {
    const fc = native.lime_fc_new(64);
    const k = keyOf(2);
    expect(native.lime_fc_insert(fc, k, Uint32Array.of(7, 7))).toBe(1);
    native.lime_fc_lookup(fc, k, 10);
    native.lime_fc_invalidate(fc);
    expect(native.lime_fc_lookup(fc, k, 10)).toBeNull();
    expect(native.lime_fc_counters(fc, k)).toBeNull();
    // The old entry still holds its slot until a harvest frees it.
    expect(native.lime_fc_usage(fc)).toEqual([1, 64]);
    // The key has two slots: it goes in again until both hold entries of older epochs.
    let installed = 0;
    let r = 0;
    for (let round = 0; round < 3 && (r = native.lime_fc_insert(fc, k, Uint32Array.of(8, round))) === 1; round++) {
      installed++;
      expect([...native.lime_fc_lookup(fc, k, 10)!]).toEqual([8, round]);
      expect(native.lime_fc_counters(fc, k)).toEqual([1, 10]);
      native.lime_fc_invalidate(fc);
    }
    expect(r).toBe(-2);
    expect(installed).toBeLessThanOrEqual(1); // at most one other slot
    expect(native.lime_fc_usage(fc)).toEqual([1 + installed, 64]);
    // A harvest (no flags) reports the old entries' counts once and frees their slots.
    const { records, quiesced } = harvest(fc);
    expect(quiesced).toBe(true);
    const expected = new Map<string, [number, number]>([['7,7', [1, 10]]]);
    if (installed === 1) expected.set('8,0', [1, 10]);
    expect(byProgram(records)).toEqual(expected);
    expect(native.lime_fc_usage(fc)).toEqual([0, 64]);
    expect(native.lime_fc_insert(fc, k, Uint32Array.of(8))).toBe(1);
    expect([...native.lime_fc_lookup(fc, k, 10)!]).toEqual([8]);
    expect(native.lime_fc_counters(fc, k)).toEqual([1, 10]);
    expect(harvest(fc).records).toEqual([{ packets: 1, bytes: 10, prog: [8] }]);
  });

  it('never evicts when more flows than slots compete: inserts beyond capacity return -2, and a hit is always the right program', () => {
    const fc = native.lime_fc_new(8);
    const result: number[] = [];
    for (let n = 0; n < 100; n++) result.push(native.lime_fc_insert(fc, keyOf(n), Uint32Array.of(n, n + 1)));
    const installed = result.flatMap((r, n) => (r === 1 ? [n] : []));
    expect(result.every((r) => r === 1 || r === -2)).toBe(true);
    expect(installed.length).toBeGreaterThan(0);
    expect(installed.length).toBeLessThanOrEqual(8);
    expect(native.lime_fc_usage(fc)).toEqual([installed.length, 8]);
    // Exactly the installed flows hit, each its own program (nothing was replaced).
    for (let n = 0; n < 100; n++) {
      const p = native.lime_fc_lookup(fc, keyOf(n), n + 1);
      if (result[n] === 1) expect(p && [...p], `flow ${n}`).toEqual([n, n + 1]);
      else expect(p, `flow ${n}`).toBeNull();
    }
    // Inserting again changes nothing either.
    for (let n = 0; n < 100; n++) expect(native.lime_fc_insert(fc, keyOf(n), Uint32Array.of(1000 + n))).toBe(result[n] === 1 ? 0 : -2);

    // RETIRE_ALL: every entry's final counts, and every slot free again.
    const { records, quiesced } = harvest(fc, RETIRE_ALL);
    expect(quiesced).toBe(true);
    expect(byProgram(records)).toEqual(new Map(installed.map((n) => [`${n},${n + 1}`, [1, n + 1]])));
    expect(native.lime_fc_usage(fc)).toEqual([0, 8]);
    for (const n of installed) expect(native.lime_fc_lookup(fc, keyOf(n), 1)).toBeNull();
    // Flows refused before now get a slot.
    const refused = result.flatMap((r, n) => (r === -2 ? [n] : []));
    let second = 0;
    for (const n of refused) {
      if (native.lime_fc_insert(fc, keyOf(n), Uint32Array.of(n, 7)) !== 1) continue;
      second++;
      expect([...native.lime_fc_lookup(fc, keyOf(n), 1)!]).toEqual([n, 7]);
    }
    expect(second).toBeGreaterThan(0);
    expect(native.lime_fc_usage(fc)).toEqual([second, 8]);
  });

  it('harvests what each entry counted since the last harvest, once', () => {
    const fc = native.lime_fc_new(64);
    const [k1, k2, k3] = [keyOf(1), keyOf(2), keyOf(3)];
    expect(native.lime_fc_insert(fc, k1, Uint32Array.of(1, 1))).toBe(1);
    expect(native.lime_fc_insert(fc, k2, Uint32Array.of(2, 2, 2))).toBe(1);
    expect(native.lime_fc_insert(fc, k3, Uint32Array.of(3))).toBe(1);
    for (const b of [100, 200, 300]) native.lime_fc_lookup(fc, k1, b);
    native.lime_fc_lookup(fc, k2, 50);
    // k3 counted nothing: no record for it.
    const first = harvest(fc);
    expect(first.quiesced).toBe(true);
    expect(byProgram(first.records)).toEqual(
      new Map([
        ['1,1', [3, 600]],
        ['2,2,2', [1, 50]],
      ]),
    );
    // Nothing new: nothing reported (returns 0 words).
    const state = new Uint32Array(2);
    expect(native.lime_fc_harvest(fc, new Float64Array(3 + PROG_MAX), 0, state)).toBe(0);
    expect(state[0]).toBe(64);
    // Deltas: only what came since.
    native.lime_fc_lookup(fc, k1, 70);
    native.lime_fc_lookup(fc, k3, 5);
    native.lime_fc_lookup(fc, k3, 6);
    expect(byProgram(harvest(fc).records)).toEqual(
      new Map([
        ['1,1', [1, 70]],
        ['3', [2, 11]],
      ]),
    );
    // lime_fc_counters keeps the totals; a harvest without flags frees nothing.
    expect(native.lime_fc_counters(fc, k1)).toEqual([4, 670]);
    expect(native.lime_fc_usage(fc)).toEqual([3, 64]);
    expect(harvest(fc).records).toEqual([]);
  });

  it('RETIRE_IDLE measures idleness from one retiring harvest to the next; plain harvests in between do not count', () => {
    const fc = native.lime_fc_new(64);
    const k = keyOf(7);
    native.lime_fc_insert(fc, k, Uint32Array.of(7));
    native.lime_fc_lookup(fc, k, 10);
    expect(harvest(fc, RETIRE_IDLE).records).toEqual([{ packets: 1, bytes: 10, prog: [7] }]);
    native.lime_fc_lookup(fc, k, 10);
    expect(harvest(fc).records).toEqual([{ packets: 1, bytes: 10, prog: [7] }]); // reported, window goes on
    expect(harvest(fc, RETIRE_IDLE).records).toEqual([]);
    expect(native.lime_fc_usage(fc)[0]).toBe(1); // a packet since the last retiring harvest: kept
    expect(harvest(fc, RETIRE_IDLE).records).toEqual([]);
    expect(native.lime_fc_usage(fc)[0]).toBe(0); // none since: freed
  });

  it('RETIRE_IDLE frees only the entries without a packet since the last retiring harvest', () => {
    const fc = native.lime_fc_new(64);
    const [busy, idle, fresh] = [keyOf(1), keyOf(2), keyOf(3)];
    native.lime_fc_insert(fc, busy, Uint32Array.of(1));
    native.lime_fc_insert(fc, idle, Uint32Array.of(2));
    native.lime_fc_lookup(fc, busy, 10);
    native.lime_fc_lookup(fc, idle, 20);
    // Both counted since the last (no) harvest: both stay, their counts reported.
    expect(byProgram(harvest(fc, RETIRE_IDLE).records)).toEqual(
      new Map([
        ['1', [1, 10]],
        ['2', [1, 20]],
      ]),
    );
    expect(native.lime_fc_usage(fc)).toEqual([2, 64]);
    native.lime_fc_insert(fc, fresh, Uint32Array.of(3));
    native.lime_fc_lookup(fc, busy, 30);
    const { records, quiesced } = harvest(fc, RETIRE_IDLE);
    expect(quiesced).toBe(true);
    expect(records).toEqual([{ packets: 1, bytes: 30, prog: [1] }]);
    // The idle entry and the never-hit fresh one are gone; the busy one keeps hitting.
    expect(native.lime_fc_usage(fc)).toEqual([1, 64]);
    expect(native.lime_fc_lookup(fc, idle, 1)).toBeNull();
    expect(native.lime_fc_lookup(fc, fresh, 1)).toBeNull();
    expect(native.lime_fc_counters(fc, idle)).toBeNull();
    expect([...native.lime_fc_lookup(fc, busy, 40)!]).toEqual([1]);
    expect(native.lime_fc_counters(fc, busy)).toEqual([3, 80]);
    // A retired key can be installed again, counting from zero.
    expect(native.lime_fc_insert(fc, idle, Uint32Array.of(2, 9))).toBe(1);
    expect([...native.lime_fc_lookup(fc, idle, 5)!]).toEqual([2, 9]);
    expect(byProgram(harvest(fc, RETIRE_IDLE).records)).toEqual(
      new Map([
        ['1', [1, 40]],
        ['2,9', [1, 5]],
      ]),
    );
    // No traffic at all: everything is idle and freed.
    expect(harvest(fc, RETIRE_IDLE).records).toEqual([]);
    expect(native.lime_fc_usage(fc)).toEqual([0, 64]);
    expect(native.lime_fc_lookup(fc, busy, 1)).toBeNull();
  });

  it('RETIRE_ALL reports every entry’s final counts and frees every slot; the keys install again afresh', () => {
    const fc = native.lime_fc_new(16);
    const n = 6;
    for (let i = 0; i < n; i++) expect(native.lime_fc_insert(fc, keyOf(i), Uint32Array.of(i, 100 + i))).toBe(1);
    for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) native.lime_fc_lookup(fc, keyOf(i), 10 * (j + 1));
    // Half reported already by an earlier harvest: the final one has only what came since.
    expect(harvest(fc).records).toHaveLength(n);
    for (let i = 0; i < n; i += 2) native.lime_fc_lookup(fc, keyOf(i), 7);
    const { records, quiesced } = harvest(fc, RETIRE_ALL);
    expect(quiesced).toBe(true);
    expect(byProgram(records)).toEqual(new Map([0, 2, 4].map((i) => [`${i},${100 + i}`, [1, 7]])));
    expect(native.lime_fc_usage(fc)).toEqual([0, 16]);
    for (let i = 0; i < n; i++) {
      expect(native.lime_fc_lookup(fc, keyOf(i), 1)).toBeNull();
      expect(native.lime_fc_insert(fc, keyOf(i), Uint32Array.of(i, 200 + i))).toBe(1);
      expect([...native.lime_fc_lookup(fc, keyOf(i), 3)!]).toEqual([i, 200 + i]);
      expect(native.lime_fc_counters(fc, keyOf(i))).toEqual([1, 3]);
    }
  });

  it('resumes a harvest across an out too small for all records, with the same totals, and applies the flags once', () => {
    // Two caches with the same entries and traffic: one harvested at once, one in pieces.
    const [whole, pieces] = [native.lime_fc_new(256), native.lime_fc_new(256)];
    const n = 40;
    const expected = new Map<string, [number, number]>();
    for (let i = 0; i < n; i++) {
      // Programs of every length, up to the longest one an entry holds.
      const len = i === 0 ? PROG_MAX : 1 + ((i * 7) % PROG_MAX);
      const p = Uint32Array.from({ length: len }, (_, w) => (w === 0 ? i : w * 1000 + i));
      // Both caches put a key in the same slots: the same answer from both (rarely -2: both slots taken).
      const r = native.lime_fc_insert(whole, keyOf(i), p);
      expect(native.lime_fc_insert(pieces, keyOf(i), p)).toBe(r);
      if (r !== 1) continue;
      const hits = 1 + (i % 5);
      for (let h = 0; h < hits; h++) for (const fc of [whole, pieces]) native.lime_fc_lookup(fc, keyOf(i), 64 + i + h);
      let bytes = 0;
      for (let h = 0; h < hits; h++) bytes += 64 + i + h;
      expected.set([...p].join(','), [hits, bytes]);
    }
    expect(expected.size).toBeGreaterThan(n / 2);
    const all = harvest(whole, RETIRE_ALL, expected.size * (3 + PROG_MAX));
    expect(all.calls).toBe(1);
    expect(byProgram(all.records)).toEqual(expected);
    // The smallest out allowed holds one record of the longest program.
    let words = 0;
    for (const prog of expected.keys()) words += 3 + prog.split(',').length;
    const late = keyOf(1000);
    const split = harvest(pieces, RETIRE_ALL, 3 + PROG_MAX, (call) => {
      // Mid-harvest: an entry installed now is of the new epoch and not retired (the flags acted at cursor 0 only).
      if (call === 1) expect(native.lime_fc_insert(pieces, late, Uint32Array.of(42))).toBe(1);
    });
    expect(split.calls).toBeGreaterThanOrEqual(Math.ceil(words / (3 + PROG_MAX)));
    expect(byProgram(split.records)).toEqual(expected);
    expect(native.lime_fc_usage(whole)).toEqual([0, 256]);
    expect(native.lime_fc_usage(pieces)).toEqual([1, 256]);
    expect([...native.lime_fc_lookup(pieces, late, 1)!]).toEqual([42]);
    for (let i = 0; i < n; i++) expect(native.lime_fc_lookup(pieces, keyOf(i), 1)).toBeNull();
  });

  it('refuses an empty or too long program, and bad arguments', () => {
    const fc = native.lime_fc_new(4);
    expect(native.lime_fc_insert(fc, keyOf(3), new Uint32Array(0))).toBe(-1);
    expect(native.lime_fc_insert(fc, keyOf(3), new Uint32Array(PROG_MAX + 1))).toBe(-1);
    expect(native.lime_fc_usage(fc)).toEqual([0, 4]);
    expect(native.lime_fc_insert(fc, keyOf(3), new Uint32Array(PROG_MAX))).toBe(1);
    expect(native.lime_fc_insert(fc, keyOf(3), new Uint32Array(PROG_MAX + 1))).toBe(-1);
    expect(native.lime_fc_lookup(fc, keyOf(4), 1)).toBeNull();
    expect(() => native.lime_fc_lookup({} as never, keyOf(3), 1)).toThrow(/not a flow cache/);
    expect(() => native.lime_fc_lookup(fc, new Uint32Array(KEY_WORDS - 1), 1)).toThrow(/LIME_KEY_WORDS/);
    expect(() => native.lime_fc_insert(fc, keyOf(3), [1, 2] as never)).toThrow(TypeError);
    // out must hold the longest record; state must be [cursor, quiesced].
    const state = new Uint32Array(2);
    expect(() => native.lime_fc_harvest(fc, new Float64Array(2 + PROG_MAX), 0, state)).toThrow(TypeError);
    expect(() => native.lime_fc_harvest(fc, new Float32Array(3 + PROG_MAX) as never, 0, state)).toThrow(TypeError);
    expect(() => native.lime_fc_harvest(fc, [] as never, 0, state)).toThrow(TypeError);
    expect(() => native.lime_fc_harvest(fc, new Float64Array(3 + PROG_MAX), 0, new Uint32Array(1))).toThrow(TypeError);
    expect(() => native.lime_fc_harvest({} as never, new Float64Array(3 + PROG_MAX), 0, state)).toThrow(/not a flow cache/);
    expect(native.lime_fc_harvest(fc, new Float64Array(3 + PROG_MAX), 0, state)).toBe(0);
    expect(state[0]).toBe(4);
  });

  it('never lets a reader thread see a half-written program, and harvests exactly what it counted, while this thread installs and retires entries', async () => {
    const fc = native.lime_fc_new(32);
    const slots = native.lime_fc_usage(fc)[1];
    const nKeys = 96;
    const keys = new Uint32Array(nKeys * KEY_WORDS);
    for (let n = 0; n < nKeys; n++) keys.set(keyOf(n), n * KEY_WORDS);
    // Every program installed, by its first two words (version, a word of key and version).
    const installedPrograms = new Map<string, Uint32Array>();
    const wasInstalled = (rec: Float64Array): boolean => {
      const prog = installedPrograms.get(`${rec[0]},${rec[1]}`);
      return prog !== undefined && prog.length === rec.length && prog.every((word, i) => word === rec[i]);
    };
    let packets = 0;
    let bytes = 0;
    let foreign = 0; // records whose program this thread never installed
    // Lean (no expect per record), so that harvests come quickly after one another.
    const big = new Float64Array(4096);
    const small = new Float64Array(3 + PROG_MAX);
    const state = new Uint32Array(2);
    const collect = (flags: number, out = big): void => {
      state[0] = 0;
      do {
        const w = native.lime_fc_harvest(fc, out, flags, state);
        for (let i = 0; i < w; i += 3 + out[i + 2]!) {
          packets += out[i]!;
          bytes += out[i + 1]!;
          if (!wasInstalled(out.subarray(i + 3, i + 3 + out[i + 2]!))) foreign++;
        }
      } while (state[0]! < slots);
    };
    native.lime_fc_stress_start(fc, keys);
    let writes = 0;
    let installs = 0;
    let stopped: [number, number, number, number] | null = null;
    try {
      // Bounded by work (and at least 600 ms of racing), not by how fast this machine is today.
      const minUntil = Date.now() + 600;
      const maxUntil = Date.now() + 30_000;
      let version = 0;
      while ((version < 300 || Date.now() < minUntil) && Date.now() < maxUntil) {
        // Harvest while the reader counts, each harvest right after another (so that an
        // entry read mid-count is often retired before its next packet): plain ones (in
        // pieces every other time), each followed by one retiring the idle entries, then
        // one retiring everything; now and then invalidate first, so that entries are
        // also retired as older epochs.
        if (version % 50 === 49) native.lime_fc_invalidate(fc);
        for (let j = 0; j < 4; j++) {
          collect(0, j % 2 === 0 ? small : big);
          collect(RETIRE_IDLE);
        }
        collect(RETIRE_ALL);
        // Every key once (37 and 96 are coprime), into the slots the harvests freed.
        for (let i = 0; i < nKeys; i++) {
          const n = (i * 37 + version) % nKeys;
          const key = keys.subarray(n * KEY_WORDS, (n + 1) * KEY_WORDS);
          const prog = native.lime_fc_stress_program(key, version);
          const r = native.lime_fc_insert(fc, key, prog);
          writes++;
          if (r === 1) {
            installs++;
            installedPrograms.set(`${prog[0]},${prog[1]}`, prog);
          }
        }
        version++;
        await new Promise((r) => setImmediate(r)); // let the reader run on the other core too (on a full cache)
      }
    } finally {
      stopped = native.lime_fc_stress_stop();
    }
    // The reader is gone: one last harvest has what it counted since.
    collect(RETIRE_ALL);
    const [lookups, hits, torn, readerBytes] = stopped;
    expect(torn).toBe(0);
    expect(foreign).toBe(0);
    expect(packets, 'packets harvested = packets the reader counted').toBe(hits);
    expect(bytes, 'bytes harvested = bytes the reader counted').toBe(readerBytes);
    expect(native.lime_fc_usage(fc)).toEqual([0, slots]);
    expect(lookups).toBeGreaterThan(10_000);
    expect(hits).toBeGreaterThan(1_000);
    expect(writes).toBeGreaterThan(10_000);
    // Slots were freed and reused many times over.
    expect(installs).toBeGreaterThan(slots * 2);
    expect(() => native.lime_fc_stress_stop()).toThrow(/not running/);
  });
});
