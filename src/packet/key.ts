/**
 * Flow-key layout: the parsed header fields of one frame, as words of a Uint32Array.
 *
 * extract.ts fills these words for every frame of a batch; the MAC-learning switch, and
 * later the classifier and its exact-match cache, read them. The layout follows the
 * semantics of Open vSwitch's `struct flow` so that matches behave as operators expect:
 *
 * - MACs are split into a 16-bit high part and a 32-bit low part (`aa:bb` | `cc:dd:ee:ff`).
 * - `DL_TYPE` is the EtherType after any VLAN tags; 0x05ff for an 802.3 length field.
 * - `VLAN_TCI` is 0 for an untagged frame, else PCP<<13 | 0x1000 (tag present) | VID, for
 *   the outer tag; `VLAN_TPID` its TPID (0x8100 or 0x88a8). `VLAN2_*` likewise for the
 *   inner tag of a double-tagged frame.
 * - For IPv4: NW_SRC/NW_DST addresses, NW_PROTO, NW_TOS (the whole TOS byte: DSCP<<2|ECN),
 *   NW_TTL, NW_FRAG (bit 0: a fragment; bit 1: not the first fragment).
 * - For ARP: NW_SRC = SPA, NW_DST = TPA, NW_PROTO = opcode (low 8 bits), ARP_SHA/ARP_THA.
 * - For IPv6: IPV6_SRC/IPV6_DST (4 words each, network order word by word), IPV6_LABEL,
 *   NW_PROTO = the upper-layer protocol after extension headers, NW_TTL = hop limit,
 *   NW_TOS = traffic class, NW_FRAG as for IPv4.
 * - TP_SRC/TP_DST: TCP/UDP ports; for ICMP and ICMPv6 the type and code. TCP_FLAGS: the
 *   12 flag bits of TCP.
 * - L3_OFF/L4_OFF/L7_OFF: byte offsets from the frame start to the network header, the
 *   transport header and the transport payload; OFF_ABSENT when there is none.
 *
 * Words not applicable to a frame are zero.
 */
export const K = {
  IN_PORT: 0,
  DL_DST_HI: 1,
  DL_DST_LO: 2,
  DL_SRC_HI: 3,
  DL_SRC_LO: 4,
  DL_TYPE: 5,
  VLAN_TCI: 6,
  VLAN_TPID: 7,
  VLAN2_TCI: 8,
  VLAN2_TPID: 9,
  NW_SRC: 10,
  NW_DST: 11,
  NW_PROTO: 12,
  NW_TOS: 13,
  NW_TTL: 14,
  NW_FRAG: 15,
  TP_SRC: 16,
  TP_DST: 17,
  TCP_FLAGS: 18,
  IPV6_SRC: 19, // 4 words: 19..22
  IPV6_DST: 23, // 4 words: 23..26
  IPV6_LABEL: 27,
  ARP_SHA_HI: 28,
  ARP_SHA_LO: 29,
  ARP_THA_HI: 30,
  ARP_THA_LO: 31,
  L3_OFF: 32,
  L4_OFF: 33,
  L7_OFF: 34,
  /** Tunnel id (GRE key / VLAN tunnel id) of a frame received from a tunnel; 0 otherwise.
   * Low 32 bits; TUN_ID_HI holds the high 32 bits of OpenFlow's 64-bit tun_id. */
  TUN_ID: 35,
  TUN_ID_HI: 36,
  /** OpenFlow metadata (64 bits), zero when a frame enters the pipeline. */
  METADATA_HI: 37,
  METADATA_LO: 38,
} as const;

export const KEY_WORDS = 39;

/** Key words that are header fields (matchable); the offsets L3_OFF..L7_OFF are not. */
export function isMatchWord(word: number): boolean {
  return word < K.L3_OFF || word > K.L7_OFF;
}
export const OFF_ABSENT = 0xffff;

/** dl_type value for 802.3 frames whose type/length field is a length (as Open vSwitch). */
export const DL_TYPE_NOT_ETH_TYPE = 0x05ff;

/** NW_FRAG bits (Open vSwitch's FLOW_NW_FRAG_ANY / FLOW_NW_FRAG_LATER). */
export const NW_FRAG_ANY = 1;
export const NW_FRAG_LATER = 2;
