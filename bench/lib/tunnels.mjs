// Site-to-site tunnel scenarios (issue 4): two hosts, each behind its own site namespace,
// the sites joined only by a veth "WAN" link, and the system under test tunnelling L2 over
// that link. Three systems a user could pick, built the same way and measured by the same
// code as the other scenarios (same host addressing 10.77.0.1/.2):
//
//   limeb-h1 ── [ limeb-sa: site A ] ── limeb-wa ═══ WAN ═══ limeb-wb ── [ limeb-sb: site B ] ── limeb-h2
//   10.77.0.1                           192.168.250.1 (MTU 1600) 192.168.250.2                    10.77.0.2
//
// - gre-limed: limed in each site, a tap port for its host (moved into the host namespace)
//   and a `gre` port to the other site (key 4242, path_mtu 1600);
// - gre-ovs:   Open vSwitch userspace datapath in each site (private ovsdb-server and
//   ovs-vswitchd): br-phy (netdev, MTU 1600) holds the WAN veth and carries the tunnel
//   address on its internal port; br-int holds a type=tap port for the host and a type=gre
//   port (key 4242). Bridges are named limeb-bphy / limeb-bint (everything here is limeb*);
// - openvpn:   OpenVPN 2.6 point-to-point in TAP mode over UDP, no TLS, no cipher, no auth;
//   each site bridges the OpenVPN TAP to a veth into its host with a Linux bridge.
//
// test/helpers/sites.ts builds the same topology for the integration tests (in TypeScript);
// this is its plain-.mjs counterpart for the harness. Everything is named limeb* and lives
// in limeb-* namespaces, so the harness's teardown (netns.mjs) removes it; every process is
// started with startBg or recorded with track, so it is stopped by PID.
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { run, runSync, startBg, track, sleep, alive, log } from './exec.mjs';
import { procComm } from './proc.mjs';
import { H1, H2, IP1, IP2, addNs, addHosts, addVeth, configureHost, waitForLink, moveLink } from './netns.mjs';
import { parsePing } from './ping.mjs';
import { waitForFile } from './scenarios.mjs';

export const SA = 'limeb-sa';
export const SB = 'limeb-sb';
export const WAN_A = '192.168.250.1';
export const WAN_B = '192.168.250.2';
export const WAN_DEV_A = 'limeb-wa';
export const WAN_DEV_B = 'limeb-wb';
export const WAN_MTU = 1600;
export const GRE_KEY = 4242;

/**
 * Where one tunnel system lives: its two site namespaces, the WAN veth between them and the
 * hosts' addresses. The scenarios use the default layout; the interleaved RTT measurement
 * (bench/lib/tunnel-rtt.mjs) builds every system at once, each with its own site namespaces,
 * WAN link and host subnet (the host namespaces are shared).
 */
export function siteLayout({ suffix = '', net = null } = {}) {
  const hostA = net ? `${net}.1` : IP1;
  const hostB = net ? `${net}.2` : IP2;
  return {
    a: { ns: `${SA}${suffix}`, host: H1, hostIp: hostA, peerHostIp: hostB, wanDev: `${WAN_DEV_A}${suffix}`, local: WAN_A, remote: WAN_B },
    b: { ns: `${SB}${suffix}`, host: H2, hostIp: hostB, peerHostIp: hostA, wanDev: `${WAN_DEV_B}${suffix}`, local: WAN_B, remote: WAN_A },
  };
}
const DEFAULT_LAYOUT = siteLayout();

/** Site namespaces and the WAN veth (MTU 1600, TX checksum offload off); hosts already exist. */
async function baseSites(L, { wanAddrs = true } = {}) {
  await addNs(L.a.ns);
  await addNs(L.b.ns);
  await addVeth(L.a.wanDev, L.a.ns, L.b.wanDev, L.b.ns);
  for (const s of Object.values(L)) {
    await run('ip', ['link', 'set', s.wanDev, 'mtu', String(WAN_MTU)], { ns: s.ns });
    if (wanAddrs) await run('ip', ['addr', 'add', `${s.local}/24`, 'dev', s.wanDev], { ns: s.ns });
    await run('ip', ['link', 'set', s.wanDev, 'up'], { ns: s.ns });
    await run('ethtool', ['-K', s.wanDev, 'tx', 'off'], { ns: s.ns, allowFail: true });
  }
}

function logTail(file, n = 5) {
  if (!file || !existsSync(file)) return '';
  return readFileSync(file, 'utf8').trim().split('\n').slice(-n).join(' | ');
}

