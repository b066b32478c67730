/*
 * The native forwarding engine: a thread of its own, outside Node's event loop, that
 * owns a set of ports' receive fds, computes each frame's key (extract.h), looks it up in
 * the flow cache (flowcache.h) and runs hits itself; every other frame — a miss, a program
 * with an op the engine does not run, a frame from a port set "slow", a GRE packet the
 * engine does not accept as its tunnel's — goes to the JavaScript thread through a bounded
 * single-producer ring and a uv_async wake-up, as it was read, to be handled there (the
 * slow path). The daemon runs it with `fast_path: native` (src/daemon/fast-path.ts).
 *
 * Port kinds:
 *   - frame ports (a TAP device): one whole Ethernet frame per read and per write;
 *   - GRE ports: a raw IPv4 socket for protocol 47 to read (IPv4 header included) and an
 *     IPPROTO_RAW socket connected to the remote to send. The engine takes a packet as the
 *     tunnel's only when everything is plain: IPv4 without options or fragmentation, from
 *     the remote, GRE version 0 without checksum, routing or sequence bits, protocol
 *     0x6558, and the tunnel's key (or none when it has none). Anything else goes to
 *     JavaScript, which validates it again and counts the drop by reason — unless another
 *     GRE port of the engine takes it (every raw socket sees every GRE packet). On send it
 *     writes the tunnel's outer IPv4 + GRE header (built by JavaScript, DF set) with its
 *     own IPv4 id and checksum; a frame larger than the tunnel's `max_frame` is not sent
 *     by the engine: the frame goes to JavaScript, which drops it and answers ICMP.
 *
 * I/O: per wake-up a port is drained into a slab of frame slots — a GRE socket with one
 * recvmmsg, a TAP device frame by frame (under light load one frame, then back to epoll,
 * without the read that would find the device empty) — and the tunnel packets built for
 * that drain leave together, one sendmmsg per tunnel.
 *
 * Ops run natively: OUTPUT (to a port of the engine that is not slow) and LEARN (a no-op
 * here: it tells the daemon's harvest which MAC entry the flow keeps alive). The program
 * layout is xlate.ts's: [length, nRules, rule ids…, ops…].
 *
 * Order: a frame handed to JavaScript counts against its flow (hashed, TCP flags left
 * out) until JavaScript has forwarded it; a hit of that flow meanwhile waits for it, up
 * to 2 ms (then nobody waits for 10 ms), so a flow's first frames are not overtaken by
 * the ones the engine runs once its program is installed.
 *
 * Ports are added and removed while the thread is stopped (stop, change, start again).
 * Read errors other than EAGAIN (the device was deleted) take the port off the thread's
 * epoll and reach JavaScript as an upcall with that errno.
 */
#ifndef LIME_ENGINE_H
#define LIME_ENGINE_H

#include <stdint.h>
#include <uv.h>

#include "flowcache.h"

#define LIME_ENGINE_MAX_PORTS 64
/* Frames waiting for the JavaScript thread; when full the engine waits (up to 10 ms), then drops and counts. */
#define LIME_ENGINE_RING 256
/* Largest frame (or GRE packet) the engine reads (a 9000-byte MTU with tags fits). */
#define LIME_ENGINE_FRAME_MAX 9216
/* Longest outer header of a GRE port (IPv4 20 + GRE with key 8). */
#define LIME_ENGINE_GRE_HDR_MAX 28

/* Engine program ops (xlate.ts OP; LEARN is the engine's own, native-program.ts). */
#define LIME_OP_OUTPUT 1
#define LIME_OP_LEARN 15

typedef struct lime_engine lime_engine_t;

/*
 * Called on the loop's thread for each frame the engine hands over (err = 0), or with
 * frame NULL and err > 0 when reading `port` failed (the port is off the thread's epoll);
 * `done` once after each run of such calls.
 */
typedef void (*lime_engine_miss_cb) (void *arg, uint32_t port, const uint8_t *frame, uint32_t len, int err);
typedef void (*lime_engine_done_cb) (void *arg);

typedef struct {
  uint64_t rx; /* frames read */
  uint64_t hits; /* frames run natively */
  uint64_t upcalls; /* frames handed to the JavaScript thread */
  uint64_t upcall_drops; /* frames dropped: the ring stayed full for 10 ms */
  uint64_t tx; /* frames written */
  uint64_t tx_errors; /* writes that failed */
  uint64_t foreign; /* GRE packets left to another GRE port of the engine */
} lime_engine_stats_t;

/* What a port's native traffic adds to its counters. */
typedef struct {
  uint64_t rx_packets, rx_bytes; /* frames received and run natively (inner frames for GRE) */
  uint64_t tx_packets, tx_bytes; /* frames sent natively (inner frame bytes) */
  uint64_t tx_errors; /* native sends that failed */
  uint64_t upcalls; /* frames handed to JavaScript */
  uint64_t rx_too_long; /* frames that filled the read buffer (possibly cut): dropped */
} lime_engine_port_stats_t;

typedef struct {
  uint32_t remote; /* host order */
  int has_key;
  uint32_t key;
  uint8_t hdr[LIME_ENGINE_GRE_HDR_MAX]; /* outer IPv4 + GRE; length, id, checksum written per packet */
  uint32_t hdr_len; /* 24 or 28 */
  uint32_t max_frame; /* largest inner frame sent (fits the path without fragmenting, and the MTU) */
} lime_engine_gre_t;

lime_engine_t *lime_engine_new (lime_fc_t *fc, uv_loop_t *loop, lime_engine_miss_cb cb, lime_engine_done_cb done, void *arg);
/*
 * While stopped: port numbers 1 .. LIME_ENGINE_MAX_PORTS-1, and the largest frame the
 * engine sends to the port itself (the port's MTU with Ethernet header and tags, as the
 * JavaScript executor's check; a tunnel's: what fits the path); 0 on success, else -errno.
 */
int lime_engine_add_port (lime_engine_t *e, uint32_t port, int fd, uint32_t max_frame);
int lime_engine_add_gre (lime_engine_t *e, uint32_t port, int rx_fd, int tx_fd, const lime_engine_gre_t *gre);
int lime_engine_remove_port (lime_engine_t *e, uint32_t port);
/* Any time: every frame from `port` goes to JavaScript, and no program outputs to it natively. */
void lime_engine_set_slow (lime_engine_t *e, uint32_t port, int slow);
/* Start the thread; 0 or -errno (-EALREADY when running). */
int lime_engine_start (lime_engine_t *e);
/* Stop and join the thread, deliver what is still in the ring; idempotent. */
void lime_engine_stop (lime_engine_t *e);
int lime_engine_running (const lime_engine_t *e);
/* How loaded the engine is (any thread may ask), cumulative over all its runs. */
typedef struct {
  uint64_t cpu_ns;      /* CPU time its thread used */
  uint64_t full_drains; /* reads that filled a whole batch: frames were left waiting */
} lime_engine_load_t;
void lime_engine_load (lime_engine_t *e, lime_engine_load_t *out);
/* Free (stops first); the uv_async handle is closed and freed on the loop. */
void lime_engine_free (lime_engine_t *e);
void lime_engine_stats (lime_engine_t *e, lime_engine_stats_t *out);
/* 0, or -EINVAL for a port the engine does not have. */
int lime_engine_port_stats (lime_engine_t *e, uint32_t port, lime_engine_port_stats_t *out);

#endif
