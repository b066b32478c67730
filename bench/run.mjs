#!/usr/bin/env node
// lime benchmark harness: builds netns topologies and measures, side by side in one run,
// a direct veth pair, the Linux bridge, a minimal C TAP forwarder, Open vSwitch's userspace
// datapath and limed; then limed's flow table (issue 3), and site-to-site tunnels: limed GRE,
// OVS GRE and OpenVPN (issue 4). See bench/README.md. Must run as root.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { log, run, runSync, elapsedSeconds, stopSync } from './lib/exec.mjs';
import { acquireLock, cleanupLeftovers, finalCleanupSync, teardownSync, makeTmpDir, H1, H2, IP2 } from './lib/netns.mjs';
import { cpuSeconds, machineBusy } from './lib/proc.mjs';
import { startServer, udp, tcp } from './lib/iperf.mjs';
import { ping, pingFlood } from './lib/ping.mjs';
import { scenarios as baseScenarios, ORDER as BASE_ORDER, limectlShow, waitForFile, scrapePortCounters } from './lib/scenarios.mjs';
import { aggregate, evaluateGoals, evaluateFlowGoals, evaluateTunnelGoals, renderMarkdown, metricDefs, FRAME_NOTE } from './lib/report.mjs';
import { flowScenarios, FLOW_ORDER, udpgen, hitRulePackets, portTx, parseClassifier } from './lib/flows.mjs';
import { median } from './lib/stats.mjs';
import { ladder as paceLadder } from './lib/ladder.mjs';
import { measureRttInterleaved } from './lib/rtt.mjs';
import { measureTunnelRttInterleaved } from './lib/tunnel-rtt.mjs';
import { tunnelScenarios, TUNNEL_ORDER } from './lib/tunnels.mjs';
import { syncBench, renderSync } from './lib/sync.mjs';
import { migrationExperiments } from './experiments/migration.mjs';
import { clone } from './experiments/clone.mjs';
import { tableScaling } from './experiments/table-scaling.mjs';
import { headlineRows, headlineGoals, renderHeadline, headlineFigureSpecs } from './lib/headline.mjs';
import { prepareOutDir, writeScenario, writeRun, validateResults } from './lib/output.mjs';
import { writeFigure } from './lib/figures.mjs';
import { buildC } from './lib/build.mjs';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// The issue-2 comparison (veth … limed, iperf3-driven), then the issue-3 flow-table
// scenarios (limed-flow1, limed-flow100k, limed-newflows, udpgen-driven; bench/lib/flows.mjs),
// then the issue-4 tunnels between two sites (gre-limed, gre-ovs, openvpn, iperf3-driven;
// bench/lib/tunnels.mjs).
const scenarios = { ...baseScenarios, ...flowScenarios, ...tunnelScenarios };
const ORDER = [...BASE_ORDER, ...FLOW_ORDER, ...TUNNEL_ORDER];
// Sections measured once after the rounds, named like scenarios: `sync` is the issue-5
// control channel (two peered limeds; bench/lib/sync.mjs).
const SECTIONS = ['sync'];
// The papers' experiments and the table/clone scalings (bench/experiments/), after the
// sections; each writes its own figures.
const EXPERIMENTS = { 'table-scaling': tableScaling, clone, ...migrationExperiments };
const EXPERIMENT_ORDER = ['table-scaling', 'clone', 'downtime', 'lime-vs-sc', 'delay-sweep', 'order', 'concurrent'];

const USAGE = `usage: npm run bench -- [SCENARIO...] [options]
       node bench/run.mjs [SCENARIO...] [options]

Builds the network-namespace topologies it needs, runs the named scenarios (default: all)
and writes bench/results/<YYYY-MM-DD>/: one JSON file per scenario, run.json, REPORT.md and
figures/*.svg. Tears everything down on exit, Ctrl-C and errors. See bench/README.md.

Systems, measured side by side in interleaved rounds:
  ${ORDER.join(', ')}
Sections, once after the rounds:
  ${SECTIONS.join(', ')}
Experiments (the papers' figures and the scalings), after the sections:
  ${EXPERIMENT_ORDER.join(', ')}
Options:
  --quick          every scenario briefly (1 round, short runs): checks that the harness
                   works and its output is well-formed (CI), not figures to quote
  --rounds N       rounds per system, interleaved round-robin (default 3; --quick: 1);
                   0 runs only the interleaved RTT comparisons (limed with tapfwd, and
                   gre-limed with gre-ovs / openvpn) of the named scenarios
  --cpu-rate N     paced rate in frames/s for the CPU-per-frame metric (default 200000)
  --flow-rate N    paced udpgen rate in frames/s for the flow scenarios' CPU-per-frame
                   metric (default 100000)
  --tunnel-rate N  paced rate in frames/s for the tunnel scenarios' CPU-per-frame metric
                   (default 50000: a rate limed, OVS and OpenVPN all sustain)
  --no-classifier  do not run bench/classifier.mjs after the flow scenarios
  --sync-rate N    udpgen's offered rate in frames/s for the sync section's data path
                   (default 500000: above limed's capacity, so it forwards at full rate)
  --out DIR        write the results to DIR (default bench/results/<YYYY-MM-DD>/; an
                   earlier run of that day is moved into a subfolder named by its time)
  --report DIR     measure nothing: render REPORT.md and the figures again from the JSON
                   files of the results folder DIR
  --limed-root DIR take dist/bin/limed.js and dist/bin/limectl.js from DIR
                   (default: this checkout), e.g. to compare two builds
  -h, --help       this text
Runs as root. Progress goes to stderr; REPORT.md is printed to stdout at the end.`;

