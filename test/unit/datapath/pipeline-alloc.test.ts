/**
 * Hot-path discipline of the flow pipeline: process() — EMC hits, translation on misses,
 * execution with rewrites, output copies and VLAN pushes, rule credits — allocates nothing.
 * Measured as in switch.test.ts: no GC during ~1M frames and a flat heap.
 */
import { PerformanceObserver, performance, type PerformanceEntry } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import type { Action } from '../../../src/flow/types.js';
import { K } from '../../../src/packet/key.js';
import { exact, masked } from '../../helpers/linear-table.js';
import { IP, MAC, ip4, rig, type Rig } from './pipeline-rig.js';
import { parseMac } from '../../../src/util/addr.js';
import { collectGarbage } from '../../helpers/gc.js';

const out = (port: number): Action => ({ type: 'output', port });

function setUp(): Rig {
  const r = rig({ nPorts: 4 });
  for (const p of r.ports) p.record = false;
  const t = r.table;
  // Ten masks' worth of rules, most of which the test traffic never matches.
  for (let i = 0; i < 8; i++) t.add({ priority: 50 + i, match: masked({ [K.NW_DST]: [0x0b000000 + (i << 16), 0xffff0000] }), actions: [out(4)] });
  t.add({ priority: 40, match: exact({ [K.DL_TYPE]: 0x0800, [K.NW_PROTO]: 6 }), actions: [out(4)] });
  // The rule the traffic hits: rewrites, output copies, a VLAN push, a resubmit.
  t.add({
    priority: 30,
    match: exact({ [K.IN_PORT]: 1, [K.DL_TYPE]: 0x0800, [K.NW_PROTO]: 17 }),
    actions: [
      out(2),
      { type: 'mod_nw_dst', addr: IP.c },
      { type: 'dec_ttl' },
      { type: 'mod_vlan_vid', vid: 7 },
      out(3),
      { type: 'resubmit', port: 0xfff8, table: 1 },
    ],
  });
  t.add({ table: 1, priority: 1, actions: [{ type: 'mod_tp_src', port: 4242 }, { type: 'normal' }] });
  return r;
}

async function measure(r: Rig, batches: number, before: (b: number) => void): Promise<{ heap: number; gcs: number }> {
  const port = r.ports[0]!;
  const run = (n: number, from: number) => {
    for (let b = 0; b < n; b++) {
      before(from + b);
      port.injectInPlace(64);
    }
  };
  run(2000, 0); // warm up: let the optimiser settle
  collectGarbage(); // start from a collected heap (helpers/gc.ts)
  const gcs: PerformanceEntry[] = [];
  const obs = new PerformanceObserver((list) => gcs.push(...list.getEntries()));
  obs.observe({ entryTypes: ['gc'] });
  const t0 = performance.now();
  const heapBefore = process.memoryUsage().heapUsed;
  run(batches, 2000);
  const heapAfter = process.memoryUsage().heapUsed;
  const t1 = performance.now();
  await new Promise((res) => setTimeout(res, 20));
  obs.disconnect();
  return { heap: heapAfter - heapBefore, gcs: gcs.filter((e) => e.startTime >= t0 && e.startTime <= t1).length };
}

