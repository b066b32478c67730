/**
 * Shared set-up for the flow-pipeline tests: a Switch with a LinearTable, three memory
 * ports, a fake clock, recorded packet-ins, and frame builders over packet/build.ts.
 */
import { Switch, type SwitchOptions } from '../../../src/datapath/switch.js';
import type { PacketInReason } from '../../../src/datapath/execute.js';
import { MemoryPort } from '../../../src/io/memory.js';
import { FrameBatch } from '../../../src/packet/batch.js';
import { buildFrame, type FrameSpec, type L4Spec, type VlanTagSpec } from '../../../src/packet/build.js';
import { internetChecksum, pseudoHeaderSumIpv4, pseudoHeaderSumIpv6 } from '../../../src/util/checksum.js';
import { extract } from '../../../src/packet/extract.js';
import { K, KEY_WORDS, OFF_ABSENT } from '../../../src/packet/key.js';
import { parseIpv4, parseIpv6, parseMac, type Mac } from '../../../src/util/addr.js';
import { LinearTable } from '../../helpers/linear-table.js';

export const MAC = {
  a: parseMac('02:00:00:00:00:01'),
  b: parseMac('02:00:00:00:00:02'),
  c: parseMac('02:00:00:00:00:03'),
  x: parseMac('0a:bb:cc:dd:ee:ff'),
  bcast: parseMac('ff:ff:ff:ff:ff:ff'),
};
export const IP = {
  a: parseIpv4('10.0.0.1'),
  b: parseIpv4('10.0.0.2'),
  c: parseIpv4('10.0.0.9'),
  far: parseIpv4('192.168.77.200'),
};

export interface PacketIn {
  frame: Buffer;
  inPort: number;
  reason: PacketInReason;
  table: number;
  ruleId: number;
  maxLen: number;
}

export interface Rig {
  sw: Switch;
  table: LinearTable;
  ports: MemoryPort[];
  batch: FrameBatch;
  packetIns: PacketIn[];
  clock: { now: number };
  /** Sent frames of port n (1-based). */
  sent(n: number): Buffer[];
  clearSent(): void;
  inject(port: number, frames: Uint8Array[]): void;
  drops(port: number, reason: number): number;
}

export function rig(opts: { tableMiss?: boolean; nPorts?: number; sw?: Partial<SwitchOptions> } = {}): Rig {
  const clock = { now: 1_000_000 };
  const table = new LinearTable({ tableMiss: opts.tableMiss ?? true });
  const packetIns: PacketIn[] = [];
  const sw = new Switch({
    macTableCapacity: 64,
    now: () => clock.now,
    table,
    onPacketIn: (slab, offset, size, inPort, reason, t, ruleId, maxLen) => {
      packetIns.push({ frame: Buffer.from(slab.subarray(offset, offset + Math.min(size, maxLen))), inPort, reason, table: t, ruleId, maxLen });
    },
    ...opts.sw,
  });
  const batch = new FrameBatch();
  const ports = Array.from({ length: opts.nPorts ?? 3 }, (_, i) => new MemoryPort(`p${i + 1}`, i + 1, 1500, { clock: () => clock.now }));
  for (const p of ports) {
    sw.addPort(p);
    p.start(batch, () => sw.process(batch), () => sw.portStateChanged(p.number));
  }
  return {
    sw,
    table,
    ports,
    batch,
    packetIns,
    clock,
    sent: (n) => ports[n - 1]!.sent,
    clearSent: () => {
      for (const p of ports) p.sent.length = 0;
    },
    inject: (port, frames) => ports[port - 1]!.inject(frames),
    drops: (port, reason) => sw.dropCounts(port)[reason]!,
  };
}

export interface FrameOpts {
  dst?: Mac;
  src?: Mac;
  vlans?: VlanTagSpec[];
  ipSrc?: number;
  ipDst?: number;
  tos?: number;
  ttl?: number;
  l4?: L4Spec;
  payload?: number;
}

/** An IPv4 frame (UDP by default) with valid checksums. */
export function ip4(o: FrameOpts = {}): Buffer {
  const spec: FrameSpec = {
    dst: o.dst ?? MAC.b,
    src: o.src ?? MAC.a,
    vlans: o.vlans,
    ip: { version: 4, src: o.ipSrc ?? IP.a, dst: o.ipDst ?? IP.b, tos: o.tos ?? 0, ttl: o.ttl ?? 64, id: 0x1234 },
    l4: o.l4 ?? { proto: 'udp', srcPort: 5000, dstPort: 53 },
    payload: Buffer.alloc(o.payload ?? 32, 0x5a),
  };
  const buf = Buffer.alloc(2048);
  const n = buildFrame(buf, 0, spec);
  return Buffer.from(buf.subarray(0, n));
}

/** An IPv6 frame with valid checksums. */
export function ip6(o: { src?: string; dst?: string; l4?: L4Spec; hopLimit?: number; tc?: number } = {}): Buffer {
  const buf = Buffer.alloc(2048);
  const n = buildFrame(buf, 0, {
    dst: MAC.b,
    src: MAC.a,
    ip: { version: 6, src: parseIpv6(o.src ?? 'fd00::1'), dst: parseIpv6(o.dst ?? 'fd00::2'), hopLimit: o.hopLimit ?? 64, trafficClass: o.tc ?? 0 },
    l4: o.l4 ?? { proto: 'tcp', srcPort: 40000, dstPort: 22, seq: 7 },
    payload: Buffer.alloc(20, 0x33),
  });
  return Buffer.from(buf.subarray(0, n));
}

/** The flow key of a frame as received on `inPort`. */
export function keyOf(frame: Uint8Array, inPort: number): Uint32Array {
  const key = new Uint32Array(KEY_WORDS);
  const r = extract(frame, 0, frame.length, key, 0, inPort);
  if (r !== 0) throw new Error(`frame does not parse: ${r}`);
  return key;
}

/**
 * Recomputes every checksum of a frame and says whether they hold: IPv4 header, and
 * TCP/UDP/ICMPv6 over the pseudo-header (a UDP checksum of 0 means none).
 */
export function checksumsValid(frame: Uint8Array): boolean {
  const key = keyOf(frame, 0);
  const l3 = key[K.L3_OFF]!;
  const l4 = key[K.L4_OFF]!;
  if (key[K.DL_TYPE] === 0x0800) {
    const ihl = (frame[l3]! & 0x0f) * 4;
    if (internetChecksum(frame, l3, ihl) !== 0) return false;
    if (l4 === OFF_ABSENT) return true;
    const total = (frame[l3 + 2]! << 8) | frame[l3 + 3]!;
    const l4Size = total - ihl;
    const proto = key[K.NW_PROTO]!;
    if (proto === 17 && ((frame[l4 + 6]! << 8) | frame[l4 + 7]!) === 0) return true;
    if (proto !== 6 && proto !== 17) return true;
    return internetChecksum(frame, l4, l4Size, pseudoHeaderSumIpv4(key[K.NW_SRC]!, key[K.NW_DST]!, proto, l4Size)) === 0;
  }
  if (key[K.DL_TYPE] === 0x86dd) {
    const payload = (frame[l3 + 4]! << 8) | frame[l3 + 5]!;
    const l4Size = l3 + 40 + payload - l4;
    const proto = key[K.NW_PROTO]!;
    return internetChecksum(frame, l4, l4Size, pseudoHeaderSumIpv6(frame, l3 + 8, l3 + 24, proto, l4Size)) === 0;
  }
  return true;
}
