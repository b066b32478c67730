/**
 * TapPort and the native TAP addon against real TAP devices.
 *
 * The rig: TAP devices named `limet…` are created by TapPort, moved into a namespace
 * `limet…` where they get an IP address; frames written by hand (ICMP echo requests)
 * go in through `flush()` (lime_tap_write_batch) and the namespace kernel's replies come
 * back through the batched receive callback. Also: errors (EINVAL, EBUSY), a frame too
 * long for its slot, the device deleted under the port, close from inside onBatch, and
 * close releasing the device.
 *
 * Needs root. Not root: skipped with a visible reason; not root under CI: fails.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FrameBatch, HEADROOM } from '../../src/packet/batch.js';
import type { Port, PortState } from '../../src/io/port.js';
import { DEFAULT_TAP_QUEUE_LEN, TapError, TapPort } from '../../src/io/tap.js';
import { describeAsRoot } from '../helpers/root.js';

const SUITE = 'TapPort on real TAP devices';

// Unique names, always with the `limet` prefix (IFNAMSIZ: at most 15 bytes).
const id = ((process.pid % 46656) * 1296 + Math.floor(Math.random() * 1296)).toString(36);
const NS = `limet${id}`;
const DEV = (suffix: string): string => `limet${id}${suffix}`;

const PEER_MAC = '02:00:00:00:00:fe'; // the host "behind" the port: us, writing frames
const PEER_IP = [10, 213, 0, 1];
const NS_IP = [10, 213, 0, 2];
const NS_IP_B = [10, 213, 1, 2];
const PEER_IP_B = [10, 213, 1, 1];
const ICMP_ID = 0x4c31;

function ip(...args: string[]): string {
  return execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

function linkExists(dev: string, ns?: string): boolean {
  try {
    ip(...(ns === undefined ? [] : ['-n', ns]), 'link', 'show', 'dev', dev);
    return true;
  } catch {
    return false;
  }
}

function linkInfo(dev: string): { mtu: number; address: string; flags: string[]; txqlen: number } {
  return JSON.parse(ip('-j', 'link', 'show', 'dev', dev))[0];
}

function macBytes(mac: string): number[] {
  return mac.split(':').map((h) => parseInt(h, 16));
}

function checksum(buf: Buffer, off: number, size: number): number {
  let sum = 0;
  for (let i = 0; i < size; i += 2) sum += (buf[off + i]! << 8) | (i + 1 < size ? buf[off + i + 1]! : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Write an Ethernet + IPv4 + ICMP echo request of `size` bytes at `off`; returns size. */
function echoRequest(buf: Buffer, off: number, dstMac: string, src: number[], dst: number[], seq: number, size = 98): number {
  buf.fill(0, off, off + size);
  buf.set(macBytes(dstMac), off);
  buf.set(macBytes(PEER_MAC), off + 6);
  buf.writeUInt16BE(0x0800, off + 12);
  const ipOff = off + 14;
  buf[ipOff] = 0x45;
  buf.writeUInt16BE(size - 14, ipOff + 2);
  buf.writeUInt16BE(seq, ipOff + 4);
  buf[ipOff + 8] = 64;
  buf[ipOff + 9] = 1;
  buf.set(src, ipOff + 12);
  buf.set(dst, ipOff + 16);
  buf.writeUInt16BE(checksum(buf, ipOff, 20), ipOff + 10);
  const icmp = ipOff + 20;
  buf[icmp] = 8;
  buf.writeUInt16BE(ICMP_ID, icmp + 4);
  buf.writeUInt16BE(seq, icmp + 6);
  for (let i = icmp + 8; i < off + size; i++) buf[i] = i & 0xff;
  buf.writeUInt16BE(checksum(buf, icmp, off + size - icmp), icmp + 2);
  return size;
}

/** Echo reply's sequence number, or -1 if the frame is not one of our echo replies. */
function echoReplySeq(buf: Buffer, off: number, size: number): number {
  if (size < 42 || buf.readUInt16BE(off + 12) !== 0x0800 || buf[off + 23] !== 1) return -1;
  const icmp = off + 14 + (buf[off + 14]! & 0x0f) * 4;
  if (buf[icmp] !== 0 || buf.readUInt16BE(icmp + 4) !== ICMP_ID) return -1;
  return buf.readUInt16BE(icmp + 6);
}

