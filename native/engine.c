/*
 * The native forwarding engine (see engine.h).
 */
#include "engine.h"
#include "sock.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* Bytes in front of every frame read: room for the outer header of a GRE output. */
#define HEADROOM 64
/* Frames one port may read per wake-up before the others get their turn. */
#define DRAIN LIME_SOCK_MMSG_MAX
/* A full hand-over ring: wait up to 200 × 50 µs = 10 ms for JavaScript, then drop. */
#define FULL_RING_PAUSE_NS 50000
#define FULL_RING_PAUSES 200

enum { KIND_NONE = 0, KIND_FRAME = 1, KIND_GRE = 2 };

typedef struct {
  int kind;
  int rx_fd; /* -1 once a read failed (off the epoll) */
  int tx_fd;
  _Atomic int slow;
  uint32_t max_frame; /* largest frame sent to it natively; larger ones go to JavaScript */
  lime_engine_gre_t gre;
  uint16_t ip_id;
  uint32_t last_drain; /* frames the last wake-up read from it */
  /* GRE: outer packets built during this drain, sent together at its end (sendmmsg). */
  uint8_t *txq[DRAIN];
  uint32_t txl[DRAIN];
  uint32_t txn;
  _Atomic uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes, tx_errors, upcalls, rx_too_long;
} eport_t;

typedef struct {
  uint32_t port;
  uint32_t len;
  int err;
  int32_t flow; /* the frame's flow slot (flow_in_flight), or -1 (not parsed: not tracked) */
  uint8_t data[LIME_ENGINE_FRAME_MAX];
} slot_t;

/* Flows (hashed) with frames handed to JavaScript and not yet forwarded there. */
#define FLOW_SLOTS 1024
/* A hit whose flow has frames in JavaScript waits for them at most 100 x 20 us = 2 ms. */
#define ORDER_WAIT_PAUSE_NS 20000
#define ORDER_WAIT_PAUSES 100

struct lime_engine {
  lime_fc_t *fc;
  uv_loop_t *loop;
  uv_async_t *async; /* heap: closed (and freed) on the loop, maybe after the engine */
  lime_engine_miss_cb cb;
  lime_engine_done_cb done;
  void *arg;
  eport_t ports[LIME_ENGINE_MAX_PORTS];
  int epfd;
  int stopfd; /* eventfd: wakes the thread to stop */
  pthread_t thread;
  int running;
  /* CPU time of the engine's earlier runs (a run adds its own when its thread ends). */
  _Atomic uint64_t cpu_done_ns;
  /* Drains that filled the whole batch: frames were left waiting (the engine is behind). */
  _Atomic uint64_t full_drains;
  _Atomic int stopping; /* the loop's thread waits to join: no waiting for it to drain */
  /* The ring: the engine thread produces at head, the loop consumes at tail. */
  slot_t *ring;
  _Atomic uint32_t head;
  _Atomic uint32_t tail;
  /* Counters: written by the engine thread, read anywhere (relaxed). */
  _Atomic uint64_t rx, hits, upcalls, upcall_drops, tx, tx_errors, foreign;
  /* Frames per flow slot handed to JavaScript and not yet forwarded there. */
  _Atomic uint32_t flow_in_flight[FLOW_SLOTS];
  uint64_t no_wait_until; /* engine thread: no order waits before this (CLOCK_MONOTONIC ns) */
  /* Engine thread only: GRE ports with sends queued in this drain. */
  uint32_t pending[LIME_ENGINE_MAX_PORTS];
  uint32_t npending;
  uint32_t frame_gre_outputs; /* GRE outputs of the frame being run so far */
  uint8_t copy[HEADROOM + LIME_ENGINE_FRAME_MAX]; /* a second GRE output of one frame */
};

static inline void
add (_Atomic uint64_t *c, uint64_t n) {
  /* One writer (the engine thread): a plain load and store, no locked instruction. */
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}

/*
 * Hand a frame (or a read error) to the loop's thread. When the ring is full, wait a
 * little for JavaScript to take some (back-pressure: meanwhile frames queue in the
 * kernel, as they would in front of the JavaScript data path alone); drop and count only
 * when it stays full.
 */
