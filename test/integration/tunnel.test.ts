/**
 * Two sites joined only by a veth "WAN" link, hosts behind TAP ports: limed to limed over
 * GRE with a key and over an 802.1Q trunk, limed to Open vSwitch over GRE, the tunnel's
 * MTU policies, and GRE packets a tunnel must refuse. tshark's dissectors check the wire
 * format, not our own parser.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeAsRoot, describeWhen, ROOT } from '../helpers/root.js';
import { runInNs, startTshark, tcpTransfer } from '../helpers/proc.js';
import { baseSites, HOST_A, HOST_B, ovsAvailable, startGreSites, startLimed, startOvsSiteB, WAN_A, WAN_B, type Sites } from '../helpers/sites.js';

const KEY = 4242;

/** The first of tshark's comma-separated values: the outer header's in a tunnel. */
function outer(v: string): string {
  return v.split(',')[0]!;
}

/** Lets a capture that tshark reported started actually see packets. */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 300));

/** `count` pings; returns ping's output. */
function ping(ns: string, ip: string, extra: readonly string[] = [], count = 3): Promise<string> {
  return runInNs(ns, 'ping', ['-c', String(count), '-i', '0.2', '-W', '2', ...extra, ip]).catch((e: Error) => e.message);
}

async function port(s: Sites, side: 'a' | 'b', name: string): Promise<any> {
  const show = await (side === 'a' ? s.limedA! : s.limedB!).showJson();
  return show.ports.find((p: { name: string }) => p.name === name);
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'lime-tun-'));
}

