/**
 * ARP (RFC 826) and RARP (RFC 903) packet: htype(2) ptype(2) hlen(1) plen(1) op(2), then
 * for Ethernet/IPv4: sha(6) spa(4) tha(6) tpa(4) — 28 bytes. `off` is the ARP header.
 */
import { rd16, rd32, wr16, wr32 } from './bytes.js';
import { ARP_HTYPE_ETHERNET, ETH_TYPE_IPV4 } from './constants.js';
import { macHiAt, macLoAt, writeMacAt } from './eth.js';

export const ARP_HTYPE = 0;
export const ARP_PTYPE = 2;
export const ARP_HLEN = 4;
export const ARP_PLEN = 5;
export const ARP_OP = 6;
export const ARP_SHA = 8;
export const ARP_SPA = 14;
export const ARP_THA = 18;
export const ARP_TPA = 24;
export { ARP_ETH_IPV4_SIZE, ARP_FIXED_SIZE } from './constants.js';

export function arpHtype(buf: Uint8Array, off: number): number {
  return rd16(buf, off + ARP_HTYPE);
}
export function arpPtype(buf: Uint8Array, off: number): number {
  return rd16(buf, off + ARP_PTYPE);
}
export function arpHlen(buf: Uint8Array, off: number): number {
  return buf[off + ARP_HLEN]!;
}
export function arpPlen(buf: Uint8Array, off: number): number {
  return buf[off + ARP_PLEN]!;
}
export function arpOp(buf: Uint8Array, off: number): number {
  return rd16(buf, off + ARP_OP);
}
/** True when htype/ptype say Ethernet/IPv4 (the only format whose addresses lime reads). */
export function arpIsEthIpv4(buf: Uint8Array, off: number): boolean {
  return rd16(buf, off + ARP_HTYPE) === ARP_HTYPE_ETHERNET && rd16(buf, off + ARP_PTYPE) === ETH_TYPE_IPV4;
}
export function arpShaHi(buf: Uint8Array, off: number): number {
  return macHiAt(buf, off + ARP_SHA);
}
export function arpShaLo(buf: Uint8Array, off: number): number {
  return macLoAt(buf, off + ARP_SHA);
}
export function arpSpa(buf: Uint8Array, off: number): number {
  return rd32(buf, off + ARP_SPA);
}
export function arpThaHi(buf: Uint8Array, off: number): number {
  return macHiAt(buf, off + ARP_THA);
}
export function arpThaLo(buf: Uint8Array, off: number): number {
  return macLoAt(buf, off + ARP_THA);
}
export function arpTpa(buf: Uint8Array, off: number): number {
  return rd32(buf, off + ARP_TPA);
}

export function setArpOp(buf: Uint8Array, off: number, op: number): void {
  wr16(buf, off + ARP_OP, op);
}
export function setArpSha(buf: Uint8Array, off: number, hi: number, lo: number): void {
  writeMacAt(buf, off + ARP_SHA, hi, lo);
}
export function setArpSpa(buf: Uint8Array, off: number, ip: number): void {
  wr32(buf, off + ARP_SPA, ip);
}
export function setArpTha(buf: Uint8Array, off: number, hi: number, lo: number): void {
  writeMacAt(buf, off + ARP_THA, hi, lo);
}
export function setArpTpa(buf: Uint8Array, off: number, ip: number): void {
  wr32(buf, off + ARP_TPA, ip);
}
