/**
 * The tuple-space classifier (through FlowTable, and directly) against a brute-force
 * reference: a linear scan over all rules in insertion order, highest priority wins, ties
 * go to the earliest added rule (an add that replaces an identical rule counts as new).
 *
 * Field domains are tiny (a few values per word, masks drawn from a handful of shapes plus
 * arbitrary ones, priorities 0..3) so overlaps, equal priorities, shared subtables, hash
 * collisions of chains and replacements are frequent. Rules are added, replaced, modified
 * and deleted (strict and non-strict, all tables) in random batches, some with
 * check_overlap, and after every batch random keys are looked up in both.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Classifier } from '../../../src/table/classifier.js';
import { FlowTable, FlowModError } from '../../../src/table/flow-table.js';
import { K, KEY_WORDS } from '../../../src/packet/key.js';
import type { FlowMod, Match } from '../../../src/flow/types.js';
import { exact, key, match, mod, output } from './helpers.js';

// ---- the reference ------------------------------------------------------------------------

interface RefRule {
  table: number;
  priority: number;
  match: Match;
  cookie: bigint;
}

function refMatches(m: Match, k: Uint32Array): boolean {
  for (let w = 0; w < KEY_WORDS; w++) if (((k[w]! & m.mask[w]!) >>> 0) !== m.value[w]) return false;
  return true;
}
function refEquals(a: Match, b: Match): boolean {
  for (let w = 0; w < KEY_WORDS; w++) if (a.value[w] !== b.value[w] || a.mask[w] !== b.mask[w]) return false;
  return true;
}
/** `by` covers `r`: every bit `by` constrains, `r` constrains to the same value. */
function refCovers(by: Match, r: Match): boolean {
  for (let w = 0; w < KEY_WORDS; w++) {
    for (let b = 0; b < 32; b++) {
      const bit = 2 ** b;
      const byHas = Math.floor(by.mask[w]! / bit) % 2 === 1;
      if (!byHas) continue;
      if (Math.floor(r.mask[w]! / bit) % 2 !== 1) return false;
      if (Math.floor(r.value[w]! / bit) % 2 !== Math.floor(by.value[w]! / bit) % 2) return false;
    }
  }
  return true;
}
function refOverlaps(a: Match, b: Match): boolean {
  for (let w = 0; w < KEY_WORDS; w++) if ((((a.value[w]! ^ b.value[w]!) & a.mask[w]! & b.mask[w]!) >>> 0) !== 0) return false;
  return true;
}

class Reference {
  rules: RefRule[] = [];

  lookup(table: number, k: Uint32Array): RefRule | undefined {
    let best: RefRule | undefined;
    for (const r of this.rules) {
      if (r.table === table && refMatches(r.match, k) && (best === undefined || r.priority > best.priority)) best = r;
    }
    return best;
  }

  /** Apply a batch; throws (leaving the reference unchanged) on a check_overlap conflict. */
  apply(mods: FlowMod[]): void {
    let rules = [...this.rules];
    for (const m of mods) {
      const s = m.spec;
      const inTable = (r: RefRule): boolean => s.table === 255 || r.table === s.table;
      const strictHit = (r: RefRule): boolean => inTable(r) && r.priority === s.priority && refEquals(r.match, s.match);
      switch (m.command) {
        case 'add': {
          const same = rules.findIndex((r) => r.table === s.table && r.priority === s.priority && refEquals(r.match, s.match));
          if (same < 0 && s.flags.checkOverlap && rules.some((r) => r.table === s.table && r.priority === s.priority && refOverlaps(r.match, s.match))) {
            throw new Error('overlap');
          }
          if (same >= 0) rules.splice(same, 1);
          rules.push({ table: s.table, priority: s.priority, match: s.match, cookie: s.cookie });
          break;
        }
        case 'delete':
          rules = rules.filter((r) => !(inTable(r) && refCovers(s.match, r.match)));
          break;
        case 'delete_strict':
          rules = rules.filter((r) => !strictHit(r));
          break;
        default:
          break; // modify changes actions only: invisible to lookup
      }
    }
    this.rules = rules;
  }
}

// ---- generators ---------------------------------------------------------------------------