function parseArgs(argv) {
  const o = { quick: false, rounds: null, cpuRate: 200_000, flowRate: 100_000, tunnelRate: 50_000, syncRate: 500_000, classifier: true, out: null, limedRoot: null, names: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v == null) usageError(`${a} needs a value`);
      return v;
    };
    if (a === '-h' || a === '--help') { process.stdout.write(USAGE + '\n'); process.exit(0); }
    else if (a === '--quick') o.quick = true;
    else if (a.startsWith('--rounds')) { o.rounds = Number(val()); if (!Number.isInteger(o.rounds) || o.rounds < 0) usageError('--rounds must be an integer ≥ 0'); }
    else if (a.startsWith('--cpu-rate')) { o.cpuRate = Number(val()); if (!Number.isInteger(o.cpuRate) || o.cpuRate < 1000) usageError('--cpu-rate must be an integer ≥ 1000 (frames/s)'); }
    else if (a.startsWith('--flow-rate')) { o.flowRate = Number(val()); if (!Number.isInteger(o.flowRate) || o.flowRate < 1000) usageError('--flow-rate must be an integer ≥ 1000 (frames/s)'); }
    else if (a.startsWith('--tunnel-rate')) { o.tunnelRate = Number(val()); if (!Number.isInteger(o.tunnelRate) || o.tunnelRate < 1000) usageError('--tunnel-rate must be an integer ≥ 1000 (frames/s)'); }
    else if (a.startsWith('--sync-rate')) { o.syncRate = Number(val()); if (!Number.isInteger(o.syncRate) || o.syncRate < 1000) usageError('--sync-rate must be an integer ≥ 1000 (frames/s)'); }
    else if (a === '--no-classifier') o.classifier = false;
    else if (a.startsWith('--out')) o.out = resolve(val());
    else if (a.startsWith('--report')) o.report = resolve(val());
    else if (a.startsWith('--limed-root')) o.limedRoot = resolve(val());
    else if (a.startsWith('-')) usageError(`unknown option ${a}`);
    else if (!ORDER.includes(a) && !SECTIONS.includes(a) && !EXPERIMENT_ORDER.includes(a)) usageError(`unknown scenario ${a} (known: ${[...ORDER, ...SECTIONS, ...EXPERIMENT_ORDER].join(', ')})`);
    else if (!o.names.includes(a)) o.names.push(a);
  }
  if (!o.names.length) { o.names = [...ORDER]; o.sections = [...SECTIONS]; o.experiments = [...EXPERIMENT_ORDER]; }
  else { // canonical order
    o.sections = SECTIONS.filter((n) => o.names.includes(n));
    o.experiments = EXPERIMENT_ORDER.filter((n) => o.names.includes(n));
    o.names = ORDER.filter((n) => o.names.includes(n));
  }
  return o;
}
function usageError(msg) {
  process.stderr.write(`bench: ${msg}\n\n${USAGE}\n`);
  process.exit(2);
}

const opts = parseArgs(process.argv.slice(2));
// --quick: every measurement briefly, so CI checks that the harness works end to end (its
// figures are not for quoting). Default: 3 interleaved rounds sized so that a run of every
// scenario, section and experiment stays under 30 minutes on the 2-core machine.
const profile = opts.quick
  ? { quick: true, rounds: opts.rounds ?? 1, blastSec: 1, ladderSec: 1, ladderStart: 100_000, ladderStep: 100_000, ladderMax: 200_000, refine: 0, cpuSec: 1, tcpSec: 1, pingCount: 200, pingInterval: 0.002, heapFrames: 200_000, rttChunks: 2, rttChunkCount: 100, rttWarmCount: 1000 }
  : { quick: false, rounds: opts.rounds ?? 3, blastSec: 2, ladderSec: 2, ladderStart: 100_000, ladderStep: 100_000, ladderMax: 2_000_000, refine: 3, cpuSec: 3, tcpSec: 3, pingCount: 1000, pingInterval: 0.002, heapFrames: 1_000_000, rttChunks: 20, rttChunkCount: 250, rttWarmCount: 5000 };
profile.cpuRate = opts.cpuRate;
// Flow scenarios (udpgen): their own ladder and fixed CPU rate.
Object.assign(profile, opts.quick
  ? { flowLadderSec: 1, flowLadderStart: 100_000, flowLadderStep: 100_000, flowRefine: 0, flowCpuSec: 1, classifierMillions: 0.2 }
  : { flowLadderSec: 2, flowLadderStart: 50_000, flowLadderStep: 100_000, flowRefine: 2, flowCpuSec: 3, classifierMillions: 2 });
profile.flowRate = opts.flowRate;
// The sync section: udpgen's offered rate, seconds per run, idle/busy run pairs.
Object.assign(profile, { syncRate: opts.syncRate, syncSec: opts.quick ? 1 : 3, syncRounds: opts.quick ? 1 : 3 });
// Tunnel scenarios (iperf3, like the base ones): their own fixed rate for CPU per frame, and
// a ladder that starts lower (OpenVPN's capacity here is ~75k frames/s on an idle machine and
// ~50k under load: a ladder starting at 50k or 100k may find nothing to pass).
profile.tunnelCpuRate = opts.tunnelRate;
Object.assign(profile, opts.quick
  ? { tunnelLadderStart: 25_000, tunnelLadderStep: 50_000, tunnelLadderSec: 1, tunnelLadderMax: 75_000 }
  : { tunnelLadderStart: 25_000, tunnelLadderStep: 50_000, tunnelLadderSec: profile.ladderSec, tunnelLadderMax: profile.ladderMax });
profile.cpus = os.cpus().length;

// ---------------------------------------------------------------------------------------
// Safety: tear everything down on any exit path.
let exiting = false;
let saveResults = () => {};
// --report builds nothing and must not touch a run in progress (its namespaces, its lock).
const cleanupSync = () => { if (!opts.report) finalCleanupSync(); };
function emergencyExit(code, why) {
  if (exiting) return;
  exiting = true;
  log(`${why}${opts.report ? '' : ': tearing down'}`);
  try { saveResults(true); } catch { /* best effort */ }
  try { cleanupSync(); } catch (e) { process.stderr.write(`bench: teardown error: ${e.message}\n`); }
  process.exit(code);
}
process.on('SIGINT', () => emergencyExit(130, 'interrupted (SIGINT)'));
process.on('SIGTERM', () => emergencyExit(143, 'terminated (SIGTERM)'));
process.on('SIGHUP', () => emergencyExit(129, 'hang-up (SIGHUP)'));
process.on('uncaughtException', (e) => { process.stderr.write(`bench: ${e.stack ?? e}\n`); emergencyExit(1, 'uncaught exception'); });
process.on('unhandledRejection', (e) => { process.stderr.write(`bench: ${e?.stack ?? e}\n`); emergencyExit(1, 'unhandled rejection'); });
process.on('exit', () => { if (!exiting) { exiting = true; try { cleanupSync(); } catch { /* nothing more to do */ } } });

