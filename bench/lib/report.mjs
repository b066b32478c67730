// Aggregation of per-round samples and the markdown report.
import { summary } from './stats.mjs';
import { FLOW_ORDER, MASKS, HIT_FLOW } from './flows.mjs';
import { TUNNEL_ORDER, GRE_KEY, WAN_MTU } from './tunnels.mjs';

const isFlow = (n) => FLOW_ORDER.includes(n);
const isTunnel = (n) => TUNNEL_ORDER.includes(n);
/** The issue-2 scenarios (veth … limed): the Summary / Per metric tables and issue 2's goals. */
const isBase = (n) => !isFlow(n) && !isTunnel(n);

export const FRAME_NOTE = 'iperf3 `-l 64` sets a 64-byte UDP payload: each frame is 64 + 8 (UDP) + 20 (IPv4) + 14 (Ethernet) = 106 bytes on the TAP/veth (110 B with FCS on a real wire).';

export function metricDefs(profile) {
  return [
    { key: 'ladder_pps', title: 'Capacity: highest paced 64-byte UDP rate with ≤ 1 % loss (delivered frames/s)', unit: 'kframes/s', scale: 1e-3, better: 'higher', digits: 1 },
    { key: 'blast_rx_pps', title: 'Unpaced 64-byte UDP blast (`iperf3 -u -l 64 -b 0`): delivered frames/s', unit: 'kframes/s', scale: 1e-3, better: 'higher', digits: 1 },
    { key: 'blast_loss_pct', title: 'Unpaced 64-byte UDP blast: loss', unit: '%', scale: 1, better: 'lower', digits: 2, noRatio: true },
    { key: 'cpu_us_per_frame', title: `Forwarder CPU time per delivered frame at ${profile.cpuRate / 1000}k frames/s paced (utime+stime / frames)`, unit: 'µs/frame', scale: 1, better: 'lower', digits: 3 },
    { key: 'cpu_share', title: `Forwarder CPU share at ${profile.cpuRate / 1000}k frames/s paced`, unit: '% of one core', scale: 100, better: 'lower', digits: 1 },
    { key: 'tcp_gbps', title: 'TCP throughput h1→h2 (`iperf3 -t ' + profile.tcpSec + '`)', unit: 'Gbit/s', scale: 1, better: 'higher', digits: 2 },
    { key: 'rtt_p50_us', title: `RTT p50 (\`ping -i ${profile.pingInterval} -c ${profile.pingCount}\`)`, unit: 'µs', scale: 1, better: 'lower', digits: 0 },
    { key: 'rtt_p99_us', title: 'RTT p99', unit: 'µs', scale: 1, better: 'lower', digits: 0 },
    { key: 'rtt_added_p50_us', title: 'Added p50 RTT over the direct-veth floor (same round)', unit: 'µs', scale: 1, better: 'lower', digits: 0 },
  ];
}

/** Collect per-scenario arrays of each metric over rounds. */
export function aggregate(results, scenarioNames) {
  const out = {};
  for (const name of scenarioNames) {
    const samples = results.samples.filter((s) => s.scenario === name && !s.error);
    const m = {};
    const keys = new Set(samples.flatMap((s) => Object.keys(s.metrics ?? {})));
    for (const k of keys) {
      const vals = samples.map((s) => s.metrics[k]).filter((v) => typeof v === 'number' && Number.isFinite(v));
      m[k] = { ...summary(vals), values: vals };
    }
    out[name] = {
      rounds_ok: samples.length,
      rounds_failed: results.samples.filter((s) => s.scenario === name && s.error).length,
      metrics: m,
      ladder_sender_limited: samples.filter((s) => s.ladder?.sender_limited).length,
    };
  }
  return out;
}

const fmt = (v, d) => (v == null || !Number.isFinite(v) ? 'n/a' : v.toFixed(d));

