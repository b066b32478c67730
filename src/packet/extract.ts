/**
 * extract(): parse one Ethernet frame into its flow key (key.ts) and say whether it must be
 * dropped (drop.ts). extractBatch() does it for every frame of a FrameBatch.
 *
 * Order of work for one frame (each step only after the previous one succeeded):
 *
 *   1. Zero the key's words; IN_PORT = inPort; L3_OFF/L4_OFF/L7_OFF = OFF_ABSENT.
 *   2. Ethernet: < 14 bytes → RUNT. DL_DST/DL_SRC.
 *   3. Up to two VLAN tags: the outer TPID may be 0x8100, 0x88a8 or 0x9100, the inner one
 *      0x8100 or 0x88a8 (a third tag is left alone and becomes DL_TYPE, as Open vSwitch
 *      does). A TPID without room for TCI + next type → VLAN_TRUNCATED. VLAN_TCI =
 *      TCI | 0x1000 (tag present; the DEI bit is not kept), VLAN_TPID = the TPID.
 *   4. DL_TYPE: the EtherType, or 0x05ff for an 802.3 length field (frame ends there).
 *      Ethertypes other than IPv4/IPv6/ARP/RARP: L2 fields only, L3_OFF stays absent.
 *   5. ARP/RARP: L3_OFF; fixed part < 8 bytes → ARP_TRUNCATED; not Ethernet/IPv4 → done,
 *      fields zero; hlen/plen not 6/4 → ARP_BAD_FORMAT; < 28 bytes → ARP_TRUNCATED.
 *   6. IPv4: L3_OFF; < 20 bytes → IPV4_TRUNCATED; version → IPV4_BAD_VERSION; IHL < 5 or
 *      past the frame → IPV4_BAD_IHL; total length < IHL*4 or past the frame →
 *      IPV4_BAD_TOTAL_LEN. Options are skipped. The packet ends at total length: bytes
 *      after it are Ethernet padding and are ignored. A later fragment (offset ≠ 0) stops
 *      here with NW_FRAG = ANY|LATER and no L4.
 *   7. IPv6: L3_OFF; < 40 bytes → IPV6_TRUNCATED; version → IPV6_BAD_VERSION; payload
 *      length past the frame → IPV6_BAD_PAYLOAD_LEN. Extension headers hop-by-hop,
 *      routing, destination options, AH and fragment are skipped (one running past the
 *      payload → IPV6_EXT_TRUNCATED); a fragment header sets NW_FRAG, and a later
 *      fragment stops there (NW_PROTO = the fragment header's next header, no L4).
 *   8. L4 (L4_OFF = the upper-layer header for every non-later IP packet, whatever its
 *      protocol): TCP (< 20 → TCP_TRUNCATED; data offset < 5 or past the packet →
 *      TCP_BAD_DATA_OFFSET), UDP (< 8 → UDP_TRUNCATED; length < 8, or past the packet when
 *      it is not a fragment → UDP_BAD_LENGTH), ICMP in IPv4 / ICMPv6 in IPv6 (< 8 → ICMP(V6)_TRUNCATED; type →
 *      TP_SRC, code → TP_DST), GRE (< 4 → GRE_TRUNCATED; version ≠ 0 → GRE_BAD_VERSION;
 *      R, s or Recur-MSB bit → GRE_BAD_FLAGS (RFC 2784 §2.3); options past the packet →
 *      GRE_TRUNCATED; the inner frame is not parsed). L7_OFF = after the TCP/UDP/ICMP/GRE
 *      header (for GRE: the encapsulated frame).
 *
 * Invariants: never throws, never allocates (only integer math on Uint8Array indices and
 * Uint32Array stores), reads only buf[off … off+len) (len is clamped to the buffer), and
 * every offset it stores is ≤ len. On a drop the key is filled up to the failing layer.
 * The caller guarantees keyOff + KEY_WORDS ≤ key.length (the batch's key rows do).
 *
 * native/extract.c is the same parser in C (for the native fast path to come): a change
 * here must be made there too; test/unit/native/extract.test.ts holds the two equal.
 *
 * Cost model: straight-line code, one pass over the headers, no loops except over IPv6
 * extension headers; a UDP/IPv4 frame is ~40 byte loads, one 144-byte row copy (zeroing)
 * and ~15 word stores — about 45 ns on the 2-core development machine (Node 20).
 */