// ---------------------------------------------------------------------------------------

function firstLine(cmd, args) {
  const r = runSync(cmd, args);
  return r.code === 0 ? r.stdout.split('\n')[0].trim() : null;
}

function environment() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? 'unknown';
  const commit = firstLine('git', ['-C', REPO, 'rev-parse', 'HEAD']);
  const dirty = runSync('git', ['-C', REPO, 'status', '--porcelain', '--untracked-files=no']).stdout.trim() !== '';
  return {
    kernel: os.release(),
    cpu_model: model,
    cpus: os.cpus().length,
    mem_gib: +(os.totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    git_commit: commit,
    git_dirty: dirty,
    ovs: firstLine('ovs-vswitchd', ['--version']),
    iperf3: firstLine('iperf3', ['--version']),
    openvpn: opts.names.includes('openvpn') ? firstLine('openvpn', ['--version']) : undefined,
    ping: firstLine('ping', ['-V']),
    hostname: os.hostname(),
    clk_tck: Number(firstLine('getconf', ['CLK_TCK'])),
  };
}

// ---------------------------------------------------------------------------------------
// Measurements for one scenario in one round.

const k = (x) => `${(x / 1000).toFixed(1)}k`;

async function ladder(ctx, {
  send = ctx.udpRetry, start = profile.ladderStart, stepBy = profile.ladderStep, max = profile.ladderMax,
  seconds = profile.ladderSec, refine = profile.refine,
} = {}) {
  return paceLadder({ send, start, stepBy, max, seconds, refine });
}

async function measureScenario(name, round, ctx) {
  const sc = scenarios[name];
  if (sc.flowBench) return measureFlowScenario(name, round, ctx);
  const sample = { scenario: name, round, started_at: new Date().toISOString(), metrics: {}, errors: {} };
  const t0 = Date.now();
  teardownSync();
  let server = null;
  try {
    log(`round ${round}/${profile.rounds} ${name}: setting up (${sc.title})`);
    const info = await sc.setup(ctx);
    // The forwarder(s) whose CPU time counts: one process, or several summed (`pids`: the
    // two sites' daemons of a tunnel scenario).
    const pids = info.pids ?? (info.pid ? [info.pid] : []);
    sample.forwarder = pids.length ? { pid: pids[0], pids, comm: info.comm } : null;
    if (info.check) sample.check = info.check;
    const cpuNow = () => pids.map((p) => cpuSeconds(p));
    server = await startServer(H2, IP2);
    const restartServer = async () => { stopSync(server); server = await startServer(H2, IP2); };
    ctx.udpRetry = async (rate, seconds) => {
      try { return await udp({ ns: H1, dst: IP2, rate, seconds }); } catch (e) {
        log(`  iperf3 failed (${e.message}); restarting the server and retrying once`);
        await restartServer();
        return await udp({ ns: H1, dst: IP2, rate, seconds });
      }
    };
    const metric = async (key, fn) => {
      try { await fn(); } catch (e) { sample.errors[key] = e.message; log(`  ${key}: ERROR ${e.message}`); }
    };

    // Warm-up: ARP and MAC learning (the path must work before anything is measured), then
    // a flood ping so that a JIT-compiled forwarder is measured in its steady state.
    await ping({ ns: H1, dst: IP2, count: 5, interval: 0.1 });
    await pingFlood({ ns: H1, dst: IP2, count: profile.rttWarmCount });
    // How busy is the machine with everything else while our topology sits idle?
    sample.background_busy_pct = 100 * (await machineBusy(1000));
    sample.loadavg = readFileSync('/proc/loadavg', 'utf8').trim();
    if (sample.background_busy_pct > 10) log(`  warning: the machine is ${sample.background_busy_pct.toFixed(0)} % busy with other work before measuring (load ${sample.loadavg})`);
    // limed's Prometheus endpoint, scraped with curl before and after the load below.
    const prom = info.metricsUrl ? (sample.prometheus = { url: info.metricsUrl, before: null, after: null, moved: false }) : null;
    if (prom) await scrapeInto(prom, 'before');

    await metric('rtt', async () => {
      const p = await ping({ ns: H1, dst: IP2, count: profile.pingCount, interval: profile.pingInterval });
      sample.rtt = { p50_us: p.p50_us, p99_us: p.p99_us, loss_pct: p.loss_pct, received: p.received, rtts_us: p.rtts_us };
      sample.metrics.rtt_p50_us = p.p50_us;
      sample.metrics.rtt_p99_us = p.p99_us;
      log(`  rtt: p50 ${p.p50_us.toFixed(0)} µs, p99 ${p.p99_us.toFixed(0)} µs, loss ${p.loss_pct?.toFixed(1)} %`);
    });

    await metric('tcp', async () => {
      let t;
      try { t = await tcp({ ns: H1, dst: IP2, seconds: profile.tcpSec }); } catch (e) {
        log(`  iperf3 tcp failed (${e.message}); retrying once`);
        await restartServer();
        t = await tcp({ ns: H1, dst: IP2, seconds: profile.tcpSec });
      }
      sample.tcp = t;
      sample.metrics.tcp_gbps = t.gbps;
      if (sc.tunnel) sample.metrics.tcp_retransmits = t.retransmits;
      log(`  tcp: ${t.gbps.toFixed(2)} Gbit/s (${t.retransmits} retransmits)`);
    });

    await metric('cpu', async () => {
      const rate = sc.tunnel ? profile.tunnelCpuRate : profile.cpuRate;
      const c0 = cpuNow();
      const r = await ctx.udpRetry(rate, profile.cpuSec);
      const c1 = cpuNow();
      const perPid = pids.map((p, i) => c1[i] - c0[i]);
      const cpuS = perPid.reduce((a, b) => a + b, 0);
      sample.cpu = { ...r, rate, cpu_s: pids.length ? cpuS : null, ...(pids.length > 1 ? { cpu_s_by_pid: Object.fromEntries(pids.map((p, i) => [p, perPid[i]])) } : {}) };
      if (pids.length) {
        sample.metrics.cpu_us_per_frame = (cpuS * 1e6) / r.received;
        sample.metrics.cpu_share = cpuS / r.seconds;
        if (sc.tunnel) sample.metrics.cpu_loss_pct = r.loss_pct;
      }
      log(`  cpu @${k(rate)}/s: delivered ${r.received} frames (loss ${r.loss_pct.toFixed(2)} %)` +
        (pids.length ? `, forwarder${pids.length > 1 ? `s (${pids.length}, ${perPid.map((x) => x.toFixed(2)).join(' + ')} s)` : ''} ${cpuS.toFixed(2)} s CPU → ${sample.metrics.cpu_us_per_frame.toFixed(3)} µs/frame` : ', forwarder CPU n/a (kernel)'));
    });

    await metric('blast', async () => {
      const r = await ctx.udpRetry(0, profile.blastSec);
      sample.blast = r;
      sample.metrics.blast_rx_pps = r.rx_pps;
      sample.metrics.blast_loss_pct = r.loss_pct;
      log(`  blast: sent ${k(r.sent_pps)}/s, delivered ${k(r.rx_pps)}/s, loss ${r.loss_pct.toFixed(2)} %`);
    });

    await metric('ladder', async () => {
      const l = await ladder(ctx, sc.tunnel ? { start: profile.tunnelLadderStart, stepBy: profile.tunnelLadderStep, seconds: profile.tunnelLadderSec, max: profile.tunnelLadderMax } : {});
      sample.ladder = l;
      sample.metrics.ladder_pps = l.capacity_pps;
      log(`  capacity: ${k(l.capacity_pps)} frames/s delivered with ≤ 1 % loss (offered ${k(l.capacity_offered)})${l.sender_limited ? ', sender-limited' : ''}`);
    });

    if (prom) {
      await scrapeInto(prom, 'after');
      if (prom.before && prom.after) {
        const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);
        prom.rx_packets_delta = sum(prom.after.rx_packets) - sum(prom.before.rx_packets);
        prom.tx_packets_delta = sum(prom.after.tx_packets) - sum(prom.before.tx_packets);
        prom.moved = prom.rx_packets_delta > 0 && prom.tx_packets_delta > 0;
      }
      log(`  prometheus: ${prom.error ? `ERROR ${prom.error}` : `rx packets +${prom.rx_packets_delta}, tx packets +${prom.tx_packets_delta} across the load (${prom.moved ? 'moved' : 'did not move'})`}`);
    }

    if (name === 'limed') await metric('heap', async () => { sample.heap = await limedHeap(ctx, info); });
  } catch (e) {
    sample.error = e.message;
    log(`round ${round} ${name}: FAILED: ${e.message}`);
  } finally {
    if (server) stopSync(server);
    teardownSync();
  }
  if (!Object.keys(sample.errors).length) delete sample.errors;
  sample.duration_s = (Date.now() - t0) / 1000;
  return sample;
}

