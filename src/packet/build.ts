/**
 * Frame builders: write headers (and whole frames) into a caller-provided buffer at an
 * offset and return the number of bytes written.
 *
 * Used by tests and benches to make frames, and by the daemon to originate frames such as
 * gratuitous ARP and RARP after a VM move. These take option objects and may allocate a
 * little (they are edge code, not the per-packet path); they throw a RangeError for specs
 * that cannot be encoded (e.g. options longer than the header allows). Checksums are
 * always computed: IPv4 header (RFC 791), TCP/UDP/ICMPv6 with the IPv4 or IPv6
 * pseudo-header (RFC 9293 §3.1, RFC 768, RFC 8200 §8.1), ICMP (RFC 792), GRE (RFC 2784
 * §2.5). The caller makes sure the buffer is large enough.
 *
 * Layering: buildFrame() composes the per-layer writers below; each of those can also be
 * used alone (e.g. to build a GRE template once per tunnel port).
 */
import type { Mac } from '../util/addr.js';
import { internetChecksum, pseudoHeaderSumIpv4, pseudoHeaderSumIpv6 } from '../util/checksum.js';
import { wr16, wr32 } from './bytes.js';
import {
  ARP_HTYPE_ETHERNET,
  ARP_OP_RARP_REQUEST,
  ARP_OP_REPLY,
  ARP_OP_REQUEST,
  DEFAULT_TTL,
  ETH_MIN_FRAME_SIZE,
  ETH_TYPE_ARP,
  ETH_TYPE_IPV4,
  ETH_TYPE_IPV6,
  ETH_TYPE_RARP,
  ETH_TYPE_TEB,
  GRE_FLAG_C,
  GRE_FLAG_K,
  GRE_FLAG_S,
  IPPROTO_AH,
  IPPROTO_FRAGMENT,
  IPPROTO_GRE,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV4_FLAG_DF,
  IPV4_FLAG_MF,
  TPID_8021AD,
  TPID_8021Q,
} from './constants.js';
import { writeMacAt } from './eth.js';
import { makeTci, writeVlanTag } from './vlan.js';

const BROADCAST: Mac = { hi: 0xffff, lo: 0xffffffff };
const ZERO_MAC: Mac = { hi: 0, lo: 0 };

// ---------------------------------------------------------------------------------------
// Ethernet, VLAN
// ---------------------------------------------------------------------------------------

export interface VlanTagSpec {
  vid: number;
  pcp?: number;
  dei?: boolean;
  /** Default: 0x88a8 for the outer of two tags, else 0x8100. */
  tpid?: number;
}

export interface EthSpec {
  dst: Mac;
  src: Mac;
  /** 0, 1 or 2 tags, outer first. */
  vlans?: readonly VlanTagSpec[];
}

/** Ethernet header with 0-2 VLAN tags; returns 14 + 4 * tags. */
export function writeEthHeader(
  buf: Uint8Array,
  off: number,
  dst: Mac,
  src: Mac,
  etherType: number,
  vlans: readonly VlanTagSpec[] = [],
): number {
  if (vlans.length > 2) throw new RangeError(`at most 2 VLAN tags, got ${vlans.length}`);
  writeMacAt(buf, off, dst.hi, dst.lo);
  writeMacAt(buf, off + 6, src.hi, src.lo);
  let p = off + 12;
  for (let i = 0; i < vlans.length; i++) {
    const t = vlans[i]!;
    const tpid = t.tpid ?? (vlans.length === 2 && i === 0 ? TPID_8021AD : TPID_8021Q);
    writeVlanTag(buf, p, tpid, makeTci(t.vid, t.pcp ?? 0, t.dei ?? false));
    p += 4;
  }
  wr16(buf, p, etherType);
  return p + 2 - off;
}

/** Zero-fills a frame of `size` bytes at `off` up to the 60-byte minimum; returns the new size. */
export function padFrame(buf: Uint8Array, off: number, size: number): number {
  if (size >= ETH_MIN_FRAME_SIZE) return size;
  buf.fill(0, off + size, off + ETH_MIN_FRAME_SIZE);
  return ETH_MIN_FRAME_SIZE;
}

