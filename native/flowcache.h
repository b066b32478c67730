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
 *     again; a reader copies what it needs and misses when the sequence changed meanwhile
 *     or was odd, so a reader never uses a half-written entry and never blocks the writer;
 *   - an epoch, bumped by the writer whenever what the programs depend on changes (a
 *     flow-mod, the MAC table, a port): entries of an older epoch are misses;
 *   - per-entry packet and byte counters, added to by the reader and harvested by the
 *     writer (lime_fc_harvest) to credit rules, ports and MAC entries. They are exact: an
 *     entry is only ever written into a FREE slot, and a slot becomes free only in a
 *     harvest, after its entry was retired (older epoch, or idle and marked odd) AND the
 *     reader has been seen outside its critical section (lime_fc_reader_enter … exit)
 *     since — so no reader can still add to a slot that holds another flow. A slot whose
 *     retirement could not be confirmed (the reader stayed inside for the whole bounded
 *     wait) stays until a later harvest. One reader thread at a time.
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

/*
 * Writer: install `prog` for `key` in the current epoch, into a free slot. 1 when
 * installed; 0 when the key already has an entry (kept: within an epoch a key's program
 * does not change); -1 when the program is empty or too long; -2 when both slots are
 * taken (the flow stays on the slow path until a harvest frees one).
 */
int lime_fc_insert (lime_fc_t *fc, const uint32_t *key, const uint32_t *prog, uint32_t prog_len);

/* Writer: every entry installed so far becomes a miss (freed by the next harvest). */
void lime_fc_invalidate (lime_fc_t *fc);

/* Reader: around each lookup … count (the reader's critical section). */
void lime_fc_reader_enter (lime_fc_t *fc);
void lime_fc_reader_exit (lime_fc_t *fc);

/*
 * Reader, inside its critical section: on a hit copies the program into prog (room for
 * LIME_FC_PROG_MAX words), stores the slot in *slot and returns the program's length;
 * on a miss returns 0.
 */
uint32_t lime_fc_find (lime_fc_t *fc, const uint32_t *key, uint32_t *prog, uint32_t *slot);
/* Reader, in the same critical section as the lime_fc_find that gave `slot`: one packet of `bytes`. */
void lime_fc_count (lime_fc_t *fc, uint32_t slot, uint32_t bytes);

/* Reader: enter, find, count one packet of `bytes` on a hit, exit. */
uint32_t lime_fc_lookup (lime_fc_t *fc, const uint32_t *key, uint32_t *prog, uint32_t bytes);

/* Writer: the counters of the entry holding `key` (current epoch); 0 if none, 1 if found. */
int lime_fc_counters (lime_fc_t *fc, const uint32_t *key, uint64_t *packets, uint64_t *bytes);

/* lime_fc_harvest flags */
#define LIME_FC_RETIRE_ALL 1 /* invalidate first: every entry's final counts, all slots freed */
#define LIME_FC_RETIRE_IDLE 2 /* also retire entries without a packet since the last RETIRE_IDLE harvest */

/*
 * Writer: what the entries counted since the last harvest, as records in out[0 .. cap):
 *   [packets, bytes, prog_len, prog words …]
 * (only entries that counted something; a record may carry bytes of a packet counted in
 * the previous one), and frees retired slots (see the top). Starts at
 * *cursor (0 for a new harvest; the flags only act then) and returns the words written;
 * *cursor is the number of slots when the harvest is complete, else where to go on
 * (the next record did not fit). *quiesced (may be NULL) says whether the reader was seen
 * outside its critical section, i.e. whether retired slots were freed.
 */
uint32_t lime_fc_harvest (lime_fc_t *fc, double *out, uint32_t cap, uint32_t flags, uint32_t *cursor, int *quiesced);

/* Slots in use (live or retired, not yet freed) and slots in all. */
uint32_t lime_fc_used (const lime_fc_t *fc);
uint32_t lime_fc_slots (const lime_fc_t *fc);

uint32_t lime_fc_epoch (const lime_fc_t *fc);

#endif