const WORDS = [K.IN_PORT, K.NW_SRC, K.NW_DST, K.TP_DST] as const;
/** High bits set on NW_SRC so that int32 sign handling is exercised. */
const BASE: Record<number, number> = { [K.IN_PORT]: 0, [K.NW_SRC]: 0xc0a80000, [K.NW_DST]: 0x0a000000, [K.TP_DST]: 0 };
const FULL = 0xffffffff;
const SHAPES: Record<number, number>[] = [
  {},
  { [K.IN_PORT]: FULL },
  { [K.IN_PORT]: FULL, [K.NW_DST]: FULL },
  { [K.NW_SRC]: 0xfffffffc },
  { [K.NW_DST]: 0xfffffffe, [K.TP_DST]: FULL },
  { [K.NW_SRC]: 0x80000005, [K.TP_DST]: 0x3 },
  { [K.IN_PORT]: FULL, [K.NW_SRC]: FULL, [K.NW_DST]: FULL, [K.TP_DST]: FULL },
];
const WORD_MASKS = [0, 0, 1, 2, 4, 6, 0x80000003, 0xfffffffc, FULL];

function arbMatch(valueBits: number): fc.Arbitrary<Match> {
  const shape = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...SHAPES) },
    {
      weight: 1,
      arbitrary: fc.tuple(...WORDS.map(() => fc.constantFrom(...WORD_MASKS))).map((ms): Record<number, number> => Object.fromEntries(WORDS.map((w, i) => [w, ms[i]!]))),
    },
  );
  const values = fc.tuple(...WORDS.map(() => fc.integer({ min: 0, max: (1 << valueBits) - 1 })));
  return fc.tuple(shape, values).map(([sh, vs]) => {
    const f: Record<number, [number, number]> = {};
    WORDS.forEach((w, i) => {
      const m = sh[w] ?? 0;
      if (m !== 0) f[w] = [(BASE[w]! | vs[i]!) >>> 0, m];
    });
    return match(f);
  });
}

function arbKey(valueBits: number): fc.Arbitrary<Uint32Array> {
  return fc
    .tuple(...WORDS.map(() => fc.integer({ min: 0, max: (1 << valueBits) - 1 })))
    .map((vs) => key(Object.fromEntries(WORDS.map((w, i) => [w, (BASE[w]! | vs[i]!) >>> 0]))));
}

type Op =
  | { kind: 'add'; table: number; priority: number; match: Match; checkOverlap: boolean }
  | { kind: 'delete_strict' | 'modify_strict'; pick: number }
  | { kind: 'delete' | 'modify'; table: number; match: Match };

function arbOp(valueBits: number): fc.Arbitrary<Op> {
  const table = fc.constantFrom(0, 0, 1);
  const m = arbMatch(valueBits);
  return fc.oneof(
    {
      weight: 8,
      arbitrary: fc.record({
        kind: fc.constant('add' as const),
        table,
        priority: fc.integer({ min: 0, max: 3 }),
        match: m,
        checkOverlap: fc.constantFrom(false, false, false, true),
      }),
    },
    { weight: 3, arbitrary: fc.record({ kind: fc.constantFrom('delete_strict' as const, 'modify_strict' as const), pick: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom('delete' as const, 'modify' as const), table: fc.constantFrom(0, 1, 255), match: m }) },
  );
}

let nextCookie = 1n;
function toMod(op: Op, ref: Reference): FlowMod | undefined {
  switch (op.kind) {
    case 'add':
      return mod('add', { table: op.table, priority: op.priority, match: op.match, cookie: nextCookie++, flags: { checkOverlap: op.checkOverlap } });
    case 'delete_strict':
    case 'modify_strict': {
      if (ref.rules.length === 0) return undefined;
      const r = ref.rules[op.pick % ref.rules.length]!;
      return mod(op.kind, { table: r.table, priority: r.priority, match: r.match, actions: [output(9)] });
    }
    case 'delete':
    case 'modify':
      return mod(op.kind, { table: op.table, match: op.match, actions: [output(8)] });
  }
}