// ---------------------------------------------------------------------------------------
// ARP, RARP
// ---------------------------------------------------------------------------------------

export interface ArpSpec {
  op: number;
  sha: Mac;
  spa: number;
  tha: Mac;
  tpa: number;
}

/** Ethernet/IPv4 ARP (or RARP) body, 28 bytes (RFC 826). */
export function writeArp(buf: Uint8Array, off: number, a: ArpSpec): number {
  wr16(buf, off, ARP_HTYPE_ETHERNET);
  wr16(buf, off + 2, ETH_TYPE_IPV4);
  buf[off + 4] = 6;
  buf[off + 5] = 4;
  wr16(buf, off + 6, a.op);
  writeMacAt(buf, off + 8, a.sha.hi, a.sha.lo);
  wr32(buf, off + 14, a.spa);
  writeMacAt(buf, off + 18, a.tha.hi, a.tha.lo);
  wr32(buf, off + 24, a.tpa);
  return 28;
}

interface ArpFrameOpts {
  vlans?: readonly VlanTagSpec[];
}

/** Broadcast "who has tpa? tell spa" from sha. */
export function buildArpRequest(
  buf: Uint8Array,
  off: number,
  o: ArpFrameOpts & { sha: Mac; spa: number; tpa: number },
): number {
  const n = writeEthHeader(buf, off, BROADCAST, o.sha, ETH_TYPE_ARP, o.vlans);
  return n + writeArp(buf, off + n, { op: ARP_OP_REQUEST, sha: o.sha, spa: o.spa, tha: ZERO_MAC, tpa: o.tpa });
}

/** Unicast "spa is at sha" to (tha, tpa). */
export function buildArpReply(
  buf: Uint8Array,
  off: number,
  o: ArpFrameOpts & { sha: Mac; spa: number; tha: Mac; tpa: number },
): number {
  const n = writeEthHeader(buf, off, o.tha, o.sha, ETH_TYPE_ARP, o.vlans);
  return n + writeArp(buf, off + n, { op: ARP_OP_REPLY, sha: o.sha, spa: o.spa, tha: o.tha, tpa: o.tpa });
}

/**
 * Gratuitous ARP announcing that `ip` is at `mac`, broadcast: by default an ARP
 * announcement (RFC 5227 §2.3: request, spa = tpa = ip, tha zero); `reply: true` sends
 * the reply form (tha = mac) some older hosts expect.
 */
export function buildGratuitousArp(
  buf: Uint8Array,
  off: number,
  o: ArpFrameOpts & { mac: Mac; ip: number; reply?: boolean },
): number {
  const n = writeEthHeader(buf, off, BROADCAST, o.mac, ETH_TYPE_ARP, o.vlans);
  const reply = o.reply ?? false;
  return (
    n +
    writeArp(buf, off + n, {
      op: reply ? ARP_OP_REPLY : ARP_OP_REQUEST,
      sha: o.mac,
      spa: o.ip,
      tha: reply ? o.mac : ZERO_MAC,
      tpa: o.ip,
    })
  );
}

/**
 * RARP "reverse request" for `mac` (RFC 903), broadcast — what a hypervisor (QEMU's
 * announce-self) sends after a migration so switches re-learn the VM's port: sha = tha =
 * mac, spa = tpa = 0.
 */
export function buildRarp(buf: Uint8Array, off: number, o: ArpFrameOpts & { mac: Mac }): number {
  const n = writeEthHeader(buf, off, BROADCAST, o.mac, ETH_TYPE_RARP, o.vlans);
  return n + writeArp(buf, off + n, { op: ARP_OP_RARP_REQUEST, sha: o.mac, spa: 0, tha: o.mac, tpa: 0 });
}

// ---------------------------------------------------------------------------------------
// IPv4, IPv6
// ---------------------------------------------------------------------------------------

