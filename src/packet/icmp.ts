/**
 * ICMP (RFC 792) and ICMPv6 (RFC 4443 §2.1) share a header: type(1) code(1) checksum(2),
 * then 4 type-specific bytes (echo: identifier(2) sequence(2); frag-needed: unused(2)
 * next-hop MTU(2); packet-too-big: MTU(4)). `off` is the ICMP header.
 */
import { rd16, rd32, wr16, wr32 } from './bytes.js';

export const ICMP_TYPE = 0;
export const ICMP_CODE = 1;
export const ICMP_CSUM = 2;
export const ICMP_REST = 4;
export const ICMP_ECHO_ID = 4;
export const ICMP_ECHO_SEQ = 6;
export { ICMP_HEADER_SIZE } from './constants.js';

export function icmpType(buf: Uint8Array, off: number): number {
  return buf[off + ICMP_TYPE]!;
}
export function icmpCode(buf: Uint8Array, off: number): number {
  return buf[off + ICMP_CODE]!;
}
export function icmpChecksum(buf: Uint8Array, off: number): number {
  return rd16(buf, off + ICMP_CSUM);
}
/** The 4 type-specific bytes after the checksum, as one unsigned 32-bit number. */
export function icmpRest(buf: Uint8Array, off: number): number {
  return rd32(buf, off + ICMP_REST);
}
export function icmpEchoId(buf: Uint8Array, off: number): number {
  return rd16(buf, off + ICMP_ECHO_ID);
}
export function icmpEchoSeq(buf: Uint8Array, off: number): number {
  return rd16(buf, off + ICMP_ECHO_SEQ);
}
export function setIcmpTypeCode(buf: Uint8Array, off: number, type: number, code: number): void {
  buf[off + ICMP_TYPE] = type;
  buf[off + ICMP_CODE] = code;
}
export function setIcmpChecksum(buf: Uint8Array, off: number, csum: number): void {
  wr16(buf, off + ICMP_CSUM, csum);
}
export function setIcmpRest(buf: Uint8Array, off: number, rest: number): void {
  wr32(buf, off + ICMP_REST, rest);
}
