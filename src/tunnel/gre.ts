/**
 * Ethernet over GRE over IPv4 (RFC 2784, RFC 2890 key and sequence number; protocol type
 * 0x6558 Transparent Ethernet Bridging, RFC 1701 §3) — the wire format of Linux `gretap`
 * and Open vSwitch `type=gre`.
 *
 * Encapsulation (STYLE §2, as OVS netdev_gre_build_header / netdev_tnl_push_ip_header):
 * buildGreTemplate() makes the outer IPv4 + GRE header bytes once per tunnel, with every
 * per-packet field zero, and the one's-complement sum of the IPv4 header without them.
 * greEncap() then, per packet, in this order:
 *   1. start -= template size (the caller guarantees that much headroom), one `set` of
 *      the template bytes;
 *   2. IPv4 total length, identification (the template's counter), TOS when given;
 *   3. IPv4 header checksum = ~fold(precomputed sum + those three words) — no pass over
 *      the header;
 *   4. GRE key (when per-packet) and sequence number;
 *   5. GRE checksum over GRE header + inner frame when the C bit is set (the only pass
 *      over the payload, and only then).
 *
 * Decapsulation: greDecap() takes an IPv4 packet — what a raw IPv4 socket for protocol 47
 * delivers on receive: the IPv4 header, no Ethernet header; a frame from an Ethernet port
 * is passed at start + 14 — and validates, in this order (first failure wins):
 *   outer IPv4: < 20 bytes → IPV4_TRUNCATED; version ≠ 4 → IPV4_BAD_VERSION; IHL < 5 or
 *     past the data → IPV4_BAD_IHL; total length < IHL*4 or past the data →
 *     IPV4_BAD_TOTAL_LEN (bytes after total length are padding and ignored); header
 *     checksum → TUNNEL_IPV4_BAD_CHECKSUM; source ≠ expected remote →
 *     TUNNEL_UNKNOWN_REMOTE; protocol ≠ 47 → TUNNEL_NOT_GRE; MF or fragment offset ≠ 0 →
 *     TUNNEL_FRAGMENT (no reassembly: a fragment is a counted drop);
 *   GRE: < 4 bytes → GRE_TRUNCATED; version ≠ 0 → GRE_BAD_VERSION; R, s or Recur-MSB
 *     bit (RFC 2784 §2.3) → GRE_BAD_FLAGS; options past the packet → GRE_TRUNCATED;
 *     protocol ≠ 0x6558 → GRE_BAD_PROTO; C set and checksum fails → GRE_BAD_CHECKSUM;
 *     key: see GreExpect; inner frame < 14 bytes → RUNT.
 * On success it returns DropReason.NONE and fills the caller's preallocated GreDecapResult
 * (inner frame offset and size, key, sequence number, outer source and TOS). The
 * sequence number is reported, not enforced: RFC 2890 §2.2 reordering/drop is optional
 * and Ethernet tolerates reordering as well as it tolerates loss.
 *
 * Invariants: greEncap and greDecap never throw and never allocate; greDecap reads only
 * buf[start … start+len). buildGreTemplate is edge code and throws a RangeError that
 * names the bad field.
 */
import { foldSum, internetChecksum, onesSum } from '../util/checksum.js';
import { rd16, rd32, wr16, wr32 } from '../packet/bytes.js';
import {
  DEFAULT_TTL,
  ETH_HEADER_SIZE,
  ETH_TYPE_IPV4,
  ETH_TYPE_IPV6,
  ETH_TYPE_TEB,
  GRE_BASE_HEADER_SIZE,
  GRE_FLAG_C,
  GRE_FLAG_K,
  GRE_FLAG_S,
  GRE_MUST_BE_ZERO,
  GRE_OPTION_SIZE,
  GRE_VERSION_MASK,
  IPPROTO_GRE,
  IPV4_FLAG_DF,
  IPV4_FLAG_MF,
  IPV4_FRAG_OFFSET_MASK,
  IPV4_MIN_HEADER_SIZE,
  IPV4_VERSION,
} from '../packet/constants.js';
import { DropReason } from '../packet/drop.js';
import { greHeaderSizeOf, greKeyOffset, greSeqOffset } from '../packet/gre.js';
import { isVlanTpid } from '../packet/vlan.js';

