/**
 * The VM live-migration demo (`npm run demo:vm`, docs/vm-demo.md): the first paper's
 * scenario — wide-area live migration of a VM with link tunnelling — end to end, with a
 * real VM (QEMU, software emulation) and two peered limed sites.
 *
 *   limevm-c: client 10.77.0.1 ── TAP ── [ limevm-a: limed site-a ] ══ GRE (WAN veth) ══ [ limevm-b: limed site-b ]
 *                                           │ system port vm1                              │ system port vm1
 *                                       TAP limevm-tapa                                TAP limevm-tapb
 *                                       QEMU (source, runs the guest)  ── migrate ──▶  QEMU (-incoming)
 *
 * The guest (packaging/vm-demo/build-guest.sh: a Debian cloud kernel and busybox) is
 * 10.77.0.10 with a TCP echo server. Both sites declare the VM as host `vm1` (tunnel id
 * 101, starting at site-a) on a `system` port: the TAP that QEMU opened at that site. The
 * client pings the guest 100 times a second and keeps one TCP connection to its echo
 * server, a line every 50 ms. QEMU migrates the VM (QMP `migrate` over a unix socket) to
 * the second QEMU at site B; nobody tells limed: site B sees the frames the VM sends after
 * it resumes there (QEMU's RARP announcement first) on vm1's port, where its location map
 * says the VM is not, and moves it (cause `detected`); site A then tunnels the client's
 * frames to B. The demo reports the downtime the client saw, that the same IP answers from
 * site B, that the TCP connection survived, and how the move was detected.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LIMECTL, LimedProcess, PACKAGE_ROOT } from './limed-process.js';
import { Netns, isRoot, run } from './netns.js';
import { makeSiteCerts } from './vm/certs.js';
import { pingStats, type PingStats } from './vm/ping.js';
import { Qmp, type QmpEvent } from './vm/qmp.js';

const PREFIX = 'limevm-';
const SITE = { a: 'site-a', b: 'site-b' } as const;
const WAN_IP = { a: '192.168.77.1', b: '192.168.77.2' } as const;
const WAN_MTU = 1600;
const TAP = { a: 'limevm-tapa', b: 'limevm-tapb' } as const;
const CLIENT_TAP = { a: 'limevm-ca', b: 'limevm-cb' } as const;
const GUEST = { ip: '10.77.0.10', mac: '52:54:00:77:00:10', echoPort: 7000, tunnelId: 101 };
const CLIENT = { ip: '10.77.0.1', mac: '02:00:00:77:00:01', tunnelId: 201 };
const GUEST_BUILDER = join(PACKAGE_ROOT, 'packaging', 'vm-demo', 'build-guest.sh');
const TCP_CLIENT = join(PACKAGE_ROOT, 'dist', 'demo', 'vm', 'tcp-client.js');
const PID_FILE = '/run/lime-vm-demo.pids';

export interface VmDemoOptions {
  json: boolean;
  cache: string;
  pingIntervalMs: number;
  tcpIntervalMs: number;
  beforeSeconds: number;
  afterSeconds: number;
  memMb: number;
  downtimeLimitMs: number;
  bandwidthMBps: number;
  /** Keep the logs (serial consoles, limed logs, ping and TCP output, tcpdump) here. */
  keep?: string;
}

const HELP = `usage: lime-vm-demo [options]

Live-migrates a real VM (QEMU, TCG) between two peered limed sites while a client at site A
pings it (100/s) and keeps a TCP connection to it; reports the downtime, that the guest kept
its IP and the connection, and that site B detected the move (QEMU's RARP announcement).
Needs root: it creates network namespaces (limevm-*), TAP devices and runs QEMU. Installs
QEMU with apt-get when missing and builds the guest once into the cache directory.

options:
  --json                 print the result as one JSON object on stdout (progress on stderr)
  --cache DIR            guest kernel/initramfs cache (default $LIME_VM_CACHE or
                         /var/cache/lime-vm-demo)
  --ping-interval MS     client ping interval (default 10: 100 pings/s)
  --tcp-interval MS      TCP echo line interval (default 50)
  --before S             seconds of traffic before the migration starts (default 3)
  --after S              seconds of traffic after the migration completed (default 5)
  --mem MB               guest memory (default 128)
  --downtime-limit MS    QEMU's migration downtime-limit parameter (default 300)
  --bandwidth MBPS       QEMU's migration max-bandwidth in MB/s (default 1000)
  --keep DIR             keep the logs in DIR: both serial consoles, both limed logs, the
                         ping and TCP client output, tcpdump of site B's TAP
  -h, --help             this text

exit status: 0 all checks passed; 1 a check failed (TCP session broken, IP not answering at
site B, move not detected) or the demo could not run; 2 bad usage.
`;

