/**
 * UDP header (RFC 768): src port(2) dst port(2) length(2) checksum(2). `off` is the UDP
 * header; `length` covers header + data.
 */
import { rd16, wr16 } from './bytes.js';

export const UDP_SRC = 0;
export const UDP_DST = 2;
export const UDP_LEN = 4;
export const UDP_CSUM = 6;
export { UDP_HEADER_SIZE } from './constants.js';

export function udpSrc(buf: Uint8Array, off: number): number {
  return rd16(buf, off + UDP_SRC);
}
export function udpDst(buf: Uint8Array, off: number): number {
  return rd16(buf, off + UDP_DST);
}
export function udpLength(buf: Uint8Array, off: number): number {
  return rd16(buf, off + UDP_LEN);
}
export function udpChecksum(buf: Uint8Array, off: number): number {
  return rd16(buf, off + UDP_CSUM);
}
export function setUdpSrc(buf: Uint8Array, off: number, port: number): void {
  wr16(buf, off + UDP_SRC, port);
}
export function setUdpDst(buf: Uint8Array, off: number, port: number): void {
  wr16(buf, off + UDP_DST, port);
}
export function setUdpLength(buf: Uint8Array, off: number, size: number): void {
  wr16(buf, off + UDP_LEN, size);
}
export function setUdpChecksum(buf: Uint8Array, off: number, csum: number): void {
  wr16(buf, off + UDP_CSUM, csum);
}
