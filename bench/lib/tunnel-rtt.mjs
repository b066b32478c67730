// Interleaved round-trip latency through the tunnels (issue 4's RTT goal): limed GRE, Open
// vSwitch GRE and OpenVPN are all built at once between the same two host namespaces, each
// with its own pair of site namespaces, its own WAN veth and its own host subnet, and ping
// alternates between them in short chunks (bench/lib/rtt.mjs explains why: measured one
// after the other, the drift of this shared machine's wake-up cost dominates a p99).
import { addHosts, H1 } from './netns.mjs';
import { log } from './exec.mjs';
import { alternatePings } from './rtt.mjs';
import { siteLayout, tunnelBuilds, tunnelScenarios } from './tunnels.mjs';

/** The systems compared; each gets namespaces limeb-sa<suffix>/limeb-sb<suffix>. */
export const TUNNEL_RTT_SYSTEMS = [
  { name: 'gre-limed', suffix: '-l', net: '10.77.20' },
  { name: 'gre-ovs', suffix: '-o', net: '10.77.21' },
  { name: 'openvpn', suffix: '-v', net: '10.77.22' },
];

/**
 * Build every available system, warm up, alternate. Systems that are unavailable (e.g. OVS
 * not installed) are left out and named in `skipped`; the caller tears down afterwards.
 */
export async function measureTunnelRttInterleaved(ctx, { chunks, chunkCount, interval, warmCount }) {
  await addHosts();
  const systems = [];
  const pids = {};
  const skipped = {};
  for (const s of TUNNEL_RTT_SYSTEMS) {
    const why = tunnelScenarios[s.name].available(ctx);
    if (why) { skipped[s.name] = why; log(`  ${s.name}: left out (${why})`); continue; }
    const info = await tunnelBuilds[s.name](ctx, siteLayout({ suffix: s.suffix, net: s.net }));
    pids[s.name] = info.pids;
    systems.push({ name: s.name, dst: `${s.net}.2` });
  }
  if (!systems.some((s) => s.name === 'gre-limed')) throw new Error('gre-limed could not be built');
  const r = await alternatePings(systems, pids, {
    ns: H1, chunks, chunkCount, interval, warmCount,
    onCycle(c, cycle) {
      log(`  tunnel rtt cycle ${c + 1}/${chunks}: ${systems.map((s) => `${s.name} p50 ${cycle[s.name].p50_us.toFixed(0)} p99 ${cycle[s.name].p99_us.toFixed(0)}`).join(', ')} µs`);
    },
  });
  const ratios = {};
  for (const s of systems) {
    if (s.name === 'gre-limed') continue;
    ratios[s.name] = {
      p50: r.pooled['gre-limed'].p50_us / r.pooled[s.name].p50_us,
      p99: r.pooled['gre-limed'].p99_us / r.pooled[s.name].p99_us,
      p999: r.pooled['gre-limed'].p999_us / r.pooled[s.name].p999_us,
    };
  }
  return { ...r, pids, skipped, ratios };
}
