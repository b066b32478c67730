// The papers' migration experiments, on the rig of bench/lib/migration-rig.mjs (two limed
// sites, a user-space delay element on the WAN, hosts as namespaces whose NICs move between
// the sites' TAPs), with UDP probes (bench/c/probe.c) carrying their send time so every
// receiver measures one-way delay and gaps.
//
//   downtime    first paper, Fig. 4: one VM moves; its probes to a client at 20/s and 1,000/s,
//               inter-arrival times over time; downtime and the data plane's share of it
//   lime-vs-sc  LIME Fig. 10: two hosts, average delay per second over a whole ensemble
//               migration (host 1 moves, host 2 moves, cut-over), LIME vs stop-and-copy, with
//               an inter-site delay; inter-site bytes and loss at the cut-over
//   delay-sweep LIME Fig. 11: k-random traffic between N hosts, average delay over the
//               migration for several inter-site delays, LIME vs stop-and-copy
//   order       LIME Fig. 12: move orders (optimal, worst, limed's planner, random) on k-random
//               traffic: delay over time and inter-site bytes
//   concurrent  LIME Fig. 13: hosts moved at once vs inter-site bytes
import { log, sleep } from '../lib/exec.mjs';
import { teardownSync } from '../lib/netns.mjs';
import { buildMigrationRig, kRandomPairs } from '../lib/migration-rig.mjs';
import { barSpec, lineSpec, panelLineSpec } from '../lib/figures.mjs';

const waitUntil = async (t) => { const d = t - Date.now(); if (d > 0) await sleep(d); };
const f = (x, d = 1) => (x == null || !Number.isFinite(x) ? 'n/a' : x.toFixed(d));
const hostList = (n) => Array.from({ length: n }, (_, i) => i + 1);

/**
 * One migration under probes: build the rig (hosts at A), start the probers, then at fixed
 * times `prepare` (ensemble mode), each step's moves, `finalize`. Returns the probers'
 * results, the events (ms after the probes' start) and the tunnel bytes during the migration.
 */
async function migrationRun(ctx, o) {
  const { tag, hosts, delayMs, strategy = 'lime', dests, rate, steps, pre, gap, post, trace = false, binMs = 1000, ensemble = true, plan = null } = o;
  teardownSync();
  const rig = await buildMigrationRig(ctx, { hosts, delayMs, tag });
  let stopped = false;
  try {
    const planMs = plan ? plan.windowMs : 0;
    const nSteps = typeof steps === 'function' ? o.stepCount : steps.length;
    const seconds = (pre + planMs + gap * (nSteps + (ensemble ? 1 : 0)) + post) / 1000;
    const probes = await rig.startProbes({ rate, seconds, dests: (h) => dests[h], trace, binMs });
    const t0 = probes.startAt;
    const rel = () => Date.now() - t0;
    const events = [];
    let at = t0 + pre;
    await waitUntil(at);
    let planned = null;
    if (plan) {
      const s = rel();
      planned = await rig.migrate('a', { action: 'plan', plan: { window_ms: plan.windowMs, parallel: plan.parallel ?? 1 } }, plan.windowMs + 30_000);
      events.push({ event: 'plan', t_ms: s, end_ms: rel() });
      at += planMs;
      await waitUntil(at);
    }
    const order = typeof steps === 'function' ? steps(planned?.plan) : steps;
    const b0 = await rig.interSiteBytes();
    if (ensemble) {
      const s = rel();
      await rig.prepare(strategy);
      events.push({ event: 'prepare', t_ms: s, end_ms: rel() });
      at += gap;
      await waitUntil(at);
    }
    for (const group of order) {
      const s = rel();
      const m = await rig.moveGroup(group, 'b');
      events.push({ event: `move ${group.map((h) => `h${h}`).join('+')}`, t_ms: s, end_ms: rel(), detached_ms: m.detached_ms, command_ms: m.command_ms, hosts: group });
      at += gap;
      await waitUntil(at);
    }
    if (ensemble) {
      const s = rel();
      await rig.finalize();
      events.push({ event: 'finalize', t_ms: s, end_ms: rel() });
    }
    const b1 = await rig.interSiteBytes();
    const results = await probes.done();
    const delayline = rig.stop();
    stopped = true;
    return {
      hosts, delay_ms: delayMs, strategy: ensemble ? strategy : null, rate, order, events, start_at_ms: t0, bin_ms: binMs,
      inter_site: { bytes: b1.total - b0.total, packets: b1.packets - b0.packets },
      delayline, plan: planned?.plan ?? null, probes: results,
    };
  } finally {
    if (!stopped) rig.stop();
    teardownSync();
  }
}

