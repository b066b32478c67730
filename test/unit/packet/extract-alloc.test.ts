/**
 * extract() allocates nothing per frame.
 *
 * A collection during the measured loop would hide an allocation from heapUsed. So the test
 * watches both: heapUsed must not grow by 1 MB or more over 200k frames, *and* no garbage
 * collection may happen during the loop (observed through PerformanceObserver 'gc' entries).
 * An allocation of even 8 bytes per frame fails one or the other: 200k frames × 8 B = 1.6 MB
 * of growth, or enough young-generation pressure to trigger a scavenge. The loop starts
 * from a full collection (helpers/gc.ts): garbage of the set-up, or a concurrent marking
 * it began (V8 may take its final pause at any loop back-edge), cannot make it flake.
 */
import { describe, it, expect } from 'vitest';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { extractBatch } from '../../../src/packet/extract.js';
import { FrameBatch } from '../../../src/packet/batch.js';
import * as fx from '../../fixtures/packet/frames.js';
import { collectGarbage } from '../../helpers/gc.js';

const FRAMES = [
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
  fx.tcpSyn.subarray(0, 40), // IPV4_BAD_TOTAL_LEN
  fx.arpRequest.subarray(0, 12), // RUNT
];

function fill(batch: FrameBatch): void {
  for (let i = 0; i < batch.capacity; i++) {
    const f = FRAMES[i % FRAMES.length]!;
    batch.slab.set(f, batch.start[i]!);
    batch.len[i] = f.length;
  }
  batch.count = batch.capacity;
  batch.inPort = 3;
}

describe('extract allocation', () => {
  it('200k frames: no heap growth ≥ 1 MB and no GC during the loop', async () => {
    const batch = new FrameBatch(64);
    fill(batch);
    const rounds = Math.ceil(200_000 / batch.count);

    // Warm-up: let V8 optimize extract on every path first.
    let dropped = 0;
    for (let r = 0; r < 3 * rounds; r++) dropped += extractBatch(batch);
    expect(dropped).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 20));
    collectGarbage(); // start from a collected heap (helpers/gc.ts)

    const gcStarts: number[] = [];
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) gcStarts.push(e.startTime);
    });
    obs.observe({ entryTypes: ['gc'] });
    // Let a GC pending from the warm-up finish before the window opens.
    await new Promise((resolve) => setTimeout(resolve, 20));

    const t0 = performance.now();
    const before = process.memoryUsage().heapUsed;
    for (let r = 0; r < rounds; r++) dropped += extractBatch(batch);
    const after = process.memoryUsage().heapUsed;
    const t1 = performance.now();

    await new Promise((resolve) => setTimeout(resolve, 20)); // deliver gc entries
    obs.disconnect();
    const gcsInWindow = gcStarts.filter((t) => t >= t0 && t <= t1).length;
    expect(after - before).toBeLessThan(1 << 20);
    expect(gcsInWindow).toBe(0);
  });
});
