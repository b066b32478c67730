/**
 * FlowSpec / Match / Action[] → ovs-ofctl text, in ovs-ofctl's layout and order, so that a
 * flow copied from `ovs-ofctl dump-flows` and one printed here read the same, and
 * parseFlow(formatFlow(f)) = f.
 *
 * Match order (Open vSwitch lib/match.c match_format()): priority (omitted when 32768),
 * shorthand (ip, tcp, arp, …; else dl_type later), tun_id, metadata, in_port, VLAN
 * (dl_vlan/dl_vlan_pcp when they say it all, else vlan_tci[/mask]), dl_src, dl_dst,
 * dl_type, then by dl_type: ipv6_src, ipv6_dst, ipv6_label | arp_spa, arp_tpa | nw_src,
 * nw_dst; nw_proto (or arp_op); arp_sha, arp_tha; nw_tos (DSCP bits), nw_ecn, nw_ttl;
 * nw_frag (ovs-ofctl prints ip_frag under this name); icmp_type/icmp_code (ICMP and
 * ICMPv6) or tp_src/tp_dst; tcp_flags.
 *
 * Number formats follow OVS: 8/16-bit fields decimal when exact, `0x…/0x…` when masked;
 * tun_id/metadata `0x…` (`0` for zero); ipv6_label `0x%05x`; dl_type `0x%04x`; IPv4/IPv6
 * masks as /len when CIDR, else address/mask.
 *
 * Ports: ovs-ofctl prints port numbers; `limectl` passes a PortNames so that in_port,
 * output and resubmit print the port's *name* when it has one (our dump-flows shows names
 * when known). A name is only printed when it parses back to the same port (not a number,
 * not a reserved port name, no delimiter characters); otherwise the number is printed.
 *
 * Deviations from ovs-ofctl, all so that the text round-trips through parseFlow:
 *   - set_field prints OVS's OpenFlow 1.3 names (eth_src, ip_dst, nw_ttl, …) except for
 *     the transport ports, printed `tp_src`/`tp_dst` (OVS prints tcp_/udp_ after the
 *     match's protocol; our tp_* are protocol-neutral); goto_table, push_vlan and
 *     set_field print as themselves (OVS prints them so under OpenFlow 1.1+; under 1.0 it
 *     rewrites them as resubmit / mod_* / load);
 *   - a FlowSpec with a cookie mask prints `cookie=0x…/0x…` (modify/delete filters).
 */
import { formatIpv4, formatIpv6, formatMac, ipv6FromWords } from '../util/addr.js';
import { K } from '../packet/key.js';
import {
  DL_TYPE_ARP,
  DL_TYPE_IPV4,
  DL_TYPE_IPV6,
  DL_TYPE_RARP,
  FIELDS,
  NW_PROTO_ICMP,
  NW_PROTO_ICMPV6,
  NW_PROTO_SCTP,
  NW_PROTO_TCP,
  NW_PROTO_UDP,
  TCP_FLAG_NAMES,
  VLAN_TCI_PRESENT,
  type FieldFormat,
  type FieldName,
} from './fields.js';
import { NXM_NAMES } from './parse.js';
import { DEFAULT_PRIORITY, MAX_TABLES, OFPP, type Action, type FlowSpec, type Match, type PortNames, type WritableField } from './types.js';

const hex = (n: number | bigint): string => (n === 0 || n === 0n ? '0' : `0x${n.toString(16)}`);

const RESERVED_PORT_NAMES: Readonly<Record<number, string>> = {
  [OFPP.IN_PORT]: 'IN_PORT',
  [OFPP.TABLE]: 'TABLE',
  [OFPP.NORMAL]: 'NORMAL',
  [OFPP.FLOOD]: 'FLOOD',
  [OFPP.ALL]: 'ALL',
  [OFPP.CONTROLLER]: 'CONTROLLER',
  [OFPP.LOCAL]: 'LOCAL',
  [OFPP.NONE]: 'NONE',
};

const PARSEABLE_NAME = /^[A-Za-z_.-][A-Za-z0-9_.-]*$/;
const RESERVED_WORDS = new Set(['IN_PORT', 'TABLE', 'NORMAL', 'FLOOD', 'ALL', 'CONTROLLER', 'LOCAL', 'NONE', 'ANY']);

/** A port as ovs-ofctl prints it: reserved name, the port's name (when `ports` has one), or number. */
export function formatPort(port: number, ports?: PortNames): string {
  const reserved = RESERVED_PORT_NAMES[port];
  if (reserved !== undefined) return reserved;
  const name = ports?.nameOf(port);
  if (name !== undefined && PARSEABLE_NAME.test(name) && !RESERVED_WORDS.has(name.toUpperCase()) && !/^0x[0-9a-f]+$/i.test(name)) {
    return name;
  }
  return String(port);
}