// ---------------------------------------------------------------------------------------
// Analysis of the probers' output

/** Average one-way delay (ms) per bin over every receiver: [{ t_s, avg_ms, n }]. */
export function delaySeries(run) {
  const bins = new Map();
  for (const r of Object.values(run.probes)) {
    for (const b of r.bins ?? []) {
      const e = bins.get(b.t_ms) ?? { n: 0, sum: 0 };
      e.n += b.n;
      e.sum += b.delay_sum_us;
      bins.set(b.t_ms, e);
    }
  }
  return [...bins.entries()].sort((x, y) => x[0] - y[0]).map(([t, e]) => ({ t_s: (t + run.bin_ms / 2) / 1000, avg_ms: e.n ? e.sum / e.n / 1000 : null, n: e.n }));
}

/** Mean one-way delay (ms) of every probe that arrived in [fromMs, toMs) after the start. */
function meanDelayBetween(run, fromMs, toMs) {
  let n = 0, sum = 0;
  for (const r of Object.values(run.probes)) for (const b of r.bins ?? []) {
    if (b.t_ms >= fromMs && b.t_ms + run.bin_ms <= toMs + run.bin_ms) { n += b.n; sum += b.delay_sum_us; }
  }
  return n ? sum / n / 1000 : null;
}

/** Probes lost: sent − received per (sender, receiver), and those sent inside a window. */
function lossStats(run, windows = {}) {
  let sent = 0, received = 0;
  const inWindow = Object.fromEntries(Object.keys(windows).map((k) => [k, 0]));
  for (const [dst, r] of Object.entries(run.probes)) {
    for (const [src, rx] of Object.entries(r.rx ?? {})) {
      const s = run.probes[src]?.sent?.[dst] ?? 0;
      sent += s;
      received += rx.received; // distinct sequence numbers (duplicates are counted apart)
      for (const [seq, count] of rx.lost_runs ?? []) {
        for (const [k, [from, to]] of Object.entries(windows)) {
          // Probe `seq` left its sender seq / rate seconds after the start.
          for (let q = seq; q < seq + count; q++) {
            const t = (q * 1000) / run.rate;
            if (t >= from && t < to) inWindow[k]++;
          }
        }
      }
    }
    // Senders whose probes never arrived at all (no rx entry for them).
    for (const [src, p] of Object.entries(run.probes)) {
      if (src !== dst && p.sent?.[dst] && !r.rx?.[src]) sent += p.sent[dst];
    }
  }
  return { sent, received, lost: Math.max(0, sent - received), lost_in: inWindow };
}

const eventMarkers = (run) => run.events.filter((e) => e.event !== 'plan').map((e) => ({ x: e.t_ms / 1000, label: e.event }));

// ---------------------------------------------------------------------------------------
// Fig. 4: downtime of a migrated service

