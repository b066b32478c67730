/**
 * TCP MSS clamping (issue 4 item 4): lower the Maximum Segment Size option of a SYN
 * entering a tunnel so that neither end sends segments that no longer fit once
 * encapsulated. RFC 879 / RFC 6691: the MSS option (kind 2, length 4, RFC 9293 §3.2)
 * counts only TCP payload — MSS = MTU − 20 (fixed IPv4 header) − 20 (fixed TCP header),
 * both ends subtract their own options. A SYN without the option means 536 (RFC 9293
 * §3.7.1), which already fits any MTU ≥ 576, so it is left alone.
 *
 * The TCP checksum is patched incrementally (RFC 1624), so no pseudo-header and no pass
 * over the payload are needed; IPv4 and IPv6 are handled alike. The MSS field may start
 * at an odd offset of the TCP header (after one NOP); then it straddles two checksum
 * words and both are updated.
 *
 * Never throws, never allocates; reads and writes only buf[start … start+len). The caller
 * passes l4Off (relative to start, as the key's L4_OFF) of a TCP header — NW_PROTO = 6 and
 * not a later fragment; a TCP checksum left unfinished by an offloading NIC (partial) must
 * be completed first.
 */
import { checksumUpdate16 } from '../util/checksum.js';
import { rd16, wr16 } from '../packet/bytes.js';
import { IPV4_MIN_HEADER_SIZE, IPV6_HEADER_SIZE, TCP_MIN_HEADER_SIZE, TCP_SYN } from '../packet/constants.js';

/** RFC 9293 §3.2 option kinds. */
const TCPOPT_EOL = 0;
const TCPOPT_NOP = 1;
const TCPOPT_MSS = 2;
const TCPOPT_MSS_SIZE = 4;

/** The MSS for an IP MTU (RFC 6691 §2: MTU − fixed IP header − 20). */
export function tcpMssForMtu(mtu: number, ipVersion: 4 | 6): number {
  return mtu - (ipVersion === 4 ? IPV4_MIN_HEADER_SIZE : IPV6_HEADER_SIZE) - TCP_MIN_HEADER_SIZE;
}

/**
 * When the TCP segment at start + l4Off is a SYN (or SYN-ACK) whose MSS option exceeds
 * maxMss, rewrites the option to maxMss, patches the checksum and returns true; otherwise
 * changes nothing and returns false.
 */
export function clampTcpMss(buf: Uint8Array, start: number, len: number, l4Off: number, maxMss: number): boolean {
  if (len > buf.length - start) len = buf.length - start;
  const t = start + l4Off;
  const end = start + len;
  if (l4Off < 0 || t + TCP_MIN_HEADER_SIZE > end) return false;
  if ((buf[t + 13]! & TCP_SYN) === 0) return false;
  const hdrEnd = t + ((buf[t + 12]! >>> 4) << 2);
  if (hdrEnd < t + TCP_MIN_HEADER_SIZE || hdrEnd > end) return false;
  let p = t + TCP_MIN_HEADER_SIZE;
  while (p < hdrEnd) {
    const kind = buf[p]!;
    if (kind === TCPOPT_EOL) return false;
    if (kind === TCPOPT_NOP) {
      p++;
      continue;
    }
    if (p + 1 >= hdrEnd) return false;
    const size = buf[p + 1]!;
    if (size < 2 || p + size > hdrEnd) return false; // malformed options: leave the segment alone
    if (kind === TCPOPT_MSS && size === TCPOPT_MSS_SIZE) {
      const f = p + 2;
      const mss = rd16(buf, f);
      if (mss <= maxMss) return false;
      const csumOff = t + 16;
      let csum = rd16(buf, csumOff);
      if (((f - t) & 1) === 0) {
        csum = checksumUpdate16(csum, mss, maxMss);
        wr16(buf, f, maxMss);
      } else {
        // The field straddles the words [f-1, f] and [f+1, f+2].
        const w1 = rd16(buf, f - 1);
        const w2 = rd16(buf, f + 1);
        wr16(buf, f, maxMss);
        csum = checksumUpdate16(csum, w1, rd16(buf, f - 1));
        csum = checksumUpdate16(csum, w2, rd16(buf, f + 1));
      }
      wr16(buf, csumOff, csum);
      return true;
    }
    p += size;
  }
  return false;
}
