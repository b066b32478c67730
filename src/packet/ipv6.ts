/**
 * IPv6 header (RFC 8200 §3) and its extension headers (§4). `off` is the first byte of the
 * IPv6 header, or of the extension header for the ext* functions.
 *
 *   0-3 ver(4) | traffic class(8) | flow label(20)   4-5 payload length   6 next header
 *   7 hop limit   8-23 src   24-39 dst
 *
 * Extension headers: hop-by-hop (0), routing (43), destination options (60): next(1)
 * len(1) in 8-byte units not counting the first 8; fragment (44): fixed 8 bytes; AH (51,
 * RFC 4302 §2.2): len in 4-byte units minus 2.
 */
import { rd16, rd32, wr16, wr32 } from './bytes.js';
import {
  IPPROTO_AH,
  IPPROTO_DSTOPTS,
  IPPROTO_FRAGMENT,
  IPPROTO_HOPOPTS,
  IPPROTO_ROUTING,
  IPV6_FLOW_LABEL_MASK,
  IPV6_FRAG_MF,
  IPV6_FRAG_OFFSET_MASK,
} from './constants.js';

export const IPV6_VER_TC_FL = 0;
export const IPV6_PAYLOAD_LEN = 4;
export const IPV6_NEXT = 6;
export const IPV6_HOP_LIMIT = 7;
export const IPV6_SRC = 8;
export const IPV6_DST = 24;
export { IPV6_HEADER_SIZE, IPV6_FRAG_HEADER_SIZE } from './constants.js';

/** Extension header fields (relative to the extension header). */
export const IPV6_EXT_NEXT = 0;
export const IPV6_EXT_LEN = 1;
/** Fragment header (RFC 8200 §4.5): next(1) reserved(1) offset<<3|res|M (2) id(4). */
export const IPV6_FRAG_WORD = 2;
export const IPV6_FRAG_ID = 4;

export function ipv6Version(buf: Uint8Array, off: number): number {
  return buf[off]! >>> 4;
}
export function ipv6TrafficClass(buf: Uint8Array, off: number): number {
  return (rd16(buf, off) >>> 4) & 0xff;
}
export function ipv6FlowLabel(buf: Uint8Array, off: number): number {
  return rd32(buf, off) & IPV6_FLOW_LABEL_MASK;
}
export function ipv6PayloadLen(buf: Uint8Array, off: number): number {
  return rd16(buf, off + IPV6_PAYLOAD_LEN);
}
export function ipv6Next(buf: Uint8Array, off: number): number {
  return buf[off + IPV6_NEXT]!;
}
export function ipv6HopLimit(buf: Uint8Array, off: number): number {
  return buf[off + IPV6_HOP_LIMIT]!;
}
/** Word `i` (0-3, network order) of the source address. */
export function ipv6SrcWord(buf: Uint8Array, off: number, i: number): number {
  return rd32(buf, off + IPV6_SRC + 4 * i);
}
export function ipv6DstWord(buf: Uint8Array, off: number, i: number): number {
  return rd32(buf, off + IPV6_DST + 4 * i);
}

export function setIpv6VerTcFl(buf: Uint8Array, off: number, trafficClass: number, flowLabel: number): void {
  wr32(buf, off, ((6 << 28) | ((trafficClass & 0xff) << 20) | (flowLabel & IPV6_FLOW_LABEL_MASK)) >>> 0);
}
export function setIpv6PayloadLen(buf: Uint8Array, off: number, size: number): void {
  wr16(buf, off + IPV6_PAYLOAD_LEN, size);
}
export function setIpv6Next(buf: Uint8Array, off: number, next: number): void {
  buf[off + IPV6_NEXT] = next;
}
export function setIpv6HopLimit(buf: Uint8Array, off: number, hopLimit: number): void {
  buf[off + IPV6_HOP_LIMIT] = hopLimit;
}

/** True for the extension headers extract() skips to reach the upper-layer protocol. */
export function isIpv6ExtHeader(next: number): boolean {
  return (
    next === IPPROTO_HOPOPTS ||
    next === IPPROTO_ROUTING ||
    next === IPPROTO_FRAGMENT ||
    next === IPPROTO_DSTOPTS ||
    next === IPPROTO_AH
  );
}
/**
 * Size in bytes of extension header `type` at `off` (needs 2 readable bytes at `off`;
 * the fragment header is fixed-size and reads nothing).
 */
export function ipv6ExtSize(buf: Uint8Array, off: number, type: number): number {
  if (type === IPPROTO_FRAGMENT) return 8;
  if (type === IPPROTO_AH) return (buf[off + IPV6_EXT_LEN]! + 2) << 2;
  return (buf[off + IPV6_EXT_LEN]! + 1) << 3;
}
export function ipv6ExtNext(buf: Uint8Array, off: number): number {
  return buf[off + IPV6_EXT_NEXT]!;
}
/** Fragment offset in bytes, from a fragment header at `off`. */
export function ipv6FragOffset(buf: Uint8Array, off: number): number {
  return rd16(buf, off + IPV6_FRAG_WORD) & IPV6_FRAG_OFFSET_MASK;
}
export function ipv6FragMore(buf: Uint8Array, off: number): boolean {
  return (rd16(buf, off + IPV6_FRAG_WORD) & IPV6_FRAG_MF) !== 0;
}
export function ipv6FragId(buf: Uint8Array, off: number): number {
  return rd32(buf, off + IPV6_FRAG_ID);
}
