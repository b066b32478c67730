// Build one tunnel system between limeb-h1 and limeb-h2 and keep it up until Ctrl-C (or
// SIGTERM), for poking at it by hand (ping, strace, perf). As root:
//   node bench/tools/tunnel-hold.mjs [gre-limed|gre-ovs|openvpn]
// Prints the forwarder PIDs and the host addresses once up; tears everything down on exit.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { siteLayout, tunnelBuilds } from '../lib/tunnels.mjs';
import { acquireLock, addHosts, cleanupLeftovers, finalCleanupSync, makeTmpDir } from '../lib/netns.mjs';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const name = process.argv[2] ?? 'gre-limed';
if (!(name in tunnelBuilds)) throw new Error(`unknown tunnel ${name} (known: ${Object.keys(tunnelBuilds).join(', ')})`);
acquireLock();
cleanupLeftovers();
const ctx = { tmp: makeTmpDir(), repo: REPO, limedJs: join(REPO, 'dist/bin/limed.js'), limectlJs: join(REPO, 'dist/bin/limectl.js') };
const stop = () => { finalCleanupSync(); process.exit(0); };
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, stop);
try {
  await addHosts();
  const L = siteLayout();
  const info = await tunnelBuilds[name](ctx, L);
  console.log(JSON.stringify({ name, pids: info.pids, h1: L.a.hostIp, h2: L.b.hostIp, ns: [L.a.host, L.b.host] }));
  setInterval(() => {}, 1 << 30);
} catch (e) {
  console.error(e);
  stop();
}
