/*
 * sock.c: raw IPv4, AF_PACKET and interface syscalls. See sock.h. Syscalls only: no
 * parsing, no policy, no allocation.
 */
#define _GNU_SOURCE /* sendmmsg, recvmmsg */
#include "sock.h"
#include "tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/if.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

static void
ifreq_init (struct ifreq *ifr, const char *name) {
  memset(ifr, 0, sizeof(*ifr));
  /* Callers check the length; strncpy leaves room for the terminating zero. */
  strncpy(ifr->ifr_name, name, IFNAMSIZ - 1);
}

/* Best effort: the forced size needs CAP_NET_ADMIN, the plain one is capped by sysctl. */
static void
raise_buffer (int fd, int force_option, int option) {
  int size = LIME_SOCK_BUFFER;
  if (setsockopt(fd, SOL_SOCKET, force_option, &size, sizeof(size)) == 0) return;
  (void) setsockopt(fd, SOL_SOCKET, option, &size, sizeof(size));
}

static int
close_with (int fd, int err) {
  close(fd);
  return err;
}

static void
sockaddr_in_init (struct sockaddr_in *sin, uint32_t ip) {
  memset(sin, 0, sizeof(*sin));
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = htonl(ip);
}

int
lime_sock_sys_raw_open_rx (int proto, uint32_t local_ip, int *stage) {
  struct sockaddr_in sin;
  int fd;

  *stage = 0;
  fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
  if (fd < 0) return -errno;

  *stage = 1;
  if (local_ip != 0) {
    sockaddr_in_init(&sin, local_ip);
    if (bind(fd, (struct sockaddr *) &sin, sizeof(sin)) < 0) return close_with(fd, -errno);
  }
  raise_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF);
  return fd;
}

int
lime_sock_sys_raw_open_tx (uint32_t remote_ip, uint32_t local_ip, int *stage) {
  struct sockaddr_in sin;
  int fd;

  *stage = 0;
  fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW);
  if (fd < 0) return -errno;

  *stage = 1;
  if (local_ip != 0) {
    sockaddr_in_init(&sin, local_ip);
    if (bind(fd, (struct sockaddr *) &sin, sizeof(sin)) < 0) return close_with(fd, -errno);
  }
  raise_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF);

  *stage = 2;
  sockaddr_in_init(&sin, remote_ip);
  if (connect(fd, (struct sockaddr *) &sin, sizeof(sin)) < 0) return close_with(fd, -errno);
  return fd;
}

int
lime_sock_sys_packet_open (const char *ifname, int flags, int *stage) {
  struct ifreq ifr;
  struct sockaddr_ll sll;
  struct packet_mreq mreq;
  int fd, one = 1, ifindex;

  *stage = 0;
  if (flags & ~LIME_PACKET_F_SUPPORTED) return -EINVAL;

  /* Protocol 0: nothing is queued to the socket before it is bound to the interface. */
  fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;

  *stage = 1;
  ifreq_init(&ifr, ifname);
  if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) return close_with(fd, -errno);
  ifindex = ifr.ifr_ifindex;

  *stage = 2;
  if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0) return close_with(fd, -errno);

  *stage = 3;
  if ((flags & LIME_PACKET_F_VNET_HDR) && setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) < 0) {
    return close_with(fd, -errno);
  }
  raise_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF);
  raise_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF);

  *stage = 6;
  if (setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) < 0) return close_with(fd, -errno);

  *stage = 4;
  memset(&sll, 0, sizeof(sll));
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = ifindex;
  if (bind(fd, (struct sockaddr *) &sll, sizeof(sll)) < 0) return close_with(fd, -errno);

  *stage = 5;
  memset(&mreq, 0, sizeof(mreq));
  mreq.mr_ifindex = ifindex;
  mreq.mr_type = PACKET_MR_PROMISC;
  if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq, sizeof(mreq)) < 0) return close_with(fd, -errno);
  return fd;
}

int
lime_sock_sys_packet_kind (int fd) {
  int domain = 0, on = 0;
  socklen_t size = sizeof(domain);
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &size) < 0 || domain != AF_PACKET) return LIME_SOCK_KIND_OTHER;
  size = sizeof(on);
  if (getsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &on, &size) < 0) on = 0;
  return on ? LIME_SOCK_KIND_PACKET_VNET : LIME_SOCK_KIND_PACKET;
}