import { K, KEY_WORDS, OFF_ABSENT, DL_TYPE_NOT_ETH_TYPE, NW_FRAG_ANY, NW_FRAG_LATER } from './key.js';
import { DropReason } from './drop.js';
import type { FrameBatch } from './batch.js';
import {
  ARP_HTYPE_ETHERNET,
  ETH_TYPE_ARP,
  ETH_TYPE_IPV4,
  ETH_TYPE_IPV6,
  ETH_TYPE_MIN,
  ETH_TYPE_RARP,
  GRE_MUST_BE_ZERO,
  GRE_VERSION_MASK,
  GRE_FLAG_C,
  GRE_FLAG_K,
  GRE_FLAG_S,
  IPPROTO_AH,
  IPPROTO_DSTOPTS,
  IPPROTO_FRAGMENT,
  IPPROTO_GRE,
  IPPROTO_HOPOPTS,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_ROUTING,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV4_FRAG_OFFSET_MASK,
  IPV4_FLAG_MF,
  IPV6_FRAG_OFFSET_MASK,
  TPID_8021AD,
  TPID_8021Q,
  TPID_QINQ_LEGACY,
  VLAN_TCI_PRESENT,
} from './constants.js';

/** Signed 32-bit big-endian read; stored into a Uint32Array it becomes the unsigned value. */
function rd32i(buf: Uint8Array, p: number): number {
  return (buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!;
}
function rd16(buf: Uint8Array, p: number): number {
  return (buf[p]! << 8) | buf[p + 1]!;
}

/** Source for zeroing a key row: one memcpy (`set`) is cheaper than `fill` or a loop here. */
const ZERO_KEY = new Uint32Array(KEY_WORDS);

/**
 * Parses the frame buf[off … off+len) into key[keyOff … keyOff+KEY_WORDS) and returns
 * DropReason.NONE, or the reason to drop it.
 */
export function extract(
  buf: Uint8Array,
  off: number,
  len: number,
  key: Uint32Array,
  keyOff: number,
  inPort: number,
): DropReason {
  const k = keyOff;
  key.set(ZERO_KEY, k);
  key[k + K.IN_PORT] = inPort;
  key[k + K.L3_OFF] = OFF_ABSENT;
  key[k + K.L4_OFF] = OFF_ABSENT;
  key[k + K.L7_OFF] = OFF_ABSENT;
  if (len > buf.length - off) len = buf.length - off;
  if (len < 14) return DropReason.RUNT;
  const end = off + len;

  key[k + K.DL_DST_HI] = rd16(buf, off);
  key[k + K.DL_DST_LO] = rd32i(buf, off + 2);
  key[k + K.DL_SRC_HI] = rd16(buf, off + 6);
  key[k + K.DL_SRC_LO] = rd32i(buf, off + 8);

  let p = off + 12; // the type/length field, or a TPID
  let type = rd16(buf, p);
  if (type === TPID_8021Q || type === TPID_8021AD || type === TPID_QINQ_LEGACY) {
    if (end - p < 6) return DropReason.VLAN_TRUNCATED;
    key[k + K.VLAN_TPID] = type;
    key[k + K.VLAN_TCI] = rd16(buf, p + 2) | VLAN_TCI_PRESENT;
    p += 4;
    type = rd16(buf, p);
    if (type === TPID_8021Q || type === TPID_8021AD) {
      if (end - p < 6) return DropReason.VLAN_TRUNCATED;
      key[k + K.VLAN2_TPID] = type;
      key[k + K.VLAN2_TCI] = rd16(buf, p + 2) | VLAN_TCI_PRESENT;
      p += 4;
      type = rd16(buf, p);
    }
  }
  p += 2; // first byte after the L2 headers
  if (type < ETH_TYPE_MIN) {
    key[k + K.DL_TYPE] = DL_TYPE_NOT_ETH_TYPE;
    return DropReason.NONE;
  }
  key[k + K.DL_TYPE] = type;
  if (type === ETH_TYPE_IPV4) return extractIpv4(buf, off, p, end, key, k);
  if (type === ETH_TYPE_IPV6) return extractIpv6(buf, off, p, end, key, k);
  if (type === ETH_TYPE_ARP || type === ETH_TYPE_RARP) return extractArp(buf, off, p, end, key, k);
  return DropReason.NONE;
}

/** ARP/RARP header at p; the frame ends at end. */
function extractArp(buf: Uint8Array, off: number, p: number, end: number, key: Uint32Array, k: number): DropReason {
  key[k + K.L3_OFF] = p - off;
  if (end - p < 8) return DropReason.ARP_TRUNCATED;
  if (rd16(buf, p) !== ARP_HTYPE_ETHERNET || rd16(buf, p + 2) !== ETH_TYPE_IPV4) return DropReason.NONE;
  if (buf[p + 4] !== 6 || buf[p + 5] !== 4) return DropReason.ARP_BAD_FORMAT;
  if (end - p < 28) return DropReason.ARP_TRUNCATED;
  key[k + K.NW_PROTO] = buf[p + 7]!; // low 8 bits of the opcode
  key[k + K.ARP_SHA_HI] = rd16(buf, p + 8);
  key[k + K.ARP_SHA_LO] = rd32i(buf, p + 10);
  key[k + K.NW_SRC] = rd32i(buf, p + 14);
  key[k + K.ARP_THA_HI] = rd16(buf, p + 18);
  key[k + K.ARP_THA_LO] = rd32i(buf, p + 20);
  key[k + K.NW_DST] = rd32i(buf, p + 24);
  return DropReason.NONE;
}

/** IPv4 header at p; the frame ends at end. */
function extractIpv4(buf: Uint8Array, off: number, p: number, end: number, key: Uint32Array, k: number): DropReason {
  key[k + K.L3_OFF] = p - off;
  if (end - p < 20) return DropReason.IPV4_TRUNCATED;
  const verIhl = buf[p]!;
  if (verIhl >>> 4 !== 4) return DropReason.IPV4_BAD_VERSION;
  const headerSize = (verIhl & 0x0f) << 2;
  if (headerSize < 20 || headerSize > end - p) return DropReason.IPV4_BAD_IHL;
  const totalLen = rd16(buf, p + 2);
  if (totalLen < headerSize || totalLen > end - p) return DropReason.IPV4_BAD_TOTAL_LEN;
  const proto = buf[p + 9]!;
  key[k + K.NW_TOS] = buf[p + 1]!;
  key[k + K.NW_TTL] = buf[p + 8]!;
  key[k + K.NW_PROTO] = proto;
  key[k + K.NW_SRC] = rd32i(buf, p + 12);
  key[k + K.NW_DST] = rd32i(buf, p + 16);
  const frag = rd16(buf, p + 6);
  if ((frag & (IPV4_FLAG_MF | IPV4_FRAG_OFFSET_MASK)) !== 0) {
    if ((frag & IPV4_FRAG_OFFSET_MASK) !== 0) {
      key[k + K.NW_FRAG] = NW_FRAG_ANY | NW_FRAG_LATER;
      return DropReason.NONE;
    }
    key[k + K.NW_FRAG] = NW_FRAG_ANY;
  }
  return extractL4(buf, off, p + headerSize, p + totalLen, proto, IPPROTO_ICMP, key, k);
}

/** IPv6 header at p; the frame ends at end. */
function extractIpv6(buf: Uint8Array, off: number, p: number, end: number, key: Uint32Array, k: number): DropReason {
  key[k + K.L3_OFF] = p - off;
  if (end - p < 40) return DropReason.IPV6_TRUNCATED;
  if (buf[p]! >>> 4 !== 6) return DropReason.IPV6_BAD_VERSION;
  const payloadLen = rd16(buf, p + 4);
  if (payloadLen > end - p - 40) return DropReason.IPV6_BAD_PAYLOAD_LEN;
  key[k + K.NW_TOS] = (rd16(buf, p) >>> 4) & 0xff;
  key[k + K.IPV6_LABEL] = rd32i(buf, p) & 0xfffff;
  key[k + K.NW_TTL] = buf[p + 7]!;
  key[k + K.IPV6_SRC] = rd32i(buf, p + 8);
  key[k + K.IPV6_SRC + 1] = rd32i(buf, p + 12);
  key[k + K.IPV6_SRC + 2] = rd32i(buf, p + 16);
  key[k + K.IPV6_SRC + 3] = rd32i(buf, p + 20);
  key[k + K.IPV6_DST] = rd32i(buf, p + 24);
  key[k + K.IPV6_DST + 1] = rd32i(buf, p + 28);
  key[k + K.IPV6_DST + 2] = rd32i(buf, p + 32);
  key[k + K.IPV6_DST + 3] = rd32i(buf, p + 36);
  let next = buf[p + 6]!;
  let q = p + 40;
  const pend = q + payloadLen;
  // Each extension header is ≥ 8 bytes and must end inside the payload: the loop ends.
  for (;;) {
    if (next === IPPROTO_HOPOPTS || next === IPPROTO_ROUTING || next === IPPROTO_DSTOPTS || next === IPPROTO_AH) {
      if (pend - q < 8) return DropReason.IPV6_EXT_TRUNCATED;
      const size = next === IPPROTO_AH ? (buf[q + 1]! + 2) << 2 : (buf[q + 1]! + 1) << 3;
      if (size > pend - q) return DropReason.IPV6_EXT_TRUNCATED;
      next = buf[q]!;
      q += size;
    } else if (next === IPPROTO_FRAGMENT) {
      if (pend - q < 8) return DropReason.IPV6_EXT_TRUNCATED;
      const fragOffset = rd16(buf, q + 2) & IPV6_FRAG_OFFSET_MASK;
      next = buf[q]!;
      q += 8;
      if (fragOffset !== 0) {
        key[k + K.NW_FRAG] = NW_FRAG_ANY | NW_FRAG_LATER;
        key[k + K.NW_PROTO] = next;
        return DropReason.NONE;
      }
      key[k + K.NW_FRAG] = NW_FRAG_ANY;
    } else {
      break;
    }
  }
  key[k + K.NW_PROTO] = next;
  return extractL4(buf, off, q, pend, next, IPPROTO_ICMPV6, key, k);
}

/**
 * Transport header of protocol `proto` at p; the IP packet ends at end. `icmpProto` is the
 * ICMP flavour of this IP version (1 for IPv4, 58 for IPv6).
 */
function extractL4(
  buf: Uint8Array,
  off: number,
  p: number,
  end: number,
  proto: number,
  icmpProto: number,
  key: Uint32Array,
  k: number,
): DropReason {
  key[k + K.L4_OFF] = p - off;
  const avail = end - p;
  if (proto === IPPROTO_UDP) {
    if (avail < 8) return DropReason.UDP_TRUNCATED;
    const udpLen = rd16(buf, p + 4);
    // A first fragment carries the length of the whole datagram: only check it when the
    // packet is not a fragment.
    if (udpLen < 8 || (udpLen > avail && key[k + K.NW_FRAG] === 0)) return DropReason.UDP_BAD_LENGTH;
    key[k + K.TP_SRC] = rd16(buf, p);
    key[k + K.TP_DST] = rd16(buf, p + 2);
    key[k + K.L7_OFF] = p + 8 - off;
  } else if (proto === IPPROTO_TCP) {
    if (avail < 20) return DropReason.TCP_TRUNCATED;
    const headerSize = (buf[p + 12]! >>> 4) << 2;
    if (headerSize < 20 || headerSize > avail) return DropReason.TCP_BAD_DATA_OFFSET;
    key[k + K.TP_SRC] = rd16(buf, p);
    key[k + K.TP_DST] = rd16(buf, p + 2);
    key[k + K.TCP_FLAGS] = rd16(buf, p + 12) & 0x0fff;
    key[k + K.L7_OFF] = p + headerSize - off;
  } else if (proto === icmpProto) {
    if (avail < 8) return proto === IPPROTO_ICMP ? DropReason.ICMP_TRUNCATED : DropReason.ICMPV6_TRUNCATED;
    key[k + K.TP_SRC] = buf[p]!;
    key[k + K.TP_DST] = buf[p + 1]!;
    key[k + K.L7_OFF] = p + 8 - off;
  } else if (proto === IPPROTO_GRE) {
    if (avail < 4) return DropReason.GRE_TRUNCATED;
    const flags = rd16(buf, p);
    if ((flags & GRE_VERSION_MASK) !== 0) return DropReason.GRE_BAD_VERSION;
    if ((flags & GRE_MUST_BE_ZERO) !== 0) return DropReason.GRE_BAD_FLAGS;
    const headerSize =
      4 + ((flags & GRE_FLAG_C) !== 0 ? 4 : 0) + ((flags & GRE_FLAG_K) !== 0 ? 4 : 0) + ((flags & GRE_FLAG_S) !== 0 ? 4 : 0);
    if (headerSize > avail) return DropReason.GRE_TRUNCATED;
    key[k + K.L7_OFF] = p + headerSize - off;
  }
  return DropReason.NONE;
}

/**
 * Runs extract() on frames 0 … batch.count-1 of the batch, filling batch.key rows and
 * batch.drop; returns the number of frames with a drop reason.
 */
export function extractBatch(batch: FrameBatch): number {
  const slab = batch.slab;
  const start = batch.start;
  const len = batch.len;
  const key = batch.key;
  const drop = batch.drop;
  const inPort = batch.inPort;
  const n = batch.count;
  let nDropped = 0;
  for (let i = 0; i < n; i++) {
    const reason = extract(slab, start[i]!, len[i]!, key, i * KEY_WORDS, inPort);
    drop[i] = reason;
    if (reason !== DropReason.NONE) nDropped++;
  }
  return nDropped;
}