describe('pipeline allocates nothing per frame', () => {
  it('cache hits: no GC and a flat heap over 1M frames', async () => {
    const r = setUp();
    r.inject(2, [ip4({ src: MAC.b, dst: MAC.bcast })]);
    const frames = Array.from({ length: 64 }, (_, i) => ip4({ dst: MAC.b, l4: { proto: 'udp', srcPort: 1000 + (i % 8), dstPort: 53 }, payload: 40 + i }));
    r.inject(1, frames);
    const { heap, gcs } = await measure(r, 16_000, () => undefined);
    expect(heap).toBeLessThan(1_000_000);
    expect(gcs).toBe(0);
    const emc = r.sw.pipeline!.emc;
    expect(emc.nHits).toBeGreaterThan(64 * 17_000);
    expect(r.sw.pipeline!.exec.nCopies).toBeGreaterThan(64 * 17_000);
  });

  it('always-new 5-tuples (every frame a cache miss + translation): no GC and a flat heap', async () => {
    const r = setUp();
    r.inject(2, [ip4({ src: MAC.b, dst: MAC.bcast })]);
    const frames = Array.from({ length: 64 }, () => ip4({ dst: MAC.b }));
    r.inject(1, frames);
    const batch = r.batch;
    const slab = batch.slab;
    let n = 0;
    // Rewrite the IPv4 source and the UDP source port of every frame in place before each
    // batch, so that no key repeats (checksums are not verified by the data path).
    const fresh = (): void => {
      for (let i = 0; i < 64; i++) {
        const off = batch.start[i]!;
        n++;
        slab.writeUInt32BE((0x0b000000 | (n >>> 16)) >>> 0, off + 14 + 12); // 11.x: never the initial 10.0.0.1
        slab.writeUInt16BE(n & 0xffff, off + 14 + 20);
      }
    };
    const emc = r.sw.pipeline!.emc;
    const missesBefore = emc.nMisses;
    const hitsBefore = emc.nHits;
    const { heap, gcs } = await measure(r, 16_000, fresh);
    expect(heap).toBeLessThan(1_000_000);
    expect(gcs).toBe(0);
    expect(emc.nMisses - missesBefore).toBe(64 * 18_000);
    expect(emc.nHits - hitsBefore).toBe(0);
  });
});

describe('no number boxed per frame', () => {
  // A 32-bit value of 2^30 or more is not a small integer in V8: passed to a function that
  // is not inlined, or stored in a plain field, it becomes a heap number on every frame.
  // Real MAC addresses (the low four bytes), GRE keys and a router's uptime in milliseconds
  // (past 2^30 after 12.4 days) all get there; the fixed test MACs above do not.
  it('NORMAL learning and forwarding with large MAC words, a large key and a clock past 2^30 ms', async () => {
    const r = rig({ nPorts: 2 });
    for (const p of r.ports) p.record = false;
    r.clock.now = 2 ** 31 + 12_345; // ms: about 25 days of uptime
    const a = parseMac('5a:3f:c1:d2:e3:f4');
    const b = parseMac('6e:11:ff:ee:dd:cc');
    expect(a.lo).toBeGreaterThan(2 ** 30);
    expect(b.lo).toBeGreaterThan(2 ** 30);
    r.inject(2, [ip4({ src: b, dst: MAC.bcast })]);
    const frames = Array.from({ length: 64 }, () => ip4({ src: a, dst: b, ipSrc: 0xc0a80001, ipDst: 0xc0a80002 }));
    const port = r.ports[0]!;
    port.inject(frames, frames.map(() => 0xfedcba98));
    const run = (n: number): void => {
      for (let i = 0; i < n; i++) port.injectInPlace(64, true);
    };
    run(3000);
    collectGarbage(); // start from a collected heap (helpers/gc.ts)
    const gcs: PerformanceEntry[] = [];
    const obs = new PerformanceObserver((list) => gcs.push(...list.getEntries()));
    obs.observe({ entryTypes: ['gc'] });
    const t0 = performance.now();
    const heapBefore = process.memoryUsage().heapUsed;
    run(16_000);
    const heapAfter = process.memoryUsage().heapUsed;
    const t1 = performance.now();
    await new Promise((res) => setTimeout(res, 20));
    obs.disconnect();
    expect(r.sw.pipeline!.emc.nHits).toBeGreaterThan(64 * 18_000);
    expect(heapAfter - heapBefore).toBeLessThan(1_000_000);
    expect(gcs.filter((e) => e.startTime >= t0 && e.startTime <= t1)).toHaveLength(0);
  });
});
