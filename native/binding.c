/*
 * binding.c: N-API glue for lime's ports (exports lime_tap_*, lime_raw_*, lime_packet_*,
 * lime_if_*).
 *
 * Thin by design (STYLE.md principle 8, after udx-native's binding.c): the syscalls are
 * in tap.c (TAP devices) and sock.c (raw IPv4 and AF_PACKET sockets, interface info,
 * ethtool); this file moves frames between an fd and memory that JS owns, and turns
 * errors into JS Errors. Nothing here makes a decision about a frame; the one place that
 * looks inside frames is the virtio-net section below, which finishes what a sender's
 * offloads left undone (checksums, segmentation) so that JS only ever sees plain frames.
 *
 * Every kind of fd goes through the same handle and the same batched calls
 * (lime_tap_init / lime_tap_start / lime_tap_write_batch): a TAP fd, a raw IPv4 socket
 * (one IPv4 packet per read/write), an AF_PACKET socket (one Ethernet frame per
 * read/write).
 *
 * Memory: JS allocates everything.
 *   - The handle: Buffer.alloc(sizeof_lime_tap) holds struct lime_tap (the uv_poll_t,
 *     the fd, napi refs and the counters). Counters are doubles at the exported
 *     offsetof_lime_tap_* so JS reads them through a Float64Array over the handle
 *     without a call.
 *   - The receive slab and its start/len columns (FrameBatch), handed over once in
 *     lime_tap_start and kept alive by napi refs while polling.
 *   - The send slab and columns, passed on every lime_tap_write_batch call.
 *   The one exception: a virtio-net handle mallocs a scratch buffer (one maximal
 *   datagram) in lime_tap_start and frees it when the poll handle is closed.
 *
 * Receive: uv_poll on the fd; on readable, read up to max_batch frames into slots
 * (slot i at i * slot_size + headroom), then call onBatch(n) once for the drain. While
 * a drain fills a whole batch, drain again, up to LIME_TAP_DRAIN_ROUNDS times, then
 * yield to the loop. A read error that means the device is gone stops polling and calls
 * onBatch(-errno) once. The one error that does not stop polling: an AF_PACKET socket's
 * ENETDOWN (its interface went down; see packet_link_down).
 *
 * Lifetime: while the poll handle is open (from lime_tap_start until uv_close's
 * callback) the handle Buffer is held by a strong ref, so the uv_poll_t inside it
 * cannot be collected under libuv even if JS drops the port right after closing it; an
 * async env cleanup hook closes the poll handle and the fd if the env (a worker, say)
 * is torn down while polling, and keeps the addon loaded until the close completes.
 *
 * AF_PACKET sockets: lime_tap_init detects them, and the handle uses drain_packet instead
 * of the plain drain (one branch per drain). It reads with recvmsg, so that the VLAN tag
 * the kernel takes out of every received frame before packet sockets see it (whatever
 * the offloads) comes back as PACKET_AUXDATA and is put back in the frame. With virtio-net
 * headers (LIME_PACKET_F_VNET_HDR; lime_tap_init detects PACKET_VNET_HDR,
 * lime_tap_init_mode(..., LIME_TAP_MODE_VNET) states it and checks it; vnet_hdr = 1 in
 * the handle) each datagram's struct virtio_net_hdr is read apart from the frame, a
 * pending checksum (NEEDS_CSUM) is completed, and a TCP or UDP super-frame (GSO) is cut
 * into MTU-sized frames, one slot each; the batch JS sees is the same slab + start + len.
 * Sending prefixes each frame with an all-zero header (writev). JS does nothing different
 * for such a handle.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "extract.h"
#include "flowcache.h"
#include "engine.h"
#include <sys/socket.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include "sock.h"
#include "tap.h"

/* Batches drained in one poll callback before yielding to the event loop. */
#define LIME_TAP_DRAIN_ROUNDS 4

enum { LIME_TAP_IDLE = 0, LIME_TAP_POLLING = 1, LIME_TAP_CLOSING = 2 };

typedef struct lime_tap {
  /* Counters first (8-byte aligned), doubles so JS reads them with a Float64Array. */
  double rx_packets;
  double rx_bytes;
  double rx_batches; /* onBatch(n > 0) calls */
  double rx_too_long; /* frames that filled the whole slot: possibly truncated, dropped */
  double tx_packets;
  double tx_bytes;
  double tx_queue_full; /* EAGAIN / ENOBUFS */
  double tx_port_down; /* device gone or down: this frame and the rest of its batch */
  double tx_error; /* any other write failure */
  double last_errno; /* errno (positive) of the last device-level failure, 0 if none */
  double loop_time; /* uv_now() (ms, monotonic) when the last batch was read: the batch's
                     * clock, read by JS from the handle so taking the time allocates nothing */
  /* virtio-net handles only (vnet_hdr = 1): */
  double rx_csum_completed; /* frames whose pending checksum (NEEDS_CSUM) we completed */
  double rx_gso_segmented; /* super-frames (GSO) cut into frames; the frames count in rx_packets */
  double rx_gso_dropped; /* datagrams dropped: a GSO type we do not segment (UFO), headers
                          * that do not parse, or checksum offsets outside the frame */
  double vnet_hdr; /* 1 when lime_tap_init found PACKET_VNET_HDR on the fd, else 0 */
  /* AF_PACKET handles only: */
  double rx_link_down; /* ENETDOWN reports (the interface went down, or is being deleted):
                        * each one onBatch(-ENETDOWN), polling goes on */
  double busy_ns; /* time spent in poll callbacks (reads, onBatch, its sends), uv_hrtime():
                   * the data path's share of the event loop, for the daemon's control policer */
  double rx_full_polls; /* poll callbacks that stopped after LIME_TAP_DRAIN_ROUNDS with frames
                         * possibly still queued: the port offers more than one wake-up drains */

  uv_poll_t poll;
  napi_env env;
  napi_ref self_ref; /* the handle Buffer itself, held while the poll handle is open */
  napi_ref slab_ref;
  napi_ref start_ref;
  napi_ref len_ref;
  napi_ref cb_ref;
  napi_async_context async;

  uint8_t *slab;
  uint32_t *start;
  uint32_t *len;
  uint32_t slot_size;
  uint32_t headroom;
  uint32_t max_batch;
  uint8_t *scratch; /* vnet only: slot_size - headroom + LIME_VNET_SPILL bytes, from start to on_close */

  int fd; /* -1 when closed */
  int packet; /* fd is an AF_PACKET socket: drain_packet */
  int dgram; /* fd is a socket (raw IPv4, AF_PACKET): batched sendmmsg/recvmmsg */
  int vnet; /* fd carries virtio-net headers (PACKET_VNET_HDR) */
  int state;
  int initialized;
  int teardown; /* the env is being torn down: no napi calls but the hook removal */
  napi_async_cleanup_hook_handle cleanup; /* registered from start until on_close */
  uint32_t last_drain; /* frames the last poll callback read (plain fds; see on_poll) */
} lime_tap_t;

/* ------------------------------------------------------------------ errors */

static const char *
errno_name (int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *name = strerrorname_np(err);
  if (name != NULL) return name;
#endif
  switch (err) {
  case EPERM: return "EPERM";
  case ENOENT: return "ENOENT";
  case EIO: return "EIO";
  case ENXIO: return "ENXIO";
  case EBADF: return "EBADF";
  case EAGAIN: return "EAGAIN";
  case EFAULT: return "EFAULT";
  case EBUSY: return "EBUSY";
  case ENODEV: return "ENODEV";
  case EINVAL: return "EINVAL";
  case EACCES: return "EACCES";
  case ENOBUFS: return "ENOBUFS";
  case EBADFD: return "EBADFD";
  case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
  case ENETDOWN: return "ENETDOWN";
  default: return "EUNKNOWN";
  }
}

/* Words for the errors an operator can act on; anything else gets strerror(). */
static const char *
errno_hint (int err) {
  switch (err) {
  case EPERM:
  case EACCES: return "need CAP_NET_ADMIN";
  case EBUSY: return "device busy (another process holds it)";
  case ENODEV: return "no such device (deleted, or in another network namespace)";
  default: return strerror(err);
  }
}

/* Throw Error(message) with .code = errno name, .errno = -err (Node's convention), .device. */
static void
throw_errno (napi_env env, int err, const char *device, const char *message) {
  napi_value code, msg, error, value;
  napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  napi_create_int32(env, -err, &value);
  napi_set_named_property(env, error, "errno", value);
  napi_create_string_utf8(env, device, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, error, "device", value);
  napi_throw(env, error);
}

/* "<CODE>: <what> <device>: <hint>" */
static void
throw_device_errno (napi_env env, int err, const char *what, const char *device, const char *hint) {
  char message[256];
  snprintf(message, sizeof(message), "%s: %s %s: %s", errno_name(err), what, device, hint != NULL ? hint : errno_hint(err));
  throw_errno(env, err, device, message);
}

#define NAPI_CALL(env, call) \
  do { \
    if ((call) != napi_ok) { \
      const napi_extended_error_info *info_ = NULL; \
      bool pending_ = false; \
      napi_is_exception_pending((env), &pending_); \
      if (!pending_) { \
        napi_get_last_error_info((env), &info_); \
        napi_throw_error((env), "EINVAL", (info_ != NULL && info_->error_message != NULL) ? info_->error_message : "lime_tap: bad argument"); \
      } \
      return NULL; \
    } \
  } while (0)

#define ARGS(n) \
  size_t argc = (n); \
  napi_value argv[(n)]; \
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL)); \
  if (argc < (n)) { \
    napi_throw_type_error(env, "EINVAL", "lime_tap: expected " #n " arguments"); \
    return NULL; \
  }

static napi_value
throw_type (napi_env env, const char *message) {
  napi_throw_type_error(env, "EINVAL", message);
  return NULL;
}

/* Interface name argument: a string of at most LIME_TAP_NAME_MAX bytes. */
static int
get_name (napi_env env, napi_value value, char name[64], const char *what) {
  size_t size = 0;
  if (napi_get_value_string_utf8(env, value, name, 64, &size) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "lime_tap: device name must be a string");
    return -1;
  }
  if (size > LIME_TAP_NAME_MAX) {
    char message[256];
    snprintf(message, sizeof(message), "EINVAL: %s %s: name is %zu bytes, at most %d allowed (IFNAMSIZ)", what, name, size, LIME_TAP_NAME_MAX);
    throw_errno(env, EINVAL, name, message);
    return -1;
  }
  return 0;
}

static lime_tap_t *
get_handle (napi_env env, napi_value value) {
  void *data = NULL;
  size_t size = 0;
  bool is_buffer = false;
  if (napi_is_buffer(env, value, &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, value, &data, &size) != napi_ok ||
      size < sizeof(lime_tap_t) || ((uintptr_t) data & 7) != 0) {
    napi_throw_type_error(env, "EINVAL", "lime_tap: handle must be an 8-byte aligned Buffer of sizeof_lime_tap bytes");
    return NULL;
  }
  return (lime_tap_t *) data;
}

static uint32_t *
get_u32_array (napi_env env, napi_value value, size_t *length) {
  napi_typedarray_type type;
  void *data = NULL;
  bool is_typedarray = false;
  if (napi_is_typedarray(env, value, &is_typedarray) != napi_ok || !is_typedarray ||
      napi_get_typedarray_info(env, value, &type, length, &data, NULL, NULL) != napi_ok ||
      type != napi_uint32_array) {
    napi_throw_type_error(env, "EINVAL", "lime_tap: start/len must be Uint32Arrays");
    return NULL;
  }
  return (uint32_t *) data;
}

static uint8_t *
get_bytes (napi_env env, napi_value value, size_t *size) {
  void *data = NULL;
  bool is_buffer = false;
  if (napi_is_buffer(env, value, &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, value, &data, size) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "lime_tap: slab must be a Buffer");
    return NULL;
  }
  return (uint8_t *) data;
}

/* ------------------------------------------------------------------ open / link control */

/* lime_tap_open(name: string, flags: number) -> { fd, name } */
static napi_value
lime_tap_open (napi_env env, napi_callback_info info) {
  ARGS(2)
  char name[64], actual[LIME_TAP_NAME_MAX + 1];
  int32_t flags = 0;
  int fd, stage = 0;
  napi_value result, value;

  if (get_name(env, argv[0], name, "cannot create TAP") < 0) return NULL;
  if (name[0] == '\0') strcpy(name, "lime%d");
  NAPI_CALL(env, napi_get_value_int32(env, argv[1], &flags));

  fd = lime_tap_sys_open(name, flags, actual, &stage);
  if (fd < 0) {
    int err = -fd;
    const char *hint = NULL;
    if (stage == 0 && err == EINVAL) hint = "unsupported flags";
    else if (stage == 0 && (err == ENOENT || err == ENODEV || err == ENXIO)) hint = "/dev/net/tun unavailable (is the tun module loaded?)";
    else if (stage == 0 && (err == EPERM || err == EACCES)) hint = "need CAP_NET_ADMIN (cannot open /dev/net/tun)";
    else if (stage == 1 && err == EINVAL) hint = "invalid name, or a device of another type has this name";
    throw_device_errno(env, err, "cannot create TAP", name, hint);
    return NULL;
  }

  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, napi_create_int32(env, fd, &value));
  NAPI_CALL(env, napi_set_named_property(env, result, "fd", value));
  NAPI_CALL(env, napi_create_string_utf8(env, actual, NAPI_AUTO_LENGTH, &value));
  NAPI_CALL(env, napi_set_named_property(env, result, "name", value));
  return result;
}

/* lime_tap_set_mtu(name: string, mtu: number) */
static napi_value
lime_tap_set_mtu (napi_env env, napi_callback_info info) {
  ARGS(2)
  char name[64], what[64];
  int32_t mtu = 0;
  int err;
  if (get_name(env, argv[0], name, "cannot set MTU of") < 0) return NULL;
  NAPI_CALL(env, napi_get_value_int32(env, argv[1], &mtu));
  err = lime_tap_sys_set_mtu(name, mtu);
  if (err < 0) {
    snprintf(what, sizeof(what), "cannot set MTU %d on", mtu);
    throw_device_errno(env, -err, what, name, -err == EINVAL ? "MTU out of range for this device" : NULL);
    return NULL;
  }
  return NULL;
}