export function renderMarkdown({ results, agg, scenarioNames, profile, goals, flowGoals, tunnelGoals }) {
  const L = [];
  const env = results.environment;
  L.push(`# lime bench — ${results.started_at}`);
  L.push('');
  L.push(`Mode: ${profile.quick ? '--quick' : 'default'}; rounds: ${profile.rounds} (scenarios interleaved round-robin); scenarios: ${scenarioNames.join(', ')}.`);
  L.push(`Machine: ${env.cpu_model} × ${env.cpus} CPUs, kernel ${env.kernel}, Node ${env.node}, ${env.ovs ?? 'OVS n/a'}, ${env.iperf3}${env.openvpn ? `, ${env.openvpn.replace(/ \[.*$/, '')}` : ''}. Commit ${env.git_commit}${env.git_dirty ? ' (+ uncommitted changes)' : ''}.`);
  L.push('');
  L.push(`Frame size: ${FRAME_NOTE}`);
  L.push(scenarioNames.some(isBase)
    ? `Values are the median over rounds, with min–max; "× tapfwd" is median ÷ the C TAP forwarder's median. Runtime: ${Math.round(results.runtime_s)} s.`
    : `Values are the median over rounds, with min–max. Runtime: ${Math.round(results.runtime_s)} s.`);
  L.push('');

  const skipped = Object.entries(results.skipped ?? {});
  for (const [n, why] of skipped) L.push(`- **${n}: skipped: ${why}**`);
  for (const n of scenarioNames) {
    const a = agg[n];
    if (a && a.rounds_failed) {
      const errs = results.samples.filter((s) => s.scenario === n && s.error).map((s) => `round ${s.round}: ${s.error}`);
      L.push(`- **${n}: ${a.rounds_failed} round(s) failed** — ${errs.join('; ')}`);
    }
  }
  if (skipped.length) L.push('');

  const busy = results.samples.map((s) => s.background_busy_pct).filter((x) => typeof x === 'number');
  if (busy.length) {
    const hi = results.samples.filter((s) => s.background_busy_pct > 10).map((s) => `${s.scenario}#${s.round} ${s.background_busy_pct.toFixed(0)} %`);
    L.push(`Other work on the machine (CPU busy over 1 s with the topology idle, before each measurement): median ${summary(busy).median.toFixed(1)} %, max ${summary(busy).max.toFixed(1)} % of all CPUs.${hi.length ? ` **Noisy (> 10 %): ${hi.join(', ')} — treat those samples with care.**` : ''}`);
    L.push('');
  }

  const defs = metricDefs(profile);
  // The flow-table scenarios (udpgen-driven) and the tunnels have their own sections below.
  const shown = scenarioNames.filter((n) => agg[n]?.rounds_ok && isBase(n));
  const baseSelected = scenarioNames.some(isBase);
  if (baseSelected) {
  // Summary table
  L.push('## Summary (medians)');
  L.push('');
  const sumKeys = ['ladder_pps', 'blast_rx_pps', 'cpu_us_per_frame', 'tcp_gbps', 'rtt_p50_us', 'rtt_p99_us', 'rtt_added_p50_us'];
  const sumDefs = sumKeys.map((k) => defs.find((d) => d.key === k));
  L.push(`| scenario | ${sumDefs.map((d) => `${shortName(d.key)} (${d.unit})`).join(' | ')} |`);
  L.push(`|---|${sumDefs.map(() => '---:').join('|')}|`);
  for (const n of shown) {
    const row = sumDefs.map((d) => {
      const s = agg[n].metrics[d.key];
      return s && s.n ? fmt(s.median * d.scale, d.digits) : 'n/a';
    });
    L.push(`| ${n} | ${row.join(' | ')} |`);
  }
  L.push('');

  L.push('## Per metric');
  for (const d of defs) {
    L.push('');
    L.push(`### ${d.title}`);
    L.push('');
    L.push(`${d.better === 'higher' ? 'Higher' : 'Lower'} is better. Unit: ${d.unit}.`);
    if (d.key === 'ladder_pps') {
      L.push('Ladder: paced `iperf3 -u -l 64 -b RATE×512 --pacing-timer 200 -t ' + profile.ladderSec + `\` at ${profile.ladderStart / 1000}k, +${profile.ladderStep / 1000}k, … until two steps lose > 1 %, then ${profile.refine} bisection step(s). The figure is the delivered rate of the best step with ≤ 1 % loss. "sender-limited" means iperf3 could not offer more than that (the generator, on the same 2 cores, is the limit, so the true capacity is at least this).`);
    }
    if (d.key === 'cpu_us_per_frame') L.push('Not applicable to veth and bridge (the kernel forwards in the sender\'s and receiver\'s context). OVS: ovs-vswitchd, all threads.');
    L.push('');
    const hasNote = d.key === 'ladder_pps' || d.key === 'cpu_us_per_frame';
    L.push(`| scenario | median | min–max | × tapfwd | rounds${hasNote ? ' | note' : ''} |`);
    L.push(`|---|---:|---:|---:|---:${hasNote ? '|---' : ''}|`);
    const base = agg.tapfwd?.metrics[d.key];
    for (const n of shown) {
      const s = agg[n].metrics[d.key];
      let note = '';
      if (d.key === 'ladder_pps') {
        const sl = agg[n].ladder_sender_limited;
        note = ` | ${sl ? `sender-limited in ${sl}/${agg[n].rounds_ok}` : ''}`;
      } else if (d.key === 'cpu_us_per_frame') {
        const cs = results.samples.filter((x) => x.scenario === n && x.cpu);
        const rx = summary(cs.map((x) => x.cpu.rx_pps)).median;
        const loss = summary(cs.map((x) => x.cpu.loss_pct)).median;
        note = rx != null ? ` | delivered ${fmt(rx / 1e3, 1)}k/s, loss ${fmt(loss, 2)} %` : ' | ';
      }
      if (!s || !s.n) { L.push(`| ${n} | n/a | | | 0${note} |`); continue; }
      const ratio = !d.noRatio && base?.n && base.median ? fmt(s.median / base.median, 2) + '×' : '';
      L.push(`| ${n} | ${fmt(s.median * d.scale, d.digits)} | ${fmt(s.min * d.scale, d.digits)}–${fmt(s.max * d.scale, d.digits)} | ${ratio} | ${s.n}${note} |`);
    }
  }
  L.push('');

  renderRttInterleaved(L, results.rtt_interleaved);

  // limed heap
  const heaps = results.samples.filter((s) => s.scenario === 'limed' && s.heap);
  if (heaps.length) {
    L.push('## limed heap across ≥ 1 M frames');
    L.push('');
    L.push('`limectl show --json` before and after paced runs that delivered the frames below (`process.heap_used`, `process.gc_count`).');
    L.push('');
    L.push('The scavenges counted here collect what Node 20\'s event loop allocates on every wake-up outside any JavaScript (`Environment::CheckImmediate` creates an empty object per loop iteration); the allocation profile below attributes every allocated byte.');
    L.push('');
    L.push('| round | frames delivered | heap before (MiB) | heap after (MiB) | heap Δ (KiB) | GCs | GCs per 1 M frames | rss after (MiB) |');
    L.push('|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const s of heaps) {
      const h = s.heap;
      if (h.error) { L.push(`| ${s.round} | ${h.error} | | | | | | |`); continue; }
      L.push(`| ${s.round} | ${h.frames} | ${fmt(h.heap_before / 2 ** 20, 2)} | ${fmt(h.heap_after / 2 ** 20, 2)} | ${fmt(h.heap_delta / 1024, 1)} | ${h.gc_delta ?? 'n/a'} | ${fmt(h.gc_per_million, 2)} | ${fmt(h.rss_after / 2 ** 20, 1)} |`);
    }
    L.push('');
  }

  // limed's Prometheus endpoint, scraped with curl around the load
  const proms = results.samples.filter((s) => s.scenario === 'limed' && s.prometheus);
  if (proms.length) {
    L.push('## limed Prometheus endpoint');
    L.push('');
    L.push(`\`curl ${proms[0].prometheus.url}\` (config \`metrics:\`, from limed's namespace) after the warm-up and again after the load (RTT, TCP, CPU, blast and ladder): the sums over both ports of \`lime_port_rx_packets_total\` and \`lime_port_tx_packets_total\`.`);
    L.push('');
    L.push('| round | rx packets before | rx packets after | tx packets before | tx packets after | counters moved |');
    L.push('|---:|---:|---:|---:|---:|---|');
    const sum = (o) => (o ? Object.values(o).reduce((a, b) => a + b, 0) : null);
    for (const s of proms) {
      const p = s.prometheus;
      if (p.error && (!p.before || !p.after)) { L.push(`| ${s.round} | ${p.error} | | | | no |`); continue; }
      L.push(`| ${s.round} | ${sum(p.before.rx_packets)} | ${sum(p.after.rx_packets)} | ${sum(p.before.tx_packets)} | ${sum(p.after.tx_packets)} | ${p.moved ? 'yes' : '**no**'} |`);
    }
    L.push('');
  }

  // limed allocations by source
  const a = results.alloc;
  if (a) {
    L.push('## limed allocations by source (V8 sampling heap profiler)');
    L.push('');
    if (a.error) L.push(`Not measured: ${a.error}`);
    else {
      L.push(`\`bench/tools/alloc-profile.mjs\`: limed in-process, ${a.seconds} s of paced 64-byte UDP at ${Math.round(a.offered_rate / 1000)}k frames/s offered; every allocation sampled (64-byte interval), including objects the young-generation GC already collected.`);
      L.push('');
      L.push('| source | bytes | per frame | per wake-up |');
      L.push('|---|---:|---:|---:|');
      L.push(`| data path (everything under the TAP reader's callback) | ${a.bytes.lime} | ${a.lime_bytes_per_frame.toFixed(3)} | ${(a.bytes.lime / Math.max(1, a.wakeups)).toFixed(2)} |`);
      L.push(`| Node's event loop (outside any JavaScript) | ${a.bytes.loop} | ${(a.bytes.loop / Math.max(1, a.frames)).toFixed(2)} | ${a.loop_bytes_per_wakeup.toFixed(1)} |`);
      L.push(`| other (management calls, timers, the profiler) | ${a.bytes.other} | | |`);
      L.push('');
      L.push(`${a.frames} frames in ${a.wakeups} wake-ups (${a.frames_per_wakeup.toFixed(1)} frames per wake-up). Top sites:`);
      L.push('');
      for (const t of a.top.slice(0, 6)) L.push(`- ${(t.bytes / 1024).toFixed(1)} KiB — \`${t.site}\``);
    }
    L.push('');
  }

  } // baseSelected

  if (scenarioNames.some(isFlow)) renderFlows(L, { results, agg, scenarioNames, profile });
  if (scenarioNames.some(isTunnel)) renderTunnels(L, { results, agg, scenarioNames, profile });

  if (baseSelected) {
    L.push('## Goals (issue 2, "Performance")');
    L.push('');
    for (const g of goals) L.push(`- ${badge(g)} — ${g.goal}: ${g.detail}`);
    L.push('');
  }
  if (flowGoals?.length) {
    L.push('## Goals (issue 3, "Performance": the flow table)');
    L.push('');
    for (const g of flowGoals) L.push(`- ${badge(g)} — ${g.goal}: ${g.detail}`);
    L.push('');
  }
  if (tunnelGoals?.length) {
    L.push('## Goals (issue 4, "Performance": tunnels site to site)');
    L.push('');
    for (const g of tunnelGoals) L.push(`- ${badge(g)} — ${g.goal}: ${g.detail}`);
    L.push('');
  }
  L.push('## Caveats');
  L.push('');
  if (scenarioNames.some(isFlow)) L.push('- Flow scenarios: udpgen (raw socket, paced) and limed share the 2 CPUs with h2\'s kernel; "sender-limited" ladder steps mean udpgen could not offer the nominal rate, so the capacity figure is a lower bound. Their figures are comparable with each other, not with the iperf3-driven scenarios above.');
  if (scenarioNames.some(isTunnel)) L.push('- Tunnels: both sites\' daemons, both hosts\' iperf3 and the kernel share the 2 CPUs; each frame crosses two user-space daemons (site A encapsulates, site B decapsulates), so CPU per frame is the sum of both processes. TCP runs with the hosts\' TX checksum offload off (hence no TSO): 1448-byte segments, one per frame through every tunnel.');
  if (baseSelected) {
    L.push(`- ${profile.cpus ?? results.environment.cpus} CPUs shared by sender, forwarder and receiver: unpaced blasts let iperf3 steal the forwarder's CPU; the paced ladder and CPU/frame are the figures to compare.`);
    L.push('- Latency through any user-space forwarder here is dominated by waking a sleeping vCPU (tens of µs): compare ratios, not absolute values.');
    L.push('- The UDP receiver uses a 2 MB socket buffer (`-w 2M`) so the receiving socket is not the bottleneck; host-side interfaces run with TX checksum offload off (`ethtool -K IF tx off`) in every scenario, which also disables TSO on the veth floor.');
  }
  L.push('');
  return L.join('\n');
}

const badge = (g) => (g.status === 'pass' ? '✅ PASS' : g.status === 'fail' ? '❌ FAIL' : '⚪ NOT EVALUATED');

/** The flow-table section: the three udpgen scenarios side by side, and classifier.mjs. */
function renderRttInterleaved(L, il) {
  if (!il) return;
  L.push('## RTT, interleaved (veth, tapfwd and limed up at once)');
  L.push('');
  if (il.error) { L.push(`Not measured: ${il.error}`, ''); return; }
  L.push(`Method: ${il.method}. Percentiles over all pings of a system; "added" is over the veth floor.`);
  L.push('');
  L.push('| system | pings | p50 (µs) | added p50 (µs) | p99 (µs) | p99.9 (µs) | × tapfwd (added p50) | CPU per round trip (µs) |');
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const [name, p] of Object.entries(il.pooled)) {
    const ratio = name === 'veth' ? '—' : `${(p.added_p50_us / il.pooled.tapfwd.added_p50_us).toFixed(2)}×`;
    const c = il.cpu_us_per_rtt?.[name];
    L.push(`| ${name} | ${p.n} | ${p.p50_us} | ${p.added_p50_us} | ${p.p99_us} | ${p.p999_us} | ${ratio} | ${c ? (c.user + c.sys).toFixed(0) : 'n/a (kernel)'} |`);
  }
  L.push('');
  L.push(`Added p50 ratio limed/tapfwd per cycle: median ${il.ratio_added_p50_cycle_median.toFixed(2)}×, min ${Math.min(...il.cycles.map((c) => (c.limed.p50_us - c.veth.p50_us) / (c.tapfwd.p50_us - c.veth.p50_us))).toFixed(2)}×, max ${Math.max(...il.cycles.map((c) => (c.limed.p50_us - c.veth.p50_us) / (c.tapfwd.p50_us - c.veth.p50_us))).toFixed(2)}×.`);
  L.push('');
}

