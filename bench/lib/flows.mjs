// Flow-table scenarios (issue 3, "Performance"): limed forwarding by its OpenFlow-like flow
// table between limeb-h1 and limeb-h2 (the `limed` topology), driven by bench/c/udpgen.c
// (paced raw-socket UDP sender) in all three so they are comparable:
//
//   limed-flow1     1 explicit flow for the h1→h2 traffic + the default table-miss NORMAL
//   limed-flow100k  100,000 flows over 10 distinct masks (one add-flows FILE, timed); the
//                   traffic hits one of them every frame (one 5-tuple: the exact-match cache serves it)
//   limed-newflows  the same 100k-flow table; every frame a different 5-tuple (EMC always misses)
//
// Delivered frames are counted by h2's kernel: the `Udp: NoPorts` counter of h2's
// /proc/net/snmp (per network namespace) — udpgen's datagrams go to ports nobody listens on,
// so each one that reaches h2's UDP layer increments it. No receiver process competes for
// the 2 CPUs. limed's own tx_packets for limeb-t2 (`limectl show --json`) is recorded as a
// cross-check around the CPU run.
import { existsSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, log, sleep } from './exec.mjs';
import { H1, H2, SW, IP1, IP2 } from './netns.mjs';
import { scenarios as baseScenarios, limectlShow } from './scenarios.mjs';

export const FLOW_ORDER = ['limed-flow1', 'limed-flow100k', 'limed-newflows'];

/** The rule the benchmark traffic hits, identical in both tables. */
export const HIT_FLOW = `priority=150,ip,nw_dst=${IP2},actions=output:limeb-t2`;
const SPORT = 10000; // udpgen's fixed ports (--vary: sport 10000..59999, dport 20000..29999)
const DPORT = 20000;

// ---------------------------------------------------------------------------------------
// Flow files

const FLOWS_PER_MASK = 10_000;
const mac = (prefix, i) => `${prefix}:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
const ip4 = (n) => `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

/**
 * The 10 masks of the 100k table, 10,000 flows each, none of which matches the benchmark
 * traffic (10.77.0.1 → 10.77.0.2, UDP sport 10000..59999, dport 20000..29999) except the
 * hit rule (mask 0). The hit rule's mask holds the lowest priorities (100..199; the hit rule
 * 150), every other mask's flows are above it (200..1099), so a lookup that misses the
 * exact-match cache probes all 10 subtables before it settles on the hit rule (no early
 * exit): the worst case of tuple-space search, "a miss costs the number of masks' probes".
 */
export const MASKS = [
  { what: 'ip,nw_dst=A (exact /32)', flow: (i) => (i === 0 ? HIT_FLOW : `priority=${100 + (i % 100)},ip,nw_dst=${ip4((10 << 24 | 200 << 16) + i)},actions=output:limeb-t2`) },
  { what: 'ip,nw_dst=A/24', flow: (i) => `priority=${200 + (i % 100)},ip,nw_dst=${ip4((10 << 24 | 128 << 16) + (i << 8))}/24,actions=drop` },
  { what: 'udp,tp_dst=P (1..10000)', flow: (i) => `priority=${300 + (i % 100)},udp,tp_dst=${1 + i},actions=drop` },
  { what: 'in_port,dl_type', flow: (i) => `priority=${400 + (i % 100)},in_port=limeb-t1,dl_type=0x${(0x9000 + i).toString(16)},actions=drop` },
  { what: 'ip,nw_src=A/16', flow: (i) => `priority=${500 + (i % 100)},ip,nw_src=${ip4(((11 << 24) + (i << 16)) >>> 0)}/16,actions=drop` },
  { what: 'tcp,nw_dst=A,tp_dst=P', flow: (i) => `priority=${600 + (i % 100)},tcp,nw_dst=${IP2},tp_dst=${1 + i},actions=drop` },
  { what: 'dl_dst=M (exact)', flow: (i) => `priority=${700 + (i % 100)},dl_dst=${mac('02:cc:00', i)},actions=drop` },
  { what: 'udp 5-tuple (nw_src,nw_dst,tp_src,tp_dst)', flow: (i) => `priority=${800 + (i % 100)},udp,nw_src=${IP1},nw_dst=${IP2},tp_src=${1000 + i},tp_dst=9,actions=drop` },
  { what: 'dl_vlan,dl_dst', flow: (i) => `priority=${900 + (i % 100)},dl_vlan=${1 + (i % 4000)},dl_dst=${mac('02:dd:00', i)},actions=drop` },
  { what: 'ip,nw_src=A/28', flow: (i) => `priority=${1000 + (i % 100)},ip,nw_src=${ip4(((172 << 24 | 16 << 16) + (i << 4)) >>> 0)}/28,actions=drop` },
];

