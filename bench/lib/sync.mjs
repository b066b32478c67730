// The control channel (issue 5, "Performance"): two limed sites peered over TLS on the
// loopback of the switch namespace (limeb-sw), site A forwarding h1 → h2 between its TAP
// ports (the `limed` topology) with the 100,000-flow table of the flow scenarios, site B
// holding the same port names on TAP devices of its own (nothing behind them).
//
//   clone     B restarted with an empty state directory receives A's 100k-flow table: the
//             time from B's peer session coming up to the snapshot installed (B's log), and
//             from B's start to `sync barrier` answering at B (process start-up included)
//   rtt       1,000 flow-mods one at a time over the management socket (what limectl sends,
//             without node's start-up), each answered once journaled at A and applied at B
//             sites: at A (the writer) and at B (the follower, which forwards to A)
//   load      udpgen h1 → h2 above limed's capacity for a few seconds, alternately alone and
//             with a stream of flow-mods at A (16 outstanding): the data path's delivered
//             rate with and without flow-mods, and the flow-mods per second replicated
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { log, runSync, sleep, startBg, stopSync } from './exec.mjs';
import { addHosts, addNs, SW } from './netns.mjs';
import { attachTaps, diedCheck, waitForFile } from './scenarios.mjs';
import { writeFlowFiles, udpgen } from './flows.mjs';
import { median, percentile } from './stats.mjs';
import { cpuSeconds } from './proc.mjs';

const PORT_A = 6641;
/** Flow-mods per second of the paced load run: a controller's steady stream, not a flood. */
const PACED_RATE = 100;
const PORT_B = 6642;

function openssl(args) {
  const r = runSync('openssl', args, { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr.trim()}`);
}

/** A CA and a certificate for each site (SAN DNS:site-x), as an operator would issue them. */
export function makeCerts(dir) {
  mkdirSync(dir, { recursive: true });
  const ca = { key: join(dir, 'ca.key'), cert: join(dir, 'ca.crt') };
  openssl(['req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', ca.key, '-out', ca.cert, '-days', '2', '-subj', '/CN=limeb-sync-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  const issue = (name) => {
    const base = join(dir, name);
    writeFileSync(`${base}.ext`, `[ leaf ]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth, clientAuth\nsubjectAltName = DNS:${name}\n`);
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${name}`]);
    openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', `${base}.crt`, '-days', '2', '-extfile', `${base}.ext`, '-extensions', 'leaf']);
    return { ca: ca.cert, cert: `${base}.crt`, key: `${base}.key` };
  };
  return { a: issue('site-a'), b: issue('site-b') };
}

export function siteConfig(ctx, side, certs) {
  const a = side === 'a';
  const sock = join(ctx.tmp, `sync-${side}.sock`);
  const cfg = join(ctx.tmp, `sync-${side}.yaml`);
  const tls = a ? certs.a : certs.b;
  writeFileSync(cfg, [
    `site: site-${side}`,
    `socket: ${sock}`,
    'ports:',
    // The same port names at both sites (flows name ports); B's devices are its own.
    `  - { name: limeb-t1, type: tap, mtu: 1500${a ? '' : ', device: limeb-b1'} }`,
    `  - { name: limeb-t2, type: tap, mtu: 1500${a ? '' : ', device: limeb-b2'} }`,
    `listen: 127.0.0.1:${a ? PORT_A : PORT_B}`,
    `peer: { name: site-${a ? 'b' : 'a'}, address: 127.0.0.1:${a ? PORT_B : PORT_A} }`,
    `tls: { ca: ${tls.ca}, cert: ${tls.cert}, key: ${tls.key} }`,
    `state_dir: ${join(ctx.tmp, `sync-state-${side}`)}`,
    // LIMEB_LIMED_YAML: more top-level settings for both sites (e.g. "fast_path: off"), as
    // for the tunnel scenarios, to compare configurations by hand.
    ...(process.env.LIMEB_LIMED_YAML ? [process.env.LIMEB_LIMED_YAML] : []),
    '',
  ].join('\n'));
  return { sock, cfg, stateDir: join(ctx.tmp, `sync-state-${side}`) };
}

