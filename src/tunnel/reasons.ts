/**
 * Drop reasons that only the tunnel layer produces.
 *
 * These are to be appended to DropReason (src/packet/drop.ts) — and their names to
 * DROP_REASON_NAMES — when the tunnel ports land; until then they live here so that
 * src/tunnel/ can be built and tested without touching the shared enum. Their numbers
 * continue DropReason where it ends today (DROP_REASON_COUNT = 39), so moving them is a
 * rename, not a renumbering; test/unit/tunnel/reasons.test.ts fails if drop.ts grows
 * and the numbers start to collide.
 *
 * Outer-header problems that extract() already names reuse the existing reasons
 * (IPV4_TRUNCATED, IPV4_BAD_VERSION, IPV4_BAD_IHL, IPV4_BAD_TOTAL_LEN, GRE_TRUNCATED,
 * GRE_BAD_VERSION, GRE_BAD_FLAGS, RUNT).
 */
export const TunnelDropReason = {
  /** The outer IPv4 header checksum does not verify (RFC 791). */
  TUNNEL_IPV4_BAD_CHECKSUM: 39,
  /** The outer IPv4 packet is not GRE (protocol ≠ 47). */
  TUNNEL_NOT_GRE: 40,
  /** The outer IPv4 packet is a fragment (MF set or offset ≠ 0): lime does not reassemble. */
  TUNNEL_FRAGMENT: 41,
  /** The outer source address is not the tunnel's configured remote (spoofed or stray). */
  TUNNEL_UNKNOWN_REMOTE: 42,
  /** GRE protocol type is not 0x6558 (Transparent Ethernet Bridging). */
  GRE_BAD_PROTO: 43,
  /** The C bit is set and the GRE checksum does not verify (RFC 2784 §2.5). */
  GRE_BAD_CHECKSUM: 44,
  /** The tunnel expects a key and the packet has none (K bit clear, RFC 2890 §2.1). */
  GRE_KEY_MISSING: 45,
  /** The packet's key differs from the tunnel's, or it has a key and the tunnel none. */
  GRE_KEY_MISMATCH: 46,
} as const;

export type TunnelDropReason = (typeof TunnelDropReason)[keyof typeof TunnelDropReason];

/** First number after the last tunnel reason (DropReason's count once these are appended). */
export const TUNNEL_DROP_REASON_END = 47;

/** snake_case names, as DROP_REASON_NAMES, indexed by `reason - 39`. */
export const TUNNEL_DROP_REASON_NAMES: readonly string[] = [
  'tunnel_ipv4_bad_checksum',
  'tunnel_not_gre',
  'tunnel_fragment',
  'tunnel_unknown_remote',
  'gre_bad_proto',
  'gre_bad_checksum',
  'gre_key_missing',
  'gre_key_mismatch',
];
