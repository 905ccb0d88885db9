/*
 * hostile.c: a rank plugin for engine/plugin's tests. By default it scores
 *   score[i] + f0[i] + 2*f1[i] + 10*brand[i] + 100*len(sid[i]) + dot(q, emb[i]) + ctx bias
 *   + 1000 if brand[i] is the code of params "brand" (resolved with podium.lookup at init)
 * which exercises every section of the block. The context key "behave" makes it trap,
 * spin, grow memory, read out of bounds, misuse a kernel, log too much, return an error
 * or write NaN / Inf (see testplug.h).
 */
#include "testplug.h"

PODIUM_DEFINE_BUFFER

static int32_t brand_code = -1;
static float dots[1 << 14];

PODIUM_EXPORT("podium_init") int32_t podium_init(const uint8_t *params, int32_t len) {
  if (contains(params, len, "\"init\":\"fail\"")) {
    logs(PODIUM_LOG_ERROR, "init: asked to fail");
    return 7;
  }
  if (contains(params, len, "\"init\":\"spin\"")) {
    for (;;) sink++;
  }
  if (contains(params, len, "\"brand\":\"acme\"")) brand_code = podium_lookup("brand", 5, "acme", 4);
  return 0;
}

PODIUM_EXPORT("podium_call") int32_t podium_call(uint8_t *b, int32_t len) {
  misbehave(b);
  if (behave(b, "error")) return 3;
  uint32_t n = podium_word(b, PODIUM_H_N), dim = podium_word(b, PODIUM_H_DIM);
  uint32_t qdim = podium_word(b, PODIUM_H_QDIM);
  const float *score = podium_at(b, PODIUM_H_SCORE);
  const float *f = podium_at(b, PODIUM_H_FEAT);
  const int32_t *brand = podium_at(b, PODIUM_H_ATTR);
  const uint32_t *sid = podium_at(b, PODIUM_H_SID);
  const float *emb = podium_at(b, PODIUM_H_EMB), *q = podium_at(b, PODIUM_H_QEMB);
  float *out = podium_at(b, PODIUM_H_OUT_SCORE);
  double bias = ctx_num(b, "bias", 0);
  if (dim > 0 && qdim == dim && n <= sizeof dots / sizeof dots[0]) {
    podium_dot(q, emb, (int32_t)n, (int32_t)dim, dots);
  } else {
    for (uint32_t i = 0; i < n && i < sizeof dots / sizeof dots[0]; i++) dots[i] = 0;
  }
  for (uint32_t i = 0; i < n; i++) {
    float s = score[i] + f[i] + 2 * f[n + i] + 10.0f * (float)brand[i] +
              100.0f * (float)(sid[i + 1] - sid[i]) + dots[i] + (float)bias;
    if (brand_code >= 0 && brand[i] == brand_code) s += 1000;
    out[i] = s;
  }
  if (behave(b, "nan") && n > 0) out[n / 2] = __builtin_nanf("");
  if (behave(b, "inf") && n > 0) out[0] = __builtin_inff();
  logs(PODIUM_LOG_DEBUG, "scored");
  return 0;
}