function renderFlows(L, { results, agg, scenarioNames, profile }) {
  const names = scenarioNames.filter(isFlow);
  const med = (n, key) => (agg[n]?.metrics[key]?.n ? agg[n].metrics[key] : null);
  const range = (s, scale, d) => (s ? `${fmt(s.median * scale, d)} (${fmt(s.min * scale, d)}–${fmt(s.max * scale, d)})` : 'n/a');
  const ratio = (n, key) => {
    const a = med(n, key), b = med('limed-flow1', key);
    return a && b && b.median ? `${(a.median / b.median).toFixed(2)}×` : '';
  };
  L.push('## Flow table (issue 3): limed-flow1, limed-flow100k, limed-newflows');
  L.push('');
  L.push(`Topology as \`limed\` (h1 — limed — h2, two TAP ports). Traffic: \`bench/c/udpgen\` in h1, paced raw-socket IPv4/UDP to 10.77.0.2 with 64-byte payloads (106-byte frames), the same generator in all three scenarios: one 5-tuple (10.77.0.1:10000 → 10.77.0.2:20000) for flow1 and flow100k, every frame a new 5-tuple (source port 10000–59999 × destination port 20000–29999) for newflows. Delivered frames: h2's kernel counter \`Udp: NoPorts\` (/proc/net/snmp in limeb-h2; nothing listens on those ports, no receiver process), cross-checked against limed's tx_packets on limeb-t2 around the CPU run.`);
  L.push('');
  L.push(`Tables: flow1 = \`${HIT_FLOW}\` + the table-miss \`priority=0,actions=NORMAL\` (ARP, replies). flow100k/newflows = one \`limectl add-flows FILE\` of 100,000 flows, 10,000 per mask, the same hit rule included; the hit rule's mask has the lowest priorities (100–199), the 9 others 200–1099, so a cache miss probes all 10 subtables:`);
  L.push('');
  L.push(MASKS.map((m, i) => `${i + 1}. ${m.what}`).join('; ') + '.');
  L.push('');
  L.push(`Ladder: paced udpgen at ${profile.flowLadderStart / 1000}k, +${profile.flowLadderStep / 1000}k, … frames/s for ${profile.flowLadderSec} s each until two steps lose > 1 %, then ${profile.flowRefine} bisection step(s); capacity = delivered rate of the best step with ≤ 1 % loss. CPU: limed's utime+stime during ${profile.flowCpuSec} s at ${profile.flowRate / 1000}k frames/s ÷ frames delivered. add-flows: wall time of \`limectl add-flows FILE --json\` (includes limectl's own start-up, ~0.1–0.2 s). Values: median (min–max) over rounds; × flow1 = median ÷ limed-flow1's median.`);
  L.push('');
  L.push(`| scenario | capacity (kframes/s) | × flow1 | CPU/frame @${profile.flowRate / 1000}k (µs) | × flow1 | CPU share (% core) | loss @${profile.flowRate / 1000}k (%) | add-flows (s) | rounds | note |`);
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const n of names) {
    const a = agg[n];
    if (!a?.rounds_ok) { L.push(`| ${n} | n/a | | | | | | | 0 | ${results.skipped?.[n] ? `skipped: ${results.skipped[n]}` : 'failed'} |`); continue; }
    const notes = [];
    if (a.ladder_sender_limited) notes.push(`ladder sender-limited in ${a.ladder_sender_limited}/${a.rounds_ok}`);
    const ss = results.samples.filter((x) => x.scenario === n && !x.error);
    const checks = ss.filter((x) => x.hit_rule?.n_packets != null);
    if (checks.length) {
      const worst = Math.min(...checks.map((x) => x.hit_rule.n_packets / Math.max(1, x.hit_rule.delivered_to_h2)));
      notes.push(`hit rule n_packets ≥ ${worst.toFixed(3)} × delivered`);
    }
    const tx = ss.filter((x) => x.cpu?.limed_tx_t2_delta != null);
    if (tx.length) notes.push(`limed tx/h2 count ${Math.min(...tx.map((x) => x.cpu.limed_tx_t2_delta / Math.max(1, x.cpu.received))).toFixed(3)}–${Math.max(...tx.map((x) => x.cpu.limed_tx_t2_delta / Math.max(1, x.cpu.received))).toFixed(3)}`);
    L.push(`| ${n} | ${range(med(n, 'flow_ladder_pps'), 1e-3, 1)} | ${ratio(n, 'flow_ladder_pps')} | ${range(med(n, 'flow_cpu_us_per_frame'), 1, 3)} | ${ratio(n, 'flow_cpu_us_per_frame')} | ${range(med(n, 'flow_cpu_share'), 100, 1)} | ${range(med(n, 'flow_cpu_loss_pct'), 1, 2)} | ${range(med(n, 'add_flows_s'), 1, 2)} | ${a.rounds_ok} | ${notes.join('; ')} |`);
  }
  L.push('');
  renderLadderSteps(L, results, names);

  const c = results.classifier;
  if (c) {
    L.push('### The classifier alone (`bench/classifier.mjs`)');
    L.push('');
    if (c.error) L.push(`Not measured: ${c.error}`);
    else {
      L.push(`Tuple-space search over 10 masks in-process (no traffic, no syscalls), ${profile.classifierMillions} M lookups per cell, random priorities (the worst case for early exit), table-miss rule removed so a miss is a real miss; ${Math.round(c.seconds)} s.`);
      L.push('');
      L.push(c.stdout);
    }
    L.push('');
  }
}