/* lime_tap_set_txqlen(name: string, qlen: number) */
static napi_value
lime_tap_set_txqlen (napi_env env, napi_callback_info info) {
  ARGS(2)
  char name[64], what[64];
  int32_t qlen = 0;
  int err;
  if (get_name(env, argv[0], name, "cannot set the queue length of") < 0) return NULL;
  NAPI_CALL(env, napi_get_value_int32(env, argv[1], &qlen));
  err = lime_tap_sys_set_txqlen(name, qlen);
  if (err < 0) {
    snprintf(what, sizeof(what), "cannot set txqueuelen %d on", qlen);
    throw_device_errno(env, -err, what, name, NULL);
    return NULL;
  }
  return NULL;
}

/* lime_tap_set_mac(name: string, mac: Buffer(6)) */
static napi_value
lime_tap_set_mac (napi_env env, napi_callback_info info) {
  ARGS(2)
  char name[64];
  uint8_t *mac;
  size_t size = 0;
  int err;
  if (get_name(env, argv[0], name, "cannot set MAC of") < 0) return NULL;
  mac = get_bytes(env, argv[1], &size);
  if (mac == NULL) return NULL;
  if (size != 6) return throw_type(env, "lime_tap_set_mac: MAC must be a 6-byte Buffer");
  err = lime_tap_sys_set_mac(name, mac);
  if (err < 0) {
    throw_device_errno(env, -err, "cannot set MAC of", name, -err == EADDRNOTAVAIL ? "not a valid unicast MAC address" : NULL);
    return NULL;
  }
  return NULL;
}

/* lime_tap_get_mac(name: string) -> Buffer(6) */
static napi_value
lime_tap_get_mac (napi_env env, napi_callback_info info) {
  ARGS(1)
  char name[64];
  uint8_t mac[6];
  void *data = NULL;
  napi_value result;
  int err;
  if (get_name(env, argv[0], name, "cannot read MAC of") < 0) return NULL;
  err = lime_tap_sys_get_mac(name, mac);
  if (err < 0) {
    throw_device_errno(env, -err, "cannot read MAC of", name, NULL);
    return NULL;
  }
  NAPI_CALL(env, napi_create_buffer_copy(env, 6, mac, &data, &result));
  return result;
}

/* lime_tap_set_up(name: string, up: boolean) */
static napi_value
lime_tap_set_up (napi_env env, napi_callback_info info) {
  ARGS(2)
  char name[64];
  bool up = false;
  int err;
  if (get_name(env, argv[0], name, "cannot bring up") < 0) return NULL;
  NAPI_CALL(env, napi_get_value_bool(env, argv[1], &up));
  err = lime_tap_sys_set_up(name, up);
  if (err < 0) {
    throw_device_errno(env, -err, up ? "cannot bring up" : "cannot bring down", name, NULL);
    return NULL;
  }
  return NULL;
}

/* lime_tap_errname(errno: number) -> 'EBADFD' (sign ignored) */
static napi_value
lime_tap_errname (napi_env env, napi_callback_info info) {
  ARGS(1)
  int32_t err = 0;
  napi_value result;
  NAPI_CALL(env, napi_get_value_int32(env, argv[0], &err));
  NAPI_CALL(env, napi_create_string_utf8(env, errno_name(err < 0 ? -err : err), NAPI_AUTO_LENGTH, &result));
  return result;
}

/* lime_peer_uid(fd) -> the user id of the process at the other end of a connected Unix
 * socket (SO_PEERCRED: its credentials when it connected), or -errno. The management
 * socket refuses every user but root and limed's own (src/mgmt/server.ts). */
static napi_value
lime_peer_uid (napi_env env, napi_callback_info info) {
  ARGS(1)
  int32_t fd = -1;
  struct ucred cred;
  socklen_t len = sizeof cred;
  napi_value result;
  NAPI_CALL(env, napi_get_value_int32(env, argv[0], &fd));
  double uid = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 ? (double) cred.uid : -(double) errno;
  NAPI_CALL(env, napi_create_double(env, uid, &result));
  return result;
}

/* lime_tap_now() -> the event loop's clock, uv_now() in ms (monotonic): the same clock
 * the reader stamps on each batch (loop_time), for timers and ages outside the data path. */
static napi_value
lime_tap_now (napi_env env, napi_callback_info info) {
  uv_loop_t *loop;
  napi_value result;
  (void) info;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  NAPI_CALL(env, napi_create_double(env, (double) uv_now(loop), &result));
  return result;
}

/* ------------------------------------------------------------------ raw IPv4 and AF_PACKET sockets, interfaces */

static void
format_ip (uint32_t ip, char out[INET_ADDRSTRLEN]) {
  struct in_addr addr = { .s_addr = htonl(ip) };
  if (inet_ntop(AF_INET, &addr, out, INET_ADDRSTRLEN) == NULL) snprintf(out, INET_ADDRSTRLEN, "?");
}

/* "<CODE>: <what>: <hint>" for a socket that has no device name (.device = ''). */
static void
throw_socket_errno (napi_env env, int err, const char *what, const char *hint) {
  char message[256];
  snprintf(message, sizeof(message), "%s: %s: %s", errno_name(err), what, hint != NULL ? hint : strerror(err));
  throw_errno(env, err, "", message);
}

static const char *
raw_hint (int err) {
  switch (err) {
  case EPERM:
  case EACCES: return "need CAP_NET_RAW";
  case EADDRNOTAVAIL: return "not an address of this host (in this network namespace)";
  default: return NULL;
  }
}

static napi_value
fd_value (napi_env env, int fd) {
  napi_value result;
  NAPI_CALL(env, napi_create_int32(env, fd, &result));
  return result;
}

/*
 * lime_raw_open_rx(proto: number, localIp: number) -> fd. A raw IPv4 socket receiving
 * protocol `proto` (47 = GRE), bound to localIp (host order, 0 = any address).
 */
static napi_value
lime_raw_open_rx (napi_env env, napi_callback_info info) {
  ARGS(2)
  int32_t proto = 0;
  uint32_t local = 0;
  int fd, stage = 0;
  char what[128], ip[INET_ADDRSTRLEN];

  NAPI_CALL(env, napi_get_value_int32(env, argv[0], &proto));
  NAPI_CALL(env, napi_get_value_uint32(env, argv[1], &local));
  if (proto < 1 || proto > 255) return throw_type(env, "lime_raw_open_rx: protocol must be 1..255");

  fd = lime_sock_sys_raw_open_rx(proto, local, &stage);
  if (fd < 0) {
    if (stage == 0) {
      snprintf(what, sizeof(what), "cannot open raw IPv4 socket (protocol %d)", (int) proto);
    } else {
      format_ip(local, ip);
      snprintf(what, sizeof(what), "cannot bind raw IPv4 socket (protocol %d) to %s", (int) proto, ip);
    }
    throw_socket_errno(env, -fd, what, raw_hint(-fd));
    return NULL;
  }
  return fd_value(env, fd);
}

/*
 * lime_raw_open_tx(remoteIp: number, localIp: number) -> fd. An IPPROTO_RAW socket
 * (whole IPv4 packets written, header included), bound to localIp unless 0, connected
 * to remoteIp (host order).
 */
static napi_value
lime_raw_open_tx (napi_env env, napi_callback_info info) {
  ARGS(2)
  uint32_t remote = 0, local = 0;
  int fd, stage = 0;
  char what[128], ip[INET_ADDRSTRLEN];

  NAPI_CALL(env, napi_get_value_uint32(env, argv[0], &remote));
  NAPI_CALL(env, napi_get_value_uint32(env, argv[1], &local));
  if (remote == 0) return throw_type(env, "lime_raw_open_tx: remoteIp must not be 0.0.0.0");

  fd = lime_sock_sys_raw_open_tx(remote, local, &stage);
  if (fd < 0) {
    if (stage == 0) {
      snprintf(what, sizeof(what), "cannot open raw IPv4 socket (IPPROTO_RAW)");
    } else {
      format_ip(stage == 1 ? local : remote, ip);
      snprintf(what, sizeof(what), "cannot %s raw IPv4 socket (IPPROTO_RAW) to %s", stage == 1 ? "bind" : "connect", ip);
    }
    throw_socket_errno(env, -fd, what, raw_hint(-fd));
    return NULL;
  }
  return fd_value(env, fd);
}

/*
 * lime_packet_open(ifname: string, flags: number) -> fd. An AF_PACKET socket on an
 * existing interface (see sock.h); flags: LIME_PACKET_F_VNET_HDR.
 */
static napi_value
lime_packet_open (napi_env env, napi_callback_info info) {
  ARGS(2)
  char name[64];
  int32_t flags = 0;
  int fd, stage = 0;

  if (get_name(env, argv[0], name, "cannot attach") < 0) return NULL;
  NAPI_CALL(env, napi_get_value_int32(env, argv[1], &flags));

  fd = lime_sock_sys_packet_open(name, flags, &stage);
  if (fd < 0) {
    const int err = -fd;
    const char *hint = NULL;
    if (err == EPERM || err == EACCES) hint = "need CAP_NET_RAW";
    else if (stage == 0 && err == EINVAL) hint = "unsupported flags";
    else if (stage == 1 && err == ENODEV) hint = "no such interface";
    else if (stage == 2) hint = "PACKET_IGNORE_OUTGOING unsupported (needs Linux 4.20 or later)";
    else if (stage == 3) hint = "PACKET_VNET_HDR unsupported";
    else if (stage == 5) hint = "cannot make the interface promiscuous";
    throw_device_errno(env, err, "cannot attach", name, hint);
    return NULL;
  }
  return fd_value(env, fd);
}

/* lime_if_info(ifname) -> { ifindex, mtu, mac, up, running } */
static napi_value
lime_if_info (napi_env env, napi_callback_info info) {
  ARGS(1)
  char name[64];
  lime_if_info_t link;
  void *data = NULL;
  napi_value result, value;
  int err;

  if (get_name(env, argv[0], name, "cannot read interface") < 0) return NULL;
  err = lime_sock_sys_if_info(name, &link);
  if (err < 0) {
    throw_device_errno(env, -err, "cannot read interface", name, -err == ENODEV ? "no such interface" : NULL);
    return NULL;
  }
  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, napi_create_int32(env, link.ifindex, &value));
  NAPI_CALL(env, napi_set_named_property(env, result, "ifindex", value));
  NAPI_CALL(env, napi_create_int32(env, link.mtu, &value));
  NAPI_CALL(env, napi_set_named_property(env, result, "mtu", value));
  NAPI_CALL(env, napi_create_buffer_copy(env, 6, link.mac, &data, &value));
  NAPI_CALL(env, napi_set_named_property(env, result, "mac", value));
  NAPI_CALL(env, napi_get_boolean(env, (link.flags & IFF_UP) != 0, &value));
  NAPI_CALL(env, napi_set_named_property(env, result, "up", value));
  NAPI_CALL(env, napi_get_boolean(env, (link.flags & IFF_RUNNING) != 0, &value));
  NAPI_CALL(env, napi_set_named_property(env, result, "running", value));
  return result;
}

static const char *const offload_names[LIME_OFFLOAD_COUNT] = {
  [LIME_OFFLOAD_GRO] = "gro",
  [LIME_OFFLOAD_LRO] = "lro",
  [LIME_OFFLOAD_TSO] = "tso",
  [LIME_OFFLOAD_GSO] = "gso",
  [LIME_OFFLOAD_TXCSUM] = "txcsum",
  [LIME_OFFLOAD_RXVLAN] = "rxvlan",
  [LIME_OFFLOAD_TXVLAN] = "txvlan",
};

/*
 * lime_if_set_offloads(ifname: string, off: boolean) -> { gro, lro, tso, gso, txcsum,
 * rxvlan, txvlan }: each "ok" (the offload is now as asked), an errno name (EOPNOTSUPP:
 * the device cannot change it), or "unchanged" (accepted, but a dependency holds it).
 * Throws only for the whole call: ENODEV, EPERM (no CAP_NET_ADMIN).
 */
static napi_value
lime_if_set_offloads (napi_env env, napi_callback_info info) {
  ARGS(2)
  /* TSO needs TX checksumming: switched off after it, switched on before it. */
  static const int order_off[LIME_OFFLOAD_COUNT] = {
    LIME_OFFLOAD_GRO, LIME_OFFLOAD_LRO, LIME_OFFLOAD_TSO, LIME_OFFLOAD_GSO,
    LIME_OFFLOAD_TXCSUM, LIME_OFFLOAD_RXVLAN, LIME_OFFLOAD_TXVLAN,
  };
  static const int order_on[LIME_OFFLOAD_COUNT] = {
    LIME_OFFLOAD_TXCSUM, LIME_OFFLOAD_GRO, LIME_OFFLOAD_LRO, LIME_OFFLOAD_TSO,
    LIME_OFFLOAD_GSO, LIME_OFFLOAD_RXVLAN, LIME_OFFLOAD_TXVLAN,
  };
  const char *results[LIME_OFFLOAD_COUNT];
  char name[64];
  bool off = true;
  int want;
  napi_value result, value;

  if (get_name(env, argv[0], name, "cannot set offloads of") < 0) return NULL;
  NAPI_CALL(env, napi_get_value_bool(env, argv[1], &off));
  want = off ? 0 : 1;

  for (int k = 0; k < LIME_OFFLOAD_COUNT; k++) {
    const int offload = off ? order_off[k] : order_on[k];
    int state = lime_sock_sys_offload_get(name, offload), err;
    if (state == -ENODEV) goto whole_call;
    if (state < 0) {
      results[offload] = errno_name(-state);
      continue;
    }
    if (state == want) {
      results[offload] = "ok";
      continue;
    }
    err = lime_sock_sys_offload_set(name, offload, want);
    if (err == -ENODEV || err == -EPERM || err == -EACCES) {
      state = err;
      goto whole_call;
    }
    if (err < 0) {
      results[offload] = errno_name(-err);
      continue;
    }
    state = lime_sock_sys_offload_get(name, offload);
    results[offload] = state == want ? "ok" : state < 0 ? errno_name(-state) : "unchanged";
    continue;

  whole_call:
    throw_device_errno(env, -state, "cannot set offloads of", name,
                       state == -ENODEV ? "no such interface" : "need CAP_NET_ADMIN");
    return NULL;
  }

  NAPI_CALL(env, napi_create_object(env, &result));
  for (int f = 0; f < LIME_OFFLOAD_COUNT; f++) {
    NAPI_CALL(env, napi_create_string_utf8(env, results[f], NAPI_AUTO_LENGTH, &value));
    NAPI_CALL(env, napi_set_named_property(env, result, offload_names[f], value));
  }
  return result;
}

