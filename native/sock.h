/*
 * sock.h: the socket syscalls lime's non-TAP ports need, and nothing else.
 *
 *   - raw IPv4 sockets for GRE: one that receives a protocol's packets (IPv4 header
 *     included) and one (IPPROTO_RAW, IP_HDRINCL) that sends whole IPv4 packets to one
 *     peer with plain write(2);
 *   - AF_PACKET sockets bound to an existing interface ("system" ports: a NIC, a veth
 *     end), optionally with virtio-net headers (PACKET_VNET_HDR);
 *   - interface information and the legacy ethtool offload switches.
 *
 * Same rules as tap.h: every function is a thin wrapper over a few syscalls and returns 0
 * (or a non-negative count/fd/value) on success and -errno on failure. No parsing, no
 * policy, no allocation: binding.c turns the results into JS values and errors.
 */
#ifndef LIME_SOCK_H
#define LIME_SOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Receive and send buffers asked for (SO_RCVBUFFORCE/SO_SNDBUFFORCE, else the plain
 * options, which the kernel caps at net.core.[rw]mem_max). */
#define LIME_SOCK_BUFFER (4 * 1024 * 1024)

/*
 * Flags for lime_sock_sys_packet_open.
 *
 * LIME_PACKET_F_VNET_HDR: PACKET_VNET_HDR. Every datagram read then starts with a 10-byte
 * struct virtio_net_hdr (checksum-offload and GSO metadata of the frame behind it), and
 * every datagram written must start with one (all zero = a plain, complete frame).
 */
#define LIME_PACKET_F_VNET_HDR 0x1
#define LIME_PACKET_F_SUPPORTED 0x1

/* Size of the legacy struct virtio_net_hdr (linux/virtio_net.h) PACKET_VNET_HDR uses. */
#define LIME_VNET_HDR_LEN 10

/*
 * socket(AF_INET, SOCK_RAW, proto), non-blocking and close-on-exec; bind to local_ip
 * (host order) unless it is 0; receive buffer raised. A read returns one IPv4 packet of
 * protocol `proto` addressed to this host, IPv4 header included (fragments already
 * reassembled). On failure *stage tells the step: 0 = socket, 1 = bind.
 */
int lime_sock_sys_raw_open_rx(int proto, uint32_t local_ip, int *stage);

/*
 * socket(AF_INET, SOCK_RAW, IPPROTO_RAW) (IP_HDRINCL implied), non-blocking and
 * close-on-exec; bind to local_ip unless 0; send buffer raised; connect to remote_ip so
 * that write(2) of a whole IPv4 packet sends it (routed to remote_ip; the kernel fills in
 * the header checksum, and the source address and identification when they are 0).
 * Never receives. *stage: 0 = socket, 1 = bind, 2 = connect.
 */
int lime_sock_sys_raw_open_tx(uint32_t remote_ip, uint32_t local_ip, int *stage);

/*
 * An AF_PACKET SOCK_RAW socket on the existing interface `ifname` (in the caller's network
 * namespace), non-blocking and close-on-exec: created with protocol 0 (receives nothing),
 * PACKET_IGNORE_OUTGOING set (it never reads frames sent on the interface, its own
 * included), PACKET_AUXDATA set (the kernel always takes a received frame's outer VLAN
 * tag out of the data before packet sockets see it, whatever the offloads; the aux data
 * gives it back), PACKET_VNET_HDR set when flags has LIME_PACKET_F_VNET_HDR, buffers
 * raised, then bound to the interface with ETH_P_ALL and the interface made promiscuous
 * (PACKET_MR_PROMISC, dropped by the kernel when the socket closes).
 * *stage: 0 = socket, 1 = interface lookup, 2 = PACKET_IGNORE_OUTGOING,
 * 3 = PACKET_VNET_HDR, 4 = bind, 5 = PACKET_ADD_MEMBERSHIP, 6 = PACKET_AUXDATA.
 * Unknown flags: -EINVAL, stage 0.
 */
int lime_sock_sys_packet_open(const char *ifname, int flags, int *stage);

/* What lime_sock_sys_packet_kind finds. */
#define LIME_SOCK_KIND_OTHER 0 /* not an AF_PACKET socket (a TAP, a raw IPv4 socket), or unknown */
#define LIME_SOCK_KIND_PACKET 1 /* AF_PACKET */
#define LIME_SOCK_KIND_PACKET_VNET 2 /* AF_PACKET with PACKET_VNET_HDR */