export interface Ipv4Spec {
  src: number;
  dst: number;
  tos?: number;
  ttl?: number;
  id?: number;
  df?: boolean;
  mf?: boolean;
  /** Fragment offset in bytes (a multiple of 8). */
  fragOffset?: number;
  /** Raw options, a multiple of 4 bytes, at most 40. */
  options?: Uint8Array;
}

/**
 * IPv4 header (with options) for a payload of `payloadSize` bytes, checksum filled in;
 * returns the header size.
 */
export function writeIpv4Header(buf: Uint8Array, off: number, ip: Ipv4Spec, proto: number, payloadSize: number): number {
  const optSize = ip.options?.length ?? 0;
  if (optSize % 4 !== 0 || optSize > 40) throw new RangeError(`IPv4 options must be a multiple of 4 bytes ≤ 40, got ${optSize}`);
  const fragOffset = ip.fragOffset ?? 0;
  if (fragOffset % 8 !== 0 || fragOffset > 0xfff8) throw new RangeError(`bad IPv4 fragment offset ${fragOffset}`);
  const headerSize = 20 + optSize;
  if (headerSize + payloadSize > 0xffff) throw new RangeError(`IPv4 packet too large: ${headerSize + payloadSize}`);
  buf[off] = 0x40 | (headerSize >>> 2);
  buf[off + 1] = ip.tos ?? 0;
  wr16(buf, off + 2, headerSize + payloadSize);
  wr16(buf, off + 4, ip.id ?? 0);
  wr16(buf, off + 6, (ip.df === true ? IPV4_FLAG_DF : 0) | (ip.mf === true ? IPV4_FLAG_MF : 0) | (fragOffset >>> 3));
  buf[off + 8] = ip.ttl ?? DEFAULT_TTL;
  buf[off + 9] = proto;
  wr16(buf, off + 10, 0);
  wr32(buf, off + 12, ip.src);
  wr32(buf, off + 16, ip.dst);
  if (ip.options !== undefined) buf.set(ip.options, off + 20);
  wr16(buf, off + 10, internetChecksum(buf, off, headerSize));
  return headerSize;
}

/** An IPv6 extension header to put between the IPv6 header and the upper layer. */
export type Ipv6ExtSpec =
  /** Hop-by-hop (0), routing (43), destination options (60): `data` after next/len, zero-padded to 8n. */
  | { type: 0 | 43 | 60; data?: Uint8Array }
  /** Fragment (44): offset in bytes (multiple of 8), M flag, identification. */
  | { type: 44; offset?: number; more?: boolean; id?: number }
  /** Authentication header (51, RFC 4302): `data` after next/len (reserved, SPI, seq, ICV), padded to 8n ≥ 16. */
  | { type: 51; data?: Uint8Array };

export interface Ipv6Spec {
  /** 16 bytes each. */
  src: Uint8Array;
  dst: Uint8Array;
  trafficClass?: number;
  flowLabel?: number;
  hopLimit?: number;
  ext?: readonly Ipv6ExtSpec[];
}

function ipv6ExtSizeOf(e: Ipv6ExtSpec): number {
  if (e.type === IPPROTO_FRAGMENT) return 8;
  const raw = 2 + (e.data?.length ?? 0);
  const size = (raw + 7) & ~7;
  return e.type === IPPROTO_AH ? Math.max(16, size) : size;
}

/**
 * IPv6 header plus extension headers, for an upper-layer packet of `payloadSize` bytes
 * with next header `proto`; returns the size of the IPv6 header and extension headers.
 */