/* ------------------------------------------------------------------ handle */

/* Reader modes (lime_tap_init_mode); lime_tap_init detects the mode from the fd. */
#define LIME_TAP_MODE_PLAIN 0 /* one frame (or IPv4 packet) per read/write */
#define LIME_TAP_MODE_VNET 1 /* a struct virtio_net_hdr in front of each (PACKET_VNET_HDR) */

static void
tap_init (lime_tap_t *t, int fd, int kind) {
  memset(t, 0, sizeof(*t));
  t->fd = fd;
  t->state = LIME_TAP_IDLE;
  t->initialized = 1;
  t->packet = kind != LIME_SOCK_KIND_OTHER;
  t->dgram = lime_sock_sys_is_socket(fd);
  t->vnet = kind == LIME_SOCK_KIND_PACKET_VNET;
  t->vnet_hdr = t->vnet;
}

/*
 * lime_tap_init(handle: Buffer, fd: number): bind a fresh handle to an open fd (a TAP, a
 * raw IPv4 socket, an AF_PACKET socket). An AF_PACKET socket with PACKET_VNET_HDR makes
 * it a virtio-net handle (vnet_hdr = 1): see drain_packet and lime_tap_write_batch.
 */
static napi_value
lime_tap_init (napi_env env, napi_callback_info info) {
  ARGS(2)
  lime_tap_t *t = get_handle(env, argv[0]);
  int32_t fd = -1;
  if (t == NULL) return NULL;
  NAPI_CALL(env, napi_get_value_int32(env, argv[1], &fd));
  if (t->initialized) return throw_type(env, "lime_tap_init: handle already initialised");
  tap_init(t, fd, fd >= 0 ? lime_sock_sys_packet_kind(fd) : LIME_SOCK_KIND_OTHER);
  return NULL;
}

/*
 * lime_tap_init_mode(handle: Buffer, fd: number, mode: number): lime_tap_init with the
 * mode stated: LIME_TAP_MODE_PLAIN or LIME_TAP_MODE_VNET. Throws EINVAL when the fd
 * disagrees (a reader in the wrong mode would misread every frame).
 */
static napi_value
lime_tap_init_mode (napi_env env, napi_callback_info info) {
  ARGS(3)
  lime_tap_t *t = get_handle(env, argv[0]);
  int32_t fd = -1, mode = -1;
  int kind, vnet;
  if (t == NULL) return NULL;
  NAPI_CALL(env, napi_get_value_int32(env, argv[1], &fd));
  NAPI_CALL(env, napi_get_value_int32(env, argv[2], &mode));
  if (t->initialized) return throw_type(env, "lime_tap_init_mode: handle already initialised");
  if (mode != LIME_TAP_MODE_PLAIN && mode != LIME_TAP_MODE_VNET) return throw_type(env, "lime_tap_init_mode: mode must be LIME_TAP_MODE_PLAIN or LIME_TAP_MODE_VNET");
  kind = fd >= 0 ? lime_sock_sys_packet_kind(fd) : LIME_SOCK_KIND_OTHER;
  vnet = kind == LIME_SOCK_KIND_PACKET_VNET;
  if (vnet != (mode == LIME_TAP_MODE_VNET)) {
    char message[160];
    snprintf(message, sizeof(message), "EINVAL: cannot use fd %d in %s mode: it %s virtio-net headers (PACKET_VNET_HDR)", (int) fd,
             mode == LIME_TAP_MODE_VNET ? "virtio-net" : "plain", vnet ? "carries" : "does not carry");
    throw_errno(env, EINVAL, "", message);
    return NULL;
  }
  tap_init(t, fd, kind);
  return NULL;
}

static void
release_ref (napi_env env, napi_ref *ref) {
  if (*ref != NULL) {
    napi_delete_reference(env, *ref);
    *ref = NULL;
  }
}

/*
 * The poll handle is closed: release what lime_tap_start took. Until here an async
 * cleanup hook was registered, so a worker (or the main thread at exit) tearing the env
 * down waits for this callback before it unloads the addon.
 */
static void
on_close (uv_handle_t *handle) {
  lime_tap_t *t = (lime_tap_t *) handle->data;
  napi_env env = t->env;
  napi_ref self = t->self_ref;
  napi_async_cleanup_hook_handle cleanup = t->cleanup;
  napi_handle_scope scope;
  int scoped;

  t->cleanup = NULL;
  t->self_ref = NULL;
  t->state = LIME_TAP_IDLE;
  free(t->scratch); /* no drain can run any more: the poll handle is closed */
  t->scratch = NULL;
  if (!t->teardown) {
    scoped = napi_open_handle_scope(env, &scope) == napi_ok;
    if (t->async != NULL) napi_async_destroy(env, t->async);
    t->async = NULL;
    /* After this the handle Buffer (and t) may be collected: t is not used below. */
    if (self != NULL) napi_delete_reference(env, self);
    if (scoped) napi_close_handle_scope(env, scope);
  }
  /* Tearing down, napi frees the refs and the async context with the env. */
  if (cleanup != NULL) napi_remove_async_cleanup_hook(cleanup);
}

static void
release_poll_refs (lime_tap_t *t) {
  t->slab = NULL;
  t->start = NULL;
  t->len = NULL;
  if (t->teardown) return;
  release_ref(t->env, &t->slab_ref);
  release_ref(t->env, &t->start_ref);
  release_ref(t->env, &t->len_ref);
  release_ref(t->env, &t->cb_ref);
}

/* Stop polling (safe to call in any state, and from inside onBatch). */
static void
tap_stop (lime_tap_t *t) {
  if (t->state != LIME_TAP_POLLING) return;
  t->state = LIME_TAP_CLOSING;
  uv_poll_stop(&t->poll);
  uv_close((uv_handle_t *) &t->poll, on_close);
  release_poll_refs(t);
}

/*
 * The env (a worker thread, or the main thread at exit) is going away while the poll
 * handle is open: close it (a loop closed with open handles aborts the process) and the
 * fd. Node waits for on_close, which removes this hook, before it unloads the addon.
 */
static void
on_env_teardown (napi_async_cleanup_hook_handle handle, void *arg) {
  lime_tap_t *t = (lime_tap_t *) arg;
  (void) handle;
  t->teardown = 1;
  tap_stop(t); /* no-op if already closing: on_close is on its way */
  if (t->fd >= 0) {
    lime_tap_sys_close(t->fd);
    t->fd = -1;
  }
}

/* Call onBatch(n) from the poll callback (inside its handle scope). */
static void
call_on_batch (lime_tap_t *t, napi_value cb, int32_t n) {
  napi_env env = t->env;
  napi_value global, arg, result;
  napi_status status;
  napi_get_global(env, &global);
  napi_create_int32(env, n, &arg);
  status = napi_make_callback(env, t->async, global, cb, 1, &arg, &result);
  if (status == napi_pending_exception) {
    /* The datapath threw: report it like any uncaught exception from a callback. */
    napi_value error;
    napi_get_and_clear_last_exception(env, &error);
    napi_fatal_exception(env, error);
  }
}

/* Write errors that drop the rest of the batch as tx_port_down: the device was deleted
 * (EBADFD), or is administratively down (EIO). JS tells the two apart by last_errno. */
static int
is_tx_port_down (int err) {
  return err == EBADFD || err == EBADF || err == EIO || err == ENODEV || err == ENXIO || err == ENETDOWN;
}

/* ------------------------------------------------------------------ AF_PACKET receive, virtio-net
 *
 * A packet socket never sees a received frame's outer VLAN tag in the data: the kernel
 * moves it into the skb's metadata (skb_vlan_untag, or the NIC's VLAN offload) before
 * the taps run. PACKET_AUXDATA hands it over with each datagram; drain_packet puts it
 * back after the MAC addresses, so JS sees the frame as it was on the wire.
 *
 * A PACKET_VNET_HDR socket hands over each frame as the sender's stack left it, with a
 * struct virtio_net_hdr saying what is left to do. A veth peer (or a local stack) with TX
 * checksum offload and TSO/GSO on sends frames whose L4 checksum holds only the
 * pseudo-header sum (NEEDS_CSUM, Linux's CHECKSUM_PARTIAL) and TCP/UDP super-frames of up
 * to 64 KiB (GSO). Forwarded as they are, neither would survive a real wire or another
 * host, so drain_packet finishes the job here, as the kernel's skb_checksum_help and GSO
 * segmentation would: JS only ever sees complete frames no longer than the MTU.
 *
 * Each datagram is read with readv into [header, its slot, the handle's scratch]: a
 * plain frame lands in its slot (no copy); a super-frame spills into the scratch, is
 * made contiguous there (its first slot's bytes copied in front) and cut into segments,
 * one slot each, delivering the batch whenever it fills.
 */

#define VNET_F_NEEDS_CSUM 0x1
#define VNET_GSO_NONE 0
#define VNET_GSO_TCPV4 1
#define VNET_GSO_UDP 3 /* UFO: not segmented, dropped (rx_gso_dropped) */
#define VNET_GSO_TCPV6 4
#define VNET_GSO_UDP_L4 5 /* USO (UDP_SEGMENT) */
#define VNET_GSO_ECN 0x80

/* Room for a datagram beyond its slot: a maximal IP packet (64 KiB) behind an Ethernet
 * header and two VLAN tags, with margin. A read that fills slot and spill is dropped. */
#define LIME_VNET_SPILL (65536 + 128)

typedef struct vnet_hdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len; /* not trusted: the headers are parsed instead */
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
} vnet_hdr_t;

/* PACKET_VNET_HDR uses the legacy layout in the host's byte order (vio_le() is "legacy is
 * little-endian" = native on the architectures Linux runs virtio on). */
static void
vnet_hdr_load (vnet_hdr_t *h, const uint8_t raw[LIME_VNET_HDR_LEN]) {
  h->flags = raw[0];
  h->gso_type = raw[1];
  memcpy(&h->hdr_len, raw + 2, 2);
  memcpy(&h->gso_size, raw + 4, 2);
  memcpy(&h->csum_start, raw + 6, 2);
  memcpy(&h->csum_offset, raw + 8, 2);
}

static inline uint16_t
get16 (const uint8_t *p) {
  return (uint16_t) (p[0] << 8 | p[1]);
}

static inline uint32_t
get32 (const uint8_t *p) {
  return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static inline void
put16 (uint8_t *p, uint32_t v) {
  p[0] = (uint8_t) (v >> 8);
  p[1] = (uint8_t) v;
}

static inline void
put32 (uint8_t *p, uint32_t v) {
  p[0] = (uint8_t) (v >> 24);
  p[1] = (uint8_t) (v >> 16);
  p[2] = (uint8_t) (v >> 8);
  p[3] = (uint8_t) v;
}

/*
 * The Internet checksum (RFC 1071) in the host's byte order: 32-bit words summed into 64
 * bits, carries folded at the end. By RFC 1071's byte-order independence the folded sum,
 * stored with memcpy, is the big-endian sum on the wire. `p` must start at an even offset
 * of the checksummed data (only the last piece may have an odd length).
 */
static uint64_t
csum_add (uint64_t sum, const uint8_t *p, size_t len) {
  uint32_t w32;
  uint16_t w16 = 0;
  for (; len >= 4; p += 4, len -= 4) {
    memcpy(&w32, p, 4);
    sum += w32;
  }
  if (len >= 2) {
    memcpy(&w16, p, 2);
    sum += w16;
    p += 2;
    len -= 2;
  }
  if (len == 1) {
    w16 = 0;
    memcpy(&w16, p, 1); /* the byte, then a zero pad byte */
    sum += w16;
  }
  return sum;
}

/* A 16-bit big-endian value (protocol, length) as the sum of its two bytes in memory. */
static inline uint64_t
csum_add_be16 (uint64_t sum, uint32_t v) {
  return sum + htons((uint16_t) v);
}

static uint16_t
csum_fold (uint64_t sum) {
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffffu) + (sum >> 16);
  sum = (sum & 0xffffu) + (sum >> 16);
  return (uint16_t) sum;
}

/* Store ~fold(sum) at p; 0 becomes 0xffff when mangle_zero (UDP: 0 means "no checksum"). */
static inline void
csum_store (uint8_t *p, uint64_t sum, int mangle_zero) {
  uint16_t c = (uint16_t) ~csum_fold(sum);
  if (c == 0 && mangle_zero) c = 0xffff;
  memcpy(p, &c, 2);
}

/*
 * NEEDS_CSUM: the 16-bit field at csum_start + csum_offset holds the pseudo-header sum;
 * sum from csum_start to the end of the frame (the field included) and store the
 * complement there, 0 as 0xffff (as Linux's skb_checksum_help). -1 if out of the frame.
 */
static int
vnet_complete_csum (uint8_t *f, size_t len, const vnet_hdr_t *h) {
  const size_t start = h->csum_start, field = start + h->csum_offset;
  if (start >= len || field + 2 > len) return -1;
  csum_store(f + field, csum_add(0, f + start, len - start), 1);
  return 0;
}

/* A super-frame's headers: offsets and the fields each segment derives its own from. */
typedef struct gso {
  uint32_t l3; /* IPv4/IPv6 header */
  uint32_t l4; /* TCP/UDP header */
  uint32_t hdrs; /* end of the L4 header: every segment starts with f[0 .. hdrs) */
  uint32_t end; /* end of the IP packet (Ethernet padding excluded) */
  uint32_t seq; /* TCP sequence number of the first payload byte */
  uint16_t ip_id;
  uint8_t v4;
  uint8_t tcp;
} gso_t;

