import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MacTable } from '../../../src/datapath/mac-table.js';

const S = 1000; // ms per second

describe('MacTable', () => {
  it('learns and looks up per VLAN', () => {
    const t = new MacTable(16, 300);
    expect(t.lookup(0x0200, 1, 0, 0)).toBe(-1);
    expect(t.learn(0x0200, 1, 0, 3, 0)).toBe(true);
    expect(t.lookup(0x0200, 1, 0, 0)).toBe(3);
    // Same MAC on another VLAN is a different entry.
    expect(t.lookup(0x0200, 1, 10, 0)).toBe(-1);
    t.learn(0x0200, 1, 10, 4, 0);
    expect(t.lookup(0x0200, 1, 10, 0)).toBe(4);
    expect(t.lookup(0x0200, 1, 0, 0)).toBe(3);
    expect(t.size).toBe(2);
  });

  it('moves a MAC to its new port at once and counts the move', () => {
    const t = new MacTable(16, 300);
    t.learn(0x0200, 7, 0, 1, 0);
    expect(t.learn(0x0200, 7, 0, 1, 1)).toBe(false);
    expect(t.learn(0x0200, 7, 0, 2, 2)).toBe(true);
    expect(t.lookup(0x0200, 7, 0, 2)).toBe(2);
    expect(t.nMoves).toBe(1);
    expect(t.size).toBe(1);
  });

  it('ages entries out after the aging time, in lookup and in expire()', () => {
    const t = new MacTable(16, 300);
    t.learn(0x0200, 1, 0, 1, 0);
    t.learn(0x0200, 2, 0, 1, 100 * S);
    expect(t.lookup(0x0200, 1, 0, 300 * S)).toBe(1);
    expect(t.lookup(0x0200, 1, 0, 300 * S + 1)).toBe(-1);
    expect(t.expire(300 * S + 1)).toBe(1);
    expect(t.size).toBe(1);
    expect(t.lookup(0x0200, 2, 0, 300 * S + 1)).toBe(1);
    // Seeing a MAC again refreshes it.
    t.learn(0x0200, 2, 0, 1, 350 * S);
    expect(t.expire(450 * S)).toBe(0);
    expect(t.expire(651 * S)).toBe(1);
    expect(t.size).toBe(0);
  });

  it('never grows past its bound: evicts the least recently seen entry and counts it', () => {
    const t = new MacTable(4, 300);
    for (let i = 0; i < 4; i++) t.learn(0x0200, i, 0, 1, i);
    t.learn(0x0200, 0, 0, 1, 10); // refresh MAC 0: MAC 1 is now the oldest
    t.learn(0x0200, 100, 0, 2, 11);
    expect(t.size).toBe(4);
    expect(t.nEvictions).toBe(1);
    expect(t.lookup(0x0200, 1, 0, 11)).toBe(-1);
    expect(t.lookup(0x0200, 0, 0, 11)).toBe(1);
    expect(t.lookup(0x0200, 100, 0, 11)).toBe(2);
    for (let i = 1000; i < 1100; i++) t.learn(0x0200, i, 0, 3, 20 + i);
    expect(t.size).toBe(4);
    expect(t.nEvictions).toBe(101);
  });

  it('flushes every MAC of a port', () => {
    const t = new MacTable(16, 300);
    t.learn(0x0200, 1, 0, 1, 0);
    t.learn(0x0200, 2, 0, 2, 0);
    t.learn(0x0200, 3, 0, 1, 0);
    expect(t.flushPort(1)).toBe(2);
    expect(t.size).toBe(1);
    expect(t.lookup(0x0200, 2, 0, 0)).toBe(2);
    expect(t.lookup(0x0200, 1, 0, 0)).toBe(-1);
  });

  it('agrees with a brute-force reference on random operation sequences', () => {
    type Op = { kind: 'learn' | 'lookup' | 'expire' | 'flush'; mac: number; vlan: number; port: number; dt: number };
    const op = fc.record({
      kind: fc.constantFrom('learn', 'learn', 'learn', 'lookup', 'lookup', 'expire', 'flush'),
      mac: fc.integer({ min: 0, max: 40 }),
      vlan: fc.integer({ min: 0, max: 2 }),
      port: fc.integer({ min: 1, max: 4 }),
      dt: fc.integer({ min: 0, max: 40 * S }),
    }) as fc.Arbitrary<Op>;
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), fc.integer({ min: 1, max: 24 }), (ops, capacity) => {
        const aging = 100;
        const t = new MacTable(capacity, aging);
        // Reference: insertion-ordered map; re-inserting moves a key to the end (newest).
        const ref = new Map<string, { port: number; seen: number }>();
        let now = 0;
        let evictions = 0;
        for (const o of ops) {
          now += o.dt;
          const k = `${o.vlan}/${o.mac}`;
          if (o.kind === 'learn') {
            const had = ref.get(k);
            ref.delete(k);
            if (had === undefined && ref.size === capacity) {
              ref.delete(ref.keys().next().value!);
              evictions++;
            }
            ref.set(k, { port: o.port, seen: now });
            t.learn(0x0a00, o.mac, o.vlan, o.port, now);
          } else if (o.kind === 'lookup') {
            const e = ref.get(k);
            const want = e === undefined || now - e.seen > aging * S ? -1 : e.port;
            expect(t.lookup(0x0a00, o.mac, o.vlan, now)).toBe(want);
          } else if (o.kind === 'expire') {
            let n = 0;
            for (const [key, e] of [...ref]) {
              if (now - e.seen > aging * S) {
                ref.delete(key);
                n++;
              }
            }
            expect(t.expire(now)).toBe(n);
          } else {
            let n = 0;
            for (const [key, e] of [...ref]) {
              if (e.port === o.port) {
                ref.delete(key);
                n++;
              }
            }
            expect(t.flushPort(o.port)).toBe(n);
          }
          expect(t.size).toBe(ref.size);
          expect(t.nEvictions).toBe(evictions);
        }
      }),
      { numRuns: 500 },
    );
  });
});
