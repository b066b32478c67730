/**
 * lookup() and credit() allocate nothing (the data path calls them per flow group and per
 * cache miss).
 *
 * As in test/unit/packet/extract-alloc.test.ts: heapUsed must not grow by 1 MB or more
 * over 300k operations, and no garbage collection may start during the measured loop
 * (PerformanceObserver 'gc' entries). A single boxed double or temporary array per call
 * would fail one or the other.
 */
import { describe, expect, it } from 'vitest';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { FlowTable } from '../../../src/table/flow-table.js';
import { K, KEY_WORDS } from '../../../src/packet/key.js';
import type { FlowMod } from '../../../src/flow/types.js';
import { add, match } from './helpers.js';
import { collectGarbage } from '../../helpers/gc.js';

const MASK_WORDS = [K.IN_PORT, K.NW_SRC, K.NW_DST, K.TP_DST, K.TP_SRC];

describe('flow table allocation', () => {
  it('300k lookups + credits over 10k rules / 10 masks: no heap growth ≥ 1 MB and no GC', async () => {
    const ft = new FlowTable({ now: () => 0 });
    const mods: FlowMod[] = [];
    for (let i = 0; i < 10_000; i++) {
      const shape = i % 10;
      const f: Record<number, [number, number]> = {};
      MASK_WORDS.forEach((w, j) => {
        if (((shape + 1) >> j) & 1) f[w] = [(Math.imul(i, 2654435761) >>> (j * 3)) >>> 0, j === 1 ? 0xffffff00 : 0xffffffff];
      });
      mods.push(add({ match: match(f), priority: 1 + (i % 50) }));
    }
    ft.apply(mods);
    expect(ft.nSubtables(0)).toBe(11); // 10 shapes + the table-miss

    // 64 keys per "batch", packed at offsets in one array: half hit a rule, half miss.
    const N = 64;
    const keys = new Uint32Array(N * KEY_WORDS);
    for (let n = 0; n < N; n++) {
      const rule = mods[(n * 157) % mods.length]!.spec.match;
      for (let w = 0; w < KEY_WORDS; w++) keys[n * KEY_WORDS + w] = n % 2 === 0 ? rule.value[w]! : (n * 31 + w) >>> 0;
    }
    let sink = 0;
    const round = (now: number): void => {
      for (let n = 0; n < N; n++) {
        const id = ft.lookup(0, keys, n * KEY_WORDS);
        sink = (sink + id) | 0; // stays a small integer: a boxed double here would allocate
        if (id >= 0) ft.credit(id, 1, 60 + n, now);
      }
    };
    const rounds = Math.ceil(300_000 / N);
    for (let r = 0; r < 3 * rounds; r++) round(r);
    await new Promise((resolve) => setTimeout(resolve, 20));
    collectGarbage(); // start from a collected heap (helpers/gc.ts)

    const gcStarts: number[] = [];
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) gcStarts.push(e.startTime);
    });
    obs.observe({ entryTypes: ['gc'] });
    await new Promise((resolve) => setTimeout(resolve, 20));

    const t0 = performance.now();
    const before = process.memoryUsage().heapUsed;
    for (let r = 0; r < rounds; r++) round(r);
    const after = process.memoryUsage().heapUsed;
    const t1 = performance.now();

    await new Promise((resolve) => setTimeout(resolve, 20));
    obs.disconnect();
    expect(sink).not.toBe(0);
    expect(after - before).toBeLessThan(1 << 20);
    expect(gcStarts.filter((t) => t >= t0 && t <= t1).length).toBe(0);
  });
});