/** The tunnel metrics side by side (rows), one column per system, and limed's ratios. */
function tunnelRows(profile) {
  const r = profile.tunnelCpuRate / 1000;
  return [
    { key: 'ladder_pps', title: 'Capacity: highest paced 64-byte rate with ≤ 1 % loss', unit: 'kframes/s', scale: 1e-3, digits: 1, better: 'higher' },
    { key: 'blast_rx_pps', title: 'Unpaced blast: delivered', unit: 'kframes/s', scale: 1e-3, digits: 1, better: 'higher' },
    { key: 'blast_loss_pct', title: 'Unpaced blast: loss', unit: '%', scale: 1, digits: 2, better: 'lower', noRatio: true },
    { key: 'cpu_us_per_frame', title: `CPU per delivered frame at ${r}k frames/s paced, both sites' processes`, unit: 'µs/frame', scale: 1, digits: 3, better: 'lower' },
    { key: 'cpu_share', title: `CPU share at ${r}k frames/s, both sites' processes`, unit: '% of one core', scale: 100, digits: 1, better: 'lower' },
    { key: 'cpu_loss_pct', title: `Loss at ${r}k frames/s`, unit: '%', scale: 1, digits: 2, better: 'lower', noRatio: true },
    { key: 'tcp_gbps', title: `TCP h1 → h2 (\`iperf3 -t ${profile.tcpSec}\`)`, unit: 'Gbit/s', scale: 1, digits: 2, better: 'higher' },
    { key: 'tcp_retransmits', title: 'TCP retransmits', unit: 'segments', scale: 1, digits: 0, better: 'lower', noRatio: true },
    { key: 'rtt_p50_us', title: `RTT p50 (\`ping -i ${profile.pingInterval} -c ${profile.pingCount}\`, after a ${profile.rttWarmCount}-ping flood)`, unit: 'µs', scale: 1, digits: 0, better: 'lower' },
    { key: 'rtt_p99_us', title: 'RTT p99', unit: 'µs', scale: 1, digits: 0, better: 'lower' },
  ];
}