static void
upcall (lime_engine_t *e, uint32_t port, const uint8_t *frame, uint32_t len, int err, int32_t flow) {
  uint32_t head = atomic_load_explicit(&e->head, memory_order_relaxed);
  uint32_t tail = atomic_load_explicit(&e->tail, memory_order_acquire);
  slot_t *s;
  for (int waited = 0; head - tail >= LIME_ENGINE_RING; waited++) {
    const struct timespec pause = { 0, FULL_RING_PAUSE_NS };
    if (waited == FULL_RING_PAUSES || atomic_load_explicit(&e->stopping, memory_order_relaxed)) {
      add(&e->upcall_drops, 1);
      return;
    }
    uv_async_send(e->async);
    nanosleep(&pause, NULL);
    tail = atomic_load_explicit(&e->tail, memory_order_acquire);
  }
  s = &e->ring[head % LIME_ENGINE_RING];
  s->port = port;
  s->len = len;
  s->err = err;
  if (len > 0) memcpy(s->data, frame, len);
  s->flow = err == 0 ? flow : -1;
  if (s->flow >= 0) atomic_fetch_add_explicit(&e->flow_in_flight[flow], 1, memory_order_relaxed);
  atomic_store_explicit(&e->head, head + 1, memory_order_release);
  add(&e->upcalls, 1);
  if (err == 0) add(&e->ports[port].upcalls, 1);
  uv_async_send(e->async);
}

static inline uint16_t
rd16 (const uint8_t *p) {
  return (uint16_t) ((p[0] << 8) | p[1]);
}

static inline uint32_t
rd32 (const uint8_t *p) {
  return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) | ((uint32_t) p[2] << 8) | p[3];
}

static inline void
wr16 (uint8_t *p, uint32_t v) {
  p[0] = (uint8_t) (v >> 8);
  p[1] = (uint8_t) v;
}

/* Whether GRE port p takes packets from src with this key (or none), as GrePort.accepts. */
static inline int
gre_accepts (const eport_t *p, uint32_t src, int has_key, uint32_t key) {
  if (p->kind != KIND_GRE || src != p->gre.remote) return 0;
  if (!p->gre.has_key) return !has_key;
  return has_key && key == p->gre.key;
}

/*
 * A GRE packet read on port `port`: 1 with the inner frame, its length and the key set when it is the
 * tunnel's and plain; 0 when it goes to JavaScript; -1 when another GRE port takes it.
 */
static int
gre_decap (lime_engine_t *e, uint32_t port, uint8_t *pkt, uint32_t len, uint8_t **inner, uint32_t *inner_len, uint32_t *key) {
  uint32_t ihl, src, flags, glen, k = 0;
  int has_key, plain;
  if (len < 20 + 4 || (pkt[0] >> 4) != 4) return 0;
  ihl = (uint32_t) (pkt[0] & 0x0f) << 2;
  if (ihl < 20 || len < ihl + 4) return 0;
  src = rd32(pkt + 12);
  flags = rd16(pkt + ihl);
  has_key = (flags & 0x2000) != 0;
  glen = 4 + ((flags & 0x8000) ? 4 : 0) + (has_key ? 4 : 0) + ((flags & 0x1000) ? 4 : 0);
  if (len < ihl + glen) return 0;
  if (has_key) k = rd32(pkt + ihl + ((flags & 0x8000) ? 8 : 4));
  if (!gre_accepts(&e->ports[port], src, has_key, k)) {
    for (uint32_t q = 1; q < LIME_ENGINE_MAX_PORTS; q++) {
      if (q != port && gre_accepts(&e->ports[q], src, has_key, k)) return -1;
    }
    return 0;
  }
  /* Plain: no IPv4 options or fragments, total length as read, GRE with at most K, v0, TEB. */
  plain = ihl == 20 && pkt[9] == 47 && rd16(pkt + 2) == len && (rd16(pkt + 6) & 0x3fff) == 0 &&
          (flags & ~0x2000u) == 0 && rd16(pkt + ihl + 2) == 0x6558 && len - ihl - glen >= 14;
  if (!plain) return 0;
  *inner = pkt + ihl + glen;
  *inner_len = len - ihl - glen;
  *key = k;
  return 1;
}

