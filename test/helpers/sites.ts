/**
 * Two-site topologies for the tunnel tests: a site namespace per access router joined
 * only by a veth "WAN" link, a host namespace behind each site, and limed (or Open
 * vSwitch) running inside each site namespace.
 *
 *   ${p}ha ── tap ── [ ${p}a: limed A ] ── ${p}wa ═══ WAN ═══ ${p}wb ── [ ${p}b: limed B / OVS ] ── ${p}hb
 *   10.61.0.1                                192.168.250.1   192.168.250.2                         10.61.0.2
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LimedProcess, type LimedPortConfig } from '../../src/demo/limed-process.js';
import { Netns, run, tryRun } from '../../src/demo/netns.js';

export const WAN_A = '192.168.250.1';
export const WAN_B = '192.168.250.2';
export const HOST_A = '10.61.0.1';
export const HOST_B = '10.61.0.2';

export interface Sites {
  net: Netns;
  siteA: string;
  siteB: string;
  hostA: string;
  hostB: string;
  wanA: string;
  wanB: string;
  limedA?: LimedProcess;
  limedB?: LimedProcess;
  ovs?: Ovs;
  destroy(): Promise<void>;
}

function hostSetup(net: Netns, ns: string, dev: string, ip: string): void {
  net.exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
  net.exec(ns, 'ip', ['link', 'set', dev, 'name', 'eth0']);
  net.exec(ns, 'ip', ['addr', 'add', `${ip}/24`, 'dev', 'eth0']);
  net.exec(ns, 'ip', ['link', 'set', 'eth0', 'up']);
  // Frames leave the host complete, as on a real wire (the GRE tests are not about offloads).
  net.tryExec(ns, 'ethtool', ['-K', 'eth0', 'tx', 'off']);
}

/** Namespaces and the WAN veth; `wanAddrs` false leaves the WAN ends unaddressed (a trunk). */
export function baseSites(prefix: string, opts: { wanMtu?: number; wanAddrs?: boolean } = {}): Sites {
  Netns.cleanupStale(prefix);
  const net = new Netns(prefix);
  const siteA = net.add('a');
  const siteB = net.add('b');
  const hostA = net.add('ha');
  const hostB = net.add('hb');
  for (const ns of [siteA, siteB]) net.exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
  const wanA = `${prefix}wa`;
  const wanB = `${prefix}wb`;
  run('ip', ['link', 'add', wanA, 'netns', siteA, 'type', 'veth', 'peer', 'name', wanB, 'netns', siteB]);
  for (const [ns, dev, ip] of [
    [siteA, wanA, WAN_A],
    [siteB, wanB, WAN_B],
  ] as const) {
    if (opts.wanMtu !== undefined) net.exec(ns, 'ip', ['link', 'set', dev, 'mtu', String(opts.wanMtu)]);
    if (opts.wanAddrs !== false) net.exec(ns, 'ip', ['addr', 'add', `${ip}/24`, 'dev', dev]);
    net.exec(ns, 'ip', ['link', 'set', dev, 'up']);
    net.tryExec(ns, 'ethtool', ['-K', dev, 'tx', 'off']);
  }
  const sites: Sites = {
    net,
    siteA,
    siteB,
    hostA,
    hostB,
    wanA,
    wanB,
    async destroy() {
      const codes = await Promise.all([sites.limedA?.stop(), sites.limedB?.stop()]);
      sites.ovs?.stop();
      net.destroy();
      sites.limedA?.cleanup();
      sites.limedB?.cleanup();
      for (const c of codes) if (c !== undefined && c !== 0) throw new Error(`limed exited with ${c}`);
    },
  };
  return sites;
}

/** Start limed in a site namespace with a TAP port for its host (moved there) plus `ports`. */
export async function startLimed(
  s: Sites,
  side: 'a' | 'b',
  ports: LimedPortConfig[],
  extra: { site?: string; config?: Record<string, unknown> } = {},
): Promise<LimedProcess> {
  const ns = side === 'a' ? s.siteA : s.siteB;
  const host = side === 'a' ? s.hostA : s.hostB;
  const tap = `${s.net.prefix}t${side}`;
  const limed = new LimedProcess({
    site: extra.site ?? `site-${side}`,
    netns: ns,
    ports: [{ name: 'host', device: tap, mtu: 1500 }, ...ports],
    ...(extra.config !== undefined ? { config: extra.config } : {}),
  });
  if (side === 'a') s.limedA = limed;
  else s.limedB = limed;
  await limed.start();
  run('ip', ['-n', ns, 'link', 'set', 'dev', tap, 'netns', host]);
  hostSetup(s.net, host, tap, side === 'a' ? HOST_A : HOST_B);
  return limed;
}

/** limed at both sites with a GRE port to the other (`to-b`, `to-a`) with this key. */
export async function startGreSites(s: Sites, key: number, opts: { pathMtu?: number; config?: Record<string, unknown> } = {}): Promise<void> {
  const mtu = opts.pathMtu !== undefined ? { path_mtu: opts.pathMtu } : {};
  const extra = opts.config !== undefined ? { config: opts.config } : {};
  await startLimed(s, 'a', [{ name: 'to-b', type: 'gre', remote_ip: WAN_B, local_ip: WAN_A, key, ...mtu }], extra);
  await startLimed(s, 'b', [{ name: 'to-a', type: 'gre', remote_ip: WAN_A, local_ip: WAN_B, key, ...mtu }], extra);
}

