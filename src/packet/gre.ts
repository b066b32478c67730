/**
 * GRE header (RFC 2784 §2, RFC 2890 §2). `off` is the GRE header.
 *
 *   0-1 C R K S s Recur(3) | Flags(5) Ver(3)   2-3 protocol type (EtherType)
 *   then, in this order and only if their bit is set:
 *   checksum(2)+reserved1(2) [C]   key(4) [K]   sequence number(4) [S]
 *
 * For lime the protocol type is 0x6558 (Transparent Ethernet Bridging) and the key carries
 * the tunnel id.
 */
import { rd16, rd32, wr16, wr32 } from './bytes.js';
import {
  GRE_BASE_HEADER_SIZE,
  GRE_FLAG_C,
  GRE_FLAG_K,
  GRE_FLAG_S,
  GRE_MUST_BE_ZERO,
  GRE_OPTION_SIZE,
  GRE_VERSION_MASK,
} from './constants.js';

export const GRE_FLAGS = 0;
export const GRE_PROTO = 2;
export const GRE_OPTIONS = 4;
export { GRE_BASE_HEADER_SIZE } from './constants.js';

/** The first 16 bits: flags and version. */
export function greFlags(buf: Uint8Array, off: number): number {
  return rd16(buf, off + GRE_FLAGS);
}
export function greVersion(buf: Uint8Array, off: number): number {
  return buf[off + 1]! & GRE_VERSION_MASK;
}
export function greProto(buf: Uint8Array, off: number): number {
  return rd16(buf, off + GRE_PROTO);
}
/** Header size implied by the flag word (4 + 4 per present C/K/S option). */
export function greHeaderSizeOf(flags: number): number {
  return (
    GRE_BASE_HEADER_SIZE +
    ((flags & GRE_FLAG_C) !== 0 ? GRE_OPTION_SIZE : 0) +
    ((flags & GRE_FLAG_K) !== 0 ? GRE_OPTION_SIZE : 0) +
    ((flags & GRE_FLAG_S) !== 0 ? GRE_OPTION_SIZE : 0)
  );
}
export function greHeaderSize(buf: Uint8Array, off: number): number {
  return greHeaderSizeOf(rd16(buf, off + GRE_FLAGS));
}
/** True when the flag word passes RFC 2784 §2.3's receive rules (version aside). */
export function greFlagsValid(flags: number): boolean {
  return (flags & GRE_MUST_BE_ZERO) === 0;
}
/** Offset (relative to the header) of the key field; the K bit must be set. */
export function greKeyOffset(flags: number): number {
  return GRE_OPTIONS + ((flags & GRE_FLAG_C) !== 0 ? GRE_OPTION_SIZE : 0);
}
/** Offset (relative to the header) of the sequence number; the S bit must be set. */
export function greSeqOffset(flags: number): number {
  return greKeyOffset(flags) + ((flags & GRE_FLAG_K) !== 0 ? GRE_OPTION_SIZE : 0);
}
export function greChecksum(buf: Uint8Array, off: number): number {
  return rd16(buf, off + GRE_OPTIONS);
}
/** The key (unsigned), or 0 when the K bit is clear. */
export function greKey(buf: Uint8Array, off: number): number {
  const flags = rd16(buf, off);
  return (flags & GRE_FLAG_K) !== 0 ? rd32(buf, off + greKeyOffset(flags)) : 0;
}
/** The sequence number, or 0 when the S bit is clear. */
export function greSeq(buf: Uint8Array, off: number): number {
  const flags = rd16(buf, off);
  return (flags & GRE_FLAG_S) !== 0 ? rd32(buf, off + greSeqOffset(flags)) : 0;
}

export function setGreFlagsProto(buf: Uint8Array, off: number, flags: number, proto: number): void {
  wr16(buf, off + GRE_FLAGS, flags);
  wr16(buf, off + GRE_PROTO, proto);
}
export function setGreChecksum(buf: Uint8Array, off: number, csum: number): void {
  wr16(buf, off + GRE_OPTIONS, csum);
}
/** Writes the key; the K bit must already be set in the header. */
export function setGreKey(buf: Uint8Array, off: number, key: number): void {
  wr32(buf, off + greKeyOffset(rd16(buf, off)), key);
}
/** Writes the sequence number; the S bit must already be set in the header. */
export function setGreSeq(buf: Uint8Array, off: number, seq: number): void {
  wr32(buf, off + greSeqOffset(rd16(buf, off)), seq);
}
