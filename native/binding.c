/*
 * binding.c: N-API glue for lime's TAP ports (exports lime_tap_*).
 *
 * Thin by design (STYLE.md principle 8, after udx-native's binding.c): the syscalls are
 * in tap.c; this file moves frames between the fd and memory that JS owns, and turns
 * errors into JS Errors. Nothing here parses a frame or makes a decision about one.
 *
 * Memory: JS allocates everything.
 *   - The handle: Buffer.alloc(sizeof_lime_tap) holds struct lime_tap (the uv_poll_t,
 *     the fd, napi refs and the counters). Counters are doubles at the exported
 *     offsetof_lime_tap_* so JS reads them through a Float64Array over the handle
 *     without a call.
 *   - The receive slab and its start/len columns (FrameBatch), handed over once in
 *     lime_tap_start and kept alive by napi refs while polling.
 *   - The send slab and columns, passed on every lime_tap_write_batch call.
 *
 * Receive: uv_poll on the fd; on readable, read up to max_batch frames into slots
 * (slot i at i * slot_size + headroom), then call onBatch(n) once for the drain. While
 * a drain fills a whole batch, drain again, up to LIME_TAP_DRAIN_ROUNDS times, then
 * yield to the loop. A read error that means the device is gone stops polling and calls
 * onBatch(-errno) once.
 *
 * Lifetime: while the poll handle is open (from lime_tap_start until uv_close's
 * callback) the handle Buffer is held by a strong ref, so the uv_poll_t inside it
 * cannot be collected under libuv even if JS drops the port right after closing it; an
 * async env cleanup hook closes the poll handle and the fd if the env (a worker, say)
 * is torn down while polling, and keeps the addon loaded until the close completes.
 *
 * virtio-net headers (later): with LIME_TAP_F_VNET_HDR (tap.h) the reader will read
 * each frame's struct virtio_net_hdr into an extra per-frame column passed to
 * lime_tap_start / lime_tap_write_batch (one more typed array), so the frame slots and
 * the start/len columns keep their meaning.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

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

  int fd; /* -1 when closed */
  int state;
  int initialized;
  int teardown; /* the env is being torn down: no napi calls but the hook removal */
  napi_async_cleanup_hook_handle cleanup; /* registered from start until on_close */
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

/* ------------------------------------------------------------------ handle */

/* lime_tap_init(handle: Buffer, fd: number): bind a fresh handle to an open fd. */
static napi_value
lime_tap_init (napi_env env, napi_callback_info info) {
  ARGS(2)
  lime_tap_t *t = get_handle(env, argv[0]);
  int32_t fd = -1;
  if (t == NULL) return NULL;
  NAPI_CALL(env, napi_get_value_int32(env, argv[1], &fd));
  if (t->initialized) return throw_type(env, "lime_tap_init: handle already initialised");
  memset(t, 0, sizeof(*t));
  t->fd = fd;
  t->state = LIME_TAP_IDLE;
  t->initialized = 1;
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

static void
on_poll (uv_poll_t *poll, int status, int events) {
  lime_tap_t *t = (lime_tap_t *) poll->data;
  napi_env env = t->env;
  napi_handle_scope scope;
  napi_value cb;
  const uint32_t max = t->max_batch, slot = t->slot_size, headroom = t->headroom;
  const size_t cap = slot - headroom;
  int err = 0;
  (void) events;

  if (t->state != LIME_TAP_POLLING) return;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  if (napi_get_reference_value(env, t->cb_ref, &cb) != napi_ok || cb == NULL) goto out;

  if (status < 0) {
    /* POLLERR (libuv reports UV_EBADF): a read tells the real reason (EBADFD when the
     * TAP was deleted). */
    ssize_t r = lime_tap_sys_read(t->fd, t->slab + headroom, cap);
    err = (r < 0 && r != -EAGAIN) ? (int) -r : -status;
    goto down;
  }

  for (int round = 0; round < LIME_TAP_DRAIN_ROUNDS; round++) {
    uint32_t n = 0, reads = 0;
    int drained = 0;
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
    }
    if (n > 0) {
      t->rx_batches++;
      t->loop_time = (double) uv_now(t->poll.loop);
      call_on_batch(t, cb, (int32_t) n);
      if (t->state != LIME_TAP_POLLING) goto out; /* stopped or closed by onBatch */
    }
    if (err) goto down;
    if (drained) break;
  }
  goto out;

down:
  t->last_errno = err;
  call_on_batch(t, cb, -err);
  tap_stop(t);

out:
  napi_close_handle_scope(env, scope);
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

  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  err = uv_poll_init(loop, &t->poll, fd);
  if (err < 0) {
    char message[128];
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
 * lime_tap_write_batch(handle, fd, slab: Buffer, start: Uint32Array, len: Uint32Array, n)
 *   -> frames sent. One write(2) per frame (a TAP has no batch write), all in this call.
 * Never throws for a frame: failures are counted in the handle.
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

  for (uint32_t i = 0; i < n; i++) {
    const uint32_t off = start[i], size = len[i];
    ssize_t r;
    if ((uint64_t) off + size > slab_size || size == 0) {
      t->tx_error++;
      continue;
    }
    r = lime_tap_sys_write(fd, slab + off, size);
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
  export_uint32(env, exports, "LIME_TAP_F_VNET_HDR", LIME_TAP_F_VNET_HDR);

  export_function(env, exports, "lime_tap_open", lime_tap_open);
  export_function(env, exports, "lime_tap_set_mtu", lime_tap_set_mtu);
  export_function(env, exports, "lime_tap_set_mac", lime_tap_set_mac);
  export_function(env, exports, "lime_tap_get_mac", lime_tap_get_mac);
  export_function(env, exports, "lime_tap_set_up", lime_tap_set_up);
  export_function(env, exports, "lime_tap_errname", lime_tap_errname);
  export_function(env, exports, "lime_tap_now", lime_tap_now);
  export_function(env, exports, "lime_tap_init", lime_tap_init);
  export_function(env, exports, "lime_tap_start", lime_tap_start);
  export_function(env, exports, "lime_tap_stop", lime_tap_stop);
  export_function(env, exports, "lime_tap_close", lime_tap_close);
  export_function(env, exports, "lime_tap_write_batch", lime_tap_write_batch);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