describeAsRoot('two limed sites joined by GRE with a key', () => {
  let s: Sites;
  const dir = ROOT ? tmp() : '';
  beforeAll(async () => {
    s = baseSites('limet-', { wanMtu: 1600 });
    await startGreSites(s, KEY, { pathMtu: 1600 });
  }, 60_000);
  afterAll(async () => {
    await s?.destroy();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('hosts at the two sites ping each other; the tunnel ports count it', async () => {
    expect(await ping(s.hostA, HOST_B)).toMatch(/3 packets transmitted, 3 received/);
    expect(await ping(s.hostB, HOST_A)).toMatch(/3 packets transmitted, 3 received/);
    const t = await port(s, 'a', 'to-b');
    expect(t).toMatchObject({ type: 'gre', state: 'up', device: `gre/${WAN_B}` });
    expect(t.options).toMatchObject({ remote_ip: WAN_B, local_ip: WAN_A, key: String(KEY), path_mtu: '1600', mtu_policy: 'drop+icmp' });
    expect(t.rx_packets).toBeGreaterThanOrEqual(6);
    expect(t.tx_packets).toBeGreaterThanOrEqual(6);
    expect(t.drops).toEqual({});
    const show = (await s.limedA!.ctl(['show'])).stdout;
    expect(show).toContain(`to-b: remote_ip=${WAN_B}, local_ip=${WAN_A}, key=${KEY}`);
  });

  it('carries TCP both ways byte-exact', async () => {
    await tcpTransfer(s.hostA, s.hostB, HOST_B, dir);
    await tcpTransfer(s.hostB, s.hostA, HOST_A, dir);
  }, 60_000);

  it('on the WAN: IPv4 protocol 47, GRE 0x6558 with the key, the inner frame intact (tshark)', async () => {
    const cap = await startTshark(s.siteA, s.wanA, 'ip proto 47', ['ip.src', 'ip.dst', 'ip.proto', 'ip.flags.df', 'gre.flags_and_version', 'gre.proto', 'gre.key', 'eth.type', 'icmp.type', 'data.data'], 4);
    await settle();
    await runInNs(s.hostA, 'ping', ['-c', '3', '-i', '0.2', '-p', 'c0ffee', '-W', '2', HOST_B]);
    const rows = await cap.done;
    // Layered fields list the outer header's value first, then the inner one's.
    const out = rows.filter((r) => outer(r[0]!) === WAN_A);
    expect(out.length).toBeGreaterThanOrEqual(3);
    for (const r of out) {
      expect(outer(r[1]!)).toBe(WAN_B);
      expect(outer(r[2]!)).toBe('47');
      expect(outer(r[3]!)).toMatch(/^(1|True)$/i);
      expect(Number(r[4])).toBe(0x2000); // K bit only, version 0
      expect(Number(r[5])).toBe(0x6558);
      expect(Number(r[6])).toBe(KEY);
      // The inner IPv4 packet, host A to host B.
      expect(r[0]!.split(',')[1]).toBe(HOST_A);
      expect(r[1]!.split(',')[1]).toBe(HOST_B);
    }
    // ICMP echo requests carrying ping's pattern, inside.
    const echo = out.filter((r) => r[8] === '8');
    expect(echo.length).toBeGreaterThanOrEqual(3);
    for (const r of echo) {
      expect(r[7]?.split(',')).toEqual(['0x0800', '0x0800']);
      expect(r[9]).toContain('c0ffeec0ffee');
    }
  });

  it('limectl capture on the tunnel port writes the decapsulated frames both ways as pcap (tshark reads it)', async () => {
    const file = join(dir, 'to-b.pcap');
    expect(await ping(s.hostA, HOST_B, [], 1)).toMatch(/1 received/); // ARP resolved first
    const capture = s.limedA!.ctl(['capture', 'to-b', '-w', file, '--count', '4']);
    await new Promise((r) => setTimeout(r, 300));
    await runInNs(s.hostA, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', HOST_B]);
    const r = await capture;
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('4 frame(s) captured on to-b');
    const out = await runInNs(s.siteA, 'tshark', ['-r', file, '-T', 'fields', '-e', 'eth.type', '-e', 'ip.src', '-e', 'ip.dst', '-e', 'icmp.type', '-e', 'gre.key']);
    const rows = out.trim().split('\n').map((l) => l.split('\t'));
    expect(rows).toHaveLength(4);
    // Inner frames only (no GRE): requests sent into the tunnel, replies received from it.
    expect(rows.map((x) => x[4] ?? '')).toEqual(['', '', '', '']);
    expect(rows.filter((x) => x[1] === HOST_A && x[2] === HOST_B && x[3] === '8')).toHaveLength(2);
    expect(rows.filter((x) => x[1] === HOST_B && x[2] === HOST_A && x[3] === '0')).toHaveLength(2);
  });

  it('refuses GRE it must not accept — counted by reason, nothing reaches the host, forwarding goes on', async () => {
    // Inner frame: to host A's MAC (learned from the pings above) with a marker ethertype.
    const fdb = JSON.parse((await s.limedA!.ctl(['fdb/show', '--json'])).stdout) as { entries: { port: string; mac: string }[] };
    const hostMac = fdb.entries.find((e) => e.port === 'host')!.mac.replace(/:/g, '');
    const inner = hostMac + '02aabbccddee' + '88b5' + Buffer.alloc(46, 0x42).toString('hex');
    const ipHex = (a: string) => Buffer.from(a.split('.').map(Number)).toString('hex');
    const ipv4 = (src: string, payload: string) => {
      const len = 20 + payload.length / 2;
      return '4500' + len.toString(16).padStart(4, '0') + '00004000402f0000' + ipHex(src) + ipHex(WAN_A) + payload;
    };
    const gre = (flags: string, key: number | null, proto = '6558') => flags + proto + (key === null ? '' : key.toString(16).padStart(8, '0'));
    const bad = {
      tunnel_unknown_remote: ipv4('192.168.250.9', gre('2000', KEY) + inner),
      gre_key_mismatch: ipv4(WAN_B, gre('2000', KEY + 1) + inner),
      gre_key_missing: ipv4(WAN_B, gre('0000', null) + inner),
      gre_truncated: ipv4(WAN_B, '20'),
      gre_bad_flags: ipv4(WAN_B, gre('6000', KEY) + inner), // routing bit
      gre_bad_version: ipv4(WAN_B, gre('2001', KEY) + inner),
      gre_bad_proto: ipv4(WAN_B, gre('2000', KEY, '0800') + inner),
    };
    const good = ipv4(WAN_B, gre('2000', KEY) + inner);
    const sender = [
      'import socket, sys',
      's = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)',
      'for h in sys.argv[1:]:',
      '    s.sendto(bytes.fromhex(h), ("' + WAN_A + '", 0))',
    ].join('\n');
    const before = (await port(s, 'a', 'to-b')).drops as Record<string, number>;
    const cap = await startTshark(s.hostA, 'eth0', 'ether proto 0x88b5', ['eth.src'], 3);
    await settle();
    await runInNs(s.siteB, 'python3', ['-c', sender, ...Object.values(bad)]);
    await new Promise((r) => setTimeout(r, 300));
    // Positive control: the same inner frame in a good packet does arrive.
    await runInNs(s.siteB, 'python3', ['-c', sender, good]);
    const seen = await cap.done;
    expect(seen).toHaveLength(1);
    const after = (await port(s, 'a', 'to-b')).drops as Record<string, number>;
    for (const reason of Object.keys(bad)) expect((after[reason] ?? 0) - (before[reason] ?? 0), reason).toBe(1);
    expect(await ping(s.hostA, HOST_B)).toMatch(/3 packets transmitted, 3 received/);
  });
});

describeAsRoot('a GRE tunnel with key: flow — the key is the frame\'s tun_id', () => {
  let s: Sites;
  beforeAll(async () => {
    s = baseSites('limek-', { wanMtu: 1600 });
    for (const side of ['a', 'b'] as const) {
      const limed = await startLimed(s, side, [{ name: 'peer', type: 'gre', remote_ip: side === 'a' ? WAN_B : WAN_A, key: 'flow', path_mtu: 1600 }]);
      for (const flow of [
        'priority=100,in_port=host,actions=set_tunnel:77,output:peer',
        'priority=100,in_port=peer,tun_id=77,actions=output:host',
        'priority=50,in_port=peer,actions=drop',
      ]) {
        const r = await limed.ctl(['add-flow', flow]);
        expect(r.stderr).toBe('');
      }
    }
  }, 60_000);
  afterAll(async () => {
    await s?.destroy();
  });

  it('set_tunnel picks the GRE key on the wire; the peer matches it as tun_id', async () => {
    const cap = await startTshark(s.siteA, s.wanA, 'ip proto 47', ['ip.src', 'gre.key', 'icmp.type'], 3);
    await settle();
    expect(await ping(s.hostA, HOST_B)).toMatch(/3 packets transmitted, 3 received/);
    const rows = await cap.done;
    expect(rows.filter((r) => r[2] === '8' || r[2] === '0').length).toBeGreaterThanOrEqual(4);
    for (const r of rows) expect(Number(r[1])).toBe(77);
    const flows = JSON.parse((await s.limedB!.ctl(['dump-flows', '--json'])).stdout) as { match: string; n_packets: number }[];
    expect(flows.find((f) => f.match.includes('tun_id=0x4d'))!.n_packets).toBeGreaterThanOrEqual(3);
  });
});

describeAsRoot('two limed sites joined by an 802.1Q trunk (system ports on the WAN veth)', () => {
  let s: Sites;
  const dir = ROOT ? tmp() : '';
  const VID = 100;
  beforeAll(async () => {
    s = baseSites('limev-', { wanAddrs: false });
    for (const side of ['a', 'b'] as const) {
      const limed = await startLimed(s, side, [{ name: 'trunk', type: 'system', device: side === 'a' ? s.wanA : s.wanB }]);
      for (const flow of [
        `priority=100,in_port=host,actions=push_vlan:0x8100,mod_vlan_vid:${VID},output:trunk`,
        `priority=100,in_port=trunk,dl_vlan=${VID},actions=strip_vlan,output:host`,
        'priority=50,in_port=trunk,actions=drop',
      ]) {
        const r = await limed.ctl(['add-flow', flow]);
        expect(r.stderr).toBe('');
      }
    }
  }, 60_000);
  afterAll(async () => {
    await s?.destroy();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('hosts ping and exchange TCP through the trunk; the WAN carries 802.1Q VLAN 100 (tshark)', async () => {
    const cap = await startTshark(s.siteA, s.wanA, 'vlan', ['vlan.id', 'vlan.etype', 'ip.src', 'ip.dst', 'icmp.type'], 3);
    await settle();
    expect(await ping(s.hostA, HOST_B)).toMatch(/3 packets transmitted, 3 received/);
    const rows = await cap.done;
    const icmp = rows.filter((r) => r[4] !== undefined && r[4] !== '');
    expect(icmp.length).toBeGreaterThanOrEqual(6);
    for (const r of icmp) {
      expect(r[0]).toBe(String(VID));
      expect(Number(r[1])).toBe(0x0800);
    }
    await tcpTransfer(s.hostA, s.hostB, HOST_B, dir);
    await tcpTransfer(s.hostB, s.hostA, HOST_A, dir);
    const t = await port(s, 'a', 'trunk');
    expect(t).toMatchObject({ type: 'system', device: s.wanA, state: 'up' });
    expect(t.options.offloads).toMatch(/gro off/);
  }, 60_000);

  it('frames on another VLAN are not delivered', async () => {
    // A frame tagged VLAN 200 from site B's trunk end.
    const frame = 'ffffffffffff' + '02aabbccdd01' + '8100' + '00c8' + '88b5' + Buffer.alloc(46, 1).toString('hex');
    const sender = `import socket, sys\ns = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\ns.bind(("${s.wanB}", 0))\ns.send(bytes.fromhex(sys.argv[1]))`;
    const cap = await startTshark(s.hostA, 'eth0', 'ether proto 0x88b5', ['eth.src'], 2);
    await settle();
    await runInNs(s.siteB, 'python3', ['-c', sender, frame]);
    expect(await cap.done).toHaveLength(0);
    const t = await port(s, 'a', 'trunk');
    expect(t.drops.action_drop).toBeGreaterThanOrEqual(1);
  });
});

describeAsRoot('GRE path MTU: a tunnel that drops and answers ICMP', () => {
  let s: Sites;
  beforeAll(async () => {
    s = baseSites('limem-', { wanMtu: 1500 });
    await startLimed(s, 'a', [{ name: 'to-b', type: 'gre', remote_ip: WAN_B, key: KEY, path_mtu: 1400, ttl: 'inherit', tos: 'inherit', mss_clamp: true }]);
    await startLimed(s, 'b', [{ name: 'to-a', type: 'gre', remote_ip: WAN_A, key: KEY, path_mtu: 1400 }]);
  }, 60_000);
  afterAll(async () => {
    await s?.destroy();
  });

  it('a 1500-byte DF ping gets "fragmentation needed" with the usable MTU; one that fits passes', async () => {
    expect(await ping(s.hostA, HOST_B)).toMatch(/3 packets transmitted, 3 received/);
    const big = await ping(s.hostA, HOST_B, ['-M', 'do', '-s', '1472'], 2);
    // 1400 − 20 (outer IPv4) − 8 (GRE with key) − 14 (inner Ethernet) = 1358.
    expect(big).toMatch(/mtu ?= ?1358/);
    const t = await port(s, 'a', 'to-b');
    expect(t.drops.tunnel_path_mtu).toBeGreaterThanOrEqual(1);
    expect(await ping(s.hostA, HOST_B, ['-M', 'do', '-s', String(1358 - 28)])).toMatch(/3 packets transmitted, 3 received/);
  });

  it('ttl/tos inherit copy the inner packet\'s into the outer header; mss_clamp lowers SYNs\' MSS to what fits', async () => {
    const cap = await startTshark(s.siteA, s.wanA, 'ip proto 47', ['ip.src', 'ip.ttl', 'ip.dsfield', 'icmp.type', 'tcp.flags.syn', 'tcp.options.mss_val'], 4);
    await settle();
    await runInNs(s.hostA, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', '-t', '33', '-Q', '0x28', HOST_B]);
    // A TCP SYN (nobody listens: the RST is enough); its MSS from a 1500-byte MTU is 1460.
    await runInNs(s.hostA, process.execPath, ['-e', `require('node:net').connect(9, '${HOST_B}').on('error', () => {})`]);
    const rows = (await cap.done).filter((r) => outer(r[0]!) === WAN_A);
    const echo = rows.filter((r) => r[3] === '8');
    expect(echo.length).toBeGreaterThanOrEqual(2);
    for (const r of echo) {
      expect(r[1]).toBe('33,33'); // outer TTL = inner TTL (limed does not route, so no decrement)
      expect(r[2]!.split(',').map(Number)).toEqual([0x28, 0x28]);
    }
    const syn = rows.find((r) => r[4] === '1' || r[4] === 'True');
    // 1400 − 28 (IPv4 + GRE with key) − 14 (Ethernet) − 20 (IPv4) − 20 (TCP) = 1318.
    expect(Number(syn?.[5])).toBe(1318);
    expect((await port(s, 'a', 'to-b')).options.mss_clamp).toBe('1318');
  });
});

describeAsRoot('GRE path MTU: a tunnel that fragments the outer packet', () => {
  let s: Sites;
  beforeAll(async () => {
    s = baseSites('limef-', { wanMtu: 1500 });
    await startLimed(s, 'a', [{ name: 'to-b', type: 'gre', remote_ip: WAN_B, key: KEY, path_mtu: 1400, fragment: true }]);
    await startLimed(s, 'b', [{ name: 'to-a', type: 'gre', remote_ip: WAN_A, key: KEY, path_mtu: 1400, fragment: true }]);
  }, 60_000);
  afterAll(async () => {
    await s?.destroy();
  });

  it('a 1500-byte DF ping arrives in outer fragments of at most 1400 bytes (tshark)', async () => {
    expect(await ping(s.hostA, HOST_B)).toMatch(/3 packets transmitted, 3 received/);
    const cap = await startTshark(s.siteA, s.wanA, 'ip proto 47 or (ip[6:2] & 0x1fff != 0)', ['ip.src', 'ip.len', 'ip.flags.mf', 'ip.frag_offset', 'ip.flags.df'], 4);
    await settle();
    expect(await ping(s.hostA, HOST_B, ['-M', 'do', '-s', '1472'])).toMatch(/3 packets transmitted, 3 received/);
    const rows = (await cap.done).map((r) => r.map(outer)).filter((r) => r[0] === WAN_A);
    const frags = rows.filter((r) => r[2] === '1' || r[2] === 'True' || Number(r[3]) > 0);
    expect(frags.length).toBeGreaterThanOrEqual(6);
    for (const r of rows) {
      expect(Number(r[1])).toBeLessThanOrEqual(1400);
      expect(r[4]).toMatch(/^(0|False)$/i);
    }
  });
});

describeWhen(ROOT && ovsAvailable(), 'root and Open vSwitch (openvswitch-switch)', 'limed interoperates with Open vSwitch over GRE', () => {
  let s: Sites;
  const dir = ROOT ? tmp() : '';
  beforeAll(async () => {
    s = baseSites('limeo-', { wanMtu: 1600 });
    await startLimed(s, 'a', [{ name: 'to-b', type: 'gre', remote_ip: WAN_B, local_ip: WAN_A, key: KEY, path_mtu: 1600 }]);
    startOvsSiteB(s, join(dir, 'ovs'), { key: KEY });
  }, 60_000);
  afterAll(async () => {
    await s?.destroy();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('hosts ping both ways between limed and Open vSwitch', async () => {
    // OVS resolves site A's tunnel address by ARP on br-phy first: allow a slow start.
    let out = '';
    for (let i = 0; i < 10 && !/ 0% packet loss/.test(out); i++) out = await ping(s.hostA, HOST_B, [], 3);
    expect(out).toMatch(/3 packets transmitted, 3 received/);
    expect(await ping(s.hostB, HOST_A)).toMatch(/3 packets transmitted, 3 received/);
    const t = await port(s, 'a', 'to-b');
    expect(t.drops).toEqual({});
  }, 60_000);

  it('carries TCP both ways byte-exact', async () => {
    await tcpTransfer(s.hostA, s.hostB, HOST_B, dir);
    await tcpTransfer(s.hostB, s.hostA, HOST_A, dir);
  }, 60_000);
});
