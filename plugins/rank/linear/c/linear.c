/*
 * linear.c: the C build of the rank/linear plugin, freestanding (no libc): a weighted sum
 * (or logistic) of named features. Same params and results as ../go; see ../README.md.
 */
#include "podium.h"
#include "podium_json.h"

PODIUM_DEFINE_BUFFER

#define MAX_FEATURES 1024

static float w[MAX_FEATURES];
static uint32_t nfeat;
static float bias, input_weight, missing;
static int logistic, kernels = 1;

static void fail(const char *msg) {
  uint32_t n = 0;
  while (msg[n]) n++;
  podium_log(PODIUM_LOG_ERROR, msg, (int32_t)n);
}

static int same(const char *a, uint32_t alen, const char *b, uint32_t blen) {
  if (alen != blen) return 0;
  for (uint32_t i = 0; i < alen; i++)
    if (a[i] != b[i]) return 0;
  return 1;
}

static int num(const char *params, const char *end, const char *key, float *out) {
  const char *v = pj_get(params, end, key);
  double d;
  if (!v) return 1;
  if (!pj_number(v, end, &d)) return 0;
  *out = (float)d;
  return 1;
}

PODIUM_EXPORT("podium_init") int32_t podium_init(const char *params, int32_t len) {
  const char *end = params + len;
  /* The feature names, in column order. */
  const char *names[MAX_FEATURES];
  uint32_t lens[MAX_FEATURES];
  pj_iter it = pj_iter_array(pj_get(params, end, "features"), end);
  nfeat = 0;
  while (pj_next(&it)) {
    if (nfeat == MAX_FEATURES || !pj_string(it.value, end, &names[nfeat], &lens[nfeat])) return fail("bad features"), 1;
    w[nfeat++] = 0;
  }
  it = pj_iter_object(pj_get(params, end, "weights"), end);
  while (pj_next(&it)) {
    double d;
    if (!pj_number(it.value, end, &d)) return fail("weights must be numbers"), 2;
    uint32_t j = 0;
    while (j < nfeat && !same(names[j], lens[j], it.key, it.key_len)) j++;
    if (j == nfeat) return fail("a weight names a feature that is not in features"), 3;
    w[j] = (float)d;
  }
  if (!num(params, end, "bias", &bias) || !num(params, end, "input_weight", &input_weight) ||
      !num(params, end, "missing", &missing))
    return fail("bias, input_weight and missing must be numbers"), 4;
  const char *link;
  uint32_t link_len;
  logistic = 0;
  if (pj_string(pj_get(params, end, "link"), end, &link, &link_len)) {
    if (pj_streq(link, link_len, "logistic")) logistic = 1;
    else if (!pj_streq(link, link_len, "identity")) return fail("link must be identity or logistic"), 5;
  }
  const char *k = pj_get(params, end, "kernels");
  kernels = !(k && *k == 'f');
  return 0;
}

static float expf_(float x); /* below */

PODIUM_EXPORT("podium_call") int32_t podium_call(uint8_t *b, int32_t len) {
  if (!podium_check_header(b, (uint32_t)len, PODIUM_KIND_RANK)) return 11;
  uint32_t n = podium_word(b, PODIUM_H_N);
  if (podium_word(b, PODIUM_H_NFEAT) != nfeat) return 1;
  const float *f = podium_at(b, PODIUM_H_FEAT);
  const float *in = podium_at(b, PODIUM_H_SCORE);
  float *out = podium_at(b, PODIUM_H_OUT_SCORE);
  if (kernels) {
    podium_wsum(w, f, (int32_t)nfeat, (int32_t)n, out);
  } else {
    for (uint32_t i = 0; i < n; i++) out[i] = 0;
    for (uint32_t j = 0; j < nfeat; j++) {
      const float *col = f + (size_t)j * n;
      float wj = w[j];
      for (uint32_t i = 0; i < n; i++) out[i] += wj * col[i];
    }
  }
  for (uint32_t i = 0; i < n; i++) {
    float s = out[i] + bias + input_weight * in[i];
    if (s != s) { /* a missing feature (NaN): recompute with the missing value */
      s = bias + input_weight * in[i];
      for (uint32_t j = 0; j < nfeat; j++) {
        float x = f[(size_t)j * n + i];
        s += w[j] * (x != x ? missing : x);
      }
    }
    out[i] = s;
  }
  if (logistic) {
    if (kernels) podium_sigmoid(out, (int32_t)n);
    else
      for (uint32_t i = 0; i < n; i++) out[i] = 1.0f / (1.0f + expf_(-out[i]));
  }
  return 0;
}

/* expf_ is exp for the guest-loop path: range reduction by ln 2 and a degree-6 polynomial
 * (relative error about 2e-7 in float), clamped at the float range. */
static float expf_(float x) {
  if (x > 88.0f) return __builtin_inff();
  if (x < -103.0f) return 0;
  float k = __builtin_floorf(x * 1.44269504f + 0.5f);
  float r = x - k * 0.693145751953125f - k * 1.428606765330187e-06f;
  float p = 1 + r * (1 + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720))))));
  union { float f; int32_t i; } u = {p};
  u.i += (int32_t)k << 23;
  return u.f;
}