export function writeIpv6Header(buf: Uint8Array, off: number, ip: Ipv6Spec, proto: number, payloadSize: number): number {
  const ext = ip.ext ?? [];
  let extSize = 0;
  for (const e of ext) extSize += ipv6ExtSizeOf(e);
  if (extSize + payloadSize > 0xffff) throw new RangeError(`IPv6 payload too large: ${extSize + payloadSize}`);
  wr32(buf, off, ((6 << 28) | (((ip.trafficClass ?? 0) & 0xff) << 20) | ((ip.flowLabel ?? 0) & 0xfffff)) >>> 0);
  wr16(buf, off + 4, extSize + payloadSize);
  buf[off + 6] = ext.length > 0 ? ext[0]!.type : proto;
  buf[off + 7] = ip.hopLimit ?? DEFAULT_TTL;
  buf.set(ip.src.subarray(0, 16), off + 8);
  buf.set(ip.dst.subarray(0, 16), off + 24);
  let p = off + 40;
  for (let i = 0; i < ext.length; i++) {
    const e = ext[i]!;
    const next = i + 1 < ext.length ? ext[i + 1]!.type : proto;
    const size = ipv6ExtSizeOf(e);
    buf.fill(0, p, p + size);
    buf[p] = next;
    if (e.type === IPPROTO_FRAGMENT) {
      const fo = e.offset ?? 0;
      if (fo % 8 !== 0 || fo > 0xfff8) throw new RangeError(`bad IPv6 fragment offset ${fo}`);
      wr16(buf, p + 2, fo | (e.more === true ? 1 : 0));
      wr32(buf, p + 4, e.id ?? 0);
    } else {
      buf[p + 1] = e.type === IPPROTO_AH ? size / 4 - 2 : size / 8 - 1;
      if (e.data !== undefined) buf.set(e.data, p + 2);
    }
    p += size;
  }
  return p - off;
}

// ---------------------------------------------------------------------------------------
// UDP, TCP, ICMP, GRE
// ---------------------------------------------------------------------------------------

/** UDP header for `udpSize` = 8 + data bytes; checksum 0 (set it with setL4Checksum*). */
export function writeUdpHeader(buf: Uint8Array, off: number, srcPort: number, dstPort: number, udpSize: number): number {
  wr16(buf, off, srcPort);
  wr16(buf, off + 2, dstPort);
  wr16(buf, off + 4, udpSize);
  wr16(buf, off + 6, 0);
  return 8;
}

export interface TcpSpec {
  srcPort: number;
  dstPort: number;
  seq?: number;
  ack?: number;
  /** The 12 flag bits (TCP_SYN | TCP_ACK …). */
  flags?: number;
  window?: number;
  urgent?: number;
  /** Raw options; padded with zeros (EOL) to a multiple of 4, at most 40 bytes. */
  options?: Uint8Array;
}

function tcpHeaderSizeOf(t: TcpSpec): number {
  const n = t.options?.length ?? 0;
  if (n > 40) throw new RangeError(`TCP options at most 40 bytes, got ${n}`);
  return 20 + ((n + 3) & ~3);
}

/** TCP header, checksum 0 (set it with setL4Checksum*); returns the header size. */
export function writeTcpHeader(buf: Uint8Array, off: number, t: TcpSpec): number {
  const size = tcpHeaderSizeOf(t);
  wr16(buf, off, t.srcPort);
  wr16(buf, off + 2, t.dstPort);
  wr32(buf, off + 4, t.seq ?? 0);
  wr32(buf, off + 8, t.ack ?? 0);
  wr16(buf, off + 12, ((size >>> 2) << 12) | ((t.flags ?? 0) & 0x0fff));
  wr16(buf, off + 14, t.window ?? 65535);
  wr16(buf, off + 16, 0);
  wr16(buf, off + 18, t.urgent ?? 0);
  buf.fill(0, off + 20, off + size);
  if (t.options !== undefined) buf.set(t.options, off + 20);
  return size;
}

/** ICMP/ICMPv6 header: type, code, checksum 0, then the 4 type-specific bytes `rest`. */
export function writeIcmpHeader(buf: Uint8Array, off: number, type: number, code: number, rest = 0): number {
  buf[off] = type;
  buf[off + 1] = code;
  wr16(buf, off + 2, 0);
  wr32(buf, off + 4, rest);
  return 8;
}

export interface GreSpec {
  /** Protocol type; default 0x6558 (Transparent Ethernet Bridging). */
  protocol?: number;
  /** Present (K bit) when given. */
  key?: number;
  /** Present (S bit) when given. */
  seq?: number;
  /** C bit: a checksum over header and payload (fill it with setGreChecksum). */
  checksum?: boolean;
}

