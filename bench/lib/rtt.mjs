// Interleaved round-trip latency: the direct veth pair, the C TAP forwarder and limed all
// run at once between the same two host namespaces (one subnet each), and ping alternates
// between them in short chunks. On this shared 2-vCPU machine the wake-up cost of a
// sleeping vCPU, which dominates RTT through any user-space forwarder, drifts by ±50 %
// over tens of seconds; measuring one system after the other (as the per-scenario rounds
// do) folds that drift into the comparison, alternating every half second cancels it.
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { run, startBg, alive, log } from './exec.mjs';
import { H1, H2, SW, addHosts, addNs, addVeth, configureHost, waitForLink, moveLink } from './netns.mjs';
import { parsePing, pingFlood } from './ping.mjs';
import { percentile, median } from './stats.mjs';
import { cpuSplit } from './proc.mjs';

/** The systems compared, each on its own /24 between limeb-h1 (.1) and limeb-h2 (.2). */
export const RTT_SYSTEMS = [
  { name: 'veth', net: '10.77.10' },
  { name: 'tapfwd', net: '10.77.11' },
  { name: 'limed', net: '10.77.12' },
];

async function attach(t1, t2, net, died) {
  await waitForLink(SW, t1, { check: died });
  await waitForLink(SW, t2, { check: died });
  await moveLink(SW, t1, H1);
  await moveLink(SW, t2, H2);
  await configureHost(H1, t1, `${net}.1`);
  await configureHost(H2, t2, `${net}.2`);
}

function diedCheck(entry, what) {
  return () => { if (!alive(entry.pid)) throw new Error(`${what} exited during set-up`); };
}

/** Build all three paths at once; the caller tears down (teardownSync) afterwards. */
async function setup(ctx) {
  await addHosts();
  await addNs(SW);
  const [veth, fwd, lim] = RTT_SYSTEMS;
  await addVeth('limeb-rv1', H1, 'limeb-rv2', H2);
  await configureHost(H1, 'limeb-rv1', `${veth.net}.1`);
  await configureHost(H2, 'limeb-rv2', `${veth.net}.2`);

  const f = startBg('tapfwd', ctx.tapfwdBin, ['limeb-rf1', 'limeb-rf2'], { ns: SW, logFile: join(ctx.tmp, 'rtt-tapfwd.log') });
  await attach('limeb-rf1', 'limeb-rf2', fwd.net, diedCheck(f, 'tapfwd'));

  const cfg = join(ctx.tmp, 'rtt-limed.yaml');
  writeFileSync(cfg, [
    'site: bench-rtt',
    `socket: ${join(ctx.tmp, 'rtt-limed.sock')}`,
    'ports:',
    '  - { name: limeb-rl1, type: tap, mtu: 1500 }',
    '  - { name: limeb-rl2, type: tap, mtu: 1500 }',
    '',
  ].join('\n'));
  const l = startBg('limed', process.execPath, [ctx.limedJs, '--config', cfg], { ns: SW, logFile: join(ctx.tmp, 'rtt-limed.log') });
  await attach('limeb-rl1', 'limeb-rl2', lim.net, diedCheck(l, 'limed'));
  return { tapfwd: f.pid, limed: l.pid };
}

async function pingChunk(ns, dst, count, interval) {
  const r = await run('ping', ['-n', '-i', String(interval), '-c', String(count), '-W', '1', dst], {
    ns, allowFail: true, timeoutMs: (count * interval + 10) * 1000,
  });
  return parsePing(r.stdout);
}

/**
 * The interleaving itself, shared by the bridge and the tunnel comparisons: warm every
 * system's path up identically with a flood ping (see pingFlood), then alternate `chunks` ×
 * `chunkCount` pings per system from namespace `ns` to each system's `dst`, rotating the
 * order each cycle. `pids[name]` lists the processes whose CPU time counts for a system
 * (none for a kernel path); only that system's chunks reach them. Returns the pooled
 * percentiles, each cycle's p50 and each system's CPU time per round trip.
 */
