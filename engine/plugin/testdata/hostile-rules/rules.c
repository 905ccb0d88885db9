/*
 * rules.c: a rules plugin for engine/plugin's tests. It drops candidates with an odd id,
 * doubles every score and pins candidate 0 to position min(2, n-1); per the context key
 * "behave" it writes a keep byte of 7 ("keep") or a pin of n ("pin").
 */
#include "testplug.h"

PODIUM_DEFINE_BUFFER

PODIUM_EXPORT("podium_init") int32_t podium_init(const uint8_t *params, int32_t len) { return 0; }

PODIUM_EXPORT("podium_call") int32_t podium_call(uint8_t *b, int32_t len) {
  misbehave(b);
  uint32_t n = podium_word(b, PODIUM_H_N);
  const uint32_t *ids = podium_at(b, PODIUM_H_IDS);
  float *score = podium_at(b, PODIUM_H_OUT_SCORE);
  uint8_t *keep = podium_at(b, PODIUM_H_OUT_KEEP);
  int32_t *pin = podium_at(b, PODIUM_H_OUT_PIN);
  for (uint32_t i = 0; i < n; i++) {
    score[i] *= 2;
    keep[i] = (ids[i] & 1) == 0;
  }
  if (n > 0) pin[0] = n > 2 ? 2 : (int32_t)n - 1;
  if (behave(b, "keep") && n > 0) keep[0] = 7;
  if (behave(b, "pin") && n > 0) pin[0] = (int32_t)n;
  return 0;
}
