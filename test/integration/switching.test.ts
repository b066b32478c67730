/**
 * limed as a MAC-learning switch between real TAP devices, with hosts in network
 * namespaces and real traffic: ping, TCP, ARP broadcast, crafted raw frames, a MAC move,
 * and a flood of random source MACs.
 */
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LimedProcess } from '../../src/demo/limed-process.js';
import { Netns } from '../../src/demo/netns.js';
import { describeAsRoot } from '../helpers/root.js';
import { RAWFRAMES, UDPSEQ, runInNs, startInNs } from '../helpers/proc.js';

const PREFIX = 'limei-';
const MAC_TABLE_CAPACITY = 2048;
const hosts = [1, 2, 3, 4].map((i) => ({
  ns: `${PREFIX}h${i}`,
  port: `p${i}`,
  device: `limei-p${i}`,
  mac: `02:00:00:88:00:0${i}`,
  ip: `10.88.0.${i}`,
}));
const [h1, h2, h3, h4] = hosts as [(typeof hosts)[0], (typeof hosts)[0], (typeof hosts)[0], (typeof hosts)[0]];

function hex(mac: string): string {
  return mac.replace(/:/g, '');
}

/** A frame of exactly `size` bytes: Ethernet header (optionally tagged) + a numbered pattern. */
function craft(dst: string, src: string, size: number, seq: number, vlan?: { vid: number; pcp: number }): string {
  const tag = vlan === undefined ? '' : '8100' + ((vlan.pcp << 13) | vlan.vid).toString(16).padStart(4, '0');
  const header = hex(dst) + hex(src) + tag + '88b5';
  const payload = Buffer.alloc(size - header.length / 2);
  for (let i = 0; i < payload.length; i++) payload[i] = (i + seq * 7) & 0xff;
  payload.writeUInt16BE(seq, 0);
  return header + payload.toString('hex');
}

function arpRequest(srcMac: string, srcIp: string, targetIp: string, op = 1, dst = 'ff:ff:ff:ff:ff:ff'): string {
  const ip = (s: string) => Buffer.from(s.split('.').map(Number)).toString('hex');
  return (
    hex(dst) + hex(srcMac) + '0806' + '0001' + '0800' + '06' + '04' + op.toString(16).padStart(4, '0') +
    hex(srcMac) + ip(srcIp) + (op === 1 ? '000000000000' : hex(srcMac)) + ip(targetIp)
  ).padEnd(120, '0');
}

