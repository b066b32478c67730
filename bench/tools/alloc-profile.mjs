// Where does limed allocate under load? Runs the daemon in-process with two TAP ports
// joined to two namespaces, pushes paced 64-byte UDP through it with iperf3, and samples
// every allocation (including ones the young-generation GC already collected) with V8's
// sampling heap profiler. Prints the top allocating functions. Diagnostic, not a benchmark.
//   node bench/tools/alloc-profile.mjs [SECONDS] [RATE]
import { execFileSync, spawn } from 'node:child_process';
import { Session } from 'node:inspector/promises';
import { pino } from 'pino';
import { Daemon } from '../../dist/daemon/daemon.js';
import { parseConfig } from '../../dist/daemon/config.js';

const seconds = Number(process.argv[2] ?? 5);
const rate = Number(process.argv[3] ?? 100_000);
const ip = (...a) => execFileSync('ip', a, { stdio: 'pipe' });
const ns = ['limebp-h1', 'limebp-h2'];
for (const n of ns) { try { ip('netns', 'del', n); } catch {} ip('netns', 'add', n); }
const cfg = parseConfig('site: prof\nsocket: /tmp/limebp.sock\nports:\n  - { name: limebp-t1, type: tap }\n  - { name: limebp-t2, type: tap }\n');
const daemon = new Daemon(cfg, pino({ level: 'warn' }));
await daemon.start();
const children = [];
try {
  ['limebp-t1', 'limebp-t2'].forEach((dev, i) => {
    ip('link', 'set', dev, 'netns', ns[i]);
    ip('-n', ns[i], 'addr', 'add', `10.79.0.${i + 1}/24`, 'dev', dev);
    ip('-n', ns[i], 'link', 'set', dev, 'up');
  });
  children.push(spawn('ip', ['netns', 'exec', ns[1], 'iperf3', '-s', '-1'], { stdio: 'ignore' }));
  await new Promise((r) => setTimeout(r, 500));
  children.push(spawn('ip', ['netns', 'exec', ns[0], 'iperf3', '-c', '10.79.0.2', '-u', '-l', '64', '-b', String(rate * 512), '--pacing-timer', '200', '-t', String(seconds + 2)], { stdio: 'ignore' }));
  await new Promise((r) => setTimeout(r, 1000));
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.startSampling', { samplingInterval: 64, includeObjectsCollectedByMinorGC: true, includeObjectsCollectedByMajorGC: true });
  const before = daemon.show();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const after = daemon.show();
  const { profile } = await session.post('HeapProfiler.stopSampling');
  const frames = after.ports[0].rx_packets - before.ports[0].rx_packets;
  const bySite = new Map();
  let total = 0;
  const walk = (node, stack) => {
    const f = node.callFrame;
    const here = `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
    const path = [...stack, here].slice(-4).join(' < ');
    if (node.selfSize > 0) {
      bySite.set(path, (bySite.get(path) ?? 0) + node.selfSize);
      total += node.selfSize;
    }
    for (const c of node.children) walk(c, [...stack, here]);
  };
  walk(profile.head, []);
  console.log(`frames through port 1: ${frames}; sampled allocation: ${(total / 1024).toFixed(0)} KiB = ${(total / Math.max(1, frames)).toFixed(1)} B/frame`);
  for (const [site, size] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${(size / 1024).toFixed(1).padStart(9)} KiB  ${site}`);
} finally {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await daemon.stop();
  for (const n of ns) { try { ip('netns', 'del', n); } catch {} }
}
process.exit(0);
