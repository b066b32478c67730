/*
 * tap.c: TAP syscalls. See tap.h. Syscalls only: no parsing, no policy, no allocation.
 */
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_arp.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static void
ifreq_init (struct ifreq *ifr, const char *name) {
  memset(ifr, 0, sizeof(*ifr));
  /* Callers check the length; strncpy leaves room for the terminating zero. */
  strncpy(ifr->ifr_name, name, IFNAMSIZ - 1);
}

int
lime_tap_sys_open (const char *name, int flags, char *out_name, int *stage) {
  struct ifreq ifr;
  int fd, err;

  *stage = 0;
  if (flags & ~LIME_TAP_F_SUPPORTED) return -EINVAL;

  fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return -errno;

  *stage = 1;
  ifreq_init(&ifr, name);
  /* With LIME_TAP_F_VNET_HDR this will add IFF_VNET_HDR (see tap.h). */
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    err = -errno;
    close(fd);
    return err;
  }

  memcpy(out_name, ifr.ifr_name, IFNAMSIZ);
  out_name[LIME_TAP_NAME_MAX] = '\0';
  return fd;
}

/* One ioctl on a throw-away AF_INET datagram socket: link control is not a hot path. */
int
lime_link_ioctl (unsigned long request, struct ifreq *ifr) {
  int sock, err = 0;

  sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return -errno;
  if (ioctl(sock, request, ifr) < 0) err = -errno;
  close(sock);
  return err;
}

int
lime_tap_sys_set_txqlen (const char *name, int qlen) {
  struct ifreq ifr;
  ifreq_init(&ifr, name);
  ifr.ifr_qlen = qlen;
  return lime_link_ioctl(SIOCSIFTXQLEN, &ifr);
}

int
lime_tap_sys_set_mtu (const char *name, int mtu) {
  struct ifreq ifr;
  ifreq_init(&ifr, name);
  ifr.ifr_mtu = mtu;
  return lime_link_ioctl(SIOCSIFMTU, &ifr);
}

int
lime_tap_sys_set_mac (const char *name, const uint8_t mac[6]) {
  struct ifreq ifr;
  ifreq_init(&ifr, name);
  ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
  return lime_link_ioctl(SIOCSIFHWADDR, &ifr);
}

int
lime_tap_sys_get_mac (const char *name, uint8_t mac[6]) {
  struct ifreq ifr;
  int err;
  ifreq_init(&ifr, name);
  err = lime_link_ioctl(SIOCGIFHWADDR, &ifr);
  if (err == 0) memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
  return err;
}

int
lime_tap_sys_set_up (const char *name, int up) {
  struct ifreq ifr;
  int sock, err = 0;

  sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return -errno;
  ifreq_init(&ifr, name);
  if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0) {
    err = -errno;
  } else {
    if (up) ifr.ifr_flags |= IFF_UP;
    else ifr.ifr_flags &= ~IFF_UP;
    if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0) err = -errno;
  }
  close(sock);
  return err;
}

ssize_t
lime_tap_sys_read (int fd, uint8_t *buf, size_t size) {
  ssize_t r;
  do r = read(fd, buf, size);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : r;
}

ssize_t
lime_tap_sys_write (int fd, const uint8_t *buf, size_t size) {
  ssize_t r;
  do r = write(fd, buf, size);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : r;
}

int
lime_tap_sys_close (int fd) {
  return close(fd) < 0 ? -errno : 0;
}