async function waitFor(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Queue `count` echo requests (built in `slab`) on the port and flush them in batches of tx capacity. */
function sendEchoes(port: TapPort, slab: Buffer, dstMac: string, src: number[], dst: number[], first: number, count: number, size = 98): number {
  let sent = 0;
  for (let i = 0; i < count; i++) {
    const off = (i % port.tx.start.length) * 2048;
    port.tx.push(off, echoRequest(slab, off, dstMac, src, dst, first + i, size));
    if (port.tx.count === port.tx.start.length || i === count - 1) sent += port.flush(slab);
  }
  return sent;
}

describeAsRoot(SUITE, () => {
  const opened: TapPort[] = [];
  const open = (...args: Parameters<typeof TapPort.open>): TapPort => {
    const port = TapPort.open(...args);
    opened.push(port);
    return port;
  };

  afterAll(() => {
    for (const port of opened) port.close();
    try {
      ip('netns', 'del', NS);
    } catch {
      /* not created */
    }
    for (const suffix of ['a', 'b', 'c', 'd', 'e']) {
      if (linkExists(DEV(suffix))) ip('link', 'del', DEV(suffix));
    }
  });

  it('creates the device with the MTU and MAC asked for, up; close is idempotent and removes it', () => {
    const port = open({ name: 'vm1', number: 1, device: DEV('c'), mtu: 1400, mac: '02:00:00:aa:bb:01' });
    expect(port.device).toBe(DEV('c'));
    expect(port.mac).toBe('02:00:00:aa:bb:01');
    expect(port.state).toBe('up');
    const link = linkInfo(DEV('c'));
    expect(link.mtu).toBe(1400);
    expect(link.txqlen).toBe(DEFAULT_TAP_QUEUE_LEN); // deeper than Linux's 1000: rides out pauses
    expect(link.address).toBe('02:00:00:aa:bb:01');
    expect(link.flags).toContain('UP');

    port.close();
    port.close();
    expect(port.state).toBe('down');
    expect(linkExists(DEV('c'))).toBe(false);
    // A flush after close drops (counted) instead of writing to a stale fd.
    port.tx.push(0, 60);
    expect(port.flush(Buffer.alloc(64))).toBe(0);
    expect(port.ioCounters().txPortDown).toBe(1);
  });

  it('keeps the kernel MAC when none is given, and lets the kernel pick a name from a pattern', () => {
    const port = open({ name: 'vm2', number: 2, device: `limet${id.slice(0, 6)}%d` });
    expect(port.device).toMatch(new RegExp(`^limet${id.slice(0, 6)}\\d+$`));
    expect(port.mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    expect(linkInfo(port.device).address).toBe(port.mac);
    expect(linkInfo(port.device).mtu).toBe(1500);
    port.close();
    const q = open({ name: 'vm3', number: 3, device: DEV('e'), txQueueLen: 256 });
    expect(linkInfo(DEV('e')).txqlen).toBe(256);
    q.close();
    expect(linkExists(port.device)).toBe(false);
  });

  it('reports errors with the errno name and the device name', () => {
    const long = `limet${id}xxxxxxxxxxxxxxxx`;
    let err: unknown;
    try {
      open({ name: 'x', number: 9, device: long });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TapError);
    expect((err as TapError).code).toBe('EINVAL');
    expect((err as TapError).errno).toBe(-22);
    expect((err as TapError).message).toMatch(new RegExp(`^EINVAL: cannot create TAP ${long}: .*at most 15`));

    const first = open({ name: 'y', number: 10, device: DEV('d') });
    err = undefined;
    try {
      open({ name: 'y2', number: 11, device: DEV('d') });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TapError);
    expect((err as TapError).code).toBe('EBUSY');
    expect((err as TapError).device).toBe(DEV('d'));
    expect((err as TapError).message).toBe(`EBUSY: cannot create TAP ${DEV('d')}: device busy (another process holds it)`);

    expect(() => open({ name: 'z', number: 12, device: DEV('e'), mac: '01:00:5e:00:00:01' })).toThrow(
      new RegExp(`^EADDRNOTAVAIL: cannot set MAC of ${DEV('e')}`),
    );
    expect(linkExists(DEV('e'))).toBe(false); // a failed open leaves nothing behind
    expect(() => open({ name: 'z', number: 12, device: DEV('e'), mtu: 100_000 })).toThrow(/^EINVAL: cannot set MTU 100000 on/);
    expect(() => open({ name: 'z', number: 12, device: DEV('e'), mac: 'nope' })).toThrow(/^EINVAL: cannot set MAC of .*"nope"/);
    first.close();
  });

  describe('in a network namespace', () => {
    const batch = new FrameBatch();
    const txSlab = Buffer.alloc(64 * 2048);
    let a: TapPort;
    let b: TapPort;
    const batchSizes: number[] = [];
    let rxBytes = 0;
    const replies = new Set<number>();
    const statuses: { port: Port; state: PortState; reason: string }[] = [];
    const bCalls: number[] = [];

    beforeAll(() => {
      ip('netns', 'add', NS);
      a = open({ name: 'a', number: 1, device: DEV('a'), mac: '02:00:00:21:30:0a' });
      b = open({ name: 'b', number: 2, device: DEV('b'), mac: '02:00:00:21:30:0b' });
      for (const [port, addr, peer] of [
        [a, NS_IP, PEER_IP],
        [b, NS_IP_B, PEER_IP_B],
      ] as const) {
        ip('link', 'set', port.device, 'netns', NS);
        ip('-n', NS, 'addr', 'add', `${addr.join('.')}/24`, 'dev', port.device);
        ip('-n', NS, 'link', 'set', port.device, 'up');
        ip('-n', NS, 'neigh', 'replace', peer.join('.'), 'lladdr', PEER_MAC, 'dev', port.device, 'nud', 'permanent');
      }
      const onStatus = (port: Port, state: PortState, reason: string): void => {
        statuses.push({ port, state, reason });
      };
      a.start(
        batch,
        (port) => {
          expect(port).toBe(a);
          expect(batch.inPort).toBe(1);
          batchSizes.push(batch.count);
          for (let i = 0; i < batch.count; i++) {
            expect(batch.start[i]).toBe(i * batch.slotSize + HEADROOM);
            rxBytes += batch.len[i]!;
            const seq = echoReplySeq(batch.slab, batch.start[i]!, batch.len[i]!);
            if (seq >= 0) replies.add(seq);
          }
        },
        onStatus,
      );
      // Port b closes itself from inside its first callback.
      b.start(
        batch,
        () => {
          bCalls.push(batch.count);
          b.close();
        },
        onStatus,
      );
    });

    it('frames written with flush() reach the kernel, and its replies come back in batches', async () => {
      const sent = sendEchoes(a, txSlab, a.mac, PEER_IP, NS_IP, 0, 200);
      expect(sent).toBe(200);
      await waitFor('200 echo replies', () => replies.size === 200);
      for (let seq = 0; seq < 200; seq++) expect(replies.has(seq)).toBe(true);
      // Many frames were queued at once: some drain delivered more than one frame.
      expect(Math.max(...batchSizes)).toBeGreaterThan(1);
      expect(Math.max(...batchSizes)).toBeLessThanOrEqual(batch.capacity);

      const c = a.tapCounters();
      expect(c.txPackets).toBe(200);
      expect(c.txBytes).toBe(200 * 98);
      expect(c.txQueueFull + c.txPortDown + c.txError).toBe(0);
      expect(c.rxPackets).toBe(batchSizes.reduce((x, y) => x + y, 0));
      expect(c.rxBatches).toBe(batchSizes.length);
      expect(c.rxBytes).toBe(rxBytes);
      // The same numbers through the raw typed-array view.
      expect(a.counters[a.counterIndex.rxPackets]).toBe(c.rxPackets);
      expect(a.counters[a.counterIndex.txBytes]).toBe(200 * 98);
      expect(a.ioCounters()).toMatchObject({ txPackets: 200, txBytes: 200 * 98, rxTooLong: 0 });
    });

    it('counts its time on the event loop, and a wake-up that leaves frames queued as a backlog', async () => {
      const busy0 = a.busyNs();
      const full0 = a.tapCounters().rxFullPolls;
      expect(busy0).toBeGreaterThan(0); // the previous test's drains took time
      // Queued while the loop is busy here: more replies than one wake-up reads (4 rounds
      // of a full batch), so the first wake-up stops with frames still queued.
      const n = 4 * batch.capacity + 64;
      const seen0 = replies.size;
      expect(sendEchoes(a, txSlab, a.mac, PEER_IP, NS_IP, 5000, n)).toBe(n);
      await waitFor(`${n} more echo replies`, () => replies.size === seen0 + n);
      expect(a.tapCounters().rxFullPolls).toBeGreaterThan(full0);
      expect(a.busyNs()).toBeGreaterThan(busy0);
    });

    it('counts a frame too long for its slot as rx_too_long instead of delivering it', async () => {
      ip('-n', NS, 'link', 'set', a.device, 'mtu', '9000');
      const bigSlab = Buffer.alloc(8192);
      a.tx.push(0, echoRequest(bigSlab, 0, a.mac, PEER_IP, NS_IP, 1000, 4000));
      expect(a.flush(bigSlab)).toBe(1);
      await waitFor('rx_too_long', () => a.ioCounters().rxTooLong === 1);
      expect(replies.has(1000)).toBe(false);
      // The port still works afterwards.
      sendEchoes(a, txSlab, a.mac, PEER_IP, NS_IP, 1001, 1);
      await waitFor('echo reply 1001', () => replies.has(1001));
    });

    it('a port closed from inside its own onBatch stops cleanly', async () => {
      sendEchoes(b, txSlab, b.mac, PEER_IP_B, NS_IP_B, 0, 5);
      await waitFor('port b callback', () => bCalls.length > 0);
      await new Promise((r) => setTimeout(r, 50));
      expect(bCalls.length).toBe(1);
      expect(b.state).toBe('down');
      expect(statuses.filter((s) => s.port === b)).toHaveLength(0); // close is not a failure
      expect(linkExists(b.device, NS)).toBe(false);
    });

    it('a device set administratively down drops (counted) but does not take the port down', async () => {
      ip('-n', NS, 'link', 'set', a.device, 'down');
      const before = a.ioCounters();
      expect(sendEchoes(a, txSlab, a.mac, PEER_IP, NS_IP, 2000, 3)).toBe(0);
      expect(a.ioCounters().txPortDown).toBe(before.txPortDown + 3);
      expect(a.state).toBe('up');
      ip('-n', NS, 'link', 'set', a.device, 'up');
      ip('-n', NS, 'neigh', 'replace', PEER_IP.join('.'), 'lladdr', PEER_MAC, 'dev', a.device, 'nud', 'permanent');
      expect(sendEchoes(a, txSlab, a.mac, PEER_IP, NS_IP, 2003, 1)).toBe(1);
      await waitFor('echo reply 2003', () => replies.has(2003));
      expect(statuses).toHaveLength(0);
    });

    it('deleting the device under the port takes it down once; later flushes count tx_port_down', async () => {
      ip('-n', NS, 'link', 'del', a.device);
      await waitFor('port down', () => a.state === 'down');
      await new Promise((r) => setTimeout(r, 50));
      expect(statuses).toHaveLength(1);
      expect(statuses[0]!.port).toBe(a);
      expect(statuses[0]!.state).toBe('down');
      expect(statuses[0]!.reason).toMatch(new RegExp(`^device ${a.device} gone: E[A-Z]+`));

      const before = a.ioCounters();
      expect(before.txPortDown).toBe(3); // from the admin-down test
      a.tx.push(0, 98);
      a.tx.push(2048, 98);
      expect(a.flush(txSlab)).toBe(0);
      expect(a.tx.count).toBe(0);
      expect(a.ioCounters().txPortDown).toBe(before.txPortDown + 2);
      expect(a.ioCounters().txPackets).toBe(before.txPackets);
      a.close();
      a.close();
      expect(statuses).toHaveLength(1);
    });
  });
});
