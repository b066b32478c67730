/**
 * ICMP "fragmentation needed and DF set" (type 3 code 4, RFC 792; next-hop MTU field,
 * RFC 1191 §4), built the way a router answers an IPv4 packet with DF set that does not
 * fit the next hop — here, an inner frame that no longer fits the tunnel's path MTU once
 * encapsulated (issue 4 item 4).
 *
 * The answer goes back to the inner packet's sender on the port it came from:
 *   Ethernet: dst = the inner frame's source MAC, src = routerMac, the inner frame's VLAN
 *     tags (0-2) copied so it returns on the same VLAN, type IPv4;
 *   IPv4: src = routerIp, dst = the inner source, TOS 0xc0 (Internet control, as Linux
 *     sends ICMP errors), TTL 64, protocol 1, id 0, checksum;
 *   ICMP: type 3, code 4, unused(2) = 0, next-hop MTU(2), checksum; then the original IP
 *     header (with options) + the first 8 bytes of its payload (RFC 792).
 *
 * No answer (returns 0) when RFC 1812 §4.3.2.7 forbids one: the inner packet is not a
 * well-formed IPv4 packet, is a non-initial fragment, is itself an ICMP error (or an ICMP
 * message too short to tell), or has a source that is not a unicast host (0.0.0.0,
 * 127/8, 224/4 and up, or a multicast/broadcast source MAC); nor when the destination is
 * multicast/broadcast at IP or link layer.
 *
 * Never throws, never allocates; writes out[off … off+size) and reads only
 * buf[start … start+len). The caller provides at least 14 + 8 + 20 + 20 + 60 + 8 = 130
 * bytes at `off` (FRAG_NEEDED_MAX_SIZE).
 */
import type { Mac } from '../util/addr.js';
import { internetChecksum } from '../util/checksum.js';
import { rd16, rd32, wr16, wr32 } from '../packet/bytes.js';
import {
  DEFAULT_TTL,
  ETH_TYPE_IPV4,
  ICMP_DEST_UNREACH,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  ICMP_FRAG_NEEDED,
  ICMP_HEADER_SIZE,
  IPPROTO_ICMP,
  IPV4_FRAG_OFFSET_MASK,
  IPV4_MIN_HEADER_SIZE,
} from '../packet/constants.js';
import { isVlanTpid } from '../packet/vlan.js';

/** Largest frame buildFragNeeded writes: 2 tags, IPv4, ICMP, 60-byte quoted header + 8. */
export const FRAG_NEEDED_MAX_SIZE = 14 + 8 + IPV4_MIN_HEADER_SIZE + ICMP_HEADER_SIZE + 60 + 8;

/** IPTOS_PREC_INTERNETCONTROL: the TOS Linux gives the ICMP errors it sends. */
const ICMP_ERROR_TOS = 0xc0;

/** Bytes of the original datagram's payload quoted after its header (RFC 792). */
const QUOTED_PAYLOAD = 8;

function isUnicastHostIp(ip: number): boolean {
  const first = ip >>> 24;
  return ip !== 0 && first !== 127 && first < 224;
}

/**
 * Writes the "fragmentation needed" answer to the inner frame buf[start … start+len)
 * into out at off, announcing `mtu` (e.g. greInnerIpMtu()); returns its size, or 0 when
 * no ICMP error may be sent for this frame.
 */
export function buildFragNeeded(
  out: Uint8Array,
  off: number,
  buf: Uint8Array,
  start: number,
  len: number,
  mtu: number,
  routerIp: number,
  routerMac: Mac,
): number {
  if (len > buf.length - start) len = buf.length - start;
  const end = start + len;
  if (len < 14) return 0;
  // Link layer: unicast source and destination only.
  if ((buf[start]! & 1) !== 0 || (buf[start + 6]! & 1) !== 0) return 0;
  let p = start + 12;
  let tags = 0;
  while (tags < 2 && p + 4 <= end && isVlanTpid(rd16(buf, p))) {
    p += 4;
    tags++;
  }
  if (p + 2 > end || rd16(buf, p) !== ETH_TYPE_IPV4) return 0;
  const ip = p + 2;
  if (ip + IPV4_MIN_HEADER_SIZE > end || buf[ip]! >>> 4 !== 4) return 0;
  const ihl = (buf[ip]! & 0x0f) << 2;
  const totalLen = rd16(buf, ip + 2);
  if (ihl < IPV4_MIN_HEADER_SIZE || totalLen < ihl || ip + totalLen > end) return 0;
  if ((rd16(buf, ip + 6) & IPV4_FRAG_OFFSET_MASK) !== 0) return 0;
  const src = rd32(buf, ip + 12);
  const dst = rd32(buf, ip + 16);
  if (!isUnicastHostIp(src) || dst >>> 28 === 0xe || dst === 0xffffffff) return 0;
  if (buf[ip + 9] === IPPROTO_ICMP) {
    if (totalLen - ihl < 1) return 0;
    const type = buf[ip + ihl]!;
    // Only informational messages (echo, and the other queries) may get an error back.
    if (type !== ICMP_ECHO_REQUEST && type !== ICMP_ECHO_REPLY && type !== 13 && type !== 14) return 0;
  }
  const quoted = ihl + Math.min(QUOTED_PAYLOAD, totalLen - ihl);

  // Ethernet + copied tags.
  for (let i = 0; i < 6; i++) out[off + i] = buf[start + 6 + i]!;
  wr16(out, off + 6, routerMac.hi);
  wr32(out, off + 8, routerMac.lo);
  let q = off + 12;
  for (let i = 0; i < tags * 4; i++) out[q + i] = buf[start + 12 + i]!;
  q += tags * 4;
  wr16(out, q, ETH_TYPE_IPV4);
  const o = q + 2;

  // IPv4.
  const icmpSize = ICMP_HEADER_SIZE + quoted;
  out[o] = 0x45;
  out[o + 1] = ICMP_ERROR_TOS;
  wr16(out, o + 2, IPV4_MIN_HEADER_SIZE + icmpSize);
  wr32(out, o + 4, 0); // id 0, no flags
  out[o + 8] = DEFAULT_TTL;
  out[o + 9] = IPPROTO_ICMP;
  wr16(out, o + 10, 0);
  wr32(out, o + 12, routerIp);
  wr32(out, o + 16, src);
  wr16(out, o + 10, internetChecksum(out, o, IPV4_MIN_HEADER_SIZE));

  // ICMP.
  const c = o + IPV4_MIN_HEADER_SIZE;
  out[c] = ICMP_DEST_UNREACH;
  out[c + 1] = ICMP_FRAG_NEEDED;
  wr16(out, c + 2, 0);
  wr16(out, c + 4, 0);
  wr16(out, c + 6, mtu);
  // A byte loop, not set(subarray()): a subarray is an object (≤ 68 bytes to copy).
  for (let i = 0; i < quoted; i++) out[c + ICMP_HEADER_SIZE + i] = buf[ip + i]!;
  wr16(out, c + 2, internetChecksum(out, c, icmpSize));
  return c + icmpSize - off;
}
