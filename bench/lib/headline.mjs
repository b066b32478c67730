// The report's headline: every system side by side (medians with min–max over rounds,
// ratios to the anchors), its figures, and issue 7's goals judged on the same run.
import { percentile } from './stats.mjs';
import { barSpec } from './figures.mjs';

/** The systems compared, in the order the report shows them, and their family. */
export const SYSTEMS = [
  { name: 'veth', label: 'direct veth (floor)', family: 'kernel' },
  { name: 'bridge', label: 'Linux bridge', family: 'kernel' },
  { name: 'tapfwd', label: 'C TAP forwarder', family: 'user-space reference' },
  { name: 'ovs', label: 'OVS userspace bridge', family: 'Open vSwitch' },
  { name: 'limed', label: 'limed bridge', family: 'limed' },
  { name: 'gre-ovs', label: 'OVS GRE (2 sites)', family: 'Open vSwitch' },
  { name: 'openvpn', label: 'OpenVPN tap/UDP (2 sites)', family: 'OpenVPN' },
  { name: 'gre-limed', label: 'limed GRE (2 sites)', family: 'limed' },
  { name: 'vlan-limed', label: 'limed VLAN trunk (2 sites)', family: 'limed' },
];

const fmt = (v, d) => (v == null || !Number.isFinite(v) ? 'n/a' : v.toFixed(d));

/** Pooled RTT percentiles of every round's pings of one scenario, minus the floor's. */
function pooledRtt(results, name) {
  const rtts = results.samples.filter((s) => s.scenario === name && s.rtt?.rtts_us?.length).flatMap((s) => s.rtt.rtts_us);
  if (!rtts.length) return null;
  const sorted = [...rtts].sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), p999: percentile(sorted, 99.9) };
}

/** Rows of the headline table: one per system that ran. */
export function headlineRows(results, agg) {
  const floor = pooledRtt(results, 'veth');
  const rows = [];
  for (const sys of SYSTEMS) {
    const a = agg[sys.name];
    if (!a?.rounds_ok) continue;
    const m = (k) => (a.metrics[k]?.n ? a.metrics[k] : null);
    const rtt = pooledRtt(results, sys.name);
    const added = (p) => (rtt && floor ? rtt[p] - floor[p] : null);
    rows.push({
      ...sys,
      rounds: a.rounds_ok,
      capacity: m('ladder_pps'), blast: m('blast_rx_pps'), tcp: m('tcp_gbps'), cpu: m('cpu_us_per_frame'),
      rtt, rtt_added: { p50: added('p50'), p99: added('p99'), p999: added('p999') },
      sender_limited: a.ladder_sender_limited,
    });
  }
  return rows;
}

const byName = (rows, n) => rows.find((r) => r.name === n);
const ratio = (a, b) => (a != null && b != null && b !== 0 ? a / b : null);