/* Parse Ethernet (+ up to two VLAN tags) / IPv4 (no fragment) or IPv6 (no extension
 * header) / TCP or UDP as `type` says. -1 if the frame is not that. */
static int
gso_parse (const uint8_t *f, size_t len, int type, gso_t *g) {
  uint32_t l3 = 14, l4, ethertype, proto;
  if (len < 14) return -1;
  ethertype = get16(f + 12);
  for (int tags = 0; tags < 2 && (ethertype == 0x8100 || ethertype == 0x88a8); tags++) {
    if (len < l3 + 4) return -1;
    ethertype = get16(f + l3 + 2);
    l3 += 4;
  }
  g->tcp = type == VNET_GSO_TCPV4 || type == VNET_GSO_TCPV6;
  if (ethertype == 0x0800) {
    uint32_t ihl, total;
    if (len < l3 + 20 || (f[l3] >> 4) != 4) return -1;
    ihl = (uint32_t) (f[l3] & 0x0f) * 4;
    if (ihl < 20 || len < l3 + ihl) return -1;
    if ((get16(f + l3 + 6) & 0x3fff) != 0) return -1; /* MF or an offset: a fragment */
    proto = f[l3 + 9];
    total = get16(f + l3 + 2);
    if (total > ihl && l3 + total < len) len = l3 + total; /* Ethernet padding */
    l4 = l3 + ihl;
    g->v4 = 1;
    g->ip_id = get16(f + l3 + 4);
  } else if (ethertype == 0x86dd) {
    uint32_t payload;
    if (len < l3 + 40 || (f[l3] >> 4) != 6) return -1;
    proto = f[l3 + 6];
    payload = get16(f + l3 + 4);
    if (payload != 0 && l3 + 40 + payload < len) len = l3 + 40 + payload;
    l4 = l3 + 40;
    g->v4 = 0;
    g->ip_id = 0;
  } else {
    return -1;
  }
  if (proto != (g->tcp ? 6u : 17u)) return -1;
  if (g->tcp) {
    uint32_t doff;
    if (len < l4 + 20) return -1;
    doff = (uint32_t) (f[l4 + 12] >> 4) * 4;
    if (doff < 20 || len < l4 + doff) return -1;
    g->hdrs = l4 + doff;
    g->seq = get32(f + l4 + 4);
  } else {
    if (len < l4 + 8) return -1;
    g->hdrs = l4 + 8;
    g->seq = 0;
  }
  g->l3 = l3;
  g->l4 = l4;
  g->end = (uint32_t) len;
  return 0;
}

/*
 * Segment i of a super-frame into dst: the headers, then payload bytes [off, off + size).
 * IPv4: total length, identification (+ i) and header checksum; IPv6: payload length;
 * TCP: sequence number, FIN/PSH on the last segment only, CWR on the first only; UDP:
 * length. The L4 checksum is computed in full (pseudo-header, header, payload).
 * Returns the segment's length.
 */
static uint32_t
gso_build (uint8_t *dst, const uint8_t *f, const gso_t *g, uint32_t i, uint32_t off, uint32_t size, int last) {
  const uint32_t total = g->hdrs + size, l4_len = total - g->l4;
  uint8_t *ip = dst + g->l3, *l4 = dst + g->l4;
  uint64_t sum;

  memcpy(dst, f, g->hdrs);
  memcpy(dst + g->hdrs, f + g->hdrs + off, size);
  if (g->v4) {
    put16(ip + 2, total - g->l3);
    put16(ip + 4, (uint32_t) g->ip_id + i);
    ip[10] = ip[11] = 0;
    csum_store(ip + 10, csum_add(0, ip, g->l4 - g->l3), 0);
    sum = csum_add(0, ip + 12, 8);
  } else {
    put16(ip + 4, l4_len);
    sum = csum_add(0, ip + 8, 32);
  }
  sum = csum_add_be16(sum, g->tcp ? 6 : 17);
  sum = csum_add_be16(sum, l4_len);
  if (g->tcp) {
    uint8_t flags = l4[13];
    put32(l4 + 4, g->seq + off);
    if (!last) flags &= (uint8_t) ~(0x01 | 0x08); /* FIN, PSH */
    if (i > 0) flags &= (uint8_t) ~0x80; /* CWR */
    l4[13] = flags;
    l4[16] = l4[17] = 0;
    csum_store(l4 + 16, csum_add(sum, l4, l4_len), 0);
  } else {
    put16(l4 + 4, l4_len);
    l4[6] = l4[7] = 0;
    csum_store(l4 + 6, csum_add(sum, l4, l4_len), 1);
  }
  return total;
}

/* Put the VLAN tag (TPID << 16 | TCI) the kernel took out back after the MAC addresses
 * of the frame f[0 .. len); the caller leaves 4 bytes of room behind it. */
static void
vlan_insert (uint8_t *f, size_t len, uint32_t vlan) {
  memmove(f + 16, f + 12, len - 12);
  put16(f + 12, vlan >> 16);
  put16(f + 14, vlan & 0xffff);
}

/* Hand the batch to JS (from the poll callback). */
static void
deliver (lime_tap_t *t, napi_value cb, uint32_t n) {
  t->rx_batches++;
  t->loop_time = (double) uv_now(t->poll.loop);
  call_on_batch(t, cb, (int32_t) n);
}

/*
 * Cut the super-frame f[0 .. len) (contiguous, in the scratch) into slots *n, *n + 1, ...;
 * when the batch is full, deliver it and go on in a fresh one. Returns -1 when onBatch
 * stopped the handle (nothing may be touched then), else 0.
 */
static int
vnet_segment (lime_tap_t *t, napi_value cb, const uint8_t *f, size_t len, const vnet_hdr_t *h, uint32_t *n) {
  const uint32_t max = t->max_batch, slot = t->slot_size, headroom = t->headroom, cap = slot - headroom;
  const int type = h->gso_type & ~VNET_GSO_ECN;
  const uint32_t mss = h->gso_size;
  uint32_t payload;
  gso_t g;

  if ((type != VNET_GSO_TCPV4 && type != VNET_GSO_TCPV6 && type != VNET_GSO_UDP_L4) || mss == 0 ||
      gso_parse(f, len, type, &g) < 0) {
    t->rx_gso_dropped++;
    return 0;
  }
  if (g.hdrs + mss > cap || g.hdrs + mss - g.l3 > 0xffff) {
    t->rx_too_long++; /* its segments would not fit a slot */
    return 0;
  }
  payload = g.end - g.hdrs;
  for (uint32_t i = 0, off = 0; i == 0 || off < payload; i++, off += mss) {
    const uint32_t size = payload - off < mss ? payload - off : mss;
    uint32_t at, bytes;
    if (*n == max) {
      deliver(t, cb, *n);
      *n = 0;
      if (t->state != LIME_TAP_POLLING) return -1;
    }
    at = *n * slot + headroom;
    bytes = gso_build(t->slab + at, f, &g, i, off, size, off + size >= payload);
    t->start[*n] = at;
    t->len[*n] = bytes;
    t->rx_packets++;
    t->rx_bytes += bytes;
    (*n)++;
  }
  t->rx_gso_segmented++;
  return 0;
}

/*
 * The drain of an AF_PACKET handle: as on_poll's, with recvmsg for the VLAN tag and, on a
 * virtio-net handle, the header. Returns the errno of a device failure (the caller
 * reports it: ENETDOWN through packet_link_down, anything else by stopping), else 0
 * (drained, yielding, or stopped by onBatch). A pending socket error comes before any
 * queued frame (the kernel's datagram receive checks sk_err first), so a drain started on
 * POLLERR reads the error without losing a frame.
 */
static int
drain_packet (lime_tap_t *t, napi_value cb) {
  const uint32_t max = t->max_batch, slot = t->slot_size, headroom = t->headroom;
  const size_t cap = slot - headroom;
  const int vnet = t->vnet;
  uint8_t raw[LIME_VNET_HDR_LEN];
  vnet_hdr_t h = { 0 };
  lime_packet_meta_t meta;

  for (int round = 0; round < LIME_TAP_DRAIN_ROUNDS; round++) {
    uint32_t n = 0, reads = 0;
    int drained = 0, err = 0;
    while (reads < max && n < max) {
      const uint32_t off = n * slot + headroom;
      uint8_t *f = t->slab + off;
      size_t len, tag;
      ssize_t r = vnet ? lime_sock_sys_recv_packet(t->fd, raw, f, cap, t->scratch + cap, LIME_VNET_SPILL, &meta)
                       : lime_sock_sys_recv_packet(t->fd, NULL, f, cap, NULL, 0, &meta);
      reads++;
      if (r < 0) {
        if (r == -EAGAIN || r == -EWOULDBLOCK) drained = 1;
        else err = (int) -r;
        break;
      }
      if (meta.truncated) {
        t->rx_too_long++; /* longer than slot (and spill): cut by the read */
        continue;
      }
      len = (size_t) r;
      tag = meta.vlan != 0 && len >= 12 ? 4 : 0;
      if (vnet) vnet_hdr_load(&h, raw);
      if (h.gso_type == VNET_GSO_NONE) {
        if (len + tag > cap) {
          t->rx_too_long++;
          continue;
        }
        if (h.flags & VNET_F_NEEDS_CSUM) { /* (never set on a plain handle) */
          if (vnet_complete_csum(f, len, &h) < 0) {
            t->rx_gso_dropped++;
            continue;
          }
          t->rx_csum_completed++;
        }
        if (tag) vlan_insert(f, len, meta.vlan);
        len += tag;
        t->start[n] = off;
        t->len[n] = (uint32_t) len;
        t->rx_packets++;
        t->rx_bytes += (double) len;
        n++;
      } else {
        if (len + tag > cap + LIME_VNET_SPILL) {
          t->rx_too_long++;
          continue;
        }
        /* Make the super-frame contiguous in the scratch: its head is in slot n. */
        memcpy(t->scratch, f, len < cap ? len : cap);
        if (tag) vlan_insert(t->scratch, len, meta.vlan);
        if (vnet_segment(t, cb, t->scratch, len + tag, &h, &n) < 0) return 0;
      }
    }
    if (n > 0) {
      deliver(t, cb, n);
      if (t->state != LIME_TAP_POLLING) return 0; /* stopped or closed by onBatch */
    }
    if (err) return err;
    if (drained) return 0;
  }
  t->rx_full_polls++;
  return 0;
}

static void on_poll (uv_poll_t *poll, int status, int events);

/*
 * An AF_PACKET socket read ENETDOWN: its interface went down. The kernel unhooks the
 * socket from the interface, reports ENETDOWN once (sk_err, which the read consumed) and
 * hooks it back when the interface is up again: the same socket then receives as before.
 * So this is not fatal: count it (rx_link_down), tell JS with onBatch(-ENETDOWN), and go on
 * polling (an unhooked socket is not readable: no spinning). Deleting the interface (or
 * moving it to another namespace) takes it down first, so it reports the same ENETDOWN and
 * then nothing more: JS tells a deletion apart (lime_if_info: ENODEV, or another ifindex)
 * and stops the handle itself. `rearm`: the report came with POLLERR, on which libuv
 * stopped watching the fd; watch it again (failing that, stop as for any device error).
 */
static void
packet_link_down (lime_tap_t *t, napi_value cb, int rearm) {
  int err;
  t->rx_link_down++;
  t->last_errno = ENETDOWN;
  call_on_batch(t, cb, -ENETDOWN);
  if (!rearm || t->state != LIME_TAP_POLLING) return; /* stopped or closed by onBatch */
  err = uv_poll_start(&t->poll, UV_READABLE, on_poll);
  if (err < 0) {
    t->last_errno = -err;
    call_on_batch(t, cb, err);
    tap_stop(t);
  }
}

/*
 * Fill batch slots from a datagram socket with recvmmsg (up to `max` datagrams, in chunks
 * of LIME_SOCK_MMSG_MAX): *n frames kept, datagrams that filled their slot counted as
 * rx_too_long. Returns how many datagrams arrived (0 = none waiting); *err is set to the
 * errno of a failure other than EAGAIN.
 */
static int
dgram_read (lime_tap_t *t, uint32_t max, uint32_t *n, int *err, int *drained) {
  const uint32_t slot = t->slot_size, headroom = t->headroom;
  const size_t cap = slot - headroom;
  uint8_t *buf[LIME_SOCK_MMSG_MAX];
  uint32_t len[LIME_SOCK_MMSG_MAX];
  int total = 0;
  while (*n < max) {
    uint32_t want = max - *n;
    if (want > LIME_SOCK_MMSG_MAX) want = LIME_SOCK_MMSG_MAX;
    for (uint32_t i = 0; i < want; i++) buf[i] = t->slab + (*n + i) * slot + headroom;
    int r = lime_sock_sys_recvmmsg(t->fd, buf, cap, len, (int) want);
    if (r < 0) {
      if (r != -EAGAIN && r != -EWOULDBLOCK) *err = -r;
      break;
    }
    total += r;
    /* Slots are filled in order; a datagram cut by its slot is dropped by moving the
     * ones after it down (rare: slots are sized for the largest MTU). */
    uint32_t kept = *n;
    for (int i = 0; i < r; i++) {
      const uint32_t from = (*n + (uint32_t) i) * slot + headroom;
      if (len[i] >= cap) {
        t->rx_too_long++;
        continue;
      }
      const uint32_t to = kept * slot + headroom;
      if (to != from) memmove(t->slab + to, t->slab + from, len[i]);
      t->start[kept] = to;
      t->len[kept] = len[i];
      t->rx_packets++;
      t->rx_bytes += (double) len[i];
      kept++;
    }
    *n = kept;
    if ((uint32_t) r < want) { /* the socket is drained: no second recvmmsg to learn it */
      *drained = 1;
      break;
    }
  }
  return total;
}

