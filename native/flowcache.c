/*
 * The native flow cache (see flowcache.h): one writer, any number of readers, a sequence
 * lock per entry, an epoch for invalidation.
 */
#include "flowcache.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* The words compared: all but L3_OFF, L4_OFF and L7_OFF (32 .. 34). */
#define MATCH_LO LIME_K_L3_OFF
#define MATCH_HI (LIME_K_L7_OFF + 1)

typedef struct {
  _Atomic uint32_t seq; /* odd while the writer changes the entry */
  uint32_t epoch; /* 0 = empty (epochs start at 1) */
  uint32_t hash;
  uint32_t prog_len;
  uint32_t key[LIME_KEY_WORDS];
  uint32_t prog[LIME_FC_PROG_MAX];
  _Atomic uint64_t packets;
  _Atomic uint64_t bytes;
} entry_t;

struct lime_fc {
  uint32_t mask;
  _Atomic uint32_t epoch;
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
  if (fc->entries == NULL) {
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
  free(fc);
}

uint32_t
lime_fc_epoch (const lime_fc_t *fc) {
  return atomic_load_explicit(&((lime_fc_t *) fc)->epoch, memory_order_acquire);
}

void
lime_fc_invalidate (lime_fc_t *fc) {
  uint32_t e = atomic_load_explicit(&fc->epoch, memory_order_relaxed) + 1;
  if (e == 0) e = 1; /* 0 marks an empty entry */
  atomic_store_explicit(&fc->epoch, e, memory_order_release);
}

/* The slot of `key` in the current epoch, or NULL (writer side: no concurrent writes). */
static entry_t *
find (lime_fc_t *fc, const uint32_t *key, uint32_t h, uint32_t epoch) {
  entry_t *c[2] = { &fc->entries[slot0(fc, h)], &fc->entries[slot1(fc, h)] };
  for (int i = 0; i < 2; i++) {
    if (c[i]->epoch == epoch && c[i]->hash == h && key_equal(c[i]->key, key)) return c[i];
  }
  return NULL;
}

int
lime_fc_insert (lime_fc_t *fc, const uint32_t *key, const uint32_t *prog, uint32_t prog_len) {
  const uint32_t h = key_hash(key);
  const uint32_t epoch = atomic_load_explicit(&fc->epoch, memory_order_relaxed);
  entry_t *e;
  uint32_t s;
  if (prog_len == 0 || prog_len > LIME_FC_PROG_MAX) return -1;
  e = find(fc, key, h, epoch);
  if (e == NULL) {
    /* A slot that is empty or stale, else the first one (the newer flow wins). */
    entry_t *a = &fc->entries[slot0(fc, h)], *b = &fc->entries[slot1(fc, h)];
    e = a->epoch != epoch ? a : b->epoch != epoch ? b : a;
  }
  s = atomic_load_explicit(&e->seq, memory_order_relaxed);
  atomic_store_explicit(&e->seq, s + 1, memory_order_relaxed);
  atomic_thread_fence(memory_order_release); /* the odd sequence is seen before any change */
  if (e->epoch != epoch || e->hash != h || !key_equal(e->key, key)) {
    atomic_store_explicit(&e->packets, 0, memory_order_relaxed);
    atomic_store_explicit(&e->bytes, 0, memory_order_relaxed);
  }
  e->epoch = epoch;
  e->hash = h;
  memcpy(e->key, key, sizeof(e->key));
  memcpy(e->prog, prog, prog_len * sizeof(uint32_t));
  e->prog_len = prog_len;
  atomic_store_explicit(&e->seq, s + 2, memory_order_release);
  return 0;
}

uint32_t
lime_fc_lookup (lime_fc_t *fc, const uint32_t *key, uint32_t *prog, uint32_t bytes) {
  const uint32_t h = key_hash(key);
  const uint32_t epoch = atomic_load_explicit(&fc->epoch, memory_order_acquire);
  entry_t *c[2] = { &fc->entries[slot0(fc, h)], &fc->entries[slot1(fc, h)] };
  for (int i = 0; i < 2; i++) {
    entry_t *e = c[i];
    uint32_t s1, s2, len;
    int same;
    s1 = atomic_load_explicit(&e->seq, memory_order_acquire);
    if (s1 & 1) continue; /* being written: a miss this time */
    if (e->epoch != epoch || e->hash != h) continue;
    same = key_equal(e->key, key);
    len = e->prog_len;
    if (!same || len == 0 || len > LIME_FC_PROG_MAX) continue;
    memcpy(prog, e->prog, len * sizeof(uint32_t));
    atomic_thread_fence(memory_order_acquire); /* the copies are done before the re-check */
    s2 = atomic_load_explicit(&e->seq, memory_order_relaxed);
    if (s1 != s2) continue; /* changed under us: what we copied may be torn */
    atomic_fetch_add_explicit(&e->packets, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->bytes, bytes, memory_order_relaxed);
    return len;
  }
  return 0;
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