/** Issue 7's goals, from the medians of this run (and the experiments it ran). */
export function headlineGoals(rows, results) {
  const goals = [];
  const cap = (n) => byName(rows, n)?.capacity?.median ?? null;
  if (cap('limed') != null && cap('ovs') != null) {
    const r = ratio(cap('limed'), cap('ovs'));
    goals.push({ goal: 'limed bridge ≥ Open vSwitch userspace packets/s (capacity, ≤ 1 % loss)', value: `${fmt(r, 2)}× (${fmt(cap('limed') / 1e3, 1)}k vs ${fmt(cap('ovs') / 1e3, 1)}k frames/s)`, pass: r >= 1 });
  }
  if (cap('gre-limed') != null && (cap('gre-ovs') != null || cap('openvpn') != null)) {
    const ro = ratio(cap('gre-limed'), cap('gre-ovs'));
    const rv = ratio(cap('gre-limed'), cap('openvpn'));
    goals.push({
      goal: 'limed GRE tunnel ≥ both OVS GRE and OpenVPN tap (capacity, ≤ 1 % loss)',
      value: `${fmt(ro, 2)}× OVS GRE, ${fmt(rv, 2)}× OpenVPN (${fmt(cap('gre-limed') / 1e3, 1)}k vs ${fmt(cap('gre-ovs') / 1e3, 1)}k and ${fmt(cap('openvpn') / 1e3, 1)}k frames/s)`,
      pass: (ro == null || ro >= 1) && (rv == null || rv >= 1),
    });
  }
  const il = results.rtt_interleaved;
  if (il && !il.error) {
    const r = il.ratio_added_p50;
    goals.push({ goal: 'limed added p50 RTT ≤ 1.5× the C forwarder\'s (interleaved pings)', value: `${fmt(r, 2)}× (+${fmt(il.pooled.limed.added_p50_us, 0)} µs vs +${fmt(il.pooled.tapfwd.added_p50_us, 0)} µs)`, pass: r <= 1.5 });
  } else {
    const l = byName(rows, 'limed')?.rtt_added?.p50, t = byName(rows, 'tapfwd')?.rtt_added?.p50;
    if (l != null && t != null) goals.push({ goal: 'limed added p50 RTT ≤ 1.5× the C forwarder\'s (rounds\' pings; the interleaved comparison did not run)', value: `${fmt(ratio(l, t), 2)}×`, pass: ratio(l, t) <= 1.5 });
  }
  for (const name of ['downtime', 'lime-vs-sc']) {
    const e = results.experiments?.[name];
    if (e?.goals) goals.push(...e.goals);
    else if (e?.error) goals.push({ goal: `${name}: its goal`, value: `the experiment failed: ${e.error}`, pass: false });
  }
  return goals;
}

/** Markdown of the headline table; `figures` are the paths of the headline figures. */
export function renderHeadline(rows, goals, figures) {
  const L = ['## Headline: the systems side by side', ''];
  if (!rows.length) { L.push('No system scenario ran.', ''); } else {
    L.push('Medians over rounds (min–max in the per-scenario sections below). Capacity: highest paced 64-byte rate with ≤ 1 % loss; CPU: the forwarder processes\' CPU time per delivered frame at a fixed paced rate (tunnels: both sites, at the tunnel rate); RTT: every round\'s pings pooled, minus the direct veth\'s (the floor).', '');
    L.push('| system | capacity (kframes/s) | blast (kframes/s) | TCP (Gbit/s) | CPU (µs/frame) | RTT added p50 / p99 / p99.9 (µs) | rounds |');
    L.push('|---|---:|---:|---:|---:|---:|---:|');
    for (const r of rows) {
      const cap = r.capacity ? `${fmt(r.capacity.median / 1e3, 1)}${r.sender_limited ? ' (sender-limited)' : ''}` : 'n/a';
      const add = r.name === 'veth' ? `(floor: ${fmt(r.rtt?.p50, 0)} / ${fmt(r.rtt?.p99, 0)} / ${fmt(r.rtt?.p999, 0)})` : `${fmt(r.rtt_added.p50, 0)} / ${fmt(r.rtt_added.p99, 0)} / ${fmt(r.rtt_added.p999, 0)}`;
      L.push(`| ${r.label} | ${cap} | ${r.blast ? fmt(r.blast.median / 1e3, 1) : 'n/a'} | ${r.tcp ? fmt(r.tcp.median, 2) : 'n/a'} | ${r.cpu ? fmt(r.cpu.median, 2) : '— (kernel)'} | ${add} | ${r.rounds} |`);
    }
    L.push('');
    const pairs = [['limed', 'ovs'], ['limed', 'tapfwd'], ['gre-limed', 'gre-ovs'], ['gre-limed', 'openvpn'], ['vlan-limed', 'gre-ovs'], ['vlan-limed', 'openvpn']]
      .map(([a, b]) => [byName(rows, a), byName(rows, b)]).filter(([a, b]) => a && b);
    if (pairs.length) {
      L.push('limed against the anchors (ratios of the medians; capacity and TCP: higher is better; CPU and added RTT: lower is better):', '');
      L.push('| | capacity | TCP | CPU per frame | added RTT p50 | added RTT p99 |', '|---|---:|---:|---:|---:|---:|');
      const x = (v) => (v == null || !Number.isFinite(v) ? 'n/a' : `${v.toFixed(2)}×`);
      const behind = [];
      for (const [a, b] of pairs) {
        const r = {
          capacity: ratio(a.capacity?.median, b.capacity?.median), TCP: ratio(a.tcp?.median, b.tcp?.median), 'CPU per frame': ratio(a.cpu?.median, b.cpu?.median),
          'added RTT p50': ratio(a.rtt_added.p50, b.rtt_added.p50), 'added RTT p99': ratio(a.rtt_added.p99, b.rtt_added.p99),
        };
        L.push(`| ${a.label} ÷ ${b.label} | ${x(r.capacity)} | ${x(r.TCP)} | ${x(r['CPU per frame'])} | ${x(r['added RTT p50'])} | ${x(r['added RTT p99'])} |`);
        for (const [k, v] of Object.entries(r)) {
          if (v == null || !Number.isFinite(v)) continue;
          const worse = k === 'capacity' || k === 'TCP' ? v < 1 : v > 1;
          if (worse) behind.push(`${a.label} vs ${b.label}: ${k} ${x(v)}`);
        }
      }
      L.push('');
      L.push(behind.length ? `Where limed is behind an anchor in this run: ${behind.join('; ')}.` : 'limed is not behind any anchor in this run.', '');
    }
    for (const p of figures) L.push(`![${p}](${p})`, '');
  }
  L.push('## Goals (issue 7)', '');
  if (!goals.length) L.push('No goal could be judged: the scenarios they compare did not run.');
  for (const g of goals) L.push(`- ${g.pass ? '**met**' : '**not met**'} — ${g.goal}: ${g.value}`);
  L.push('');
  return L;
}

