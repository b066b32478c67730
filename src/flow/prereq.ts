/**
 * OpenFlow match prerequisites (OpenFlow 1.3 §7.2.3.8, as Open vSwitch enforces them): a
 * field may only be matched when the match already pins down the protocol that carries it
 * (tp_dst needs an exact nw_proto of TCP/UDP/SCTP, which needs an exact IP dl_type, …).
 *
 * Checks are order-independent: parse.ts builds the whole match, then asks
 * `prereqError()` for each field the text named, so `tp_dst=22,tcp` is as good as
 * `tcp,tp_dst=22`. The same checks guard actions that rewrite a header (mod_tp_dst needs a
 * transport protocol in the match, set_field:…->nw_src needs IPv4, …).
 *
 * Messages say what to add, naming the field or action:
 *   tp_dst requires a transport protocol: add "tcp" or "udp" (or nw_proto=6/17 with ip/ipv6)
 */
import { K } from '../packet/key.js';
import {
  DL_TYPE_ARP,
  DL_TYPE_IPV4,
  DL_TYPE_IPV6,
  DL_TYPE_RARP,
  NW_PROTO_ICMP,
  NW_PROTO_ICMPV6,
  NW_PROTO_SCTP,
  NW_PROTO_TCP,
  NW_PROTO_UDP,
  type PrereqId,
} from './fields.js';
import type { Match } from './types.js';

/** The match's exact dl_type, or undefined when dl_type is not (fully) constrained. */
export function exactDlType(m: Match): number | undefined {
  return m.mask[K.DL_TYPE] === 0xffff ? m.value[K.DL_TYPE] : undefined;
}

/** The match's exact nw_proto, or undefined. */
export function exactNwProto(m: Match): number | undefined {
  return m.mask[K.NW_PROTO] === 0xff ? m.value[K.NW_PROTO] : undefined;
}

/** Whether the match satisfies prerequisite `id`. */
export function prereqOk(id: PrereqId, m: Match): boolean {
  const dl = exactDlType(m);
  const proto = exactNwProto(m);
  const ipAny = dl === DL_TYPE_IPV4 || dl === DL_TYPE_IPV6;
  switch (id) {
    case 'none':
      return true;
    case 'ip_any':
      return ipAny;
    case 'ipv4':
      return dl === DL_TYPE_IPV4;
    case 'ipv6':
      return dl === DL_TYPE_IPV6;
    case 'arp':
      return dl === DL_TYPE_ARP || dl === DL_TYPE_RARP;
    case 'transport':
      return ipAny && (proto === NW_PROTO_TCP || proto === NW_PROTO_UDP || proto === NW_PROTO_SCTP);
    case 'tcp':
      return ipAny && proto === NW_PROTO_TCP;
    case 'icmp_any':
      return (dl === DL_TYPE_IPV4 && proto === NW_PROTO_ICMP) || (dl === DL_TYPE_IPV6 && proto === NW_PROTO_ICMPV6);
    case 'icmp6':
      return dl === DL_TYPE_IPV6 && proto === NW_PROTO_ICMPV6;
    default: {
      const never: never = id;
      throw new Error(`unknown prerequisite ${String(never)}`);
    }
  }
}

/** What to add to satisfy `id` (the part of the message after the colon). */
export function prereqHint(id: PrereqId): string {
  switch (id) {
    case 'none':
      return 'nothing';
    case 'ip_any':
      return 'an IP protocol: add "ip" or "ipv6" (or dl_type=0x0800/0x86dd)';
    case 'ipv4':
      return 'IPv4: add "ip" (or dl_type=0x0800)';
    case 'ipv6':
      return 'IPv6: add "ipv6" (or dl_type=0x86dd)';
    case 'arp':
      return 'ARP: add "arp" or "rarp" (or dl_type=0x0806/0x8035)';
    case 'transport':
      return 'a transport protocol: add "tcp" or "udp" (or nw_proto=6/17 with ip/ipv6)';
    case 'tcp':
      return 'TCP: add "tcp" or "tcp6" (or nw_proto=6 with ip/ipv6)';
    case 'icmp_any':
      return 'ICMP: add "icmp" or "icmp6" (or nw_proto=1 with ip, nw_proto=58 with ipv6)';
    case 'icmp6':
      return 'ICMPv6: add "icmp6" (or nw_proto=58 with ipv6)';
    default: {
      const never: never = id;
      throw new Error(`unknown prerequisite ${String(never)}`);
    }
  }
}

/** undefined when `what` (a field or action name) may be used with `m`, else the message. */
export function prereqError(what: string, id: PrereqId, m: Match): string | undefined {
  if (prereqOk(id, m)) return undefined;
  return `${what} requires ${prereqHint(id)}`;
}