static void
on_poll (uv_poll_t *poll, int status, int events) {
  lime_tap_t *t = (lime_tap_t *) poll->data;
  napi_env env = t->env;
  napi_handle_scope scope;
  napi_value cb;
  const uint32_t max = t->max_batch, slot = t->slot_size, headroom = t->headroom;
  const size_t cap = slot - headroom;
  uint32_t total = 0;
  int err = 0;
  int drained = 0;
  const uint64_t began = uv_hrtime();
  (void) events;

  if (t->state != LIME_TAP_POLLING) return;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  if (napi_get_reference_value(env, t->cb_ref, &cb) != napi_ok || cb == NULL) goto out;

  if (t->packet) {
    /* The one branch per drain: AF_PACKET handles have their own drain. On POLLERR
     * (status < 0: libuv has stopped watching) it reads the pending error first. */
    err = drain_packet(t, cb);
    if (t->state != LIME_TAP_POLLING) goto out; /* stopped or closed by onBatch */
    if (err == ENETDOWN) {
      packet_link_down(t, cb, status < 0);
      goto out;
    }
    if (err == 0 && status < 0) err = -status; /* POLLERR with no error to read */
    if (err) goto down;
    goto out;
  }

  if (status < 0) {
    /* POLLERR (libuv reports UV_EBADF): a read tells the real reason (EBADFD when the
     * TAP was deleted). */
    ssize_t r = lime_tap_sys_read(t->fd, t->slab + headroom, cap);
    err = (r < 0 && r != -EAGAIN) ? (int) -r : -status;
    goto down;
  }

  for (int round = 0; round < LIME_TAP_DRAIN_ROUNDS; round++) {
    uint32_t n = 0, reads = 0;
    drained = 0;
    if (t->dgram) {
      /* A raw IPv4 socket: up to `max` datagrams in one recvmmsg. */
      int got = dgram_read(t, max, &n, &err, &drained);
      if (got == 0) drained = 1;
      reads = max;
    }
    while (reads < max) {
      const uint32_t off = n * slot + headroom;
      ssize_t r = lime_tap_sys_read(t->fd, t->slab + off, cap);
      reads++;
      if (r < 0) {
        /* EINTR is retried in tap.c; EAGAIN means drained; anything else (EBADFD
         * once the device is deleted, EIO, EFAULT, ...) means the device is gone:
         * retrying would spin, since a level-triggered poll stays readable. */
        if (r == -EAGAIN || r == -EWOULDBLOCK) drained = 1;
        else err = (int) -r;
        break;
      }
      if ((size_t) r >= cap) {
        /* The frame filled the read: the kernel may have cut it. Count and skip. */
        t->rx_too_long++;
        continue;
      }
      t->start[n] = off;
      t->len[n] = (uint32_t) r;
      t->rx_packets++;
      t->rx_bytes += (double) r;
      n++;
      /* Light load (the last drain found one frame): forward this frame now and learn
       * that the queue is empty afterwards (next round), so the read that fails with
       * EAGAIN is not paid before the frame leaves. Under load drains find many frames
       * and read on to a full batch as before. */
      if (round == 0 && t->last_drain == 1) break;
    }
    total += n;
    if (n > 0) {
      t->rx_batches++;
      t->loop_time = (double) uv_now(t->poll.loop);
      call_on_batch(t, cb, (int32_t) n);
      if (t->state != LIME_TAP_POLLING) goto out; /* stopped or closed by onBatch */
    }
    if (err) goto down;
    if (drained) break;
  }
  t->last_drain = total;
  if (!drained) t->rx_full_polls++;
  goto out;

down:
  t->last_errno = err;
  call_on_batch(t, cb, -err);
  tap_stop(t);

out:
  napi_close_handle_scope(env, scope);
  t->busy_ns += (double) (uv_hrtime() - began);
}

/*
 * lime_tap_start(handle, fd, slab: Buffer, start: Uint32Array, len: Uint32Array,
 *                slotSize, headroom, maxBatch, onBatch: (n: number) => void)
 */
static napi_value
lime_tap_start (napi_env env, napi_callback_info info) {
  ARGS(9)
  lime_tap_t *t = get_handle(env, argv[0]);
  int32_t fd = -1;
  uint32_t slot_size = 0, headroom = 0, max_batch = 0;
  size_t slab_size = 0, start_length = 0, len_length = 0;
  uint8_t *slab;
  uint32_t *start, *len;
  napi_valuetype cb_type;
  napi_value resource_name;
  uv_loop_t *loop;
  int err;

  if (t == NULL) return NULL;
  NAPI_CALL(env, napi_get_value_int32(env, argv[1], &fd));
  if ((slab = get_bytes(env, argv[2], &slab_size)) == NULL) return NULL;
  if ((start = get_u32_array(env, argv[3], &start_length)) == NULL) return NULL;
  if ((len = get_u32_array(env, argv[4], &len_length)) == NULL) return NULL;
  NAPI_CALL(env, napi_get_value_uint32(env, argv[5], &slot_size));
  NAPI_CALL(env, napi_get_value_uint32(env, argv[6], &headroom));
  NAPI_CALL(env, napi_get_value_uint32(env, argv[7], &max_batch));
  NAPI_CALL(env, napi_typeof(env, argv[8], &cb_type));

  if (!t->initialized || t->fd < 0 || t->fd != fd) return throw_type(env, "lime_tap_start: handle not open on this fd");
  if (t->state != LIME_TAP_IDLE) return throw_type(env, "lime_tap_start: already started (or still closing)");
  if (cb_type != napi_function) return throw_type(env, "lime_tap_start: onBatch must be a function");
  if (max_batch == 0 || headroom >= slot_size || slot_size - headroom < 64) return throw_type(env, "lime_tap_start: bad slotSize/headroom/maxBatch");
  if ((uint64_t) max_batch * slot_size > slab_size || start_length < max_batch || len_length < max_batch) {
    return throw_type(env, "lime_tap_start: slab or start/len columns smaller than maxBatch slots");
  }
  if ((uint64_t) max_batch * slot_size > UINT32_MAX) return throw_type(env, "lime_tap_start: slab larger than 4 GiB");

  if (t->vnet) {
    /* Freed by on_close (or just below if polling cannot start). */
    t->scratch = malloc((size_t) (slot_size - headroom) + LIME_VNET_SPILL);
    if (t->scratch == NULL) {
      throw_errno(env, ENOMEM, "", "ENOMEM: cannot start: no memory for the virtio-net scratch buffer");
      return NULL;
    }
  }

  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  err = uv_poll_init(loop, &t->poll, fd);
  if (err < 0) {
    char message[128];
    free(t->scratch);
    t->scratch = NULL;
    snprintf(message, sizeof(message), "%s: cannot poll TAP fd %d: %s", errno_name(-err), fd, uv_strerror(err));
    throw_errno(env, -err, "", message);
    return NULL;
  }
  t->poll.data = t;
  t->env = env;
  t->slab = slab;
  t->start = start;
  t->len = len;
  t->slot_size = slot_size;
  t->headroom = headroom;
  t->max_batch = max_batch;
  napi_create_reference(env, argv[0], 1, &t->self_ref);
  napi_create_reference(env, argv[2], 1, &t->slab_ref);
  napi_create_reference(env, argv[3], 1, &t->start_ref);
  napi_create_reference(env, argv[4], 1, &t->len_ref);
  napi_create_reference(env, argv[8], 1, &t->cb_ref);
  napi_create_string_utf8(env, "lime_tap", NAPI_AUTO_LENGTH, &resource_name);
  napi_async_init(env, NULL, resource_name, &t->async);
  t->state = LIME_TAP_POLLING;
  napi_add_async_cleanup_hook(env, on_env_teardown, t, &t->cleanup);

  err = uv_poll_start(&t->poll, UV_READABLE, on_poll);
  if (err < 0) {
    tap_stop(t);
    char message[128];
    snprintf(message, sizeof(message), "%s: cannot poll TAP fd %d: %s", errno_name(-err), fd, uv_strerror(err));
    throw_errno(env, -err, "", message);
    return NULL;
  }
  return NULL;
}

/* lime_tap_stop(handle): stop polling; safe to call twice and from onBatch. */
static napi_value
lime_tap_stop (napi_env env, napi_callback_info info) {
  ARGS(1)
  lime_tap_t *t = get_handle(env, argv[0]);
  if (t == NULL) return NULL;
  if (t->initialized) tap_stop(t);
  return NULL;
}

/* lime_tap_close(handle): stop polling and close the fd; idempotent. */
static napi_value
lime_tap_close (napi_env env, napi_callback_info info) {
  ARGS(1)
  lime_tap_t *t = get_handle(env, argv[0]);
  if (t == NULL) return NULL;
  if (!t->initialized) return NULL;
  tap_stop(t); /* uv_poll_stop has already removed the fd from epoll */
  if (t->fd >= 0) {
    lime_tap_sys_close(t->fd);
    t->fd = -1;
  }
  return NULL;
}

/*
 * Send frames start/len[0..n) to a socket with sendmmsg, LIME_SOCK_MMSG_MAX per call
 * (behind an all-zero virtio-net header on a vnet handle). A datagram the kernel refuses
 * is counted by its errno as lime_tap_write_batch does, and sending goes on with the next;
 * a device that is down or gone ends the batch. Returns the frames sent.
 */
static uint32_t
dgram_write (lime_tap_t *t, int fd, uint8_t *slab, size_t slab_size, const uint32_t *start, const uint32_t *len, uint32_t n, int vnet) {
  uint8_t *buf[LIME_SOCK_MMSG_MAX];
  uint32_t size[LIME_SOCK_MMSG_MAX];
  uint32_t sent = 0, i = 0;
  while (i < n) {
    /* Gather the next chunk of well-formed entries (a bad offset is a tx_error). */
    int k = 0;
    uint32_t j = i;
    while (j < n && k < LIME_SOCK_MMSG_MAX) {
      const uint32_t off = start[j], sz = len[j];
      j++;
      if ((uint64_t) off + sz > slab_size || sz == 0) {
        t->tx_error++;
        continue;
      }
      buf[k] = slab + off;
      size[k] = sz;
      k++;
    }
    if (k == 0) break;
    int done_k = 0;
    while (done_k < k) {
      int r = lime_sock_sys_sendmmsg(fd, buf + done_k, size + done_k, k - done_k, vnet);
      if (r > 0) {
        for (int m = 0; m < r; m++) {
          t->tx_packets++;
          t->tx_bytes += size[done_k + m];
        }
        sent += (uint32_t) r;
        done_k += r;
        continue;
      }
      /* The first datagram of the rest failed. */
      if (r == -EAGAIN || r == -EWOULDBLOCK || r == -ENOBUFS) {
        t->tx_queue_full++;
      } else if (is_tx_port_down(-r)) {
        t->last_errno = (double) -r;
        t->tx_port_down += (double) (k - done_k) + (double) (n - j);
        return sent;
      } else {
        t->tx_error++; /* EMSGSIZE: longer than the route's or the device's MTU */
      }
      done_k++;
    }
    i = j;
  }
  return sent;
}

/*
 * lime_tap_write_batch(handle, fd, slab: Buffer, start: Uint32Array, len: Uint32Array, n)
 *   -> frames sent. One write(2) per frame (a TAP has no batch write), all in this call;
 * on a virtio-net handle one writev(2) per frame, behind an all-zero header (a plain,
 * complete frame). Never throws for a frame: failures are counted in the handle
 * (EMSGSIZE, a packet longer than the route's or the device's MTU, is a tx_error).
 */
static napi_value
lime_tap_write_batch (napi_env env, napi_callback_info info) {
  ARGS(6)
  lime_tap_t *t = get_handle(env, argv[0]);
  int32_t fd = -1;
  uint32_t n = 0, sent = 0;
  size_t slab_size = 0, start_length = 0, len_length = 0;
  uint8_t *slab;
  uint32_t *start, *len;
  napi_value result;
  int vnet;

  if (t == NULL) return NULL;
  NAPI_CALL(env, napi_get_value_int32(env, argv[1], &fd));
  if ((slab = get_bytes(env, argv[2], &slab_size)) == NULL) return NULL;
  if ((start = get_u32_array(env, argv[3], &start_length)) == NULL) return NULL;
  if ((len = get_u32_array(env, argv[4], &len_length)) == NULL) return NULL;
  NAPI_CALL(env, napi_get_value_uint32(env, argv[5], &n));
  if (n > start_length || n > len_length) return throw_type(env, "lime_tap_write_batch: n larger than the start/len columns");

  if (!t->initialized || t->fd < 0 || t->fd != fd) {
    /* Closed (or not ours): never write to an fd number that may have been reused. */
    t->tx_port_down += n;
    goto done;
  }

  vnet = t->vnet;
  if (t->dgram) {
    sent = dgram_write(t, fd, slab, slab_size, start, len, n, vnet);
    goto done;
  }
  for (uint32_t i = 0; i < n; i++) {
    const uint32_t off = start[i], size = len[i];
    ssize_t r;
    if ((uint64_t) off + size > slab_size || size == 0) {
      t->tx_error++;
      continue;
    }
    r = vnet ? lime_sock_sys_write_vnet(fd, slab + off, size) : lime_tap_sys_write(fd, slab + off, size);
    if (r == (ssize_t) size) {
      sent++;
      t->tx_packets++;
      t->tx_bytes += size;
    } else if (r >= 0) {
      t->tx_error++; /* short write: not expected from a TAP */
    } else if (r == -EAGAIN || r == -EWOULDBLOCK || r == -ENOBUFS) {
      t->tx_queue_full++;
    } else if (is_tx_port_down((int) -r)) {
      t->last_errno = (double) -r;
      t->tx_port_down += n - i;
      break;
    } else {
      t->tx_error++;
    }
  }

done:
  NAPI_CALL(env, napi_create_uint32(env, sent, &result));
  return result;
}

/* ------------------------------------------------------------------ flow key (extract.c) */

/*
 * lime_extract_key(frame: Uint8Array, key: Uint32Array, inPort: number) -> dropReason.
 * The C flow key of one frame (extract.h), for tests that hold it against
 * src/packet/extract.ts. `key` must have room for LIME_KEY_WORDS words.
 */
