/**
 * The one registry of OpenFlow match fields (ovs-ofctl names), and the protocol shorthands.
 *
 * Every part of the flow layer that handles a field — the parser (parse.ts), the printer
 * (print.ts), prerequisites (prereq.ts), the match algebra (match.ts) and `trace`'s packet
 * description (parsePacket) — reads this table and switches exhaustively over `FieldName`
 * or `FieldFormat` (with a `never` check), so adding a field fails to compile wherever it
 * must be handled.
 *
 * How a field sits in the flow key (packet/key.ts): `words` lists its key words, most
 * significant first; `wordMask` the bits of each word it covers. A field's *value* as text
 * (what the operator types) is converted to key words by its `format`:
 *
 *   - 'decimal' / 'hex': an unsigned integer of `nBits` bits at `shift` in one word
 *     (hex: printed as 0x…), or `nBits` = 64 over two words (hi, lo);
 *   - 'mac': 48 bits over (hi 16, lo 32); 'ipv4': one word; 'ipv6': four words;
 *   - 'port': an OpenFlow port number or name (in_port);
 *   - 'vlan_vid' / 'vlan_pcp': OpenFlow 1.0's dl_vlan / dl_vlan_pcp, written into VLAN_TCI
 *     with the tag-present bit (0x1000), as Open vSwitch does (dl_vlan=0xffff = untagged);
 *   - 'frag': ip_frag's keywords over NW_FRAG; 'tcp_flags': numbers or +syn-ack / syn|ack.
 *
 * Several fields share key words (nw_tos / ip_dscp / nw_ecn in NW_TOS; tp_src / icmp_type
 * in TP_SRC; nw_src / arp_spa in NW_SRC; nw_proto / arp_op in NW_PROTO; dl_vlan /
 * dl_vlan_pcp / vlan_tci in VLAN_TCI). The printer decides which name to print from the
 * match's dl_type and nw_proto, exactly as ovs-ofctl's match_format() does.
 *
 * Cost: a plain object read at parse/print time only; nothing here is on the packet path.
 */
import { K } from '../packet/key.js';

/** Names of all match fields (ovs-ofctl spelling). */
export type FieldName =
  | 'in_port'
  | 'dl_src'
  | 'dl_dst'
  | 'dl_type'
  | 'dl_vlan'
  | 'dl_vlan_pcp'
  | 'vlan_tci'
  | 'nw_src'
  | 'nw_dst'
  | 'nw_proto'
  | 'nw_tos'
  | 'ip_dscp'
  | 'nw_ecn'
  | 'nw_ttl'
  | 'ip_frag'
  | 'arp_op'
  | 'arp_spa'
  | 'arp_tpa'
  | 'arp_sha'
  | 'arp_tha'
  | 'ipv6_src'
  | 'ipv6_dst'
  | 'ipv6_label'
  | 'tp_src'
  | 'tp_dst'
  | 'tcp_flags'
  | 'icmp_type'
  | 'icmp_code'
  | 'icmpv6_type'
  | 'icmpv6_code'
  | 'tun_id'
  | 'metadata';

export type FieldFormat =
  | 'decimal'
  | 'hex'
  | 'mac'
  | 'ipv4'
  | 'ipv6'
  | 'port'
  | 'vlan_vid'
  | 'vlan_pcp'
  | 'frag'
  | 'tcp_flags';

/**
 * What the match must already constrain for a field to be matched (OpenFlow 1.x
 * prerequisites; see prereq.ts for the checks and messages).
 */
export type PrereqId =
  | 'none'
  | 'ip_any' // dl_type = 0x0800 or 0x86dd
  | 'ipv4' // dl_type = 0x0800
  | 'ipv6' // dl_type = 0x86dd
  | 'arp' // dl_type = 0x0806 or 0x8035
  | 'transport' // ip_any and nw_proto = 6, 17 or 132
  | 'tcp' // ip_any and nw_proto = 6
  | 'icmp_any' // ipv4 and nw_proto = 1, or ipv6 and nw_proto = 58
  | 'icmp6'; // ipv6 and nw_proto = 58

export interface FieldSpec {
  /** Key words (packet/key.ts K.*), most significant first. */
  readonly words: readonly number[];
  /** Bits of each word that the field covers (same length as `words`). */
  readonly wordMask: readonly number[];
  /** Width of the field's value in bits (what load/move address as [0..nBits-1]). */
  readonly nBits: number;
  /** For one-word fields: value = (word & wordMask) >>> shift. */
  readonly shift: number;
  /** Whether `field=value/mask` is accepted. */
  readonly maskable: boolean;
  readonly format: FieldFormat;
  readonly prereq: PrereqId;
}

