/**
 * The native addon's non-TAP fds against the real kernel, driven through the binding
 * directly: raw IPv4 sockets (GRE), AF_PACKET sockets on veth ends, interface info and
 * ethtool offloads, and the virtio-net (PACKET_VNET_HDR) drain that completes offloaded
 * checksums and cuts GSO super-frames.
 *
 * A socket belongs to the network namespace it was created in, so everything that needs
 * a namespace runs in a small Node child (written to a temporary directory, loading the
 * built addon directly) started with `ip netns exec`; it prints JSON results. The
 * vnet-hdr test builds a two-port L2 forwarder in such a child — hosts A and B in their own
 * namespaces, each behind a veth pair whose other end the forwarder opens with
 * LIME_PACKET_F_VNET_HDR — and runs UDP (UDP_SEGMENT) and TCP transfers with the hosts'
 * offloads on: the transfers only complete if every super-frame was cut correctly and
 * every checksum completed.
 *
 * Everything created is named `limens…` (namespaces `limens-<id>-…`, links `limens<id>…`)
 * and removed afterwards. Needs root. Not root: skipped with a visible reason; under CI: fails.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Netns, run, waitFor } from '../../src/demo/netns.js';
import { loadNative, packageRoot } from '../../src/io/native.js';
import { describeAsRoot } from '../helpers/root.js';
import { runInNs, startInNs } from '../helpers/proc.js';

const SUITE = 'native raw IPv4 and AF_PACKET sockets, offloads, virtio-net drain';

// Unique names: namespaces `limens-<id>-…`, links `limens<id>…` (IFNAMSIZ: at most 15 bytes).
const id = ((process.pid % 1296) * 1296 + Math.floor(Math.random() * 1296)).toString(36).padStart(4, '0');
const PREFIX = `limens-${id}-`;
const DEV = (suffix: string): string => `limens${id}${suffix}`;
const ADDON = join(packageRoot(), 'native', 'build', 'Release', 'lime_tap.node');

/**
 * The child: `node child.cjs MODE 'JSON-ARGS'`, addon path in LIME_ADDON. Prints JSON
 * lines on stdout, READY on stderr when it is receiving.
 */