/**
 * N flows over the first M masks (M ≤ 10), taken round-robin from the masks so that any
 * prefix spans them all; the hit rule (mask 0, i = 0) is always the first.
 */
export function flowLines(n, m) {
  if (m < 1 || m > MASKS.length) throw new Error(`flowLines: 1..${MASKS.length} masks, not ${m}`);
  const lines = [];
  for (let i = 0; lines.length < n; i++) for (let j = 0; j < m && lines.length < n; j++) lines.push(MASKS[j].flow(i));
  return lines;
}

export function writeFlowFiles(dir) {
  const f1 = join(dir, 'flows-1.txt');
  const f100k = join(dir, 'flows-100k.txt');
  if (!existsSync(f1)) writeFileSync(f1, `# limed-flow1: the h1→h2 rule; everything else (ARP, replies) by the table-miss NORMAL\n${HIT_FLOW}\n`);
  if (!existsSync(f100k)) {
    const lines = ['# limed-flow100k / limed-newflows: 100,000 flows over 10 masks (bench/lib/flows.mjs)'];
    for (const m of MASKS) for (let i = 0; i < FLOWS_PER_MASK; i++) lines.push(m.flow(i));
    writeFileSync(f100k, lines.join('\n') + '\n');
  }
  return { f1, f100k };
}

// ---------------------------------------------------------------------------------------
// udpgen

/** h2's `Udp: NoPorts` (datagrams that reached h2's UDP layer for a port nobody listens on). */
export async function udpNoPorts(ns = H2) {
  const r = await run('cat', ['/proc/net/snmp'], { ns });
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('Udp:'));
  if (lines.length < 2) throw new Error('no Udp: lines in /proc/net/snmp');
  const names = lines[0].trim().split(/\s+/);
  const vals = lines[1].trim().split(/\s+/);
  const i = names.indexOf('NoPorts');
  if (i < 0) throw new Error('no NoPorts in /proc/net/snmp');
  return Number(vals[i]);
}

/** One paced udpgen run h1 → h2; counts at both ends. */
export async function udpgen(ctx, { rate, seconds, vary }) {
  const before = await udpNoPorts();
  const args = ['--src', IP1, '--dst', IP2, '--rate', String(rate), '--seconds', String(seconds), '--sport', String(SPORT), '--dport', String(DPORT)];
  if (vary) args.push('--vary');
  const r = await run(ctx.udpgenBin, args, { ns: H1, timeoutMs: (seconds + 15) * 1000 });
  await sleep(150); // frames still queued in the TAPs / limed
  const after = await udpNoPorts();
  const g = JSON.parse(r.stdout.trim().split('\n').pop());
  const received = after - before;
  return {
    offered_pps: rate,
    seconds: g.seconds,
    sent: g.sent,
    refused: g.refused,
    skipped: g.skipped,
    received,
    sent_pps: g.sent_pps,
    rx_pps: received / g.seconds,
    loss_pct: g.sent ? Math.max(0, (100 * (g.sent - received)) / g.sent) : 100,
  };
}

// ---------------------------------------------------------------------------------------
// Scenarios