function diedCheck(entry, what, logFile) {
  return () => {
    if (!alive(entry.pid)) {
      const tail = logTail(logFile);
      throw new Error(`${what} exited during set-up${tail ? `: ${tail}` : ''}`);
    }
  };
}

/** Move a TAP the site created into its host namespace and configure it there. */
async function attachHostTap(s, tap, check) {
  await waitForLink(s.ns, tap, { check });
  await moveLink(s.ns, tap, s.host);
  await configureHost(s.host, tap, s.hostIp);
}

/** Packets received on a link (rx, tx), from `ip -s -j link show`. */
async function linkPackets(ns, dev) {
  const r = await run('ip', ['-s', '-j', 'link', 'show', 'dev', dev], { ns, allowFail: true });
  try {
    const j = JSON.parse(r.stdout)[0];
    return { rx: j.stats64.rx.packets, tx: j.stats64.tx.packets };
  } catch { return null; }
}

/**
 * The functional check every tunnel scenario must pass before anything is measured: 5 pings
 * h1 → h2, all answered (up to 3 attempts, since a tunnel may drop the first frames while it
 * resolves the peer's MAC), and the WAN link must have carried them (≥ 10 packets each way
 * during the passing attempt), so the hosts really talk through the tunnel. Throws otherwise.
 */
export async function verifyTunnel(name, L = DEFAULT_LAYOUT) {
  let last = null;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const w0 = await linkPackets(L.a.ns, L.a.wanDev);
    const r = await run('ping', ['-n', '-c', '5', '-i', '0.2', '-W', '1', L.a.peerHostIp], { ns: L.a.host, allowFail: true, timeoutMs: 20_000 });
    const w1 = await linkPackets(L.a.ns, L.a.wanDev);
    last = parsePing(r.stdout);
    const wan = w0 && w1 ? { tx: w1.tx - w0.tx, rx: w1.rx - w0.rx } : null;
    if (last.received === 5) {
      if (wan && (wan.tx < 5 || wan.rx < 5)) throw new Error(`${name}: h1 → h2 ping passed but the WAN link carried only ${wan.tx} tx / ${wan.rx} rx packets: not through the tunnel`);
      log(`  check: 5/5 pings h1 → h2 through ${name} (attempt ${attempt}; WAN link A: ${wan?.tx ?? '?'} tx, ${wan?.rx ?? '?'} rx packets)`);
      return { attempt, wan, p50_us: last.p50_us };
    }
    log(`  check attempt ${attempt}: ${last.received ?? 0}/5 pings h1 → h2 answered`);
    await sleep(1000);
  }
  throw new Error(`${name}: the h1 → h2 check failed: ${last?.received ?? 0}/5 pings answered after 3 attempts`);
}

/** `limectl show --json` for a limed in a site namespace (null on failure). */
async function limectlShowIn(ctx, ns, sock) {
  const r = await run(process.execPath, [ctx.limectlJs, '--socket', sock, 'show', '--json'], { ns, allowFail: true, timeoutMs: 10_000 });
  if (r.code !== 0) return null;
  try { return JSON.parse(r.stdout); } catch { return null; }
}

// ---------------------------------------------------------------------------------------
// limed over GRE

/** The VLAN id that carries the host's frames on the trunk (vlan-limed). */
export const TRUNK_VID = 100;

/**
 * limed at one site: a tap port for its host, and toward the other site either a `gre`
 * port (gre-limed) or, with `trunk`, the WAN veth itself as a `system` port carrying the
 * host's frames tagged with VLAN TRUNK_VID by two flows (vlan-limed: an 802.1Q trunk).
 */