const CHILD = String.raw`'use strict';
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const net = require('node:net');
const dgram = require('node:dgram');
const readline = require('node:readline');
const addon = require(process.env.LIME_ADDON);

const HEADROOM = 128, SLOT = 2048, CAP = 64;
const mode = process.argv[2];
const arg = process.argv[3] ? JSON.parse(process.argv[3]) : {};
const print = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const ready = () => process.stderr.write('READY\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ipNum = (s) => s.split('.').reduce((a, b) => a * 256 + Number(b), 0);

function open(fd) {
  const h = Buffer.alloc(addon.sizeof_lime_tap);
  addon.lime_tap_init(h, fd);
  return { fd, h, c: new Float64Array(h.buffer, h.byteOffset, h.length / 8) };
}
function counters(p) {
  const o = {};
  for (const k of Object.keys(addon)) if (k.startsWith('offsetof_lime_tap_')) o[k.slice(18)] = p.c[addon[k] / 8];
  return o;
}
function newBatch() {
  return { slab: Buffer.alloc(CAP * SLOT), start: new Uint32Array(CAP), len: new Uint32Array(CAP) };
}
function start(p, b, onBatch) {
  addon.lime_tap_start(p.h, p.fd, b.slab, b.start, b.len, SLOT, HEADROOM, CAP, onBatch);
}
function send(p, frames) {
  const slab = Buffer.concat(frames);
  const start = new Uint32Array(frames.length), len = new Uint32Array(frames.length);
  let off = 0;
  frames.forEach((f, i) => { start[i] = off; len[i] = f.length; off += f.length; });
  return addon.lime_tap_write_batch(p.h, p.fd, slab, start, len, frames.length);
}
function error(fn) {
  try { fn(); return null; } catch (e) { return { code: e.code, errno: e.errno, message: e.message, device: e.device }; }
}
/* Promiscuity count (a packet socket's PACKET_MR_PROMISC shows here, not in the flags). */
function promiscuity(dev) {
  return JSON.parse(execFileSync('ip', ['-d', '-j', 'link', 'show', 'dev', dev]).toString())[0].promiscuity;
}

/* Internet checksum over buf[off, off + len) plus initial: 0 when the data carries a correct one. */
function csum(buf, off, len, initial) {
  let sum = initial;
  for (let i = 0; i + 1 < len; i += 2) sum += (buf[off + i] << 8) | buf[off + i + 1];
  if (len & 1) sum += buf[off + len - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}
const words = (buf, off, len) => { let s = 0; for (let i = 0; i < len; i += 2) s += buf.readUInt16BE(off + i); return s; };

const modes = {};

/* Raw GRE receive: collect arg.count packets (hex) or stop after arg.timeoutMs. */
modes['gre-rx'] = () => {
  const rx = open(addon.lime_raw_open_rx(47, ipNum(arg.local)));
  const b = newBatch();
  const packets = [];
  let finished = false;
  const finish = (extra) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    const c = counters(rx);
    addon.lime_tap_close(rx.h);
    print({ packets, counters: c, ...extra });
  };
  const timer = setTimeout(finish, arg.timeoutMs);
  start(rx, b, (n) => {
    if (n < 0) return finish({ failed: addon.lime_tap_errname(n) });
    for (let i = 0; i < n; i++) packets.push(b.slab.toString('hex', b.start[i], b.start[i] + b.len[i]));
    if (packets.length >= arg.count) finish();
  });
  ready();
};

/* Raw send: write arg.packets (hex) in one batch. */
modes['raw-tx'] = () => {
  const tx = open(addon.lime_raw_open_tx(ipNum(arg.remote), ipNum(arg.local)));
  const sent = send(tx, arg.packets.map((h) => Buffer.from(h, 'hex')));
  const c = counters(tx);
  addon.lime_tap_close(tx.h);
  print({ sent, counters: c });
};

/* Two AF_PACKET sockets on the two ends of one veth pair (arg.a, with arg.flagsA, and arg.b). */
modes['packet-pair'] = async () => {
  const A = open(addon.lime_packet_open(arg.a, arg.flagsA));
  const B = open(addon.lime_packet_open(arg.b, 0));
  const batchA = newBatch(), batchB = newBatch();
  const seen = { a: [], b: [] };
  const failures = { a: [], b: [] };
  const collect = (which, b) => (n) => {
    if (n < 0) { failures[which].push(addon.lime_tap_errname(n)); return; }
    for (let i = 0; i < n; i++) {
      const off = b.start[i], len = b.len[i];
      /* Our frames: ethertype 0x88b5 behind any VLAN tags, seen as "TAGS|text". */
      let at = off + 12;
      while (at + 4 <= off + len && [0x8100, 0x88a8].includes(b.slab.readUInt16BE(at))) at += 4;
      if (at + 2 > off + len || b.slab.readUInt16BE(at) !== 0x88b5) continue;
      const tags = b.slab.toString('hex', off + 12, at);
      const text = b.slab.toString('latin1', at + 2, off + len).replace(/\0+$/, '');
      seen[which].push(tags === '' ? text : tags + '|' + text);
    }
  };
  start(A, batchA, collect('a', batchA));
  start(B, batchB, collect('b', batchB));
  const frame = (src, text, tags = '') => {
    const f = Buffer.alloc(64);
    Buffer.from('020000000099', 'hex').copy(f, 0); /* nobody's MAC */
    Buffer.from(src, 'hex').copy(f, 6);
    const at = 12 + Buffer.from(tags, 'hex').copy(f, 12);
    f.writeUInt16BE(0x88b5, at);
    f.write(text, at + 2, 'latin1');
    return f;
  };
  const promisc = { a: promiscuity(arg.a), b: promiscuity(arg.b) };
  const sentA = send(A, [0, 1, 2, 3, 4].map((i) => frame('0200000000aa', 'from-a-' + i)));
  const sentB = send(B, [
    ...[0, 1, 2].map((i) => frame('0200000000bb', 'from-b-' + i)),
    /* The kernel takes the outer tag out before packet sockets see a frame; it must come back. */
    frame('0200000000bb', 'vlan', '8100a064'),
    frame('0200000000bb', 'priority', '8100a000'),
    frame('0200000000bb', 'qinq', '88a8000a81000014'),
  ]);
  await sleep(300);
  const result = { promisc, sentA, sentB, seenA: seen.a.slice(), seenB: seen.b.slice(), vnet: counters(A).vnet_hdr };
  /* lime_tap_init_mode checks the mode against the fd (fresh handles, never closed: they would close A's fd). */
  const vnetA = arg.flagsA !== 0;
  result.initModeRight = error(() => addon.lime_tap_init_mode(Buffer.alloc(addon.sizeof_lime_tap), A.fd, vnetA ? addon.LIME_TAP_MODE_VNET : addon.LIME_TAP_MODE_PLAIN));
  result.initModeWrong = error(() => addon.lime_tap_init_mode(Buffer.alloc(addon.sizeof_lime_tap), A.fd, vnetA ? addon.LIME_TAP_MODE_PLAIN : addon.LIME_TAP_MODE_VNET));

  /* The interface goes down: the reader reports ENETDOWN once (rx_link_down) and goes on
   * polling; writes count port_down. Up again, the same reader receives, never restarted
   * (lime_tap_start on it would throw "already started"). */
  execFileSync('ip', ['link', 'set', arg.a, 'down']);
  for (let i = 0; i < 100 && failures.a.length === 0; i++) await sleep(10);
  await sleep(50);
  result.downFailure = failures.a.slice();
  result.sentWhileDown = send(A, [frame('0200000000aa', 'down')]);
  result.whileDown = counters(A);
  execFileSync('ip', ['link', 'set', arg.a, 'up']);
  await sleep(50);
  seen.a.length = 0;
  result.restart = error(() => start(A, batchA, collect('a', batchA)));
  send(B, [frame('0200000000bb', 'after-up')]);
  for (let i = 0; i < 100 && seen.a.length === 0; i++) await sleep(10);
  result.seenAfterUp = seen.a.slice();
  /* A second flap: reported again, survived again. */
  execFileSync('ip', ['link', 'set', arg.a, 'down']);
  for (let i = 0; i < 100 && failures.a.length < 2; i++) await sleep(10);
  execFileSync('ip', ['link', 'set', arg.a, 'up']);
  await sleep(50);
  send(B, [frame('0200000000bb', 'after-second-up')]);
  for (let i = 0; i < 100 && seen.a.length < 2; i++) await sleep(10);
  result.failuresAfterSecond = failures.a.slice();
  result.seenAfterSecondUp = seen.a.slice();
  result.counters = { a: counters(A), b: counters(B) };
  addon.lime_tap_close(A.h);
  addon.lime_tap_close(B.h);
  result.promiscAfterClose = { a: promiscuity(arg.a), b: promiscuity(arg.b) };

  /* Deleting the interface (arg.c, of another veth pair) also reads as ENETDOWN, then
   * nothing: the reader stays quiet (no spinning) and a write finds the socket unbound
   * (ENXIO). The caller tells deletion apart with lime_if_info (ENODEV) and stops it. */
  const C = open(addon.lime_packet_open(arg.c, arg.flagsA));
  const failuresC = [];
  start(C, newBatch(), (n) => { if (n < 0) failuresC.push(addon.lime_tap_errname(n)); });
  await sleep(50);
  const cpuBefore = process.cpuUsage();
  execFileSync('ip', ['link', 'del', arg.c]);
  for (let i = 0; i < 100 && failuresC.length === 0; i++) await sleep(10);
  await sleep(300);
  const cpu = process.cpuUsage(cpuBefore);
  result.failuresAfterDelete = failuresC.slice();
  result.cpuMsAfterDelete = (cpu.user + cpu.system) / 1000;
  result.sentAfterDelete = send(C, [frame('0200000000cc', 'deleted')]);
  result.afterDelete = counters(C);
  result.infoAfterDelete = error(() => addon.lime_if_info(arg.c));
  addon.lime_tap_close(C.h);
  print(result);
};

modes['offloads'] = () => print(addon.lime_if_set_offloads(arg.dev, arg.off));

/* A virtio-net reader with a small batch (arg.batch): collect arg.count frames (hex) and
 * the batch sizes, or stop after arg.timeoutMs. */
modes['vnet-read'] = () => {
  const p = open(addon.lime_packet_open(arg.dev, addon.LIME_PACKET_F_VNET_HDR));
  const cap = arg.batch;
  const b = { slab: Buffer.alloc(cap * SLOT), start: new Uint32Array(cap), len: new Uint32Array(cap) };
  const frames = [], batches = [];
  let badStart = 0, finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    const c = counters(p);
    addon.lime_tap_close(p.h);
    print({ frames, batches, badStart, counters: c });
  };
  const timer = setTimeout(finish, arg.timeoutMs);
  addon.lime_tap_start(p.h, p.fd, b.slab, b.start, b.len, SLOT, HEADROOM, cap, (n) => {
    if (n < 0) return finish();
    batches.push(n);
    for (let i = 0; i < n; i++) {
      if (b.start[i] !== i * SLOT + HEADROOM) badStart++;
      frames.push(b.slab.toString('hex', b.start[i], b.start[i] + b.len[i]));
    }
    if (frames.length >= arg.count) finish();
  });
  ready();
};

/* Run without CAP_NET_RAW / CAP_NET_ADMIN (under setpriv). */
modes['errors'] = () => print({
  rawRx: error(() => addon.lime_raw_open_rx(47, 0)),
  rawTx: error(() => addon.lime_raw_open_tx(ipNum('10.88.1.2'), 0)),
  packet: error(() => addon.lime_packet_open(arg.dev, 0)),
  offloads: error(() => addon.lime_if_set_offloads(arg.dev, true)),
});

/* A two-port L2 forwarder over virtio-net AF_PACKET sockets; checks every frame it forwards.
 * stdin: a line 'stats' prints the statistics; end of input prints them and exits. */
modes['forward'] = () => {
  const offloads = {};
  for (const dev of [arg.a, arg.b]) offloads[dev] = addon.lime_if_set_offloads(dev, true);
  const A = open(addon.lime_packet_open(arg.a, addon.LIME_PACKET_F_VNET_HDR));
  const B = open(addon.lime_packet_open(arg.b, addon.LIME_PACKET_F_VNET_HDR));
  const batch = newBatch(); /* one shared batch, as in the daemon */
  const s = { frames: 0, maxLen: 0, tooLong: 0, badIp: 0, badL4: 0, tcp4: 0, tcp6: 0, udp4: 0, udp6: 0, tcpPayload: 0, udpPayload: 0, failures: [] };
  const limit = arg.mtu + 14;
  const check = (buf, off, len) => {
    let l3 = off + 14, type = buf.readUInt16BE(off + 12);
    while (type === 0x8100 || type === 0x88a8) { type = buf.readUInt16BE(l3 + 2); l3 += 4; }
    s.frames++;
    s.maxLen = Math.max(s.maxLen, len);
    if (len > limit + (l3 - off - 14)) s.tooLong++;
    let proto = -1, l4 = 0, l4len = 0, pseudo = 0;
    if (type === 0x0800) {
      const ihl = (buf[l3] & 15) * 4;
      if (csum(buf, l3, ihl, 0) !== 0) s.badIp++;
      if ((buf.readUInt16BE(l3 + 6) & 0x3fff) !== 0) return;
      proto = buf[l3 + 9]; l4 = l3 + ihl; l4len = buf.readUInt16BE(l3 + 2) - ihl;
      pseudo = words(buf, l3 + 12, 8) + proto + l4len;
      if (proto === 6) s.tcp4++;
      if (proto === 17) s.udp4++;
    } else if (type === 0x86dd) {
      proto = buf[l3 + 6]; l4 = l3 + 40; l4len = buf.readUInt16BE(l3 + 4);
      pseudo = words(buf, l3 + 8, 32) + proto + l4len;
      if (proto === 6) s.tcp6++;
      if (proto === 17) s.udp6++;
    }
    if (proto === 6) {
      if (csum(buf, l4, l4len, pseudo) !== 0) s.badL4++;
      s.tcpPayload += l4len - (buf[l4 + 12] >> 4) * 4;
    } else if (proto === 17) {
      if (!(type === 0x0800 && buf.readUInt16BE(l4 + 6) === 0) && csum(buf, l4, l4len, pseudo) !== 0) s.badL4++;
      s.udpPayload += l4len - 8;
    }
  };
  const forward = (to) => (n) => {
    if (n < 0) { s.failures.push(addon.lime_tap_errname(n)); return; }
    for (let i = 0; i < n; i++) check(batch.slab, batch.start[i], batch.len[i]);
    addon.lime_tap_write_batch(to.h, to.fd, batch.slab, batch.start, batch.len, n);
  };
  start(A, batch, forward(B));
  start(B, batch, forward(A));
  const report = () => print({ offloads, stats: s, a: counters(A), b: counters(B) });
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => { if (line.trim() === 'stats') report(); });
  rl.on('close', () => {
    report();
    addon.lime_tap_close(A.h);
    addon.lime_tap_close(B.h);
  });
  ready();
};

/* TCP sink: arg.connections connections, each reported as { family, bytes, sha256 }. */
modes['tcp-server'] = () => {
  const results = [];
  const server = net.createServer((sock) => {
    const hash = crypto.createHash('sha256');
    let bytes = 0;
    const family = sock.remoteFamily;
    sock.on('data', (d) => { hash.update(d); bytes += d.length; });
    sock.on('end', () => {
      results.push({ family, bytes, sha256: hash.digest('hex') });
      sock.end();
      if (results.length === arg.connections) { server.close(); print(results); }
    });
  });
  server.listen(arg.port, '::', ready);
  setTimeout(() => { print(results); process.exit(2); }, arg.timeoutMs).unref();
};

/* TCP source: arg.bytes random bytes to arg.host:arg.port. */
modes['tcp-client'] = () => {
  const data = crypto.randomBytes(arg.bytes);
  const sha256 = crypto.createHash('sha256').update(data).digest('hex');
  const sock = net.connect({ host: arg.host, port: arg.port }, () => sock.end(data));
  sock.on('error', (e) => { console.error(e.message); process.exit(1); });
  sock.on('close', () => print({ bytes: data.length, sha256 }));
  sock.setTimeout(arg.timeoutMs, () => { console.error('timeout'); process.exit(1); });
};

/* UDP sink: counts datagrams of arg.size bytes whose bytes are all equal (the sender's pattern). */
modes['udp-server'] = () => {
  const sock = dgram.createSocket('udp4');
  let count = 0, bytes = 0, bad = 0;
  const done = () => { print({ count, bytes, bad }); sock.close(); };
  const timer = setTimeout(done, arg.timeoutMs);
  sock.on('message', (m) => {
    count++;
    bytes += m.length;
    if (m.length !== arg.size || !m.every((x) => x === m[0])) bad++;
    if (count === arg.count) { clearTimeout(timer); done(); }
  });
  sock.bind(arg.port, ready);
};

Promise.resolve(modes[mode]()).catch((e) => { console.error(e && e.stack || e); process.exit(1); });
`;