/** What a tunnel port is configured with (edge input to buildGreTemplate). */
export interface GreTemplateSpec {
  /** Outer source and destination (local and remote IPv4), unsigned 32-bit. */
  src: number;
  dst: number;
  /** Outer TTL, 1-255; default 64. */
  ttl?: number;
  /** Outer TOS byte (DSCP + ECN), 0-255; default 0. Per packet, greEncap's `tos` overrides it. */
  tos?: number;
  /** Set DF in the outer header; default true (as Linux gretap with pmtudisc and OVS). */
  df?: boolean;
  /** A fixed key (0 … 2^32-1), 'flow' = a key per packet (greEncap's `key`), absent = no K bit. */
  key?: number | 'flow';
  /** C bit: GRE checksum over header + payload (RFC 2784 §2.5). Default false. */
  csum?: boolean;
  /** S bit: sequence number (RFC 2890 §2.2). Default false. */
  seq?: boolean;
}

/**
 * Outer IPv4 + GRE header bytes of one tunnel, built once. `ipId` is the per-tunnel
 * identification counter greEncap advances; everything else is read-only.
 */
export interface GreTemplate {
  /** The header bytes: IPv4 (20, no options) then GRE (4-16); per-packet fields zero. */
  readonly bytes: Uint8Array;
  /** bytes.length: the headroom greEncap needs and the bytes it adds. */
  readonly size: number;
  /** GRE flag word (C/K/S bits). */
  readonly flags: number;
  /** Offsets within the template (so also relative to greEncap's new start); -1 if absent. */
  readonly keyOff: number;
  readonly seqOff: number;
  readonly csumOff: number;
  /** True when the key is written per packet (spec key 'flow'). */
  readonly keyPerPacket: boolean;
  readonly tos: number;
  readonly ttl: number;
  /** Unfolded one's-complement sum of the IPv4 header with total length, id, TOS, TTL and checksum zero. */
  readonly ipSumBase: number;
  /** Next IPv4 identification (16 bits). */
  ipId: number;
}

const GRE_OFF = IPV4_MIN_HEADER_SIZE;

function checkUint(name: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`GRE template: ${name} must be an integer 0-${max}, got ${v}`);
}

/** Builds the template for a tunnel; throws a RangeError naming a bad field. */
export function buildGreTemplate(spec: GreTemplateSpec): GreTemplate {
  checkUint('src', spec.src, 0xffffffff);
  checkUint('dst', spec.dst, 0xffffffff);
  const ttl = spec.ttl ?? DEFAULT_TTL;
  checkUint('ttl', ttl, 255);
  if (ttl === 0) throw new RangeError('GRE template: ttl must be 1-255, got 0');
  const tos = spec.tos ?? 0;
  checkUint('tos', tos, 255);
  const key = spec.key;
  if (typeof key === 'number') checkUint('key', key, 0xffffffff);
  const flags =
    (spec.csum === true ? GRE_FLAG_C : 0) | (key !== undefined ? GRE_FLAG_K : 0) | (spec.seq === true ? GRE_FLAG_S : 0);
  const greSize = greHeaderSizeOf(flags);
  const size = GRE_OFF + greSize;
  const b = new Uint8Array(size);
  b[0] = (IPV4_VERSION << 4) | (IPV4_MIN_HEADER_SIZE >>> 2);
  b[1] = 0; // TOS: added per packet
  // 2-3 total length, 4-5 id: per packet
  wr16(b, 6, spec.df === false ? 0 : IPV4_FLAG_DF);
  b[9] = IPPROTO_GRE; // 8 TTL: per packet (the template's, or inherited)
  // 10-11 checksum: per packet
  wr32(b, 12, spec.src);
  wr32(b, 16, spec.dst);
  wr16(b, GRE_OFF, flags);
  wr16(b, GRE_OFF + 2, ETH_TYPE_TEB);
  const keyOff = key !== undefined ? GRE_OFF + greKeyOffset(flags) : -1;
  if (typeof key === 'number') wr32(b, keyOff, key);
  return {
    bytes: b,
    size,
    flags,
    keyOff,
    seqOff: spec.seq === true ? GRE_OFF + greSeqOffset(flags) : -1,
    csumOff: spec.csum === true ? GRE_OFF + GRE_BASE_HEADER_SIZE : -1,
    keyPerPacket: key === 'flow',
    tos,
    ttl,
    ipSumBase: onesSum(b, 0, IPV4_MIN_HEADER_SIZE),
    ipId: 0,
  };
}