static napi_value
lime_extract_key (napi_env env, napi_callback_info info) {
  ARGS(3)
  size_t frame_len = 0, key_len = 0;
  uint8_t *frame;
  uint32_t *key;
  uint32_t in_port = 0;
  napi_value result;
  bool pending = false;
  frame = get_bytes(env, argv[0], &frame_len);
  if (frame == NULL) {
    /* An empty Buffer has no data pointer; anything else that failed threw. */
    napi_is_exception_pending(env, &pending);
    if (pending) return NULL;
    frame_len = 0;
  }
  if ((key = get_u32_array(env, argv[1], &key_len)) == NULL) return NULL;
  NAPI_CALL(env, napi_get_value_uint32(env, argv[2], &in_port));
  if (key_len < LIME_KEY_WORDS) return throw_type(env, "lime_extract_key: the key needs LIME_KEY_WORDS words");
  NAPI_CALL(env, napi_create_int32(env, lime_extract(frame, frame_len, key, in_port), &result));
  return result;
}

/* ------------------------------------------------------------------ flow cache (flowcache.c)
 *
 * Bindings for the cache's tests; the fast path that will use it lives in C. A cache is
 * an external value freed with it. The stress pair runs a reader thread against the
 * JavaScript writer: the programs the test installs are a function of their key and a
 * version (word 0), so the reader can tell a torn copy from a whole one.
 */

static void
fc_finalize (napi_env env, void *data, void *hint) {
  (void) env;
  (void) hint;
  lime_fc_free((lime_fc_t *) data);
}

/* The pointer of an external value, or NULL with a TypeError "<message>" thrown. */
static void *
get_external (napi_env env, napi_value v, const char *message) {
  void *p = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, "EINVAL", message);
    return NULL;
  }
  return p;
}

static lime_fc_t *
get_fc (napi_env env, napi_value v) {
  return get_external(env, v, "lime_fc: not a flow cache");
}

static uint32_t *
get_key (napi_env env, napi_value v) {
  size_t n = 0;
  uint32_t *key = get_u32_array(env, v, &n);
  if (key == NULL) return NULL;
  if (n < LIME_KEY_WORDS) {
    napi_throw_type_error(env, "EINVAL", "lime_fc: a key needs LIME_KEY_WORDS words");
    return NULL;
  }
  return key;
}

/* lime_fc_new(entries) -> cache */
static napi_value
lime_fc_new_js (napi_env env, napi_callback_info info) {
  ARGS(1)
  uint32_t entries = 0;
  lime_fc_t *fc;
  napi_value v;
  NAPI_CALL(env, napi_get_value_uint32(env, argv[0], &entries));
  if ((fc = lime_fc_new(entries)) == NULL) return throw_type(env, "lime_fc_new: out of memory");
  NAPI_CALL(env, napi_create_external(env, fc, fc_finalize, NULL, &v));
  return v;
}

/* lime_fc_insert(cache, key, prog: Uint32Array) -> boolean (false: program too long or empty) */
static napi_value
lime_fc_insert_js (napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  lime_fc_t *fc;
  uint32_t *key, *prog, len = 0;
  size_t n = 0;
  napi_value v;
  napi_valuetype t = napi_undefined;
  bool pending = false;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) return throw_type(env, "lime_fc_insert: expected (cache, key, program[, length])");
  fc = get_fc(env, argv[0]);
  if (fc == NULL || (key = get_key(env, argv[1])) == NULL) return NULL;
  if ((prog = get_u32_array(env, argv[2], &n)) == NULL) {
    /* An empty typed array has no data pointer; anything else that failed threw. */
    napi_is_exception_pending(env, &pending);
    if (pending) return NULL;
    n = 0;
  }
  /* An optional length: the program is prog[0 .. length) (a scratch array, no subarray). */
  if (argc >= 4) NAPI_CALL(env, napi_typeof(env, argv[3], &t));
  if (t == napi_number) {
    NAPI_CALL(env, napi_get_value_uint32(env, argv[3], &len));
    if (len > n) return throw_type(env, "lime_fc_insert: length beyond the program array");
    n = len;
  }
  NAPI_CALL(env, napi_create_int32(env, n > 0 && n <= LIME_FC_PROG_MAX ? lime_fc_insert(fc, key, prog, (uint32_t) n) : -1, &v));
  return v;
}

/*
 * lime_fc_harvest(cache, out: Float64Array, flags, state: Uint32Array [cursor, quiesced])
 * -> words written (see flowcache.h); state[0] = cursor in and out, state[1] = quiesced.
 */
static napi_value
lime_fc_harvest_js (napi_env env, napi_callback_info info) {
  ARGS(4)
  lime_fc_t *fc = get_fc(env, argv[0]);
  uint32_t flags = 0, *state, w;
  size_t n_state = 0, out_len = 0;
  napi_typedarray_type type;
  napi_value ab, v;
  void *data = NULL;
  size_t off = 0;
  bool is_ta = false;
  int q = 0;
  if (fc == NULL) return NULL;
  NAPI_CALL(env, napi_is_typedarray(env, argv[1], &is_ta));
  if (!is_ta) return throw_type(env, "lime_fc_harvest: out must be a Float64Array");
  NAPI_CALL(env, napi_get_typedarray_info(env, argv[1], &type, &out_len, &data, &ab, &off));
  if (type != napi_float64_array || out_len < 3 + LIME_FC_PROG_MAX) return throw_type(env, "lime_fc_harvest: out must be a Float64Array of at least 3 + LIME_FC_PROG_MAX");
  NAPI_CALL(env, napi_get_value_uint32(env, argv[2], &flags));
  if ((state = get_u32_array(env, argv[3], &n_state)) == NULL) return NULL;
  if (n_state < 2) return throw_type(env, "lime_fc_harvest: state must be a Uint32Array of 2");
  w = lime_fc_harvest(fc, (double *) data, (uint32_t) out_len, flags, &state[0], &q);
  state[1] = (uint32_t) q;
  NAPI_CALL(env, napi_create_uint32(env, w, &v));
  return v;
}

/* lime_fc_usage(cache) -> [slots in use, slots] */
static napi_value
lime_fc_usage_js (napi_env env, napi_callback_info info) {
  ARGS(1)
  lime_fc_t *fc = get_fc(env, argv[0]);
  napi_value arr, v;
  if (fc == NULL) return NULL;
  NAPI_CALL(env, napi_create_array_with_length(env, 2, &arr));
  NAPI_CALL(env, napi_create_uint32(env, lime_fc_used(fc), &v));
  NAPI_CALL(env, napi_set_element(env, arr, 0, v));
  NAPI_CALL(env, napi_create_uint32(env, lime_fc_slots(fc), &v));
  NAPI_CALL(env, napi_set_element(env, arr, 1, v));
  return arr;
}

/* lime_fc_lookup(cache, key, bytes) -> Uint32Array (the program) or null */
static napi_value
lime_fc_lookup_js (napi_env env, napi_callback_info info) {
  ARGS(3)
  lime_fc_t *fc = get_fc(env, argv[0]);
  uint32_t *key, bytes = 0, prog[LIME_FC_PROG_MAX], len;
  napi_value ab, arr;
  void *data;
  if (fc == NULL || (key = get_key(env, argv[1])) == NULL) return NULL;
  NAPI_CALL(env, napi_get_value_uint32(env, argv[2], &bytes));
  len = lime_fc_lookup(fc, key, prog, bytes);
  if (len == 0) {
    NAPI_CALL(env, napi_get_null(env, &arr));
    return arr;
  }
  NAPI_CALL(env, napi_create_arraybuffer(env, len * sizeof(uint32_t), &data, &ab));
  memcpy(data, prog, len * sizeof(uint32_t));
  NAPI_CALL(env, napi_create_typedarray(env, napi_uint32_array, len, ab, 0, &arr));
  return arr;
}

/* lime_fc_invalidate(cache) */
static napi_value
lime_fc_invalidate_js (napi_env env, napi_callback_info info) {
  ARGS(1)
  lime_fc_t *fc = get_fc(env, argv[0]);
  if (fc != NULL) lime_fc_invalidate(fc);
  return NULL;
}

/* lime_fc_counters(cache, key) -> [packets, bytes] or null */
static napi_value
lime_fc_counters_js (napi_env env, napi_callback_info info) {
  ARGS(2)
  lime_fc_t *fc = get_fc(env, argv[0]);
  uint32_t *key;
  uint64_t packets = 0, bytes = 0;
  napi_value arr, v;
  if (fc == NULL || (key = get_key(env, argv[1])) == NULL) return NULL;
  if (!lime_fc_counters(fc, key, &packets, &bytes)) {
    NAPI_CALL(env, napi_get_null(env, &arr));
    return arr;
  }
  NAPI_CALL(env, napi_create_array_with_length(env, 2, &arr));
  NAPI_CALL(env, napi_create_double(env, (double) packets, &v));
  NAPI_CALL(env, napi_set_element(env, arr, 0, v));
  NAPI_CALL(env, napi_create_double(env, (double) bytes, &v));
  NAPI_CALL(env, napi_set_element(env, arr, 1, v));
  return arr;
}

/* The test's programs: word 0 a version, the length and the other words from key and version. */
static inline uint32_t
stress_len (const uint32_t *key, uint32_t version) {
  return 2 + (key[LIME_K_NW_DST] + version) % (LIME_FC_PROG_MAX - 1);
}

static inline uint32_t
stress_word (const uint32_t *key, uint32_t version, uint32_t i) {
  return key[LIME_K_NW_DST] * 2654435761u + version * 40503u + i;
}

static struct {
  pthread_t thread;
  int running;
  _Atomic int stop;
  lime_fc_t *fc;
  uint32_t *keys; /* n keys of LIME_KEY_WORDS words, our copy */
  uint32_t n;
  uint64_t lookups, hits, torn, bytes;
} stress;

static void *
stress_reader (void *arg) {
  uint32_t prog[LIME_FC_PROG_MAX];
  (void) arg;
  for (uint32_t i = 0; !atomic_load_explicit(&stress.stop, memory_order_relaxed); i = (i + 1) % stress.n) {
    const uint32_t *key = stress.keys + (size_t) i * LIME_KEY_WORDS;
    uint32_t len = lime_fc_lookup(stress.fc, key, prog, 100);
    stress.lookups++;
    if (len == 0) continue;
    stress.hits++;
    stress.bytes += 100;
    if (len != stress_len(key, prog[0])) {
      stress.torn++;
      continue;
    }
    for (uint32_t w = 1; w < len; w++) {
      if (prog[w] != stress_word(key, prog[0], w)) {
        stress.torn++;
        break;
      }
    }
  }
  return NULL;
}

/* lime_fc_stress_start(cache, keys: Uint32Array (n × LIME_KEY_WORDS)) */
static napi_value
lime_fc_stress_start_js (napi_env env, napi_callback_info info) {
  ARGS(2)
  lime_fc_t *fc = get_fc(env, argv[0]);
  size_t n = 0;
  uint32_t *keys;
  if (fc == NULL || (keys = get_u32_array(env, argv[1], &n)) == NULL) return NULL;
  if (stress.running) return throw_type(env, "lime_fc_stress_start: already running");
  if (n < LIME_KEY_WORDS || n % LIME_KEY_WORDS != 0) return throw_type(env, "lime_fc_stress_start: keys must be whole keys");
  stress.keys = malloc(n * sizeof(uint32_t));
  if (stress.keys == NULL) return throw_type(env, "lime_fc_stress_start: out of memory");
  memcpy(stress.keys, keys, n * sizeof(uint32_t));
  stress.n = (uint32_t) (n / LIME_KEY_WORDS);
  stress.fc = fc;
  stress.lookups = stress.hits = stress.torn = stress.bytes = 0;
  atomic_store(&stress.stop, 0);
  if (pthread_create(&stress.thread, NULL, stress_reader, NULL) != 0) {
    free(stress.keys);
    return throw_type(env, "lime_fc_stress_start: cannot start a thread");
  }
  stress.running = 1;
  return NULL;
}

/* lime_fc_stress_stop() -> [lookups, hits, torn, bytes counted] */
static napi_value
lime_fc_stress_stop_js (napi_env env, napi_callback_info info) {
  napi_value arr, v;
  (void) info;
  if (!stress.running) return throw_type(env, "lime_fc_stress_stop: not running");
  atomic_store(&stress.stop, 1);
  pthread_join(stress.thread, NULL);
  stress.running = 0;
  free(stress.keys);
  stress.keys = NULL;
  NAPI_CALL(env, napi_create_array_with_length(env, 4, &arr));
  NAPI_CALL(env, napi_create_double(env, (double) stress.lookups, &v));
  NAPI_CALL(env, napi_set_element(env, arr, 0, v));
  NAPI_CALL(env, napi_create_double(env, (double) stress.hits, &v));
  NAPI_CALL(env, napi_set_element(env, arr, 1, v));
  NAPI_CALL(env, napi_create_double(env, (double) stress.torn, &v));
  NAPI_CALL(env, napi_set_element(env, arr, 2, v));
  NAPI_CALL(env, napi_create_double(env, (double) stress.bytes, &v));
  NAPI_CALL(env, napi_set_element(env, arr, 3, v));
  return arr;
}

/* lime_fc_stress_program(key, version) -> Uint32Array: the program the reader expects. */
static napi_value
lime_fc_stress_program_js (napi_env env, napi_callback_info info) {
  ARGS(2)
  uint32_t *key, version = 0, len;
  napi_value ab, arr;
  uint32_t *data;
  if ((key = get_key(env, argv[0])) == NULL) return NULL;
  NAPI_CALL(env, napi_get_value_uint32(env, argv[1], &version));
  len = stress_len(key, version);
  NAPI_CALL(env, napi_create_arraybuffer(env, len * sizeof(uint32_t), (void **) &data, &ab));
  data[0] = version;
  for (uint32_t w = 1; w < len; w++) data[w] = stress_word(key, version, w);
  NAPI_CALL(env, napi_create_typedarray(env, napi_uint32_array, len, ab, 0, &arr));
  return arr;
}