function ip4Masked(value: number, mask: number): string {
  if (mask === 0xffffffff) return formatIpv4(value);
  // CIDR when the mask is ones then zeros.
  const inv = ~mask >>> 0;
  if ((inv & (inv + 1)) === 0) {
    const len = 32 - Math.log2(inv + 1);
    return `${formatIpv4(value)}/${len}`;
  }
  return `${formatIpv4(value)}/${formatIpv4(mask)}`;
}

function ip6Masked(value: readonly number[], mask: readonly number[]): string {
  const v = formatIpv6(ipv6FromWords(value));
  let len = 0;
  let cidr = true;
  for (const w of mask) {
    if (!cidr) {
      if (w !== 0) return `${v}/${formatIpv6(ipv6FromWords(mask))}`;
      continue;
    }
    const inv = ~w >>> 0;
    if ((inv & (inv + 1)) !== 0) return `${v}/${formatIpv6(ipv6FromWords(mask))}`;
    const bits = 32 - Math.log2(inv + 1);
    len += bits;
    if (bits < 32) cidr = false;
  }
  return len === 128 ? v : `${v}/${len}`;
}

function macMasked(v: readonly number[], m: readonly number[]): string {
  const s = formatMac(v[0]!, v[1]!);
  return m[0] === 0xffff && m[1] === 0xffffffff ? s : `${s}/${formatMac(m[0]!, m[1]!)}`;
}

function tcpFlagsMasked(value: number, mask: number): string {
  const bits = (flags: number, sep: string): string[] => {
    const out: string[] = [];
    for (let i = 0; i < 12; i++) if ((flags & (1 << i)) !== 0) out.push(sep + TCP_FLAG_NAMES[i]!);
    return out;
  };
  if (mask === 0xfff) return value === 0 ? '0' : bits(value, '').join('|');
  const out: string[] = [];
  for (let i = 0; i < 12; i++) {
    const b = 1 << i;
    if ((mask & b) !== 0) out.push(((value & b) !== 0 ? '+' : '-') + TCP_FLAG_NAMES[i]!);
  }
  return out.join('');
}

/**
 * The name each field prints under (ovs-ofctl's match_format): shared-word fields print
 * under one name (ip_dscp as nw_tos, icmpv6_type as icmp_type, ip_frag as nw_frag). A new
 * field must be added here, and to formatMatch's order, or this does not compile.
 */
export const PRINT_NAME = {
  in_port: 'in_port',
  dl_src: 'dl_src',
  dl_dst: 'dl_dst',
  dl_type: 'dl_type',
  dl_vlan: 'dl_vlan',
  dl_vlan_pcp: 'dl_vlan_pcp',
  vlan_tci: 'vlan_tci',
  nw_src: 'nw_src',
  nw_dst: 'nw_dst',
  nw_proto: 'nw_proto',
  nw_tos: 'nw_tos',
  ip_dscp: 'nw_tos',
  nw_ecn: 'nw_ecn',
  nw_ttl: 'nw_ttl',
  ip_frag: 'nw_frag',
  arp_op: 'arp_op',
  arp_spa: 'arp_spa',
  arp_tpa: 'arp_tpa',
  arp_sha: 'arp_sha',
  arp_tha: 'arp_tha',
  ipv6_src: 'ipv6_src',
  ipv6_dst: 'ipv6_dst',
  ipv6_label: 'ipv6_label',
  tp_src: 'tp_src',
  tp_dst: 'tp_dst',
  tcp_flags: 'tcp_flags',
  icmp_type: 'icmp_type',
  icmp_code: 'icmp_code',
  icmpv6_type: 'icmp_type',
  icmpv6_code: 'icmp_code',
  tun_id: 'tun_id',
  metadata: 'metadata',
} as const satisfies Record<FieldName, string>;

/** The value words and mask words of a field in the match. */
function fieldOf(m: Match, f: FieldName): { v: number[]; mk: number[]; set: boolean } {
  const spec = FIELDS[f];
  const v: number[] = [];
  const mk: number[] = [];
  let set = false;
  for (let i = 0; i < spec.words.length; i++) {
    const w = spec.words[i]!;
    v.push((m.value[w]! & spec.wordMask[i]!) >>> 0);
    const mm = (m.mask[w]! & spec.wordMask[i]!) >>> 0;
    mk.push(mm);
    if (mm !== 0) set = true;
  }
  return { v, mk, set };
}