async function limectl(ctx, sock, args, timeoutMs = 60_000) {
  return run(process.execPath, [ctx.limectlJs, '--socket', sock, ...args], { ns: SW, allowFail: true, timeoutMs });
}

function flowScenario({ title, file, vary }) {
  return {
    title,
    flowBench: true,
    vary,
    available(ctx) {
      return existsSync(ctx.limedJs) ? null : 'limed not built';
    },
    async setup(ctx) {
      const info = await baseScenarios.limed.setup(ctx);
      if (!info.sock || !existsSync(info.sock)) throw new Error('limed management socket missing');
      const path = writeFlowFiles(ctx.tmp)[file];
      const nLines = readFileSync(path, 'utf8').split('\n').filter((l) => l && !l.startsWith('#')).length;
      const t0 = process.hrtime.bigint();
      const r = await limectl(ctx, info.sock, ['add-flows', path, '--json']);
      const addMs = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.code !== 0) throw new Error(`limectl add-flows failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
      let reply = null;
      try { reply = JSON.parse(r.stdout); } catch { /* older limectl: no JSON */ }
      if (reply && typeof reply.added === 'number' && reply.added + (reply.modified ?? 0) !== nLines) {
        throw new Error(`add-flows added ${reply.added} (+${reply.modified} modified) of ${nLines} flows`);
      }
      log(`  add-flows ${nLines} flows: ${addMs.toFixed(0)} ms (limectl wall time, incl. its start-up)`);
      return { ...info, add_flows: { flows: nLines, ms: addMs, reply } };
    },
  };
}

export const flowScenarios = {
  'limed-flow1': { ...flowScenario({ title: 'limed, 1 flow (h1→h2) + table-miss NORMAL, udpgen one 5-tuple', file: 'f1', vary: false }) },
  'limed-flow100k': { ...flowScenario({ title: 'limed, 100,000 flows over 10 masks, udpgen one 5-tuple (EMC hits)', file: 'f100k', vary: false }) },
  'limed-newflows': { ...flowScenario({ title: 'limed, 100,000 flows over 10 masks, udpgen every frame a new 5-tuple (EMC misses)', file: 'f100k', vary: true }) },
};

/** n_packets of the hit rule (dump-flows --strict), to confirm the traffic took it. */
export async function hitRulePackets(ctx, sock) {
  const match = HIT_FLOW.slice(0, HIT_FLOW.indexOf(',actions='));
  const r = await limectl(ctx, sock, ['dump-flows', match, '--strict', '--json'], 20_000);
  if (r.code !== 0) return null;
  try {
    const flows = JSON.parse(r.stdout);
    return flows.length === 1 ? Number(flows[0].n_packets) : null;
  } catch { return null; }
}

export function portTx(show, name) {
  const p = (show?.ports ?? []).find((x) => x.name === name);
  return p ? Number(p.tx_packets) : null;
}

// ---------------------------------------------------------------------------------------
// classifier.mjs (the slow path alone)

/** Parse bench/classifier.mjs's markdown table and summary lines. */
export function parseClassifier(stdout) {
  const rows = [];
  for (const line of stdout.split('\n')) {
    const m = /^\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*([\d.]+ [kM])\s*\|\s*(\d+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+ [kM])\s*\|\s*(\d+)\s*\|\s*([\d.]+)\s*\|/.exec(line);
    if (!m) continue;
    const num = (s) => { const [v, u] = s.split(' '); return Number(v) * (u === 'M' ? 1e6 : 1e3); };
    rows.push({ rules: Number(m[1]), masks: Number(m[2]), hit_per_s: num(m[3]), ns_per_hit: Number(m[4]), probes_per_hit: Number(m[5]), miss_per_s: num(m[6]), ns_per_miss: Number(m[7]), probes_per_miss: Number(m[8]) });
  }
  const apply = /apply 100,000 adds in one batch: (\d+) ms/.exec(stdout);
  return { rows, apply_100k_ms: apply ? Number(apply[1]) : null };
}
