// Only the interleaved tunnel RTT of `bench/run.mjs gre-limed gre-ovs openvpn` (limed GRE,
// OVS GRE and OpenVPN up at once, ping alternating between them), for iterating on
// latency without the 7-minute throughput scenarios. As root:
//   node bench/tools/tunnel-rtt.mjs [--chunks N] [--count N] [--limed-root DIR]
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { measureTunnelRttInterleaved } from '../lib/tunnel-rtt.mjs';
import { acquireLock, cleanupLeftovers, finalCleanupSync, makeTmpDir, teardownSync } from '../lib/netns.mjs';
import { log } from '../lib/exec.mjs';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const { values } = parseArgs({ options: { chunks: { type: 'string', default: '10' }, count: { type: 'string', default: '250' }, 'limed-root': { type: 'string' } } });
const root = values['limed-root'] ?? REPO;
acquireLock();
cleanupLeftovers();
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => { finalCleanupSync(); process.exit(130); });
const ctx = { tmp: makeTmpDir(), repo: REPO, limedJs: join(root, 'dist/bin/limed.js'), limectlJs: join(root, 'dist/bin/limectl.js') };
try {
  const r = await measureTunnelRttInterleaved(ctx, { chunks: Number(values.chunks), chunkCount: Number(values.count), interval: 0.002, warmCount: 10_000 });
  for (const [name, q] of Object.entries(r.pooled)) log(`${name}: p50 ${q.p50_us.toFixed(0)} µs, p99 ${q.p99_us.toFixed(0)} µs, p99.9 ${q.p999_us.toFixed(0)} µs`);
  for (const [n, q] of Object.entries(r.ratios)) log(`gre-limed / ${n}: p50 ${q.p50.toFixed(2)}×, p99 ${q.p99.toFixed(2)}×, p99.9 ${q.p999.toFixed(2)}×`);
} finally {
  teardownSync();
  finalCleanupSync();
}