/** Run batches against both; after each, compare lookups of random keys and of rule-derived keys. */
function runModel(valueBits: number, maxBatches: number, numRuns: number): void {
  fc.assert(
    fc.property(
      fc.array(fc.array(arbOp(valueBits), { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: maxBatches }),
      fc.array(arbKey(valueBits), { minLength: 8, maxLength: 8 }),
      (batches, keys) => {
        const ft = new FlowTable({ now: () => 0, tableMiss: [] });
        const ref = new Reference();
        ref.rules.push({ table: 0, priority: 0, match: match(), cookie: 0n });
        for (const ops of batches) {
          const mods = ops.map((op) => toMod(op, ref)).filter((m): m is FlowMod => m !== undefined);
          let refThrew = false;
          try {
            ref.apply(mods);
          } catch {
            refThrew = true;
          }
          const versionBefore = ft.version;
          let ftThrew = false;
          try {
            ft.apply(mods);
          } catch (e) {
            expect(e).toBeInstanceOf(FlowModError);
            expect((e as FlowModError).code).toBe('OVERLAP');
            ftThrew = true;
          }
          expect(ftThrew).toBe(refThrew);
          if (ftThrew) expect(ft.version).toBe(versionBefore);
          expect(ft.size()).toBe(ref.rules.length);

          // Keys: random, plus one derived from each of (up to) 8 rules so hits are common.
          const probe = [...keys];
          for (const r of ref.rules.slice(-8)) {
            const k = new Uint32Array(keys[0]!);
            for (let w = 0; w < KEY_WORDS; w++) k[w] = ((k[w]! & ~r.match.mask[w]!) | r.match.value[w]!) >>> 0;
            probe.push(k);
          }
          for (const k of probe) {
            for (const table of [0, 1]) {
              const want = ref.lookup(table, k);
              const probesBefore = ft.nSubtableProbes;
              const id = ft.lookup(table, k, 0);
              expect(ft.nSubtableProbes - probesBefore).toBeLessThanOrEqual(ft.nSubtables(table));
              if (want === undefined) expect(id).toBe(-1);
              else {
                expect(id).toBeGreaterThanOrEqual(0);
                const got = ft.rule(id)!;
                expect({ cookie: got.cookie, priority: got.priority, table: got.table }).toEqual({
                  cookie: want.cookie,
                  priority: want.priority,
                  table: want.table,
                });
              }
            }
          }
        }
      },
    ),
    { numRuns },
  );
}

describe('classifier vs brute-force reference', () => {
  it('small domains: frequent overlaps, equal priorities, replacements (2000 tables)', () => {
    runModel(2, 12, 2000);
  });

  it('larger tables: hash growth and backward-shift deletion (300 tables)', () => {
    runModel(5, 40, 300);
  });

  it('keys at an offset inside a larger array', () => {
    const ft = new FlowTable({ now: () => 0 });
    ft.apply([mod('add', { match: exact({ [K.NW_DST]: 0xc0a80001 }), priority: 5 })]);
    const keys = new Uint32Array(KEY_WORDS * 3);
    keys[KEY_WORDS * 2 + K.NW_DST] = 0xc0a80001;
    expect(ft.rule(ft.lookup(0, keys, KEY_WORDS * 2))!.priority).toBe(5);
    expect(ft.rule(ft.lookup(0, keys, KEY_WORDS))!.priority).toBe(0); // table-miss
  });
});

describe('Classifier', () => {
  it('one subtable per distinct mask per table; empty subtables go away', () => {
    const c = new Classifier();
    const m1 = exact({ [K.IN_PORT]: 1 });
    const m2 = exact({ [K.IN_PORT]: 2 });
    const m3 = match({ [K.NW_DST]: [0x0a000000, 0xff000000] });
    c.insert(0, 0, m1, 10, 0);
    c.insert(1, 0, m2, 10, 1);
    c.insert(2, 0, m3, 10, 2);
    c.insert(3, 1, m1, 10, 3);
    expect(c.nSubtables(0)).toBe(2);
    expect(c.nSubtables(1)).toBe(1);
    c.remove(2);
    expect(c.nSubtables(0)).toBe(1);
    c.remove(3);
    expect(c.nSubtables(1)).toBe(0);
    expect(c.size).toBe(2);
  });

  it('probes subtables by max priority and stops early', () => {
    const c = new Classifier();
    // 10 masks at priorities 100, 90, ..., 10; the most specific one matches first.
    const words = [K.IN_PORT, K.DL_TYPE, K.NW_SRC, K.NW_DST, K.NW_PROTO, K.TP_SRC, K.TP_DST, K.VLAN_TCI, K.NW_TOS, K.NW_TTL];
    words.forEach((w, i) => c.insert(i, 0, exact({ [w]: 7 }), 100 - i * 10, i));
    const k = key(Object.fromEntries(words.map((w) => [w, 7])));
    const p0 = c.nSubtableProbes;
    expect(c.lookup(0, k, 0)).toBe(0);
    expect(c.nSubtableProbes - p0).toBe(1); // early exit after the first subtable
    const miss = key();
    const p1 = c.nSubtableProbes;
    expect(c.lookup(0, miss, 0)).toBe(-1);
    expect(c.nSubtableProbes - p1).toBe(10); // a miss probes every mask once
    expect(c.subtables(0).map((s) => s.maxPriority)).toEqual([100, 90, 80, 70, 60, 50, 40, 30, 20, 10]);
    c.remove(0);
    expect(c.subtables(0)[0]!.maxPriority).toBe(90);
  });

  it('equal priority: the smallest seq (earliest added) wins, across subtables and within a chain', () => {
    const c = new Classifier();
    c.insert(5, 0, exact({ [K.IN_PORT]: 1 }), 7, 2);
    c.insert(6, 0, match(), 7, 1);
    expect(c.lookup(0, key({ [K.IN_PORT]: 1 }), 0)).toBe(6);
    c.remove(6);
    expect(c.lookup(0, key({ [K.IN_PORT]: 1 }), 0)).toBe(5);
    // Same match, different priorities share one chain: the higher priority heads it.
    c.insert(7, 0, exact({ [K.IN_PORT]: 1 }), 9, 3);
    expect(c.lookup(0, key({ [K.IN_PORT]: 1 }), 0)).toBe(7);
    c.remove(7);
    expect(c.lookup(0, key({ [K.IN_PORT]: 1 }), 0)).toBe(5);
  });

  it('findOverlap and collectCovered', () => {
    const c = new Classifier();
    c.insert(0, 0, exact({ [K.IN_PORT]: 1, [K.NW_DST]: 5 }), 10, 0);
    c.insert(1, 0, match({ [K.NW_DST]: [4, 0xfffffffc] }), 10, 1);
    c.insert(2, 0, exact({ [K.IN_PORT]: 2 }), 20, 2);
    expect(c.findOverlap(0, exact({ [K.NW_DST]: 5 }), 10)).toBeGreaterThanOrEqual(0);
    expect(c.findOverlap(0, exact({ [K.NW_DST]: 9 }), 10)).toBe(-1);
    expect(c.findOverlap(0, exact({ [K.IN_PORT]: 2 }), 10)).toBe(1); // nw_dst=4/30 overlaps in_port=2
    expect(c.findOverlap(0, exact({ [K.IN_PORT]: 3 }), 20)).toBe(-1);
    const out: number[] = [];
    c.collectCovered(0, match({ [K.NW_DST]: [4, 0xfffffffc] }), out);
    expect(out.sort()).toEqual([0, 1]);
    out.length = 0;
    c.collectCovered(0, match(), out);
    expect(out.sort()).toEqual([0, 1, 2]);
  });

  it('tables are independent; bad table ids miss', () => {
    const c = new Classifier();
    c.insert(0, 3, match(), 1, 0);
    expect(c.lookup(3, key(), 0)).toBe(0);
    expect(c.lookup(0, key(), 0)).toBe(-1);
    expect(c.lookup(255, key(), 0)).toBe(-1);
    expect(c.lookup(-1, key(), 0)).toBe(-1);
  });

  it('many rules per subtable survive growth and interleaved deletes', () => {
    const c = new Classifier();
    const n = 5000;
    for (let i = 0; i < n; i++) c.insert(i, 0, exact({ [K.NW_DST]: (0x80000000 + i * 7919) >>> 0 }), 1, i);
    for (let i = 0; i < n; i += 3) c.remove(i);
    for (let i = 0; i < n; i++) {
      const got = c.lookup(0, key({ [K.NW_DST]: (0x80000000 + i * 7919) >>> 0 }), 0);
      expect(got).toBe(i % 3 === 0 ? -1 : i);
    }
    expect(c.nSubtables(0)).toBe(1);
  });
});