/** One field's value text (`name=` excluded), as match_format prints it. */
function formatFieldValue(f: FieldName, v: number[], mk: number[], ports?: PortNames): string {
  const spec = FIELDS[f];
  const full = mk.every((x, i) => x === spec.wordMask[i]);
  const format: FieldFormat = spec.format;
  switch (format) {
    case 'decimal': {
      const val = v[0]! >>> spec.shift;
      return full ? String(val) : `0x${val.toString(16)}/0x${(mk[0]! >>> spec.shift).toString(16)}`;
    }
    case 'hex': {
      if (spec.nBits === 64) {
        const big = (w: number[]): bigint => (BigInt(w[0]!) << 32n) | BigInt(w[1]!);
        return full ? hex(big(v)) : `${hex(big(v))}/${hex(big(mk))}`;
      }
      const width = f === 'dl_type' || f === 'vlan_tci' ? 4 : f === 'ipv6_label' ? 5 : 0;
      const h = (n: number): string => `0x${n.toString(16).padStart(width, '0')}`;
      return full ? h(v[0]!) : `${h(v[0]!)}/${h(mk[0]!)}`;
    }
    case 'mac':
      return macMasked(v, mk);
    case 'ipv4':
      return ip4Masked(v[0]!, mk[0]!);
    case 'ipv6':
      return ip6Masked(v, mk);
    case 'port':
      return formatPort(v[0]!, ports);
    case 'vlan_vid':
      return String(v[0]! & 0xfff);
    case 'vlan_pcp':
      return String(v[0]! >>> 13);
    case 'frag':
      throw new Error('ip_frag is printed by formatMatch');
    case 'tcp_flags':
      return tcpFlagsMasked(v[0]!, mk[0]!);
    default: {
      const never: never = format;
      throw new Error(`unhandled format ${String(never)}`);
    }
  }
}

/**
 * The match (and priority, when given and not 32768) as ovs-ofctl's match_format prints
 * it; '' for a catch-all match.
 */
export function formatMatch(match: Match, ports?: PortNames, priority: number = DEFAULT_PRIORITY): string {
  const out: string[] = [];
  const put = (f: FieldName, name: string = f): void => {
    const { v, mk, set } = fieldOf(match, f);
    if (set) out.push(`${name}=${formatFieldValue(f, v, mk, ports)}`);
  };
  if (priority !== DEFAULT_PRIORITY) out.push(`priority=${priority}`);
  const dlMasked = match.mask[K.DL_TYPE] !== 0;
  const dl = match.value[K.DL_TYPE]!;
  const protoMasked = match.mask[K.NW_PROTO] !== 0;
  const proto = match.value[K.NW_PROTO]!;
  let skipType = false;
  let skipProto = false;
  if (dlMasked) {
    skipType = true;
    if (dl === DL_TYPE_IPV4 || dl === DL_TYPE_IPV6) {
      const v6 = dl === DL_TYPE_IPV6;
      let sh = v6 ? 'ipv6' : 'ip';
      if (protoMasked) {
        const byProto: Record<number, string> = v6
          ? { [NW_PROTO_ICMPV6]: 'icmp6', [NW_PROTO_TCP]: 'tcp6', [NW_PROTO_UDP]: 'udp6', [NW_PROTO_SCTP]: 'sctp6' }
          : { [NW_PROTO_ICMP]: 'icmp', [NW_PROTO_TCP]: 'tcp', [NW_PROTO_UDP]: 'udp', [NW_PROTO_SCTP]: 'sctp' };
        const s = byProto[proto];
        if (s !== undefined) {
          sh = s;
          skipProto = true;
        }
      }
      out.push(sh);
    } else if (dl === DL_TYPE_ARP) out.push('arp');
    else if (dl === DL_TYPE_RARP) out.push('rarp');
    else skipType = false;
  }
  put('tun_id');
  put('metadata');
  put('in_port');
  // VLAN: dl_vlan / dl_vlan_pcp when the tag-present bit is matched as 1 and each part is
  // all-or-nothing; else vlan_tci.
  const tciMask = match.mask[K.VLAN_TCI]!;
  if (tciMask !== 0) {
    const tci = match.value[K.VLAN_TCI]!;
    const vid = tciMask & 0x0fff;
    const pcp = tciMask & 0xe000;
    if ((tciMask & VLAN_TCI_PRESENT) !== 0 && (tci & VLAN_TCI_PRESENT) !== 0 && (vid === 0 || vid === 0xfff) && (pcp === 0 || pcp === 0xe000) && (vid | pcp) !== 0) {
      if (vid !== 0) out.push(`dl_vlan=${tci & 0xfff}`);
      if (pcp !== 0) out.push(`dl_vlan_pcp=${tci >>> 13}`);
    } else {
      put('vlan_tci');
    }
  }
  put('dl_src');
  put('dl_dst');
  if (!skipType && dlMasked) put('dl_type');
  const isArp = dl === DL_TYPE_ARP || dl === DL_TYPE_RARP;
  if (dl === DL_TYPE_IPV6) {
    put('ipv6_src');
    put('ipv6_dst');
    put('ipv6_label');
  } else if (isArp) {
    put('arp_spa');
    put('arp_tpa');
  } else {
    put('nw_src');
    put('nw_dst');
  }
  if (!skipProto && protoMasked) put(isArp ? 'arp_op' : 'nw_proto');
  if (isArp) {
    put('arp_sha');
    put('arp_tha');
  }
  put('nw_tos');
  put('nw_ecn');
  put('nw_ttl');
  const fragMask = match.mask[K.NW_FRAG]! & 3;
  const frag = match.value[K.NW_FRAG]!;
  if (fragMask === 3) out.push(`nw_frag=${(frag & 1) !== 0 ? ((frag & 2) !== 0 ? 'later' : 'first') : 'no'}`);
  else if (fragMask === 1) out.push(`nw_frag=${(frag & 1) !== 0 ? 'yes' : 'no'}`);
  else if (fragMask === 2) out.push(`nw_frag=${(frag & 2) !== 0 ? 'later' : 'not_later'}`);
  if ((dl === DL_TYPE_IPV4 && proto === NW_PROTO_ICMP) || (dl === DL_TYPE_IPV6 && proto === NW_PROTO_ICMPV6)) {
    put('icmp_type');
    put('icmp_code');
  } else {
    put('tp_src');
    put('tp_dst');
  }
  if ((dl === DL_TYPE_IPV4 || dl === DL_TYPE_IPV6) && proto === NW_PROTO_TCP) put('tcp_flags');
  return out.join(',');
}

