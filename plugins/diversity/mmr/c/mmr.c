/*
 * mmr.c: the C build of the diversity/mmr plugin, freestanding (no libc). Same params,
 * errors and order as the Go build (../go, over package mmr in ..): maximal marginal
 * relevance over item embeddings with a cap per attribute value, or round-robin over an
 * attribute. See ../README.md for params.
 *
 * Every float operation is the Go package's, in its order, so both builds choose the same
 * order bit for bit: the similarity dot products sum four interleaved partial sums, as
 * mmr.Dot and the host's podium.dot do, which is exactly one f32x4 accumulator (wasm SIMD).
 * Built with -DMMR_HOST_DOT, the guest calls podium.dot instead, as the Go guest does
 * (RATIONALE.md, "Why does the C MMR guest compute its dot products itself?").
 *
 * The scratch grows with memory.grow when a request needs more than any before it, as the
 * Go package's does, and is reused after that: nothing is allocated on the request path.
 */
#include <wasm_simd128.h>

#include "podium.h"
#include "podium_json.h"
#include "podium_params.h"
#include "podium_sort.h"

#pragma STDC FP_CONTRACT OFF

PODIUM_DEFINE_BUFFER

#define MAX_COLS 1024
#define MAX_F32 3.40282346638528859811704183484516925440e+38f

enum { ERR_SDK = 1, ERR_PARAMS = 2 }; /* podium_init codes, as the Go SDK returns them */

static int round_robin;
static float lambda = 0.7f;
static int64_t pool;
static int32_t attr_col = -1;
static int64_t max_per_value;
static uint32_t nattr;

static int32_t fail(const char *msg) {
  pjx_s("init: mmr: invalid params: ");
  pjx_s(msg);
  pjx_flush(PODIUM_LOG_ERROR);
  return ERR_PARAMS;
}

/* podium_init is the SDK's params check, then mmr.DecodeParams (strict) and NewFromParams. */
PODIUM_EXPORT("podium_init") int32_t podium_init(const char *params, int32_t len) {
  static pjx_str feats[MAX_COLS], attrs[MAX_COLS];
  const char *end = params + len;
  uint32_t nfeat;
  const char *err;
  pjx_used = 0;
  const char *p = pjx_sdk_params(params, end, feats, &nfeat, attrs, &nattr, MAX_COLS, &err);
  if (!p) return fail(err), ERR_SDK;

  pjx_str mode = {0, 0}, attribute = {0, 0};
  int has_lambda = 0;
  float lam = 0;
  pool = 0, max_per_value = 0;
  pj_iter it = pj_iter_object(p, end);
  while (pj_next(&it)) {
    const char *v = it.value;
    int t = pjx_type(v);
    if (pjx_key(&it, "mode") || pjx_key(&it, "attribute")) {
      pjx_str *dst = pjx_key(&it, "mode") ? &mode : &attribute;
      if (t != PJX_NULL && (t != PJX_STR || !pjx_string(v, end, dst))) return fail("mode and attribute must be strings");
    } else if (pjx_key(&it, "lambda")) {
      has_lambda = 0;
      if (t == PJX_NULL) continue;
      if (!pjx_f32(v, end, &lam)) return fail("lambda must be a float32 number");
      has_lambda = 1;
    } else if (pjx_key(&it, "pool") || pjx_key(&it, "max_per_value")) {
      int64_t *dst = pjx_key(&it, "pool") ? &pool : &max_per_value;
      if (t != PJX_NULL && !pjx_int(v, end, dst)) return fail("pool and max_per_value must be integers");
    } else if (!pjx_key(&it, "features") && !pjx_key(&it, "attributes")) {
      return fail("unknown field");
    }
  }
  if (mode.n == 0 || pjx_eqlit(mode, "mmr")) round_robin = 0;
  else if (pjx_eqlit(mode, "round_robin")) {
    round_robin = 1;
    if (attribute.n == 0) return fail("round_robin needs an attribute to alternate over");
  } else return fail("mode must be \"mmr\" or \"round_robin\"");
  lambda = 0.7f; /* mmr.DefaultLambda */
  if (has_lambda) {
    if (!(lam >= 0 && lam <= 1)) return fail("lambda must be a number in [0, 1]");
    lambda = lam;
  }
  if (pool < 0) return fail("pool must be 0 (automatic) or more");
  if (max_per_value < 0) return fail("max_per_value must be 0 (no cap) or more");
  if (max_per_value > 0 && attribute.n == 0) return fail("max_per_value needs an attribute");
  attr_col = -1;
  if (attribute.n) {
    for (uint32_t i = 0; i < nattr && attr_col < 0; i++)
      if (pjx_eq(attrs[i], attribute)) attr_col = (int32_t)i;
    if (attr_col < 0) return fail("the attribute is not in the stage's attributes");
  }
  return 0;
}

