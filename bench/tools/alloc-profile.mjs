// Where does limed allocate under load? Runs the daemon in-process with two TAP ports
// joined to two namespaces, pushes paced 64-byte UDP through it with iperf3, and samples
// every allocation (including ones the young-generation GC already collected) with V8's
// sampling heap profiler. Allocations are attributed to lime's data path (anything under
// the TAP reader's callback), to Node's event loop (allocated outside any JavaScript frame: Node 20 creates one
// empty object per loop iteration in Environment::CheckImmediate), or to other code.
//   node bench/tools/alloc-profile.mjs [--seconds N] [--rate FRAMES_PER_S] [--json]
import { execFileSync, spawn } from 'node:child_process';
import { Session } from 'node:inspector/promises';
import { pino } from 'pino';
import { Daemon } from '../../dist/daemon/daemon.js';
import { parseConfig } from '../../dist/daemon/config.js';

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? Number(args[i + 1]) : dflt; };
const seconds = opt('--seconds', 5);
const rate = opt('--rate', 100_000);
const json = args.includes('--json');
const say = (s) => process.stderr.write(`alloc-profile: ${s}\n`);
const ip = (...a) => execFileSync('ip', a, { stdio: 'pipe' });
const ns = ['limebp-h1', 'limebp-h2'];
for (const n of ns) { try { ip('netns', 'del', n); } catch {} ip('netns', 'add', n); }
// The sampler runs from before the daemon starts: starting it later installs an allocation
// observer that deoptimizes code already optimized for inline allocation, and the data path
// then sometimes runs unoptimized (boxing doubles) for the whole measurement. Only the
// samples taken after the warm-up count: each sample carries a running ordinal.
const session = new Session();
session.connect();
await session.post('HeapProfiler.startSampling', { samplingInterval: 64, includeObjectsCollectedByMinorGC: true, includeObjectsCollectedByMajorGC: true });
const cfg = parseConfig('site: prof\nsocket: /tmp/limebp.sock\nports:\n  - { name: limebp-t1, type: tap }\n  - { name: limebp-t2, type: tap }\n');
const daemon = new Daemon(cfg, pino({ level: 'warn' }));
await daemon.start();
const children = [];
let result;
try {
  ['limebp-t1', 'limebp-t2'].forEach((dev, i) => {
    ip('link', 'set', dev, 'netns', ns[i]);
    ip('-n', ns[i], 'addr', 'add', `10.79.0.${i + 1}/24`, 'dev', dev);
    ip('-n', ns[i], 'link', 'set', dev, 'up');
  });
  children.push(spawn('ip', ['netns', 'exec', ns[1], 'iperf3', '-s', '-1'], { stdio: 'ignore' }));
  await new Promise((r) => setTimeout(r, 500));
  children.push(spawn('ip', ['netns', 'exec', ns[0], 'iperf3', '-c', '10.79.0.2', '-u', '-l', '64', '-w', '2M', '-b', String(rate * 512), '--pacing-timer', '200', '-t', String(seconds + 4)], { stdio: 'ignore' }));
  await new Promise((r) => setTimeout(r, 2000)); // warm-up: let the optimiser settle
  const batches = () => [...daemon.records.values()].reduce((a, r) => a + r.port.tapCounters().rxBatches, 0);
  const rxFrames = () => daemon.show().ports.reduce((a, p) => a + p.rx_packets, 0);
  const cutoff = (await session.post('HeapProfiler.getSamplingProfile')).profile.samples.reduce((m, x) => Math.max(m, x.ordinal), -1);
  say(`sampling ${seconds} s at ${rate} frames/s offered`);
  const f0 = rxFrames(), b0 = batches();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const f1 = rxFrames(), b1 = batches();
  const { profile } = await session.post('HeapProfiler.stopSampling');
  session.disconnect();
  const frames = f1 - f0, nBatches = b1 - b0;
  const sums = { lime: 0, loop: 0, other: 0 };
  const sites = new Map();
  const nodes = new Map(); // node id → { kind, key }
  const walk = (node, stack) => {
    const f = node.callFrame;
    const here = `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
    const path = [...stack, here];
    // The data path is everything under the TAP reader's callback (onNative in io/*.js).
    const kind = path.some((p) => p.startsWith('onNative io/')) ? 'lime'
      : path.length === 2 && path[1].startsWith('(V8 API)') ? 'loop' : 'other';
    nodes.set(node.id, { kind, key: `[${kind}] ${path.slice(-4).join(' < ')}` });
    for (const c of node.children) walk(c, path);
  };
  walk(profile.head, []);
  for (const x of profile.samples) {
    if (x.ordinal <= cutoff) continue; // taken during the warm-up
    const n = nodes.get(x.nodeId);
    if (n === undefined) continue;
    sums[n.kind] += x.size;
    sites.set(n.key, (sites.get(n.key) ?? 0) + x.size);
  }
  // The management calls above (show, counters) count as "other": they run twice per
  // measurement, not per frame.
  result = {
    seconds, offered_rate: rate, frames, wakeups: nBatches,
    bytes: sums,
    lime_bytes_per_frame: sums.lime / Math.max(1, frames),
    loop_bytes_per_wakeup: sums.loop / Math.max(1, nBatches),
    frames_per_wakeup: frames / Math.max(1, nBatches),
    top: [...sites].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([site, bytes]) => ({ site, bytes })),
  };
} finally {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await daemon.stop();
  for (const n of ns) { try { ip('netns', 'del', n); } catch {} }
}
if (json) process.stdout.write(JSON.stringify(result) + '\n');
else {
  console.log(`${result.frames} frames in ${result.wakeups} wake-ups (${result.frames_per_wakeup.toFixed(1)} frames each)`);
  console.log(`lime data path: ${result.bytes.lime} B = ${result.lime_bytes_per_frame.toFixed(3)} B/frame`);
  console.log(`Node event loop: ${result.bytes.loop} B = ${result.loop_bytes_per_wakeup.toFixed(1)} B/wake-up`);
  console.log(`other: ${result.bytes.other} B`);
  for (const t of result.top) console.log(`${(t.bytes / 1024).toFixed(1).padStart(9)} KiB  ${t.site}`);
}
process.exit(0);