/**
 * A flow-table scenario (bench/lib/flows.mjs): limed with a flow table, driven by udpgen
 * (paced raw-socket UDP h1 → h2; one 5-tuple, or a new 5-tuple every frame), delivered
 * frames counted by h2's kernel (Udp NoPorts). Metrics: add-flows time, CPU per frame at
 * --flow-rate, and the paced ladder's capacity.
 */
async function measureFlowScenario(name, round, ctx) {
  const sc = scenarios[name];
  const sample = { scenario: name, round, started_at: new Date().toISOString(), metrics: {}, errors: {}, generator: 'udpgen' };
  const t0 = Date.now();
  teardownSync();
  try {
    log(`round ${round}/${profile.rounds} ${name}: setting up (${sc.title})`);
    const info = await sc.setup(ctx);
    sample.forwarder = info.pid ? { pid: info.pid, comm: info.comm } : null;
    sample.add_flows = info.add_flows;
    sample.metrics.add_flows_s = info.add_flows.ms / 1000;
    const send = async (rate, seconds) => {
      try { return await udpgen(ctx, { rate, seconds, vary: sc.vary }); } catch (e) {
        log(`  udpgen failed (${e.message}); retrying once`);
        return await udpgen(ctx, { rate, seconds, vary: sc.vary });
      }
    };
    const metric = async (key, fn) => {
      try { await fn(); } catch (e) { sample.errors[key] = e.message; log(`  ${key}: ERROR ${e.message}`); }
    };
    // Warm-up: ARP (by the table-miss NORMAL) and the path must work before measuring.
    await ping({ ns: H1, dst: IP2, count: 5, interval: 0.1 });
    sample.background_busy_pct = 100 * (await machineBusy(1000));
    sample.loadavg = readFileSync('/proc/loadavg', 'utf8').trim();
    if (sample.background_busy_pct > 10) log(`  warning: the machine is ${sample.background_busy_pct.toFixed(0)} % busy with other work before measuring (load ${sample.loadavg})`);
    let delivered = 0;

    await metric('cpu', async () => {
      const rate = profile.flowRate;
      const show0 = await limectlShow(ctx, info.sock);
      const c0 = cpuSeconds(info.pid);
      const r = await send(rate, profile.flowCpuSec);
      const c1 = cpuSeconds(info.pid);
      const show1 = await limectlShow(ctx, info.sock);
      delivered += r.received;
      const tx0 = portTx(show0, 'limeb-t2'), tx1 = portTx(show1, 'limeb-t2');
      sample.cpu = { ...r, cpu_s: c1 - c0, limed_tx_t2_delta: tx0 != null && tx1 != null ? tx1 - tx0 : null };
      sample.metrics.flow_cpu_us_per_frame = ((c1 - c0) * 1e6) / r.received;
      sample.metrics.flow_cpu_share = (c1 - c0) / r.seconds;
      sample.metrics.flow_cpu_loss_pct = r.loss_pct;
      log(`  cpu @${k(rate)}/s: sent ${r.sent}, delivered ${r.received} (loss ${r.loss_pct.toFixed(2)} %; limed tx on limeb-t2 ${sample.cpu.limed_tx_t2_delta ?? 'n/a'}), limed ${(c1 - c0).toFixed(2)} s CPU → ${sample.metrics.flow_cpu_us_per_frame.toFixed(3)} µs/frame`);
    });

    await metric('ladder', async () => {
      const l = await ladder(ctx, {
        send: async (rate, seconds) => { const r = await send(rate, seconds); delivered += r.received; return r; },
        start: profile.flowLadderStart, stepBy: profile.flowLadderStep, max: profile.ladderMax,
        seconds: profile.flowLadderSec, refine: profile.flowRefine,
      });
      sample.ladder = l;
      sample.metrics.flow_ladder_pps = l.capacity_pps;
      log(`  capacity: ${k(l.capacity_pps)} frames/s delivered with ≤ 1 % loss (offered ${k(l.capacity_offered)})${l.sender_limited ? ', sender-limited' : ''}`);
    });

    await metric('hit_rule', async () => {
      const n = await hitRulePackets(ctx, info.sock);
      sample.hit_rule = { n_packets: n, delivered_to_h2: delivered };
      log(`  hit rule (${name === 'limed-flow1' ? 'the only flow' : 'one of 100k'}): n_packets ${n ?? 'n/a'}; frames delivered to h2 in this scenario ${delivered}`);
    });
  } catch (e) {
    sample.error = e.message;
    log(`round ${round} ${name}: FAILED: ${e.message}`);
  } finally {
    teardownSync();
  }
  if (!Object.keys(sample.errors).length) delete sample.errors;
  sample.duration_s = (Date.now() - t0) / 1000;
  return sample;
}

