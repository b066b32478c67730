import { PerformanceObserver, performance, type PerformanceEntry } from 'node:perf_hooks';
import { beforeEach, describe, expect, it } from 'vitest';
import { Switch } from '../../../src/datapath/switch.js';
import { MemoryPort } from '../../../src/io/memory.js';
import { FrameBatch } from '../../../src/packet/batch.js';
import { DropReason } from '../../../src/packet/drop.js';
import { collectGarbage } from '../../helpers/gc.js';

const MAC = {
  a: '020000000001',
  b: '020000000002',
  c: '020000000003',
  bcast: 'ffffffffffff',
  mcast: '01005e000001',
};

/** An Ethernet frame of `size` bytes (type 0x88b5), optionally 802.1Q-tagged. */
function frame(dst: string, src: string, size = 60, vid?: number): Buffer {
  const tag = vid === undefined ? '' : '8100' + vid.toString(16).padStart(4, '0');
  const head = Buffer.from(dst + src + tag + '88b5', 'hex');
  const f = Buffer.alloc(size, 0xa5);
  head.copy(f);
  return f;
}

describe('Switch (NORMAL: VLAN-aware MAC learning)', () => {
  let clock = 0;
  let sw: Switch;
  let ports: MemoryPort[];
  let batch: FrameBatch;

  beforeEach(() => {
    clock = 1_000_000;
    sw = new Switch({ macTableCapacity: 64, macAgingSeconds: 300, now: () => clock });
    batch = new FrameBatch();
    ports = [1, 2, 3].map((n) => new MemoryPort(`p${n}`, n, 1500, { clock: () => clock }));
    for (const p of ports) {
      sw.addPort(p);
      p.start(batch, () => sw.process(batch), () => sw.portStateChanged(p.number));
    }
  });
  const [p1, p2, p3] = [0, 1, 2].map((i) => () => ports[i]!);

  it('floods unknown unicast to every other port, never back to the in-port', () => {
    const f = frame(MAC.b, MAC.a);
    p1().inject([f]);
    expect(p1().sent).toHaveLength(0);
    expect(p2().sent).toEqual([f]);
    expect(p3().sent).toEqual([f]);
    expect(sw.rxPackets[1]).toBe(1);
    expect(sw.rxBytes[1]).toBe(60);
  });

  it('sends to the learned port only, once the destination is known', () => {
    p2().inject([frame(MAC.a, MAC.b)]); // learn b on p2
    p3().sent.length = 0;
    p1().sent.length = 0;
    const f = frame(MAC.b, MAC.a, 100);
    p1().inject([f]);
    expect(p2().sent.at(-1)).toEqual(f);
    expect(p3().sent).toHaveLength(0);
    expect(sw.macTable.lookup(0x0200, 2, 0, clock)).toBe(2);
  });

  it('floods broadcast and multicast destinations', () => {
    p2().inject([frame(MAC.a, MAC.b)]);
    for (const dst of [MAC.bcast, MAC.mcast]) {
      for (const p of ports) p.sent.length = 0;
      const f = frame(dst, MAC.a);
      p1().inject([f]);
      expect(p2().sent).toEqual([f]);
      expect(p3().sent).toEqual([f]);
      expect(p1().sent).toHaveLength(0);
    }
  });

  it('drops and counts a multicast source MAC, and a runt frame, by reason', () => {
    p1().inject([frame(MAC.b, MAC.mcast), Buffer.from('0200000000', 'hex')]);
    expect(p2().sent).toHaveLength(0);
    expect(sw.dropCounts(1)[DropReason.SRC_MAC_MULTICAST]).toBe(1);
    expect(sw.dropCounts(1)[DropReason.RUNT]).toBe(1);
    expect(sw.macTable.size).toBe(0);
  });

  it('counts a frame whose learned destination is its own in-port as no_output', () => {
    p1().inject([frame(MAC.c, MAC.b)]); // b on p1
    p1().inject([frame(MAC.b, MAC.a)]); // a on p1, to b on p1: filtered
    expect(p2().sent).toHaveLength(1);
    expect(sw.dropCounts(1)[DropReason.NO_OUTPUT]).toBe(1);
  });

  it('follows a MAC to its new port from the next frame on', () => {
    p2().inject([frame(MAC.bcast, MAC.b)]); // b on p2
    p1().inject([frame(MAC.b, MAC.a)]);
    expect(p2().sent).toHaveLength(1);
    // b moves to p3 and announces itself (gratuitous ARP / RARP is a broadcast from b).
    p3().inject([frame(MAC.bcast, MAC.b)]);
    for (const p of ports) p.sent.length = 0;
    const f = frame(MAC.b, MAC.a, 64);
    p1().inject([f, f]);
    expect(p3().sent).toEqual([f, f]);
    expect(p2().sent).toHaveLength(0);
    expect(sw.macTable.nMoves).toBe(1);
  });

  it('learns per VLAN: a MAC known on VLAN 10 is still unknown on VLAN 20', () => {
    p2().inject([frame(MAC.bcast, MAC.b, 64, 10)]);
    for (const p of ports) p.sent.length = 0;
    p1().inject([frame(MAC.b, MAC.a, 64, 10)]);
    expect(p2().sent).toHaveLength(1);
    expect(p3().sent).toHaveLength(0);
    p1().inject([frame(MAC.b, MAC.a, 64, 20)]);
    expect(p2().sent).toHaveLength(2);
    expect(p3().sent).toHaveLength(1);
  });

  it('does not flood to a port that is down, and forgets its MACs', () => {
    p2().inject([frame(MAC.bcast, MAC.b)]);
    p2().setState('down', 'test');
    expect(sw.macTable.lookup(0x0200, 2, 0, clock)).toBe(-1);
    for (const p of ports) p.sent.length = 0;
    p1().inject([frame(MAC.bcast, MAC.a)]);
    expect(p2().sent).toHaveLength(0);
    expect(p3().sent).toHaveLength(1);
  });

  it('drops a frame larger than the output port accepts', () => {
    const small = new MemoryPort('small', 4, 100, { clock: () => clock });
    sw.addPort(small);
    small.start(batch, () => sw.process(batch), () => undefined);
    p1().inject([frame(MAC.bcast, MAC.a, 1514)]);
    expect(small.sent).toHaveLength(0);
    expect(p2().sent).toHaveLength(1);
    expect(sw.dropCounts(1)[DropReason.TOO_LONG]).toBe(1);
  });

  it('stamps each batch with its time: a MAC seen in an old batch has aged out for a later one', () => {
    p2().inject([frame(MAC.bcast, MAC.b)]); // b learned at t0
    clock += 301_000;
    p1().inject([frame(MAC.b, MAC.a)]); // b unknown now: flooded
    expect(p3().sent).toHaveLength(2);
  });

  it('ages out MACs on tick() after the aging time', () => {
    p2().inject([frame(MAC.bcast, MAC.b)]);
    clock += 299_000;
    sw.tick();
    expect(sw.macTable.size).toBe(1);
    clock += 2_000;
    sw.tick();
    expect(sw.macTable.size).toBe(0);
  });

  it('forwards a whole batch with one send per output port', () => {
    p2().inject([frame(MAC.bcast, MAC.b)]);
    p3().inject([frame(MAC.bcast, MAC.c)]);
    for (const p of ports) p.sent.length = 0;
    const frames = Array.from({ length: 64 }, (_, i) => frame(i % 2 ? MAC.b : MAC.c, MAC.a, 60 + i));
    let flushes = 0;
    const orig = p2().flush.bind(p2());
    p2().flush = (slab: Buffer) => {
      flushes++;
      return orig(slab);
    };
    p1().inject(frames);
    expect(flushes).toBe(1);
    expect(p2().sent).toEqual(frames.filter((_, i) => i % 2));
    expect(p3().sent).toEqual(frames.filter((_, i) => !(i % 2)));
  });

  it('allocates nothing per frame: no GC and a flat heap over 1M frames', async () => {
    p2().inject([frame(MAC.bcast, MAC.b)]);
    for (const p of ports) p.record = false;
    // 64 frames laid out once in the batch, re-delivered in place.
    const frames = Array.from({ length: 64 }, (_, i) => frame(i % 3 === 0 ? MAC.bcast : MAC.b, MAC.a, 60 + i));
    p1().inject(frames);
    const run = (n: number) => {
      for (let i = 0; i < n; i++) p1().injectInPlace(64);
    };
    run(2000); // warm up: let the optimiser settle
    collectGarbage(); // start from a collected heap (helpers/gc.ts)
    const gcs: PerformanceEntry[] = [];
    const obs = new PerformanceObserver((list) => gcs.push(...list.getEntries()));
    obs.observe({ entryTypes: ['gc'] });
    const t0 = performance.now();
    const before = process.memoryUsage().heapUsed;
    run(16_000); // 1,024,000 frames
    const after = process.memoryUsage().heapUsed;
    const t1 = performance.now();
    await new Promise((r) => setTimeout(r, 20));
    obs.disconnect();
    // A per-frame allocation of even 16 bytes would be 16 MB here: it would either grow
    // the heap or make the collector run during the loop.
    expect(after - before).toBeLessThan(1_000_000);
    expect(gcs.filter((e) => e.startTime >= t0 && e.startTime <= t1)).toHaveLength(0);
    expect(sw.rxPackets[1]).toBe(64 * 18_001 + 0);
  });
});
