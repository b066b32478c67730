/*
 * The native forwarding engine: a thread of its own, outside Node's event loop, that
 * owns a set of frame fds (one whole Ethernet frame per read and per write), computes each
 * frame's key (extract.h), looks it up in the flow cache (flowcache.h) and runs hits
 * itself; every other frame — a miss, or a program with an op the engine does not run —
 * goes to the JavaScript thread through a bounded single-producer ring and a uv_async
 * wake-up, to be translated and forwarded there (the slow path). This is the third part
 * of the native fast path; the daemon does not use it yet.
 *
 * Ops run natively so far: OUTPUT (write the frame to that port's fd) and DROP. The
 * program layout is xlate.ts's: [length, nRules, rule ids…, ops…].
 *
 * Ports are added before start; the engine stops (and joins its thread) before anything
 * about its ports changes.
 */
#ifndef LIME_ENGINE_H
#define LIME_ENGINE_H

#include <stdint.h>
#include <uv.h>

#include "flowcache.h"

#define LIME_ENGINE_MAX_PORTS 64
/* Frames waiting for the JavaScript thread; more are dropped and counted. */
#define LIME_ENGINE_RING 256
/* Largest frame the engine reads (a 9000-byte MTU with tags fits). */
#define LIME_ENGINE_FRAME_MAX 9216

typedef struct lime_engine lime_engine_t;

/* Called on the loop's thread for each frame the engine hands over. */
typedef void (*lime_engine_miss_cb) (void *arg, uint32_t port, const uint8_t *frame, uint32_t len);

typedef struct {
  uint64_t rx; /* frames read */
  uint64_t hits; /* frames run natively */
  uint64_t upcalls; /* frames handed to the JavaScript thread */
  uint64_t upcall_drops; /* frames dropped: the ring was full */
  uint64_t tx; /* frames written */
  uint64_t tx_errors; /* writes that failed, or to a port the engine does not have */
} lime_engine_stats_t;

lime_engine_t *lime_engine_new (lime_fc_t *fc, uv_loop_t *loop, lime_engine_miss_cb cb, void *arg);
/* Before start: port numbers 1 .. LIME_ENGINE_MAX_PORTS-1; 0 on success, else -errno. */
int lime_engine_add_port (lime_engine_t *e, uint32_t port, int fd);
/* Start the thread (once); 0 or -errno. */
int lime_engine_start (lime_engine_t *e);
/* Stop and join the thread, deliver what is still in the ring; idempotent. */
void lime_engine_stop (lime_engine_t *e);
/* Free (stops first); the uv_async handle is closed and freed on the loop. */
void lime_engine_free (lime_engine_t *e);
void lime_engine_stats (lime_engine_t *e, lime_engine_stats_t *out);

#endif
