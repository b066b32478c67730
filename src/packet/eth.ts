/**
 * Ethernet II header (IEEE 802.3 §3.1.1): dst MAC(6) | src MAC(6) | type/length(2).
 *
 * MACs are handled as two numbers, as in the flow key (key.ts): `hi` = the first 2 bytes,
 * `lo` = the last 4 (unsigned). Accessors take the frame's first byte offset `off`.
 */
import { rd16, rd32, wr16, wr32 } from './bytes.js';

export const ETH_DST = 0;
export const ETH_SRC = 6;
export const ETH_TYPE = 12;
export { ETH_HEADER_SIZE } from './constants.js';

/** High 16 bits of the MAC at `off` (any MAC field, e.g. ARP's). */
export function macHiAt(buf: Uint8Array, off: number): number {
  return rd16(buf, off);
}
/** Low 32 bits (unsigned) of the MAC at `off`. */
export function macLoAt(buf: Uint8Array, off: number): number {
  return rd32(buf, off + 2);
}
export function writeMacAt(buf: Uint8Array, off: number, hi: number, lo: number): void {
  wr16(buf, off, hi);
  wr32(buf, off + 2, lo);
}

export function ethDstHi(buf: Uint8Array, off: number): number {
  return rd16(buf, off + ETH_DST);
}
export function ethDstLo(buf: Uint8Array, off: number): number {
  return rd32(buf, off + ETH_DST + 2);
}
export function ethSrcHi(buf: Uint8Array, off: number): number {
  return rd16(buf, off + ETH_SRC);
}
export function ethSrcLo(buf: Uint8Array, off: number): number {
  return rd32(buf, off + ETH_SRC + 2);
}
export function ethType(buf: Uint8Array, off: number): number {
  return rd16(buf, off + ETH_TYPE);
}

export function setEthDst(buf: Uint8Array, off: number, hi: number, lo: number): void {
  writeMacAt(buf, off + ETH_DST, hi, lo);
}
export function setEthSrc(buf: Uint8Array, off: number, hi: number, lo: number): void {
  writeMacAt(buf, off + ETH_SRC, hi, lo);
}
export function setEthType(buf: Uint8Array, off: number, type: number): void {
  wr16(buf, off + ETH_TYPE, type);
}

/** I/G bit (IEEE 802 §8.2): set for group (multicast and broadcast) addresses. */
export function isMulticastMac(hi: number): boolean {
  return (hi & 0x0100) !== 0;
}
export function isBroadcastMac(hi: number, lo: number): boolean {
  return hi === 0xffff && lo === 0xffffffff;
}
