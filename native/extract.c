/*
 * lime_extract: src/packet/extract.ts in C (see extract.h). The structure follows the
 * JavaScript function for function, so that a change to one is easy to mirror in the
 * other; the differential test keeps them equal.
 */
#include "extract.h"

#include <string.h>

/* src/packet/constants.ts */
#define ETH_TYPE_MIN 0x0600u
#define ETH_TYPE_IPV4 0x0800u
#define ETH_TYPE_ARP 0x0806u
#define ETH_TYPE_RARP 0x8035u
#define ETH_TYPE_IPV6 0x86ddu
#define TPID_8021Q 0x8100u
#define TPID_8021AD 0x88a8u
#define TPID_QINQ_LEGACY 0x9100u
#define VLAN_TCI_PRESENT 0x1000u
#define DL_TYPE_NOT_ETH_TYPE 0x05ffu
#define ARP_HTYPE_ETHERNET 1u
#define IPPROTO_HOPOPTS_ 0u
#define IPPROTO_ICMP_ 1u
#define IPPROTO_TCP_ 6u
#define IPPROTO_UDP_ 17u
#define IPPROTO_ROUTING_ 43u
#define IPPROTO_FRAGMENT_ 44u
#define IPPROTO_GRE_ 47u
#define IPPROTO_AH_ 51u
#define IPPROTO_ICMPV6_ 58u
#define IPPROTO_DSTOPTS_ 60u
#define IPV4_FLAG_MF 0x2000u
#define IPV4_FRAG_OFFSET_MASK 0x1fffu
#define IPV6_FRAG_OFFSET_MASK 0xfff8u
#define GRE_FLAG_C 0x8000u
#define GRE_FLAG_K 0x2000u
#define GRE_FLAG_S 0x1000u
#define GRE_MUST_BE_ZERO (0x4000u | 0x0800u | 0x0400u)
#define GRE_VERSION_MASK 0x0007u
#define NW_FRAG_ANY 1u
#define NW_FRAG_LATER 2u

static inline uint32_t
rd16 (const uint8_t *f, size_t p) {
  return (uint32_t) f[p] << 8 | f[p + 1];
}

static inline uint32_t
rd32 (const uint8_t *f, size_t p) {
  return (uint32_t) f[p] << 24 | (uint32_t) f[p + 1] << 16 | (uint32_t) f[p + 2] << 8 | f[p + 3];
}

/* Transport header of protocol `proto` at p; the IP packet ends at end. */
static int
extract_l4 (const uint8_t *f, size_t p, size_t end, uint32_t proto, uint32_t icmp_proto, uint32_t *key) {
  const size_t avail = end - p;
  key[LIME_K_L4_OFF] = (uint32_t) p;
  if (proto == IPPROTO_UDP_) {
    uint32_t udp_len;
    if (avail < 8) return LIME_DROP_UDP_TRUNCATED;
    udp_len = rd16(f, p + 4);
    /* A first fragment carries the length of the whole datagram. */
    if (udp_len < 8 || (udp_len > avail && key[LIME_K_NW_FRAG] == 0)) return LIME_DROP_UDP_BAD_LENGTH;
    key[LIME_K_TP_SRC] = rd16(f, p);
    key[LIME_K_TP_DST] = rd16(f, p + 2);
    key[LIME_K_L7_OFF] = (uint32_t) (p + 8);
  } else if (proto == IPPROTO_TCP_) {
    size_t header;
    if (avail < 20) return LIME_DROP_TCP_TRUNCATED;
    header = (size_t) (f[p + 12] >> 4) << 2;
    if (header < 20 || header > avail) return LIME_DROP_TCP_BAD_DATA_OFFSET;
    key[LIME_K_TP_SRC] = rd16(f, p);
    key[LIME_K_TP_DST] = rd16(f, p + 2);
    key[LIME_K_TCP_FLAGS] = rd16(f, p + 12) & 0x0fffu;
    key[LIME_K_L7_OFF] = (uint32_t) (p + header);
  } else if (proto == icmp_proto) {
    if (avail < 8) return proto == IPPROTO_ICMP_ ? LIME_DROP_ICMP_TRUNCATED : LIME_DROP_ICMPV6_TRUNCATED;
    key[LIME_K_TP_SRC] = f[p];
    key[LIME_K_TP_DST] = f[p + 1];
    key[LIME_K_L7_OFF] = (uint32_t) (p + 8);
  } else if (proto == IPPROTO_GRE_) {
    uint32_t flags;
    size_t header;
    if (avail < 4) return LIME_DROP_GRE_TRUNCATED;
    flags = rd16(f, p);
    if (flags & GRE_VERSION_MASK) return LIME_DROP_GRE_BAD_VERSION;
    if (flags & GRE_MUST_BE_ZERO) return LIME_DROP_GRE_BAD_FLAGS;
    header = 4 + (flags & GRE_FLAG_C ? 4 : 0) + (flags & GRE_FLAG_K ? 4 : 0) + (flags & GRE_FLAG_S ? 4 : 0);
    if (header > avail) return LIME_DROP_GRE_TRUNCATED;
    key[LIME_K_L7_OFF] = (uint32_t) (p + header);
  }
  return LIME_DROP_NONE;
}

