/*
 * The native forwarding engine (see engine.h).
 */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* xlate.ts OP */
#define OP_OUTPUT 1
#define OP_DROP 7

typedef struct {
  uint32_t port;
  uint32_t len;
  uint8_t data[LIME_ENGINE_FRAME_MAX];
} slot_t;

struct lime_engine {
  lime_fc_t *fc;
  uv_loop_t *loop;
  uv_async_t *async; /* heap: closed (and freed) on the loop, maybe after the engine */
  lime_engine_miss_cb cb;
  void *arg;
  int fds[LIME_ENGINE_MAX_PORTS]; /* -1: no such port */
  int epfd;
  int stopfd; /* eventfd: wakes the thread to stop */
  pthread_t thread;
  int started;
  int stopped;
  /* The ring: the engine thread produces at head, the loop consumes at tail. */
  slot_t *ring;
  _Atomic uint32_t head;
  _Atomic uint32_t tail;
  /* Counters: written by the engine thread, read anywhere (relaxed). */
  _Atomic uint64_t rx, hits, upcalls, upcall_drops, tx, tx_errors;
};

static void
count (_Atomic uint64_t *c) {
  atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* Hand a frame to the loop's thread. */
static void
upcall (lime_engine_t *e, uint32_t port, const uint8_t *frame, uint32_t len) {
  uint32_t head = atomic_load_explicit(&e->head, memory_order_relaxed);
  uint32_t tail = atomic_load_explicit(&e->tail, memory_order_acquire);
  slot_t *s;
  if (head - tail >= LIME_ENGINE_RING) {
    count(&e->upcall_drops);
    return;
  }
  s = &e->ring[head % LIME_ENGINE_RING];
  s->port = port;
  s->len = len;
  memcpy(s->data, frame, len);
  atomic_store_explicit(&e->head, head + 1, memory_order_release);
  count(&e->upcalls);
  uv_async_send(e->async);
}

/*
 * Run a cached program: 1 when the engine did all of it, 0 when it holds an op the engine
 * does not run (the frame then goes to the JavaScript thread, which runs all of it).
 */
static int
run (lime_engine_t *e, const uint32_t *prog, uint32_t len, const uint8_t *frame, uint32_t frame_len) {
  uint32_t i;
  if (len < 2 || prog[0] != len || 2 + prog[1] > len) return 0;
  /* First check every op is one we run, so that nothing is half done. */
  for (i = 2 + prog[1]; i < len;) {
    if (prog[i] == OP_OUTPUT || prog[i] == OP_DROP) i += 2;
    else return 0;
  }
  if (i != len) return 0;
  for (i = 2 + prog[1]; i < len; i += 2) {
    if (prog[i] == OP_OUTPUT) {
      uint32_t port = prog[i + 1];
      int fd = port < LIME_ENGINE_MAX_PORTS ? e->fds[port] : -1;
      if (fd < 0 || write(fd, frame, frame_len) != (ssize_t) frame_len) count(&e->tx_errors);
      else count(&e->tx);
    }
  }
  return 1;
}

static void *
engine_thread (void *arg) {
  lime_engine_t *e = arg;
  static _Thread_local uint8_t frame[LIME_ENGINE_FRAME_MAX];
  uint32_t key[LIME_KEY_WORDS], prog[LIME_FC_PROG_MAX];
  struct epoll_event evs[16];
  for (;;) {
    int n = epoll_wait(e->epfd, evs, 16, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < n; i++) {
      uint32_t port = evs[i].data.u32;
      if (port == 0) return NULL; /* the stop eventfd */
      /* Drain up to a batch per port and wake-up, then let the others have their turn. */
      for (int j = 0; j < 64; j++) {
        ssize_t r = read(e->fds[port], frame, sizeof(frame));
        uint32_t len;
        if (r <= 0) break;
        count(&e->rx);
        if (lime_extract(frame, (size_t) r, key, port) != LIME_DROP_NONE) {
          upcall(e, port, frame, (uint32_t) r); /* JavaScript counts the drop by reason */
          continue;
        }
        len = lime_fc_lookup(e->fc, key, prog, (uint32_t) r);
        if (len != 0 && run(e, prog, len, frame, (uint32_t) r)) count(&e->hits);
        else upcall(e, port, frame, (uint32_t) r);
      }
    }
  }
  return NULL;
}

/* On the loop: everything the engine handed over. */
static void
on_async (uv_async_t *async) {
  lime_engine_t *e = async->data;
  if (e == NULL) return;
  for (;;) {
    uint32_t tail = atomic_load_explicit(&e->tail, memory_order_relaxed);
    uint32_t head = atomic_load_explicit(&e->head, memory_order_acquire);
    slot_t *s;
    if (tail == head) return;
    s = &e->ring[tail % LIME_ENGINE_RING];
    e->cb(e->arg, s->port, s->data, s->len);
    atomic_store_explicit(&e->tail, tail + 1, memory_order_release);
  }
}

static void
on_async_closed (uv_handle_t *h) {
  free(h);
}

lime_engine_t *
lime_engine_new (lime_fc_t *fc, uv_loop_t *loop, lime_engine_miss_cb cb, void *arg) {
  lime_engine_t *e = calloc(1, sizeof(*e));
  struct epoll_event ev = { .events = EPOLLIN };
  if (e == NULL) return NULL;
  e->ring = calloc(LIME_ENGINE_RING, sizeof(slot_t));
  e->async = calloc(1, sizeof(uv_async_t));
  e->epfd = epoll_create1(EPOLL_CLOEXEC);
  e->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (e->ring == NULL || e->async == NULL || e->epfd < 0 || e->stopfd < 0 || uv_async_init(loop, e->async, on_async) != 0) {
    if (e->epfd >= 0) close(e->epfd);
    if (e->stopfd >= 0) close(e->stopfd);
    free(e->async);
    free(e->ring);
    free(e);
    return NULL;
  }
  e->async->data = e;
  uv_unref((uv_handle_t *) e->async); /* the engine never keeps the process alive */
  ev.data.u32 = 0;
  epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->stopfd, &ev);
  for (int i = 0; i < LIME_ENGINE_MAX_PORTS; i++) e->fds[i] = -1;
  e->fc = fc;
  e->loop = loop;
  e->cb = cb;
  e->arg = arg;
  return e;
}