/** Why a scenario has no figures: skipped, or every round failed. */
function absentReason(results, agg, n) {
  if (results.skipped?.[n]) return `${n} skipped: ${results.skipped[n]}`;
  const failed = results.samples.filter((s) => s.scenario === n && s.error);
  if (failed.length && !agg[n]?.rounds_ok) return `${n} failed in every round (${failed[failed.length - 1].error})`;
  if (!results.samples.some((s) => s.scenario === n)) return `${n} not run`;
  return null;
}

function renderTunnels(L, { results, agg, scenarioNames, profile }) {
  const names = scenarioNames.filter(isTunnel);
  const med = (n, key) => (agg[n]?.metrics[key]?.n ? agg[n].metrics[key] : null);
  const cell = (s, d) => (s ? `${fmt(s.median * d.scale, d.digits)} (${fmt(s.min * d.scale, d.digits)}–${fmt(s.max * d.scale, d.digits)})` : 'n/a');
  const ratio = (a, b, d) => {
    if (d.noRatio || !names.includes(a) || !names.includes(b)) return '';
    const x = med(a, d.key), y = med(b, d.key);
    return x && y && y.median ? `${(x.median / y.median).toFixed(2)}×` : 'n/a';
  };
  L.push('## Tunnels (issue 4): limed GRE vs OVS GRE vs OpenVPN');
  L.push('');
  L.push(`Two sites, each a network namespace, joined only by a veth "WAN" link (192.168.250.1 ↔ .2, MTU ${WAN_MTU}); host h1 (10.77.0.1) behind site A, h2 (10.77.0.2) behind site B; every frame h1 → h2 is encapsulated at A, crosses the WAN and is decapsulated at B. The systems:`);
  L.push('');
  L.push(`- **gre-limed**: limed in each site (\`node dist/bin/limed.js --config …\`), a \`tap\` port for the host and a \`gre\` port to the other site (key ${GRE_KEY}, \`path_mtu: ${WAN_MTU}\`). CPU: both limed processes.`);
  L.push(`- **gre-ovs**: Open vSwitch userspace datapath in each site (private ovsdb-server + ovs-vswitchd, \`userspace-tso-enable=false\`): br-phy (\`datapath_type=netdev\`, \`mtu_request=${WAN_MTU}\`) holds the WAN veth and carries the tunnel address on its internal port (\`arp_ignore=1\` on the veth); br-int holds a \`type=tap\` port for the host and a \`type=gre\` port (\`options:remote_ip\`, \`options:key=${GRE_KEY}\`). CPU: both ovs-vswitchd (all threads).`);
  L.push('- **openvpn**: OpenVPN 2.6 point-to-point in TAP mode over UDP without TLS, cipher or auth (`--dev-type tap --proto udp --cipher none --auth none --mssfix 0 --fast-io`), in the foreground; a Linux bridge in each site joins the OpenVPN TAP and a veth into the host. CPU: both openvpn processes.');
  L.push('');
  L.push(`Before measuring, each set-up must pass 5/5 pings h1 → h2 with the WAN link carrying them. Metrics as for the scenarios above (same iperf3 blast, TCP, ping and flood warm-up), except: the capacity ladder starts lower (paced \`iperf3 -u -l 64 -t ${profile.tunnelLadderSec}\` at ${profile.tunnelLadderStart / 1000}k, +${profile.tunnelLadderStep / 1000}k, … until two steps lose > 1 %, then ${profile.refine} bisection step(s)), and CPU per frame is measured at ${profile.tunnelCpuRate / 1000}k frames/s (\`--tunnel-rate\`), a rate all three sustain. Values: median (min–max) over rounds; ratios are of medians.`);
  L.push('');
  const cols = names.map((n) => `${n}`);
  const ratioCols = [['gre-limed', 'gre-ovs'], ['gre-limed', 'openvpn'], ['gre-ovs', 'openvpn']].filter(([a, b]) => names.includes(a) && names.includes(b));
  const row = (xs) => `| ${xs.join(' | ')} |`;
  L.push(row(['metric', 'unit', ...cols, ...ratioCols.map(([a, b]) => `${a} ÷ ${b}`)]));
  L.push(row(['---', '---', ...names.map(() => '---:'), ...ratioCols.map(() => '---:')]));
  for (const d of tunnelRows(profile)) {
    L.push(row([`${d.title} (${d.better} is better)`, d.unit, ...names.map((n) => cell(med(n, d.key), d)), ...ratioCols.map(([a, b]) => ratio(a, b, d))]));
  }
  L.push('');
  for (const n of names) {
    const why = absentReason(results, agg, n);
    const a = agg[n];
    const notes = [];
    if (why) notes.push(why);
    if (a?.rounds_ok) {
      notes.push(`${a.rounds_ok} round(s)`);
      if (a.ladder_sender_limited) notes.push(`ladder sender-limited in ${a.ladder_sender_limited}/${a.rounds_ok} (capacity is then a lower bound)`);
      const ss = results.samples.filter((x) => x.scenario === n && !x.error);
      const comm = ss.find((x) => x.forwarder)?.forwarder?.comm;
      if (comm) notes.push(`CPU of ${comm.split('+').length} processes (${comm})`);
      const split = ss.map((x) => x.cpu?.cpu_s_by_pid).filter(Boolean).map((o) => Object.values(o));
      if (split.length) notes.push(`CPU split site A / site B at ${profile.tunnelCpuRate / 1000}k: ${split.map((v) => v.map((x) => x.toFixed(2)).join(' / ')).join(', ')} s`);
      const rx = summary(ss.map((x) => x.cpu?.rx_pps).filter((v) => v != null)).median;
      if (rx != null) notes.push(`delivered ${fmt(rx / 1e3, 1)}k/s in the CPU run`);
    }
    L.push(`- ${n}: ${notes.join('; ')}`);
  }
  L.push('');
  renderTunnelRttInterleaved(L, results.tunnel_rtt_interleaved);
  renderLadderSteps(L, results, names);
}