/* ARP/RARP header at p; the frame ends at end. */
static int
extract_arp (const uint8_t *f, size_t p, size_t end, uint32_t *key) {
  key[LIME_K_L3_OFF] = (uint32_t) p;
  if (end - p < 8) return LIME_DROP_ARP_TRUNCATED;
  if (rd16(f, p) != ARP_HTYPE_ETHERNET || rd16(f, p + 2) != ETH_TYPE_IPV4) return LIME_DROP_NONE;
  if (f[p + 4] != 6 || f[p + 5] != 4) return LIME_DROP_ARP_BAD_FORMAT;
  if (end - p < 28) return LIME_DROP_ARP_TRUNCATED;
  key[LIME_K_NW_PROTO] = f[p + 7]; /* low 8 bits of the opcode */
  key[LIME_K_ARP_SHA_HI] = rd16(f, p + 8);
  key[LIME_K_ARP_SHA_LO] = rd32(f, p + 10);
  key[LIME_K_NW_SRC] = rd32(f, p + 14);
  key[LIME_K_ARP_THA_HI] = rd16(f, p + 18);
  key[LIME_K_ARP_THA_LO] = rd32(f, p + 20);
  key[LIME_K_NW_DST] = rd32(f, p + 24);
  return LIME_DROP_NONE;
}

/* IPv4 header at p; the frame ends at end. */
static int
extract_ipv4 (const uint8_t *f, size_t p, size_t end, uint32_t *key) {
  uint32_t ver_ihl, total, proto, frag;
  size_t header;
  key[LIME_K_L3_OFF] = (uint32_t) p;
  if (end - p < 20) return LIME_DROP_IPV4_TRUNCATED;
  ver_ihl = f[p];
  if (ver_ihl >> 4 != 4) return LIME_DROP_IPV4_BAD_VERSION;
  header = (size_t) (ver_ihl & 0x0f) << 2;
  if (header < 20 || header > end - p) return LIME_DROP_IPV4_BAD_IHL;
  total = rd16(f, p + 2);
  if (total < header || total > end - p) return LIME_DROP_IPV4_BAD_TOTAL_LEN;
  proto = f[p + 9];
  key[LIME_K_NW_TOS] = f[p + 1];
  key[LIME_K_NW_TTL] = f[p + 8];
  key[LIME_K_NW_PROTO] = proto;
  key[LIME_K_NW_SRC] = rd32(f, p + 12);
  key[LIME_K_NW_DST] = rd32(f, p + 16);
  frag = rd16(f, p + 6);
  if (frag & (IPV4_FLAG_MF | IPV4_FRAG_OFFSET_MASK)) {
    if (frag & IPV4_FRAG_OFFSET_MASK) {
      key[LIME_K_NW_FRAG] = NW_FRAG_ANY | NW_FRAG_LATER;
      return LIME_DROP_NONE;
    }
    key[LIME_K_NW_FRAG] = NW_FRAG_ANY;
  }
  return extract_l4(f, p + header, p + total, proto, IPPROTO_ICMP_, key);
}