async function startLimedSite(ctx, side, L, { trunk = false } = {}) {
  const s = L[side];
  const tap = side === 'a' ? 'limeb-ta' : 'limeb-tb';
  const sock = join(ctx.tmp, `limed-${side}${s.ns}.sock`);
  const cfg = join(ctx.tmp, `limed-${side}${s.ns}.yaml`);
  const logFile = join(ctx.tmp, `limed-${side}-${Date.now()}.log`);
  writeFileSync(cfg, [
    `site: bench-${side}`,
    `socket: ${sock}`,
    'ports:',
    `  - { name: ${tap}, type: tap, mtu: 1500 }`,
    trunk
      ? `  - { name: limeb-trunk, type: system, device: ${s.wanDev} }`
      : `  - { name: limeb-gre, type: gre, remote_ip: ${s.remote}, local_ip: ${s.local}, key: ${GRE_KEY}, path_mtu: ${WAN_MTU} }`,
    // LIMEB_LIMED_YAML: more top-level settings for both sites (e.g. "fast_path: off"), for
    // comparing configurations by hand.
    ...(process.env.LIMEB_LIMED_YAML ? [process.env.LIMEB_LIMED_YAML] : []),
    '',
  ].join('\n'));
  // LIMEB_NODE_ARGS: extra node options for limed (e.g. --cpu-prof), for profiling by hand.
  const nodeArgs = (process.env.LIMEB_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const e = startBg(`limed (site ${side.toUpperCase()})`, process.execPath, [...nodeArgs, ctx.limedJs, '--config', cfg], { ns: s.ns, logFile });
  const died = diedCheck(e, `limed (site ${side.toUpperCase()})`, logFile);
  await attachHostTap(s, tap, died);
  let pid = e.pid;
  if (!(await waitForFile(sock, 10_000))) { died(); throw new Error(`limed site ${side.toUpperCase()}: management socket ${sock} did not appear`); }
  if (trunk) {
    // Tag on the way out, untag on the way in; anything else on the trunk is not ours.
    const flows = [
      `priority=100,in_port=${tap},actions=push_vlan:0x8100,mod_vlan_vid:${TRUNK_VID},output:limeb-trunk`,
      `priority=100,in_port=limeb-trunk,dl_vlan=${TRUNK_VID},actions=strip_vlan,output:${tap}`,
      'priority=1,in_port=limeb-trunk,actions=drop',
    ];
    const flowFile = join(ctx.tmp, `trunk-flows-${side}.txt`);
    writeFileSync(flowFile, flows.join('\n') + '\n');
    const r = await run(process.execPath, [ctx.limectlJs, '--socket', sock, 'add-flows', flowFile], { ns: s.ns, allowFail: true, timeoutMs: 15_000 });
    if (r.code !== 0) throw new Error(`limed site ${side.toUpperCase()}: add-flows (trunk) failed: ${(r.stderr || r.stdout).trim()}`);
  }
  const show = await limectlShowIn(ctx, s.ns, sock);
  if (!show) throw new Error(`limed site ${side.toUpperCase()}: limectl show --json failed`);
  const wanPort = trunk ? 'limeb-trunk' : 'limeb-gre';
  const wp = (show.ports ?? []).find((p) => p.name === wanPort);
  if (!wp) throw new Error(`limed site ${side.toUpperCase()}: no ${wanPort} port in limectl show`);
  if (wp.state && wp.state !== 'up') throw new Error(`limed site ${side.toUpperCase()}: ${wanPort} port is ${wp.state}`);
  const reported = show.process?.pid;
  if (typeof reported === 'number' && reported !== e.pid) {
    log(`  limed site ${side.toUpperCase()} reports pid ${reported}, the harness started ${e.pid}: counting CPU of ${reported}`);
    pid = reported;
  }
  return { pid, sock, logFile };
}

// ---------------------------------------------------------------------------------------
// Open vSwitch over GRE (../../../shared/REFERENCE-SETUPS.md, test/helpers/sites.ts)

const ovsMissing = () => {
  for (const b of ['ovs-vswitchd', 'ovsdb-server', 'ovsdb-tool', 'ovs-vsctl']) {
    if (runSync('sh', ['-c', `command -v ${b}`]).code !== 0) return `${b} not installed`;
  }
  if (!existsSync('/usr/share/openvswitch/vswitch.ovsschema')) return 'vswitch.ovsschema not found';
  return null;
};

async function startOvsSite(ctx, side, L) {
  const s = L[side];
  const tap = side === 'a' ? 'limeb-oa' : 'limeb-ob';
  const dir = join(ctx.tmp, `ovs-${side}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  const env = { OVS_RUNDIR: dir, OVS_LOGDIR: dir, OVS_DBDIR: dir };
  const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const db = `unix:${dir}/db.sock`;
  const vsctl = (args) => run('ovs-vsctl', [`--db=${db}`, '--timeout=10', ...args], { env, timeoutMs: 15_000 });
  await run('ovsdb-tool', ['create', `${dir}/conf.db`, '/usr/share/openvswitch/vswitch.ovsschema'], { env });
  await run('env', [...envArgs, 'ovsdb-server', `${dir}/conf.db`,
    `--remote=punix:${dir}/db.sock`, `--pidfile=${dir}/ovsdb-server.pid`, `--unixctl=${dir}/ovsdb-server.ctl`,
    `--log-file=${dir}/ovsdb-server.log`, '--detach'], { ns: s.ns });
  track(Number(readFileSync(`${dir}/ovsdb-server.pid`, 'utf8').trim()), `ovsdb-server (site ${side.toUpperCase()})`);
  await vsctl(['--no-wait', 'init']);
  // Read only at ovs-vswitchd start-up: set before starting it.
  await vsctl(['--no-wait', 'set', 'Open_vSwitch', '.', 'other_config:userspace-tso-enable=false']);
  await run('env', [...envArgs, 'ovs-vswitchd', db,
    `--pidfile=${dir}/ovs-vswitchd.pid`, `--unixctl=${dir}/ovs-vswitchd.ctl`,
    `--log-file=${dir}/ovs-vswitchd.log`, '--detach'], { ns: s.ns, timeoutMs: 20_000 });
  const pid = Number(readFileSync(`${dir}/ovs-vswitchd.pid`, 'utf8').trim());
  track(pid, `ovs-vswitchd (site ${side.toUpperCase()})`);
  const dead = () => { if (!alive(pid)) throw new Error(`ovs-vswitchd (site ${side.toUpperCase()}) exited; ${logTail(`${dir}/ovs-vswitchd.log`, 3)}`); };
  // Underlay: br-phy holds the WAN veth; the tunnel endpoint address sits on br-phy's
  // internal port. arp_ignore=1: the kernel must not answer ARP for it from the veth's MAC.
  await run('sysctl', ['-qw', `net.ipv4.conf.${s.wanDev}.arp_ignore=1`], { ns: s.ns });
  await vsctl(['add-br', 'limeb-bphy', '--', 'set', 'bridge', 'limeb-bphy', 'datapath_type=netdev',
    '--', 'set', 'interface', 'limeb-bphy', `mtu_request=${WAN_MTU}`]);
  await vsctl(['add-port', 'limeb-bphy', s.wanDev]);
  await waitForLink(s.ns, 'limeb-bphy', { check: dead });
  await run('ip', ['addr', 'add', `${s.local}/24`, 'dev', 'limeb-bphy'], { ns: s.ns });
  await run('ip', ['link', 'set', 'limeb-bphy', 'up'], { ns: s.ns });
  // Overlay: br-int holds the host's TAP (OVS creates it) and the GRE port.
  await vsctl(['add-br', 'limeb-bint', '--', 'set', 'bridge', 'limeb-bint', 'datapath_type=netdev']);
  await vsctl(['add-port', 'limeb-bint', tap, '--', 'set', 'interface', tap, 'type=tap']);
  await vsctl(['add-port', 'limeb-bint', 'limeb-gre', '--', 'set', 'interface', 'limeb-gre', 'type=gre',
    `options:remote_ip=${s.remote}`, `options:key=${GRE_KEY}`]);
  await run('ip', ['link', 'set', 'limeb-bint', 'up'], { ns: s.ns, allowFail: true });
  await attachHostTap(s, tap, dead);
  return { pid, dir };
}

// ---------------------------------------------------------------------------------------
// OpenVPN, TAP mode over UDP, no crypto

/**
 * OpenVPN 2.6's arguments for a point-to-point TAP tunnel without TLS, cipher or auth, in
 * the foreground (the harness owns the process and stops it by PID). 2.6.14 accepts
 * `--cipher none --auth none` in this static (no-TLS) mode and prints a deprecation notice
 * (2.7 drops no-TLS mode); `--data-ciphers` only applies to TLS negotiation.
 */
function openvpnArgs(side, s) {
  return [
    '--dev', side === 'a' ? 'limeb-va' : 'limeb-vb', '--dev-type', 'tap',
    '--proto', 'udp', '--lport', '1194', '--rport', '1194', '--local', s.local, '--remote', s.remote,
    '--cipher', 'none', '--auth', 'none', '--mssfix', '0', '--fast-io',
    '--verb', '3',
  ];
}

async function startOpenvpnSite(ctx, side, L) {
  const s = L[side];
  const dev = side === 'a' ? 'limeb-va' : 'limeb-vb';
  const hostDev = side === 'a' ? 'limeb-v1' : 'limeb-v2';
  const siteDev = side === 'a' ? 'limeb-s1' : 'limeb-s2';
  const logFile = join(ctx.tmp, `openvpn-${side}-${Date.now()}.log`);
  const e = startBg(`openvpn (site ${side.toUpperCase()})`, 'openvpn', openvpnArgs(side, s), { ns: s.ns, logFile });
  const died = diedCheck(e, `openvpn (site ${side.toUpperCase()})`, logFile);
  await waitForLink(s.ns, dev, { check: died });
  // A Linux bridge in the site joins OpenVPN's TAP and a veth into the host.
  await run('ip', ['link', 'add', 'limeb-br', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0'], { ns: s.ns });
  await addVeth(hostDev, s.host, siteDev, s.ns);
  for (const p of [dev, siteDev]) {
    await run('ip', ['link', 'set', p, 'master', 'limeb-br'], { ns: s.ns });
    await run('ip', ['link', 'set', p, 'up'], { ns: s.ns });
  }
  await run('ethtool', ['-K', siteDev, 'tx', 'off'], { ns: s.ns, allowFail: true });
  await run('ip', ['link', 'set', 'limeb-br', 'up'], { ns: s.ns });
  await configureHost(s.host, hostDev, s.hostIp);
  died();
  return { pid: e.pid, logFile };
}

function openvpnMissing() {
  const r = runSync('openvpn', ['--version']);
  if (r.code === -1 || !/OpenVPN \d/.test(r.stdout)) return 'openvpn not installed (Debian package openvpn; .ci/setup installs it)';
  return null;
}

// ---------------------------------------------------------------------------------------

const both = async (start, ctx, L) => {
  // One after the other: each site's set-up runs commands in its own namespace.
  const a = await start(ctx, 'a', L);
  const b = await start(ctx, 'b', L);
  return [a, b];
};

const pidsInfo = (sites) => {
  const pids = sites.map((x) => x.pid);
  return { pid: pids[0], pids, comm: pids.map(procComm).join('+') };
};

/**
 * Each system's build: its site namespaces, WAN link and daemons for a layout (the host
 * namespaces must exist), then the functional check. Returns the scenario's info.
 */
export const tunnelBuilds = {
  'gre-limed': async (ctx, L) => {
    await baseSites(L);
    const sites = await both(startLimedSite, ctx, L);
    const check = await verifyTunnel('gre-limed', L);
    return { ...pidsInfo(sites), check, socks: sites.map((x) => x.sock) };
  },
  'vlan-limed': async (ctx, L) => {
    await baseSites(L, { wanAddrs: false });
    const sites = await both((c, side, l) => startLimedSite(c, side, l, { trunk: true }), ctx, L);
    const check = await verifyTunnel('vlan-limed', L);
    return { ...pidsInfo(sites), check, socks: sites.map((x) => x.sock) };
  },
  'gre-ovs': async (ctx, L) => {
    await baseSites(L, { wanAddrs: false });
    const sites = await both(startOvsSite, ctx, L);
    const check = await verifyTunnel('gre-ovs', L);
    return { ...pidsInfo(sites), check, dirs: sites.map((x) => x.dir) };
  },
  openvpn: async (ctx, L) => {
    await baseSites(L);
    const sites = await both(startOpenvpnSite, ctx, L);
    const check = await verifyTunnel('openvpn', L);
    return { ...pidsInfo(sites), check, version: runSync('openvpn', ['--version']).stdout.split('\n')[0].trim() };
  },
};

const scenarioSetup = (name) => async (ctx) => {
  await addHosts();
  return tunnelBuilds[name](ctx, DEFAULT_LAYOUT);
};

export const tunnelScenarios = {
  'gre-limed': {
    title: 'limed ↔ limed over GRE (key 4242, path_mtu 1600), a tap port per host',
    tunnel: true,
    available(ctx) {
      return existsSync(ctx.limedJs) ? null : 'limed not built';
    },
    setup: scenarioSetup('gre-limed'),
  },

  'vlan-limed': {
    title: `limed ↔ limed over an 802.1Q trunk (the WAN veth as a system port, VLAN ${TRUNK_VID}), a tap port per host`,
    tunnel: true,
    available(ctx) {
      return existsSync(ctx.limedJs) ? null : 'limed not built';
    },
    setup: scenarioSetup('vlan-limed'),
  },

  'gre-ovs': {
    title: 'Open vSwitch userspace datapath ↔ OVS over GRE (key 4242), a type=tap port per host',
    tunnel: true,
    available: ovsMissing,
    setup: scenarioSetup('gre-ovs'),
  },

  openvpn: {
    title: 'OpenVPN 2.6 p2p, TAP over UDP, no TLS/cipher/auth, Linux bridge to the host per site',
    tunnel: true,
    available: openvpnMissing,
    setup: scenarioSetup('openvpn'),
  },
};

export const TUNNEL_ORDER = ['gre-limed', 'vlan-limed', 'gre-ovs', 'openvpn'];