/* ------------------------------------------------------------------ engine (engine.c)
 *
 * Bindings for the engine's tests (the daemon does not use it yet): an engine is an
 * external; frames it hands over reach `onMiss(port, frame: Buffer)` on this thread.
 * The lime_test_* helpers give tests frame fds without root: AF_UNIX datagram socket
 * pairs keep frame boundaries as a TAP device does.
 */

typedef struct {
  napi_env env;
  napi_ref cb; /* onMiss, or NULL */
  napi_ref cache; /* the flow cache: the engine thread uses it until closed, so it must not be collected */
  int cleanup_registered;
  napi_async_context async;
  lime_engine_t *engine;
  int closed;
  /* Ports whose frames the engine reads for a started TAP handle: upcalls are delivered
   * through the handle, into its batch and to its onBatch, as if its own poll had read them. */
  lime_tap_t *taps[LIME_ENGINE_MAX_PORTS];
  uint32_t pending_port; /* the handle batch being filled (0: none) */
  uint32_t pending;
} engine_js_t;

static void engine_env_cleanup (void *arg);

/* Deliver the batch being filled to its handle's onBatch. */
static void
engine_flush (engine_js_t *w) {
  lime_tap_t *t;
  napi_handle_scope scope;
  napi_value cb;
  uint32_t n = w->pending;
  uint64_t began;
  if (w->pending_port == 0) return;
  t = w->taps[w->pending_port];
  w->pending_port = 0;
  w->pending = 0;
  if (t == NULL || t->state != LIME_TAP_POLLING || n == 0 || t->teardown) return;
  began = uv_hrtime();
  if (napi_open_handle_scope(t->env, &scope) != napi_ok) return;
  if (napi_get_reference_value(t->env, t->cb_ref, &cb) == napi_ok && cb != NULL) deliver(t, cb, n);
  napi_close_handle_scope(t->env, scope);
  t->busy_ns += (double) (uv_hrtime() - began);
}

static void
engine_miss_to_tap (engine_js_t *w, lime_tap_t *t, uint32_t port, const uint8_t *frame, uint32_t len, int err) {
  const size_t cap = t->slot_size - t->headroom;
  uint32_t off;
  if (w->pending_port != port || w->pending >= t->max_batch) engine_flush(w);
  if (t->state != LIME_TAP_POLLING) return;
  if (err != 0) {
    napi_handle_scope scope;
    napi_value cb;
    t->last_errno = err;
    if (napi_open_handle_scope(t->env, &scope) != napi_ok) return;
    if (napi_get_reference_value(t->env, t->cb_ref, &cb) == napi_ok && cb != NULL) call_on_batch(t, cb, -err);
    napi_close_handle_scope(t->env, scope);
    return;
  }
  if (len >= cap) {
    t->rx_too_long++;
    return;
  }
  off = w->pending * t->slot_size + t->headroom;
  memcpy(t->slab + off, frame, len);
  t->start[w->pending] = off;
  t->len[w->pending] = len;
  t->rx_packets++;
  t->rx_bytes += (double) len;
  w->pending_port = port;
  w->pending++;
}