/** The headline figures' Vega-Lite specs: capacity, TCP, CPU per frame, added RTT. */
export function headlineFigureSpecs(rows) {
  const bars = (key, scale, digits) => rows.filter((r) => r[key]).map((r) => ({
    label: r.label, group: r.family, median: r[key].median * scale, min: r[key].min * scale, max: r[key].max * scale, text: fmt(r[key].median * scale, digits),
  }));
  const specs = [];
  const cap = bars('capacity', 1e-3, 0);
  if (cap.length) specs.push(['headline-capacity', barSpec({ title: 'Capacity: 64-byte frames/s with ≤ 1 % loss', subtitle: 'paced ladder; median of rounds, whiskers min–max; higher is better', rows: cap, yTitle: 'delivered kframes/s', groupTitle: 'system family' })]);
  const tcp = bars('tcp', 1, 2);
  if (tcp.length) specs.push(['headline-tcp', barSpec({ title: 'TCP throughput h1 → h2 (iperf3)', subtitle: 'median of rounds, whiskers min–max; higher is better', rows: tcp, yTitle: 'Gbit/s', groupTitle: 'system family' })]);
  const cpu = bars('cpu', 1, 1);
  if (cpu.length) specs.push(['headline-cpu', barSpec({ title: 'Forwarder CPU time per delivered frame', subtitle: 'at a fixed paced rate (tunnels: both sites\' processes); lower is better', rows: cpu, yTitle: 'µs of CPU per frame', groupTitle: 'system family' })]);
  const rtt = rows.filter((r) => r.name !== 'veth' && r.rtt_added.p50 != null).map((r) => ({ label: r.label, group: r.family, median: r.rtt_added.p50, min: r.rtt_added.p50, max: r.rtt_added.p99, text: fmt(r.rtt_added.p50, 0) }));
  if (rtt.length) specs.push(['headline-rtt', barSpec({ title: 'Round-trip time added over a direct veth', subtitle: 'bar: p50; whisker up to p99; pings of every round pooled; lower is better', rows: rtt, yTitle: 'added RTT (µs)', groupTitle: 'system family' })]);
  return specs;
}


