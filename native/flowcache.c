/*
 * The native flow cache (see flowcache.h): one writer, any number of readers, a sequence
 * lock per entry, an epoch for invalidation.
 */
#include "flowcache.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>

/* The words compared: all but L3_OFF, L4_OFF and L7_OFF (32 .. 34). */
#define MATCH_LO LIME_K_L3_OFF
#define MATCH_HI (LIME_K_L7_OFF + 1)

typedef struct {
  _Atomic uint32_t seq; /* odd while the writer changes the entry, or once it is retired */
  uint32_t epoch; /* 0 = free (epochs start at 1) */
  uint32_t hash;
  uint32_t prog_len;
  uint32_t key[LIME_KEY_WORDS];
  uint32_t prog[LIME_FC_PROG_MAX];
  _Atomic uint64_t packets;
  _Atomic uint64_t bytes;
  /* Writer only: the counters at the last harvest, and whether the entry is retired. */
  uint64_t harvested_packets;
  uint64_t harvested_bytes;
  uint64_t idle_mark; /* packets at the last RETIRE_IDLE harvest */
  uint32_t list_pos; /* where the slot is in the used list */
  int retired;
} entry_t;

struct lime_fc {
  uint32_t mask;
  _Atomic uint32_t epoch;
  /* The reader's critical sections: odd while inside one. */
  _Atomic uint64_t reader;
  uint32_t used; /* writer: slots not free, listed in used_list[0 .. used) */
  uint32_t *used_list; /* so that harvests touch only those (a scan of every slot thrashed the caches) */
  entry_t *entries;
};