/**
 * bench/classifier.mjs: the tuple-space classifier alone (lookups/s at 1k/10k/100k rules
 * over 10 masks, probes per lookup, 100k adds in one batch). Runs on this checkout's dist/.
 */
function classifierBench() {
  const m = profile.classifierMillions;
  log(`classifier: node bench/classifier.mjs ${m} (${m} M lookups per cell)`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [join(REPO, 'bench/classifier.mjs'), String(m)], { encoding: 'utf8', timeout: 300_000 });
  const out = (r.stdout ?? '').trim();
  const parsed = parseClassifier(out);
  const res = { exit: r.status ?? r.signal, seconds: (Date.now() - t0) / 1000, stdout: out, ...parsed };
  if (!parsed.rows.length) res.error = `classifier.mjs exited ${r.status ?? r.signal}: ${((r.stderr ?? '') || out).trim().split('\n').pop()}`;
  else for (const row of parsed.rows) log(`  ${row.rules} rules, ${row.masks} masks: hit ${(row.hit_per_s / 1e6).toFixed(2)} M/s (${row.probes_per_hit} probes), miss ${(row.miss_per_s / 1e6).toFixed(2)} M/s (${row.probes_per_miss} probes)`);
  return res;
}

/** Scrape limed's Prometheus endpoint into prom[when] (the port packet counters); a failure goes to prom.error. */
async function scrapeInto(prom, when) {
  try {
    prom[when] = await scrapePortCounters(prom.url);
  } catch (e) {
    prom.error = `${when}: ${e.message}`;
    log(`  prometheus ${when}: ERROR ${e.message}`);
  }
}

/** limed: heap and GC statistics across ≥ heapFrames frames (paced at the CPU rate). */
async function limedHeap(ctx, info) {
  if (!(await waitForFile(info.sock, 5000))) return { error: `management socket ${info.sock} not found` };
  const before = await limectlShow(ctx, info.sock);
  if (!before) return { error: 'limectl show --json failed' };
  let frames = 0;
  const runs = [];
  for (let i = 0; i < 4 && frames < profile.heapFrames; i++) {
    const secs = Math.max(1, Math.ceil(((profile.heapFrames - frames) * 1.05) / profile.cpuRate));
    const r = await ctx.udpRetry(profile.cpuRate, secs);
    frames += r.received;
    runs.push({ seconds: secs, received: r.received, loss_pct: r.loss_pct });
  }
  const after = await limectlShow(ctx, info.sock);
  if (!after) return { error: 'limectl show --json failed (after)' };
  const num = (o, key) => (typeof o?.process?.[key] === 'number' ? o.process[key] : null);
  const txSum = (o) => (o?.ports ?? []).reduce((a, p) => a + (Number(p.tx_packets) || 0), 0);
  const hb = num(before, 'heap_used'), ha = num(after, 'heap_used');
  const gb = num(before, 'gc_count'), ga = num(after, 'gc_count');
  const h = {
    frames, runs,
    heap_before: hb, heap_after: ha, heap_delta: hb != null && ha != null ? ha - hb : null,
    gc_before: gb, gc_after: ga, gc_delta: gb != null && ga != null ? ga - gb : null,
    rss_after: num(after, 'rss'),
    limed_tx_packets_delta: txSum(after) - txSum(before),
    show_after: after,
  };
  h.gc_per_million = h.gc_delta != null ? h.gc_delta / (frames / 1e6) : null;
  log(`  heap: ${frames} frames, heap Δ ${h.heap_delta != null ? (h.heap_delta / 1024).toFixed(1) + ' KiB' : 'n/a'}, ${h.gc_delta ?? 'n/a'} GCs (${h.gc_per_million?.toFixed(2) ?? 'n/a'} per 1 M frames)`);
  return h;
}

// ---------------------------------------------------------------------------------------