/** A set_field / load / move field name (load and move use OVS's NXM names where it has them). */
function subfieldName(f: WritableField, ofs: number, nBits: number): string {
  const name = NXM_NAMES[f] ?? f;
  const width = FIELDS[f].nBits;
  if (ofs === 0 && nBits === width) return `${name}[]`;
  if (nBits === 1) return `${name}[${ofs}]`;
  return `${name}[${ofs}..${ofs + nBits - 1}]`;
}

/** Names OVS prints in set_field (its OXM-style names) where they differ from ours. */
const SET_FIELD_NAMES: Readonly<Partial<Record<WritableField, string>>> = {
  dl_src: 'eth_src',
  dl_dst: 'eth_dst',
  nw_src: 'ip_src',
  nw_dst: 'ip_dst',
};

function setFieldValue(f: WritableField, value: Uint32Array): string {
  const spec = FIELDS[f];
  const v = Array.from(value);
  return formatFieldValue(f, v, [...spec.wordMask], undefined);
}

function formatAction(a: Action, ports?: PortNames): string {
  switch (a.type) {
    case 'output':
      return `output:${formatPort(a.port, ports)}`;
    case 'normal':
      return 'NORMAL';
    case 'flood':
      return 'FLOOD';
    case 'all':
      return 'ALL';
    case 'in_port':
      return 'IN_PORT';
    case 'local':
      return 'LOCAL';
    case 'controller':
      return `CONTROLLER:${a.maxLen}`;
    case 'drop':
      return 'drop';
    case 'mod_vlan_vid':
      return `mod_vlan_vid:${a.vid}`;
    case 'mod_vlan_pcp':
      return `mod_vlan_pcp:${a.pcp}`;
    case 'push_vlan':
      return `push_vlan:0x${a.tpid.toString(16)}`;
    case 'strip_vlan':
      return 'strip_vlan';
    case 'mod_dl_src':
    case 'mod_dl_dst':
      return `${a.type}:${formatMac(a.hi, a.lo)}`;
    case 'mod_nw_src':
    case 'mod_nw_dst':
      return `${a.type}:${formatIpv4(a.addr)}`;
    case 'mod_nw_tos':
      return `mod_nw_tos:${a.tos}`;
    case 'dec_ttl':
      return 'dec_ttl';
    case 'mod_tp_src':
    case 'mod_tp_dst':
      return `${a.type}:${a.port}`;
    case 'set_field':
      return `set_field:${setFieldValue(a.field, a.value)}->${SET_FIELD_NAMES[a.field] ?? a.field}`;
    case 'set_tunnel':
      return a.tunId > 0xffffffffn ? `set_tunnel64:${hex(a.tunId)}` : `set_tunnel:${hex(a.tunId)}`;
    case 'load':
      return `load:${hex(a.value)}->${subfieldName(a.field, a.ofs, a.nBits)}`;
    case 'move':
      return `move:${subfieldName(a.src, a.srcOfs, a.nBits)}->${subfieldName(a.dst, a.dstOfs, a.nBits)}`;
    case 'resubmit':
      if (a.table === MAX_TABLES) return `resubmit:${formatPort(a.port, ports)}`;
      return `resubmit(${a.port === OFPP.IN_PORT ? '' : formatPort(a.port, ports)},${a.table})`;
    case 'goto_table':
      return `goto_table:${a.table}`;
    default: {
      const never: never = a;
      throw new Error(`unhandled action ${JSON.stringify(never)}`);
    }
  }
}

