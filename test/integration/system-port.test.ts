/**
 * limed with a `system` port: an existing veth end attached through AF_PACKET, against
 * real hosts and real TCP (issue 4), and the port riding out its link going down and up.
 *
 *   host X (${p}x)                       switch (${p}s): limed                    host Y (${p}y)
 *   eth0 10.62.0.1 ══ veth ══ ${id}xs ── [ uplink (system) · host (tap) ] ── tap ── eth0 10.62.0.2
 *   offloads ON (tx, TSO, GSO)
 *
 * Host X keeps the Linux defaults on its end of the veth (TX checksum offload, TSO, GSO on),
 * so what limed's system port reads are frames with unfinished checksums and TCP
 * super-frames of up to 64 KiB: the transfers complete byte-exact only if the reader
 * finished and segmented every one of them, and its counters (in `limectl show`'s options)
 * prove it did. Host Y sits behind a TAP port.
 *
 * Everything created is named `limes…` (namespaces `limes-<id>-…`, links `limes<id>…`) and
 * removed afterwards. Needs root. Not root: skipped with a visible reason; under CI: fails.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LimedProcess } from '../../src/demo/limed-process.js';
import { Netns, run } from '../../src/demo/netns.js';
import { describeAsRoot, ROOT } from '../helpers/root.js';
import { runInNs, tcpTransfer } from '../helpers/proc.js';

// Unique names: namespaces `limes-<id>-…`, links `limes<id>…` (IFNAMSIZ: at most 15 bytes).
const id = ((process.pid % 1296) * 1296 + Math.floor(Math.random() * 1296)).toString(36).padStart(4, '0');
const PREFIX = `limes-${id}-`;
const X_IP = '10.62.0.1';
const Y_IP = '10.62.0.2';
const MiB = 1024 * 1024;

interface PortJson {
  name: string;
  type: string;
  device: string;
  state: 'up' | 'down';
  rx_packets: number;
  tx_packets: number;
  drops: Record<string, number>;
  options: Record<string, string>;
}

/** `count` pings; ping's output (its error message when it fails). */
function ping(ns: string, ip: string, count = 3, extra: readonly string[] = []): Promise<string> {
  return runInNs(ns, 'ping', ['-c', String(count), '-i', '0.2', '-W', '1', ...extra, ip]).catch((e: Error) => e.message);
}

