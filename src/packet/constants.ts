/**
 * Protocol numbers and sizes used by the wire layer.
 *
 * Split in two, as wireguard-go's constants.go and js-libp2p's consts.ts do:
 *
 * - *Specification constants* come from a published standard; each names its source, so a
 *   reader can check it. Never change one of these to make a test pass.
 * - *Implementation constants* are lime's own choices (limits, defaults); they may change.
 *
 * Field offsets live in the per-protocol files (eth.ts, ipv4.ts, …), next to their accessors.
 */

// ---------------------------------------------------------------------------------------
// Specification constants
// ---------------------------------------------------------------------------------------

/** IEEE 802.3 §3.1.1: 6-byte MAC addresses; Ethernet II header = dst + src + type. */
export const ETH_ADDR_SIZE = 6;
export const ETH_HEADER_SIZE = 14;
/** IEEE 802.3 §4.4.2: minimum frame 64 bytes including the 4-byte FCS, so 60 without it. */
export const ETH_MIN_FRAME_SIZE = 60;
/**
 * IEEE 802.3 §3.2.6: a type/length field value ≥ 0x0600 is an EtherType; ≤ 0x05dc (1500) is
 * a length (802.3 + LLC). Values in between are undefined; like Open vSwitch we treat every
 * value below 0x0600 as a length.
 */
export const ETH_TYPE_MIN = 0x0600;

/** EtherTypes (IEEE Registration Authority; RFC 9542 §3 for the IETF-relevant ones). */
export const ETH_TYPE_IPV4 = 0x0800; // RFC 894
export const ETH_TYPE_ARP = 0x0806; // RFC 826
export const ETH_TYPE_RARP = 0x8035; // RFC 903
export const ETH_TYPE_IPV6 = 0x86dd; // RFC 8200 / RFC 2464
export const ETH_TYPE_TEB = 0x6558; // Transparent Ethernet Bridging (RFC 1701 §3, used by GRE)
export const ETH_TYPE_MPLS = 0x8847; // RFC 3032
export const ETH_TYPE_LLDP = 0x88cc; // IEEE 802.1AB

/** TPIDs. IEEE 802.1Q §9.5: C-VLAN tag 0x8100, S-VLAN (802.1ad) tag 0x88a8. */
export const TPID_8021Q = 0x8100;
export const TPID_8021AD = 0x88a8;
/**
 * 0x9100: pre-802.1ad "QinQ" S-tag used by older switches (vendor practice, not an IEEE
 * value). Accepted as the *outer* tag only, as Linux and many switches do.
 */
export const TPID_QINQ_LEGACY = 0x9100;
/** IEEE 802.1Q §9.6: a tag is TPID(2) + TCI(2); TCI = PCP(3) | DEI(1) | VID(12). */
export const VLAN_TAG_SIZE = 4;
export const VLAN_VID_MASK = 0x0fff;
export const VLAN_DEI = 0x1000;
export const VLAN_PCP_SHIFT = 13;
/**
 * In the flow key (key.ts, as in Open vSwitch), bit 12 of VLAN_TCI means "tag present"
 * instead of DEI, so that VID 0 with a tag differs from "no tag".
 */
export const VLAN_TCI_PRESENT = 0x1000;

/** 802.2 LLC: SNAP header DSAP/SSAP (IEEE 802.2 / RFC 1042). */
export const LLC_SAP_SNAP = 0xaa;

/** ARP (RFC 826; hardware types and opcodes: IANA "ARP Parameters"). */
export const ARP_HTYPE_ETHERNET = 1;
export const ARP_OP_REQUEST = 1; // RFC 826
export const ARP_OP_REPLY = 2; // RFC 826
export const ARP_OP_RARP_REQUEST = 3; // RFC 903
export const ARP_OP_RARP_REPLY = 4; // RFC 903
/** Fixed part (htype, ptype, hlen, plen, op) and full Ethernet/IPv4 ARP size (RFC 826). */
export const ARP_FIXED_SIZE = 8;
export const ARP_ETH_IPV4_SIZE = 28;

/** IP protocol numbers (IANA "Assigned Internet Protocol Numbers"). */
export const IPPROTO_HOPOPTS = 0; // RFC 8200 §4.3 IPv6 hop-by-hop options
export const IPPROTO_ICMP = 1; // RFC 792
export const IPPROTO_TCP = 6; // RFC 9293
export const IPPROTO_UDP = 17; // RFC 768
export const IPPROTO_IPV6 = 41; // RFC 2473
export const IPPROTO_ROUTING = 43; // RFC 8200 §4.4
export const IPPROTO_FRAGMENT = 44; // RFC 8200 §4.5
export const IPPROTO_GRE = 47; // RFC 2784
export const IPPROTO_ESP = 50; // RFC 4303
export const IPPROTO_AH = 51; // RFC 4302
export const IPPROTO_ICMPV6 = 58; // RFC 4443
export const IPPROTO_NONE = 59; // RFC 8200 §4.7 no next header
export const IPPROTO_DSTOPTS = 60; // RFC 8200 §4.6
export const IPPROTO_SCTP = 132; // RFC 9260