static uint16_t
ipv4_checksum (const uint8_t *h) {
  uint32_t sum = 0;
  for (int i = 0; i < 20; i += 2) sum += rd16(h + i);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t) ~sum;
}

static void
count_tx (lime_engine_t *e, eport_t *o, int ok, uint32_t len) {
  if (!ok) {
    add(&o->tx_errors, 1);
    add(&e->tx_errors, 1);
    return;
  }
  add(&o->tx_packets, 1);
  add(&o->tx_bytes, len);
  add(&e->tx, 1);
}

/* Write the tunnel's outer header in front of frame; returns where the outer packet starts. */
static uint8_t *
gre_encap (eport_t *o, uint8_t *frame, uint32_t len) {
  const uint32_t h = o->gre.hdr_len;
  uint8_t *s = frame - h;
  memcpy(s, o->gre.hdr, h);
  wr16(s + 2, h + len);
  wr16(s + 4, o->ip_id++);
  wr16(s + 10, 0);
  wr16(s + 10, ipv4_checksum(s));
  return s;
}

/*
 * Send `frame` (with HEADROOM free in front of it) on port o. A TAP frame is written now;
 * a GRE packet is built in place and queued for the end of the drain (one sendmmsg per
 * tunnel) — except a frame's second GRE output, which is built in a copy and sent now
 * (the first one's header sits in front of the frame until then).
 */
static void
output (lime_engine_t *e, uint32_t port, uint8_t *frame, uint32_t len) {
  eport_t *o = &e->ports[port];
  if (o->kind != KIND_GRE) {
    count_tx(e, o, write(o->tx_fd, frame, len) == (ssize_t) len, len);
    return;
  }
  if (e->frame_gre_outputs++ == 0 && o->txn < DRAIN) {
    if (o->txn == 0) e->pending[e->npending++] = port;
    o->txq[o->txn] = gre_encap(o, frame, len);
    o->txl[o->txn] = o->gre.hdr_len + len;
    o->txn++;
    return;
  }
  memcpy(e->copy + HEADROOM, frame, len);
  {
    uint8_t *s = gre_encap(o, e->copy + HEADROOM, len);
    count_tx(e, o, write(o->tx_fd, s, o->gre.hdr_len + len) == (ssize_t) (o->gre.hdr_len + len), len);
  }
}

/* End of a drain: every queued GRE packet, one sendmmsg per tunnel (a failed one is counted and skipped). */
static void
flush_tx (lime_engine_t *e) {
  for (uint32_t k = 0; k < e->npending; k++) {
    eport_t *o = &e->ports[e->pending[k]];
    const uint32_t h = o->gre.hdr_len;
    uint32_t i = 0;
    while (i < o->txn) {
      int r = lime_sock_sys_sendmmsg(o->tx_fd, o->txq + i, o->txl + i, (int) (o->txn - i), 0);
      if (r < 0) {
        count_tx(e, o, 0, 0);
        i++;
        continue;
      }
      for (int j = 0; j < r; j++) count_tx(e, o, 1, o->txl[i + (uint32_t) j] - h);
      i += (uint32_t) r;
    }
    o->txn = 0;
  }
  e->npending = 0;
}

/*
 * Run a cached program: 1 when the engine did all of it, 0 when it holds something the
 * engine does not do (the frame then goes to the JavaScript thread, which does all of it).
 */