/** Pings until all `count` come back (a link that just came up, ARP to redo), at most `tries` rounds. */
async function pingUntil(ns: string, ip: string, tries = 10, count = 3): Promise<string> {
  let out = '';
  for (let i = 0; i < tries; i++) {
    out = await ping(ns, ip, count);
    if (out.includes(`${count} packets transmitted, ${count} received`)) return out;
  }
  return out;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function macOf(ns: string, dev: string): string {
  return (JSON.parse(run('ip', ['-n', ns, '-j', 'link', 'show', 'dev', dev])) as { address: string }[])[0]!.address;
}

/** The port-status lines limed logged (JSON), for `port`. */
function statusLog(limed: LimedProcess, port: string): { state: string; reason: string }[] {
  const out: { state: string; reason: string }[] = [];
  for (const line of limed.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const j = JSON.parse(line) as { port?: string; state?: string; reason?: string };
    if (j.port === port && j.state !== undefined && j.reason !== undefined) out.push({ state: j.state, reason: j.reason });
  }
  return out;
}

describeAsRoot('a system port on an existing veth (limed): real traffic both ways, offloads handled, link flaps survived', () => {
  const net = new Netns(PREFIX);
  const dir = ROOT ? mkdtempSync(join(tmpdir(), 'limes-')) : '';
  const swDev = `limes${id}xs`;
  const tapDev = `limes${id}ty`;
  let sw = '';
  let hx = '';
  let hy = '';
  let limed: LimedProcess | undefined;

  const uplink = async (): Promise<PortJson> => {
    const show = (await limed!.showJson()) as { ports: PortJson[] };
    return show.ports.find((p) => p.name === 'uplink')!;
  };
  const waitState = async (state: 'up' | 'down', timeoutMs = 3000): Promise<PortJson> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const p = await uplink();
      if (p.state === state || Date.now() > deadline) return p;
      await sleep(50);
    }
  };

  beforeAll(async () => {
    Netns.cleanupStale(PREFIX);
    for (const suffix of ['s', 'x', 'y']) {
      const ns = net.add(suffix);
      net.exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    }
    [sw, hx, hy] = ['s', 'x', 'y'].map((s) => `${PREFIX}${s}`) as [string, string, string];
    // Host X: its veth end with the offloads Linux gives a veth by default, stated explicitly.
    run('ip', ['-n', hx, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', swDev, 'netns', sw]);
    net.exec(hx, 'ip', ['addr', 'add', `${X_IP}/24`, 'dev', 'eth0']);
    net.exec(hx, 'ip', ['link', 'set', 'eth0', 'up']);
    net.exec(hx, 'ethtool', ['-K', 'eth0', 'tx', 'on', 'sg', 'on', 'tso', 'on', 'gso', 'on']);
    net.exec(sw, 'ip', ['link', 'set', swDev, 'up']);
    limed = new LimedProcess({
      site: 'limes',
      netns: sw,
      ports: [
        { name: 'host', device: tapDev, mtu: 1500 },
        { name: 'uplink', type: 'system', device: swDev },
      ],
    });
    await limed.start();
    // Host Y behind the TAP port.
    run('ip', ['-n', sw, 'link', 'set', 'dev', tapDev, 'netns', hy]);
    net.exec(hy, 'ip', ['link', 'set', tapDev, 'name', 'eth0']);
    net.exec(hy, 'ip', ['addr', 'add', `${Y_IP}/24`, 'dev', 'eth0']);
    net.exec(hy, 'ip', ['link', 'set', 'eth0', 'up']);
  }, 60_000);

  afterAll(async () => {
    const code = await limed?.stop();
    net.destroy();
    limed?.cleanup();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
    expect(code ?? 0).toBe(0);
  });

  it('hosts ping both ways; the system port reads what X sent and never its own frames (fdb, counters)', async () => {
    expect(await pingUntil(hx, Y_IP, 3, 1)).toMatch(/1 received/); // ARP both ways
    expect(await ping(hy, X_IP)).toMatch(/3 packets transmitted, 3 received/);
    const before = await uplink();
    const N = 10;
    expect(await ping(hx, Y_IP, N)).toMatch(new RegExp(`${N} packets transmitted, ${N} received`));
    const after = await uplink();
    // N echo requests, perhaps an ARP probe or two; an echo of what limed sends would double it.
    expect(after.rx_packets - before.rx_packets).toBeGreaterThanOrEqual(N);
    expect(after.rx_packets - before.rx_packets).toBeLessThanOrEqual(N + 3);
    expect(after.tx_packets - before.tx_packets).toBeGreaterThanOrEqual(N);
    expect(after.tx_packets - before.tx_packets).toBeLessThanOrEqual(N + 3);
    expect(after).toMatchObject({ type: 'system', device: swDev, state: 'up' });
    expect(after.drops).toEqual({});

    const fdb = JSON.parse((await limed!.ctl(['fdb/show', '--json'])).stdout) as { entries: { port: string; mac: string }[] };
    const xMac = macOf(hx, 'eth0');
    const yMac = macOf(hy, 'eth0');
    expect(fdb.entries.filter((e) => e.mac === yMac).map((e) => e.port)).toEqual(['host']);
    expect(fdb.entries.filter((e) => e.mac === xMac).map((e) => e.port)).toEqual(['uplink']);
    // Nothing limed sent out of the uplink came back in: no MAC but X's learned there.
    expect(fdb.entries.filter((e) => e.port === 'uplink').map((e) => e.mac)).toEqual([xMac]);
  });

  it('carries 16 MiB of TCP each way byte-exact from a host with TSO/GSO/checksum offload on: super-frames segmented, checksums completed, none dropped', async () => {
    const k = net.exec(hx, 'ethtool', ['-k', 'eth0']);
    expect(k).toMatch(/^tx-checksumming: on/m);
    expect(k).toMatch(/^tcp-segmentation-offload: on/m);
    expect(k).toMatch(/^generic-segmentation-offload: on/m);
    const before = await uplink();
    const msXY = await tcpTransfer(hx, hy, Y_IP, dir, 16 * MiB);
    const msYX = await tcpTransfer(hy, hx, X_IP, dir, 16 * MiB);
    const p = await uplink();
    console.info(`system port TCP: X→Y 16 MiB in ${msXY} ms, Y→X 16 MiB in ${msYX} ms; reader: ${JSON.stringify(p.options)}`);
    // X sent TSO super-frames and partial checksums; the reader finished them all.
    expect(Number(p.options.rx_gso_segmented)).toBeGreaterThan(0);
    expect(Number(p.options.rx_csum_completed)).toBeGreaterThan(0);
    expect(p.options.rx_gso_dropped).toBe('0');
    expect(p.drops).not.toHaveProperty('rx_offload_unsupported');
    expect(p.drops).not.toHaveProperty('rx_too_long');
    expect(p.rx_packets - before.rx_packets).toBeGreaterThan((16 * MiB) / 1500);
    expect(p.tx_packets - before.tx_packets).toBeGreaterThan((16 * MiB) / 1500);
    // The switch end's own offloads were turned off on attach, and show says so.
    expect(p.options.offloads).toMatch(/gro off/);
    expect(p.options.offloads).toMatch(/tso off/);
    const human = (await limed!.ctl(['show'])).stdout;
    expect(human).toMatch(/^uplink: offloads=gro off, .*rx_gso_segmented=\d+/m);
    expect(net.exec(sw, 'ethtool', ['-k', swDev])).toMatch(/^generic-receive-offload: off/m);
  }, 180_000);

  it('its link goes down: traffic stops, the port is down (show, logs), frames sent to it are counted; up again: it forwards again', async () => {
    const before = await uplink();
    expect(before.state).toBe('up');
    net.exec(sw, 'ip', ['link', 'set', swDev, 'down']);
    const down = await waitState('down');
    expect(down.state).toBe('down');
    expect(down.options.down_reason).toMatch(new RegExp(`^link down: ${swDev} is down \\(ENETDOWN\\)`));
    expect(Number(down.options.rx_link_down)).toBe(Number(before.options.rx_link_down) + 1);
    expect(statusLog(limed!, 'uplink').at(-1)).toEqual({ state: 'down', reason: down.options.down_reason });

    // No traffic while down, either way; a frame sent out of the port is counted, not thrown.
    expect(await ping(hx, Y_IP, 2)).not.toMatch(/ [12] received/);
    expect(await ping(hy, X_IP, 2)).not.toMatch(/ [12] received/);
    const frame = 'ffffffffffff' + '02aabbccdd01' + '88b5' + '00'.repeat(46);
    const out = await limed!.ctl(['packet-out', `in_port=host,packet=${frame},actions=output:uplink`]);
    expect(out.stderr).toBe('');
    const stillDown = await uplink();
    expect(stillDown.state).toBe('down');
    expect(stillDown.drops.port_down ?? 0).toBe((before.drops.port_down ?? 0) + 1);

    net.exec(sw, 'ip', ['link', 'set', swDev, 'up']);
    const up = await waitState('up');
    expect(up.state).toBe('up');
    expect(up.options.down_reason).toBeUndefined();
    expect(statusLog(limed!, 'uplink').at(-1)).toEqual({ state: 'up', reason: `link up: ${swDev} is up again` });
    expect(await pingUntil(hx, Y_IP)).toMatch(/3 packets transmitted, 3 received/);
    expect(await ping(hy, X_IP)).toMatch(/3 packets transmitted, 3 received/);
    // The same socket reads again: nothing was reopened.
    expect((await uplink()).rx_packets).toBeGreaterThan(up.rx_packets);

    // A second flap, quicker than the port looks at its link: survived too.
    net.exec(sw, 'ip', ['link', 'set', swDev, 'down']);
    net.exec(sw, 'ip', ['link', 'set', swDev, 'up']);
    await sleep(500);
    expect((await uplink()).state).toBe('up');
    expect(await pingUntil(hx, Y_IP)).toMatch(/3 packets transmitted, 3 received/);
    expect(Number((await uplink()).options.rx_link_down)).toBe(Number(before.options.rx_link_down) + 2);
  }, 60_000);

  it('its interface is deleted: the port goes down for good with the reason (show, logs); a new interface of the same name is not picked up', async () => {
    net.exec(sw, 'ip', ['link', 'del', swDev]); // both veth ends: host X's eth0 too
    const gone = await waitState('down');
    expect(gone.state).toBe('down');
    expect(gone.options.down_reason).toBe(`device ${swDev} gone: ENODEV`);
    expect(statusLog(limed!, 'uplink').at(-1)).toEqual({ state: 'down', reason: `device ${swDev} gone: ENODEV` });

    // Same name, another interface: the port stays down (its socket was bound to the old one).
    run('ip', ['-n', sw, 'link', 'add', swDev, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', hx]);
    net.exec(sw, 'ip', ['link', 'set', swDev, 'up']);
    await sleep(600);
    const after = await uplink();
    expect(after.state).toBe('down');
    expect(after.options.down_reason).toBe(`device ${swDev} gone: ENODEV`);
    // The daemon goes on; its other port is untouched.
    const show = (await limed!.showJson()) as { ports: PortJson[] };
    expect(show.ports.find((p) => p.name === 'host')!.state).toBe('up');
  });
});