ssize_t
lime_sock_sys_recv_packet (int fd, uint8_t *hdr, uint8_t *buf, size_t size, uint8_t *spill, size_t spill_size, lime_packet_meta_t *meta) {
  struct iovec iov[3];
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
  } control;
  struct msghdr msg;
  struct cmsghdr *cmsg;
  size_t n = 0;
  ssize_t r;

  if (hdr != NULL) iov[n++] = (struct iovec) { .iov_base = hdr, .iov_len = LIME_VNET_HDR_LEN };
  iov[n++] = (struct iovec) { .iov_base = buf, .iov_len = size };
  if (spill_size > 0) iov[n++] = (struct iovec) { .iov_base = spill, .iov_len = spill_size };
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = iov;
  msg.msg_iovlen = n;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof(control.buf);

  do r = recvmsg(fd, &msg, 0);
  while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;

  meta->vlan = 0;
  meta->truncated = (msg.msg_flags & MSG_TRUNC) != 0;
  for (cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    struct tpacket_auxdata aux;
    if (cmsg->cmsg_level != SOL_PACKET || cmsg->cmsg_type != PACKET_AUXDATA ||
        cmsg->cmsg_len < CMSG_LEN(sizeof(aux))) continue;
    memcpy(&aux, CMSG_DATA(cmsg), sizeof(aux));
    if (aux.tp_status & TP_STATUS_VLAN_VALID) {
      const uint32_t tpid = (aux.tp_status & TP_STATUS_VLAN_TPID_VALID) ? aux.tp_vlan_tpid : ETH_P_8021Q;
      meta->vlan = tpid << 16 | aux.tp_vlan_tci;
    }
  }
  if (hdr != NULL) {
    if (r < LIME_VNET_HDR_LEN) return -EBADMSG; /* not from a PACKET_VNET_HDR socket */
    r -= LIME_VNET_HDR_LEN;
  }
  return r;
}

ssize_t
lime_sock_sys_write_vnet (int fd, const uint8_t *buf, size_t size) {
  static const uint8_t zero[LIME_VNET_HDR_LEN];
  struct iovec iov[2] = {
    { .iov_base = (void *) zero, .iov_len = LIME_VNET_HDR_LEN },
    { .iov_base = (void *) buf, .iov_len = size },
  };
  ssize_t r;
  do r = writev(fd, iov, 2);
  while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  return r < LIME_VNET_HDR_LEN ? 0 : r - LIME_VNET_HDR_LEN;
}

int
lime_sock_sys_if_info (const char *ifname, lime_if_info_t *out) {
  struct ifreq ifr;
  int sock, err = 0;

  memset(out, 0, sizeof(*out));
  sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return -errno;
  ifreq_init(&ifr, ifname);
  if (ioctl(sock, SIOCGIFINDEX, &ifr) < 0) goto fail;
  out->ifindex = ifr.ifr_ifindex;
  ifreq_init(&ifr, ifname);
  if (ioctl(sock, SIOCGIFMTU, &ifr) < 0) goto fail;
  out->mtu = ifr.ifr_mtu;
  ifreq_init(&ifr, ifname);
  if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0) goto fail;
  out->flags = (unsigned short) ifr.ifr_flags;
  ifreq_init(&ifr, ifname);
  if (ioctl(sock, SIOCGIFHWADDR, &ifr) < 0) goto fail;
  memcpy(out->mac, ifr.ifr_hwaddr.sa_data, 6);
  close(sock);
  return 0;

fail:
  err = -errno;
  close(sock);
  return err;
}

/* ETHTOOL_[GS]FLAGS bit of a flag offload, or 0 for the ones with their own commands. */
static uint32_t
offload_flag (int offload) {
  switch (offload) {
  case LIME_OFFLOAD_LRO: return ETH_FLAG_LRO;
  case LIME_OFFLOAD_RXVLAN: return ETH_FLAG_RXVLAN;
  case LIME_OFFLOAD_TXVLAN: return ETH_FLAG_TXVLAN;
  default: return 0;
  }
}