/* IPv6 header at p; the frame ends at end. */
static int
extract_ipv6 (const uint8_t *f, size_t p, size_t end, uint32_t *key) {
  uint32_t payload, next;
  size_t q, pend;
  key[LIME_K_L3_OFF] = (uint32_t) p;
  if (end - p < 40) return LIME_DROP_IPV6_TRUNCATED;
  if (f[p] >> 4 != 6) return LIME_DROP_IPV6_BAD_VERSION;
  payload = rd16(f, p + 4);
  if (payload > end - p - 40) return LIME_DROP_IPV6_BAD_PAYLOAD_LEN;
  key[LIME_K_NW_TOS] = (rd16(f, p) >> 4) & 0xffu;
  key[LIME_K_IPV6_LABEL] = rd32(f, p) & 0xfffffu;
  key[LIME_K_NW_TTL] = f[p + 7];
  for (int w = 0; w < 4; w++) {
    key[LIME_K_IPV6_SRC + w] = rd32(f, p + 8 + 4 * (size_t) w);
    key[LIME_K_IPV6_DST + w] = rd32(f, p + 24 + 4 * (size_t) w);
  }
  next = f[p + 6];
  q = p + 40;
  pend = q + payload;
  /* Each extension header is >= 8 bytes and must end inside the payload: the loop ends. */
  for (;;) {
    if (next == IPPROTO_HOPOPTS_ || next == IPPROTO_ROUTING_ || next == IPPROTO_DSTOPTS_ || next == IPPROTO_AH_) {
      size_t size;
      if (pend - q < 8) return LIME_DROP_IPV6_EXT_TRUNCATED;
      size = next == IPPROTO_AH_ ? ((size_t) f[q + 1] + 2) << 2 : ((size_t) f[q + 1] + 1) << 3;
      if (size > pend - q) return LIME_DROP_IPV6_EXT_TRUNCATED;
      next = f[q];
      q += size;
    } else if (next == IPPROTO_FRAGMENT_) {
      uint32_t offset;
      if (pend - q < 8) return LIME_DROP_IPV6_EXT_TRUNCATED;
      offset = rd16(f, q + 2) & IPV6_FRAG_OFFSET_MASK;
      next = f[q];
      q += 8;
      if (offset != 0) {
        key[LIME_K_NW_FRAG] = NW_FRAG_ANY | NW_FRAG_LATER;
        key[LIME_K_NW_PROTO] = next;
        return LIME_DROP_NONE;
      }
      key[LIME_K_NW_FRAG] = NW_FRAG_ANY;
    } else {
      break;
    }
  }
  key[LIME_K_NW_PROTO] = next;
  return extract_l4(f, q, pend, next, IPPROTO_ICMPV6_, key);
}

int
lime_extract (const uint8_t *f, size_t len, uint32_t *key, uint32_t in_port) {
  size_t p;
  uint32_t type;
  memset(key, 0, LIME_KEY_WORDS * sizeof(uint32_t));
  key[LIME_K_IN_PORT] = in_port;
  key[LIME_K_L3_OFF] = LIME_OFF_ABSENT;
  key[LIME_K_L4_OFF] = LIME_OFF_ABSENT;
  key[LIME_K_L7_OFF] = LIME_OFF_ABSENT;
  if (len < 14) return LIME_DROP_RUNT;

  key[LIME_K_DL_DST_HI] = rd16(f, 0);
  key[LIME_K_DL_DST_LO] = rd32(f, 2);
  key[LIME_K_DL_SRC_HI] = rd16(f, 6);
  key[LIME_K_DL_SRC_LO] = rd32(f, 8);

  p = 12; /* the type/length field, or a TPID */
  type = rd16(f, p);
  if (type == TPID_8021Q || type == TPID_8021AD || type == TPID_QINQ_LEGACY) {
    if (len - p < 6) return LIME_DROP_VLAN_TRUNCATED;
    key[LIME_K_VLAN_TPID] = type;
    key[LIME_K_VLAN_TCI] = rd16(f, p + 2) | VLAN_TCI_PRESENT;
    p += 4;
    type = rd16(f, p);
    if (type == TPID_8021Q || type == TPID_8021AD) {
      if (len - p < 6) return LIME_DROP_VLAN_TRUNCATED;
      key[LIME_K_VLAN2_TPID] = type;
      key[LIME_K_VLAN2_TCI] = rd16(f, p + 2) | VLAN_TCI_PRESENT;
      p += 4;
      type = rd16(f, p);
    }
  }
  p += 2; /* first byte after the L2 headers */
  if (type < ETH_TYPE_MIN) {
    key[LIME_K_DL_TYPE] = DL_TYPE_NOT_ETH_TYPE;
    return LIME_DROP_NONE;
  }
  key[LIME_K_DL_TYPE] = type;
  if (type == ETH_TYPE_IPV4) return extract_ipv4(f, p, len, key);
  if (type == ETH_TYPE_IPV6) return extract_ipv6(f, p, len, key);
  if (type == ETH_TYPE_ARP || type == ETH_TYPE_RARP) return extract_arp(f, p, len, key);
  return LIME_DROP_NONE;
}
