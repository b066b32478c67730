/*
 * The native flow cache: an exact-match cache from a frame's flow key (extract.h) to the
 * program its translation produced (the op format of src/datapath/xlate.ts), shared
 * between one writer (the JavaScript thread, which translates misses and installs their
 * programs) and readers on other threads (the native fast path to come, which runs hits
 * without entering JavaScript). The second part of that fast path, after extract.c.
 *
 * Layout and concurrency:
 *   - a power-of-two array of entries; a key may live in either of two slots chosen from
 *     its hash (as Open vSwitch's EMC), so two hot flows rarely evict each other;
 *   - every entry has a sequence lock: the writer makes it odd, writes, makes it even
 *     again; a reader copies what it needs and retries (or misses) when the sequence
 *     changed meanwhile or was odd, so a reader never uses a half-written entry and never
 *     blocks the writer;
 *   - an epoch, bumped by the writer whenever what the programs depend on changes (a
 *     flow-mod, the MAC table, a port): entries of an older epoch are misses;
 *   - per-entry packet and byte counters, added to by readers with atomic adds and read
 *     by the writer to credit rules and ports. Not yet exact across an overwrite: a reader
 *     that passed its sequence check just before the writer replaced the entry adds to the
 *     new flow's counters. Before the counters credit anything, entries are to be retired
 *     and reclaimed only after the readers pass a quiescent point (see the closing notes).
 * Only the match words of a key are compared (not L3_OFF .. L7_OFF: the same flow with
 * other IPv4 options has other offsets, and programs read offsets from the frame's key).
 */
#ifndef LIME_FLOWCACHE_H
#define LIME_FLOWCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "extract.h"

/* Longest program an entry holds (words); longer ones are not cached. */
#define LIME_FC_PROG_MAX 64

typedef struct lime_fc lime_fc_t;

/* A cache of `entries` slots (rounded up to a power of two, at least 2). NULL on ENOMEM. */
lime_fc_t *lime_fc_new (uint32_t entries);
void lime_fc_free (lime_fc_t *fc);

/* Writer: install `prog` for `key` in the current epoch; 0, or -1 if the program is too long. */
int lime_fc_insert (lime_fc_t *fc, const uint32_t *key, const uint32_t *prog, uint32_t prog_len);

/* Writer: every entry installed so far becomes a miss. */
void lime_fc_invalidate (lime_fc_t *fc);

/*
 * Reader: on a hit, copies the program into prog (room for LIME_FC_PROG_MAX words), adds
 * one packet of `bytes` to the entry's counters and returns the program's length; on a
 * miss returns 0.
 */
uint32_t lime_fc_lookup (lime_fc_t *fc, const uint32_t *key, uint32_t *prog, uint32_t bytes);

/* Writer: the counters of the entry holding `key` (current epoch); 0 if none, 1 if found. */
int lime_fc_counters (lime_fc_t *fc, const uint32_t *key, uint64_t *packets, uint64_t *bytes);

uint32_t lime_fc_epoch (const lime_fc_t *fc);

#endif