static int
offload_cmd (int offload, int set) {
  switch (offload) {
  case LIME_OFFLOAD_GRO: return set ? ETHTOOL_SGRO : ETHTOOL_GGRO;
  case LIME_OFFLOAD_TSO: return set ? ETHTOOL_STSO : ETHTOOL_GTSO;
  case LIME_OFFLOAD_GSO: return set ? ETHTOOL_SGSO : ETHTOOL_GGSO;
  case LIME_OFFLOAD_TXCSUM: return set ? ETHTOOL_STXCSUM : ETHTOOL_GTXCSUM;
  default: return set ? ETHTOOL_SFLAGS : ETHTOOL_GFLAGS;
  }
}

static int
ethtool_value (const char *ifname, struct ethtool_value *value) {
  struct ifreq ifr;
  ifreq_init(&ifr, ifname);
  ifr.ifr_data = (void *) value;
  return lime_link_ioctl(SIOCETHTOOL, &ifr);
}

int
lime_sock_sys_offload_get (const char *ifname, int offload) {
  struct ethtool_value value = { .cmd = (uint32_t) offload_cmd(offload, 0), .data = 0 };
  uint32_t flag = offload_flag(offload);
  int err;
  if (offload < 0 || offload >= LIME_OFFLOAD_COUNT) return -EINVAL;
  err = ethtool_value(ifname, &value);
  if (err < 0) return err;
  return flag != 0 ? (value.data & flag) != 0 : value.data != 0;
}

int
lime_sock_sys_offload_set (const char *ifname, int offload, int on) {
  struct ethtool_value value = { .cmd = ETHTOOL_GFLAGS, .data = 0 };
  uint32_t flag = offload_flag(offload);
  int err;
  if (offload < 0 || offload >= LIME_OFFLOAD_COUNT) return -EINVAL;
  if (flag != 0) {
    /* Change one bit of the flags word, leaving the others as they are. */
    err = ethtool_value(ifname, &value);
    if (err < 0) return err;
    value.cmd = ETHTOOL_SFLAGS;
    value.data = on ? (value.data | flag) : (value.data & ~flag);
  } else {
    value.cmd = (uint32_t) offload_cmd(offload, 1);
    value.data = on ? 1 : 0;
  }
  return ethtool_value(ifname, &value);
}

int
lime_sock_sys_is_socket (int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

int
lime_sock_sys_sendmmsg (int fd, uint8_t *const *buf, const uint32_t *size, int n, int vnet) {
  static const uint8_t zero_hdr[LIME_VNET_HDR_LEN];
  struct mmsghdr msgs[LIME_SOCK_MMSG_MAX];
  struct iovec iov[LIME_SOCK_MMSG_MAX][2];
  int r;
  if (n > LIME_SOCK_MMSG_MAX) n = LIME_SOCK_MMSG_MAX;
  memset(msgs, 0, sizeof(msgs[0]) * (size_t) n);
  for (int i = 0; i < n; i++) {
    int k = 0;
    if (vnet) {
      iov[i][k].iov_base = (void *) zero_hdr;
      iov[i][k].iov_len = sizeof zero_hdr;
      k++;
    }
    iov[i][k].iov_base = buf[i];
    iov[i][k].iov_len = size[i];
    k++;
    msgs[i].msg_hdr.msg_iov = iov[i];
    msgs[i].msg_hdr.msg_iovlen = (size_t) k;
  }
  do {
    r = sendmmsg(fd, msgs, (unsigned int) n, MSG_DONTWAIT);
  } while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : r;
}

int
lime_sock_sys_recvmmsg (int fd, uint8_t *const *buf, size_t cap, uint32_t *len, int n) {
  struct mmsghdr msgs[LIME_SOCK_MMSG_MAX];
  struct iovec iov[LIME_SOCK_MMSG_MAX];
  int r;
  if (n > LIME_SOCK_MMSG_MAX) n = LIME_SOCK_MMSG_MAX;
  memset(msgs, 0, sizeof(msgs[0]) * (size_t) n);
  for (int i = 0; i < n; i++) {
    iov[i].iov_base = buf[i];
    iov[i].iov_len = cap;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  do {
    r = recvmmsg(fd, msgs, (unsigned int) n, MSG_DONTWAIT, NULL);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  for (int i = 0; i < r; i++) len[i] = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? (uint32_t) cap : msgs[i].msg_len;
  return r;
}