/** The management client of this build's dist/ (what limectl uses). */
export async function loadClient(ctx) {
  const mod = await import(pathToFileURL(join(dirname(ctx.limectlJs), '..', 'cli', 'client.js')).href);
  return (sock, body, timeoutMs = 30_000) => mod.request({ path: sock, timeoutMs }, body);
}

export const flowText = (flows) => ({ flows, lines: flows.map((_, i) => i + 1), source: 'bench', more: false });

/** Wait until the site at `sock` is peered; `check()` may throw to stop early (its daemon died). */
export async function waitPeered(request, sock, timeoutMs = 30_000, check = () => {}) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const r = await request(sock, { body: 'peer_show', peer_show: {} }).catch(() => null);
    if (r?.peer_show?.connected) return r.peer_show;
    check();
    await sleep(50);
  }
  throw new Error(`the sites did not peer within ${timeoutMs} ms`);
}

/** Time of the first log line (pino JSON) at or after byte `from` whose msg matches `re`. */
export function logTime(file, from, re) {
  const text = readFileSync(file, 'utf8').slice(from);
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    let o;
    try { o = JSON.parse(line); } catch { continue; }
    if (re.test(o.msg ?? '')) return Date.parse(o.time);
  }
  return null;
}

export const fileSize = (f) => (existsSync(f) ? readFileSync(f).length : 0);
const pct = (xs, p) => percentile([...xs].sort((x, y) => x - y), p);