export function parseVmDemoArgs(argv: readonly string[]): VmDemoOptions | 'help' | string {
  const o: VmDemoOptions = {
    json: false,
    cache: process.env['LIME_VM_CACHE'] ?? '/var/cache/lime-vm-demo',
    pingIntervalMs: 10,
    tcpIntervalMs: 50,
    beforeSeconds: 3,
    afterSeconds: 5,
    memMb: 128,
    downtimeLimitMs: 300,
    bandwidthMBps: 1000,
  };
  const nums: Record<string, [keyof VmDemoOptions, number, number]> = {
    '--ping-interval': ['pingIntervalMs', 2, 1000],
    '--tcp-interval': ['tcpIntervalMs', 5, 5000],
    '--before': ['beforeSeconds', 1, 600],
    '--after': ['afterSeconds', 1, 600],
    '--mem': ['memMb', 64, 4096],
    '--downtime-limit': ['downtimeLimitMs', 1, 60_000],
    '--bandwidth': ['bandwidthMBps', 1, 100_000],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h' || a === '--help') return 'help';
    if (a === '--json') {
      o.json = true;
      continue;
    }
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = inline ?? argv[++i];
    if (flag === '--keep') {
      if (value === undefined || value === '') return '--keep needs a directory';
      o.keep = value;
      continue;
    }
    if (flag === '--cache') {
      if (value === undefined || value === '') return '--cache needs a directory';
      o.cache = value;
      continue;
    }
    const spec = nums[flag];
    if (spec === undefined) return `unknown option ${a}`;
    const n = Number(value);
    if (value === undefined || !Number.isFinite(n) || n < spec[1] || n > spec[2]) return `${flag} needs a number from ${spec[1]} to ${spec[2]}`;
    (o as unknown as Record<string, number>)[spec[0]] = n;
  }
  return o;
}

class Interrupted extends Error {
  constructor() {
    super('interrupted');
  }
}

interface TcpResult {
  local: string;
  remote: string;
  sent: number;
  echoed: number;
  mismatches: number;
  broken: boolean;
  error: string | null;
  max_gap_ms: number;
  max_gap_from: number;
  max_rtt_ms: number;
  first_echo_at: number;
  last_echo_at: number;
}

interface MoveEvent {
  host: string;
  mac: string;
  from: string;
  to: string;
  cause: string;
  time?: unknown;
}