/* Words of the key that take part in matching, hashed (a murmur3-style mix per word). */
static uint32_t
key_hash (const uint32_t *key) {
  uint32_t h = 0x9747b28cu;
  for (int i = 0; i < LIME_KEY_WORDS; i++) {
    uint32_t k;
    if (i >= MATCH_LO && i < MATCH_HI) continue;
    k = key[i] * 0xcc9e2d51u;
    k = (k << 15) | (k >> 17);
    h ^= k * 0x1b873593u;
    h = ((h << 13) | (h >> 19)) * 5 + 0xe6546b64u;
  }
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

static int
key_equal (const uint32_t *a, const uint32_t *b) {
  return memcmp(a, b, MATCH_LO * sizeof(uint32_t)) == 0 &&
         memcmp(a + MATCH_HI, b + MATCH_HI, (LIME_KEY_WORDS - MATCH_HI) * sizeof(uint32_t)) == 0;
}

/* The two slots a hash may use. */
static inline uint32_t
slot0 (const lime_fc_t *fc, uint32_t h) {
  return h & fc->mask;
}

static inline uint32_t
slot1 (const lime_fc_t *fc, uint32_t h) {
  return ((h >> 16) | (h << 16)) & fc->mask;
}

lime_fc_t *
lime_fc_new (uint32_t entries) {
  uint32_t n = 2;
  lime_fc_t *fc;
  while (n < entries && n < (1u << 24)) n <<= 1;
  fc = calloc(1, sizeof(*fc));
  if (fc == NULL) return NULL;
  fc->entries = calloc(n, sizeof(entry_t));
  fc->used_list = calloc(n, sizeof(uint32_t));
  if (fc->entries == NULL || fc->used_list == NULL) {
    free(fc->entries);
    free(fc->used_list);
    free(fc);
    return NULL;
  }
  fc->mask = n - 1;
  atomic_init(&fc->epoch, 1);
  return fc;
}

void
lime_fc_free (lime_fc_t *fc) {
  if (fc == NULL) return;
  free(fc->entries);
  free(fc->used_list);
  free(fc);
}

uint32_t
lime_fc_epoch (const lime_fc_t *fc) {
  return atomic_load_explicit(&((lime_fc_t *) fc)->epoch, memory_order_acquire);
}

void
lime_fc_invalidate (lime_fc_t *fc) {
  uint32_t e = atomic_load_explicit(&fc->epoch, memory_order_relaxed) + 1;
  if (e == 0) e = 1; /* 0 marks a free entry */
  atomic_store_explicit(&fc->epoch, e, memory_order_seq_cst);
}

uint32_t
lime_fc_used (const lime_fc_t *fc) {
  return fc->used;
}

uint32_t
lime_fc_slots (const lime_fc_t *fc) {
  return fc->mask + 1;
}

void
lime_fc_reader_enter (lime_fc_t *fc) {
  /* seq_cst, as the writer's retire: either the writer sees us inside, or we see its mark. */
  atomic_store_explicit(&fc->reader, atomic_load_explicit(&fc->reader, memory_order_relaxed) + 1, memory_order_seq_cst);
}

void
lime_fc_reader_exit (lime_fc_t *fc) {
  atomic_store_explicit(&fc->reader, atomic_load_explicit(&fc->reader, memory_order_relaxed) + 1, memory_order_release);
}

/* The slot of `key` in the current epoch, or NULL (writer side: no concurrent writes). */
static entry_t *
find (lime_fc_t *fc, const uint32_t *key, uint32_t h, uint32_t epoch) {
  entry_t *c[2] = { &fc->entries[slot0(fc, h)], &fc->entries[slot1(fc, h)] };
  for (int i = 0; i < 2; i++) {
    if (c[i]->epoch == epoch && !c[i]->retired && c[i]->hash == h && key_equal(c[i]->key, key)) return c[i];
  }
  return NULL;
}

int
lime_fc_insert (lime_fc_t *fc, const uint32_t *key, const uint32_t *prog, uint32_t prog_len) {
  const uint32_t h = key_hash(key);
  const uint32_t epoch = atomic_load_explicit(&fc->epoch, memory_order_relaxed);
  entry_t *e, *a, *b;
  uint32_t s;
  if (prog_len == 0 || prog_len > LIME_FC_PROG_MAX) return -1;
  if (find(fc, key, h, epoch) != NULL) return 0;
  a = &fc->entries[slot0(fc, h)];
  b = &fc->entries[slot1(fc, h)];
  e = a->epoch == 0 ? a : b->epoch == 0 ? b : NULL;
  if (e == NULL) return -2;
  /* A free slot: no reader adds to it (see the top of flowcache.h). */
  s = atomic_load_explicit(&e->seq, memory_order_relaxed);
  atomic_store_explicit(&e->seq, s + 1, memory_order_relaxed);
  atomic_thread_fence(memory_order_release); /* the odd sequence is seen before any change */
  atomic_store_explicit(&e->packets, 0, memory_order_relaxed);
  atomic_store_explicit(&e->bytes, 0, memory_order_relaxed);
  e->harvested_packets = e->harvested_bytes = e->idle_mark = 0;
  e->retired = 0;
  e->epoch = epoch;
  e->hash = h;
  memcpy(e->key, key, sizeof(e->key));
  memcpy(e->prog, prog, prog_len * sizeof(uint32_t));
  e->prog_len = prog_len;
  atomic_store_explicit(&e->seq, s + 2, memory_order_release);
  e->list_pos = fc->used;
  fc->used_list[fc->used++] = (uint32_t) (e - fc->entries);
  return 1;
}

uint32_t
lime_fc_find (lime_fc_t *fc, const uint32_t *key, uint32_t *prog, uint32_t *slot) {
  const uint32_t h = key_hash(key);
  const uint32_t epoch = atomic_load_explicit(&fc->epoch, memory_order_seq_cst);
  const uint32_t idx[2] = { slot0(fc, h), slot1(fc, h) };
  for (int i = 0; i < 2; i++) {
    entry_t *e = &fc->entries[idx[i]];
    uint32_t s1, s2, len;
    int same;
    s1 = atomic_load_explicit(&e->seq, memory_order_seq_cst);
    if (s1 & 1) continue; /* being written, or retired: a miss */
    if (e->epoch != epoch || e->hash != h) continue;
    same = key_equal(e->key, key);
    len = e->prog_len;
    if (!same || len == 0 || len > LIME_FC_PROG_MAX) continue;
    memcpy(prog, e->prog, len * sizeof(uint32_t));
    atomic_thread_fence(memory_order_acquire); /* the copies are done before the re-check */
    s2 = atomic_load_explicit(&e->seq, memory_order_relaxed);
    if (s1 != s2) continue; /* changed under us: what we copied may be torn */
    *slot = idx[i];
    return len;
  }
  return 0;
}

void
lime_fc_count (lime_fc_t *fc, uint32_t slot, uint32_t bytes) {
  entry_t *e = &fc->entries[slot & fc->mask];
  atomic_fetch_add_explicit(&e->packets, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&e->bytes, bytes, memory_order_relaxed);
}

uint32_t
lime_fc_lookup (lime_fc_t *fc, const uint32_t *key, uint32_t *prog, uint32_t bytes) {
  uint32_t slot = 0, len;
  lime_fc_reader_enter(fc);
  len = lime_fc_find(fc, key, prog, &slot);
  if (len != 0) lime_fc_count(fc, slot, bytes);
  lime_fc_reader_exit(fc);
  return len;
}

int
lime_fc_counters (lime_fc_t *fc, const uint32_t *key, uint64_t *packets, uint64_t *bytes) {
  const uint32_t h = key_hash(key);
  entry_t *e = find(fc, key, h, atomic_load_explicit(&fc->epoch, memory_order_relaxed));
  if (e == NULL) return 0;
  *packets = atomic_load_explicit(&e->packets, memory_order_relaxed);
  *bytes = atomic_load_explicit(&e->bytes, memory_order_relaxed);
  return 1;
}

/* Wait (bounded) until the reader is, or has been, outside its critical section. */
static int
quiesce (lime_fc_t *fc) {
  uint64_t r = atomic_load_explicit(&fc->reader, memory_order_seq_cst);
  if ((r & 1) == 0) return 1;
  for (int i = 0; i < 20000; i++) { /* ~ up to a few ms: the reader is inside one frame's work */
    if (atomic_load_explicit(&fc->reader, memory_order_acquire) != r) return 1;
    if ((i & 63) == 63) sched_yield();
  }
  return 0;
}

/* Free the retired entry at used_list[pos]: the last listed slot takes its place. */
static void
free_at (lime_fc_t *fc, uint32_t pos) {
  entry_t *e = &fc->entries[fc->used_list[pos]];
  const uint32_t last = fc->used_list[--fc->used];
  /* Even again (a later insert makes it odd while writing). */
  e->epoch = 0;
  e->retired = 0;
  e->prog_len = 0;
  atomic_store_explicit(&e->seq, atomic_load_explicit(&e->seq, memory_order_relaxed) + 1, memory_order_release);
  fc->used_list[pos] = last;
  fc->entries[last].list_pos = pos;
}

/*
 * The used list is walked from its end, so that freeing (the last entry moves into the
 * freed position, one already visited) never skips an entry; *cursor is 0 for a new
 * harvest, 1 + the position to go on at, or the number of slots when done (a call always
 * writes one record before it can run out of room, so an unfinished one never reads as
 * done).
 */
uint32_t
lime_fc_harvest (lime_fc_t *fc, double *out, uint32_t cap, uint32_t flags, uint32_t *cursor, int *quiesced) {
  const uint32_t n = fc->mask + 1;
  uint32_t w = 0, pos;
  int q;
  if (*cursor == 0) {
    const uint32_t epoch = (flags & LIME_FC_RETIRE_ALL) ? (lime_fc_invalidate(fc), atomic_load_explicit(&fc->epoch, memory_order_relaxed))
                                                        : atomic_load_explicit(&fc->epoch, memory_order_relaxed);
    for (uint32_t j = 0; j < fc->used; j++) {
      entry_t *e = &fc->entries[fc->used_list[j]];
      uint64_t p;
      int idle;
      if (e->retired) continue;
      p = atomic_load_explicit(&e->packets, memory_order_relaxed);
      idle = (flags & LIME_FC_RETIRE_IDLE) && p == e->idle_mark;
      if (flags & LIME_FC_RETIRE_IDLE) e->idle_mark = p;
      if (e->epoch != epoch || idle) {
        /* Retire: odd for good, so no new reader takes it (seq_cst: see lime_fc_reader_enter). */
        e->retired = 1;
        atomic_store_explicit(&e->seq, atomic_load_explicit(&e->seq, memory_order_relaxed) + 1, memory_order_seq_cst);
      }
    }
    pos = fc->used;
  } else {
    pos = *cursor; /* go on at position *cursor - 1, downwards */
  }
  if (fc->used == 0) {
    if (quiesced != NULL) *quiesced = 1;
    *cursor = n;
    return 0;
  }
  /* Every call confirms anew: a slot is freed only after the reader was seen outside. */
  q = quiesce(fc);
  if (quiesced != NULL) *quiesced = q;
  while (pos > 0) {
    entry_t *e = &fc->entries[fc->used_list[pos - 1]];
    const uint64_t p = atomic_load_explicit(&e->packets, memory_order_relaxed);
    const uint64_t b = atomic_load_explicit(&e->bytes, memory_order_relaxed);
    /* Both: the reader adds packets, then bytes — a harvest between the two sees one moved. */
    if (p != e->harvested_packets || b != e->harvested_bytes) {
      if (w + 3 + e->prog_len > cap) {
        *cursor = pos; /* = 1 + the position still to do */
        return w;
      }
      out[w++] = (double) (p - e->harvested_packets);
      out[w++] = (double) (b - e->harvested_bytes);
      out[w++] = (double) e->prog_len;
      for (uint32_t k = 0; k < e->prog_len; k++) out[w++] = (double) e->prog[k];
      e->harvested_packets = p;
      e->harvested_bytes = b;
    }
    if (e->retired && q) free_at(fc, pos - 1);
    pos--;
  }
  *cursor = n;
  return w;
}