/* ---- the request path ---- */

/* The scratch (see mmr.Diversifier), carved from pages taken with memory.grow. */
static uint32_t sc_p, sc_dim, sc_n, sc_size;
static int32_t *cand, *group, *count, *slots, *slot_id, *key, *tmp;
static float *emb, *inv, *rel, *max_sim, *sims, *pen;
static uint8_t *full;
static uint32_t *keys;

static int grow(uint32_t p, uint32_t dim, uint32_t n) {
  if (p <= sc_p && (uint64_t)p * dim <= (uint64_t)sc_p * sc_dim && n <= sc_n) return 1;
  if (p < sc_p) p = sc_p;
  if (n < sc_n) n = sc_n;
  if ((uint64_t)p * dim < (uint64_t)sc_p * sc_dim) dim = sc_dim; /* keep the larger matrix */
  uint32_t size = 1;
  while (size < 2 * p) size <<= 1;
  uint64_t bytes = 4ull * p * dim + 4ull * p * 10 + 4ull * (p + 1) + 8ull * size + 4ull * n + p + 64;
  uint8_t *at = podium_grow(bytes);
  if (!at) return 0;
  emb = (float *)at, at += 4ull * p * dim; /* first: 16-byte aligned */
  inv = (float *)at, at += 4 * p;
  rel = (float *)at, at += 4 * p;
  max_sim = (float *)at, at += 4 * p;
  sims = (float *)at, at += 4 * p;
  pen = (float *)at, at += 4 * p;
  cand = (int32_t *)at, at += 4 * p;
  group = (int32_t *)at, at += 4 * p;
  key = (int32_t *)at, at += 4 * p;
  tmp = (int32_t *)at, at += 4 * p;
  count = (int32_t *)at, at += 4 * (p + 1);
  slots = (int32_t *)at, at += 4 * size;
  slot_id = (int32_t *)at, at += 4 * size;
  keys = (uint32_t *)at, at += 4 * n;
  full = at;
  sc_p = p, sc_dim = dim, sc_n = n, sc_size = size;
  return 1;
}

static inline int finite(float v) { return v - v == 0; }

/* dot is mmr.dot: four interleaved partial sums (one f32x4), the tail into the first, then
 * (s0 + s1) + (s2 + s3). */
static inline float dot(const float *a, const float *b, uint32_t dim) {
  v128_t acc = wasm_f32x4_splat(0);
  uint32_t j = 0;
  for (; j + 4 <= dim; j += 4) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(a + j), wasm_v128_load(b + j)));
  float s0 = wasm_f32x4_extract_lane(acc, 0), s1 = wasm_f32x4_extract_lane(acc, 1);
  float s2 = wasm_f32x4_extract_lane(acc, 2), s3 = wasm_f32x4_extract_lane(acc, 3);
  for (; j < dim; j++) s0 += a[j] * b[j];
  return (s0 + s1) + (s2 + s3);
}