describeAsRoot('limed switching between TAP ports (netns, real traffic)', () => {
  const net = new Netns(PREFIX);
  let limed: LimedProcess;

  beforeAll(async () => {
    Netns.cleanupStale(PREFIX);
    limed = new LimedProcess({
      site: 'itest',
      ports: hosts.map((h) => ({ name: h.port, device: h.device, mtu: 1500 })),
      macTable: { capacity: MAC_TABLE_CAPACITY },
    });
    await limed.start();
    for (const h of hosts) {
      const ns = net.add(h.ns.slice(PREFIX.length));
      net.exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
      net.exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.default.disable_ipv6=1']);
      net.attach(h.device, ns, { rename: 'eth0' });
      net.exec(ns, 'ip', ['link', 'set', 'eth0', 'down']);
      net.exec(ns, 'ip', ['link', 'set', 'eth0', 'address', h.mac]);
      net.exec(ns, 'ip', ['addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
      net.exec(ns, 'ip', ['link', 'set', 'eth0', 'up']);
    }
  });

  afterAll(async () => {
    const code = await limed?.stop();
    net.destroy();
    limed?.cleanup();
    expect(code).toBe(0);
  });

  it('hosts ping each other through limed', async () => {
    for (const [a, b] of [
      [h1, h2],
      [h2, h3],
      [h3, h1],
      [h4, h1],
    ] as const) {
      const out = await runInNs(a.ns, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', b.ip]);
      expect(out).toMatch(/3 packets transmitted, 3 received/);
    }
    const show = await limed.showJson();
    const p1 = show.ports.find((p: { name: string }) => p.name === 'p1');
    expect(p1.state).toBe('up');
    expect(p1.rx_packets).toBeGreaterThanOrEqual(6);
    expect(p1.tx_packets).toBeGreaterThanOrEqual(6);
    const fdb = JSON.parse((await limed.ctl(['fdb/show', '--json'])).stdout);
    const entry = fdb.entries.find((e: { mac: string }) => e.mac === h2.mac);
    expect(entry).toMatchObject({ port: 'p2', vlan: 0 });
  });

  it('carries a TCP transfer byte-exact', async () => {
    const data = randomBytes(4 * 1024 * 1024);
    const file = join(limed.dir, 'tcp-payload.bin');
    writeFileSync(file, data);
    const want = createHash('sha256').update(data).digest('hex');
    const server = `
      const net = require('node:net'); const crypto = require('node:crypto');
      const h = crypto.createHash('sha256'); let n = 0;
      const srv = net.createServer((s) => { s.on('data', (d) => { h.update(d); n += d.length; });
        s.on('end', () => { console.log(JSON.stringify({ n, sha: h.digest('hex') })); srv.close(); }); });
      srv.listen(5001, '${h2.ip}', () => process.stderr.write('READY\\n'));`;
    const srv = await startInNs(h2.ns, process.execPath, ['-e', server]);
    const client = `
      const net = require('node:net'); const fs = require('node:fs');
      const s = net.connect(5001, '${h2.ip}', () => s.end(fs.readFileSync(${JSON.stringify(file)})));`;
    await runInNs(h1.ns, process.execPath, ['-e', client]);
    const got = JSON.parse(await srv.done);
    expect(got.n).toBe(data.length);
    expect(got.sha).toBe(want);
  });

  it('floods an ARP broadcast to every other host, byte-exact', async () => {
    const frame = arpRequest(h1.mac, h1.ip, '10.88.0.77');
    const receivers = await Promise.all([h2, h3, h4].map((h) => startInNs(h.ns, 'python3', [RAWFRAMES, 'recv', 'eth0', '1.5'])));
    await runInNs(h1.ns, 'python3', [RAWFRAMES, 'send', 'eth0'], frame + '\n');
    for (const r of receivers) {
      const lines = (await r.done).split('\n');
      expect(lines).toContain(frame);
    }
  });

  it('delivers crafted frames of 60 to 1514 bytes, and VLAN-tagged ones, byte-exact', async () => {
    const sizes = [60, 61, 64, 100, 128, 512, 1000, 1280, 1500, 1513, 1514];
    const untagged = sizes.map((s, i) => craft(h3.mac, h1.mac, s, i));
    const tagged = [
      craft(h3.mac, h1.mac, 64, 100, { vid: 100, pcp: 0 }),
      craft(h3.mac, h1.mac, 1000, 101, { vid: 100, pcp: 5 }),
      craft(h3.mac, h1.mac, 1518, 102, { vid: 4094, pcp: 7 }),
    ];
    const at3 = await startInNs(h3.ns, 'python3', [RAWFRAMES, 'recv', 'eth0', '2']);
    const at2 = await startInNs(h2.ns, 'python3', [RAWFRAMES, 'recv', 'eth0', '2']);
    await runInNs(h1.ns, 'python3', [RAWFRAMES, 'send', 'eth0'], [...untagged, ...tagged].join('\n') + '\n');
    const got3 = new Set((await at3.done).split('\n'));
    const got2 = new Set((await at2.done).split('\n'));
    for (const f of [...untagged, ...tagged]) expect(got3.has(f), `frame of ${f.length / 2} bytes at h3`).toBe(true);
    // h3's MAC is learned on p3 (VLAN 0), so untagged unicast frames go there only.
    for (const f of untagged) expect(got2.has(f)).toBe(false);
    // On VLAN 100 and 4094 h3's MAC is unknown: flooded, so h2 sees them too.
    for (const f of tagged) expect(got2.has(f)).toBe(true);
  });

  it('follows a MAC that moves to another port from its gratuitous ARP on, losing only frames sent during the move', async () => {
    // h4 takes over h2's identity (MAC and IP), as a migrated VM would at its new port.
    net.exec(h4.ns, 'ip', ['link', 'set', 'eth0', 'down']);
    net.exec(h4.ns, 'ip', ['addr', 'flush', 'dev', 'eth0']);
    net.exec(h4.ns, 'ip', ['link', 'set', 'eth0', 'address', h2.mac]);
    net.exec(h4.ns, 'ip', ['addr', 'add', `${h2.ip}/24`, 'dev', 'eth0']);
    const COUNT = 2000;
    const INTERVAL_MS = 2;
    const oldRx = await startInNs(h2.ns, process.execPath, [UDPSEQ, 'recv', '7000', '6']);
    const newRx = await startInNs(h4.ns, process.execPath, [UDPSEQ, 'recv', '7000', '6']);
    const garp = await startInNs(h4.ns, 'python3', [RAWFRAMES, 'send', 'eth0']);
    const sender = runInNs(h1.ns, process.execPath, [UDPSEQ, 'send', h2.ip, '7000', String(COUNT), String(INTERVAL_MS)]);
    await new Promise((r) => setTimeout(r, 1500));
    // The move: the old attachment goes away, the new one comes up and announces itself.
    net.exec(h2.ns, 'ip', ['link', 'set', 'eth0', 'down']);
    net.exec(h4.ns, 'ip', ['link', 'set', 'eth0', 'up']);
    garp.stdin.end(arpRequest(h2.mac, h2.ip, h2.ip) + '\n');
    await garp.done;
    expect(JSON.parse(await sender).sent).toBe(COUNT);
    const before: number[] = JSON.parse(await oldRx.done);
    const after: number[] = JSON.parse(await newRx.done);
    expect(before.length).toBeGreaterThan(100);
    expect(after.length).toBeGreaterThan(100);
    // Old port: an unbroken run from 0; new port: an unbroken run to the end.
    expect(before).toEqual(Array.from({ length: before.length }, (_, i) => i));
    const first = after[0]!;
    expect(after).toEqual(Array.from({ length: COUNT - first }, (_, i) => first + i));
    const lost = first - before.length;
    expect(lost).toBeGreaterThanOrEqual(0);
    // Only frames sent while the move was under way (a few ms of ip commands) are lost.
    expect(lost).toBeLessThan(50);
    const fdb = JSON.parse((await limed.ctl(['fdb/show', '--json'])).stdout);
    expect(fdb.entries.find((e: { mac: string }) => e.mac === h2.mac)).toMatchObject({ port: 'p4' });
  });

  it('stays at its bound under a flood of random source MACs and keeps forwarding', async () => {
    const FLOOD = 5000;
    await runInNs(h1.ns, 'python3', [RAWFRAMES, 'flood', 'eth0', String(FLOOD), '02:00:00:00:ee:ee']);
    await new Promise((r) => setTimeout(r, 300));
    const show = await limed.showJson();
    expect(show.mac_table.capacity).toBe(MAC_TABLE_CAPACITY);
    expect(show.mac_table.size).toBe(MAC_TABLE_CAPACITY);
    expect(show.mac_table.evictions).toBeGreaterThanOrEqual(FLOOD - MAC_TABLE_CAPACITY);
    const out = await runInNs(h1.ns, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', h3.ip]);
    expect(out).toMatch(/3 packets transmitted, 3 received/);
  });
});
