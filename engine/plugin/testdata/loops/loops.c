// loops.c: dot-product loops of different shapes, for measuring how deadline enforcement
// (per-loop checks) costs depending on the loop shape. Not a plugin: it exports raw
// functions that the benchmarks in engine/plugin call directly.
#include <stdint.h>
#include <wasm_simd128.h>
#include "podium.h"

static float arena[1 << 18] __attribute__((aligned(16))); /* 1 MiB */

PODIUM_EXPORT("arena") float *get_arena(void) { return arena; }

/* out[i] = q . rows[i], one element per iteration. */
PODIUM_EXPORT("dot_scalar") void dot_scalar(const float *q, const float *rows, int n, int dim, float *out) {
  for (int i = 0; i < n; i++) {
    const float *r = rows + i * dim;
    float s = 0;
#pragma clang loop unroll(disable) vectorize(disable)
    for (int j = 0; j < dim; j++) s += q[j] * r[j];
    out[i] = s;
  }
}

/* Four accumulators, four elements per iteration (dim % 4 == 0). */
PODIUM_EXPORT("dot_unroll4") void dot_unroll4(const float *q, const float *rows, int n, int dim, float *out) {
  for (int i = 0; i < n; i++) {
    const float *r = rows + i * dim;
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma clang loop unroll(disable) vectorize(disable)
    for (int j = 0; j < dim; j += 4) {
      s0 += q[j] * r[j];
      s1 += q[j + 1] * r[j + 1];
      s2 += q[j + 2] * r[j + 2];
      s3 += q[j + 3] * r[j + 3];
    }
    out[i] = (s0 + s1) + (s2 + s3);
  }
}

/* SIMD, 16 elements per iteration (dim % 16 == 0). */
PODIUM_EXPORT("dot_simd") void dot_simd(const float *q, const float *rows, int n, int dim, float *out) {
  for (int i = 0; i < n; i++) {
    const float *r = rows + i * dim;
    v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
#pragma clang loop unroll(disable)
    for (int j = 0; j < dim; j += 16) {
      a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(wasm_v128_load(q + j), wasm_v128_load(r + j)));
      a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(wasm_v128_load(q + j + 4), wasm_v128_load(r + j + 4)));
      a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(wasm_v128_load(q + j + 8), wasm_v128_load(r + j + 8)));
      a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(wasm_v128_load(q + j + 12), wasm_v128_load(r + j + 12)));
    }
    v128_t a = wasm_f32x4_add(wasm_f32x4_add(a0, a1), wasm_f32x4_add(a2, a3));
    out[i] = wasm_f32x4_extract_lane(a, 0) + wasm_f32x4_extract_lane(a, 1) +
             wasm_f32x4_extract_lane(a, 2) + wasm_f32x4_extract_lane(a, 3);
  }
}

/* The host kernel: one import call for the whole batch. */
PODIUM_EXPORT("dot_host") void dot_host(const float *q, const float *rows, int n, int dim, float *out) {
  podium_dot(q, rows, n, dim, out);
}

/* An empty call, for the fixed cost per call. */
PODIUM_EXPORT("nop") void nop(void) {}

/* Never returns. */
PODIUM_EXPORT("spin") int spin(int x) {
  volatile int v = x;
  for (;;) v++;
  return v;
}