int lime_sock_sys_packet_kind(int fd);

/* What lime_sock_sys_recv_packet learnt besides the frame. */
typedef struct lime_packet_meta {
  /* (TPID << 16) | TCI of the VLAN tag the kernel took out of the frame (PACKET_AUXDATA),
   * 0 if none. */
  uint32_t vlan;
  /* The datagram was longer than hdr + buf + spill: what was read is cut (MSG_TRUNC). */
  int truncated;
} lime_packet_meta_t;

/*
 * One datagram from an AF_PACKET socket, retried on EINTR: recvmsg into
 * [hdr (LIME_VNET_HDR_LEN bytes, only when hdr is not NULL: PACKET_VNET_HDR sockets),
 *  buf (size bytes), spill (spill_size bytes, may be 0)], so a frame that fits lands in buf
 * and a longer one continues in spill. Returns the frame's length (header not counted,
 * the VLAN tag not put back) or -errno.
 */
ssize_t lime_sock_sys_recv_packet(int fd, uint8_t *hdr, uint8_t *buf, size_t size, uint8_t *spill, size_t spill_size, lime_packet_meta_t *meta);

/* One frame to a PACKET_VNET_HDR socket behind an all-zero header (writev), retried on
 * EINTR. Returns the frame bytes written (header not counted) or -errno. */
ssize_t lime_sock_sys_write_vnet(int fd, const uint8_t *buf, size_t size);

/* 1 when fd is a socket (raw IPv4, AF_PACKET), 0 otherwise (a TAP). */
int lime_sock_sys_is_socket(int fd);

/* Most datagrams one lime_sock_sys_sendmmsg / lime_sock_sys_recvmmsg call handles. */
#define LIME_SOCK_MMSG_MAX 64

/*
 * Send n ≤ LIME_SOCK_MMSG_MAX datagrams in one sendmmsg(2), retried on EINTR: datagram i
 * is buf[i] (size[i] bytes), behind an all-zero virtio-net header when vnet is set.
 * Returns how many were sent from the first (≥ 1), or -errno of the first one.
 */
int lime_sock_sys_sendmmsg(int fd, uint8_t *const *buf, const uint32_t *size, int n, int vnet);

/*
 * Receive up to n ≤ LIME_SOCK_MMSG_MAX datagrams in one recvmmsg(2) (MSG_DONTWAIT),
 * retried on EINTR: datagram i into buf[i] (cap bytes); len[i] = its size, or ≥ cap when
 * it was cut (MSG_TRUNC). Returns how many arrived (≥ 1), or -errno (-EAGAIN: none).
 */
int lime_sock_sys_recvmmsg(int fd, uint8_t *const *buf, size_t cap, uint32_t *len, int n);

typedef struct lime_if_info {
  int ifindex;
  int mtu;
  int flags; /* IFF_* (IFF_UP, IFF_RUNNING, ...) */
  uint8_t mac[6];
} lime_if_info_t;

/* Index, MTU, flags and hardware address of `ifname` (caller's network namespace). */
int lime_sock_sys_if_info(const char *ifname, lime_if_info_t *out);

/* Offloads switched by the legacy ethtool ioctls (SIOCETHTOOL). */
enum {
  LIME_OFFLOAD_GRO = 0, /* ETHTOOL_[GS]GRO */
  LIME_OFFLOAD_LRO, /* ETHTOOL_[GS]FLAGS, ETH_FLAG_LRO */
  LIME_OFFLOAD_TSO, /* ETHTOOL_[GS]TSO */
  LIME_OFFLOAD_GSO, /* ETHTOOL_[GS]GSO */
  LIME_OFFLOAD_TXCSUM, /* ETHTOOL_[GS]TXCSUM */
  LIME_OFFLOAD_RXVLAN, /* ETHTOOL_[GS]FLAGS, ETH_FLAG_RXVLAN */
  LIME_OFFLOAD_TXVLAN, /* ETHTOOL_[GS]FLAGS, ETH_FLAG_TXVLAN */
  LIME_OFFLOAD_COUNT
};

/* Current state of one offload: 1 on, 0 off, or -errno. */
int lime_sock_sys_offload_get(const char *ifname, int offload);

/* Ask for one offload on or off (the kernel may keep it as it is when a dependency holds
 * it: read it back to know). 0 or -errno (EOPNOTSUPP: the device cannot change it). */
int lime_sock_sys_offload_set(const char *ifname, int offload, int on);

#endif
