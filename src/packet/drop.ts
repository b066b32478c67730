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
  // Flow pipeline (datapath/xlate.ts, execute.ts).
  RESUBMIT_LIMIT = 29, // resubmit/goto_table nested deeper than 64, or more than 4096 lookups
  PROGRAM_TOO_LONG = 30, // the translated action program exceeds the translation arena
  TABLE_MISS = 31, // no rule matched (a table without a table-miss rule) and nothing was output
  ACTION_DROP = 32, // the matching rules' actions output the frame nowhere (e.g. actions=drop)
  TTL_EXPIRED = 33, // dec_ttl on a TTL / hop limit of 0 or 1
  OUTPUT_COPY_EXHAUSTED = 34, // no room left in the output-copy slab for this batch
  NO_HEADROOM = 35, // a VLAN push with no headroom left in front of the frame
  PACKET_IN_RATE = 36, // packet-in over the configured rate (token bucket)
  NO_CONTROLLER = 37, // a CONTROLLER action with no packet-in consumer attached
  NO_LOCAL_PORT = 38, // output to LOCAL: the bridge has no local port
  // Tunnels (tunnel/gre.ts, io/gre.ts). Outer-header problems extract() already names
  // reuse the reasons above (IPV4_TRUNCATED … GRE_BAD_FLAGS, RUNT).
  TUNNEL_IPV4_BAD_CHECKSUM = 39, // the outer IPv4 header checksum does not verify (RFC 791)
  TUNNEL_NOT_GRE = 40, // the outer IPv4 packet is not GRE (protocol ≠ 47)
  TUNNEL_FRAGMENT = 41, // an outer IPv4 fragment reached the tunnel (lime does not reassemble)
  TUNNEL_UNKNOWN_REMOTE = 42, // the outer source is not a configured remote (spoofed or stray)
  GRE_BAD_PROTO = 43, // GRE protocol type is not 0x6558 (Transparent Ethernet Bridging)
  GRE_BAD_CHECKSUM = 44, // the C bit is set and the GRE checksum does not verify (RFC 2784 §2.5)
  GRE_KEY_MISSING = 45, // the tunnel expects a key and the packet has none (RFC 2890 §2.1)
  GRE_KEY_MISMATCH = 46, // the packet's key is not the tunnel's, or it has a key and the tunnel none
  TUNNEL_PATH_MTU = 47, // the frame does not fit the tunnel's path MTU (ICMP "fragmentation needed" sent when IPv4 DF)
  RX_OFFLOAD_UNSUPPORTED = 48, // a receive offload (GSO type) the port cannot segment
  // Live migration (datapath/execute.ts).
  TUNNEL_NO_HOST = 49, // a frame from the peer site whose tunnel id names no host at this site
  MIGRATION_FROZEN = 50, // a host's frame while a stop-and-copy migration cuts over (forwarding frozen)
}

export const DROP_REASON_COUNT = 51;

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
  'resubmit_limit',
  'program_too_long',
  'table_miss',
  'action_drop',
  'ttl_expired',
  'output_copy_exhausted',
  'no_headroom',
  'packet_in_rate',
  'no_controller',
  'no_local_port',
  'tunnel_ipv4_bad_checksum',
  'tunnel_not_gre',
  'tunnel_fragment',
  'tunnel_unknown_remote',
  'gre_bad_proto',
  'gre_bad_checksum',
  'gre_key_missing',
  'gre_key_mismatch',
  'tunnel_path_mtu',
  'rx_offload_unsupported',
  'tunnel_no_host',
  'migration_frozen',
];
