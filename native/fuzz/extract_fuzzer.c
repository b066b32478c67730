/*
 * libFuzzer harness for lime_extract (native/extract.c), built with AddressSanitizer and
 * UndefinedBehaviorSanitizer: see native/fuzz/Makefile. On demand only, not in CI (CI
 * holds the C parser equal to the JavaScript one in test/fuzz/frame-parser.test.ts).
 *
 * Each input is one frame, copied into a heap block of exactly its size, so a read past
 * the frame is an ASan report, not a silent read of the fuzzer's buffer. Beyond memory
 * safety, the harness checks extract.h's contract and aborts when it breaks: the reason
 * is a parse reason, IN_PORT is stored, every offset is inside the frame (or absent) and,
 * on success, the offsets come in layer order; every key word is written (a key that was
 * full of garbage comes out the same as one that was zeroed).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../extract.h"

#define IN_PORT 0x1234u

static void fail (const char *what, size_t len) {
  fprintf(stderr, "lime_extract contract broken: %s (frame of %zu bytes)\n", what, len);
  abort();
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  uint8_t *frame = malloc(size > 0 ? size : 1);
  if (frame == NULL) return 0;
  memcpy(frame, data, size);

  uint32_t key[LIME_KEY_WORDS];
  uint32_t dirty[LIME_KEY_WORDS];
  memset(key, 0, sizeof key);
  memset(dirty, 0xa5, sizeof dirty);
  int reason = lime_extract(frame, size, key, IN_PORT);
  int again = lime_extract(frame, size, dirty, IN_PORT);
  free(frame);

  if (reason < LIME_DROP_NONE || reason > LIME_DROP_GRE_BAD_FLAGS) fail("reason out of range", size);
  if (again != reason || memcmp(key, dirty, sizeof key) != 0) fail("result depends on the key's old contents", size);
  if (key[LIME_K_IN_PORT] != IN_PORT) fail("IN_PORT not stored", size);
  uint32_t l3 = key[LIME_K_L3_OFF], l4 = key[LIME_K_L4_OFF], l7 = key[LIME_K_L7_OFF];
  uint32_t offs[3] = { l3, l4, l7 };
  for (int i = 0; i < 3; i++) {
    if (offs[i] != LIME_OFF_ABSENT && offs[i] > size) fail("offset past the frame", size);
  }
  if (reason == LIME_DROP_NONE) {
    if (l4 != LIME_OFF_ABSENT && (l3 == LIME_OFF_ABSENT || l3 >= l4)) fail("L4 offset without an L3 offset before it", size);
    if (l7 != LIME_OFF_ABSENT && (l4 == LIME_OFF_ABSENT || l4 >= l7)) fail("L7 offset without an L4 offset before it", size);
  }
  return 0;
}