async function main() {
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench: must run as root (it creates network namespaces and TAP devices)\n');
    process.exit(2);
  }
  for (const tool of ['ip', 'iperf3', 'ping', 'ethtool', 'ss', 'cc']) {
    if (runSync('sh', ['-c', `command -v ${tool}`]).code !== 0) {
      process.stderr.write(`bench: ${tool} not found (run .ci/setup, or npm run bench)\n`);
      process.exit(1);
    }
  }
  acquireLock();
  cleanupLeftovers();

  const started = new Date();
  const iso = started.toISOString();
  const outDir = opts.out ? (mkdirSync(opts.out, { recursive: true }), opts.out) : prepareOutDir(join(REPO, 'bench/results'), started);
  const needsMigrationTools = opts.experiments.some((n) => n in migrationExperiments);

  const ctx = {
    tmp: makeTmpDir(),
    repo: REPO,
    tapfwdBin: buildC(REPO, 'tapfwd'),
    udpgenBin: opts.names.some((n) => FLOW_ORDER.includes(n)) || opts.sections.includes('sync') || opts.experiments.includes('table-scaling') ? buildC(REPO, 'udpgen') : null,
    delaylineBin: needsMigrationTools ? buildC(REPO, 'delayline') : null,
    probeBin: needsMigrationTools ? buildC(REPO, 'probe') : null,
    limedJs: join(opts.limedRoot ?? REPO, 'dist/bin/limed.js'),
    limectlJs: join(opts.limedRoot ?? REPO, 'dist/bin/limectl.js'),
  };
  const results = {
    started_at: iso,
    argv: process.argv.slice(2),
    profile,
    frame_note: FRAME_NOTE,
    environment: environment(),
    scenarios: opts.names,
    skipped: {},
    samples: [],
    experiments: {},
  };
  const active = [];
  for (const n of opts.names) {
    const why = scenarios[n].available?.(ctx) ?? null;
    if (why) { results.skipped[n] = why; log(`${n}: skipped: ${why}`); } else active.push(n);
  }
  log(`output: ${outDir}`);
  for (const n of opts.experiments) {
    const why = EXPERIMENTS[n].available?.(ctx) ?? (existsSync(ctx.limedJs) ? null : 'limed not built');
    if (why) { results.skipped[n] = why; log(`${n}: skipped: ${why}`); }
  }
  log(`systems: ${active.join(', ') || '(none)'}; rounds: ${profile.rounds}; sections: ${opts.sections.join(', ') || '(none)'}; experiments: ${opts.experiments.join(', ') || '(none)'}; ${profile.quick ? 'quick mode' : 'default mode'}`);
  // Progress: steps of the whole run (each round of each system, each section and experiment).
  const totalSteps = active.length * profile.rounds + opts.sections.length + opts.experiments.filter((n) => !results.skipped[n]).length;
  let step = 0;
  const progress = (what) => log(`── step ${++step}/${totalSteps}: ${what}`);

  const writer = makeWriter({ outDir, results, o: opts, prof: profile, active, iso });
  saveResults = writer.saveResults;

  for (let round = 1; round <= profile.rounds; round++) {
    // Rotate the order each round so no scenario always runs first (or right after another).
    const order = active.map((_, i) => active[(i + round - 1) % active.length]);
    for (const name of order) {
      progress(`${name}, round ${round}/${profile.rounds}`);
      results.samples.push(await measureScenario(name, round, ctx));
      saveResults(true);
    }
  }
  if (active.includes('limed') && active.includes('tapfwd')) {
    results.rtt_interleaved = await rttInterleaved(ctx);
    saveResults(true);
  }
  if (active.includes('gre-limed') && active.some((n) => n === 'gre-ovs' || n === 'openvpn')) {
    results.tunnel_rtt_interleaved = await tunnelRttInterleaved(ctx);
    saveResults(true);
  }
  if (active.includes('limed') && !opts.limedRoot) {
    results.alloc = allocationProfile();
    saveResults(true);
  }
  if (active.some((n) => FLOW_ORDER.includes(n)) && opts.classifier) {
    results.classifier = classifierBench();
    saveResults(true);
  }
  if (opts.sections.includes('sync')) {
    progress('sync: two peered limeds, the 100k-flow table (bench/lib/sync.mjs)');
    teardownSync();
    try {
      results.sync = await syncBench(ctx, profile);
    } catch (err) {
      log(`sync: failed: ${err.message}`);
      results.sync = { error: err.message };
      // The sites' logs go away with the run's temp dir: keep them next to the results.
      for (const f of ['sync-a.log', 'sync-b.log']) {
        if (existsSync(join(ctx.tmp, f))) copyFileSync(join(ctx.tmp, f), join(outDir, f));
      }
      log(`sync: the sites' logs are in ${outDir}`);
    }
    teardownSync();
    saveResults(true);
  }
  for (const n of opts.experiments) {
    if (results.skipped[n]) continue;
    progress(`${n}: ${EXPERIMENTS[n].title}`);
    const t0 = Date.now();
    teardownSync();
    try {
      results.experiments[n] = await EXPERIMENTS[n].run(ctx, profile);
    } catch (err) {
      log(`${n}: FAILED: ${err.stack ?? err.message}`);
      results.experiments[n] = { error: err.message };
    } finally {
      teardownSync();
    }
    results.experiments[n].duration_s = (Date.now() - t0) / 1000;
    saveResults(true);
  }
  const md = await writer.saveReport(false);
  writer.finish();
  const problems = validateResults(outDir);
  for (const p of problems) log(`output does not validate: ${p}`);
  process.stdout.write(md + '\n');
  log(`done in ${Math.round(elapsedSeconds())} s; results in ${outDir} (REPORT.md, run.json, one JSON file per scenario, figures/)`);
  const failed = results.samples.some((x) => x.error) || results.sync?.error || Object.values(results.experiments).some((e) => e.error);
  return failed || problems.length ? 1 : 0;
}

/**
 * The writers of a results folder: `saveResults(partial)` writes the JSON files (synchronous,
 * so an interrupted run still leaves what it measured); `saveReport(partial)` also renders
 * the figures and REPORT.md. `o` holds the run's scenario lists (names, sections,
 * experiments), `prof` its profile, `active` the systems that were not skipped.
 */