/** IPv4 (RFC 791 §3.1). */
export const IPV4_VERSION = 4;
export const IPV4_MIN_HEADER_SIZE = 20;
export const IPV4_MAX_HEADER_SIZE = 60;
export const IPV4_FLAG_DF = 0x4000; // in the 16-bit flags/fragment-offset word
export const IPV4_FLAG_MF = 0x2000;
export const IPV4_FRAG_OFFSET_MASK = 0x1fff; // in units of 8 bytes

/** IPv6 (RFC 8200 §3, §4). */
export const IPV6_VERSION = 6;
export const IPV6_HEADER_SIZE = 40;
export const IPV6_FRAG_HEADER_SIZE = 8; // RFC 8200 §4.5
export const IPV6_FRAG_OFFSET_MASK = 0xfff8; // in the 16-bit offset/flags word
export const IPV6_FRAG_MF = 0x0001;
export const IPV6_FLOW_LABEL_MASK = 0x000fffff;

/** TCP (RFC 9293 §3.1): header ≥ 20 bytes; flags in the low 12 bits of the word at 12. */
export const TCP_MIN_HEADER_SIZE = 20;
export const TCP_FLAGS_MASK = 0x0fff;
export const TCP_FIN = 0x001;
export const TCP_SYN = 0x002;
export const TCP_RST = 0x004;
export const TCP_PSH = 0x008;
export const TCP_ACK = 0x010;
export const TCP_URG = 0x020;
export const TCP_ECE = 0x040; // RFC 3168
export const TCP_CWR = 0x080; // RFC 3168
export const TCP_NS = 0x100; // RFC 3540 (historic)

/** UDP (RFC 768). */
export const UDP_HEADER_SIZE = 8;

/**
 * ICMP (RFC 792) and ICMPv6 (RFC 4443 §2.1): type, code, checksum, then 4 bytes whose
 * meaning depends on the type; every message has at least those 8 bytes.
 */
export const ICMP_HEADER_SIZE = 8;
export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACH = 3;
export const ICMP_FRAG_NEEDED = 4; // code of ICMP_DEST_UNREACH (RFC 1191)
export const ICMP_ECHO_REQUEST = 8;
export const ICMP_TIME_EXCEEDED = 11;
export const ICMPV6_DEST_UNREACH = 1; // RFC 4443
export const ICMPV6_PACKET_TOO_BIG = 2; // RFC 4443
export const ICMPV6_ECHO_REQUEST = 128; // RFC 4443
export const ICMPV6_ECHO_REPLY = 129; // RFC 4443
export const ICMPV6_ROUTER_SOLICIT = 133; // RFC 4861
export const ICMPV6_ROUTER_ADVERT = 134; // RFC 4861
export const ICMPV6_NEIGHBOR_SOLICIT = 135; // RFC 4861
export const ICMPV6_NEIGHBOR_ADVERT = 136; // RFC 4861

/**
 * GRE (RFC 2784 §2, with the Key and Sequence Number extensions of RFC 2890 §2).
 * First 16 bits: C(0) R(1) K(2) S(3) s(4) Recur(5-7) | Flags(8-12) Ver(13-15); these
 * masks apply to that 16-bit word.
 */
export const GRE_BASE_HEADER_SIZE = 4;
export const GRE_FLAG_C = 0x8000; // checksum present (RFC 2784 §2.5)
export const GRE_FLAG_R = 0x4000; // routing present (RFC 1701; receivers MUST drop, RFC 2784 §2.3)
export const GRE_FLAG_K = 0x2000; // key present (RFC 2890 §2.1)
export const GRE_FLAG_S = 0x1000; // sequence number present (RFC 2890 §2.2)
/**
 * RFC 2784 §2.3: "A receiver MUST discard a packet where any of bits 1-5 are non-zero"
 * (bits 2 and 3 are K and S since RFC 2890). Bits 6-12 "MUST be ignored on receipt".
 */
export const GRE_MUST_BE_ZERO = 0x4000 | 0x0800 | 0x0400; // R, s, Recur MSB
export const GRE_VERSION_MASK = 0x0007; // RFC 2784 §2.3.1: MUST be 0
export const GRE_OPTION_SIZE = 4; // each of checksum(+reserved1), key, sequence number

// ---------------------------------------------------------------------------------------
// Implementation constants
// ---------------------------------------------------------------------------------------

/** Most VLAN tags extract() parses (outer + inner), as Open vSwitch's FLOW_MAX_VLAN_HEADERS. */
export const MAX_VLAN_TAGS = 2;
/** Default TTL / hop limit of packets that lime originates. */
export const DEFAULT_TTL = 64;
