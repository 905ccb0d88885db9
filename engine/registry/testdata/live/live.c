/*
 * live.c: a rank plugin for the live-operations tests (engine/registry, engine/admin,
 * engine/live_test.go). It scores sign * retrieval_score. Its params (matched as raw text
 * at init) make it misbehave on purpose:
 *   "sign":-1        reverse the order
 *   "trap":"always"  trap on every call (a smoke call catches it)
 *   "trap":"ctx"     trap when the request context has behave=trap (a smoke call passes)
 *   "slow":true      spin about a millisecond per call
 * Tests make distinct versions of it by rewriting its manifest.
 */
#include "podium.h"

PODIUM_DEFINE_BUFFER

static float sign = 1;
static int trap_always, trap_ctx, slow;
static volatile uint32_t sink;

static int contains(const uint8_t *s, int32_t n, const char *w) {
  int32_t m = 0;
  while (w[m]) m++;
  for (int32_t i = 0; i + m <= n; i++) {
    int32_t j = 0;
    while (j < m && s[i + j] == (uint8_t)w[j]) j++;
    if (j == m) return 1;
  }
  return 0;
}

static int ctx_behave_trap(uint8_t *b) {
  uint32_t nctx = podium_word(b, PODIUM_H_NCTX);
  podium_ctx_entry *e = (podium_ctx_entry *)podium_at(b, PODIUM_H_CTX);
  for (uint32_t i = 0; i < nctx; i++) {
    if (e[i].type != PODIUM_CTX_STRING || e[i].key_len != 6 || e[i].str_len != 4) continue;
    if (contains(b + e[i].key_off, 6, "behave") && contains(b + e[i].str_off, 4, "trap")) return 1;
  }
  return 0;
}

PODIUM_EXPORT("podium_init") int32_t podium_init(const uint8_t *params, int32_t len) {
  sign = contains(params, len, "\"sign\":-1") ? -1.0f : 1.0f;
  trap_always = contains(params, len, "\"trap\":\"always\"");
  trap_ctx = contains(params, len, "\"trap\":\"ctx\"");
  slow = contains(params, len, "\"slow\":true");
  return 0;
}

PODIUM_EXPORT("podium_call") int32_t podium_call(uint8_t *b, int32_t len) {
  if (trap_always) __builtin_trap();
  if (trap_ctx && ctx_behave_trap(b)) __builtin_trap();
  if (slow) {
    for (uint32_t i = 0; i < 3000000; i++) sink += i;
  }
  uint32_t n = podium_word(b, PODIUM_H_N);
  const float *f = podium_at(b, PODIUM_H_FEAT);
  float *out = podium_at(b, PODIUM_H_OUT_SCORE);
  for (uint32_t i = 0; i < n; i++) out[i] = sign * f[i];
  return 0;
}