const downtime = {
  title: 'Downtime of a migrated service (first paper, Fig. 4)',
  async run(ctx, profile) {
    const runs = [];
    for (const rate of [20, 1000]) {
      log(`downtime: one VM (h1) moves to site B while sending ${rate} probes/s to a client (h2) at site A`);
      const r = await migrationRun(ctx, {
        tag: `dt${rate}`, hosts: 2, delayMs: 0, dests: { 1: [2], 2: [1] }, rate, steps: [[1]], ensemble: false, trace: true,
        pre: profile.quick ? 1000 : 2000, gap: profile.quick ? 1000 : 2000, post: 0,
      });
      const mv = r.events.find((e) => e.event.startsWith('move'));
      const toClient = r.probes[2].rx['1'];
      const toVm = r.probes[1].rx['2'];
      const nominal = 1000 / rate;
      const res = {
        rate, move: mv, events: r.events,
        vm_to_client: { max_gap_ms: toClient?.max_gap_ms ?? null, at_ms: toClient?.max_gap_at_ms ?? null, lost: lossStats(r).lost },
        client_to_vm: { max_gap_ms: toVm?.max_gap_ms ?? null },
        detached_ms: mv.detached_ms, command_ms: mv.command_ms, nominal_gap_ms: nominal,
      };
      // The data plane's share: what the gap exceeds the host's own absence by (the NIC was
      // out of the namespace for detached_ms; a probe is due every nominal ms anyway).
      res.downtime_ms = res.vm_to_client.max_gap_ms;
      res.data_plane_ms = res.downtime_ms != null ? Math.max(0, res.downtime_ms - res.detached_ms - nominal) : null;
      // Inter-arrival times at the client over time (probes from the VM), for the figure.
      const tr = (r.probes[2].trace ?? []).filter((e) => e[1] === 1).sort((x, y) => x[0] - y[0]);
      res.inter_arrival = [];
      for (let i = 1; i < tr.length; i++) {
        const gapMs = tr[i][0] - tr[i - 1][0];
        // 1,000/s gives thousands of points: keep every 10th ordinary one and every long gap.
        if (rate <= 100 || gapMs > 1.5 * nominal || i % 10 === 0) res.inter_arrival.push([+(tr[i][0] / 1000).toFixed(4), +gapMs.toFixed(3)]);
      }
      log(`  ${rate}/s: longest gap at the client ${f(res.downtime_ms)} ms; the VM was detached ${f(res.detached_ms)} ms (migrate host ${f(res.command_ms)} ms) → data plane ${f(res.data_plane_ms)} ms`);
      runs.push(res);
    }
    const fast = runs.find((x) => x.rate === 1000);
    return {
      runs,
      goals: [{
        goal: 'migration downtime contributed by the data plane ≤ 5 ms at 1,000 probes/s (the paper: 0.6 s at 20/s)',
        value: `${f(fast.data_plane_ms)} ms (longest gap ${f(fast.downtime_ms)} ms − VM detached ${f(fast.detached_ms)} ms − one probe interval)`,
        pass: fast.data_plane_ms != null && fast.data_plane_ms <= 5,
      }],
    };
  },
  async render(res, figure) {
    const points = res.runs.flatMap((r) => r.inter_arrival.map(([x, y]) => ({ x, y, series: 'probe inter-arrival', panel: `${r.rate} probes/s` })));
    const markers = res.runs.flatMap((r) => [{ x: r.move.t_ms / 1000, label: 'VM detached', panel: `${r.rate} probes/s` }, { x: r.move.end_ms / 1000, label: 're-attached at B', panel: `${r.rate} probes/s` }]);
    const fig = await figure('fig4-downtime', panelLineSpec({
      title: 'Fig. 4 — inter-arrival time of a migrated VM\'s UDP probes at a client',
      subtitle: 'limed sites A and B; the VM\'s NIC leaves A and comes back at B (migrate host) while it sends',
      points, xTitle: 'time since the probes started (s)', yTitle: 'inter-arrival time (ms)', seriesTitle: 'measured at the client', panelTitle: 'probe rate', logY: true, markers,
    }));
    const L = [`![Fig. 4](${fig})`, '',
      '| probes/s | longest gap at the client (ms) | VM detached (ms) | of which `migrate host` (ms) | data plane\'s share (ms) | client → VM longest gap (ms) |',
      '|---:|---:|---:|---:|---:|---:|'];
    for (const r of res.runs) L.push(`| ${r.rate} | ${f(r.downtime_ms)} | ${f(r.detached_ms)} | ${f(r.command_ms)} | ${f(r.data_plane_ms)} | ${f(r.client_to_vm.max_gap_ms)} |`);
    L.push('', 'The VM is "detached" from the moment its NIC leaves site A\'s TAP until it is up again on site B\'s (as a hypervisor\'s switch-over); `migrate host` runs in between. The data plane\'s share is the longest gap minus that window and one probe interval. The first paper measured a downtime below 0.6 s at 20 probes/s.');
    return L;
  },
};