/**
 * Writes tpl in front of the inner Ethernet frame buf[start … start+len) and returns the
 * new start (start - tpl.size); the outer packet is tpl.size + len bytes. `key` is used
 * when the template's key is per packet, `seq` when it has the S bit; `tos` ≥ 0 replaces
 * the template's TOS (e.g. innerIpTos(), for tos=inherit), `ttl` ≥ 1 its TTL (innerIpTtl(),
 * for ttl=inherit). The caller guarantees
 * start ≥ tpl.size and tpl.size + len ≤ 65535 (the MTU check comes first: greFits).
 */
export function greEncap(
  buf: Uint8Array,
  start: number,
  len: number,
  tpl: GreTemplate,
  key: number,
  seq: number,
  tos = -1,
  ttl = -1,
): number {
  const s = start - tpl.size;
  buf.set(tpl.bytes, s);
  const totalLen = tpl.size + len;
  const id = tpl.ipId;
  tpl.ipId = (id + 1) & 0xffff;
  const t = tos >= 0 ? tos & 0xff : tpl.tos;
  const hops = ttl >= 1 ? ttl & 0xff : tpl.ttl;
  buf[s + 1] = t;
  buf[s + 8] = hops;
  wr16(buf, s + 2, totalLen);
  wr16(buf, s + 4, id);
  wr16(buf, s + 10, ~foldSum(tpl.ipSumBase + t + (hops << 8) + totalLen + id) & 0xffff);
  if (tpl.keyPerPacket) wr32(buf, s + tpl.keyOff, key);
  if (tpl.seqOff >= 0) wr32(buf, s + tpl.seqOff, seq);
  if (tpl.csumOff >= 0) {
    // The template's checksum field is zero; the GRE header starts at an even offset of
    // the packet, so the sum over header + inner frame is one pass.
    wr16(buf, s + tpl.csumOff, internetChecksum(buf, s + GRE_OFF, totalLen - GRE_OFF));
  }
  return s;
}

/** True when an inner frame of `len` bytes encapsulated with tpl fits a path MTU (outer IPv4 size). */
export function greFits(tpl: GreTemplate, len: number, pathMtu: number): boolean {
  return tpl.size + len <= pathMtu;
}

/**
 * The largest inner IPv4 packet (the inner frame minus its untagged 14-byte Ethernet
 * header) that fits the path MTU with this template: the MTU to announce in an ICMP
 * "fragmentation needed" (RFC 1191) or to derive a TCP MSS from. For pathMtu 1500 and GRE
 * with a key: 1500 - 28 - 14 = 1458. Subtract 4 more per VLAN tag the inner frame carries.
 */
export function greInnerIpMtu(tpl: GreTemplate, pathMtu: number): number {
  return pathMtu - tpl.size - ETH_HEADER_SIZE;
}

/**
 * TOS of the inner frame's IP header (IPv4 TOS or IPv6 traffic class; after up to two
 * VLAN tags), or -1 when it carries neither — for tos=inherit.
 */
export function innerIpTos(buf: Uint8Array, start: number, len: number): number {
  let p = start + 12;
  const end = start + len;
  for (let i = 0; i < 2 && p + 4 <= end && isVlanTpid(rd16(buf, p)); i++) p += 4;
  if (p + 4 > end) return -1;
  const type = rd16(buf, p);
  if (type === ETH_TYPE_IPV4 && buf[p + 2]! >>> 4 === 4) return buf[p + 3]!;
  if (type === ETH_TYPE_IPV6 && buf[p + 2]! >>> 4 === 6) return ((buf[p + 2]! & 0x0f) << 4) | (buf[p + 3]! >>> 4);
  return -1;
}

/**
 * TTL (IPv4) or hop limit (IPv6) of the inner frame's IP header (after up to two VLAN
 * tags), or -1 when it carries neither — for ttl=inherit.
 */
export function innerIpTtl(buf: Uint8Array, start: number, len: number): number {
  let p = start + 12;
  const end = start + len;
  for (let i = 0; i < 2 && p + 4 <= end && isVlanTpid(rd16(buf, p)); i++) p += 4;
  if (p + 2 + 9 > end) return -1;
  const type = rd16(buf, p);
  if (type === ETH_TYPE_IPV4 && buf[p + 2]! >>> 4 === 4) return buf[p + 2 + 8]!;
  if (type === ETH_TYPE_IPV6 && buf[p + 2]! >>> 4 === 6) return buf[p + 2 + 7]!;
  return -1;
}

