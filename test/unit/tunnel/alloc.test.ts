/**
 * greEncap + greDecap (and VLAN push/pop, MSS clamp) allocate nothing per packet: no GC
 * and < 1 MB heap growth over 200k round trips (method: test/unit/packet/extract-alloc.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { buildGreTemplate, greDecap, GreDecapResult, greEncap, type GreExpect } from '../../../src/tunnel/gre.js';
import { popVlan, pushVlan } from '../../../src/tunnel/vlan.js';
import { clampTcpMss } from '../../../src/tunnel/mss.js';
import { buildFragNeeded } from '../../../src/tunnel/icmp.js';
import * as fx from '../../fixtures/packet/frames.js';
import { collectGarbage } from '../../helpers/gc.js';

const HEADROOM = 128;

describe('tunnel allocation', () => {
  it('200k encap+decap: no heap growth ≥ 1 MB and no GC during the loop', async () => {
    const templates = [
      buildGreTemplate({ src: 1, dst: 2, key: 5 }),
      buildGreTemplate({ src: 1, dst: 2, key: 'flow', csum: true, seq: true }),
    ];
    const expect5: GreExpect = { remote: 1, key: 5 };
    const expectAny: GreExpect = { remote: 1, key: 'any' };
    const inner = fx.tcpSyn;
    const buf = new Uint8Array(HEADROOM + 2048);
    const icmpOut = new Uint8Array(200);
    const routerMac = { hi: 0x0200, lo: 0xfe };
    const out = new GreDecapResult();
    let bad = 0;
    const run = (n: number): void => {
      for (let i = 0; i < n; i++) {
        buf.set(inner, HEADROOM);
        const tpl = templates[i & 1]!;
        let s = pushVlan(buf, HEADROOM, inner.length, 0x8100, 100);
        s = popVlan(buf, s, inner.length + 4);
        clampTcpMss(buf, s, inner.length, 34, 1000 + (i & 0xff));
        s = greEncap(buf, s, inner.length, tpl, i, i, i & 0xff);
        if (greDecap(buf, s, tpl.size + inner.length, (i & 1) === 0 ? expect5 : expectAny, out) !== 0) bad++;
        if ((i & 15) === 0) buildFragNeeded(icmpOut, 0, buf, out.innerStart, out.innerLen, 1400, 3, routerMac);
      }
    };
    run(200_000); // warm-up
    expect(bad).toBe(0);
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
    run(200_000);
    const after = process.memoryUsage().heapUsed;
    const t1 = performance.now();

    await new Promise((resolve) => setTimeout(resolve, 20));
    obs.disconnect();
    expect(bad).toBe(0);
    expect(after - before).toBeLessThan(1 << 20);
    expect(gcStarts.filter((t) => t >= t0 && t <= t1).length).toBe(0);
  });
});