// ---------------------------------------------------------------------------------------
// Fig. 10: LIME vs stop-and-copy, two hosts

const limeVsSc = {
  title: 'LIME vs stop-and-copy, two hosts (LIME Fig. 10)',
  async run(ctx, profile) {
    const delayMs = 10;
    const runs = [];
    for (const strategy of ['lime', 'stop-and-copy']) {
      log(`lime-vs-sc: ${strategy}, two hosts talking at 200 probes/s each way, inter-site delay ${delayMs} ms`);
      const r = await migrationRun(ctx, {
        tag: `f10${strategy === 'lime' ? 'l' : 's'}`, hosts: 2, delayMs, strategy, dests: { 1: [2], 2: [1] }, rate: 200, steps: [[1], [2]],
        pre: profile.quick ? 600 : 2000, gap: profile.quick ? 700 : 3000, post: profile.quick ? 400 : 2000, binMs: profile.quick ? 200 : 500,
      });
      const fin = r.events.find((e) => e.event === 'finalize');
      const moves = r.events.filter((e) => e.event.startsWith('move'));
      const loss = lossStats(r, {
        cut_over: [fin.t_ms - 20, fin.end_ms + 250],
        moves: [Math.min(...moves.map((m) => m.t_ms)) - 20, Math.max(...moves.map((m) => m.end_ms)) + 50],
      });
      const series = delaySeries(r);
      const mean = meanDelayBetween(r, r.events[0].t_ms, fin.end_ms);
      log(`  ${strategy}: inter-site ${r.inter_site.bytes} bytes; mean delay over the migration ${f(mean, 2)} ms; lost at cut-over ${loss.lost_in.cut_over}, in the host moves ${loss.lost_in.moves}`);
      runs.push({ strategy, delay_ms: delayMs, events: r.events, series, inter_site: r.inter_site, loss, mean_delay_ms: mean, delayline: r.delayline });
    }
    const [lime, sc] = runs;
    return {
      runs,
      goals: [{
        goal: 'LIME: inter-site bytes ≤ stop-and-copy\'s, and no loss at cut-over',
        value: `${lime.inter_site.bytes} vs ${sc.inter_site.bytes} bytes (${f(lime.inter_site.bytes / sc.inter_site.bytes, 2)}×); lost at cut-over: LIME ${lime.loss.lost_in.cut_over}, stop-and-copy ${sc.loss.lost_in.cut_over}`,
        pass: lime.inter_site.bytes <= sc.inter_site.bytes && lime.loss.lost_in.cut_over === 0,
      }],
    };
  },
  async render(res, figure) {
    const points = res.runs.flatMap((r) => r.series.filter((p) => p.avg_ms != null).map((p) => ({ x: p.t_s, y: p.avg_ms, series: r.strategy })));
    const fig = await figure('fig10-lime-vs-stop-and-copy', lineSpec({
      title: 'Fig. 10 — average delay over an ensemble migration of two hosts',
      subtitle: `inter-site one-way delay ${res.runs[0].delay_ms} ms (user-space delay element); markers: the LIME run's events`,
      points, xTitle: 'time since the probes started (s)', yTitle: 'average one-way delay (ms)', seriesTitle: 'strategy', markers: eventMarkers(res.runs[0]),
    }));
    const L = [`![Fig. 10](${fig})`, '',
      '| strategy | inter-site bytes | mean delay over the migration (ms) | probes lost at cut-over | lost during the host moves | lost in all |',
      '|---|---:|---:|---:|---:|---:|'];
    for (const r of res.runs) L.push(`| ${r.strategy} | ${r.inter_site.bytes} | ${f(r.mean_delay_ms, 2)} | ${r.loss.lost_in.cut_over} | ${r.loss.lost_in.moves} | ${r.loss.lost} |`);
    L.push('', 'Stop-and-copy runs every frame through the old site\'s table until the cut-over: once both hosts are at B their frames cross the inter-site link twice (B → A → B), and finalize freezes forwarding while it cuts over. LIME processes a frame at the site where it enters and tunnels only at egress.');
    return L;
  },
};