static int
run (lime_engine_t *e, const uint32_t *prog, uint32_t len, uint8_t *frame, uint32_t frame_len) {
  uint32_t i;
  /* A program without ops (nothing sent) is not one native-program.ts makes: JavaScript's. */
  if (len < 2 || prog[0] != len || 2 + prog[1] >= len) return 0;
  /* First check every op is one we run, so that nothing is half done. */
  for (i = 2 + prog[1]; i < len;) {
    if (prog[i] == LIME_OP_OUTPUT && i + 1 < len) {
      uint32_t port = prog[i + 1];
      eport_t *o = port < LIME_ENGINE_MAX_PORTS ? &e->ports[port] : NULL;
      if (o == NULL || o->kind == KIND_NONE || atomic_load_explicit(&o->slow, memory_order_relaxed)) return 0;
      if (frame_len > o->max_frame) return 0; /* JavaScript drops it (and a tunnel answers ICMP) */
      i += 2;
    } else if (prog[i] == LIME_OP_LEARN) {
      i += 5;
    } else {
      return 0;
    }
  }
  if (i != len) return 0;
  e->frame_gre_outputs = 0;
  for (i = 2 + prog[1]; i < len;) {
    if (prog[i] == LIME_OP_OUTPUT) {
      output(e, prog[i + 1], frame, frame_len);
      i += 2;
    } else {
      i += 5;
    }
  }
  return 1;
}

static void
port_failed (lime_engine_t *e, uint32_t port, int err) {
  eport_t *p = &e->ports[port];
  if (p->rx_fd >= 0) epoll_ctl(e->epfd, EPOLL_CTL_DEL, p->rx_fd, NULL);
  p->rx_fd = -1;
  upcall(e, port, NULL, 0, err, -1);
}

static inline uint64_t
now_ns (void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t) t.tv_sec * 1000000000u + (uint64_t) t.tv_nsec;
}

/*
 * A flow's slot for ordering: the key without its TCP flags (a connection's segments with
 * other flags are other cache entries, but one stream) nor header offsets.
 */
static inline int32_t
flow_slot (const uint32_t *key) {
  static const uint8_t words[] = { LIME_K_IN_PORT, LIME_K_DL_DST_HI, LIME_K_DL_DST_LO, LIME_K_DL_SRC_HI, LIME_K_DL_SRC_LO, LIME_K_DL_TYPE,
                                   LIME_K_VLAN_TCI, LIME_K_NW_SRC, LIME_K_NW_DST, LIME_K_NW_PROTO, LIME_K_TP_SRC, LIME_K_TP_DST, LIME_K_TUN_ID };
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < sizeof(words); i++) {
    h ^= key[words[i]];
    h *= 16777619u;
  }
  h ^= h >> 15;
  return (int32_t) (h & (FLOW_SLOTS - 1));
}

