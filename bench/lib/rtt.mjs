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

async function pingChunk(net, count, interval) {
  const r = await run('ping', ['-n', '-i', String(interval), '-c', String(count), '-W', '1', `${net}.2`], {
    ns: H1, allowFail: true, timeoutMs: (count * interval + 10) * 1000,
  });
  return parsePing(r.stdout);
}

/**
 * Warm every path up identically with a flood ping (see pingFlood), then alternate
 * `chunks` × `chunkCount` pings per system, rotating the order each cycle. Returns pooled
 * and per-cycle figures.
 */
export async function measureRttInterleaved(ctx, { chunks, chunkCount, interval, warmCount }) {
  const pids = await setup(ctx);
  for (const s of RTT_SYSTEMS) {
    await pingFlood({ ns: H1, dst: `${s.net}.2`, count: warmCount });
  }
  const all = Object.fromEntries(RTT_SYSTEMS.map((s) => [s.name, []]));
  // Each forwarder's CPU time (user/system) per round trip: only its own chunks reach it.
  const cpu = { tapfwd: { user: 0, sys: 0, rtts: 0 }, limed: { user: 0, sys: 0, rtts: 0 } };
  const cycles = [];
  for (let c = 0; c < chunks; c++) {
    const order = RTT_SYSTEMS.map((_, i) => RTT_SYSTEMS[(i + c) % RTT_SYSTEMS.length]);
    const cycle = {};
    for (const s of order) {
      const pid = pids[s.name];
      const c0 = pid ? cpuSplit(pid) : null;
      const p = await pingChunk(s.net, chunkCount, interval);
      if (pid) {
        const c1 = cpuSplit(pid);
        cpu[s.name].user += c1.user - c0.user;
        cpu[s.name].sys += c1.sys - c0.sys;
        cpu[s.name].rtts += p.received;
      }
      all[s.name].push(...p.rtts_us);
      cycle[s.name] = { p50_us: p.p50_us, loss_pct: p.loss_pct };
    }
    cycles.push(cycle);
    const add = (n) => cycle[n].p50_us - cycle.veth.p50_us;
    log(`  rtt cycle ${c + 1}/${chunks}: p50 veth ${cycle.veth.p50_us.toFixed(0)} µs, tapfwd +${add('tapfwd').toFixed(0)}, limed +${add('limed').toFixed(0)}`);
  }
  const pooled = {};
  for (const s of RTT_SYSTEMS) {
    const xs = all[s.name];
    pooled[s.name] = { n: xs.length, p50_us: percentile(xs, 50), p99_us: percentile(xs, 99), p999_us: percentile(xs, 99.9) };
  }
  for (const s of RTT_SYSTEMS) pooled[s.name].added_p50_us = pooled[s.name].p50_us - pooled.veth.p50_us;
  const cpu_us_per_rtt = Object.fromEntries(Object.entries(cpu).map(([n, c]) => [n, {
    user: (c.user * 1e6) / c.rtts, sys: (c.sys * 1e6) / c.rtts,
  }]));
  const cycleRatios = cycles.map((c) => (c.limed.p50_us - c.veth.p50_us) / (c.tapfwd.p50_us - c.veth.p50_us));
  return {
    method: `${chunks} cycles × ${chunkCount} pings at ${interval * 1000} ms per system, order rotated each cycle, after a ${warmCount}-ping flood per system to warm up`,
    pids,
    pooled,
    cycles,
    cpu_us_per_rtt,
    ratio_added_p50: pooled.limed.added_p50_us / pooled.tapfwd.added_p50_us,
    ratio_added_p50_cycle_median: median(cycleRatios),
    ratio_p99: (pooled.limed.p99_us - pooled.veth.p99_us) / (pooled.tapfwd.p99_us - pooled.veth.p99_us),
  };
}