/** The action list as ovs-ofctl prints it after "actions="; "drop" for an empty list. */
export function formatActions(actions: readonly Action[], ports?: PortNames): string {
  if (actions.length === 0) return 'drop';
  return actions.map((a) => formatAction(a, ports)).join(',');
}

export interface FlowCounters {
  nPackets: number;
  nBytes: number;
  /** Seconds since the flow was added (millisecond precision is printed). */
  durationS: number;
}

/** ofp_print_duration(): seconds, then 3 decimals when there is a fraction of a second. */
export function formatDuration(durationS: number): string {
  const ms = Math.round(durationS * 1000);
  const sec = Math.floor(ms / 1000);
  const frac = ms % 1000;
  return frac === 0 ? `${sec}s` : `${sec}.${String(frac).padStart(3, '0')}s`;
}

export interface FormatFlowOptions {
  counters?: FlowCounters;
  ports?: PortNames;
  /**
   * The command the text is for (default 'add'). For modify/delete, a missing table means
   * "all tables" (255), so table 0 is printed and 255 is not.
   */
  command?: 'add' | 'modify' | 'delete';
}

/**
 * One flow as ovs-ofctl prints it. With `counters`: a dump-flows line
 * (` cookie=0x0, duration=1.234s, table=0, n_packets=0, n_bytes=0, idle_timeout=10,
 * priority=100,ip actions=drop` — note the leading space, as ovs-ofctl). Without: the
 * `--no-stats` form, which is also add-flows file syntax (cookie and table only when
 * non-zero).
 */
export function formatFlow(spec: FlowSpec, opts: FormatFlowOptions = {}): string {
  const head = formatFlowHead(spec, opts);
  return `${head}${head === '' || head.endsWith(' ') ? '' : ' '}actions=${formatActions(spec.actions, opts.ports)}`;
}

/**
 * A flow without its actions: what del-flows takes (`cookie=0x1/0xff, table=2,
 * priority=5,ip`), and the part of formatFlow before "actions=".
 */
export function formatFlowHead(spec: FlowSpec, opts: FormatFlowOptions = {}): string {
  const c = opts.counters;
  let s = c !== undefined ? ' ' : '';
  if (c !== undefined || spec.cookie !== 0n || spec.cookieMask !== 0n) {
    s += `cookie=0x${spec.cookie.toString(16)}${spec.cookieMask !== 0n ? `/0x${spec.cookieMask.toString(16)}` : ''}, `;
  }
  if (c !== undefined) s += `duration=${formatDuration(c.durationS)}, `;
  const allTablesByDefault = opts.command === 'modify' || opts.command === 'delete';
  if (c !== undefined || (spec.table !== MAX_TABLES && (spec.table !== 0 || allTablesByDefault))) s += `table=${spec.table}, `;
  if (c !== undefined) s += `n_packets=${c.nPackets}, n_bytes=${c.nBytes}, `;
  if (spec.idleTimeout !== 0) s += `idle_timeout=${spec.idleTimeout}, `;
  if (spec.hardTimeout !== 0) s += `hard_timeout=${spec.hardTimeout}, `;
  const f = spec.flags;
  if (f.sendFlowRem) s += 'send_flow_rem ';
  if (f.checkOverlap) s += 'check_overlap ';
  if (f.resetCounts) s += 'reset_counts ';
  if (f.noPacketCounts) s += 'no_packet_counts ';
  if (f.noByteCounts) s += 'no_byte_counts ';
  return s + formatMatch(spec.match, opts.ports, spec.priority);
}