/* One frame (or GRE packet) read from `port` at buf (HEADROOM free in front of it). */
static void
handle (lime_engine_t *e, uint32_t port, uint8_t *buf, uint32_t r) {
  eport_t *p = &e->ports[port];
  uint32_t key[LIME_KEY_WORDS], prog[LIME_FC_PROG_MAX];
  uint8_t *frame = buf;
  uint32_t len = r, plen, tun = 0, slot = 0;
  int32_t flow;
  int ran;
  if (r >= LIME_ENGINE_FRAME_MAX) { /* filled the buffer: possibly cut by the kernel, dropped */
    add(&p->rx_too_long, 1);
    return;
  }
  add(&e->rx, 1);
  if (atomic_load_explicit(&p->slow, memory_order_relaxed)) {
    upcall(e, port, buf, r, 0, -1);
    return;
  }
  if (p->kind == KIND_GRE) {
    int d = gre_decap(e, port, buf, r, &frame, &len, &tun);
    if (d < 0) {
      add(&e->foreign, 1);
      return;
    }
    if (d == 0) {
      upcall(e, port, buf, r, 0, -1);
      return;
    }
  }
  if (lime_extract(frame, len, key, port) != LIME_DROP_NONE) {
    upcall(e, port, buf, r, 0, -1); /* JavaScript counts the drop by reason */
    return;
  }
  if (p->kind == KIND_GRE) key[LIME_K_TUN_ID] = tun;
  flow = flow_slot(key);
  /* The cache's reader section spans the run, so that the entry's counters are only
   * added to while the entry cannot have been reused. */
  lime_fc_reader_enter(e->fc);
  plen = lime_fc_find(e->fc, key, prog, &slot);
  if (plen != 0 && atomic_load_explicit(&e->flow_in_flight[flow], memory_order_acquire) != 0 && now_ns() >= e->no_wait_until) {
    /* A hit, but earlier frames of this flow are in JavaScript (its first ones, while
     * its program was installed): running it now would overtake them. Wait — outside the
     * reader section, briefly, and without handing this frame over too, which under load
     * would keep a busy flow on the slow path. (A miss goes to JavaScript behind them
     * anyway: it never waits.) When a wait runs out (JavaScript is held up), nobody
     * waits for 10 ms: order gives way to forwarding. */
    int waited = 0;
    lime_fc_reader_exit(e->fc);
    while (atomic_load_explicit(&e->flow_in_flight[flow], memory_order_acquire) != 0 && !atomic_load_explicit(&e->stopping, memory_order_relaxed)) {
      const struct timespec pause = { 0, ORDER_WAIT_PAUSE_NS };
      if (waited++ == ORDER_WAIT_PAUSES) {
        e->no_wait_until = now_ns() + 10000000u;
        break;
      }
      nanosleep(&pause, NULL);
    }
    lime_fc_reader_enter(e->fc);
    plen = lime_fc_find(e->fc, key, prog, &slot); /* the entry may have gone meanwhile */
  }
  ran = plen != 0 && run(e, prog, plen, frame, len);
  if (ran) lime_fc_count(e->fc, slot, len);
  lime_fc_reader_exit(e->fc);
  if (ran) {
    add(&e->hits, 1);
    add(&p->rx_packets, 1);
    add(&p->rx_bytes, len);
  } else {
    upcall(e, port, buf, r, 0, flow);
  }
}

/*
 * Read up to a drain from `port` into the slots: a GRE socket in one recvmmsg, a TAP
 * device frame by frame (it has no batch read), or only one frame when `one`.
 */
static uint32_t
drain (lime_engine_t *e, uint32_t port, uint8_t *const *at, uint32_t *lens, int one) {
  eport_t *p = &e->ports[port];
  uint32_t n = 0;
  if (p->kind == KIND_GRE) {
    int r = lime_sock_sys_recvmmsg(p->rx_fd, at, LIME_ENGINE_FRAME_MAX, lens, DRAIN);
    if (r == -EAGAIN || r == -EWOULDBLOCK) return 0;
    if (r < 0) {
      port_failed(e, port, -r);
      return 0;
    }
    return (uint32_t) r;
  }
  while (n < DRAIN) {
    ssize_t r = read(p->rx_fd, at[n], LIME_ENGINE_FRAME_MAX);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) port_failed(e, port, errno);
      break;
    }
    if (r == 0) continue;
    lens[n++] = (uint32_t) r;
    if (one) break;
  }
  return n;
}

static void *
engine_run (lime_engine_t *e) {
  uint8_t *slab = malloc((size_t) DRAIN * (HEADROOM + LIME_ENGINE_FRAME_MAX));
  uint8_t *at[DRAIN];
  uint32_t lens[DRAIN];
  struct epoll_event evs[16];
  if (slab == NULL) return NULL;
  for (int i = 0; i < DRAIN; i++) at[i] = slab + (size_t) i * (HEADROOM + LIME_ENGINE_FRAME_MAX) + HEADROOM;
  for (;;) {
    int n = epoll_wait(e->epfd, evs, 16, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < n; i++) {
      uint32_t port = evs[i].data.u32, got, total;
      if (port == 0) { /* the stop eventfd */
        free(slab);
        return NULL;
      }
      if (e->ports[port].rx_fd < 0) continue;
      /* Under light load (the last wake-up found one frame) a TAP frame is sent on before
       * the read that finds the device empty (or more frames: a second round drains them,
       * so a busy port leaves this mode at once). */
      total = 0;
      for (int round = 0; round < 2; round++) {
        const int one = round == 0 && e->ports[port].kind != KIND_GRE && e->ports[port].last_drain <= 1;
        got = drain(e, port, at, lens, one);
        if (got == DRAIN) atomic_fetch_add_explicit(&e->full_drains, 1, memory_order_relaxed);
        for (uint32_t j = 0; j < got; j++) handle(e, port, at[j], lens[j]);
        flush_tx(e);
        total += got;
        if (!one || got == 0 || e->ports[port].rx_fd < 0) break;
      }
      e->ports[port].last_drain = total;
    }
  }
  free(slab);
  return NULL;
}