/** What a tunnel accepts on receive. */
export interface GreExpect {
  /** Required outer source address (the configured remote_ip); absent = any source. */
  remote?: number;
  /**
   * A number: the K bit must be set (else GRE_KEY_MISSING) with this key (else
   * GRE_KEY_MISMATCH). 'any' (key=flow): any key or none (reported as 0, hasKey false).
   * Absent: the packet must carry no key (else GRE_KEY_MISMATCH).
   */
  key?: number | 'any';
}

/** Preallocated per port; greDecap overwrites every field on success. */
export class GreDecapResult {
  /** The inner Ethernet frame: buf[innerStart … innerStart + innerLen). */
  innerStart = 0;
  innerLen = 0;
  /** GRE key (0 when absent) and whether the K bit was set. */
  key = 0;
  hasKey = false;
  /** Sequence number (0 when absent) and whether the S bit was set. */
  seq = 0;
  hasSeq = false;
  /** Outer source address and TOS. */
  src = 0;
  tos = 0;
}

/**
 * Validates the outer IPv4 + GRE packet buf[start … start+len) and fills `out`; returns
 * DropReason.NONE or the reason (a DropReason) to drop it.
 */
export function greDecap(
  buf: Uint8Array,
  start: number,
  len: number,
  expect: GreExpect,
  out: GreDecapResult,
): number {
  if (len > buf.length - start) len = buf.length - start;
  if (len < IPV4_MIN_HEADER_SIZE) return DropReason.IPV4_TRUNCATED;
  const verIhl = buf[start]!;
  if (verIhl >>> 4 !== IPV4_VERSION) return DropReason.IPV4_BAD_VERSION;
  const ihl = (verIhl & 0x0f) << 2;
  if (ihl < IPV4_MIN_HEADER_SIZE || ihl > len) return DropReason.IPV4_BAD_IHL;
  const totalLen = rd16(buf, start + 2);
  if (totalLen < ihl || totalLen > len) return DropReason.IPV4_BAD_TOTAL_LEN;
  if (internetChecksum(buf, start, ihl) !== 0) return DropReason.TUNNEL_IPV4_BAD_CHECKSUM;
  const src = rd32(buf, start + 12);
  if (expect.remote !== undefined && src !== expect.remote) return DropReason.TUNNEL_UNKNOWN_REMOTE;
  if (buf[start + 9] !== IPPROTO_GRE) return DropReason.TUNNEL_NOT_GRE;
  if ((rd16(buf, start + 6) & (IPV4_FLAG_MF | IPV4_FRAG_OFFSET_MASK)) !== 0) return DropReason.TUNNEL_FRAGMENT;

  const g = start + ihl;
  const greLen = totalLen - ihl;
  if (greLen < GRE_BASE_HEADER_SIZE) return DropReason.GRE_TRUNCATED;
  const flags = rd16(buf, g);
  if ((flags & GRE_VERSION_MASK) !== 0) return DropReason.GRE_BAD_VERSION;
  if ((flags & GRE_MUST_BE_ZERO) !== 0) return DropReason.GRE_BAD_FLAGS;
  const greSize = greHeaderSizeOf(flags);
  if (greSize > greLen) return DropReason.GRE_TRUNCATED;
  if (rd16(buf, g + 2) !== ETH_TYPE_TEB) return DropReason.GRE_BAD_PROTO;
  if ((flags & GRE_FLAG_C) !== 0 && internetChecksum(buf, g, greLen) !== 0) return DropReason.GRE_BAD_CHECKSUM;
  const hasKey = (flags & GRE_FLAG_K) !== 0;
  const key = hasKey ? rd32(buf, g + GRE_BASE_HEADER_SIZE + ((flags & GRE_FLAG_C) !== 0 ? GRE_OPTION_SIZE : 0)) : 0;
  const want = expect.key;
  if (want === undefined) {
    if (hasKey) return DropReason.GRE_KEY_MISMATCH;
  } else if (want !== 'any') {
    if (!hasKey) return DropReason.GRE_KEY_MISSING;
    if (key !== want) return DropReason.GRE_KEY_MISMATCH;
  }
  const innerLen = greLen - greSize;
  if (innerLen < ETH_HEADER_SIZE) return DropReason.RUNT;
  const hasSeq = (flags & GRE_FLAG_S) !== 0;
  out.innerStart = g + greSize;
  out.innerLen = innerLen;
  out.key = key;
  out.hasKey = hasKey;
  out.seq = hasSeq ? rd32(buf, g + greSize - GRE_OPTION_SIZE) : 0;
  out.hasSeq = hasSeq;
  out.src = src;
  out.tos = buf[start + 1]!;
  return DropReason.NONE;
}
