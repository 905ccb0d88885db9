/*
 * div.c: a diversity plugin for engine/plugin's tests. It writes the first min(k, n)
 * candidates in reverse order, or, per the context key "behave", an index out of range
 * ("range", "neg"), a duplicate ("dup"), or more entries than candidates ("long").
 */
#include "testplug.h"

PODIUM_DEFINE_BUFFER

PODIUM_EXPORT("podium_init") int32_t podium_init(const uint8_t *params, int32_t len) { return 0; }

PODIUM_EXPORT("podium_call") int32_t podium_call(uint8_t *b, int32_t len) {
  misbehave(b);
  uint32_t n = podium_word(b, PODIUM_H_N), k = podium_word(b, PODIUM_H_K);
  int32_t *order = podium_at(b, PODIUM_H_OUT_ORDER);
  uint32_t m = k < n ? k : n;
  for (uint32_t j = 0; j < m; j++) order[j] = (int32_t)(m - 1 - j);
  if (behave(b, "range") && m > 0) order[0] = (int32_t)n;
  if (behave(b, "neg") && m > 0) order[0] = -1;
  if (behave(b, "dup") && m > 1) order[1] = order[0];
  if (behave(b, "long")) m = n + 1;
  ((uint32_t *)b)[PODIUM_H_OUT_ORDER_LEN] = m;
  return 0;
}