function renderTunnelRttInterleaved(L, il) {
  if (!il) return;
  L.push('### Tunnel RTT, interleaved (limed GRE, OVS GRE and OpenVPN up at once)');
  L.push('');
  if (il.error) { L.push(`Not measured: ${il.error}`, ''); return; }
  L.push(`Each system has its own pair of site namespaces and WAN veth and its own host subnet (h1 and h2 shared). Method: ${il.method}. Percentiles over all pings of a system; the RTT goals above are judged on this table.`);
  L.push('');
  L.push('| system | pings | p50 (µs) | p99 (µs) | p99.9 (µs) | gre-limed ÷ system p50 | p99 | p99.9 | CPU per round trip, both sites (µs) |');
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const [name, p] of Object.entries(il.pooled)) {
    const q = il.ratios[name];
    const c = il.cpu_us_per_rtt?.[name];
    L.push(`| ${name} | ${p.n} | ${p.p50_us} | ${p.p99_us} | ${p.p999_us} | ${q ? `${q.p50.toFixed(2)}×` : '—'} | ${q ? `${q.p99.toFixed(2)}×` : '—'} | ${q ? `${q.p999.toFixed(2)}×` : '—'} | ${c ? (c.user + c.sys).toFixed(0) : 'n/a'} |`);
  }
  for (const [name, why] of Object.entries(il.skipped ?? {})) L.push(`| ${name} | left out: ${why} | | | | | | | |`);
  L.push('');
  const names = Object.keys(il.pooled);
  L.push(`Per cycle p99 (µs): ${names.map((n) => `${n} ${summary(il.cycles.map((c) => c[n].p99_us)).median?.toFixed(0)} median (${Math.min(...il.cycles.map((c) => c[n].p99_us)).toFixed(0)}–${Math.max(...il.cycles.map((c) => c[n].p99_us)).toFixed(0)})`).join('; ')}.`);
  L.push('');
}

/** Every ladder step of the named scenarios, per round. */
function renderLadderSteps(L, results, names) {
  L.push('Ladder steps (delivered kframes/s at each offered rate, per round; ✗ = loss > 1 %, s = sender-limited):');
  L.push('');
  for (const n of names) {
    for (const x of results.samples.filter((y) => y.scenario === n && y.ladder)) {
      const steps = [...x.ladder.steps].sort((p, q) => p.offered_pps - q.offered_pps)
        .map((st) => `${st.offered_pps / 1000}k→${(st.rx_pps / 1000).toFixed(1)}${st.pass ? '' : '✗'}${st.sender_limited ? 's' : ''}`);
      L.push(`- ${n} #${x.round}: ${steps.join(', ')}`);
    }
  }
  L.push('');
}