/** UDP_SEGMENT (GSO) sender: argv host port sends; each send is 10 datagrams of 1400 bytes. */
const UDP_GSO_SENDER = String.raw`
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_UDP, 103, 1400)  # UDP_SEGMENT
dst = (sys.argv[1], int(sys.argv[2]))
for i in range(int(sys.argv[3])):
    s.sendto(b''.join(bytes([(i * 10 + k) & 0xff]) * 1400 for k in range(10)), dst)
    time.sleep(0.02)
`;

/** Writes frames (hex, each behind its own virtio-net header) on argv[1] through a PACKET_VNET_HDR socket. */
const VNET_SENDER = String.raw`
import json, socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
s.setsockopt(263, 15, 1)  # SOL_PACKET, PACKET_VNET_HDR
s.bind((sys.argv[1], 3))  # ETH_P_ALL
for f in json.loads(sys.stdin.read()):
    s.send(bytes.fromhex(f))
`;

function ipBytes(s: string): number[] {
  return s.split('.').map(Number);
}

function ipNum(s: string): number {
  return ipBytes(s).reduce((a, b) => a * 256 + b, 0);
}

function checksum(buf: Buffer, off: number, size: number): number {
  let sum = 0;
  for (let i = 0; i < size; i += 2) sum += (buf[off + i]! << 8) | (i + 1 < size ? buf[off + i + 1]! : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** IPv4 header (checksum left 0: the kernel fills it in) + payload, protocol GRE. */
function ipv4Gre(src: string, dst: string, ipId: number, fragField: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + payload.length, 2);
  h.writeUInt16BE(ipId, 4);
  h.writeUInt16BE(fragField, 6);
  h[8] = 64;
  h[9] = 47;
  h.set(ipBytes(src), 12);
  h.set(ipBytes(dst), 16);
  return Buffer.concat([h, payload]);
}

/** GRE (no options, protocol 0x6558 transparent Ethernet bridging) around a patterned "frame". */
function grePayload(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  b.writeUInt16BE(0x6558, 2);
  for (let i = 4; i < size; i++) b[i] = (i * 7 + seed) & 0xff;
  return b;
}

/** Unfolded sum of the big-endian 16-bit words of buf[off, off + len) (odd end padded). */
function sum16(buf: Buffer, off: number, len: number): number {
  let sum = 0;
  for (let i = 0; i < len; i += 2) sum += (buf[off + i]! << 8) | (i + 1 < len ? buf[off + i + 1]! : 0);
  return sum;
}

function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** A hand-made super-frame (or offloaded frame), as a peer's stack would send it with offloads on. */
interface Crafted {
  /** Outer first: [TPID, TCI]. */
  tags: [number, number][];
  v4: boolean;
  tcp: boolean;
  ipOptions?: number;
  tcpOptions?: number;
  payload: number;
  /** Segment size; 0 = not a super-frame (only the checksum is left to do). */
  mss: number;
  seq?: number;
  flags?: number;
  ipId?: number;
}

const CRAFT_SRC6 = Buffer.from('fd880063000000000000000000000001', 'hex');
const CRAFT_DST6 = Buffer.from('fd880063000000000000000000000002', 'hex');

/** The frame and its virtio-net header (NEEDS_CSUM: the L4 checksum field holds the pseudo-header sum). */
function craft(c: Crafted, seed: number): { vnet: Buffer; frame: Buffer; l3: number; l4: number; hdrs: number; payload: Buffer } {
  const eth = Buffer.alloc(14 + 4 * c.tags.length);
  Buffer.from('0200000000a20200000000b2', 'hex').copy(eth, 0);
  c.tags.forEach(([tpid, tci], i) => {
    eth.writeUInt16BE(tpid, 12 + 4 * i);
    eth.writeUInt16BE(tci, 14 + 4 * i);
  });
  eth.writeUInt16BE(c.v4 ? 0x0800 : 0x86dd, eth.length - 2);
  const payload = Buffer.alloc(c.payload);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  const l4h = Buffer.alloc(c.tcp ? 20 + (c.tcpOptions ?? 0) : 8);
  const l4len = l4h.length + payload.length;
  if (c.tcp) {
    l4h.writeUInt16BE(40000, 0);
    l4h.writeUInt16BE(5001, 2);
    l4h.writeUInt32BE(c.seq ?? 1000, 4);
    l4h.writeUInt32BE(0x01020304, 8);
    l4h[12] = (l4h.length / 4) << 4;
    l4h[13] = c.flags ?? 0x10;
    l4h.writeUInt16BE(512, 14);
    for (let i = 20; i < l4h.length; i++) l4h[i] = 1; // NOP options
  } else {
    l4h.writeUInt16BE(40001, 0);
    l4h.writeUInt16BE(5002, 2);
    l4h.writeUInt16BE(l4len & 0xffff, 4);
  }
  let ip: Buffer;
  let pseudo: number;
  const proto = c.tcp ? 6 : 17;
  if (c.v4) {
    ip = Buffer.alloc(20 + (c.ipOptions ?? 0));
    ip[0] = 0x40 | (ip.length / 4);
    ip.writeUInt16BE(ip.length + l4len, 2);
    ip.writeUInt16BE(c.ipId ?? 0x1000, 4);
    ip.writeUInt16BE(0x4000, 6);
    ip[8] = 64;
    ip[9] = proto;
    ip.set([10, 88, 63, 1], 12);
    ip.set([10, 88, 63, 2], 16);
    for (let i = 20; i < ip.length; i++) ip[i] = 1; // NOP options
    ip.writeUInt16BE(~fold(sum16(ip, 0, ip.length)) & 0xffff, 10);
    pseudo = sum16(ip, 12, 8) + proto + l4len;
  } else {
    ip = Buffer.alloc(40);
    ip.writeUInt32BE(0x60000000, 0);
    ip.writeUInt16BE(l4len, 4);
    ip[6] = proto;
    ip[7] = 64;
    CRAFT_SRC6.copy(ip, 8);
    CRAFT_DST6.copy(ip, 24);
    pseudo = sum16(ip, 8, 32) + proto + l4len;
  }
  const csumOffset = c.tcp ? 16 : 6;
  l4h.writeUInt16BE(fold(pseudo), csumOffset); // CHECKSUM_PARTIAL: the pseudo-header sum
  const frame = Buffer.concat([eth, ip, l4h, payload]);
  const l3 = eth.length;
  const l4 = l3 + ip.length;
  const hdrs = l4 + l4h.length;
  const vnet = Buffer.alloc(10);
  vnet[0] = 1; // NEEDS_CSUM
  vnet[1] = c.mss === 0 ? 0 : !c.tcp ? 5 : c.v4 ? 1 : 4; // NONE, UDP_L4, TCPV4, TCPV6
  vnet.writeUInt16LE(c.mss === 0 ? 0 : hdrs, 2);
  vnet.writeUInt16LE(c.mss, 4);
  vnet.writeUInt16LE(l4, 6);
  vnet.writeUInt16LE(csumOffset, 8);
  return { vnet, frame, l3, l4, hdrs, payload };
}

interface Counters {
  [name: string]: number;
}

interface ChildError {
  code: string;
  errno: number;
  message: string;
  device: string;
}

/** A long-running child with line-by-line stdout. */
interface LineChild {
  child: ChildProcess;
  lines: string[];
  ready: Promise<void>;
  exited: Promise<number | null>;
}

describeAsRoot(SUITE, () => {
  const net = new Netns(PREFIX);
  let dir = '';
  let child = '';

  const env = (): NodeJS.ProcessEnv => ({ ...process.env, LIME_ADDON: ADDON });
  const nodeArgs = (mode: string, arg: object): string[] => [child, mode, JSON.stringify(arg)];
  /** Run the child in `ns` to completion; its JSON output. */
  const runChild = async <T>(ns: string, mode: string, arg: object, timeoutMs = 30_000): Promise<T> => {
    const out = await runInNs(ns, 'env', [`LIME_ADDON=${ADDON}`, process.execPath, ...nodeArgs(mode, arg)], undefined, timeoutMs);
    return JSON.parse(out.trim().split('\n').pop()!) as T;
  };
  /** Start the child in `ns`; resolves once it is READY. */
  const startChild = (ns: string, mode: string, arg: object): LineChild => {
    const c = net.spawn(ns, process.execPath, nodeArgs(mode, arg), { env: env() });
    const lines: string[] = [];
    let buffered = '';
    let err = '';
    c.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buffered += d;
      const parts = buffered.split('\n');
      buffered = parts.pop()!;
      lines.push(...parts.filter((l) => l !== ''));
    });
    const exited = new Promise<number | null>((resolve) => c.once('exit', (code) => resolve(code)));
    const ready = new Promise<void>((resolve, reject) => {
      c.stderr!.setEncoding('utf8').on('data', (d: string) => {
        err += d;
        if (err.includes('READY')) resolve();
      });
      void exited.then((code) => reject(new Error(`child ${mode} exited ${code} before READY: ${err.trim()}`)));
    });
    return { child: c, lines, ready, exited };
  };
  const ethtoolK = (ns: string, dev: string): Record<string, string> => {
    const out = net.exec(ns, 'ethtool', ['-k', dev]);
    const features: Record<string, string> = {};
    for (const line of out.split('\n')) {
      const m = /^\s*([a-z0-9-]+): (on|off)/.exec(line);
      if (m !== null) features[m[1]!] = m[2]!;
    }
    return features;
  };
  const quietNs = (suffix: string): string => {
    const ns = net.add(suffix);
    net.exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    return ns;
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'limens-'));
    child = join(dir, 'child.cjs');
    writeFileSync(child, CHILD);
  });

  afterAll(() => {
    net.destroy();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  describe('errors and interface info (this namespace, nothing created)', () => {
    const missing = DEV('zz');
    const errorOf = (fn: () => unknown): ChildError => {
      try {
        fn();
      } catch (e) {
        return e as ChildError;
      }
      throw new Error('did not throw');
    };

    it('a missing interface is ENODEV, named', () => {
      const b = loadNative();
      const e = errorOf(() => b.lime_packet_open(missing, 0));
      expect(e.message).toBe(`ENODEV: cannot attach ${missing}: no such interface`);
      expect(e.code).toBe('ENODEV');
      expect(e.errno).toBe(-19);
      expect(e.device).toBe(missing);
      expect(errorOf(() => b.lime_if_info(missing)).message).toBe(`ENODEV: cannot read interface ${missing}: no such interface`);
      expect(errorOf(() => b.lime_if_set_offloads(missing, true)).message).toBe(`ENODEV: cannot set offloads of ${missing}: no such interface`);
    });

    it('bad arguments: unknown flags, a name too long, a non-local bind address, remote 0', () => {
      const b = loadNative();
      expect(errorOf(() => b.lime_packet_open('lo', 0x100)).message).toBe('EINVAL: cannot attach lo: unsupported flags');
      expect(errorOf(() => b.lime_packet_open(`${missing}xxxxxxxx`, 0)).message).toMatch(/^EINVAL: cannot attach .*at most 15/);
      const e = errorOf(() => b.lime_raw_open_rx(47, ipNum('192.0.2.77')));
      expect(e.code).toBe('EADDRNOTAVAIL');
      expect(e.message).toMatch(/^EADDRNOTAVAIL: cannot bind raw IPv4 socket \(protocol 47\) to 192\.0\.2\.77: /);
      expect(() => b.lime_raw_open_tx(0, 0)).toThrow(/remoteIp must not be 0/);
      expect(() => b.lime_raw_open_rx(300, 0)).toThrow(/protocol must be 1\.\.255/);
    });

    it('lime_if_info reads index, MTU, MAC and state', () => {
      const info = loadNative().lime_if_info('lo');
      expect(info.ifindex).toBe(1);
      expect(info.mtu).toBeGreaterThanOrEqual(1500);
      expect(info.mac).toEqual(Buffer.alloc(6));
      expect(info.up).toBe(true);
    });
  });

  it('raw GRE: a whole IPv4 packet written on one side is read, IPv4 header included, on the other', async () => {
    const ns1 = quietNs('gre1');
    const ns2 = quietNs('gre2');
    const [ip1, ip2] = ['10.88.61.1', '10.88.61.2'];
    run('ip', ['-n', ns1, 'link', 'add', DEV('g1'), 'type', 'veth', 'peer', 'name', DEV('g2'), 'netns', ns2]);
    run('ip', ['-n', ns1, 'addr', 'add', `${ip1}/24`, 'dev', DEV('g1')]);
    run('ip', ['-n', ns2, 'addr', 'add', `${ip2}/24`, 'dev', DEV('g2')]);
    run('ip', ['-n', ns1, 'link', 'set', DEV('g1'), 'up']);
    run('ip', ['-n', ns2, 'link', 'set', DEV('g2'), 'up']);

    const small = grePayload(64, 1);
    const other = grePayload(200, 2);
    const big = grePayload(1600, 3); // sent as two fragments: the receiver reads it whole
    const packets = [
      ipv4Gre('0.0.0.0', ip1, 0, 0x4000, small), // source and id filled in by the kernel
      ipv4Gre(ip2, ip1, 0x1234, 0, other),
      ipv4Gre(ip2, ip1, 0x4242, 0x2000, big.subarray(0, 1480)), // MF, offset 0
      ipv4Gre(ip2, ip1, 0x4242, 1480 / 8, big.subarray(1480)), // last fragment
      ipv4Gre(ip2, ip1, 0x99, 0x4000, grePayload(1900, 4)), // longer than the MTU: EMSGSIZE
    ];

    const rx = await startInNs(ns1, 'env', [`LIME_ADDON=${ADDON}`, process.execPath, ...nodeArgs('gre-rx', { local: ip1, count: 3, timeoutMs: 5000 })]);
    const tx = await runChild<{ sent: number; counters: Counters }>(ns2, 'raw-tx', {
      remote: ip1,
      local: ip2,
      packets: packets.map((p) => p.toString('hex')),
    });
    expect(tx.sent).toBe(4);
    expect(tx.counters).toMatchObject({ tx_packets: 4, tx_error: 1, tx_port_down: 0, tx_queue_full: 0, last_errno: 0, vnet_hdr: 0 });

    const got = JSON.parse((await rx.done).trim()) as { packets: string[]; counters: Counters; failed?: string };
    expect(got.failed).toBeUndefined();
    expect(got.packets).toHaveLength(3);
    expect(got.counters).toMatchObject({ rx_packets: 3, rx_too_long: 0 });
    const received = got.packets.map((h) => Buffer.from(h, 'hex'));
    for (const p of received) {
      expect(p[0]).toBe(0x45); // the IPv4 header is part of what read() returns
      expect(p[9]).toBe(47);
      expect(p.readUInt16BE(2)).toBe(p.length);
      expect([...p.subarray(12, 16)]).toEqual(ipBytes(ip2)); // source filled in where it was 0
      expect([...p.subarray(16, 20)]).toEqual(ipBytes(ip1));
      expect(checksum(p, 0, 20)).toBe(0); // header checksum filled in by the sender's kernel
    }
    const payloads = received.map((p) => p.subarray(20).toString('hex')).sort();
    expect(payloads).toEqual([small, other, big].map((b) => b.toString('hex')).sort());
    const reassembled = received.find((p) => p.length === 20 + 1600)!;
    expect(reassembled.readUInt16BE(6) & 0x3fff).toBe(0);
  });

  it.each([
    ['plain', false],
    ['virtio-net', true],
  ])('AF_PACKET (%s): frames cross a veth both ways, VLAN tags kept, the socket never reads its own, the interface is promiscuous; a link down/up is survivable', async (_kind, vnet) => {
    const ns = quietNs(vnet ? 'pktv' : 'pkt');
    run('ip', ['-n', ns, 'link', 'add', DEV('pa'), 'type', 'veth', 'peer', 'name', DEV('pb')]);
    run('ip', ['-n', ns, 'link', 'add', DEV('pc'), 'type', 'veth', 'peer', 'name', DEV('pd')]);
    for (const d of ['pa', 'pb', 'pc', 'pd']) run('ip', ['-n', ns, 'link', 'set', DEV(d), 'up']);
    const r = await runChild<{
      promisc: { a: number; b: number };
      promiscAfterClose: { a: number; b: number };
      sentA: number;
      sentB: number;
      seenA: string[];
      seenB: string[];
      vnet: number;
      initModeRight: ChildError | null;
      initModeWrong: ChildError | null;
      downFailure: string[];
      sentWhileDown: number;
      whileDown: Counters;
      restart: ChildError | null;
      seenAfterUp: string[];
      failuresAfterSecond: string[];
      seenAfterSecondUp: string[];
      counters: { a: Counters; b: Counters };
      failuresAfterDelete: string[];
      cpuMsAfterDelete: number;
      sentAfterDelete: number;
      afterDelete: Counters;
      infoAfterDelete: ChildError | null;
    }>(ns, 'packet-pair', { a: DEV('pa'), b: DEV('pb'), c: DEV('pc'), flagsA: vnet ? loadNative().LIME_PACKET_F_VNET_HDR : 0 });

    expect(r.sentA).toBe(5);
    expect(r.sentB).toBe(6);
    expect(r.seenB).toEqual(['from-a-0', 'from-a-1', 'from-a-2', 'from-a-3', 'from-a-4']);
    // None of its own (PACKET_IGNORE_OUTGOING); VLAN tags as they were on the wire.
    expect(r.seenA).toEqual(['from-b-0', 'from-b-1', 'from-b-2', '8100a064|vlan', '8100a000|priority', '88a8000a81000014|qinq']);
    expect(r.promisc).toEqual({ a: 1, b: 1 });
    expect(r.promiscAfterClose).toEqual({ a: 0, b: 0 });
    expect(r.vnet).toBe(vnet ? 1 : 0);
    expect(r.initModeRight).toBeNull();
    expect(r.initModeWrong).toMatchObject({
      code: 'EINVAL',
      message: expect.stringMatching(vnet ? /^EINVAL: cannot use fd \d+ in plain mode: it carries virtio-net headers/ : /^EINVAL: cannot use fd \d+ in virtio-net mode: it does not carry/),
    });

    // Link down: reported once, counted, and the reader goes on polling the same socket.
    expect(r.downFailure).toEqual(['ENETDOWN']);
    expect(r.sentWhileDown).toBe(0);
    expect(r.whileDown).toMatchObject({ tx_port_down: 1, last_errno: 100 /* ENETDOWN */, rx_link_down: 1 });
    expect(r.restart?.message).toMatch(/already started/);
    expect(r.seenAfterUp).toEqual(['after-up']);
    expect(r.failuresAfterSecond).toEqual(['ENETDOWN', 'ENETDOWN']);
    expect(r.seenAfterSecondUp).toEqual(['after-up', 'after-second-up']);
    expect(r.counters.a).toMatchObject({ rx_link_down: 2 });
    // Deleted: the same one ENETDOWN, then quiet (no busy loop on a dead socket); writes ENXIO.
    expect(r.failuresAfterDelete).toEqual(['ENETDOWN']);
    expect(r.cpuMsAfterDelete).toBeLessThan(150);
    expect(r.sentAfterDelete).toBe(0);
    expect(r.afterDelete).toMatchObject({ rx_link_down: 1, tx_port_down: 1, last_errno: 6 /* ENXIO */ });
    expect(r.infoAfterDelete).toMatchObject({ code: 'ENODEV' });
    expect(r.counters.a).toMatchObject({ tx_packets: 5, tx_error: 0, rx_too_long: 0 });
    expect(r.counters.b).toMatchObject({ tx_packets: 8, tx_error: 0, tx_port_down: 0 });
  });

  it('lime_if_set_offloads switches a veth\'s offloads off and on again (ethtool -k agrees)', async () => {
    const ns = quietNs('off');
    run('ip', ['-n', ns, 'link', 'add', DEV('oa'), 'type', 'veth', 'peer', 'name', DEV('ob')]);
    net.exec(ns, 'ethtool', ['-K', DEV('oa'), 'gro', 'on', 'tx', 'on', 'tso', 'on', 'gso', 'on']);

    const off = await runChild<Record<string, string>>(ns, 'offloads', { dev: DEV('oa'), off: true });
    expect(Object.keys(off).sort()).toEqual(['gro', 'gso', 'lro', 'rxvlan', 'tso', 'txcsum', 'txvlan']);
    expect(off).toMatchObject({ gro: 'ok', tso: 'ok', gso: 'ok', txcsum: 'ok' });
    for (const v of Object.values(off)) expect(v).toMatch(/^(ok|E[A-Z]+)$/);
    let k = ethtoolK(ns, DEV('oa'));
    // (Not "tcp-segmentation-offload": newer kernels add TSO flavours, e.g. AccECN, that the
    // legacy ETHTOOL_STSO does not cover and ethtool counts in that summary line.)
    expect(k).toMatchObject({
      'generic-receive-offload': 'off',
      'tx-tcp-segmentation': 'off',
      'tx-tcp6-segmentation': 'off',
      'generic-segmentation-offload': 'off',
      'tx-checksumming': 'off',
      'large-receive-offload': 'off',
    });
    if (off.rxvlan === 'ok') expect(k['rx-vlan-offload']).toBe('off');
    if (off.txvlan === 'ok') expect(k['tx-vlan-offload']).toBe('off');

    const on = await runChild<Record<string, string>>(ns, 'offloads', { dev: DEV('oa'), off: false });
    expect(on).toMatchObject({ gro: 'ok', tso: 'ok', gso: 'ok', txcsum: 'ok' });
    k = ethtoolK(ns, DEV('oa'));
    expect(k).toMatchObject({
      'generic-receive-offload': 'on',
      'tx-tcp-segmentation': 'on',
      'tx-tcp6-segmentation': 'on',
      'generic-segmentation-offload': 'on',
      'tx-checksumming': 'on',
    });
  });

  it('without CAP_NET_RAW / CAP_NET_ADMIN: EPERM naming the capability', async () => {
    const ns = quietNs('perm');
    run('ip', ['-n', ns, 'link', 'add', DEV('ea'), 'type', 'veth', 'peer', 'name', DEV('eb')]);
    net.exec(ns, 'ethtool', ['-K', DEV('ea'), 'gro', 'on']); // something to switch off
    const out = await runInNs(ns, 'setpriv', [
      '--inh-caps=-all',
      '--bounding-set=-net_raw,-net_admin',
      '--',
      'env',
      `LIME_ADDON=${ADDON}`,
      process.execPath,
      ...nodeArgs('errors', { dev: DEV('ea') }),
    ]);
    const r = JSON.parse(out) as Record<string, ChildError | null>;
    expect(r.rawRx).toMatchObject({ code: 'EPERM', errno: -1, message: 'EPERM: cannot open raw IPv4 socket (protocol 47): need CAP_NET_RAW' });
    expect(r.rawTx).toMatchObject({ code: 'EPERM', message: 'EPERM: cannot open raw IPv4 socket (IPPROTO_RAW): need CAP_NET_RAW' });
    expect(r.packet).toMatchObject({ code: 'EPERM', device: DEV('ea'), message: `EPERM: cannot attach ${DEV('ea')}: need CAP_NET_RAW` });
    expect(r.offloads).toMatchObject({ code: 'EPERM', message: `EPERM: cannot set offloads of ${DEV('ea')}: need CAP_NET_ADMIN` });
    expect(ethtoolK(ns, DEV('ea'))['generic-receive-offload']).toBe('on'); // nothing changed
  });

  it('virtio-net drain: offloaded frames and super-frames (VLAN, QinQ, IP and TCP options, IPv6, UDP GSO) come out as wire frames, across batch boundaries', async () => {
    const ns = quietNs('vn');
    run('ip', ['-n', ns, 'link', 'add', DEV('va'), 'type', 'veth', 'peer', 'name', DEV('vb')]);
    run('ip', ['-n', ns, 'link', 'set', DEV('va'), 'up']);
    run('ip', ['-n', ns, 'link', 'set', DEV('vb'), 'up']);
    const specs: Crafted[] = [
      // TCPv4 behind a VLAN tag (the kernel takes it out; the drain puts it back), IP and
      // TCP options, a sequence number and IP ids that wrap, CWR/PSH/FIN to distribute.
      { tags: [[0x8100, (3 << 13) | 100]], v4: true, tcp: true, ipOptions: 4, tcpOptions: 12, payload: 5000, mss: 1000, seq: 0xfffffc00, flags: 0x99, ipId: 0xfffe },
      // TCPv6, a short last segment of odd length.
      { tags: [], v4: false, tcp: true, payload: 3001, mss: 1200, seq: 7, flags: 0x18 },
      // UDP GSO (USO) over IPv4 behind an 802.1ad tag, and over IPv6.
      { tags: [[0x88a8, 10]], v4: true, tcp: false, payload: 2500, mss: 1000, ipId: 0x2000 },
      { tags: [], v4: false, tcp: false, payload: 2100, mss: 1400 },
      // Not a super-frame: only the checksum to complete; QinQ (the inner tag stays in the data).
      { tags: [[0x88a8, 10], [0x8100, 20]], v4: true, tcp: true, payload: 101, mss: 0, flags: 0x18 },
    ];
    const crafted = specs.map((c, i) => craft(c, i));
    const count = specs.reduce((n, c) => n + (c.mss === 0 ? 1 : Math.ceil(c.payload / c.mss)), 0);
    const BATCH = 4; // super-frames of 5 and 3 segments cross batch boundaries

    const reader = await startInNs(ns, 'env', [
      `LIME_ADDON=${ADDON}`,
      process.execPath,
      ...nodeArgs('vnet-read', { dev: DEV('va'), batch: BATCH, count, timeoutMs: 5000 }),
    ]);
    await runInNs(ns, 'python3', ['-c', VNET_SENDER, DEV('vb')], JSON.stringify(crafted.map((c) => Buffer.concat([c.vnet, c.frame]).toString('hex'))));
    const r = JSON.parse((await reader.done).trim()) as { frames: string[]; batches: number[]; badStart: number; counters: Counters };
    expect(r.frames).toHaveLength(count);
    expect(r.badStart).toBe(0); // slot i at i * slotSize + headroom, as in every drain
    expect(Math.max(...r.batches)).toBeLessThanOrEqual(BATCH);
    expect(r.counters).toMatchObject({ rx_packets: count, rx_gso_segmented: 4, rx_csum_completed: 1, rx_gso_dropped: 0, rx_too_long: 0, vnet_hdr: 1 });

    const frames = r.frames.map((h) => Buffer.from(h, 'hex'));
    let k = 0;
    specs.forEach((c, idx) => {
      const { frame, l3, l4, hdrs, payload } = crafted[idx]!;
      const mss = c.mss === 0 ? payload.length : c.mss;
      const n = Math.ceil(payload.length / mss);
      const proto = c.tcp ? 6 : 17;
      for (let i = 0; i < n; i++) {
        const f = frames[k++]!;
        const size = Math.min(mss, payload.length - i * mss);
        const where = `frame ${idx}, segment ${i}`;
        expect(f.length, where).toBe(hdrs + size);
        expect(f.subarray(0, l3).toString('hex'), `${where}: Ethernet header and tags`).toBe(frame.subarray(0, l3).toString('hex'));
        expect(f.subarray(hdrs).equals(payload.subarray(i * mss, i * mss + size)), `${where}: payload`).toBe(true);
        const l4len = f.length - l4;
        if (c.v4) {
          expect(f.readUInt16BE(l3 + 2), `${where}: IPv4 total length`).toBe(f.length - l3);
          expect(f.readUInt16BE(l3 + 4), `${where}: IPv4 id`).toBe(((c.ipId ?? 0x1000) + i) & 0xffff);
          expect(checksum(f, l3, l4 - l3), `${where}: IPv4 header checksum`).toBe(0);
          expect(f.subarray(l3 + 6, l3 + 10).equals(frame.subarray(l3 + 6, l3 + 10)), `${where}: IPv4 flags, TTL, protocol`).toBe(true);
          expect(f.subarray(l3 + 12, l4).equals(frame.subarray(l3 + 12, l4)), `${where}: IPv4 addresses, options`).toBe(true);
        } else {
          expect(f.readUInt16BE(l3 + 4), `${where}: IPv6 payload length`).toBe(l4len);
          expect(f.subarray(l3 + 6, l4).equals(frame.subarray(l3 + 6, l4)), `${where}: IPv6 header`).toBe(true);
        }
        const pseudo = (c.v4 ? sum16(f, l3 + 12, 8) : sum16(f, l3 + 8, 32)) + proto + l4len;
        expect(~fold(sum16(f, l4, l4len) + pseudo) & 0xffff, `${where}: L4 checksum`).toBe(0);
        if (c.tcp) {
          let flags = c.flags ?? 0x10;
          if (i < n - 1) flags &= ~0x09; // FIN, PSH on the last segment only
          if (i > 0) flags &= ~0x80; // CWR on the first only
          expect(f.readUInt32BE(l4 + 4), `${where}: sequence number`).toBe(((c.seq ?? 1000) + i * mss) >>> 0);
          expect(f[l4 + 13], `${where}: TCP flags`).toBe(flags);
          expect(f.subarray(l4 + 8, l4 + 13).equals(frame.subarray(l4 + 8, l4 + 13)), `${where}: ack, data offset`).toBe(true);
          expect(f.subarray(l4 + 20, hdrs).equals(frame.subarray(l4 + 20, hdrs)), `${where}: TCP options`).toBe(true);
        } else {
          expect(f.readUInt16BE(l4 + 4), `${where}: UDP length`).toBe(l4len);
        }
      }
    });
  });

  it(
    'virtio-net forwarder: hosts with TSO/GSO/checksum offload on transfer over UDP GSO, TCP/IPv4 and TCP/IPv6 through it',
    async () => {
      const nsA = net.add('ha');
      const nsB = net.add('hb');
      const nsS = quietNs('sw');
      const hosts = [
        { ns: nsA, host: DEV('ha'), port: DEV('sa'), ip: '10.88.62.1', ip6: 'fd88:62::1' },
        { ns: nsB, host: DEV('hb'), port: DEV('sb'), ip: '10.88.62.2', ip6: 'fd88:62::2' },
      ] as const;
      for (const h of hosts) {
        run('ip', ['-n', h.ns, 'link', 'add', h.host, 'type', 'veth', 'peer', 'name', h.port, 'netns', nsS]);
        run('ip', ['-n', h.ns, 'addr', 'add', `${h.ip}/24`, 'dev', h.host]);
        run('ip', ['-n', h.ns, 'addr', 'add', `${h.ip6}/64`, 'dev', h.host, 'nodad']);
        run('ip', ['-n', h.ns, 'link', 'set', h.host, 'up']);
        run('ip', ['-n', nsS, 'link', 'set', h.port, 'up']);
        // The hosts' offloads on (Linux's default for a veth): checksums left to finish, super-frames.
        net.exec(h.ns, 'ethtool', ['-K', h.host, 'tx', 'on', 'sg', 'on', 'tso', 'on', 'gso', 'on']);
        expect(ethtoolK(h.ns, h.host)['tcp-segmentation-offload']).toBe('on');
      }
      const [a, b] = hosts;

      const fw = startChild(nsS, 'forward', { a: a.port, b: b.port, mtu: 1500 });
      await fw.ready;
      interface FwReport {
        offloads: Record<string, Record<string, string>>;
        stats: {
          frames: number;
          maxLen: number;
          tooLong: number;
          badIp: number;
          badL4: number;
          tcp4: number;
          tcp6: number;
          udp4: number;
          tcpPayload: number;
          udpPayload: number;
          failures: string[];
        };
        a: Counters;
        b: Counters;
      }
      const stats = async (): Promise<FwReport> => {
        const before = fw.lines.length;
        fw.child.stdin!.write('stats\n');
        await waitFor('forwarder stats', () => fw.lines.length > before, 5000, 10);
        return JSON.parse(fw.lines[fw.lines.length - 1]!) as FwReport;
      };

      try {
        // UDP with UDP_SEGMENT: 20 sends of 10 × 1400 bytes, each one super-frame.
        const udp = await startInNs(b.ns, 'env', [
          `LIME_ADDON=${ADDON}`,
          process.execPath,
          ...nodeArgs('udp-server', { port: 47002, count: 200, size: 1400, timeoutMs: 15_000 }),
        ]);
        await runInNs(a.ns, 'python3', ['-c', UDP_GSO_SENDER, b.ip, '47002', '20']);
        const udpResult = JSON.parse((await udp.done).trim()) as { count: number; bytes: number; bad: number };
        expect(udpResult).toEqual({ count: 200, bytes: 200 * 1400, bad: 0 });
        const afterUdp = await stats();
        expect(afterUdp.a.rx_gso_segmented).toBe(20); // each send arrived as one super-frame
        expect(afterUdp.stats.udp4).toBeGreaterThanOrEqual(200);

        // TCP over IPv4, then IPv6: 4 MiB each.
        const bytes = 4 * 1024 * 1024;
        const tcp = await startInNs(b.ns, 'env', [
          `LIME_ADDON=${ADDON}`,
          process.execPath,
          ...nodeArgs('tcp-server', { port: 47001, connections: 2, timeoutMs: 90_000 }),
        ]);
        const sent4 = await runChild<{ bytes: number; sha256: string }>(a.ns, 'tcp-client', { host: b.ip, port: 47001, bytes, timeoutMs: 60_000 }, 90_000);
        const afterTcp4 = await stats();
        const sent6 = await runChild<{ bytes: number; sha256: string }>(a.ns, 'tcp-client', { host: b.ip6, port: 47001, bytes, timeoutMs: 60_000 }, 90_000);
        const received = JSON.parse((await tcp.done).trim()) as { family: string; bytes: number; sha256: string }[];
        expect(received).toHaveLength(2);
        expect(received[0]).toMatchObject({ bytes, sha256: sent4.sha256 });
        expect(received[1]).toMatchObject({ bytes, sha256: sent6.sha256 });
        expect(sent4.bytes).toBe(bytes);

        fw.child.stdin!.end();
        expect(await fw.exited).toBe(0);
        const final = JSON.parse(fw.lines[fw.lines.length - 1]!) as FwReport;
        const { stats: s } = final;

        for (const dev of [a.port, b.port]) expect(final.offloads[dev]).toMatchObject({ gro: 'ok', tso: 'ok', gso: 'ok', txcsum: 'ok' });
        expect(s.failures).toEqual([]);
        // Every frame the forwarder saw: no longer than MTU + Ethernet header, checksums valid.
        expect(s.tooLong).toBe(0);
        expect(s.maxLen).toBeLessThanOrEqual(1514);
        expect(s.badIp).toBe(0);
        expect(s.badL4).toBe(0);
        expect(s.tcp4).toBeGreaterThan(bytes / 1500);
        expect(s.tcp6).toBeGreaterThan(bytes / 1500);
        expect(s.tcpPayload).toBeGreaterThanOrEqual(2 * bytes);
        // Super-frames were cut (TCPv4 and TCPv6 each), checksums were completed.
        expect(afterTcp4.a.rx_gso_segmented).toBeGreaterThan(afterUdp.a.rx_gso_segmented);
        expect(final.a.rx_gso_segmented).toBeGreaterThan(afterTcp4.a.rx_gso_segmented);
        expect(final.a.rx_csum_completed + final.b.rx_csum_completed).toBeGreaterThan(0);
        for (const port of [final.a, final.b]) {
          expect(port.vnet_hdr).toBe(1);
          expect(port.rx_gso_dropped).toBe(0);
          expect(port.rx_too_long).toBe(0);
          expect(port.tx_error).toBe(0);
          expect(port.tx_port_down).toBe(0);
        }
        expect(final.a.rx_packets).toBeGreaterThan(final.a.rx_gso_segmented);
      } finally {
        fw.child.stdin!.end();
      }
    },
    180_000,
  );
});