/* The thread: the engine's loop, then its CPU time into cpu_done_ns (lime_engine_load). */
static void *
engine_thread (void *arg) {
  lime_engine_t *e = arg;
  struct timespec ts;
  engine_run(e);
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0) {
    atomic_fetch_add(&e->cpu_done_ns, (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec);
  }
  return NULL;
}

void
lime_engine_load (lime_engine_t *e, lime_engine_load_t *out) {
  uint64_t done = atomic_load(&e->cpu_done_ns);
  clockid_t cid;
  struct timespec ts;
  /* A running thread's own clock; once it has ended, what it added to cpu_done_ns. */
  out->cpu_ns = done;
  if (e->running && pthread_getcpuclockid(e->thread, &cid) == 0 && clock_gettime(cid, &ts) == 0) {
    out->cpu_ns = done + (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
  }
  out->full_drains = atomic_load_explicit(&e->full_drains, memory_order_relaxed);
}


/*
 * After frames were handed over: deliver the last batch (done), then — only now have
 * they been forwarded — let their flows' hits run natively again.
 */
static void
release_taken (lime_engine_t *e, const int32_t *flows, uint32_t nflows) {
  if (e->done != NULL) e->done(e->arg);
  for (uint32_t i = 0; i < nflows; i++) atomic_fetch_sub_explicit(&e->flow_in_flight[flows[i]], 1, memory_order_release);
}

/* On the loop: everything the engine handed over. */
static void
on_async (uv_async_t *async) {
  lime_engine_t *e = async->data;
  int32_t flows[LIME_ENGINE_RING];
  uint32_t nflows = 0;
  int any = 0;
  if (e == NULL) return;
  for (;;) {
    uint32_t tail = atomic_load_explicit(&e->tail, memory_order_relaxed);
    uint32_t head = atomic_load_explicit(&e->head, memory_order_acquire);
    slot_t *s;
    if (tail == head) break;
    s = &e->ring[tail % LIME_ENGINE_RING];
    e->cb(e->arg, s->port, s->err != 0 ? NULL : s->data, s->len, s->err);
    if (s->flow >= 0) flows[nflows++] = s->flow;
    any = 1;
    atomic_store_explicit(&e->tail, tail + 1, memory_order_release);
    if (nflows == LIME_ENGINE_RING) { /* the engine keeps producing: settle what is taken so far */
      release_taken(e, flows, nflows);
      nflows = 0;
      any = 0;
    }
  }
  if (any) release_taken(e, flows, nflows);
}

static void
on_async_closed (uv_handle_t *h) {
  free(h);
}

lime_engine_t *
lime_engine_new (lime_fc_t *fc, uv_loop_t *loop, lime_engine_miss_cb cb, lime_engine_done_cb done, void *arg) {
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
  for (int i = 0; i < LIME_ENGINE_MAX_PORTS; i++) e->ports[i].rx_fd = e->ports[i].tx_fd = -1;
  e->fc = fc;
  e->loop = loop;
  e->cb = cb;
  e->done = done;
  e->arg = arg;
  return e;
}

static int
add_port (lime_engine_t *e, uint32_t port, int kind, int rx_fd, int tx_fd, uint32_t max_frame) {
  struct epoll_event ev = { .events = EPOLLIN };
  eport_t *p;
  if (e->running) return -EBUSY;
  if (port == 0 || port >= LIME_ENGINE_MAX_PORTS || rx_fd < 0 || tx_fd < 0) return -EINVAL;
  p = &e->ports[port];
  if (p->kind != KIND_NONE) return -EEXIST;
  /* Non-blocking: the thread drains a port until EAGAIN and must never block in a read. */
  {
    int fl = fcntl(rx_fd, F_GETFL);
    if (fl < 0 || fcntl(rx_fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
  }
  ev.data.u32 = port;
  if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, rx_fd, &ev) < 0) return -errno;
  memset(p, 0, sizeof(*p));
  p->kind = kind;
  p->rx_fd = rx_fd;
  p->tx_fd = tx_fd;
  p->max_frame = max_frame;
  return 0;
}

int
lime_engine_add_port (lime_engine_t *e, uint32_t port, int fd, uint32_t max_frame) {
  return add_port(e, port, KIND_FRAME, fd, fd, max_frame);
}

int
lime_engine_add_gre (lime_engine_t *e, uint32_t port, int rx_fd, int tx_fd, const lime_engine_gre_t *gre) {
  int err;
  if (gre->hdr_len < 24 || gre->hdr_len > LIME_ENGINE_GRE_HDR_MAX || gre->max_frame < 14) return -EINVAL;
  err = add_port(e, port, KIND_GRE, rx_fd, tx_fd, gre->max_frame);
  if (err == 0) e->ports[port].gre = *gre;
  return err;
}

int
lime_engine_remove_port (lime_engine_t *e, uint32_t port) {
  eport_t *p;
  if (e->running) return -EBUSY;
  if (port == 0 || port >= LIME_ENGINE_MAX_PORTS || e->ports[port].kind == KIND_NONE) return -EINVAL;
  p = &e->ports[port];
  if (p->rx_fd >= 0) epoll_ctl(e->epfd, EPOLL_CTL_DEL, p->rx_fd, NULL);
  memset(p, 0, sizeof(*p));
  p->rx_fd = p->tx_fd = -1;
  return 0;
}

void
lime_engine_set_slow (lime_engine_t *e, uint32_t port, int slow) {
  if (port > 0 && port < LIME_ENGINE_MAX_PORTS) atomic_store_explicit(&e->ports[port].slow, slow != 0, memory_order_relaxed);
}

int
lime_engine_start (lime_engine_t *e) {
  int err;
  uint64_t v;
  if (e->running) return -EALREADY;
  while (read(e->stopfd, &v, sizeof(v)) > 0) { /* a stop request of an earlier run */ }
  err = pthread_create(&e->thread, NULL, engine_thread, e);
  if (err != 0) return -err;
  e->running = 1;
  return 0;
}

void
lime_engine_stop (lime_engine_t *e) {
  uint64_t one = 1;
  if (!e->running) return;
  e->running = 0;
  atomic_store(&e->stopping, 1);
  (void) !write(e->stopfd, &one, sizeof(one));
  pthread_join(e->thread, NULL);
  atomic_store(&e->stopping, 0);
  on_async(e->async); /* what is left in the ring */
}

int
lime_engine_running (const lime_engine_t *e) {
  return e->running;
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

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

void
lime_engine_stats (lime_engine_t *e, lime_engine_stats_t *out) {
  out->rx = LOAD(e->rx);
  out->hits = LOAD(e->hits);
  out->upcalls = LOAD(e->upcalls);
  out->upcall_drops = LOAD(e->upcall_drops);
  out->tx = LOAD(e->tx);
  out->tx_errors = LOAD(e->tx_errors);
  out->foreign = LOAD(e->foreign);
}

int
lime_engine_port_stats (lime_engine_t *e, uint32_t port, lime_engine_port_stats_t *out) {
  eport_t *p;
  if (port == 0 || port >= LIME_ENGINE_MAX_PORTS || e->ports[port].kind == KIND_NONE) return -EINVAL;
  p = &e->ports[port];
  out->rx_packets = LOAD(p->rx_packets);
  out->rx_bytes = LOAD(p->rx_bytes);
  out->tx_packets = LOAD(p->tx_packets);
  out->tx_bytes = LOAD(p->tx_bytes);
  out->tx_errors = LOAD(p->tx_errors);
  out->upcalls = LOAD(p->upcalls);
  out->rx_too_long = LOAD(p->rx_too_long);
  return 0;
}