/** Issue 4's performance goals (tunnels site to site), from the medians of this run. */
export function evaluateTunnelGoals(agg, results) {
  const med = (n, k) => (agg[n]?.metrics[k]?.n ? agg[n].metrics[k].median : null);
  const L = 'gre-limed', O = 'gre-ovs', V = 'openvpn';
  const goals = [];
  // The measurement (sample.errors key) each goal metric comes from.
  const source = { ladder_pps: 'ladder', tcp_gbps: 'tcp', rtt_p50_us: 'rtt', rtt_p99_us: 'rtt' };
  const check = (goal, key, fn) => {
    const miss = [L, O, V].filter((n) => med(n, key) == null);
    if (miss.length) {
      const why = miss.map((n) => {
        const absent = absentReason(results, agg, n);
        if (absent) return absent;
        const err = results.samples.find((s) => s.scenario === n && s.errors?.[source[key]])?.errors[source[key]];
        return `no ${key} figure for ${n}${err ? ` (${err})` : ''}`;
      });
      goals.push({ goal, status: 'n/a', detail: `not evaluated: ${why.join('; ')}` });
      return;
    }
    goals.push({ goal, ...fn(med(L, key), med(O, key), med(V, key)) });
  };
  const sl = (n) => (agg[n]?.ladder_sender_limited ? `; ${n} ladder sender-limited in ${agg[n].ladder_sender_limited} round(s)` : '');
  check('limed GRE capacity ≥ 1.3 × OVS GRE and ≥ 1.5 × OpenVPN (highest paced 64-byte rate with ≤ 1 % loss)', 'ladder_pps', (l, o, v) => ({
    status: l >= 1.3 * o && l >= 1.5 * v ? 'pass' : 'fail',
    ratio_ovs: l / o, ratio_openvpn: l / v,
    detail: `gre-limed ${(l / 1e3).toFixed(1)}k = ${(l / o).toFixed(2)}× gre-ovs (${(o / 1e3).toFixed(1)}k), ${(l / v).toFixed(2)}× openvpn (${(v / 1e3).toFixed(1)}k) frames/s${sl(L)}${sl(O)}${sl(V)}`,
  }));
  check('limed GRE TCP throughput > OVS GRE and > OpenVPN', 'tcp_gbps', (l, o, v) => ({
    status: l > o && l > v ? 'pass' : 'fail',
    ratio_ovs: l / o, ratio_openvpn: l / v,
    detail: `gre-limed ${l.toFixed(2)} Gbit/s = ${(l / o).toFixed(2)}× gre-ovs (${o.toFixed(2)}), ${(l / v).toFixed(2)}× openvpn (${v.toFixed(2)})`,
  }));
  const il = results.tunnel_rtt_interleaved;
  for (const [key, what] of [['rtt_p50_us', 'p50'], ['rtt_p99_us', 'p99']]) {
    const goal = `limed GRE RTT ${what} < OVS GRE and < OpenVPN`;
    const p = il?.pooled;
    if (p?.[L] && p[O] && p[V]) {
      // Judged on the interleaved measurement: all three tunnels up at once, ping
      // alternating between them (bench/lib/tunnel-rtt.mjs), so the machine's drift cancels.
      const pk = `${what}_us`;
      const [l, o, v] = [p[L][pk], p[O][pk], p[V][pk]];
      goals.push({
        goal, status: l < o && l < v ? 'pass' : 'fail', ratio_ovs: l / o, ratio_openvpn: l / v,
        detail: `interleaved, ${p[L].n} pings per system: gre-limed ${l.toFixed(0)} µs = ${(l / o).toFixed(2)}× gre-ovs (${o.toFixed(0)} µs), ${(l / v).toFixed(2)}× openvpn (${v.toFixed(0)} µs)`,
      });
      continue;
    }
    check(goal, key, (l, o, v) => ({
      status: l < o && l < v ? 'pass' : 'fail',
      ratio_ovs: l / o, ratio_openvpn: l / v,
      detail: `sequential rounds${il?.error ? ` (interleaved measurement failed: ${il.error})` : ''}: gre-limed ${l.toFixed(0)} µs = ${(l / o).toFixed(2)}× gre-ovs (${o.toFixed(0)} µs), ${(l / v).toFixed(2)}× openvpn (${v.toFixed(0)} µs)`,
    }));
  }
  return goals;
}

function shortName(k) {
  return { ladder_pps: 'capacity', blast_rx_pps: 'blast rx', cpu_us_per_frame: 'CPU/frame', tcp_gbps: 'TCP', rtt_p50_us: 'RTT p50', rtt_p99_us: 'RTT p99', rtt_added_p50_us: 'added p50' }[k] ?? k;
}

/** Issue 3's performance goals (the flow table), from the medians of this run. */
export function evaluateFlowGoals(agg, results) {
  const med = (n, k) => (agg[n]?.metrics[k]?.n ? agg[n].metrics[k].median : null);
  const goals = [];
  const notEval = (goal, what) => ({ goal, status: 'n/a', detail: `missing ${what.join(', ')}` });
  const missing = (pairs) => pairs.filter(([n, k]) => med(n, k) == null).map(([n, k]) => `${n} ${k}`);
  const sl = (n) => (agg[n]?.ladder_sender_limited ? ` (${n} ladder sender-limited in ${agg[n].ladder_sender_limited} round(s))` : '');
  {
    const goal = 'limed-flow100k capacity ≥ 0.9 × limed-flow1 capacity';
    const m = missing([['limed-flow100k', 'flow_ladder_pps'], ['limed-flow1', 'flow_ladder_pps']]);
    if (m.length) goals.push(notEval(goal, m));
    else {
      const a = med('limed-flow100k', 'flow_ladder_pps'), b = med('limed-flow1', 'flow_ladder_pps');
      goals.push({ goal, status: a >= 0.9 * b ? 'pass' : 'fail', ratio: a / b, detail: `${(a / 1e3).toFixed(1)}k vs ${(b / 1e3).toFixed(1)}k = ${(a / b).toFixed(2)}×${sl('limed-flow100k')}${sl('limed-flow1')}` });
    }
  }
  {
    const goal = 'limed-flow100k CPU per frame ≤ 1.2 × limed-flow1 (same paced rate)';
    const m = missing([['limed-flow100k', 'flow_cpu_us_per_frame'], ['limed-flow1', 'flow_cpu_us_per_frame']]);
    if (m.length) goals.push(notEval(goal, m));
    else {
      const a = med('limed-flow100k', 'flow_cpu_us_per_frame'), b = med('limed-flow1', 'flow_cpu_us_per_frame');
      goals.push({ goal, status: a <= 1.2 * b ? 'pass' : 'fail', ratio: a / b, detail: `${a.toFixed(3)} µs vs ${b.toFixed(3)} µs = ${(a / b).toFixed(2)}×` });
    }
  }
  {
    const goal = 'limed-newflows capacity (every frame a new 5-tuple) ≥ 0.5 × limed-flow1 capacity (cached)';
    const m = missing([['limed-newflows', 'flow_ladder_pps'], ['limed-flow1', 'flow_ladder_pps']]);
    if (m.length) goals.push(notEval(goal, m));
    else {
      const a = med('limed-newflows', 'flow_ladder_pps'), b = med('limed-flow1', 'flow_ladder_pps');
      goals.push({ goal, status: a >= 0.5 * b ? 'pass' : 'fail', ratio: a / b, detail: `${(a / 1e3).toFixed(1)}k vs ${(b / 1e3).toFixed(1)}k = ${(a / b).toFixed(2)}×${sl('limed-newflows')}` });
    }
  }
  {
    const goal = '`limectl add-flows` of 100,000 flows < 2 s';
    const vals = results.samples.filter((s) => !s.error && s.add_flows?.flows >= 100_000).map((s) => s.add_flows.ms / 1000);
    if (!vals.length) goals.push(notEval(goal, ['a 100k-flow scenario']));
    else {
      const m = summary(vals);
      goals.push({ goal, status: m.median < 2 ? 'pass' : 'fail', value_s: m.median, detail: `median ${m.median.toFixed(2)} s (${m.min.toFixed(2)}–${m.max.toFixed(2)} s over ${m.n} installs, limectl wall time); the table alone (classifier.mjs, one batch): ${results.classifier?.apply_100k_ms != null ? `${results.classifier.apply_100k_ms} ms` : 'n/a'}` });
    }
  }
  {
    const goal = 'a classifier miss costs no more than the number of masks\' probes (classifier.mjs: probes per miss ≤ masks at 1k/10k/100k rules)';
    const c = results.classifier;
    if (!c || c.error || !c.rows?.length) goals.push(notEval(goal, [c?.error ?? 'classifier.mjs (--no-classifier?)']));
    else {
      const ok = c.rows.every((r) => r.probes_per_miss <= r.masks);
      const r0 = c.rows[0], rN = c.rows[c.rows.length - 1];
      goals.push({ goal, status: ok ? 'pass' : 'fail', detail: `${c.rows.map((r) => `${r.rules / 1000}k rules: ${r.probes_per_miss} probes/miss over ${r.masks} masks, ${(r.miss_per_s / 1e6).toFixed(2)} M misses/s`).join('; ')}; miss rate at ${rN.rules / 1000}k = ${((100 * rN.miss_per_s) / r0.miss_per_s).toFixed(0)} % of ${r0.rules / 1000}k` });
    }
  }
  return goals;
}

