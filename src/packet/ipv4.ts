/**
 * IPv4 header (RFC 791 §3.1). `off` is the first byte of the IP header.
 *
 *   0 ver/IHL  1 TOS  2-3 total length  4-5 id  6-7 flags/frag offset  8 TTL  9 protocol
 *   10-11 header checksum  12-15 src  16-19 dst  20… options (IHL*4 - 20 bytes)
 */
import { rd16, rd32, wr16, wr32 } from './bytes.js';
import { IPV4_FLAG_MF, IPV4_FRAG_OFFSET_MASK } from './constants.js';
import { internetChecksum, checksumUpdate16 } from '../util/checksum.js';

export const IPV4_VER_IHL = 0;
export const IPV4_TOS = 1;
export const IPV4_TOTAL_LEN = 2;
export const IPV4_ID = 4;
export const IPV4_FRAG = 6;
export const IPV4_TTL = 8;
export const IPV4_PROTO = 9;
export const IPV4_CSUM = 10;
export const IPV4_SRC = 12;
export const IPV4_DST = 16;
export const IPV4_OPTIONS = 20;
export { IPV4_MIN_HEADER_SIZE, IPV4_MAX_HEADER_SIZE } from './constants.js';

export function ipv4Version(buf: Uint8Array, off: number): number {
  return buf[off]! >>> 4;
}
/** Header size in bytes (IHL * 4). */
export function ipv4HeaderSize(buf: Uint8Array, off: number): number {
  return (buf[off]! & 0x0f) << 2;
}
export function ipv4Tos(buf: Uint8Array, off: number): number {
  return buf[off + IPV4_TOS]!;
}
export function ipv4TotalLen(buf: Uint8Array, off: number): number {
  return rd16(buf, off + IPV4_TOTAL_LEN);
}
export function ipv4Id(buf: Uint8Array, off: number): number {
  return rd16(buf, off + IPV4_ID);
}
/** The 16-bit flags + fragment offset word. */
export function ipv4FragWord(buf: Uint8Array, off: number): number {
  return rd16(buf, off + IPV4_FRAG);
}
/** Fragment offset in bytes. */
export function ipv4FragOffset(buf: Uint8Array, off: number): number {
  return (rd16(buf, off + IPV4_FRAG) & IPV4_FRAG_OFFSET_MASK) << 3;
}
export function ipv4MoreFragments(buf: Uint8Array, off: number): boolean {
  return (rd16(buf, off + IPV4_FRAG) & IPV4_FLAG_MF) !== 0;
}
export function ipv4Ttl(buf: Uint8Array, off: number): number {
  return buf[off + IPV4_TTL]!;
}
export function ipv4Proto(buf: Uint8Array, off: number): number {
  return buf[off + IPV4_PROTO]!;
}
export function ipv4Checksum(buf: Uint8Array, off: number): number {
  return rd16(buf, off + IPV4_CSUM);
}
export function ipv4Src(buf: Uint8Array, off: number): number {
  return rd32(buf, off + IPV4_SRC);
}
export function ipv4Dst(buf: Uint8Array, off: number): number {
  return rd32(buf, off + IPV4_DST);
}

export function setIpv4VerIhl(buf: Uint8Array, off: number, headerSize: number): void {
  buf[off] = 0x40 | (headerSize >>> 2);
}
export function setIpv4Tos(buf: Uint8Array, off: number, tos: number): void {
  buf[off + IPV4_TOS] = tos;
}
export function setIpv4TotalLen(buf: Uint8Array, off: number, size: number): void {
  wr16(buf, off + IPV4_TOTAL_LEN, size);
}
export function setIpv4Id(buf: Uint8Array, off: number, id: number): void {
  wr16(buf, off + IPV4_ID, id);
}
export function setIpv4FragWord(buf: Uint8Array, off: number, word: number): void {
  wr16(buf, off + IPV4_FRAG, word);
}
export function setIpv4Ttl(buf: Uint8Array, off: number, ttl: number): void {
  buf[off + IPV4_TTL] = ttl;
}
export function setIpv4Proto(buf: Uint8Array, off: number, proto: number): void {
  buf[off + IPV4_PROTO] = proto;
}
export function setIpv4Checksum(buf: Uint8Array, off: number, csum: number): void {
  wr16(buf, off + IPV4_CSUM, csum);
}
export function setIpv4Src(buf: Uint8Array, off: number, ip: number): void {
  wr32(buf, off + IPV4_SRC, ip);
}
export function setIpv4Dst(buf: Uint8Array, off: number, ip: number): void {
  wr32(buf, off + IPV4_DST, ip);
}

/** Recomputes and stores the header checksum over IHL*4 bytes (RFC 791, RFC 1071). */
export function updateIpv4Checksum(buf: Uint8Array, off: number): void {
  wr16(buf, off + IPV4_CSUM, 0);
  wr16(buf, off + IPV4_CSUM, internetChecksum(buf, off, ipv4HeaderSize(buf, off)));
}
/** True when the header checksum verifies (sum over the header is 0xffff). */
export function ipv4ChecksumValid(buf: Uint8Array, off: number): boolean {
  return internetChecksum(buf, off, ipv4HeaderSize(buf, off)) === 0;
}
/**
 * Decrements TTL and patches the checksum incrementally (RFC 1624), as a router would.
 * The caller has checked that TTL > 0.
 */
export function decIpv4Ttl(buf: Uint8Array, off: number): void {
  const oldWord = rd16(buf, off + IPV4_TTL);
  buf[off + IPV4_TTL] = buf[off + IPV4_TTL]! - 1;
  const csum = checksumUpdate16(rd16(buf, off + IPV4_CSUM), oldWord, rd16(buf, off + IPV4_TTL));
  wr16(buf, off + IPV4_CSUM, csum);
}