export interface Ovs {
  dir: string;
  vsctl(args: readonly string[]): string;
  appctl(args: readonly string[]): string;
  stop(): void;
}

/** True when Open vSwitch's userspace tools are installed. */
export function ovsAvailable(): boolean {
  return ['ovs-vswitchd', 'ovsdb-server', 'ovsdb-tool', 'ovs-vsctl'].every((b) => tryRun('sh', ['-c', `command -v ${b}`]));
}

/**
 * Site B as Open vSwitch's userspace datapath (../shared/REFERENCE-SETUPS.md): br-phy holds
 * the WAN veth and carries the tunnel endpoint address on its internal port; br-int holds
 * the host's veth and a type=gre port to site A.
 */
export function startOvsSiteB(s: Sites, dir: string, gre: { key: number }): Ovs {
  mkdirSync(dir, { recursive: true });
  const env = [`OVS_RUNDIR=${dir}`, `OVS_LOGDIR=${dir}`, `OVS_DBDIR=${dir}`];
  const db = `unix:${dir}/db.sock`;
  const inNs = (cmd: string, args: readonly string[]) => run('ip', ['netns', 'exec', s.siteB, 'env', ...env, cmd, ...args], { timeoutMs: 20_000 });
  run('ovsdb-tool', ['create', `${dir}/conf.db`, '/usr/share/openvswitch/vswitch.ovsschema']);
  inNs('ovsdb-server', [`${dir}/conf.db`, `--remote=punix:${dir}/db.sock`, `--pidfile=${dir}/ovsdb-server.pid`, `--unixctl=${dir}/ovsdb-server.ctl`, `--log-file=${dir}/ovsdb-server.log`, '--detach']);
  const vsctl = (args: readonly string[]) => run('ovs-vsctl', [`--db=${db}`, '--timeout=10', ...args], { timeoutMs: 15_000 });
  vsctl(['--no-wait', 'init']);
  vsctl(['--no-wait', 'set', 'Open_vSwitch', '.', 'other_config:userspace-tso-enable=false']);
  inNs('ovs-vswitchd', [db, `--pidfile=${dir}/ovs-vswitchd.pid`, `--unixctl=${dir}/ovs-vswitchd.ctl`, `--log-file=${dir}/ovs-vswitchd.log`, '--detach']);
  const pids = ['ovsdb-server', 'ovs-vswitchd'].map((n) => Number(readFileSync(join(dir, `${n}.pid`), 'utf8').trim()));
  const ovs: Ovs = {
    dir,
    vsctl,
    appctl: (args) => run('ovs-appctl', ['-t', join(dir, 'ovs-vswitchd.ctl'), ...args]),
    stop() {
      for (const pid of pids.reverse()) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
      }
    },
  };
  s.ovs = ovs;
  // Underlay: br-phy with the WAN veth; the tunnel endpoint address on br-phy itself.
  s.net.exec(s.siteB, 'ip', ['addr', 'flush', 'dev', s.wanB]);
  s.net.exec(s.siteB, 'sysctl', ['-qw', `net.ipv4.conf.${s.wanB}.arp_ignore=1`]);
  vsctl(['add-br', 'br-phy', '--', 'set', 'bridge', 'br-phy', 'datapath_type=netdev', '--', 'set', 'interface', 'br-phy', 'mtu_request=1600']);
  vsctl(['add-port', 'br-phy', s.wanB]);
  s.net.exec(s.siteB, 'ip', ['addr', 'add', `${WAN_B}/24`, 'dev', 'br-phy']);
  s.net.exec(s.siteB, 'ip', ['link', 'set', 'br-phy', 'up']);
  // Overlay: br-int with the host's veth and the GRE port.
  const hostDev = `${s.net.prefix}hv`;
  const swDev = `${s.net.prefix}hs`;
  run('ip', ['link', 'add', hostDev, 'netns', s.hostB, 'type', 'veth', 'peer', 'name', swDev, 'netns', s.siteB]);
  s.net.exec(s.siteB, 'ip', ['link', 'set', swDev, 'up']);
  s.net.tryExec(s.siteB, 'ethtool', ['-K', swDev, 'tx', 'off']);
  hostSetup(s.net, s.hostB, hostDev, HOST_B);
  vsctl(['add-br', 'br-int', '--', 'set', 'bridge', 'br-int', 'datapath_type=netdev']);
  vsctl(['add-port', 'br-int', swDev]);
  vsctl(['add-port', 'br-int', 'gre0', '--', 'set', 'interface', 'gre0', 'type=gre', `options:remote_ip=${WAN_A}`, `options:key=${gre.key}`]);
  s.net.exec(s.siteB, 'ip', ['link', 'set', 'br-int', 'up']);
  return ovs;
}