export function greHeaderSizeOfSpec(g: GreSpec): number {
  return 4 + (g.checksum === true ? 4 : 0) + (g.key !== undefined ? 4 : 0) + (g.seq !== undefined ? 4 : 0);
}

/** GRE header (RFC 2784/2890), checksum field 0; returns the header size. */
export function writeGreHeader(buf: Uint8Array, off: number, g: GreSpec): number {
  const flags =
    (g.checksum === true ? GRE_FLAG_C : 0) | (g.key !== undefined ? GRE_FLAG_K : 0) | (g.seq !== undefined ? GRE_FLAG_S : 0);
  wr16(buf, off, flags);
  wr16(buf, off + 2, g.protocol ?? ETH_TYPE_TEB);
  let p = off + 4;
  if (g.checksum === true) {
    wr32(buf, p, 0); // checksum + reserved1
    p += 4;
  }
  if (g.key !== undefined) {
    wr32(buf, p, g.key);
    p += 4;
  }
  if (g.seq !== undefined) {
    wr32(buf, p, g.seq);
    p += 4;
  }
  return p - off;
}

/** Fills the GRE checksum (C bit set) over header + payload, `greSize` bytes at `off` (RFC 2784 §2.5). */
export function setGreChecksum(buf: Uint8Array, off: number, greSize: number): void {
  wr16(buf, off + 4, 0);
  wr16(buf, off + 4, internetChecksum(buf, off, greSize));
}

/** Offset of the checksum field within the header of transport `proto`, or -1 if none. */
function l4ChecksumField(proto: number): number {
  if (proto === IPPROTO_TCP) return 16;
  if (proto === IPPROTO_UDP) return 6;
  if (proto === IPPROTO_ICMP || proto === IPPROTO_ICMPV6) return 2;
  return -1;
}

/**
 * Fills the checksum of the TCP, UDP or ICMP packet (`l4Size` bytes at `l4Off`) carried in
 * the IPv4 header at `ipOff`. ICMP has no pseudo-header (RFC 792); UDP sends a computed 0
 * as 0xffff (RFC 768).
 */
export function setL4ChecksumIpv4(buf: Uint8Array, ipOff: number, l4Off: number, l4Size: number, proto: number): void {
  const field = l4ChecksumField(proto);
  if (field < 0) return;
  wr16(buf, l4Off + field, 0);
  const initial =
    proto === IPPROTO_ICMP
      ? 0
      : pseudoHeaderSumIpv4(
          ((buf[ipOff + 12]! << 24) | (buf[ipOff + 13]! << 16) | (buf[ipOff + 14]! << 8) | buf[ipOff + 15]!) >>> 0,
          ((buf[ipOff + 16]! << 24) | (buf[ipOff + 17]! << 16) | (buf[ipOff + 18]! << 8) | buf[ipOff + 19]!) >>> 0,
          proto,
          l4Size,
        );
  let csum = internetChecksum(buf, l4Off, l4Size, initial);
  if (csum === 0 && proto === IPPROTO_UDP) csum = 0xffff;
  wr16(buf, l4Off + field, csum);
}

/**
 * Fills the checksum of the TCP, UDP or ICMPv6 packet at `l4Off` carried in the IPv6
 * header at `ipOff` (pseudo-header with the header's destination; a routing header's final
 * destination is not looked up).
 */
export function setL4ChecksumIpv6(buf: Uint8Array, ipOff: number, l4Off: number, l4Size: number, proto: number): void {
  const field = l4ChecksumField(proto);
  if (field < 0) return;
  wr16(buf, l4Off + field, 0);
  let csum = internetChecksum(buf, l4Off, l4Size, pseudoHeaderSumIpv6(buf, ipOff + 8, ipOff + 24, proto, l4Size));
  if (csum === 0 && proto === IPPROTO_UDP) csum = 0xffff;
  wr16(buf, l4Off + field, csum);
}

// ---------------------------------------------------------------------------------------
// Whole frames
// ---------------------------------------------------------------------------------------