export async function alternatePings(systems, pids, { ns, chunks, chunkCount, interval, warmCount, onCycle }) {
  for (const s of systems) await pingFlood({ ns, dst: s.dst, count: warmCount });
  const all = Object.fromEntries(systems.map((s) => [s.name, []]));
  const cpu = Object.fromEntries(systems.filter((s) => pids[s.name]?.length).map((s) => [s.name, { user: 0, sys: 0, rtts: 0 }]));
  const cpuOf = (list) => list.map(cpuSplit).reduce((a, b) => ({ user: a.user + b.user, sys: a.sys + b.sys }), { user: 0, sys: 0 });
  const cycles = [];
  for (let c = 0; c < chunks; c++) {
    const order = systems.map((_, i) => systems[(i + c) % systems.length]);
    const cycle = {};
    for (const s of order) {
      const list = pids[s.name] ?? [];
      const c0 = list.length ? cpuOf(list) : null;
      const p = await pingChunk(ns, s.dst, chunkCount, interval);
      if (c0) {
        const c1 = cpuOf(list);
        cpu[s.name].user += c1.user - c0.user;
        cpu[s.name].sys += c1.sys - c0.sys;
        cpu[s.name].rtts += p.received;
      }
      all[s.name].push(...p.rtts_us);
      cycle[s.name] = { p50_us: p.p50_us, p99_us: p.p99_us, loss_pct: p.loss_pct };
    }
    cycles.push(cycle);
    onCycle?.(c, cycle);
  }
  const pooled = {};
  for (const s of systems) {
    const xs = all[s.name];
    pooled[s.name] = { n: xs.length, p50_us: percentile(xs, 50), p99_us: percentile(xs, 99), p999_us: percentile(xs, 99.9) };
  }
  const cpu_us_per_rtt = Object.fromEntries(Object.entries(cpu).map(([n, c]) => [n, {
    user: (c.user * 1e6) / c.rtts, sys: (c.sys * 1e6) / c.rtts,
  }]));
  return {
    method: `${chunks} cycles × ${chunkCount} pings at ${interval * 1000} ms per system, order rotated each cycle, after a ${warmCount}-ping flood per system to warm up`,
    pooled, cycles, cpu_us_per_rtt,
  };
}

/** Warm up, then alternate ping between veth, tapfwd and limed (see alternatePings). */
export async function measureRttInterleaved(ctx, { chunks, chunkCount, interval, warmCount }) {
  const pids = await setup(ctx);
  const systems = RTT_SYSTEMS.map((s) => ({ name: s.name, dst: `${s.net}.2` }));
  const r = await alternatePings(systems, { tapfwd: [pids.tapfwd], limed: [pids.limed] }, {
    ns: H1, chunks, chunkCount, interval, warmCount,
    onCycle(c, cycle) {
      const add = (n) => cycle[n].p50_us - cycle.veth.p50_us;
      log(`  rtt cycle ${c + 1}/${chunks}: p50 veth ${cycle.veth.p50_us.toFixed(0)} µs, tapfwd +${add('tapfwd').toFixed(0)}, limed +${add('limed').toFixed(0)}`);
    },
  });
  const { pooled, cycles } = r;
  for (const s of RTT_SYSTEMS) pooled[s.name].added_p50_us = pooled[s.name].p50_us - pooled.veth.p50_us;
  const cycleRatios = cycles.map((c) => (c.limed.p50_us - c.veth.p50_us) / (c.tapfwd.p50_us - c.veth.p50_us));
  return {
    ...r,
    pids,
    ratio_added_p50: pooled.limed.added_p50_us / pooled.tapfwd.added_p50_us,
    ratio_added_p50_cycle_median: median(cycleRatios),
    ratio_p99: (pooled.limed.p99_us - pooled.veth.p99_us) / (pooled.tapfwd.p99_us - pooled.veth.p99_us),
  };
}