/** Issue 2's performance goals, from the medians of this run. */
export function evaluateGoals(agg, results) {
  const med = (n, k) => agg[n]?.metrics[k]?.n ? agg[n].metrics[k].median : null;
  const goals = [];
  const need = (names, k) => names.filter((n) => med(n, k) == null);
  const notEval = (goal, missing) => ({ goal, status: 'n/a', detail: `missing ${missing.join(', ')}${results.skipped?.limed ? ` (limed: ${results.skipped.limed})` : ''}` });

  {
    const goal = 'limed capacity ≥ 0.9 × tapfwd and ≥ ovs (highest 64-byte rate with ≤ 1 % loss)';
    const miss = need(['limed', 'tapfwd', 'ovs'], 'ladder_pps');
    if (miss.length) goals.push(notEval(goal, miss));
    else {
      const l = med('limed', 'ladder_pps'), t = med('tapfwd', 'ladder_pps'), o = med('ovs', 'ladder_pps');
      const ok = l >= 0.9 * t && l >= o;
      const sl = agg.limed.ladder_sender_limited + agg.tapfwd.ladder_sender_limited;
      goals.push({ goal, status: ok ? 'pass' : 'fail', detail: `limed ${(l / 1e3).toFixed(1)}k = ${(l / t).toFixed(2)}× tapfwd (${(t / 1e3).toFixed(1)}k), ${(l / o).toFixed(2)}× ovs (${(o / 1e3).toFixed(1)}k)${sl ? ' — note: some ladders were sender-limited' : ''}`, ratio_tapfwd: l / t, ratio_ovs: l / o });
    }
  }
  {
    const goal = 'limed CPU per frame ≤ 1.5 × tapfwd (same paced rate)';
    const miss = need(['limed', 'tapfwd'], 'cpu_us_per_frame');
    if (miss.length) goals.push(notEval(goal, miss));
    else {
      const l = med('limed', 'cpu_us_per_frame'), t = med('tapfwd', 'cpu_us_per_frame');
      goals.push({ goal, status: l <= 1.5 * t ? 'pass' : 'fail', detail: `limed ${l.toFixed(3)} µs vs tapfwd ${t.toFixed(3)} µs = ${(l / t).toFixed(2)}×`, ratio: l / t });
    }
  }
  {
    const goal = 'limed added p50 RTT over veth ≤ 1.3 × tapfwd\'s';
    const il = results.rtt_interleaved;
    if (il && !il.error) {
      // Judged on the interleaved measurement: all three paths up at once, ping alternating
      // between them, so the machine's drift falls on both forwarders alike.
      const l = il.pooled.limed.added_p50_us, t = il.pooled.tapfwd.added_p50_us;
      const ok = t > 0 ? l <= 1.3 * t : l <= t;
      goals.push({ goal, status: ok ? 'pass' : 'fail', detail: `interleaved, ${il.pooled.limed.n} pings per system: limed +${l.toFixed(0)} µs vs tapfwd +${t.toFixed(0)} µs${t > 0 ? ` = ${(l / t).toFixed(2)}×` : ''} (median over ${il.cycles.length} cycles ${il.ratio_added_p50_cycle_median.toFixed(2)}×)`, ratio: t > 0 ? l / t : null });
    } else {
      const miss = need(['limed', 'tapfwd'], 'rtt_added_p50_us');
      if (miss.length) goals.push(notEval(goal, miss));
      else {
        const l = med('limed', 'rtt_added_p50_us'), t = med('tapfwd', 'rtt_added_p50_us');
        const ok = t > 0 ? l <= 1.3 * t : l <= t;
        goals.push({ goal, status: ok ? 'pass' : 'fail', detail: `sequential rounds (no interleaved measurement${il?.error ? `: ${il.error}` : ''}): limed +${l.toFixed(0)} µs vs tapfwd +${t.toFixed(0)} µs${t > 0 ? ` = ${(l / t).toFixed(2)}×` : ''}`, ratio: t > 0 ? l / t : null });
      }
    }
  }
  {
    const goal = 'limed hot path allocates nothing per packet (V8 sampling heap profiler over the data path under paced traffic; threshold < 0.5 B/frame, i.e. no per-frame or per-batch object)';
    const a = results.alloc;
    if (!a || a.error) goals.push(notEval(goal, [a?.error ?? 'allocation profile']));
    else {
      const ok = a.lime_bytes_per_frame < 0.5;
      const hs = results.samples.filter((s) => s.scenario === 'limed' && s.heap && !s.heap.error).map((s) => s.heap);
      const gcs = hs.length ? Math.max(...hs.map((h) => h.gc_per_million ?? 0)).toFixed(1) : 'n/a';
      goals.push({ goal, status: ok ? 'pass' : 'fail', detail: `data path ${a.lime_bytes_per_frame.toFixed(3)} B/frame over ${a.frames} frames; Node's event loop ${a.loop_bytes_per_wakeup.toFixed(1)} B per wake-up (${a.frames_per_wakeup.toFixed(1)} frames/wake-up), which is what the ${gcs} scavenges per 1 M frames in the heap table collect` });
    }
  }
  return goals;
}
