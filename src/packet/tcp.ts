/**
 * TCP header (RFC 9293 §3.1). `off` is the first byte of the TCP header.
 *
 *   0-1 src port  2-3 dst port  4-7 seq  8-11 ack  12 data offset(4)|reserved(3)|NS
 *   13 CWR ECE URG ACK PSH RST SYN FIN  14-15 window  16-17 checksum  18-19 urgent
 */
import { rd16, rd32, wr16, wr32 } from './bytes.js';
import { TCP_FLAGS_MASK } from './constants.js';

export const TCP_SRC = 0;
export const TCP_DST = 2;
export const TCP_SEQ = 4;
export const TCP_ACK_NUM = 8;
export const TCP_OFF_FLAGS = 12;
export const TCP_WINDOW = 14;
export const TCP_CSUM = 16;
export const TCP_URGENT = 18;
export const TCP_OPTIONS = 20;
export { TCP_MIN_HEADER_SIZE } from './constants.js';

export function tcpSrc(buf: Uint8Array, off: number): number {
  return rd16(buf, off + TCP_SRC);
}
export function tcpDst(buf: Uint8Array, off: number): number {
  return rd16(buf, off + TCP_DST);
}
export function tcpSeq(buf: Uint8Array, off: number): number {
  return rd32(buf, off + TCP_SEQ);
}
export function tcpAck(buf: Uint8Array, off: number): number {
  return rd32(buf, off + TCP_ACK_NUM);
}
/** Header size in bytes (data offset * 4). */
export function tcpHeaderSize(buf: Uint8Array, off: number): number {
  return (buf[off + TCP_OFF_FLAGS]! >>> 4) << 2;
}
/** The 12 flag bits (NS … FIN), as the flow key's TCP_FLAGS. */
export function tcpFlags(buf: Uint8Array, off: number): number {
  return rd16(buf, off + TCP_OFF_FLAGS) & TCP_FLAGS_MASK;
}
export function tcpWindow(buf: Uint8Array, off: number): number {
  return rd16(buf, off + TCP_WINDOW);
}
export function tcpChecksum(buf: Uint8Array, off: number): number {
  return rd16(buf, off + TCP_CSUM);
}

export function setTcpSrc(buf: Uint8Array, off: number, port: number): void {
  wr16(buf, off + TCP_SRC, port);
}
export function setTcpDst(buf: Uint8Array, off: number, port: number): void {
  wr16(buf, off + TCP_DST, port);
}
export function setTcpSeq(buf: Uint8Array, off: number, seq: number): void {
  wr32(buf, off + TCP_SEQ, seq);
}
export function setTcpAck(buf: Uint8Array, off: number, ack: number): void {
  wr32(buf, off + TCP_ACK_NUM, ack);
}
/** Writes data offset (from a header size in bytes) and the 12 flag bits. */
export function setTcpOffFlags(buf: Uint8Array, off: number, headerSize: number, flags: number): void {
  wr16(buf, off + TCP_OFF_FLAGS, ((headerSize >>> 2) << 12) | (flags & TCP_FLAGS_MASK));
}
export function setTcpWindow(buf: Uint8Array, off: number, window: number): void {
  wr16(buf, off + TCP_WINDOW, window);
}
export function setTcpChecksum(buf: Uint8Array, off: number, csum: number): void {
  wr16(buf, off + TCP_CSUM, csum);
}
export function setTcpUrgent(buf: Uint8Array, off: number, urgent: number): void {
  wr16(buf, off + TCP_URGENT, urgent);
}