function makeWriter({ outDir, results, o, prof, active, iso, keepRuntime = false }) {
  let final = false;
  const opts = o;
  const profile = prof;
  const derive = () => {
    if (!keepRuntime) results.runtime_s = elapsedSeconds();
    finishDerived(results, active);
    const agg = aggregate(results, opts.names);
    results.summary = agg;
    results.goals = evaluateGoals(agg, results);
    const flowGoals = opts.names.some((n) => FLOW_ORDER.includes(n)) ? evaluateFlowGoals(agg, results) : [];
    const tunnelGoals = opts.names.some((n) => TUNNEL_ORDER.includes(n)) ? evaluateTunnelGoals(agg, results) : [];
    if (flowGoals.length) results.flow_goals = flowGoals;
    if (tunnelGoals.length) results.tunnel_goals = tunnelGoals;
    const rows = headlineRows(results, agg);
    const goals7 = headlineGoals(rows, results);
    return { agg, flowGoals, tunnelGoals, rows, goals7 };
  };
  const saveResults = (partial) => {
    if (final && partial) return null;
    const d = derive();
    const files = writeScenarioFiles(outDir, results, d.agg, opts, profile);
    const goals = [
      ...d.goals7.map((g) => ({ source: 'issue 7', goal: g.goal, value: g.value, pass: g.pass })),
      ...[['issue 2', results.goals], ['issue 3', d.flowGoals], ['issue 4', d.tunnelGoals]].flatMap(([source, list]) => (list ?? [])
        .filter((g) => g.status === 'pass' || g.status === 'fail').map((g) => ({ source, goal: g.goal, value: g.detail ?? '', pass: g.status === 'pass' }))),
      ...(results.sync?.goals ?? []).map((g) => ({ source: 'issue 5', goal: g.goal, value: g.value, pass: g.pass })),
    ];
    const failures = [
      ...results.samples.filter((x) => x.error).map((x) => `${x.scenario} round ${x.round}: ${x.error}`),
      ...(results.sync?.error ? [`sync: ${results.sync.error}`] : []),
      ...Object.entries(results.experiments).filter(([, e]) => e.error).map(([n, e]) => `${n}: ${e.error}`),
    ];
    writeRun(outDir, {
      schema: 'lime-bench-run/1', started_at: iso, runtime_s: results.runtime_s, partial: !!partial, argv: results.argv, quick: profile.quick, rounds: profile.rounds, profile,
      environment: results.environment, scenarios: [...opts.names, ...opts.sections, ...opts.experiments], skipped: results.skipped,
      files, figures: reportFigures, goals, failures,
    });
    return d;
  };
  // REPORT.md and its figures (rendered by Vega, asynchronously).
  let reportFigures = [];
  const saveReport = async (partial) => {
    const d = saveResults(partial);
    if (!d) return '';
    const figs = [];
    const figure = async (name, spec) => { const p = await writeFigure(outDir, name, spec); figs.push(p); return p; };
    const headFigs = [];
    for (const [name, spec] of headlineFigureSpecs(d.rows)) headFigs.push(await figure(name, spec));
    const parts = [];
    parts.push(...renderHeadline(d.rows, d.goals7, headFigs));
    for (const n of opts.experiments) {
      const e = results.experiments[n];
      if (!e) continue;
      parts.push(`## ${EXPERIMENTS[n].title}`, '');
      if (e.error) parts.push(`**Failed:** ${e.error}`, '');
      else {
        try { parts.push(...(await EXPERIMENTS[n].render(e, figure)), ''); } catch (err) { parts.push(`**Could not render:** ${err.message}`, ''); }
      }
    }
    const details = renderMarkdown({ results, agg: d.agg, scenarioNames: opts.names, profile, goals: results.goals, flowGoals: d.flowGoals, tunnelGoals: d.tunnelGoals }) + (results.sync ? '\n' + renderSync(results.sync) : '');
    // renderMarkdown's first lines are the run's header; the headline and experiments follow it.
    const [head, ...rest] = details.split('\n## ');
    const md = [head.trimEnd(), '', ...parts, ...(rest.length ? ['## ' + rest.join('\n## ')] : [])].join('\n');
    reportFigures = figs;
    saveResults(partial); // run.json lists the figures now written
    writeFileSync(join(outDir, 'REPORT.md'), (partial ? '> **Partial results: the run did not finish.**\n\n' : '') + md + '\n');
    return md;
  };

  return {
    saveResults: (partial) => saveResults(partial),
    saveReport: (partial) => saveReport(partial),
    finish() { final = true; },
  };
}

/** The sections' files: name, key in the results, title. */
const SECTION_FILES = [
  ['rtt-interleaved', 'rtt_interleaved', 'RTT with veth, tapfwd and limed up at once, ping alternating between them'],
  ['tunnel-rtt-interleaved', 'tunnel_rtt_interleaved', 'RTT through limed GRE, OVS GRE and OpenVPN up at once, ping alternating between them'],
  ['alloc', 'alloc', 'limed allocations by source (V8 sampling heap profiler)'],
  ['classifier', 'classifier', 'The tuple-space classifier alone (bench/classifier.mjs)'],
  ['sync', 'sync', 'Control channel: clone, flow-mod round trips, data path under flow-mods'],
];

/**
 * `--report DIR`: render REPORT.md and the figures again from a results folder's JSON (after
 * a change to the report, or to finish the report of an interrupted run). Measures nothing.
 */
async function reportOnly(dir) {
  const read = (f) => JSON.parse(readFileSync(join(dir, f), 'utf8'));
  const run = read('run.json');
  const docs = run.files.map(read);
  const prof = run.profile ?? docs.find((d) => d.profile)?.profile ?? profile;
  const results = {
    started_at: run.started_at, argv: run.argv, profile: prof, frame_note: FRAME_NOTE, environment: run.environment,
    scenarios: run.scenarios, skipped: run.skipped, samples: [], experiments: {}, runtime_s: run.runtime_s,
  };
  for (const d of docs) {
    const r = d.result ?? { error: d.error };
    if (d.kind === 'experiment') results.experiments[d.name] = r;
    else if (d.kind === 'section') results[SECTION_FILES.find(([n]) => n === d.name)?.[1] ?? d.name] = r;
    else results.samples.push(...d.samples);
  }
  const o = {
    names: ORDER.filter((n) => run.scenarios.includes(n)),
    sections: SECTIONS.filter((n) => run.scenarios.includes(n)),
    experiments: EXPERIMENT_ORDER.filter((n) => run.scenarios.includes(n)),
  };
  const active = o.names.filter((n) => run.skipped[n] === undefined);
  const writer = makeWriter({ outDir: dir, results, o, prof, active, iso: run.started_at, keepRuntime: true });
  const md = await writer.saveReport(run.partial);
  writer.finish();
  const problems = validateResults(dir);
  for (const p of problems) log(`output does not validate: ${p}`);
  process.stdout.write(md + '\n');
  log(`report rendered again in ${dir}`);
  return problems.length ? 1 : 0;
}