export async function syncBench(ctx, profile) {
  const request = await loadClient(ctx);
  const out = { flows: 0 };
  await addHosts();
  await addNs(SW);
  const certs = makeCerts(join(ctx.tmp, 'sync-certs'));
  const A = siteConfig(ctx, 'a', certs);
  const B = siteConfig(ctx, 'b', certs);
  for (const s of [A, B]) rmSync(s.stateDir, { recursive: true, force: true });
  const logA = join(ctx.tmp, 'sync-a.log');
  const logB = join(ctx.tmp, 'sync-b.log');
  // LIMEB_SYNC_PROF=DIR: both limeds write V8 CPU profiles there (node --cpu-prof) when stopped.
  const prof = process.env.LIMEB_SYNC_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.LIMEB_SYNC_PROF}`] : [];
  const procA = startBg('limed-site-a', process.execPath, [...prof, ctx.limedJs, '--config', A.cfg], { ns: SW, logFile: logA });
  await attachTaps('limeb-t1', 'limeb-t2', diedCheck(procA, 'limed (site A)', logA));
  if (!(await waitForFile(A.sock, 10_000))) throw new Error(`site A's management socket did not appear (see ${logA})`);
  let procB = null;
  const startB = async () => {
    const from = fileSize(logB);
    const t0 = Date.now();
    procB = startBg('limed-site-b', process.execPath, [...prof, ctx.limedJs, '--config', B.cfg], { ns: SW, logFile: logB });
    return { from, t0 };
  };
  try {
    // The 100k-flow table, added at A with B not yet there (A journals it alone).
    const file = writeFlowFiles(ctx.tmp).f100k;
    const flows = readFileSync(file, 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
    out.flows = flows.length;
    for (let i = 0; i < flows.length; i += 10_000) {
      await request(A.sock, { body: 'flow_mods', flow_mods: { command: 'ADD', text: flowText(flows.slice(i, i + 10_000)) } }, 120_000);
    }

    // ---- clone: B empty, three times (quick: once) ----
    out.clone = [];
    const clones = profile.quick ? 1 : 3;
    for (let i = 0; i < clones; i++) {
      if (procB) { stopSync(procB); procB = null; }
      rmSync(B.stateDir, { recursive: true, force: true });
      const { from, t0 } = await startB();
      await waitForFile(B.sock, 15_000);
      await waitPeered(request, B.sock, 60_000);
      await request(B.sock, { body: 'sync_barrier', sync_barrier: {} }, 120_000);
      const barrierMs = Date.now() - t0;
      const up = logTime(logB, from, /^peer session with site-a up/);
      const loaded = logTime(logB, from, /^replication: snapshot loaded/);
      const dumped = await request(B.sock, { body: 'peer_show', peer_show: {} });
      const c = { session_to_installed_ms: up != null && loaded != null ? loaded - up : null, start_to_barrier_ms: barrierMs, seq: dumped.peer_show.seq };
      out.clone.push(c);
      log(`  sync clone ${i + 1}: ${flows.length} flows installed at B ${c.session_to_installed_ms} ms after the session came up; barrier at B ${barrierMs} ms after B's start`);
    }

    // ---- rtt: 1,000 flow-mods, one at a time, at A then at B ----
    const n = profile.quick ? 100 : 1000;
    out.rtt = {};
    for (const [site, sock] of [['writer', A.sock], ['follower', B.sock]]) {
      const ms = [];
      for (let i = 0; i < n; i++) {
        const flow = `priority=7000,ip,nw_dst=10.${site === 'writer' ? 98 : 99}.${i >> 8}.${i & 255},actions=drop`;
        const t0 = process.hrtime.bigint();
        await request(sock, { body: 'flow_mods', flow_mods: { command: 'ADD', text: flowText([flow]) } });
        ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      out.rtt[site] = { n, p50_ms: pct(ms, 50), p99_ms: pct(ms, 99), max_ms: Math.max(...ms) };
      log(`  sync flow-mod round trip at the ${site}: p50 ${out.rtt[site].p50_ms.toFixed(2)} ms, p99 ${out.rtt[site].p99_ms.toFixed(2)} ms (${n} flow-mods)`);
    }
    await request(A.sock, { body: 'flow_mods', flow_mods: { command: 'DELETE', text: flowText(['priority=7000,ip,nw_dst=10.98.0.0/15']) } });

    // ---- cost: CPU per flow-mod at each site and in the client, no traffic ----
    let serial = 0;
    /**
     * Flow-mods at A until `until` settles, add then delete (the table stays at 100k): as
     * fast as 16 outstanding requests go, or paced at `rate` per second (each one sent on
     * time whatever the others do, up to 16 outstanding).
     */
    const stream = async (until, rate = 0) => {
      let stop = false;
      const r = { done: 0, failed: 0, lat: [], t0: Date.now(), secs: 0 };
      let tokens = 0;
      const waiting = [];
      const ticker = rate > 0 ? setInterval(() => { tokens++; waiting.shift()?.(); }, 1000 / rate) : null;
      const worker = async () => {
        while (!stop) {
          if (ticker) {
            while (tokens === 0 && !stop) await new Promise((res) => waiting.push(res));
            if (stop) break;
            tokens--;
          }
          const i = serial++;
          const add = i % 2 === 0;
          const flow = `priority=7001,ip,nw_dst=10.97.${(i >> 9) & 255}.${(i >> 1) & 255}${add ? ',actions=drop' : ''}`;
          const t0 = process.hrtime.bigint();
          try {
            await request(A.sock, { body: 'flow_mods', flow_mods: { command: add ? 'ADD' : 'DELETE_STRICT', text: flowText([flow]) } });
            r.done++;
            r.lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
          } catch { r.failed++; }
        }
      };
      const workers = Array.from({ length: 16 }, worker);
      const value = await until;
      r.secs = (Date.now() - r.t0) / 1000;
      const done = r.done;
      stop = true;
      if (ticker) clearInterval(ticker);
      for (const res of waiting.splice(0)) res();
      await Promise.all(workers);
      return { ...r, done, value };
    };
    const cpu = () => ({ a: cpuSeconds(procA.pid), b: cpuSeconds(procB.pid), client: process.cpuUsage() });
    const c0 = cpu();
    const alone = await stream(sleep(profile.syncSec * 1000));
    const c1 = cpu();
    const usPer = (x) => (1e6 * x) / alone.done;
    out.cost = {
      flow_mods: alone.done, flow_mods_per_s: alone.done / alone.secs, p99_ms: pct(alone.lat, 99),
      a_us: usPer(c1.a - c0.a), b_us: usPer(c1.b - c0.b),
      client_us: usPer((c1.client.user + c1.client.system - c0.client.user - c0.client.system) / 1e6),
    };
    log(`  sync cost: ${out.cost.flow_mods_per_s.toFixed(0)} flow-mods/s with no traffic; CPU per flow-mod: A ${out.cost.a_us.toFixed(0)} µs, B ${out.cost.b_us.toFixed(0)} µs, client ${out.cost.client_us.toFixed(0)} µs`);

    // ---- load: the data path at full rate, alone and with flow-mods at A ----
    out.load = { rate: profile.syncRate, seconds: profile.syncSec, paced_rate: PACED_RATE, idle: [], busy: [], paced: [] };
    for (let round = 0; round < profile.syncRounds; round++) {
      const a0 = cpuSeconds(procA.pid);
      const idle = await udpgen(ctx, { rate: profile.syncRate, seconds: profile.syncSec, vary: false });
      const a1 = cpuSeconds(procA.pid);
      out.load.idle.push(idle.rx_pps);
      const r = await stream(udpgen(ctx, { rate: profile.syncRate, seconds: profile.syncSec, vary: false }));
      const a2 = cpuSeconds(procA.pid);
      const busy = r.value;
      const paced = await stream(udpgen(ctx, { rate: profile.syncRate, seconds: profile.syncSec, vary: false }), PACED_RATE);
      out.load.paced.push({ rx_pps: paced.value.rx_pps, flow_mods_per_s: paced.done / paced.secs, failed: paced.failed, p50_ms: pct(paced.lat, 50), p99_ms: pct(paced.lat, 99) });
      log(`  sync load ${round + 1}, paced: ${(paced.value.rx_pps / 1000).toFixed(1)}k/s with ${(paced.done / paced.secs).toFixed(0)} flow-mods/s (p99 ${pct(paced.lat, 99).toFixed(1)} ms)`);
      out.load.busy.push({
        rx_pps: busy.rx_pps, sent_pps: busy.sent_pps, idle_sent_pps: idle.sent_pps, flow_mods_per_s: r.done / r.secs, failed: r.failed,
        p50_ms: pct(r.lat, 50), p99_ms: pct(r.lat, 99), a_cpu_idle: (a1 - a0) / idle.seconds, a_cpu_busy: (a2 - a1) / busy.seconds,
      });
      log(`  sync load ${round + 1}: delivered ${(idle.rx_pps / 1000).toFixed(1)}k/s alone (udpgen sent ${(idle.sent_pps / 1000).toFixed(0)}k/s, A ${(100 * (a1 - a0) / idle.seconds).toFixed(0)} % CPU), ${(busy.rx_pps / 1000).toFixed(1)}k/s with ${(r.done / r.secs).toFixed(0)} flow-mods/s replicated (udpgen sent ${(busy.sent_pps / 1000).toFixed(0)}k/s, A ${(100 * (a2 - a1) / busy.seconds).toFixed(0)} % CPU; p99 ${pct(r.lat, 99).toFixed(1)} ms, ${r.failed} failed)`);
    }
    const idleMed = median(out.load.idle);
    const busyMed = median(out.load.busy.map((b) => b.rx_pps));
    out.load.idle_pps = idleMed;
    out.load.busy_pps = busyMed;
    out.load.ratio = busyMed / idleMed;
    out.load.flow_mods_per_s = median(out.load.busy.map((b) => b.flow_mods_per_s));
    out.load.paced_pps = median(out.load.paced.map((b) => b.rx_pps));
    out.load.paced_ratio = out.load.paced_pps / idleMed;
    out.load.paced_p99_ms = median(out.load.paced.map((b) => b.p99_ms));
    const cloneMed = median(out.clone.map((c) => c.session_to_installed_ms).filter((x) => x != null));
    out.goals = [
      { goal: 'clone 100,000 flows to an empty peer over loopback TLS under 1 s', value: `${cloneMed} ms`, pass: cloneMed < 1000 },
      { goal: 'flow-mod round trip p99 under 10 ms (at the writer / at the follower)', value: `${out.rtt.writer.p99_ms.toFixed(2)} / ${out.rtt.follower.p99_ms.toFixed(2)} ms`, pass: out.rtt.writer.p99_ms < 10 && out.rtt.follower.p99_ms < 10 },
      { goal: 'data path at ≥ 90 % of its idle rate while flow-mods replicate (as fast as they go)', value: `${(100 * out.load.ratio).toFixed(1)} % (${out.load.flow_mods_per_s.toFixed(0)} flow-mods/s); paced at ${PACED_RATE}/s: ${(100 * out.load.paced_ratio).toFixed(1)} %`, pass: out.load.ratio >= 0.9 },
    ];
  } finally {
    if (procB) stopSync(procB);
    stopSync(procA);
  }
  return out;
}

/** The report's section for syncBench's result. */
export function renderSync(s) {
  if (!s) return '';
  if (s.error) return `## Control channel (issue 5)\n\nerror: ${s.error}\n`;
  const lines = ['## Control channel (issue 5)', '',
    `Two sites peered over TLS on loopback; A forwards h1 → h2 with ${s.flows} flows; every flow-mod is answered once journaled at the writer (and at the site asked) and applied at the other site; the follower journals right after applying.`, '',
    '| measure | value |', '|---|---:|',
    `| clone ${s.flows} flows to an empty peer: session up → table installed (ms, each run) | ${s.clone.map((c) => c.session_to_installed_ms).join(', ')} |`,
    `| clone: B's start → \`sync barrier\` answers at B (ms, each run) | ${s.clone.map((c) => c.start_to_barrier_ms).join(', ')} |`,
    `| flow-mod round trip at the writer, p50 / p99 / max (ms, ${s.rtt.writer.n}) | ${s.rtt.writer.p50_ms.toFixed(2)} / ${s.rtt.writer.p99_ms.toFixed(2)} / ${s.rtt.writer.max_ms.toFixed(2)} |`,
    `| flow-mod round trip at the follower, p50 / p99 / max (ms, ${s.rtt.follower.n}) | ${s.rtt.follower.p50_ms.toFixed(2)} / ${s.rtt.follower.p99_ms.toFixed(2)} / ${s.rtt.follower.max_ms.toFixed(2)} |`,
    `| data path, udpgen offered ${(s.load.rate / 1000).toFixed(0)}k frames/s: delivered alone (kframes/s, median) | ${(s.load.idle_pps / 1000).toFixed(1)} |`,
    `| data path delivered while flow-mods replicate (kframes/s, median) | ${(s.load.busy_pps / 1000).toFixed(1)} (${(100 * s.load.ratio).toFixed(1)} %) |`,
    `| flow-mods replicated per second meanwhile (16 outstanding, median) | ${s.load.flow_mods_per_s.toFixed(0)} |`,
    `| data path delivered while ${s.load.paced_rate} flow-mods/s replicate, paced (kframes/s, median) | ${(s.load.paced_pps / 1000).toFixed(1)} (${(100 * s.load.paced_ratio).toFixed(1)} %), flow-mod p99 ${s.load.paced_p99_ms.toFixed(1)} ms |`,
    `| flow-mods per second with no traffic (16 outstanding) | ${s.cost.flow_mods_per_s.toFixed(0)} |`,
    `| CPU per flow-mod with no traffic: A (writer) / B (follower) / the client (µs) | ${s.cost.a_us.toFixed(0)} / ${s.cost.b_us.toFixed(0)} / ${s.cost.client_us.toFixed(0)} |`,
    '', '| goal | measured | |', '|---|---|---|',
    ...s.goals.map((g) => `| ${g.goal} | ${g.value} | ${g.pass ? 'pass' : '**not met**'} |`), ''];
  return lines.join('\n');
}
