/*
 * The flow key of a frame, in C: the same words, in the same order, with the same drop
 * reasons as src/packet/extract.ts (whose comment is the specification; key.ts gives the
 * layout, drop.ts the reasons). It exists so that native code can classify a frame
 * exactly as the JavaScript data path does — the first part of a native fast path (see
 * the README's Limits on tunnel latency). test/unit/native/extract.test.ts checks, frame
 * by frame, that both produce identical keys and reasons.
 *
 * Invariants, as the JavaScript one: never reads outside f[0 .. len), never fails other
 * than by a drop reason, every offset it stores is <= len.
 */
#ifndef LIME_EXTRACT_H
#define LIME_EXTRACT_H

#include <stddef.h>
#include <stdint.h>

/* src/packet/key.ts: K */
enum {
  LIME_K_IN_PORT = 0,
  LIME_K_DL_DST_HI = 1,
  LIME_K_DL_DST_LO = 2,
  LIME_K_DL_SRC_HI = 3,
  LIME_K_DL_SRC_LO = 4,
  LIME_K_DL_TYPE = 5,
  LIME_K_VLAN_TCI = 6,
  LIME_K_VLAN_TPID = 7,
  LIME_K_VLAN2_TCI = 8,
  LIME_K_VLAN2_TPID = 9,
  LIME_K_NW_SRC = 10,
  LIME_K_NW_DST = 11,
  LIME_K_NW_PROTO = 12,
  LIME_K_NW_TOS = 13,
  LIME_K_NW_TTL = 14,
  LIME_K_NW_FRAG = 15,
  LIME_K_TP_SRC = 16,
  LIME_K_TP_DST = 17,
  LIME_K_TCP_FLAGS = 18,
  LIME_K_IPV6_SRC = 19, /* 4 words */
  LIME_K_IPV6_DST = 23, /* 4 words */
  LIME_K_IPV6_LABEL = 27,
  LIME_K_ARP_SHA_HI = 28,
  LIME_K_ARP_SHA_LO = 29,
  LIME_K_ARP_THA_HI = 30,
  LIME_K_ARP_THA_LO = 31,
  LIME_K_L3_OFF = 32,
  LIME_K_L4_OFF = 33,
  LIME_K_L7_OFF = 34,
  LIME_K_TUN_ID = 35,
  LIME_K_TUN_ID_HI = 36,
  LIME_K_METADATA_HI = 37,
  LIME_K_METADATA_LO = 38,
  LIME_KEY_WORDS = 39
};

#define LIME_OFF_ABSENT 0xffffu

/* src/packet/drop.ts: DropReason (the ones extract returns) */
enum {
  LIME_DROP_NONE = 0,
  LIME_DROP_RUNT = 1,
  LIME_DROP_VLAN_TRUNCATED = 2,
  LIME_DROP_ARP_TRUNCATED = 3,
  LIME_DROP_ARP_BAD_FORMAT = 4,
  LIME_DROP_IPV4_TRUNCATED = 5,
  LIME_DROP_IPV4_BAD_VERSION = 6,
  LIME_DROP_IPV4_BAD_IHL = 7,
  LIME_DROP_IPV4_BAD_TOTAL_LEN = 8,
  LIME_DROP_IPV6_TRUNCATED = 9,
  LIME_DROP_IPV6_BAD_VERSION = 10,
  LIME_DROP_IPV6_BAD_PAYLOAD_LEN = 11,
  LIME_DROP_IPV6_EXT_TRUNCATED = 12,
  LIME_DROP_TCP_TRUNCATED = 13,
  LIME_DROP_TCP_BAD_DATA_OFFSET = 14,
  LIME_DROP_UDP_TRUNCATED = 15,
  LIME_DROP_UDP_BAD_LENGTH = 16,
  LIME_DROP_ICMP_TRUNCATED = 17,
  LIME_DROP_ICMPV6_TRUNCATED = 18,
  LIME_DROP_GRE_TRUNCATED = 19,
  LIME_DROP_GRE_BAD_VERSION = 20,
  LIME_DROP_GRE_BAD_FLAGS = 21
};

/* Parse the frame f[0 .. len) into key[0 .. LIME_KEY_WORDS); returns a LIME_DROP_*. */
int lime_extract (const uint8_t *f, size_t len, uint32_t *key, uint32_t in_port);

#endif