// ---------------------------------------------------------------------------------------
// Fig. 11: delay vs inter-site latency, k-random traffic

function ensembleParams(profile) {
  return profile.quick
    ? { n: 4, k: 2, rate: 50, pre: 600, gap: 400, post: 300, binMs: 100, planMs: 500 }
    : { n: 10, k: 3, rate: 50, pre: 1000, gap: 600, post: 500, binMs: 100, planMs: 2000 };
}

const delaySweep = {
  title: 'Delay vs inter-site latency (LIME Fig. 11)',
  async run(ctx, profile) {
    const p = ensembleParams(profile);
    const dests = kRandomPairs(p.n, p.k, 11);
    const delays = profile.quick ? [20] : [0, 5, 10, 20, 50];
    const points = [];
    for (const delayMs of delays) {
      for (const strategy of ['lime', 'stop-and-copy']) {
        const r = await migrationRun(ctx, {
          tag: `f11`, hosts: p.n, delayMs, strategy, dests, rate: p.rate, steps: hostList(p.n).map((h) => [h]),
          pre: p.pre, gap: p.gap, post: p.post, binMs: p.binMs,
        });
        const fin = r.events.find((e) => e.event === 'finalize');
        const mean = meanDelayBetween(r, r.events[0].t_ms, fin.end_ms);
        const loss = lossStats(r, { cut_over: [fin.t_ms - 20, fin.end_ms + 250] });
        points.push({ delay_ms: delayMs, strategy, mean_delay_ms: mean, inter_site_bytes: r.inter_site.bytes, lost: loss.lost, lost_cut_over: loss.lost_in.cut_over });
        log(`delay-sweep: ${delayMs} ms, ${strategy}: mean delay over the migration ${f(mean, 2)} ms, inter-site ${r.inter_site.bytes} bytes, lost ${loss.lost} (${loss.lost_in.cut_over} at cut-over)`);
      }
    }
    return { hosts: p.n, k: p.k, rate: p.rate, dests, points };
  },
  async render(res, figure) {
    const fig = await figure('fig11-delay-vs-latency', lineSpec({
      title: 'Fig. 11 — average packet delay over the migration vs inter-site delay',
      subtitle: `${res.hosts} hosts, k-random traffic (k = ${res.k}, ${res.rate} probes/s per pair), moved one by one, then finalize`,
      points: res.points.map((q) => ({ x: q.delay_ms, y: q.mean_delay_ms, series: q.strategy })),
      xTitle: 'inter-site one-way delay (ms)', yTitle: 'average one-way delay (ms)', seriesTitle: 'strategy',
    }));
    const L = [`![Fig. 11](${fig})`, '', '| inter-site delay (ms) | strategy | mean delay (ms) | inter-site bytes | probes lost (at cut-over) |', '|---:|---|---:|---:|---:|'];
    for (const q of res.points) L.push(`| ${q.delay_ms} | ${q.strategy} | ${f(q.mean_delay_ms, 2)} | ${q.inter_site_bytes} | ${q.lost} (${q.lost_cut_over}) |`);
    return L;
  },
};

// ---------------------------------------------------------------------------------------
// Fig. 12: migration order

/** Inter-site cost of an order: Σ over steps of the pairs split between the sites. */
export function orderCost(order, dests) {
  const moved = new Set();
  let cost = 0;
  for (const group of order) {
    for (const h of group) moved.add(h);
    for (const [h, ds] of Object.entries(dests)) for (const d of ds) if (moved.has(Number(h)) !== moved.has(d)) cost++;
  }
  return cost;
}