static void
engine_miss_to_js (void *arg, uint32_t port, const uint8_t *frame, uint32_t len, int err) {
  engine_js_t *w = arg;
  napi_env env = w->env;
  napi_handle_scope scope;
  napi_value cb, global, argv[2], result;
  void *data;
  if (w->closed) return;
  if (port < LIME_ENGINE_MAX_PORTS && w->taps[port] != NULL) {
    engine_miss_to_tap(w, w->taps[port], port, frame, len, err);
    return;
  }
  engine_flush(w);
  if (w->cb == NULL || err != 0 || napi_open_handle_scope(env, &scope) != napi_ok) return;
  if (napi_get_reference_value(env, w->cb, &cb) == napi_ok && cb != NULL &&
      napi_create_uint32(env, port, &argv[0]) == napi_ok &&
      napi_create_buffer_copy(env, len, frame, &data, &argv[1]) == napi_ok &&
      napi_get_global(env, &global) == napi_ok) {
    if (napi_make_callback(env, w->async, global, cb, 2, argv, &result) == napi_pending_exception) {
      napi_value error;
      napi_get_and_clear_last_exception(env, &error);
      napi_fatal_exception(env, error);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void
engine_done (void *arg) {
  engine_js_t *w = arg;
  if (!w->closed) engine_flush(w);
}

static void
engine_js_close (engine_js_t *w) {
  if (w->closed) return;
  lime_engine_stop(w->engine); /* hands over what is still waiting, while onMiss still runs */
  /* Hand the ports' fds back to their handles' own polls. */
  for (uint32_t p = 1; p < LIME_ENGINE_MAX_PORTS; p++) {
    lime_tap_t *t = w->taps[p];
    w->taps[p] = NULL;
    if (t != NULL && t->state == LIME_TAP_POLLING && !t->teardown) uv_poll_start(&t->poll, UV_READABLE, on_poll);
  }
  w->closed = 1;
  lime_engine_free(w->engine);
  w->engine = NULL;
  if (w->cb != NULL) napi_delete_reference(w->env, w->cb);
  if (w->cache != NULL) napi_delete_reference(w->env, w->cache);
  if (w->cleanup_registered) {
    napi_remove_env_cleanup_hook(w->env, engine_env_cleanup, w);
    w->cleanup_registered = 0;
  }
  napi_async_destroy(w->env, w->async);
}

/* The environment is going away (process exit, a worker ending): stop the thread before
 * finalizers free the cache it reads. */
static void
engine_env_cleanup (void *arg) {
  engine_js_t *w = arg;
  if (!w->closed && w->engine != NULL) lime_engine_stop(w->engine);
  w->cleanup_registered = 0;
}

static void
engine_finalize (napi_env env, void *data, void *hint) {
  engine_js_t *w = data;
  (void) env;
  (void) hint;
  /* Not closed: stop the thread; the handle goes with the environment. */
  if (!w->closed && w->engine != NULL) lime_engine_stop(w->engine);
  if (w->cleanup_registered) {
    napi_remove_env_cleanup_hook(env, engine_env_cleanup, w);
    w->cleanup_registered = 0;
  }
  if (w->closed) free(w);
}

static engine_js_t *
get_engine (napi_env env, napi_value v) {
  engine_js_t *p = get_external(env, v, "lime_engine: not an engine");
  if (p == NULL) return NULL;
  if (p->closed) {
    napi_throw_error(env, "EBADF", "lime_engine: the engine is closed");
    return NULL;
  }
  return p;
}

/* lime_engine_new(cache, onMiss | null) -> engine */
static napi_value
lime_engine_new_js (napi_env env, napi_callback_info info) {
  ARGS(2)
  lime_fc_t *fc = get_fc(env, argv[0]);
  engine_js_t *w;
  uv_loop_t *loop;
  napi_value v, name;
  napi_valuetype t;
  if (fc == NULL) return NULL;
  NAPI_CALL(env, napi_typeof(env, argv[1], &t));
  if (t != napi_function && t != napi_null) return throw_type(env, "lime_engine_new: onMiss must be a function or null");
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  w = calloc(1, sizeof(*w));
  if (w == NULL) return throw_type(env, "lime_engine_new: out of memory");
  w->env = env;
  w->engine = lime_engine_new(fc, loop, engine_miss_to_js, engine_done, w);
  if (w->engine == NULL) {
    free(w);
    return throw_type(env, "lime_engine_new: cannot create the engine");
  }
  if (t == napi_function) NAPI_CALL(env, napi_create_reference(env, argv[1], 1, &w->cb));
  NAPI_CALL(env, napi_create_reference(env, argv[0], 1, &w->cache));
  if (napi_add_env_cleanup_hook(env, engine_env_cleanup, w) == napi_ok) w->cleanup_registered = 1;
  NAPI_CALL(env, napi_create_string_utf8(env, "lime_engine", NAPI_AUTO_LENGTH, &name));
  NAPI_CALL(env, napi_async_init(env, NULL, name, &w->async));
  NAPI_CALL(env, napi_create_external(env, w, engine_finalize, NULL, &v));
  return v;
}

static napi_value
engine_error (napi_env env, int err, const char *what, uint32_t port) {
  char msg[160];
  snprintf(msg, sizeof(msg), "%s: %s: port %u: %s", errno_name(-err), what, port, strerror(-err));
  throw_errno(env, -err, "", msg);
  return NULL;
}

/* A started handle whose fd the engine may take: its own poll stops (lime_engine_detach restarts it). */
static lime_tap_t *
engine_tap (napi_env env, engine_js_t *w, napi_value handle, uint32_t port, const char *what) {
  lime_tap_t *t = get_handle(env, handle);
  if (t == NULL) return NULL;
  if (t->state != LIME_TAP_POLLING || t->packet || t->vnet || t->slab == NULL) {
    throw_type(env, "lime_engine: the handle must be a started TAP or raw-socket handle");
    return NULL;
  }
  if (port == 0 || port >= LIME_ENGINE_MAX_PORTS || w->taps[port] != NULL) {
    engine_error(env, -EINVAL, what, port);
    return NULL;
  }
  return t;
}

/* lime_engine_attach_tap(engine, port, handle, maxFrame): the engine reads and writes this TAP's frames. */
static napi_value
lime_engine_attach_tap_js (napi_env env, napi_callback_info info) {
  ARGS(4)
  engine_js_t *w = get_engine(env, argv[0]);
  uint32_t port = 0, max_frame = 0;
  lime_tap_t *t;
  int err;
  if (w == NULL) return NULL;
  NAPI_CALL(env, napi_get_value_uint32(env, argv[1], &port));
  NAPI_CALL(env, napi_get_value_uint32(env, argv[3], &max_frame));
  if ((t = engine_tap(env, w, argv[2], port, "lime_engine_attach_tap")) == NULL) return NULL;
  err = lime_engine_add_port(w->engine, port, t->fd, max_frame);
  if (err < 0) return engine_error(env, err, "lime_engine_attach_tap", port);
  uv_poll_stop(&t->poll);
  w->taps[port] = t;
  return NULL;
}

/*
 * lime_engine_attach_gre(engine, port, rxHandle, txFd, header: Uint8Array, remote, hasKey,
 * key, maxFrame): the engine reads this tunnel's raw socket and sends on txFd.
 */
static napi_value
lime_engine_attach_gre_js (napi_env env, napi_callback_info info) {
  ARGS(9)
  engine_js_t *w = get_engine(env, argv[0]);
  uint32_t port = 0, has_key = 0;
  int32_t tx_fd = -1;
  lime_engine_gre_t g;
  uint8_t *hdr;
  size_t hdr_len = 0;
  lime_tap_t *t;
  int err;
  if (w == NULL) return NULL;
  memset(&g, 0, sizeof(g));
  NAPI_CALL(env, napi_get_value_uint32(env, argv[1], &port));
  NAPI_CALL(env, napi_get_value_int32(env, argv[3], &tx_fd));
  if ((hdr = get_bytes(env, argv[4], &hdr_len)) == NULL) return NULL;
  NAPI_CALL(env, napi_get_value_uint32(env, argv[5], &g.remote));
  NAPI_CALL(env, napi_get_value_uint32(env, argv[6], &has_key));
  NAPI_CALL(env, napi_get_value_uint32(env, argv[7], &g.key));
  NAPI_CALL(env, napi_get_value_uint32(env, argv[8], &g.max_frame));
  if (hdr_len > LIME_ENGINE_GRE_HDR_MAX) return throw_type(env, "lime_engine_attach_gre: header too long");
  memcpy(g.hdr, hdr, hdr_len);
  g.hdr_len = (uint32_t) hdr_len;
  g.has_key = has_key != 0;
  if ((t = engine_tap(env, w, argv[2], port, "lime_engine_attach_gre")) == NULL) return NULL;
  err = lime_engine_add_gre(w->engine, port, t->fd, tx_fd, &g);
  if (err < 0) return engine_error(env, err, "lime_engine_attach_gre", port);
  uv_poll_stop(&t->poll);
  w->taps[port] = t;
  return NULL;
}

/* lime_engine_detach(engine, port): the port's handle polls its fd itself again (if it still polls). */
static napi_value
lime_engine_detach_js (napi_env env, napi_callback_info info) {
  ARGS(2)
  engine_js_t *w = get_engine(env, argv[0]);
  uint32_t port = 0;
  lime_tap_t *t;
  int err;
  if (w == NULL) return NULL;
  NAPI_CALL(env, napi_get_value_uint32(env, argv[1], &port));
  err = lime_engine_remove_port(w->engine, port);
  if (err < 0) return engine_error(env, err, "lime_engine_detach", port);
  t = port < LIME_ENGINE_MAX_PORTS ? w->taps[port] : NULL;
  if (t != NULL) {
    if (w->pending_port == port) engine_flush(w);
    w->taps[port] = NULL;
    if (t->state == LIME_TAP_POLLING && !t->teardown) uv_poll_start(&t->poll, UV_READABLE, on_poll);
  }
  return NULL;
}

/* lime_engine_stop(engine): stop and join the thread (what waits is delivered); idempotent. */
static napi_value
lime_engine_stop_js (napi_env env, napi_callback_info info) {
  ARGS(1)
  engine_js_t *w = get_engine(env, argv[0]);
  if (w != NULL) lime_engine_stop(w->engine);
  return NULL;
}

/* lime_engine_set_slow(engine, port, slow: boolean) */
static napi_value
lime_engine_set_slow_js (napi_env env, napi_callback_info info) {
  ARGS(3)
  engine_js_t *w = get_engine(env, argv[0]);
  uint32_t port = 0;
  bool slow = false;
  if (w == NULL) return NULL;
  NAPI_CALL(env, napi_get_value_uint32(env, argv[1], &port));
  NAPI_CALL(env, napi_get_value_bool(env, argv[2], &slow));
  lime_engine_set_slow(w->engine, port, slow);
  return NULL;
}

/*
 * lime_engine_port_stats(engine, port, out: Float64Array(7)) -> boolean:
 * out = [rxPackets, rxBytes, txPackets, txBytes, txErrors, upcalls, rxTooLong] of the port's native traffic.
 */
static napi_value
lime_engine_port_stats_js (napi_env env, napi_callback_info info) {
  ARGS(3)
  engine_js_t *w = get_engine(env, argv[0]);
  uint32_t port = 0;
  lime_engine_port_stats_t st;
  napi_typedarray_type type;
  napi_value ab, v;
  void *data = NULL;
  size_t len = 0, off = 0;
  bool is_ta = false;
  double *out;
  if (w == NULL) return NULL;
  NAPI_CALL(env, napi_get_value_uint32(env, argv[1], &port));
  NAPI_CALL(env, napi_is_typedarray(env, argv[2], &is_ta));
  if (!is_ta) return throw_type(env, "lime_engine_port_stats: out must be a Float64Array(7)");
  NAPI_CALL(env, napi_get_typedarray_info(env, argv[2], &type, &len, &data, &ab, &off));
  if (type != napi_float64_array || len < 7) return throw_type(env, "lime_engine_port_stats: out must be a Float64Array(7)");
  out = data;
  if (lime_engine_port_stats(w->engine, port, &st) < 0) {
    NAPI_CALL(env, napi_get_boolean(env, false, &v));
    return v;
  }
  out[0] = (double) st.rx_packets;
  out[1] = (double) st.rx_bytes;
  out[2] = (double) st.tx_packets;
  out[3] = (double) st.tx_bytes;
  out[4] = (double) st.tx_errors;
  out[5] = (double) st.upcalls;
  out[6] = (double) st.rx_too_long;
  NAPI_CALL(env, napi_get_boolean(env, true, &v));
  return v;
}

/*
 * lime_engine_load(engine, out: Float64Array(2)): out = [cpuNs, fullDrains], cumulative over
 * all runs: the engine thread's CPU time, and its reads that filled a whole batch.
 */
static napi_value
lime_engine_load_js (napi_env env, napi_callback_info info) {
  ARGS(2)
  engine_js_t *w = get_engine(env, argv[0]);
  lime_engine_load_t load;
  napi_typedarray_type type;
  napi_value ab;
  void *data = NULL;
  size_t len = 0, off = 0;
  bool is_ta = false;
  double *out;
  if (w == NULL) return NULL;
  NAPI_CALL(env, napi_is_typedarray(env, argv[1], &is_ta));
  if (!is_ta) return throw_type(env, "lime_engine_load: out must be a Float64Array(2)");
  NAPI_CALL(env, napi_get_typedarray_info(env, argv[1], &type, &len, &data, &ab, &off));
  if (type != napi_float64_array || len < 2) return throw_type(env, "lime_engine_load: out must be a Float64Array(2)");
  lime_engine_load(w->engine, &load);
  out = data;
  out[0] = (double) load.cpu_ns;
  out[1] = (double) load.full_drains;
  return NULL;
}

/* lime_engine_add_port(engine, port, fd) */
static napi_value
lime_engine_add_port_js (napi_env env, napi_callback_info info) {
  ARGS(3)
  engine_js_t *w = get_engine(env, argv[0]);
  uint32_t port = 0;
  int32_t fd = -1;
  int err;
  if (w == NULL) return NULL;
  NAPI_CALL(env, napi_get_value_uint32(env, argv[1], &port));
  NAPI_CALL(env, napi_get_value_int32(env, argv[2], &fd));
  err = lime_engine_add_port(w->engine, port, fd, LIME_ENGINE_FRAME_MAX);
  if (err < 0) return engine_error(env, err, "lime_engine_add_port", port);
  return NULL;
}

/* lime_engine_start(engine) */
static napi_value
lime_engine_start_js (napi_env env, napi_callback_info info) {
  ARGS(1)
  engine_js_t *w = get_engine(env, argv[0]);
  int err;
  if (w == NULL) return NULL;
  err = lime_engine_start(w->engine);
  if (err < 0) {
    char msg[128];
    snprintf(msg, sizeof(msg), "%s: lime_engine_start: cannot start the engine", errno_name(-err));
    throw_errno(env, -err, "", msg);
  }
  return NULL;
}

/* lime_engine_close(engine): stop the thread, deliver what is waiting, free; idempotent. */
static napi_value
lime_engine_close_js (napi_env env, napi_callback_info info) {
  ARGS(1)
  void *p = NULL;
  engine_js_t *w;
  NAPI_CALL(env, napi_get_value_external(env, argv[0], &p));
  w = p;
  if (w != NULL) engine_js_close(w);
  return NULL;
}

/* lime_engine_stats(engine) -> { rx, hits, upcalls, upcallDrops, tx, txErrors } */
static napi_value
lime_engine_stats_js (napi_env env, napi_callback_info info) {
  ARGS(1)
  engine_js_t *w = get_engine(env, argv[0]);
  lime_engine_stats_t st;
  napi_value o, v;
  if (w == NULL) return NULL;
  lime_engine_stats(w->engine, &st);
  NAPI_CALL(env, napi_create_object(env, &o));
#define STAT(name, field) \
  NAPI_CALL(env, napi_create_double(env, (double) st.field, &v)); \
  NAPI_CALL(env, napi_set_named_property(env, o, name, v));
  STAT("rx", rx)
  STAT("hits", hits)
  STAT("upcalls", upcalls)
  STAT("upcallDrops", upcall_drops)
  STAT("tx", tx)
  STAT("txErrors", tx_errors)
  STAT("foreign", foreign)
#undef STAT
  return o;
}

/* lime_test_socketpair() -> [fd, fd]: an AF_UNIX datagram pair, both ends non-blocking. */
static napi_value
lime_test_socketpair (napi_env env, napi_callback_info info) {
  int sv[2];
  napi_value arr, v;
  (void) info;
  if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
    throw_errno(env, errno, "", "socketpair failed");
    return NULL;
  }
  NAPI_CALL(env, napi_create_array_with_length(env, 2, &arr));
  for (uint32_t i = 0; i < 2; i++) {
    NAPI_CALL(env, napi_create_int32(env, sv[i], &v));
    NAPI_CALL(env, napi_set_element(env, arr, i, v));
  }
  return arr;
}

/* lime_test_fd_write(fd, frame: Buffer) -> bytes written (or -errno) */
static napi_value
lime_test_fd_write (napi_env env, napi_callback_info info) {
  ARGS(2)
  int32_t fd = -1;
  size_t len = 0;
  uint8_t *data;
  ssize_t r;
  napi_value v;
  NAPI_CALL(env, napi_get_value_int32(env, argv[0], &fd));
  if ((data = get_bytes(env, argv[1], &len)) == NULL) return NULL;
  r = write(fd, data, len);
  NAPI_CALL(env, napi_create_int32(env, r < 0 ? -errno : (int32_t) r, &v));
  return v;
}

/* lime_test_fd_read(fd) -> Buffer, or null when nothing is waiting */
static napi_value
lime_test_fd_read (napi_env env, napi_callback_info info) {
  ARGS(1)
  int32_t fd = -1;
  uint8_t buf[LIME_ENGINE_FRAME_MAX];
  ssize_t r;
  void *data;
  napi_value v;
  NAPI_CALL(env, napi_get_value_int32(env, argv[0], &fd));
  r = read(fd, buf, sizeof(buf));
  if (r < 0) {
    NAPI_CALL(env, napi_get_null(env, &v));
    return v;
  }
  NAPI_CALL(env, napi_create_buffer_copy(env, (size_t) r, buf, &data, &v));
  return v;
}

/* lime_test_fd_close(fd) */
static napi_value
lime_test_fd_close (napi_env env, napi_callback_info info) {
  ARGS(1)
  int32_t fd = -1;
  NAPI_CALL(env, napi_get_value_int32(env, argv[0], &fd));
  if (fd >= 0) close(fd);
  return NULL;
}

/* ------------------------------------------------------------------ module */

static void
export_uint32 (napi_env env, napi_value exports, const char *name, uint32_t value) {
  napi_value v;
  napi_create_uint32(env, value, &v);
  napi_set_named_property(env, exports, name, v);
}

static void
export_function (napi_env env, napi_value exports, const char *name, napi_callback fn) {
  napi_value v;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &v);
  napi_set_named_property(env, exports, name, v);
}

#define EXPORT_OFFSET(field) export_uint32(env, exports, "offsetof_lime_tap_" #field, (uint32_t) offsetof(lime_tap_t, field))

static napi_value
init (napi_env env, napi_value exports) {
  export_uint32(env, exports, "sizeof_lime_tap", (uint32_t) ((sizeof(lime_tap_t) + 7) & ~(size_t) 7));
  EXPORT_OFFSET(rx_packets);
  EXPORT_OFFSET(rx_bytes);
  EXPORT_OFFSET(rx_batches);
  EXPORT_OFFSET(rx_too_long);
  EXPORT_OFFSET(tx_packets);
  EXPORT_OFFSET(tx_bytes);
  EXPORT_OFFSET(tx_queue_full);
  EXPORT_OFFSET(tx_port_down);
  EXPORT_OFFSET(tx_error);
  EXPORT_OFFSET(last_errno);
  EXPORT_OFFSET(loop_time);
  EXPORT_OFFSET(rx_csum_completed);
  EXPORT_OFFSET(rx_gso_segmented);
  EXPORT_OFFSET(rx_gso_dropped);
  EXPORT_OFFSET(vnet_hdr);
  EXPORT_OFFSET(rx_link_down);
  EXPORT_OFFSET(busy_ns);
  EXPORT_OFFSET(rx_full_polls);
  export_uint32(env, exports, "LIME_TAP_F_VNET_HDR", LIME_TAP_F_VNET_HDR);
  export_uint32(env, exports, "LIME_PACKET_F_VNET_HDR", LIME_PACKET_F_VNET_HDR);
  export_uint32(env, exports, "LIME_TAP_MODE_PLAIN", LIME_TAP_MODE_PLAIN);
  export_uint32(env, exports, "LIME_TAP_MODE_VNET", LIME_TAP_MODE_VNET);

  export_function(env, exports, "lime_tap_open", lime_tap_open);
  export_function(env, exports, "lime_tap_set_mtu", lime_tap_set_mtu);
  export_function(env, exports, "lime_tap_set_txqlen", lime_tap_set_txqlen);
  export_function(env, exports, "lime_tap_set_mac", lime_tap_set_mac);
  export_function(env, exports, "lime_tap_get_mac", lime_tap_get_mac);
  export_function(env, exports, "lime_tap_set_up", lime_tap_set_up);
  export_function(env, exports, "lime_tap_errname", lime_tap_errname);
  export_function(env, exports, "lime_tap_now", lime_tap_now);
  export_function(env, exports, "lime_peer_uid", lime_peer_uid);
  export_function(env, exports, "lime_tap_init", lime_tap_init);
  export_function(env, exports, "lime_tap_init_mode", lime_tap_init_mode);
  export_function(env, exports, "lime_tap_start", lime_tap_start);
  export_function(env, exports, "lime_tap_stop", lime_tap_stop);
  export_function(env, exports, "lime_tap_close", lime_tap_close);
  export_function(env, exports, "lime_tap_write_batch", lime_tap_write_batch);
  export_function(env, exports, "lime_raw_open_rx", lime_raw_open_rx);
  export_function(env, exports, "lime_raw_open_tx", lime_raw_open_tx);
  export_function(env, exports, "lime_packet_open", lime_packet_open);
  export_function(env, exports, "lime_if_info", lime_if_info);
  export_function(env, exports, "lime_if_set_offloads", lime_if_set_offloads);
  export_function(env, exports, "lime_extract_key", lime_extract_key);
  export_function(env, exports, "lime_fc_new", lime_fc_new_js);
  export_function(env, exports, "lime_fc_insert", lime_fc_insert_js);
  export_function(env, exports, "lime_fc_lookup", lime_fc_lookup_js);
  export_function(env, exports, "lime_fc_invalidate", lime_fc_invalidate_js);
  export_function(env, exports, "lime_fc_counters", lime_fc_counters_js);
  export_function(env, exports, "lime_fc_stress_start", lime_fc_stress_start_js);
  export_function(env, exports, "lime_fc_stress_stop", lime_fc_stress_stop_js);
  export_function(env, exports, "lime_fc_stress_program", lime_fc_stress_program_js);
  export_uint32(env, exports, "LIME_FC_PROG_MAX", LIME_FC_PROG_MAX);
  export_function(env, exports, "lime_engine_new", lime_engine_new_js);
  export_function(env, exports, "lime_engine_add_port", lime_engine_add_port_js);
  export_function(env, exports, "lime_engine_start", lime_engine_start_js);
  export_function(env, exports, "lime_engine_close", lime_engine_close_js);
  export_function(env, exports, "lime_engine_stats", lime_engine_stats_js);
  export_function(env, exports, "lime_engine_attach_tap", lime_engine_attach_tap_js);
  export_function(env, exports, "lime_engine_attach_gre", lime_engine_attach_gre_js);
  export_function(env, exports, "lime_engine_detach", lime_engine_detach_js);
  export_function(env, exports, "lime_engine_stop", lime_engine_stop_js);
  export_function(env, exports, "lime_engine_set_slow", lime_engine_set_slow_js);
  export_function(env, exports, "lime_engine_port_stats", lime_engine_port_stats_js);
  export_function(env, exports, "lime_engine_load", lime_engine_load_js);
  export_function(env, exports, "lime_fc_harvest", lime_fc_harvest_js);
  export_function(env, exports, "lime_fc_usage", lime_fc_usage_js);
  export_uint32(env, exports, "LIME_FC_RETIRE_ALL", LIME_FC_RETIRE_ALL);
  export_uint32(env, exports, "LIME_FC_RETIRE_IDLE", LIME_FC_RETIRE_IDLE);
  export_uint32(env, exports, "LIME_ENGINE_MAX_PORTS", LIME_ENGINE_MAX_PORTS);
  export_uint32(env, exports, "LIME_OP_LEARN", LIME_OP_LEARN);
  export_function(env, exports, "lime_test_socketpair", lime_test_socketpair);
  export_function(env, exports, "lime_test_fd_write", lime_test_fd_write);
  export_function(env, exports, "lime_test_fd_read", lime_test_fd_read);
  export_function(env, exports, "lime_test_fd_close", lime_test_fd_close);
  export_uint32(env, exports, "LIME_KEY_WORDS", LIME_KEY_WORDS);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
