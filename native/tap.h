/*
 * tap.h: the TAP syscalls lime needs, and nothing else.
 *
 * Every function is a thin wrapper over one or two syscalls and returns 0 (or a
 * non-negative count/fd) on success and -errno on failure. No parsing, no policy, no
 * allocation: the N-API glue in binding.c turns the results into JS values and errors.
 */
#ifndef LIME_TAP_H
#define LIME_TAP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Longest interface name the kernel accepts (IFNAMSIZ - 1). */
#define LIME_TAP_NAME_MAX 15

/*
 * Flags for lime_tap_sys_open. None is implemented yet; any set bit is rejected with
 * -EINVAL so a caller cannot believe it got a feature it did not.
 *
 * Reserved: LIME_TAP_F_VNET_HDR will open the device with IFF_VNET_HDR and enable
 * TUNSETOFFLOAD (TSO/GSO/checksum offload). Each frame then carries a struct
 * virtio_net_hdr in front of it; the reader will put that header into an extra
 * per-frame column of the batch (next to start/len) instead of into the frame slot, so
 * the batch interface (slab + start + len columns, one callback per drain) stays as it
 * is.
 */
#define LIME_TAP_F_VNET_HDR 0x1
#define LIME_TAP_F_SUPPORTED 0x0

/*
 * Create (or attach to) the TAP device `name` (IFF_TAP | IFF_NO_PI) through
 * /dev/net/tun, non-blocking and close-on-exec. `name` may hold a "%d" pattern for the
 * kernel to fill. On success returns the fd and writes the device's actual name into
 * out_name (LIME_TAP_NAME_MAX + 1 bytes). On failure returns -errno and *stage tells
 * which step failed (0 = open /dev/net/tun, 1 = TUNSETIFF).
 */
int lime_tap_sys_open(const char *name, int flags, char *out_name, int *stage);

/* One interface ioctl (SIOC*) on a throw-away AF_INET datagram socket; 0 or -errno. */
struct ifreq;
int lime_link_ioctl(unsigned long request, struct ifreq *ifr);

/* Link control by name, in the caller's network namespace (AF_INET dgram ioctl). */
int lime_tap_sys_set_mtu(const char *name, int mtu);
/* The device's transmit queue length (txqueuelen): for a TAP, the frames queued toward the reader. */
int lime_tap_sys_set_txqlen(const char *name, int qlen);
int lime_tap_sys_set_mac(const char *name, const uint8_t mac[6]);
int lime_tap_sys_get_mac(const char *name, uint8_t mac[6]);
int lime_tap_sys_set_up(const char *name, int up);

/* One frame: read(2)/write(2) on the TAP fd, retried on EINTR. */
ssize_t lime_tap_sys_read(int fd, uint8_t *buf, size_t size);
ssize_t lime_tap_sys_write(int fd, const uint8_t *buf, size_t size);

int lime_tap_sys_close(int fd);

#endif