export type L4Spec =
  | ({ proto: 'udp' } & { srcPort: number; dstPort: number })
  | ({ proto: 'tcp' } & TcpSpec)
  /** ICMP in IPv4, ICMPv6 in IPv6. */
  | { proto: 'icmp'; type: number; code: number; rest?: number }
  | ({ proto: 'gre' } & GreSpec)
  /** Any other protocol number; `payload` is its whole content. */
  | { proto: 'raw'; number: number };

export type IpSpec = ({ version: 4 } & Ipv4Spec) | ({ version: 6 } & Ipv6Spec);

export interface FrameSpec extends EthSpec {
  /** Required when `ip` is absent; otherwise implied by the IP version. */
  etherType?: number;
  ip?: IpSpec;
  /** Required when `ip` is given. */
  l4?: L4Spec;
  /** Bytes after the innermost header built (for GRE: the encapsulated frame). */
  payload?: Uint8Array;
}

function l4ProtoNumber(l4: L4Spec, version: 4 | 6): number {
  switch (l4.proto) {
    case 'udp':
      return IPPROTO_UDP;
    case 'tcp':
      return IPPROTO_TCP;
    case 'icmp':
      return version === 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6;
    case 'gre':
      return IPPROTO_GRE;
    case 'raw':
      return l4.number;
  }
}

function l4HeaderSize(l4: L4Spec): number {
  switch (l4.proto) {
    case 'udp':
      return 8;
    case 'tcp':
      return tcpHeaderSizeOf(l4);
    case 'icmp':
      return 8;
    case 'gre':
      return greHeaderSizeOfSpec(l4);
    case 'raw':
      return 0;
  }
}

/**
 * A whole frame: Ethernet (+ tags), then either `payload` after an arbitrary `etherType`,
 * or IPv4/IPv6 + transport header + payload, every checksum filled in. Returns the frame
 * size (not padded to 60 bytes: see padFrame).
 */
export function buildFrame(buf: Uint8Array, off: number, f: FrameSpec): number {
  const payload = f.payload ?? new Uint8Array(0);
  if (f.ip === undefined) {
    if (f.etherType === undefined) throw new RangeError('buildFrame: etherType or ip is required');
    const n = writeEthHeader(buf, off, f.dst, f.src, f.etherType, f.vlans);
    buf.set(payload, off + n);
    return n + payload.length;
  }
  const ip = f.ip;
  const l4 = f.l4;
  if (l4 === undefined) throw new RangeError('buildFrame: l4 is required with ip');
  const ethSize = writeEthHeader(buf, off, f.dst, f.src, ip.version === 4 ? ETH_TYPE_IPV4 : ETH_TYPE_IPV6, f.vlans);
  const ipOff = off + ethSize;
  const proto = l4ProtoNumber(l4, ip.version);
  const l4Size = l4HeaderSize(l4) + payload.length;
  const ipSize =
    ip.version === 4 ? writeIpv4Header(buf, ipOff, ip, proto, l4Size) : writeIpv6Header(buf, ipOff, ip, proto, l4Size);
  const l4Off = ipOff + ipSize;
  let h: number;
  switch (l4.proto) {
    case 'udp':
      h = writeUdpHeader(buf, l4Off, l4.srcPort, l4.dstPort, l4Size);
      break;
    case 'tcp':
      h = writeTcpHeader(buf, l4Off, l4);
      break;
    case 'icmp':
      h = writeIcmpHeader(buf, l4Off, l4.type, l4.code, l4.rest ?? 0);
      break;
    case 'gre':
      h = writeGreHeader(buf, l4Off, l4);
      break;
    case 'raw':
      h = 0;
      break;
  }
  buf.set(payload, l4Off + h);
  if (l4.proto === 'gre') {
    if (l4.checksum === true) setGreChecksum(buf, l4Off, l4Size);
  } else if (l4.proto === 'raw') {
    // The caller's bytes are taken as they are.
  } else if (ip.version === 4) {
    setL4ChecksumIpv4(buf, ipOff, l4Off, l4Size, proto);
  } else {
    setL4ChecksumIpv6(buf, ipOff, l4Off, l4Size, proto);
  }
  return l4Off + l4Size - off;
}