/** The registry. Key: ovs-ofctl field name. */
export const FIELDS = {
  in_port: { words: [K.IN_PORT], wordMask: [0xffff], nBits: 16, shift: 0, maskable: false, format: 'port', prereq: 'none' },
  dl_src: { words: [K.DL_SRC_HI, K.DL_SRC_LO], wordMask: [0xffff, 0xffffffff], nBits: 48, shift: 0, maskable: true, format: 'mac', prereq: 'none' },
  dl_dst: { words: [K.DL_DST_HI, K.DL_DST_LO], wordMask: [0xffff, 0xffffffff], nBits: 48, shift: 0, maskable: true, format: 'mac', prereq: 'none' },
  dl_type: { words: [K.DL_TYPE], wordMask: [0xffff], nBits: 16, shift: 0, maskable: false, format: 'hex', prereq: 'none' },
  /** VID 0..4095 → VLAN_TCI 0x1000|vid under mask 0x1fff; 0xffff → untagged (0 under 0xffff). */
  dl_vlan: { words: [K.VLAN_TCI], wordMask: [0x1fff], nBits: 12, shift: 0, maskable: false, format: 'vlan_vid', prereq: 'none' },
  /** PCP 0..7 → VLAN_TCI pcp<<13|0x1000 under mask 0xf000. */
  dl_vlan_pcp: { words: [K.VLAN_TCI], wordMask: [0xf000], nBits: 3, shift: 13, maskable: false, format: 'vlan_pcp', prereq: 'none' },
  vlan_tci: { words: [K.VLAN_TCI], wordMask: [0xffff], nBits: 16, shift: 0, maskable: true, format: 'hex', prereq: 'none' },
  nw_src: { words: [K.NW_SRC], wordMask: [0xffffffff], nBits: 32, shift: 0, maskable: true, format: 'ipv4', prereq: 'ipv4' },
  nw_dst: { words: [K.NW_DST], wordMask: [0xffffffff], nBits: 32, shift: 0, maskable: true, format: 'ipv4', prereq: 'ipv4' },
  nw_proto: { words: [K.NW_PROTO], wordMask: [0xff], nBits: 8, shift: 0, maskable: false, format: 'decimal', prereq: 'ip_any' },
  /** The DSCP bits of the TOS byte, written as the byte (low 2 bits ignored, as OVS). */
  nw_tos: { words: [K.NW_TOS], wordMask: [0xfc], nBits: 8, shift: 0, maskable: false, format: 'decimal', prereq: 'ip_any' },
  ip_dscp: { words: [K.NW_TOS], wordMask: [0xfc], nBits: 6, shift: 2, maskable: false, format: 'decimal', prereq: 'ip_any' },
  nw_ecn: { words: [K.NW_TOS], wordMask: [0x03], nBits: 2, shift: 0, maskable: false, format: 'decimal', prereq: 'ip_any' },
  nw_ttl: { words: [K.NW_TTL], wordMask: [0xff], nBits: 8, shift: 0, maskable: false, format: 'decimal', prereq: 'ip_any' },
  ip_frag: { words: [K.NW_FRAG], wordMask: [0x3], nBits: 2, shift: 0, maskable: false, format: 'frag', prereq: 'ip_any' },
  arp_op: { words: [K.NW_PROTO], wordMask: [0xff], nBits: 8, shift: 0, maskable: false, format: 'decimal', prereq: 'arp' },
  arp_spa: { words: [K.NW_SRC], wordMask: [0xffffffff], nBits: 32, shift: 0, maskable: true, format: 'ipv4', prereq: 'arp' },
  arp_tpa: { words: [K.NW_DST], wordMask: [0xffffffff], nBits: 32, shift: 0, maskable: true, format: 'ipv4', prereq: 'arp' },
  arp_sha: { words: [K.ARP_SHA_HI, K.ARP_SHA_LO], wordMask: [0xffff, 0xffffffff], nBits: 48, shift: 0, maskable: true, format: 'mac', prereq: 'arp' },
  arp_tha: { words: [K.ARP_THA_HI, K.ARP_THA_LO], wordMask: [0xffff, 0xffffffff], nBits: 48, shift: 0, maskable: true, format: 'mac', prereq: 'arp' },
  ipv6_src: {
    words: [K.IPV6_SRC, K.IPV6_SRC + 1, K.IPV6_SRC + 2, K.IPV6_SRC + 3],
    wordMask: [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
    nBits: 128,
    shift: 0,
    maskable: true,
    format: 'ipv6',
    prereq: 'ipv6',
  },
  ipv6_dst: {
    words: [K.IPV6_DST, K.IPV6_DST + 1, K.IPV6_DST + 2, K.IPV6_DST + 3],
    wordMask: [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
    nBits: 128,
    shift: 0,
    maskable: true,
    format: 'ipv6',
    prereq: 'ipv6',
  },
  ipv6_label: { words: [K.IPV6_LABEL], wordMask: [0xfffff], nBits: 20, shift: 0, maskable: true, format: 'hex', prereq: 'ipv6' },
  tp_src: { words: [K.TP_SRC], wordMask: [0xffff], nBits: 16, shift: 0, maskable: true, format: 'decimal', prereq: 'transport' },
  tp_dst: { words: [K.TP_DST], wordMask: [0xffff], nBits: 16, shift: 0, maskable: true, format: 'decimal', prereq: 'transport' },
  tcp_flags: { words: [K.TCP_FLAGS], wordMask: [0x0fff], nBits: 12, shift: 0, maskable: true, format: 'tcp_flags', prereq: 'tcp' },
  icmp_type: { words: [K.TP_SRC], wordMask: [0xff], nBits: 8, shift: 0, maskable: false, format: 'decimal', prereq: 'icmp_any' },
  icmp_code: { words: [K.TP_DST], wordMask: [0xff], nBits: 8, shift: 0, maskable: false, format: 'decimal', prereq: 'icmp_any' },
  icmpv6_type: { words: [K.TP_SRC], wordMask: [0xff], nBits: 8, shift: 0, maskable: false, format: 'decimal', prereq: 'icmp6' },
  icmpv6_code: { words: [K.TP_DST], wordMask: [0xff], nBits: 8, shift: 0, maskable: false, format: 'decimal', prereq: 'icmp6' },
  tun_id: { words: [K.TUN_ID_HI, K.TUN_ID], wordMask: [0xffffffff, 0xffffffff], nBits: 64, shift: 0, maskable: true, format: 'hex', prereq: 'none' },
  metadata: { words: [K.METADATA_HI, K.METADATA_LO], wordMask: [0xffffffff, 0xffffffff], nBits: 64, shift: 0, maskable: true, format: 'hex', prereq: 'none' },
} as const satisfies Record<FieldName, FieldSpec>;

export const FIELD_NAMES = Object.keys(FIELDS) as FieldName[];

export function isFieldName(name: string): name is FieldName {
  return Object.hasOwn(FIELDS, name);
}

/**
 * Other spellings ovs-ofctl accepts for the same field (OXM names and the per-protocol
 * transport ports). `udp,tcp_dst=53` is accepted and prints as `tp_dst=53`, as in OVS.
 */
export const FIELD_ALIASES: Readonly<Record<string, FieldName>> = {
  tcp_src: 'tp_src',
  tcp_dst: 'tp_dst',
  udp_src: 'tp_src',
  udp_dst: 'tp_dst',
  sctp_src: 'tp_src',
  sctp_dst: 'tp_dst',
  eth_src: 'dl_src',
  eth_dst: 'dl_dst',
  eth_type: 'dl_type',
  ip_src: 'nw_src',
  ip_dst: 'nw_dst',
  ip_proto: 'nw_proto',
  ip_ecn: 'nw_ecn',
  ip_ttl: 'nw_ttl',
  nw_frag: 'ip_frag',
  icmpv4_type: 'icmp_type',
  icmpv4_code: 'icmp_code',
  tunnel_id: 'tun_id',
};

/** Protocol shorthands: `tcp` = dl_type=0x0800,nw_proto=6 (ovs-ofctl "Flow Syntax"). */
export type ShorthandName = 'ip' | 'ipv6' | 'arp' | 'rarp' | 'icmp' | 'icmp6' | 'tcp' | 'tcp6' | 'udp' | 'udp6' | 'sctp' | 'sctp6';

export interface Shorthand {
  readonly dlType: number;
  /** undefined: the shorthand does not constrain nw_proto. */
  readonly nwProto: number | undefined;
}

export const SHORTHANDS = {
  ip: { dlType: 0x0800, nwProto: undefined },
  ipv6: { dlType: 0x86dd, nwProto: undefined },
  arp: { dlType: 0x0806, nwProto: undefined },
  rarp: { dlType: 0x8035, nwProto: undefined },
  icmp: { dlType: 0x0800, nwProto: 1 },
  icmp6: { dlType: 0x86dd, nwProto: 58 },
  tcp: { dlType: 0x0800, nwProto: 6 },
  tcp6: { dlType: 0x86dd, nwProto: 6 },
  udp: { dlType: 0x0800, nwProto: 17 },
  udp6: { dlType: 0x86dd, nwProto: 17 },
  sctp: { dlType: 0x0800, nwProto: 132 },
  sctp6: { dlType: 0x86dd, nwProto: 132 },
} as const satisfies Record<ShorthandName, Shorthand>;

export function isShorthand(name: string): name is ShorthandName {
  return Object.hasOwn(SHORTHANDS, name);
}

/** EtherTypes and IP protocol numbers the prerequisites and shorthands refer to. */
export const DL_TYPE_IPV4 = 0x0800;
export const DL_TYPE_IPV6 = 0x86dd;
export const DL_TYPE_ARP = 0x0806;
export const DL_TYPE_RARP = 0x8035;
export const NW_PROTO_ICMP = 1;
export const NW_PROTO_TCP = 6;
export const NW_PROTO_UDP = 17;
export const NW_PROTO_ICMPV6 = 58;
export const NW_PROTO_SCTP = 132;

/** Value of dl_vlan meaning "no VLAN tag" (OpenFlow 1.0 OFP_VLAN_NONE). */
export const DL_VLAN_NONE = 0xffff;
/** VLAN_TCI bit meaning "a tag is present" (Open vSwitch's VLAN_CFI). */
export const VLAN_TCI_PRESENT = 0x1000;

/** TCP flag names, bit 0 first (Open vSwitch's packet_tcp_flag_to_string). */
export const TCP_FLAG_NAMES: readonly string[] = ['fin', 'syn', 'rst', 'psh', 'ack', 'urg', 'ece', 'cwr', 'ns', '[200]', '[400]', '[800]'];