int
lime_engine_add_port (lime_engine_t *e, uint32_t port, int fd) {
  struct epoll_event ev = { .events = EPOLLIN };
  if (e->started) return -EBUSY;
  if (port == 0 || port >= LIME_ENGINE_MAX_PORTS || fd < 0) return -EINVAL;
  if (e->fds[port] >= 0) return -EEXIST;
  /* Non-blocking: the thread drains a port until EAGAIN and must never block in a read. */
  {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
  }
  ev.data.u32 = port;
  if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) return -errno;
  e->fds[port] = fd;
  return 0;
}

int
lime_engine_start (lime_engine_t *e) {
  int err;
  if (e->started) return -EALREADY;
  err = pthread_create(&e->thread, NULL, engine_thread, e);
  if (err != 0) return -err;
  e->started = 1;
  return 0;
}

void
lime_engine_stop (lime_engine_t *e) {
  uint64_t one = 1;
  if (!e->started || e->stopped) return;
  e->stopped = 1;
  (void) !write(e->stopfd, &one, sizeof(one));
  pthread_join(e->thread, NULL);
  on_async(e->async); /* what is left in the ring */
}

void
lime_engine_free (lime_engine_t *e) {
  if (e == NULL) return;
  lime_engine_stop(e);
  e->async->data = NULL;
  uv_close((uv_handle_t *) e->async, on_async_closed);
  close(e->epfd);
  close(e->stopfd);
  free(e->ring);
  free(e);
}

void
lime_engine_stats (lime_engine_t *e, lime_engine_stats_t *out) {
  out->rx = atomic_load_explicit(&e->rx, memory_order_relaxed);
  out->hits = atomic_load_explicit(&e->hits, memory_order_relaxed);
  out->upcalls = atomic_load_explicit(&e->upcalls, memory_order_relaxed);
  out->upcall_drops = atomic_load_explicit(&e->upcall_drops, memory_order_relaxed);
  out->tx = atomic_load_explicit(&e->tx, memory_order_relaxed);
  out->tx_errors = atomic_load_explicit(&e->tx_errors, memory_order_relaxed);
}