/* dot_rows is mmr.Dot (and podium.dot): out[i] = dot(q, row i) for n rows. */
static void dot_rows(const float *q, const float *rows, uint32_t n, uint32_t dim, float *out) {
#ifdef MMR_HOST_DOT
  podium_dot(q, rows, (int32_t)n, (int32_t)dim, out);
#else
  uint32_t i = 0;
  if (dim % 4 == 0) { /* two rows at a time: two independent accumulators */
    for (; i + 2 <= n; i += 2) {
      const float *r0 = rows + (size_t)i * dim, *r1 = r0 + dim;
      v128_t a0 = wasm_f32x4_splat(0), a1 = a0;
      for (uint32_t j = 0; j < dim; j += 4) {
        v128_t x = wasm_v128_load(q + j);
        a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(x, wasm_v128_load(r0 + j)));
        a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(x, wasm_v128_load(r1 + j)));
      }
      out[i] = (wasm_f32x4_extract_lane(a0, 0) + wasm_f32x4_extract_lane(a0, 1)) +
               (wasm_f32x4_extract_lane(a0, 2) + wasm_f32x4_extract_lane(a0, 3));
      out[i + 1] = (wasm_f32x4_extract_lane(a1, 0) + wasm_f32x4_extract_lane(a1, 1)) +
                   (wasm_f32x4_extract_lane(a1, 2) + wasm_f32x4_extract_lane(a1, 3));
    }
  }
  for (; i < n; i++) out[i] = dot(q, rows + (size_t)i * dim, dim);
#endif
}

/* sort_key is mmr.sortKey: the order of the scores as uint32 (NaN lowest, -0 as +0). */
static inline uint32_t sort_key(float v) {
  if (v == 0) v = 0;
  union { float f; uint32_t u; } x = {v};
  uint32_t k = x.u ^ ((uint32_t)((int32_t)x.u >> 31) | 0x80000000u);
  return v != v ? 0 : k;
}

/* top_p is mmr.topP: the p best candidates by score (ties to the lower index), in index
 * order, by a radix select over the sort keys. */
static void top_p(const float *scores, uint32_t n, uint32_t p) {
  if (p == n) {
    for (uint32_t i = 0; i < p; i++) cand[i] = (int32_t)i;
    return;
  }
  for (uint32_t i = 0; i < n; i++) keys[i] = sort_key(scores[i]);
  uint32_t prefix = 0, mask = 0;
  int32_t need = (int32_t)p;
  int32_t hist[256];
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = 0; b < 256; b++) hist[b] = 0;
    for (uint32_t i = 0; i < n; i++) hist[keys[i] >> shift & 255] += (keys[i] & mask) == prefix;
    int b = 255;
    for (; b > 0 && hist[b] < need; b--) need -= hist[b];
    prefix |= (uint32_t)b << shift;
    mask |= 255u << shift;
    if (hist[b] == need) {
      need = (int32_t)n;
      break;
    }
  }
  uint32_t j = 0;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t k = keys[i] & mask;
    if (k > prefix || (k == prefix && need > 0)) {
      if (k == prefix) need--;
      cand[j++] = (int32_t)i;
    }
  }
}

/* groups is mmr.groups: a dense id per entry's attribute value, -1 for a missing value
 * unless missing_group. */
static int32_t groups(const int32_t *codes, const int32_t *ids, uint32_t np, int missing_group) {
  for (uint32_t i = 0; i < sc_size; i++) slots[i] = 0;
  uint32_t mask = sc_size - 1;
  int32_t next = 0, missing = -1;
  for (uint32_t p = 0; p < np; p++) {
    int32_t code = codes[ids[p]];
    if (code < 0) {
      if (missing_group && missing < 0) missing = next++;
      group[p] = missing;
      continue;
    }
    uint32_t h = ((uint32_t)code * 0x9E3779B1u) & mask;
    while (slots[h] != 0 && slots[h] != code + 1) h = (h + 1) & mask;
    if (slots[h] == 0) slots[h] = code + 1, slot_id[h] = next++;
    group[p] = slot_id[h];
  }
  return next;
}