/** The best (or worst) one-at-a-time order by dynamic programming over the moved sets. */
export function extremeOrder(n, dests, worst = false) {
  const cut = (mask) => {
    let c = 0;
    for (const [h, ds] of Object.entries(dests)) for (const d of ds) if (((mask >> (Number(h) - 1)) & 1) !== ((mask >> (d - 1)) & 1)) c++;
    return c;
  };
  const full = (1 << n) - 1;
  const best = new Float64Array(1 << n).fill(worst ? -Infinity : Infinity);
  const from = new Int32Array(1 << n).fill(-1);
  best[0] = 0;
  for (let mask = 1; mask <= full; mask++) {
    const c = cut(mask);
    for (let h = 0; h < n; h++) {
      if (!((mask >> h) & 1)) continue;
      const v = best[mask ^ (1 << h)] + c;
      if (worst ? v > best[mask] : v < best[mask]) { best[mask] = v; from[mask] = h; }
    }
  }
  const order = [];
  for (let mask = full; mask; mask ^= 1 << from[mask]) order.unshift([from[mask] + 1]);
  return order;
}

function seededShuffle(xs, seed) {
  let s = seed;
  const rnd = () => { s = (s * 1103515245 + 12345) % 2 ** 31; return s / 2 ** 31; };
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) { const j = Math.floor(rnd() * (i + 1)); [a[i], a[j]] = [a[j], a[i]]; }
  return a;
}

const order = {
  title: 'Migration order (LIME Fig. 12)',
  async run(ctx, profile) {
    const p = ensembleParams(profile);
    const k = 2;
    const dests = kRandomPairs(p.n, k, 12);
    const delayMs = 10;
    const windowMs = p.planMs;
    const fixed = {
      optimal: extremeOrder(p.n, dests, false),
      worst: extremeOrder(p.n, dests, true),
      random: seededShuffle(hostList(p.n), 7).map((h) => [h]),
    };
    const runs = [];
    for (const name of profile.quick ? ['optimal', 'worst', 'planner'] : ['optimal', 'worst', 'planner', 'random']) {
      const r = await migrationRun(ctx, {
        tag: 'f12', hosts: p.n, delayMs, strategy: 'lime', dests, rate: p.rate,
        steps: name === 'planner' ? (plan) => (plan?.steps ?? []).map((s) => s.hosts.map((h) => Number(h.replace(/^h/, '')))) : fixed[name],
        stepCount: p.n, plan: { windowMs, parallel: 1 }, pre: p.pre, gap: p.gap, post: p.post, binMs: 250,
      });
      const fin = r.events.find((e) => e.event === 'finalize');
      const mean = meanDelayBetween(r, r.events.find((e) => e.event === 'prepare').t_ms, fin.end_ms);
      runs.push({
        order_name: name, order: r.order, predicted_split_pairs: orderCost(r.order, dests), inter_site: r.inter_site, mean_delay_ms: mean,
        series: delaySeries(r), events: r.events, planner_predicted_bytes: name === 'planner' ? r.plan?.predicted_bytes ?? null : null,
      });
      log(`order: ${name} (${r.order.map((g) => g.join('+')).join(' ')}): inter-site ${r.inter_site.bytes} bytes, mean delay ${f(mean, 2)} ms, split pairs summed over steps ${orderCost(r.order, dests)}`);
    }
    return { hosts: p.n, k, rate: p.rate, delay_ms: delayMs, dests, runs };
  },
  async render(res, figure) {
    const points = res.runs.flatMap((r) => {
      const t0 = r.events.find((e) => e.event === 'prepare').t_ms / 1000;
      return r.series.filter((q) => q.avg_ms != null).map((q) => ({ x: +(q.t_s - t0).toFixed(3), y: q.avg_ms, series: r.order_name }));
    });
    const f1 = await figure('fig12-order-delay', lineSpec({
      title: 'Fig. 12 — average delay during the migration, by move order',
      subtitle: `${res.hosts} hosts, k-random (k = ${res.k}), inter-site delay ${res.delay_ms} ms, LIME, one host per step`,
      points, xTitle: 'time since migrate prepare (s)', yTitle: 'average one-way delay (ms)', seriesTitle: 'order', pointMarks: false,
    }));
    const f2 = await figure('fig12-order-bytes', barSpec({
      title: 'Fig. 12 — inter-site bytes during the migration, by move order',
      subtitle: 'tunnel bytes sent by both sites from prepare to finalize',
      rows: res.runs.map((r) => ({ label: r.order_name, median: r.inter_site.bytes / 1e3, text: `${(r.inter_site.bytes / 1e3).toFixed(0)} kB`, group: r.order_name === 'planner' ? 'limed planner' : 'reference order' })),
      yTitle: 'inter-site bytes (kB)', xTitle: 'order', groupTitle: 'who ordered',
    }));
    const L = [`![Fig. 12, delay](${f1})`, '', `![Fig. 12, bytes](${f2})`, '',
      '| order | moves | split pairs summed over steps | inter-site bytes | mean delay (ms) |', '|---|---|---:|---:|---:|'];
    for (const r of res.runs) L.push(`| ${r.order_name} | ${r.order.map((g) => g.join('+')).join(' ')} | ${r.predicted_split_pairs} | ${r.inter_site.bytes} | ${f(r.mean_delay_ms, 2)} |`);
    L.push('', '"optimal" and "worst" are the best and worst one-at-a-time orders for the known traffic pattern (dynamic programming over the moved sets); "planner" is `migrate plan`, which measured the traffic at site A for a window first; "random" a seeded shuffle.');
    return L;
  },
};