/** One JSON file per scenario, section and experiment that has results; returns their names. */
function writeScenarioFiles(outDir, results, agg, o, prof) {
  const base = { schema: 'lime-bench-scenario/1', started_at: results.started_at, quick: prof.quick, environment: results.environment };
  const files = [];
  const finite = (m) => Object.fromEntries(Object.entries(m ?? {}).filter(([, v]) => typeof v === 'number' && Number.isFinite(v)));
  for (const name of o.names) {
    const samples = results.samples.filter((x) => x.scenario === name).map((x) => ({ ...x, metrics: finite(x.metrics) }));
    if (!samples.length) continue;
    const kind = TUNNEL_ORDER.includes(name) ? 'tunnel' : FLOW_ORDER.includes(name) ? 'flow-table' : 'system';
    files.push(writeScenario(outDir, { ...base, name, kind, title: scenarios[name].title, profile: prof, samples, summary: agg[name] }));
  }
  const sections = SECTION_FILES.map(([name, key, title]) => [name, title, results[key]]);
  for (const [name, title, r] of sections) {
    if (!r) continue;
    files.push(writeScenario(outDir, { ...base, name, kind: 'section', title, ...(r.error ? { error: r.error } : { result: r }) }));
  }
  for (const name of o.experiments) {
    const r = results.experiments[name];
    if (!r) continue;
    const { duration_s: dur, ...rest } = r;
    files.push(writeScenario(outDir, { ...base, name, kind: 'experiment', title: EXPERIMENTS[name].title, ...(dur != null ? { duration_s: dur } : {}), ...(r.error ? { error: r.error } : { result: rest }) }));
  }
  return files;
}

/**
 * RTT with veth, tapfwd and limed all up at once and ping alternating between them in short
 * chunks (bench/lib/rtt.mjs): the comparison the issue-2 latency goal is judged on.
 */
async function rttInterleaved(ctx) {
  const o = { chunks: profile.rttChunks, chunkCount: profile.rttChunkCount, interval: profile.pingInterval, warmCount: profile.rttWarmCount };
  log(`rtt interleaved: veth, tapfwd and limed side by side, ${o.chunks} cycles × ${o.chunkCount} pings each`);
  teardownSync();
  try {
    const r = await measureRttInterleaved(ctx, o);
    const p = r.pooled;
    log(`  added p50: tapfwd +${p.tapfwd.added_p50_us} µs, limed +${p.limed.added_p50_us} µs = ${r.ratio_added_p50.toFixed(2)}× (median of cycles ${r.ratio_added_p50_cycle_median.toFixed(2)}×)`);
    return r;
  } catch (e) {
    log(`  rtt interleaved: FAILED: ${e.message}`);
    return { error: e.message };
  } finally {
    teardownSync();
  }
}

/**
 * RTT through the tunnels with limed GRE, OVS GRE and OpenVPN all up at once, ping
 * alternating between them (bench/lib/tunnel-rtt.mjs): what issue 4's RTT goal is judged on.
 */
async function tunnelRttInterleaved(ctx) {
  const o = { chunks: profile.rttChunks, chunkCount: profile.rttChunkCount, interval: profile.pingInterval, warmCount: profile.rttWarmCount };
  log(`tunnel rtt interleaved: limed GRE, OVS GRE and OpenVPN side by side, ${o.chunks} cycles × ${o.chunkCount} pings each`);
  teardownSync();
  try {
    const r = await measureTunnelRttInterleaved(ctx, o);
    for (const [n, q] of Object.entries(r.ratios)) log(`  gre-limed / ${n}: p50 ${q.p50.toFixed(2)}×, p99 ${q.p99.toFixed(2)}×, p99.9 ${q.p999.toFixed(2)}×`);
    return r;
  } catch (e) {
    log(`  tunnel rtt interleaved: FAILED: ${e.message}`);
    return { error: e.message };
  } finally {
    teardownSync();
  }
}

/**
 * limed's allocations by source, from V8's sampling heap profiler (bench/tools/alloc-profile.mjs
 * runs the daemon in-process under paced traffic): the data path's bytes per frame, and what
 * Node's event loop allocates per wake-up outside any JavaScript.
 */
function allocationProfile() {
  const secs = profile.quick ? 2 : 5;
  log(`allocation profile: limed in-process, ${secs} s at ${Math.round(opts.cpuRate / 1000)}k frames/s`);
  const r = spawnSync(process.execPath, [join(REPO, 'bench/tools/alloc-profile.mjs'), '--seconds', String(secs), '--rate', String(opts.cpuRate), '--json'], {
    encoding: 'utf8', timeout: (secs + 30) * 1000,
  });
  if (r.status !== 0) return { error: `alloc-profile exited ${r.status ?? r.signal}: ${(r.stderr ?? '').trim().split('\n').pop()}` };
  try {
    const a = JSON.parse(r.stdout.trim().split('\n').pop());
    log(`  data path: ${a.lime_bytes_per_frame.toFixed(3)} B/frame; Node event loop: ${a.loop_bytes_per_wakeup.toFixed(1)} B/wake-up (${a.frames_per_wakeup.toFixed(1)} frames/wake-up)`);
    return a;
  } catch (e) {
    return { error: `alloc-profile output not understood: ${e.message}` };
  }
}

/** Per-round derived metrics: added RTT over the veth floor of the same round. */
function finishDerived(results) {
  const vethP50 = results.samples.filter((s) => s.scenario === 'veth' && s.metrics?.rtt_p50_us != null);
  const fallback = median(vethP50.map((s) => s.metrics.rtt_p50_us));
  for (const s of results.samples) {
    if (s.metrics?.rtt_p50_us == null) continue;
    const same = vethP50.find((v) => v.round === s.round);
    const floor = same ? same.metrics.rtt_p50_us : fallback;
    s.metrics.rtt_added_p50_us = floor != null ? s.metrics.rtt_p50_us - floor : undefined;
  }
}

(opts.report ? reportOnly(opts.report) : main()).then((code) => {
  exiting = true;
  cleanupSync();
  process.exit(code);
}, (e) => {
  process.stderr.write(`bench: ${e.stack ?? e}\n`);
  emergencyExit(1, 'failed');
});