/* prepare is mmr.prepare: relevance over the pool, the pool's embeddings with their inverse
 * norms, and groups. */
static void prepare(const float *scores, const float *embs, uint32_t dim, const int32_t *codes, uint32_t np) {
  float lo = __builtin_inff(), hi = -__builtin_inff();
  for (uint32_t i = 0; i < np; i++) {
    float s = scores[cand[i]];
    if (finite(s)) {
      if (s < lo) lo = s;
      if (s > hi) hi = s;
    }
  }
  for (uint32_t i = 0; i < np; i++) {
    float s = scores[cand[i]];
    if (!finite(s)) rel[i] = 0;
    else if (hi > lo) rel[i] = (float)(((double)s - (double)lo) / ((double)hi - (double)lo));
    else rel[i] = 1;
  }
  for (uint32_t i = 0; i < np; i++) {
    float *row = emb + (size_t)i * dim;
    if (dim) __builtin_memcpy(row, embs + (size_t)cand[i] * dim, 4 * dim);
    float ss = dot(row, row, dim);
    inv[i] = ss > 0 && ss <= MAX_F32 ? (float)(1 / __builtin_sqrt((double)ss)) : 0;
  }
  int32_t ng = 0;
  if (codes && max_per_value > 0) ng = groups(codes, cand, np, 0);
  else
    for (uint32_t i = 0; i < np; i++) group[i] = -1;
  for (int32_t g = 0; g < ng; g++) count[g] = 0;
}

/* mmr is mmr.Diversifier.mmr: greedy picks by λ·rel − (1−λ)·max similarity, one dot-row pass
 * and one loop per pick, ties to the lower pool entry (the pool is in candidate order). */
static void mmr(uint32_t np, uint32_t dim, int32_t *order, uint32_t m) {
  for (uint32_t i = 0; i < np; i++) pen[i] = 0, full[i] = 0;
  float lam = lambda, mu = 1 - lambda, neg_inf = -__builtin_inff();
  int32_t capped = (int32_t)(uint32_t)max_per_value; /* Go's int32(maxPerValue) */
  int32_t best = 0;
  float best_v = neg_inf;
  for (uint32_t i = 0; i < np; i++) {
    float v = lam * rel[i];
    if (v > best_v) best = (int32_t)i, best_v = v;
  }
  for (uint32_t t = 0; t < m; t++) {
    pen[best] = neg_inf;
    order[t] = cand[best];
    int32_t g = group[best];
    if (g >= 0 && ++count[g] == capped)
      for (uint32_t i = 0; i < np; i++)
        if (group[i] == g) full[i] = 1;
    if (t == m - 1) break;
    if (dim > 0) dot_rows(emb + (size_t)best * dim, emb, np, dim, sims);
    else
      for (uint32_t i = 0; i < np; i++) sims[i] = 0;
    float invb = inv[best];
    int first = t == 0;
    int32_t next = -1, any = -1;
    float next_v = neg_inf, any_v = neg_inf;
    for (uint32_t i = 0; i < np; i++) {
      float s = sims[i] * invb * inv[i];
      if (s - s != 0) s = 0; /* ±Inf or NaN */
      float ms = max_sim[i];
      if (s > ms || first) ms = s;
      max_sim[i] = ms;
      float v = lam * rel[i] - mu * ms + pen[i];
      if (v > any_v) any = (int32_t)i, any_v = v;
      if (v > next_v && !full[i]) next = (int32_t)i, next_v = v;
    }
    best = next < 0 ? any : next;
  }
}