// ---------------------------------------------------------------------------------------
// Fig. 13: concurrent moves

const concurrent = {
  title: 'Concurrent moves (LIME Fig. 13)',
  async run(ctx, profile) {
    const p = ensembleParams(profile);
    const dests = kRandomPairs(p.n, 2, 13);
    const delayMs = 10;
    const base = extremeOrder(p.n, dests, false).flat();
    const sizes = profile.quick ? [1, p.n] : [1, 2, 5, p.n];
    const points = [];
    for (const size of sizes) {
      const steps = [];
      for (let i = 0; i < base.length; i += size) steps.push(base.slice(i, i + size));
      const r = await migrationRun(ctx, { tag: 'f13', hosts: p.n, delayMs, strategy: 'lime', dests, rate: p.rate, steps, pre: p.pre, gap: p.gap, post: p.post, binMs: 250 });
      const moves = r.events.filter((e) => e.event.startsWith('move'));
      points.push({ at_once: size, steps: steps.length, inter_site_bytes: r.inter_site.bytes, longest_detach_ms: Math.max(...moves.map((m) => m.detached_ms)) });
      log(`concurrent: ${size} at once (${steps.length} steps): inter-site ${r.inter_site.bytes} bytes`);
    }
    return { hosts: p.n, k: 2, rate: p.rate, delay_ms: delayMs, step_ms: p.gap, points };
  },
  async render(res, figure) {
    const fig = await figure('fig13-concurrent-moves', lineSpec({
      title: 'Fig. 13 — inter-site traffic vs hosts moved at once',
      subtitle: `${res.hosts} hosts, k-random (k = ${res.k}, ${res.rate} probes/s per pair), one step every ${res.step_ms} ms, LIME`,
      points: res.points.map((q) => ({ x: q.at_once, y: q.inter_site_bytes / 1e3, series: 'limed (LIME)' })),
      xTitle: 'hosts moved at once', yTitle: 'inter-site bytes during the migration (kB)', seriesTitle: 'system', yDomainMin: 0,
    }));
    const L = [`![Fig. 13](${fig})`, '', '| hosts at once | steps | inter-site bytes | longest detach of a step (ms) |', '|---:|---:|---:|---:|'];
    for (const q of res.points) L.push(`| ${q.at_once} | ${q.steps} | ${q.inter_site_bytes} | ${f(q.longest_detach_ms, 0)} |`);
    return L;
  },
};

export const migrationExperiments = { downtime, 'lime-vs-sc': limeVsSc, 'delay-sweep': delaySweep, order, concurrent };