export async function runVmDemo(argv: readonly string[]): Promise<number> {
  const parsed = parseVmDemoArgs(argv);
  if (parsed === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (typeof parsed === 'string') {
    process.stderr.write(`lime-vm-demo: ${parsed}\n${HELP}`);
    return 2;
  }
  const opts = parsed;
  if (!isRoot()) {
    process.stderr.write('lime-vm-demo: needs root (it creates network namespaces, TAP devices and runs QEMU; and installs QEMU when missing)\n');
    return 1;
  }
  const out = opts.json ? process.stderr : process.stdout;
  const say = (s: string): void => {
    out.write(`${s}\n`);
  };
  const t00 = Date.now();
  let interrupted = false;
  const check = (): void => {
    if (interrupted) throw new Interrupted();
  };
  const sleep = async (ms: number): Promise<void> => {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      check();
      await new Promise((r) => setTimeout(r, Math.min(100, until - Date.now())));
    }
    check();
  };
  const waitUntil = async (what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 100): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      check();
      if (await cond()) return;
      if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
      await new Promise((r) => setTimeout(r, stepMs));
    }
  };
  const onSignal = (): void => {
    interrupted = true;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  killStaleQemu();
  Netns.cleanupStale(PREFIX);
  const dir = mkdtempSync(join(tmpdir(), 'lime-vm-'));
  const net = new Netns(PREFIX);
  const qemus: ChildProcess[] = [];
  const qmps: Qmp[] = [];
  const limeds: LimedProcess[] = [];
  const helpers: ChildProcess[] = [];
  let code = 1;
  let result: Record<string, unknown> | undefined;
  let failure: string | undefined;
  let stopping = false;
  try {
    say('== lime VM demo: live migration of a QEMU VM between two limed sites, detected by its announcement ==');
    // 1. The guest: kernel + initramfs, built once (and QEMU installed when missing).
    say(`guest image: ${GUEST_BUILDER} ${opts.cache}`);
    const built = spawnSync('bash', [GUEST_BUILDER, opts.cache], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 900_000 });
    check();
    const paths = /KERNEL=(\S+) INITRD=(\S+)/.exec(built.stdout ?? '');
    if (built.status !== 0 || paths === null) throw new Error(`building the guest failed (exit ${built.status ?? built.signal})`);
    const [, kernel, initrd] = paths as unknown as [string, string, string];
    const certs = makeSiteCerts(join(dir, 'certs'), [SITE.a, SITE.b]);

    // 2. The sites: namespaces, the WAN between them, a TAP per site for the VM's NIC.
    const ns = { a: net.add('a'), b: net.add('b'), c: net.add('c') };
    for (const n of Object.values(ns)) {
      net.exec(n, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
      net.exec(n, 'sysctl', ['-qw', 'net.ipv6.conf.default.disable_ipv6=1']);
    }
    run('ip', ['link', 'add', 'limevm-wa', 'netns', ns.a, 'type', 'veth', 'peer', 'name', 'limevm-wb', 'netns', ns.b]);
    for (const side of ['a', 'b'] as const) {
      const dev = `limevm-w${side}`;
      net.exec(ns[side], 'ip', ['link', 'set', dev, 'mtu', String(WAN_MTU)]);
      net.exec(ns[side], 'ip', ['addr', 'add', `${WAN_IP[side]}/24`, 'dev', dev]);
      net.exec(ns[side], 'ip', ['link', 'set', dev, 'up']);
      net.tryExec(ns[side], 'ethtool', ['-K', dev, 'tx', 'off']);
      // The VM's NIC at this site: a TAP that QEMU opens (ifname=…); limed attaches it as a
      // `system` port. Made persistent first, so limed can attach it before QEMU runs.
      net.exec(ns[side], 'ip', ['tuntap', 'add', 'dev', TAP[side], 'mode', 'tap']);
      net.exec(ns[side], 'ip', ['link', 'set', TAP[side], 'up']);
    }

    // 3. Two limed sites, peered over mutual TLS; vm1 and the client are hosts at both.
    for (const side of ['a', 'b'] as const) {
      const other = side === 'a' ? 'b' : 'a';
      limeds.push(
        new LimedProcess({
          site: SITE[side],
          netns: ns[side],
          ports: [
            { name: 'vm1', type: 'system', device: TAP[side], mac: GUEST.mac, tunnel_id: GUEST.tunnelId, site: SITE.a },
            { name: 'client', type: 'tap', device: CLIENT_TAP[side], mac: CLIENT.mac, tunnel_id: CLIENT.tunnelId, site: SITE.a },
            { name: 'wan', type: 'gre', remote_ip: WAN_IP[other], local_ip: WAN_IP[side], key: 'flow', path_mtu: WAN_MTU },
          ],
          config: {
            listen: `${WAN_IP[side]}:6640`,
            peer: { name: SITE[other], address: `${WAN_IP[other]}:6640`, tunnel_port: 'wan' },
            tls: certs[SITE[side]],
            state_dir: join(dir, `state-${side}`),
          },
        }),
      );
    }
    const [limedA, limedB] = limeds as [LimedProcess, LimedProcess];
    say(`starting limed ${SITE.a} (netns ${ns.a}) and ${SITE.b} (netns ${ns.b}), peered over TLS, GRE ${WAN_IP.a} <-> ${WAN_IP.b}`);
    await limedA.start(60_000);
    await limedB.start(60_000);
    for (const l of limeds) {
      await waitUntil(
        'the sites to peer',
        async () => {
          const r = await l.ctl(['peer', 'status', '--json']);
          return r.code === 0 && (JSON.parse(r.stdout) as { connected?: boolean }).connected === true;
        },
        60_000,
        200,
      );
    }

    // 4. The client at site A: limed's TAP port `client`, moved into its namespace.
    run('ip', ['-n', ns.a, 'link', 'set', 'dev', CLIENT_TAP.a, 'netns', ns.c]);
    net.exec(ns.c, 'ip', ['link', 'set', CLIENT_TAP.a, 'name', 'eth0']);
    net.exec(ns.c, 'ip', ['addr', 'add', `${CLIENT.ip}/24`, 'dev', 'eth0']);
    net.exec(ns.c, 'ip', ['link', 'set', 'eth0', 'up']);
    net.tryExec(ns.c, 'ethtool', ['-K', 'eth0', 'tx', 'off']);
    say(`client: netns ${ns.c}, eth0 ${CLIENT.ip} (${CLIENT.mac}) on site A's port client`);

    // 5. The VM at site A, and the QEMU waiting for it at site B.
    const qemuArgs = (side: 'a' | 'b'): string[] => [
      '-name', side === 'a' ? 'limevm-source' : 'limevm-destination',
      '-nodefaults', '-machine', 'pc,accel=tcg', '-cpu', 'qemu64', '-smp', '1', '-m', String(opts.memMb),
      '-display', 'none', '-no-reboot',
      '-kernel', kernel, '-initrd', initrd,
      '-append', `console=ttyS0 quiet panic=-1 lime.ip=${GUEST.ip}/24 lime.echo=${GUEST.echoPort}`,
      '-serial', `file:${join(dir, `serial-${side}.txt`)}`,
      '-qmp', `unix:${join(dir, `qmp-${side}.sock`)},server=on,wait=off`,
      '-netdev', `tap,id=n0,ifname=${TAP[side]},script=no,downscript=no`,
      '-device', `virtio-net-pci,netdev=n0,mac=${GUEST.mac}`,
      ...(side === 'b' ? ['-incoming', `unix:${join(dir, 'migrate.sock')}`] : []),
    ];
    const startQemu = (side: 'a' | 'b'): ChildProcess => {
      const child = net.spawn(ns[side], 'qemu-system-x86_64', qemuArgs(side), { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
      child.once('exit', (c, s) => {
        if (!stopping) say(`QEMU ${side === 'a' ? 'source' : 'destination'} exited (${c ?? s}): ${err.trim()}`);
      });
      qemus.push(child);
      recordPids(qemus);
      return child;
    };
    const tBoot = Date.now();
    const qemuA = startQemu('a');
    say(`VM: QEMU (TCG, ${opts.memMb} MiB) in ${ns.a} on TAP ${TAP.a}, guest ${GUEST.ip} (${GUEST.mac}), serial ${join(dir, 'serial-a.txt')}`);
    const serialA = join(dir, 'serial-a.txt');
    await waitUntil('the guest to boot (LIME-GUEST-READY on its serial console)', () => {
      if (qemuA.exitCode !== null || qemuA.signalCode !== null) throw new Error('QEMU (source) exited during boot');
      return existsSync(serialA) && readFileSync(serialA, 'utf8').includes('LIME-GUEST-READY');
    }, 180_000, 200);
    const bootSeconds = (Date.now() - tBoot) / 1000;
    say(`guest booted in ${bootSeconds.toFixed(1)} s: ${readFileSync(serialA, 'utf8').split('\n').filter((l) => l.startsWith('lime-guest: eth0')).join('')}`);
    startQemu('b');
    const qmpA = await Qmp.open(join(dir, 'qmp-a.sock'));
    qmps.push(qmpA);
    const qmpB = await Qmp.open(join(dir, 'qmp-b.sock'));
    qmps.push(qmpB);
    say(`destination QEMU in ${ns.b} on TAP ${TAP.b}, waiting (-incoming unix:…/migrate.sock): ${(await qmpB.cmd<{ status: string }>('query-status')).status}`);

    await waitUntil('the guest to answer a ping', () => net.tryExec(ns.c, 'ping', ['-c', '1', '-W', '1', GUEST.ip]), 60_000, 200);
    say('client -> guest: ping answered through site A');

    // 6. Observers: site B's TAP (what the VM sends first at B), mobility events at both sites.
    const dump = spawnObserver(net, ns.b, 'tcpdump', ['-i', TAP.b, '-Q', 'in', '-nn', '-e', '-l', '-tt'], helpers);
    // …and the client's pings site A still hands to the VM's old port (the stopped source).
    const dumpA = spawnObserver(net, ns.a, 'tcpdump', ['-i', TAP.a, '-Q', 'out', '-nn', '-l', '-tt', 'icmp'], helpers);
    // …and those site B hands to the VM's new port (tunnelled from A).
    const dumpBOut = spawnObserver(net, ns.b, 'tcpdump', ['-i', TAP.b, '-Q', 'out', '-nn', '-l', '-tt', 'icmp'], helpers);
    const monitors = { a: spawnMonitor(limedA.socket, helpers), b: spawnMonitor(limedB.socket, helpers) };

    // 7. Client traffic: 100 pings/s, and one TCP connection with a line every 50 ms.
    const ping = spawnObserver(net, ns.c, 'ping', ['-D', '-i', String(opts.pingIntervalMs / 1000), '-W', '1', GUEST.ip], helpers);
    const tcp = spawnObserver(net, ns.c, process.execPath, [TCP_CLIENT, GUEST.ip, String(GUEST.echoPort), String(opts.tcpIntervalMs)], helpers, true);
    await waitUntil('the TCP connection to the guest', () => {
      if (tcp.child.exitCode !== null) throw new Error(`TCP client exited: ${tcp.out()}${tcp.err()}`);
      return tcp.out().includes('"ready"');
    }, 30_000);
    const tcpLocal = (JSON.parse(tcp.out().split('\n').find((l) => l.includes('"ready"'))!) as { local: string }).local;
    say(`client traffic: ping every ${opts.pingIntervalMs} ms, TCP ${tcpLocal} -> ${GUEST.ip}:${GUEST.echoPort} a line every ${opts.tcpIntervalMs} ms`);
    await sleep(opts.beforeSeconds * 1000);
    const showB0 = await limedB.showJson();

    // 8. QEMU's live migration; limed is told nothing.
    await qmpA.cmd('migrate-set-parameters', { 'max-bandwidth': opts.bandwidthMBps * 1024 * 1024, 'downtime-limit': opts.downtimeLimitMs });
    say(`\n$ QMP migrate uri=unix:…/migrate.sock   (source -> destination; limed is not told)`);
    const tMig = Date.now();
    await qmpA.cmd('migrate', { uri: `unix:${join(dir, 'migrate.sock')}` });
    let mig: Record<string, unknown> = {};
    await waitUntil(
      'the migration to complete',
      async () => {
        mig = await qmpA.cmd<Record<string, unknown>>('query-migrate');
        const s = String(mig['status']);
        if (s === 'failed' || s === 'cancelled') throw new Error(`QEMU migration ${s}: ${String(mig['error-desc'] ?? '')}`);
        return s === 'completed';
      },
      300_000,
      50,
    );
    const tDone = Date.now();
    // The statistics can lag the status by a moment: ask again until they are filled in.
    for (let i = 0; i < 20 && !(Number(mig['total-time']) > 0); i++) {
      await sleep(50);
      mig = await qmpA.cmd<Record<string, unknown>>('query-migrate');
    }
    const ram = (mig['ram'] ?? {}) as Record<string, number>;
    say(`migration completed after ${tDone - tMig} ms: QEMU total-time ${String(mig['total-time'])} ms, downtime ${String(mig['downtime'])} ms, ${((ram['transferred'] ?? 0) / 1048576).toFixed(1)} MiB sent`);
    let tMoved = 0;
    await waitUntil(
      'site A to place vm1 at site B',
      async () => {
        const r = await limedA.ctl(['migrate', 'status', '--json']);
        if (r.code !== 0) return false;
        const st = JSON.parse(r.stdout) as { hosts: Array<{ name: string; site: string }> };
        if (st.hosts.find((h) => h.name === 'vm1')?.site !== SITE.b) return false;
        tMoved = Date.now();
        return true;
      },
      30_000,
      20,
    );
    say(`site A's location map has vm1 at ${SITE.b} (limectl migrate status; nobody ran migrate host)`);
    await sleep(opts.afterSeconds * 1000);

    // 9. Stop the traffic, collect everything.
    tcp.child.stdin!.write('stop\n');
    ping.child.kill('SIGINT');
    await Promise.all([tcp.exited(10_000), ping.exited(5000)]);
    const tcpRes = (tcp.out().split('\n').filter((l) => l.startsWith('{"result"')).map((l) => (JSON.parse(l) as { result: TcpResult }).result))[0];
    const pings: PingStats = pingStats(ping.out(), tDone);
    await sleep(300);
    const showB1 = await limedB.showJson();
    const vm1RxB = portRx(showB1, 'vm1') - portRx(showB0, 'vm1');
    const statusA = await limedA.ctl(['migrate', 'status']);
    const statusB = await limedB.ctl(['migrate', 'status']);
    const showBText = await limedB.ctl(['show']);
    const stA = await qmpA.cmd<{ status: string }>('query-status');
    const stB = await qmpB.cmd<{ status: string }>('query-status');
    const movesA = monitors.a.events();
    const movesB = monitors.b.events();
    const moveEvent = movesA.find((e) => e.host === 'vm1') ?? movesB.find((e) => e.host === 'vm1');
    const detectLog = limedB.stdout.split('\n').find((l) => l.includes('detected at this site'));
    const movedLogA = limedA.stdout.split('\n').find((l) => l.includes('host vm1 moved from site'));
    const tDetectB = logTime(detectLog);
    const tAppliedA = logTime(movedLogA);
    dump.child.kill('SIGINT');
    dumpA.child.kill('SIGINT');
    dumpBOut.child.kill('SIGINT');
    await Promise.all([dump.exited(3000), dumpA.exited(3000), dumpBOut.exited(3000)]);
    const allFrames = dump.out().split('\n').filter((l) => l.trim() !== '');
    const dumpLines = allFrames.slice(0, 20);
    if (opts.keep !== undefined) {
      mkdirSync(opts.keep, { recursive: true });
      writeFileSync(join(opts.keep, 'ping.txt'), ping.out());
      writeFileSync(join(opts.keep, 'tcp-client.txt'), tcp.out() + tcp.err());
      writeFileSync(join(opts.keep, 'tcpdump-tapb.txt'), dump.out());
      writeFileSync(join(opts.keep, 'tcpdump-tapa-out.txt'), dumpA.out());
      writeFileSync(join(opts.keep, 'tcpdump-tapb-out.txt'), dumpBOut.out());
      writeFileSync(join(opts.keep, 'timeline.txt'), `QMP migrate at ${tMig} (epoch ms)\n`);
    }
    const firstFrame = dumpLines[0] ?? '';
    const firstAt = Math.round(Number(firstFrame.split(' ')[0]) * 1000);
    const firstIp = dumpLines.find((l) => l.includes('IPv4')) ?? '';
    const firstIpAt = Math.round(Number(firstIp.split(' ')[0]) * 1000);
    const tStopA = qmpTime(qmpA.events.find((e) => e.event === 'STOP'));
    const tResumeB = qmpTime(qmpB.events.find((e) => e.event === 'RESUME'));
    // Pings site A delivered to the old port after the source stopped: lost with the source.
    const toOldPort = dumpA
      .out()
      .split('\n')
      .map((l) => Math.round(Number(l.split(' ')[0]) * 1000))
      .filter((t) => Number.isFinite(t) && tStopA > 0 && t >= tStopA);
    const lastToOld = toOldPort.length > 0 ? toOldPort[toOldPort.length - 1]! : 0;
    const firstToNew = Math.round(Number(dumpBOut.out().split('\n')[0]?.split(' ')[0] ?? '0') * 1000) || 0;
    const serialB = readFileSync(join(dir, 'serial-b.txt'), 'utf8');
    const aliveB = serialB.split('\n').filter((l) => l.startsWith('lime-guest: alive')).length;

    const rel = (t: number): string => (t > 0 ? `${t - tMig >= 0 ? '+' : ''}${t - tMig} ms` : 'n/a');
    say('\n$ limectl migrate status            # at site A');
    say(statusA.stdout.trimEnd());
    say('\n$ limectl migrate status            # at site B');
    say(statusB.stdout.trimEnd());
    say('\n$ limectl show                      # at site B');
    say(showBText.stdout.trimEnd());
    say('\nmobility events (limectl monitor --events --json):');
    for (const [s, evs] of [['A', movesA], ['B', movesB]] as const) for (const e of evs) say(`  site ${s}: host ${e.host} (${e.mac || 'no mac'}) moved ${e.from} -> ${e.to}, cause ${e.cause}`);
    say(`site B's log: ${detectLog !== undefined ? summarizeLog(detectLog) : '(no detection line)'}`);
    say(`first frames on ${TAP.b} after the migration (tcpdump in ${ns.b}):`);
    for (const l of dumpLines.slice(0, 3)) say(`  ${l}`);

    const tcpOk = tcpRes !== undefined && !tcpRes.broken && tcpRes.mismatches === 0 && tcpRes.echoed === tcpRes.sent && tcpRes.last_echo_at > tDone;
    const ipOk = pings.received_after > 0 && vm1RxB > 0 && stB.status === 'running';
    const detected = moveEvent?.cause === 'detected' && detectLog !== undefined;
    const byAnnouncement = /Reverse|RARP/i.test(firstFrame);
    say('\n== timeline (t = 0: QMP migrate) ==');
    say(`  QEMU migration completed ${rel(tDone)} (QEMU: total ${String(mig['total-time'])} ms, downtime ${String(mig['downtime'])} ms)`);
    say(`  source VM stopped (QMP STOP event) ${rel(tStopA)}`);
    say(`  destination VM resumed at site B (QMP RESUME event) ${rel(tResumeB)}`);
    say(`  first frame from the guest at site B ${rel(firstAt)}: ${byAnnouncement ? 'RARP announcement' : firstFrame.slice(0, 80)}`);
    say(`  site B detects vm1 (its log) ${rel(tDetectB)}`);
    say(`  site A applies the move and tunnels to B (its log) ${rel(tAppliedA)}`);
    say(`  site A's last ping to the old port (the stopped source) ${rel(lastToOld)}: ${toOldPort.length} delivered there after the stop`);
    say(`  site B's first ping to the new port (tunnelled from A) ${rel(firstToNew)}`);
    say(`  first IP packet from the guest at site B ${rel(firstIpAt)}`);
    say(`  longest ping gap ${rel(pings.gap_from)} .. ${rel(pings.gap_to)}`);
    if (tcpRes !== undefined) say(`  longest TCP echo gap from ${rel(tcpRes.max_gap_from)} (${tcpRes.max_gap_ms} ms)`);
    const ms = (a: number, b: number): string => (a > 0 && b > 0 ? `${b - a} ms` : 'n/a');
    say('\n== where the outage went ==');
    say(`  VM paused by QEMU (STOP at A -> RESUME at B)                  ${ms(tStopA, tResumeB)}`);
    say(`  site B detects the VM (RESUME -> B's detection)               ${ms(tResumeB, tDetectB)}`);
    say(`  the move logged (B's detection -> A applies it)               ${ms(tDetectB, tAppliedA)}`);
    say(`  site A still delivers to the old port (A applies -> last ping) ${lastToOld > tAppliedA ? ms(tAppliedA, lastToOld) : '0 ms'}`);
    say(`  pings site A delivered to the stopped source: ${toOldPort.length} (pings lost: ${pings.lost})`);
    say('\n== results ==');
    say(`  downtime seen by the client: longest gap between ping replies ${pings.longest_gap_ms} ms; ${pings.lost} of ${pings.transmitted} pings lost (${pings.lost_in_a_row} in a row at ${opts.pingIntervalMs} ms)`);
    if (tcpRes !== undefined) say(`  TCP ${tcpRes.local} -> ${tcpRes.remote}: ${tcpRes.echoed}/${tcpRes.sent} lines echoed, ${tcpRes.mismatches} mismatches, ${tcpRes.broken ? `BROKEN (${tcpRes.error ?? 'closed'})` : 'same connection throughout'}; longest stall ${tcpRes.max_gap_ms} ms, max round trip ${tcpRes.max_rtt_ms} ms`);
    say(`  ${ipOk ? 'OK  ' : 'FAIL'} the guest kept its IP: ${GUEST.ip} answered ${pings.received_after} pings after the migration, through site B (vm1's port at B received ${vm1RxB} frames); source QEMU ${stA.status}, destination ${stB.status}, guest heartbeat lines at B: ${aliveB}`);
    say(`  ${tcpOk ? 'OK  ' : 'FAIL'} the TCP session survived`);
    say(`  ${detected ? 'OK  ' : 'FAIL'} the move was detected by site B (cause ${moveEvent?.cause ?? 'none'}), not commanded${detected ? (byAnnouncement ? ": QEMU's RARP announcement was the first frame" : '') : ''}`);
    result = {
      ok: tcpOk && ipOk && detected,
      checks: { tcp_session_survived: tcpOk, ip_kept: ipOk, move_detected: detected },
      run_seconds: 0,
      boot_seconds: bootSeconds,
      guest: { ip: GUEST.ip, mac: GUEST.mac, pings_answered_after_migration: pings.received_after, vm1_rx_frames_at_b: vm1RxB, source_status: stA.status, destination_status: stB.status, heartbeat_lines_at_b: aliveB },
      migration: {
        elapsed_ms: tDone - tMig,
        qemu_total_time_ms: mig['total-time'],
        qemu_downtime_ms: mig['downtime'],
        qemu_setup_time_ms: mig['setup-time'],
        ram_transferred_bytes: ram['transferred'],
        downtime_limit_ms: opts.downtimeLimitMs,
        source_stopped_ms: tStopA > 0 ? tStopA - tMig : null,
        destination_resumed_ms: tResumeB > 0 ? tResumeB - tMig : null,
      },
      detection: {
        event: moveEvent ?? null,
        log: detectLog !== undefined ? JSON.parse(detectLog) : null,
        first_frame_at_b: firstFrame,
        first_frame_ms: firstAt > 0 ? firstAt - tMig : null,
        first_ip_packet_ms: firstIpAt > 0 ? firstIpAt - tMig : null,
        frames_at_b: dumpLines,
        by_announcement: byAnnouncement,
        detected_at_b_ms: tDetectB > 0 ? tDetectB - tMig : null,
        applied_at_a_ms: tAppliedA > 0 ? tAppliedA - tMig : null,
        pings_to_old_port_after_stop: toOldPort.length,
        last_ping_to_old_port_ms: lastToOld > 0 ? lastToOld - tMig : null,
        first_ping_to_new_port_ms: firstToNew > 0 ? firstToNew - tMig : null,
        map_at_a_polled_ms: tMoved - tMig,
      },
      ping: { interval_ms: opts.pingIntervalMs, ...pings, gap_from_ms: pings.gap_from - tMig, gap_to_ms: pings.gap_to - tMig },
      tcp: tcpRes === undefined ? null : { ...tcpRes, max_gap_from_ms: tcpRes.max_gap_from - tMig, interval_ms: opts.tcpIntervalMs },
    };
    code = result['ok'] === true ? 0 : 1;
    stopping = true;
  } catch (err) {
    failure = err instanceof Interrupted ? 'interrupted' : (err as Error).message;
    process.stderr.write(`lime-vm-demo: ${failure}\n`);
    code = 1;
  } finally {
    stopping = true;
    if (opts.keep !== undefined) {
      try {
        mkdirSync(opts.keep, { recursive: true });
        for (const f of ['serial-a.txt', 'serial-b.txt']) if (existsSync(join(dir, f))) copyFileSync(join(dir, f), join(opts.keep, f));
        limeds.forEach((l, i) => writeFileSync(join(opts.keep!, `limed-${i === 0 ? 'a' : 'b'}.log`), l.stdout + l.stderr));
      } catch (err) {
        process.stderr.write(`lime-vm-demo: --keep ${opts.keep}: ${(err as Error).message}\n`);
      }
    }
    for (const q of qmps) q.close();
    for (const h of helpers) if (h.exitCode === null && h.signalCode === null && h.pid !== undefined) tryKill(h.pid, 'SIGKILL');
    for (const q of qemus) if (q.exitCode === null && q.signalCode === null && q.pid !== undefined) tryKill(q.pid, 'SIGKILL');
    const codes = await Promise.all(limeds.map((l) => l.stop()));
    net.destroy();
    for (const l of limeds) l.cleanup();
    rmSync(dir, { recursive: true, force: true });
    rmSync(PID_FILE, { force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    say(`\nlimed stopped (exit codes ${codes.join(', ') || 'n/a'}); QEMU, namespaces and devices removed; ${((Date.now() - t00) / 1000).toFixed(1)} s in all`);
  }
  if (result !== undefined) result['run_seconds'] = Math.round((Date.now() - t00) / 100) / 10;
  if (opts.json) process.stdout.write(`${JSON.stringify(result ?? { ok: false, error: failure }, null, 2)}\n`);
  else say(code === 0 ? '\nvm demo: the VM moved to site B with its IP and its TCP connection; site B detected it' : `\nvm demo: FAILED${failure !== undefined ? ` (${failure})` : ''}`);
  return code;
}

function portRx(show: { ports: Array<{ name: string; rx_packets: number }> }, name: string): number {
  return show.ports.find((p) => p.name === name)?.rx_packets ?? 0;
}

/** The time of a QMP event (epoch ms); 0 when there was none. */
function qmpTime(e: QmpEvent | undefined): number {
  return e?.timestamp === undefined ? 0 : Math.round(e.timestamp.seconds * 1000 + e.timestamp.microseconds / 1000);
}

/** The time of a limed log line (pino JSON, ISO `time`), epoch ms; 0 when unknown. */
function logTime(line: string | undefined): number {
  if (line === undefined) return 0;
  try {
    const t = Date.parse(String((JSON.parse(line) as { time?: unknown }).time));
    return Number.isFinite(t) ? t : 0;
  } catch {
    return 0;
  }
}

function summarizeLog(line: string): string {
  try {
    const j = JSON.parse(line) as { msg?: string; time?: number };
    return `${j.msg ?? line}`;
  } catch {
    return line;
  }
}

function tryKill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

/** QEMU processes a previous run that died left behind (their PIDs, checked to be ours). */
function killStaleQemu(): void {
  if (!existsSync(PID_FILE)) return;
  for (const line of readFileSync(PID_FILE, 'utf8').split('\n')) {
    const pid = Number(line);
    if (!Number.isInteger(pid) || pid <= 1) continue;
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmd.includes('qemu-system') && cmd.includes('limevm-')) tryKill(pid, 'SIGKILL');
  }
  rmSync(PID_FILE, { force: true });
}

function recordPids(children: ChildProcess[]): void {
  writeFileSync(PID_FILE, children.map((c) => c.pid).filter((p) => p !== undefined).join('\n') + '\n');
}

interface Observer {
  child: ChildProcess;
  out(): string;
  err(): string;
  exited(timeoutMs: number): Promise<void>;
}

function spawnObserver(net: Netns, ns: string, cmd: string, args: string[], all: ChildProcess[], stdin = false): Observer {
  const child = net.spawn(ns, cmd, args, { stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  all.push(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exit = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child,
    out: () => out,
    err: () => err,
    async exited(timeoutMs) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const t = setTimeout(() => child.pid !== undefined && tryKill(child.pid, 'SIGKILL'), timeoutMs);
      await exit;
      clearTimeout(t);
    },
  };
}

/** `limectl monitor --events --json` at a site: its mobility events. */
function spawnMonitor(socket: string, all: ChildProcess[]): { events(): MoveEvent[] } {
  const child = spawn(process.execPath, [LIMECTL, '--socket', socket, 'monitor', '--events', '--json'], { stdio: ['ignore', 'pipe', 'ignore'] });
  all.push(child);
  let buf = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (buf += d));
  return {
    events() {
      const evs: MoveEvent[] = [];
      for (const line of buf.split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          const e = JSON.parse(line) as { host_moved?: MoveEvent };
          if (e.host_moved !== undefined) evs.push(e.host_moved);
        } catch {
          /* partial line */
        }
      }
      return evs;
    },
  };
}