/* round_robin_order is mmr.roundRobinOrder over all n candidates. */
static int round_robin_order(const float *scores, const int32_t *codes, uint32_t n, int32_t *order, uint32_t m) {
  /* The score order, best first, ties to the lower index: ascending (~key, index). The
   * 64-bit keys live in the embedding matrix's place (round-robin reads no embeddings). */
  uint64_t *k64 = (uint64_t *)(void *)emb;
  for (uint32_t i = 0; i < n; i++) k64[i] = (uint64_t)(~sort_key(scores[i])) << 32 | i;
  podium_sort_u64(k64, n); /* a total order, so any correct sort gives slices.SortFunc's result */
  for (uint32_t i = 0; i < n; i++) cand[i] = (int32_t)(uint32_t)k64[i];
  int32_t ng = groups(codes, cand, n, 1);
  int32_t rounds = max_per_value > 0 ? (int32_t)(uint32_t)max_per_value : (int32_t)n; /* Go's int32() */
  if (rounds < 0) return 0; /* a max_per_value that int32 wraps negative: Go's guest traps */
  for (int32_t g = 0; g < ng; g++) count[g] = 0;
  for (uint32_t p = 0; p < n; p++) {
    int32_t g = group[p];
    key[p] = count[g] < rounds ? count[g] : rounds;
    count[g]++;
  }
  uint32_t nh = (uint32_t)(rounds < (int32_t)n - 1 ? rounds : (int32_t)n - 1) + 1;
  int32_t *hist = count;
  for (uint32_t r = 0; r < nh; r++) hist[r] = 0;
  for (uint32_t p = 0; p < n; p++) hist[key[p]]++;
  int32_t at = 0;
  for (uint32_t r = 0; r < nh; r++) {
    int32_t c = hist[r];
    hist[r] = at, at += c;
  }
  for (uint32_t p = 0; p < n; p++) tmp[hist[key[p]]++] = cand[p];
  for (uint32_t i = 0; i < m; i++) order[i] = tmp[i];
  return 1;
}

/* podium_call writes the top min(k, n) order (mmr.Diversifier.Order). */
PODIUM_EXPORT("podium_call") int32_t podium_call(uint8_t *b, int32_t len) {
  if (!podium_check_header(b, (uint32_t)len, PODIUM_KIND_DIVERSITY)) return 11;
  uint32_t n = podium_word(b, PODIUM_H_N), k = podium_word(b, PODIUM_H_K), dim = podium_word(b, PODIUM_H_DIM);
  ((uint32_t *)b)[PODIUM_H_OUT_ORDER_LEN] = 0;
  if (n > 0 && podium_word(b, PODIUM_H_NATTR) != nattr) {
    pjx_s("mmr: invalid input: the block's attribute columns differ from the params'");
    pjx_flush(PODIUM_LOG_ERROR);
    return 1;
  }
  uint32_t m = k < n ? k : n;
  if (m == 0) return 0;
  const float *scores = podium_at(b, PODIUM_H_SCORE);
  const int32_t *attr = podium_at(b, PODIUM_H_ATTR);
  const int32_t *codes = attr_col >= 0 ? attr + (size_t)attr_col * n : 0;
  int32_t *order = podium_at(b, PODIUM_H_OUT_ORDER);
  if (round_robin) {
    if (!grow(n, 2, 0)) return 12; /* two floats a candidate: the 64-bit sort keys */
    if (!round_robin_order(scores, codes, n, order, m)) return 1;
  } else {
    uint64_t p = pool ? (uint64_t)pool : (5ull * m > 100 ? 5ull * m : 100); /* pool ≥ 0 */
    if (p < m) p = m;
    if (p > n) p = n;
    if (!grow((uint32_t)p, dim, n)) return 12;
    top_p(scores, n, (uint32_t)p);
    prepare(scores, podium_at(b, PODIUM_H_EMB), dim, codes, (uint32_t)p);
    mmr((uint32_t)p, dim, order, m);
  }
  ((uint32_t *)b)[PODIUM_H_OUT_ORDER_LEN] = m;
  return 0;
}
