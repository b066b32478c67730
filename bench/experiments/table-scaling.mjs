// Table scaling: limed's capacity (paced udpgen ladder, ≤ 1 % loss) against the size of its
// flow table and the number of distinct masks in it, on the `limed` topology (h1 — limed —
// h2). Two kinds of traffic: one 5-tuple (after its first frame every frame is a cache hit:
// what an established flow costs) and a new 5-tuple every frame (every frame a classifier
// lookup over all the table's masks: what a flood of new flows costs).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { log, run } from '../lib/exec.mjs';
import { cpuSeconds } from '../lib/proc.mjs';
import { SW, teardownSync } from '../lib/netns.mjs';
import { scenarios as baseScenarios } from '../lib/scenarios.mjs';
import { flowLines, udpgen } from '../lib/flows.mjs';
import { ladder } from '../lib/ladder.mjs';
import { lineSpec } from '../lib/figures.mjs';

const HIT = 'one 5-tuple';
const MISS = 'new 5-tuple per frame';

/** The tables measured: [flows, masks, traffic kinds]. */
function tables(quick) {
  return quick
    ? [[1, 1, [HIT]], [10_000, 10, [MISS]]]
    : [[1, 1, [HIT, MISS]], [1_000, 10, [HIT, MISS]], [10_000, 10, [HIT, MISS]], [100_000, 10, [HIT, MISS]], [10_000, 1, [MISS]], [10_000, 5, [MISS]]];
}

async function measureTable(ctx, profile, flows, masks, kinds) {
  teardownSync();
  try {
    const info = await baseScenarios.limed.setup(ctx);
    const file = join(ctx.tmp, `scaling-${flows}-${masks}.txt`);
    writeFileSync(file, flowLines(flows, masks).join('\n') + '\n');
    const t0 = performance.now();
    const r = await run(process.execPath, [ctx.limectlJs, '--socket', info.sock, 'add-flows', file], { ns: SW, allowFail: true, timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`add-flows of ${flows} flows failed: ${(r.stderr || r.stdout).trim()}`);
    const addMs = performance.now() - t0;
    await run('ping', ['-c', '3', '-i', '0.1', '-W', '1', '10.77.0.2'], { ns: 'limeb-h1', allowFail: true });
    const out = [];
    for (const traffic of kinds) {
      const vary = traffic === MISS;
      // limed's CPU time per delivered frame at a fixed paced rate: the table's cost,
      // measured below the capacity (where the generator, not limed, may be the limit).
      const c0 = cpuSeconds(info.pid);
      const fixed = await udpgen(ctx, { rate: profile.flowRate, seconds: profile.flowCpuSec, vary });
      const cpuUs = ((cpuSeconds(info.pid) - c0) * 1e6) / Math.max(1, fixed.received);
      const l = await ladder({
        send: (rate, seconds) => udpgen(ctx, { rate, seconds, vary }),
        start: profile.flowLadderStart, stepBy: profile.flowLadderStep, max: profile.ladderMax, seconds: profile.flowLadderSec, refine: profile.flowRefine,
      });
      out.push({ flows, masks, traffic, capacity_pps: l.capacity_pps, sender_limited: l.sender_limited, cpu_us_per_frame: cpuUs, cpu_rate: profile.flowRate, cpu_loss_pct: fixed.loss_pct, add_flows_ms: addMs, steps: l.steps });
      log(`table-scaling: ${flows} flows over ${masks} mask(s), ${traffic}: ${(l.capacity_pps / 1e3).toFixed(1)}k frames/s${l.sender_limited ? ' (sender-limited)' : ''}; ${cpuUs.toFixed(2)} µs of CPU per frame at ${profile.flowRate / 1000}k/s`);
    }
    return out;
  } finally {
    teardownSync();
  }
}

export const tableScaling = {
  title: 'Table scaling: packets/s vs flows and masks',
  async run(ctx, profile) {
    const points = [];
    for (const [flows, masks, kinds] of tables(profile.quick)) points.push(...(await measureTable(ctx, profile, flows, masks, kinds)));
    return { points };
  },
  async render(res, figure) {
    const bySize = res.points.filter((p) => p.masks === 10 || p.flows === 1);
    const f1 = await figure('table-scaling-flows', lineSpec({
      title: 'limed capacity vs flow-table size',
      subtitle: '64-byte UDP, paced ladder (≤ 1 % loss); 10 masks (1 flow: 1 mask); udpgen h1 → h2 through limed',
      points: bySize.map((p) => ({ x: p.flows, y: p.capacity_pps / 1e3, series: p.traffic })),
      xTitle: 'flows in the table (log scale)', yTitle: 'capacity (kframes/s)', seriesTitle: 'traffic', logX: true, yDomainMin: 0,
    }));
    const figs = [f1];
    figs.push(await figure('table-scaling-cpu', lineSpec({
      title: 'limed CPU time per frame vs flow-table size',
      subtitle: `at a fixed paced rate (${res.points[0]?.cpu_rate / 1000}k frames/s, below capacity); 10 masks (1 flow: 1 mask)`,
      points: bySize.map((p) => ({ x: p.flows, y: p.cpu_us_per_frame, series: p.traffic })),
      xTitle: 'flows in the table (log scale)', yTitle: 'limed CPU per delivered frame (µs)', seriesTitle: 'traffic', logX: true, yDomainMin: 0,
    })));
    const masks = res.points.filter((p) => p.flows === 10_000 && p.traffic === MISS);
    if (masks.length > 1) {
      figs.push(await figure('table-scaling-masks', lineSpec({
        title: 'limed capacity vs distinct masks (10,000 flows)',
        subtitle: 'every frame a new 5-tuple: each is a classifier lookup probing every mask',
        points: masks.flatMap((p) => [{ x: p.masks, y: p.capacity_pps / 1e3, series: 'capacity (kframes/s)' }, { x: p.masks, y: p.cpu_us_per_frame * 10, series: 'CPU per frame (0.1 µs)' }]),
        xTitle: 'distinct masks in the table', yTitle: 'kframes/s · 0.1 µs', seriesTitle: 'measure', yDomainMin: 0,
      })));
    }
    const L = figs.flatMap((f) => [`![table scaling](${f})`, '']);
    L.push(`| flows | masks | traffic | capacity (kframes/s) | CPU per frame at ${res.points[0]?.cpu_rate / 1000}k/s (µs) | add-flows (ms) |`, '|---:|---:|---|---:|---:|---:|');
    for (const p of res.points) L.push(`| ${p.flows} | ${p.masks} | ${p.traffic} | ${(p.capacity_pps / 1e3).toFixed(1)}${p.sender_limited ? ' (sender-limited)' : ''} | ${p.cpu_us_per_frame.toFixed(2)} | ${p.add_flows_ms.toFixed(0)} |`);
    L.push('', 'The capacity is often the generator\'s (udpgen on the same two cores; "sender-limited"), so CPU time per frame at a fixed rate is the sharper measure of what the table costs. One 5-tuple: after its first frame the flow runs from the exact-match cache (and the native fast path), whatever the table holds. New 5-tuple per frame: every frame misses the caches and is looked up in the tuple-space classifier, which probes one hash table per mask.');
    return L;
  },
};
