/**
 * Why a frame was dropped. One enum for every layer: parsers return one of these instead
 * of throwing, and every reason has a per-port counter shown by `limectl show` under its
 * snake_case name (DROP_REASON_NAMES).
 */
export enum DropReason {
  NONE = 0,
  // Parsing (extract.ts): the frame is truncated or inconsistent.
  RUNT = 1, // shorter than an Ethernet header (14 bytes)
  VLAN_TRUNCATED = 2, // a VLAN TPID with no room for its tag
  ARP_TRUNCATED = 3,
  ARP_BAD_FORMAT = 4, // Ethernet/IPv4 ARP whose hlen/plen are not 6/4
  IPV4_TRUNCATED = 5, // shorter than 20 bytes of IPv4 header
  IPV4_BAD_VERSION = 6,
  IPV4_BAD_IHL = 7, // IHL < 5, or header longer than the frame
  IPV4_BAD_TOTAL_LEN = 8, // total length < header length, or more than the frame holds
  IPV6_TRUNCATED = 9,
  IPV6_BAD_VERSION = 10,
  IPV6_BAD_PAYLOAD_LEN = 11, // payload length more than the frame holds
  IPV6_EXT_TRUNCATED = 12, // an extension header runs past the packet
  TCP_TRUNCATED = 13,
  TCP_BAD_DATA_OFFSET = 14, // data offset < 5 or past the packet
  UDP_TRUNCATED = 15,
  UDP_BAD_LENGTH = 16, // UDP length < 8 or more than the packet holds
  ICMP_TRUNCATED = 17,
  ICMPV6_TRUNCATED = 18,
  GRE_TRUNCATED = 19,
  GRE_BAD_VERSION = 20,
  GRE_BAD_FLAGS = 21, // routing bit or reserved bits set (RFC 2784 §2.1)
  // Switching (datapath).
  SRC_MAC_MULTICAST = 22, // a multicast/broadcast source MAC is invalid (IEEE 802.3)
  TOO_LONG = 23, // frame larger than the output port's MTU allows
  NO_OUTPUT = 24, // the only candidate output was the input port
  // Port I/O (counted by the port itself).
  TX_QUEUE_FULL = 25,
  PORT_DOWN = 26,
  TX_ERROR = 27,
  RX_TOO_LONG = 28,
}

export const DROP_REASON_COUNT = 29;

export const DROP_REASON_NAMES: readonly string[] = [
  'none',
  'runt',
  'vlan_truncated',
  'arp_truncated',
  'arp_bad_format',
  'ipv4_truncated',
  'ipv4_bad_version',
  'ipv4_bad_ihl',
  'ipv4_bad_total_len',
  'ipv6_truncated',
  'ipv6_bad_version',
  'ipv6_bad_payload_len',
  'ipv6_ext_truncated',
  'tcp_truncated',
  'tcp_bad_data_offset',
  'udp_truncated',
  'udp_bad_length',
  'icmp_truncated',
  'icmpv6_truncated',
  'gre_truncated',
  'gre_bad_version',
  'gre_bad_flags',
  'src_mac_multicast',
  'too_long',
  'no_output',
  'tx_queue_full',
  'port_down',
  'tx_error',
  'rx_too_long',
];
