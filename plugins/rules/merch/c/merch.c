/*
 * merch.c: the C build of the rules/merch plugin, freestanding (no libc). Same params,
 * errors and outputs as the Go build (../go, over package merch in ..): drop_if, boost and
 * bury, pins, and the cap per attribute value. See ../README.md for params.
 *
 * Params are compiled at init into fixed tables (the MAX_* bounds below; params beyond them
 * are refused with a logged reason). The cap's scratch grows with memory.grow when a request
 * has more candidates than any before it, as the Go package's does, and is reused after that:
 * nothing is allocated on the request path (RATIONALE.md, "Why do the C guests grow their
 * scratch instead of sizing it for MaxCandidates?").
 */
#include "podium.h"
#include "podium_json.h"
#include "podium_params.h"
#include "podium_sort.h"

#pragma STDC FP_CONTRACT OFF /* score·mul + add rounds twice, as in Go */

PODIUM_DEFINE_BUFFER

#define MAX_COLS 1024          /* feature and attribute columns */
#define MAX_CONDS 256          /* drop_if conditions; boosts and buries */
#define MAX_CODES 65536        /* attribute codes over all conditions */
#define BITMAP_WORDS 32768     /* 256 KiB of condition bitmaps in all */
#define MAX_BITMAP_CODE (1 << 20)
#define MAX_PINS 8192
#define DIRECT_CODES (1 << 15) /* as merch.directCodes */
#define MAX_F32 3.40282346638528859811704183484516925440e+38f

enum { ERR_SDK = 1, ERR_PARAMS = 2 }; /* podium_init codes, as the Go SDK returns them */

typedef struct {
  int32_t col;
  uint8_t attr, missing, has_cmp, has_ne;
  float lo, hi, ne;
  const uint64_t *bits; /* bit c+1: code c matches (bit 0: missing); 0 when codes are too large */
  uint32_t nbits;       /* words */
  const int32_t *codes; /* sorted, when bits is 0 */
  uint32_t ncodes;
  float mul, add;
} cond;

static pjx_str features[MAX_COLS], attributes[MAX_COLS];
static uint32_t nfeat, nattr;
static cond drops[MAX_CONDS], adjs[MAX_CONDS]; /* adjs: boosts, then buries */
static uint32_t ndrop, nadj;
static int32_t codes_arena[MAX_CODES];
static uint32_t ncodes_used;
static uint64_t bits_arena[BITMAP_WORDS];
static uint32_t nbits_used;
static uint64_t pins[MAX_PINS]; /* dense id << 32 | position, sorted */
static uint32_t npins;
static int32_t cap_col = -1, cap_max;
static int cap_drop;

static int32_t fail(const char *what, const char *msg) {
  pjx_s("init: merch: invalid params: ");
  if (what) pjx_s(what), pjx_s(": ");
  pjx_s(msg);
  pjx_flush(PODIUM_LOG_ERROR);
  return ERR_PARAMS;
}

static int32_t lookup(pjx_str space, pjx_str value) {
  if (space.n == 0 || value.n == 0) return -1; /* as the Go SDK */
  return podium_lookup(space.p, (int32_t)space.n, value.p, (int32_t)value.n);
}

static int32_t index_of(const pjx_str *list, uint32_t n, pjx_str s) {
  for (uint32_t i = 0; i < n; i++)
    if (pjx_eq(list[i], s)) return (int32_t)i;
  return -1;
}

/* Codes and pins compiled at init are sorted with podium_sort_i32 and podium_sort_u64. */

/* ---- params ---- */

enum { LT, LE, GT, GE, EQ, NE, NCMP };
static const char *const cmp_keys[NCMP] = {"lt", "le", "gt", "ge", "eq", "ne"};

/* condition is one decoded Condition (or Adjust): what encoding/json would fill in. */
typedef struct {
  pjx_str feature, attribute, value;
  const char *values, *values_end; /* the raw array, or 0 */
  int missing;
  int has[NCMP];
  float cmp[NCMP];
  float add;
  int has_mul;
  float mul;
} condition;

/* decode_condition decodes the object (or null) at v strictly; adjust allows add and mul. */
static int decode_condition(const char *v, const char *end, int adjust, condition *c, const char **err) {
  *c = (condition){0};
  int t = pjx_type(v);
  if (t == PJX_NULL) return 1;
  if (t != PJX_OBJ) return *err = "a condition must be an object", 0;
  pj_iter it = pj_iter_object(v, end);
  while (pj_next(&it)) {
    const char *x = it.value;
    int xt = pjx_type(x), k;
    if (pjx_key(&it, "feature") || pjx_key(&it, "attribute") || pjx_key(&it, "value")) {
      pjx_str *dst = pjx_key(&it, "feature") ? &c->feature : pjx_key(&it, "attribute") ? &c->attribute : &c->value;
      if (xt == PJX_NULL) continue; /* null leaves a string as it is */
      if (xt != PJX_STR || !pjx_string(x, end, dst)) return *err = "feature, attribute and value must be strings", 0;
      continue;
    }
    if (pjx_key(&it, "values")) {
      c->values = 0;
      if (xt == PJX_NULL) continue;
      if (xt != PJX_ARR) return *err = "values must be a list of strings", 0;
      pj_iter e = pj_iter_array(x, end);
      while (pj_next(&e))
        if (pjx_type(e.value) != PJX_STR && pjx_type(e.value) != PJX_NULL) return *err = "values must be a list of strings", 0;
      c->values = x, c->values_end = pj_skip(x, end);
      continue;
    }
    if (pjx_key(&it, "missing")) {
      if (xt == PJX_NULL) continue;
      if (xt != PJX_BOOL) return *err = "missing must be true or false", 0;
      c->missing = *x == 't';
      continue;
    }
    for (k = 0; k < NCMP && !pjx_key(&it, cmp_keys[k]); k++) {}
    if (k < NCMP) {
      c->has[k] = 0;
      if (xt == PJX_NULL) continue; /* null resets a pointer */
      if (!pjx_f32(x, end, &c->cmp[k])) return *err = "comparisons must be float32 numbers", 0;
      c->has[k] = 1;
      continue;
    }
    if (adjust && pjx_key(&it, "add")) {
      if (xt == PJX_NULL) continue;
      if (!pjx_f32(x, end, &c->add)) return *err = "add must be a float32 number", 0;
      continue;
    }
    if (adjust && pjx_key(&it, "mul")) {
      c->has_mul = 0;
      if (xt == PJX_NULL) continue;
      if (!pjx_f32(x, end, &c->mul)) return *err = "mul must be a float32 number", 0;
      c->has_mul = 1;
      continue;
    }
    return *err = "unknown field in a condition", 0;
  }
  return 1;
}

static float nextafter32(float x, float y) { /* Go's math.Nextafter32 for finite x */
  union { float f; uint32_t u; } v = {x};
  if (x == y) return x;
  if (x == 0) {
    v.u = 1u | (y < 0 ? 0x80000000u : 0);
    return v.f;
  }
  v.u += ((y > x) == (x > 0)) ? 1 : (uint32_t)-1;
  return v.f;
}

static int finite(float v) { return v - v == 0; }

/* Go's min and max of finite float32s; -0 and +0 compare equal, which is all Apply asks. */
static float fmin32(float a, float b) { return b < a ? b : a; }
static float fmax32(float a, float b) { return b > a ? b : a; }

static void warn_unknown(pjx_str attr, pjx_str v) {
  pjx_s("rules/merch: "), pjx_q(attr), pjx_s(" "), pjx_q(v), pjx_s(" is unknown to the engine and matches nothing");
  pjx_flush(PODIUM_LOG_WARN);
}

/* compile_condition is merch's config.cond: column indexes, the interval, the codes. */
static int compile_condition(const condition *d, cond *k, const char **err) {
  *k = (cond){0};
  k->missing = (uint8_t)d->missing;
  int any_cmp = 0;
  for (int i = 0; i < NCMP; i++) any_cmp |= d->has[i];
  if (d->feature.n && d->attribute.n) return *err = "give feature or attribute, not both", 0;
  if (d->feature.n) {
    k->col = index_of(features, nfeat, d->feature);
    if (k->col < 0) return *err = "a feature is not in the stage's features", 0;
    if (d->value.n || (d->values && d->values[1] != ']'))
      return *err = "value and values go with attribute, not feature", 0;
    float inf = __builtin_inff();
    k->lo = -inf, k->hi = inf;
    for (int i = 0; i < NCMP; i++)
      if (d->has[i] && !finite(d->cmp[i])) return *err = "comparison values must be finite", 0;
    if (d->has[LT]) k->hi = fmin32(k->hi, nextafter32(d->cmp[LT], -inf));
    if (d->has[LE]) k->hi = fmin32(k->hi, d->cmp[LE]);
    if (d->has[GT]) k->lo = fmax32(k->lo, nextafter32(d->cmp[GT], inf));
    if (d->has[GE]) k->lo = fmax32(k->lo, d->cmp[GE]);
    if (d->has[EQ]) k->lo = fmax32(k->lo, d->cmp[EQ]), k->hi = fmin32(k->hi, d->cmp[EQ]);
    if (d->has[NE]) k->has_ne = 1, k->ne = d->cmp[NE];
    k->has_cmp = (uint8_t)any_cmp;
    if (!any_cmp && !k->missing) return *err = "a feature has no comparison (lt, le, gt, ge, eq, ne) and no \"missing\": true", 0;
    return 1;
  }
  if (!d->attribute.n) return *err = "give a feature or an attribute", 0;
  k->attr = 1;
  k->col = index_of(attributes, nattr, d->attribute);
  if (k->col < 0) return *err = "an attribute is not in the stage's attributes", 0;
  if (any_cmp) return *err = "comparisons go with feature, not attribute", 0;
  /* The codes of value, then of each of values, looked up in that order (warnings too). */
  int32_t *codes = codes_arena + ncodes_used, code;
  uint32_t room = MAX_CODES - ncodes_used, n = 0;
  int nvalues = d->value.n > 0;
  if (d->value.n) {
    if ((code = lookup(d->attribute, d->value)) < 0) warn_unknown(d->attribute, d->value);
    else if (n < room) codes[n++] = code;
    else return *err = "too many attribute values", 0;
  }
  if (d->values) {
    pj_iter e = pj_iter_array(d->values, d->values_end);
    while (pj_next(&e)) {
      pjx_str s = {0, 0};
      if (pjx_type(e.value) == PJX_STR && !pjx_string(e.value, d->values_end, &s)) return *err = "params too large", 0;
      nvalues++;
      if ((code = lookup(d->attribute, s)) < 0) warn_unknown(d->attribute, s);
      else if (n < room) codes[n++] = code;
      else return *err = "too many attribute values", 0;
    }
  }
  if (!nvalues && !k->missing) return *err = "an attribute has no value, values or \"missing\": true", 0;
  podium_sort_i32(codes, n);
  uint32_t m = 0;
  for (uint32_t i = 0; i < n; i++)
    if (m == 0 || codes[i] != codes[m - 1]) codes[m++] = codes[i];
  k->codes = codes, k->ncodes = m;
  ncodes_used += m;
  if (m == 0 || codes[m - 1] < MAX_BITMAP_CODE) {
    uint32_t top = m ? (uint32_t)codes[m - 1] + 1 : 0, words = top / 64 + 1;
    if (words <= BITMAP_WORDS - nbits_used) { /* else the sorted codes (same matches) */
      uint64_t *bits = bits_arena + nbits_used;
      nbits_used += words;
      if (k->missing) bits[0] |= 1;
      for (uint32_t i = 0; i < m; i++) bits[((uint32_t)codes[i] + 1) / 64] |= 1ull << (((uint32_t)codes[i] + 1) % 64);
      k->bits = bits, k->nbits = words;
    }
  }
  return 1;
}

/* A pin as decoded: the key (an id) and its position; a later equal key replaces it. */
static pjx_str pin_ids[MAX_PINS];
static int64_t pin_pos[MAX_PINS];

PODIUM_EXPORT("podium_init") int32_t podium_init(const char *params, int32_t len) {
  const char *end = params + len;
  pjx_used = 0, ndrop = nadj = npins = ncodes_used = nbits_used = 0;
  cap_col = -1, cap_drop = 0;
  for (uint32_t i = 0; i < BITMAP_WORDS; i++) bits_arena[i] = 0;
  /* The SDK's own decode first (else it returns 1). */
  const char *err;
  const char *p = pjx_sdk_params(params, end, features, &nfeat, attributes, &nattr, MAX_COLS, &err);
  if (!p) return fail(0, err), ERR_SDK;

  /* merch.DecodeParams: strict, then compile, in the order merch compiles. */
  const char *drop_v = 0, *boost_v = 0, *bury_v = 0, *cap_v = 0;
  uint32_t npin = 0;
  pj_iter it = pj_iter_object(p, end);
  while (pj_next(&it)) {
    const char *v = it.value;
    int t = pjx_type(v);
    if (pjx_key(&it, "drop_if")) drop_v = t == PJX_NULL ? 0 : v;
    else if (pjx_key(&it, "boost")) boost_v = t == PJX_NULL ? 0 : v;
    else if (pjx_key(&it, "bury")) bury_v = t == PJX_NULL ? 0 : v;
    else if (pjx_key(&it, "cap")) cap_v = t == PJX_NULL ? 0 : v;
    else if (pjx_key(&it, "pin")) {
      if (t == PJX_NULL) {
        npin = 0;
        continue;
      }
      if (t != PJX_OBJ) return fail("pin", "must be an object of id: position");
      pj_iter m = pj_iter_object(v, end);
      while (pj_next(&m)) {
        pjx_str id;
        int64_t pos = 0;
        if (!pjx_unescape(m.key, m.key_len, &id)) return fail("pin", "params too large");
        if (pjx_type(m.value) != PJX_NULL && !pjx_int(m.value, end, &pos)) return fail("pin", "positions must be integers");
        uint32_t j = 0;
        while (j < npin && !pjx_eq(pin_ids[j], id)) j++;
        if (j == npin) {
          if (npin == MAX_PINS) return fail("pin", "too many pins");
          pin_ids[npin++] = id;
        }
        pin_pos[j] = pos;
      }
    } else if (!pjx_key(&it, "features") && !pjx_key(&it, "attributes")) {
      pjx_s("init: merch: invalid params: json: unknown field \"");
      for (uint32_t i = 0; i < it.key_len; i++) pjx_line[pjx_linelen < 511 ? pjx_linelen++ : 511] = it.key[i];
      pjx_s("\"");
      pjx_flush(PODIUM_LOG_ERROR);
      return ERR_PARAMS;
    }
  }

  /* Decode everything first (a decode error wins over a compile error, as in Go). */
  condition c;
  err = 0;
  int drop_one = drop_v && pjx_type(drop_v) == PJX_OBJ;
  if (drop_v && !drop_one && pjx_type(drop_v) != PJX_ARR) return fail("drop_if", "must be a condition or a list of them");
  const char *lists[3] = {drop_v, boost_v, bury_v};
  for (int l = 0; l < 3; l++) {
    if (!lists[l]) continue;
    if (l > 0 && pjx_type(lists[l]) != PJX_ARR) return fail(l == 1 ? "boost" : "bury", "must be a list");
    if (l == 0 && drop_one) {
      if (!decode_condition(lists[l], end, 0, &c, &err)) return fail("drop_if", err);
      continue;
    }
    pj_iter e = pj_iter_array(lists[l], end);
    while (pj_next(&e))
      if (!decode_condition(e.value, end, l > 0, &c, &err)) return fail(l == 0 ? "drop_if" : l == 1 ? "boost" : "bury", err);
  }
  pjx_str cap_attr = {0, 0}, cap_mode = {0, 0};
  int64_t cap_max64 = 0;
  if (cap_v) {
    if (pjx_type(cap_v) != PJX_OBJ) return fail("cap", "must be an object");
    pj_iter m = pj_iter_object(cap_v, end);
    while (pj_next(&m)) {
      int t = pjx_type(m.value);
      if (pjx_key(&m, "attribute") || pjx_key(&m, "mode")) {
        pjx_str *dst = pjx_key(&m, "attribute") ? &cap_attr : &cap_mode;
        if (t != PJX_NULL && (t != PJX_STR || !pjx_string(m.value, end, dst))) return fail("cap", "attribute and mode must be strings");
      } else if (pjx_key(&m, "max")) {
        if (t != PJX_NULL && !pjx_int(m.value, end, &cap_max64)) return fail("cap", "max must be an integer");
      } else return fail("cap", "unknown field");
    }
  }

  /* Compile: drop_if, boosts, buries, pins, cap. */
  for (int l = 0; l < 3; l++) {
    if (!lists[l]) continue;
    const char *name = l == 0 ? "drop_if" : l == 1 ? "boost" : "bury";
    pj_iter e = pj_iter_array(lists[l], end);
    int single = l == 0 && drop_one;
    while (single || pj_next(&e)) {
      decode_condition(single ? lists[l] : e.value, end, l > 0, &c, &err);
      cond *k = l == 0 ? &drops[ndrop] : &adjs[nadj];
      if ((l == 0 ? ndrop : nadj) == MAX_CONDS) return fail(name, "too many conditions");
      if (!compile_condition(&c, k, &err)) return fail(name, err);
      if (l == 0) {
        ndrop++;
      } else {
        float mul = c.has_mul ? c.mul : 1;
        if (!finite(mul) || !finite(c.add)) return fail(name, "add and mul must be finite");
        if (l == 1 && (c.add < 0 || mul < 1)) return fail(name, "a boost needs add ≥ 0 and mul ≥ 1; use bury to lower scores");
        if (l == 2 && (c.add > 0 || mul < 0 || mul > 1)) return fail(name, "a bury needs add ≤ 0 and 0 ≤ mul ≤ 1");
        k->mul = mul, k->add = c.add;
        nadj++;
      }
      if (single) break;
    }
  }
  for (uint32_t j = 0; j < npin; j++)
    if (pin_pos[j] < 0) return fail("pin", "positions start at 0");
  static const pjx_str id_space = {"id", 2};
  for (uint32_t j = 0; j < npin; j++) {
    int32_t dense = lookup(id_space, pin_ids[j]);
    if (dense < 0) {
      pjx_s("rules/merch: pin: unknown item id "), pjx_q(pin_ids[j]), pjx_s(", ignored");
      pjx_flush(PODIUM_LOG_WARN);
      continue;
    }
    int64_t pos = pin_pos[j] > 2147483647 ? 2147483647 : pin_pos[j];
    pins[npins++] = (uint64_t)(uint32_t)dense << 32 | (uint64_t)pos;
  }
  podium_sort_u64(pins, npins);
  uint32_t m = 0; /* two ids resolving to one dense id: keep the first position */
  for (uint32_t j = 0; j < npins; j++)
    if (m == 0 || pins[j] >> 32 != pins[m - 1] >> 32) pins[m++] = pins[j];
  npins = m;
  if (cap_v) {
    int32_t col = index_of(attributes, nattr, cap_attr);
    if (col < 0) return fail("cap", "the attribute is not in the stage's attributes");
    if (cap_max64 < 1) return fail("cap", "max must be at least 1");
    if (cap_mode.n == 0 || pjx_eqlit(cap_mode, "push")) cap_drop = 0;
    else if (pjx_eqlit(cap_mode, "drop")) cap_drop = 1;
    else return fail("cap", "mode must be \"push\" or \"drop\"");
    cap_col = col;
    cap_max = cap_max64 > 2147483647 ? 2147483647 : (int32_t)cap_max64;
  }
  return 0;
}

/* ---- the request path ---- */

static inline float clamp(float v) {
  if (v != v) return 0;
  if (v > MAX_F32) return MAX_F32;
  if (v < -MAX_F32) return -MAX_F32;
  return v;
}

static inline int in_bits(const cond *k, int32_t c) {
  uint32_t u = (uint32_t)c + 1, w = u >> 6;
  return w < k->nbits && (k->bits[w] >> (u & 63) & 1);
}

static int in_sorted(const cond *k, int32_t c) {
  if (c < 0) return k->missing;
  uint32_t a = 0, b = k->ncodes;
  while (a < b) {
    uint32_t m = (a + b) >> 1;
    if (k->codes[m] < c) a = m + 1;
    else b = m;
  }
  return a < k->ncodes && k->codes[a] == c;
}

static inline int match_x(const cond *k, float x) {
  if (x != x) return k->missing;
  if (!k->has_cmp || x < k->lo || x > k->hi) return 0;
  return !k->has_ne || x != k->ne;
}

static inline int match_attr(const cond *k, int32_t c) { return k->bits ? in_bits(k, c) : in_sorted(k, c); }

/* The cap's scratch, carved from pages taken with memory.grow; all counters and the table
 * are zero between calls. */
static uint32_t sc_n, sc_size, sc_cnt_len;
static int32_t *sc_slots, *sc_used, *sc_over, *sc_cnt, *sc_head, *sc_next, *sc_heap;
static uint8_t *sc_incap;

static int grow(uint32_t n, uint32_t cnt_len) {
  if (n <= sc_n && cnt_len <= sc_cnt_len) return 1;
  if (n < sc_n) n = sc_n;
  uint32_t size = 1;
  while (size < 2 * n) size <<= 1;
  if (cnt_len < size) cnt_len = size;
  if (cnt_len < sc_cnt_len) cnt_len = sc_cnt_len;
  uint64_t bytes = 4ull * size + 4ull * n * 3 + 4ull * cnt_len * 2 + 4ull * (n + 1) + n + 64;
  uint8_t *at = podium_grow(bytes);
  if (!at) return 0;
  sc_slots = (int32_t *)at, at += 4 * size;
  sc_used = (int32_t *)at, at += 4 * n;
  sc_over = (int32_t *)at, at += 4 * n;
  sc_next = (int32_t *)at, at += 4 * n;
  sc_cnt = (int32_t *)at, at += 4 * cnt_len;
  sc_head = (int32_t *)at, at += 4 * cnt_len;
  sc_heap = (int32_t *)at, at += 4 * (n + 1);
  sc_incap = at;
  sc_n = n, sc_size = size, sc_cnt_len = cnt_len;
  return 1;
}

static inline int better(const float *s, int32_t a, int32_t b) {
  if (s[a] != s[b]) return s[a] > s[b];
  return a < b;
}

static void best(int32_t first, const int32_t *next, int32_t *heap, int32_t cap, const float *scores, uint8_t *in_cap) {
  int32_t fill = 0;
  for (int32_t i = first; i >= 0; i = next[i]) {
    if (fill < cap) {
      int32_t j = fill;
      while (j > 0) {
        int32_t p = (j - 1) / 2;
        if (!better(scores, heap[p], i)) break;
        heap[j] = heap[p], j = p;
      }
      heap[j] = i, in_cap[i] = 1, fill++;
      continue;
    }
    if (!better(scores, i, heap[0])) {
      in_cap[i] = 0;
      continue;
    }
    in_cap[heap[0]] = 0, in_cap[i] = 1;
    int32_t j = 0;
    for (;;) {
      int32_t l = 2 * j + 1;
      if (l >= cap) break;
      int32_t w = l;
      if (l + 1 < cap && better(scores, heap[l], heap[l + 1])) w = l + 1;
      if (!better(scores, i, heap[w])) break;
      heap[j] = heap[w], j = w;
    }
    heap[j] = i;
  }
}

static int apply_cap(const int32_t *codes, uint32_t n, float *scores, uint8_t *keep, const int32_t *pin) {
  int32_t max_code = -1;
  for (uint32_t i = 0; i < n; i++)
    if (codes[i] > max_code) max_code = codes[i];
  int direct = max_code < DIRECT_CODES;
  if (!grow(n, direct ? (uint32_t)max_code + 1 : 0)) return 0;
  int32_t *cnt = sc_cnt, *head = sc_head, *next = sc_next, *used = sc_used, *slots = sc_slots;
  uint32_t nused = 0;
  float lo = __builtin_inff();
  for (uint32_t i = 0; i < n; i++)
    if (keep[i] && scores[i] < lo) lo = scores[i];
  if (direct) {
    for (uint32_t i = 0; i < n; i++) {
      int32_t code = codes[i];
      if (code < 0 || !keep[i] || pin[i] >= 0) continue;
      if (cnt[code] == 0) used[nused++] = code, head[code] = -1;
      cnt[code]++;
      next[i] = head[code], head[code] = (int32_t)i;
    }
  } else {
    uint32_t mask = sc_size - 1;
    for (uint32_t i = 0; i < n; i++) {
      int32_t code = codes[i];
      if (code < 0 || !keep[i] || pin[i] >= 0) continue;
      uint32_t u = ((uint32_t)code * 0x9E3779B1u) & mask;
      while (slots[u] != code + 1 && slots[u] != 0) u = (u + 1) & mask;
      slots[u] = code + 1;
      int32_t h = (int32_t)u;
      if (cnt[h] == 0) used[nused++] = h, head[h] = -1;
      cnt[h]++;
      next[i] = head[h], head[h] = (int32_t)i;
    }
  }
  uint32_t nover = 0;
  for (uint32_t u = 0; u < nused; u++) {
    int32_t h = used[u];
    if (cnt[h] > cap_max) {
      sc_over[nover++] = h;
      best(head[h], next, sc_heap, cap_max, scores, sc_incap);
    }
    cnt[h] = 0;
    if (!direct) slots[h] = 0;
  }
  if (nover == 0) return 1;
  float hi = -__builtin_inff();
  for (uint32_t o = 0; o < nover; o++)
    for (int32_t i = head[sc_over[o]]; i >= 0; i = next[i])
      if (!sc_incap[i] && scores[i] > hi) hi = scores[i];
  double shift = (double)hi - (double)lo + 1;
  for (uint32_t o = 0; o < nover; o++)
    for (int32_t i = head[sc_over[o]]; i >= 0; i = next[i]) {
      if (sc_incap[i]) continue;
      if (cap_drop) keep[i] = 0;
      else scores[i] = clamp((float)((double)scores[i] - shift));
    }
  return 1;
}

/* podium_call applies the rules to a prefilled rules block (keep 1, the input scores, pin
 * -1): drop_if, then boosts and buries, then pins, then the cap (merch.Rules.Apply). */
PODIUM_EXPORT("podium_call") int32_t podium_call(uint8_t *b, int32_t len) {
  if (!podium_check_header(b, (uint32_t)len, PODIUM_KIND_RULES)) return 11;
  uint32_t n = podium_word(b, PODIUM_H_N);
  if (n > 0 && (podium_word(b, PODIUM_H_NFEAT) != nfeat || podium_word(b, PODIUM_H_NATTR) != nattr)) {
    pjx_s("merch: invalid input: the block's feature or attribute columns differ from the params'");
    pjx_flush(PODIUM_LOG_ERROR);
    return 1;
  }
  const uint32_t *ids = podium_at(b, PODIUM_H_IDS);
  const float *feat = podium_at(b, PODIUM_H_FEAT);
  const int32_t *attr = podium_at(b, PODIUM_H_ATTR);
  float *scores = podium_at(b, PODIUM_H_OUT_SCORE);
  uint8_t *keep = podium_at(b, PODIUM_H_OUT_KEEP);
  int32_t *pin = podium_at(b, PODIUM_H_OUT_PIN);
  for (uint32_t r = 0; r < ndrop; r++) {
    const cond *k = &drops[r];
    if (k->attr) {
      const int32_t *col = attr + (size_t)k->col * n;
      if (k->bits)
        for (uint32_t i = 0; i < n; i++) keep[i] &= (uint8_t)!in_bits(k, col[i]);
      else
        for (uint32_t i = 0; i < n; i++) keep[i] &= (uint8_t)!in_sorted(k, col[i]);
      continue;
    }
    const float *col = feat + (size_t)k->col * n;
    for (uint32_t i = 0; i < n; i++) keep[i] &= (uint8_t)!match_x(k, col[i]);
  }
  for (uint32_t r = 0; r < nadj; r++) {
    const cond *k = &adjs[r];
    float mul = k->mul, add = k->add;
    if (k->attr) {
      const int32_t *col = attr + (size_t)k->col * n;
      for (uint32_t i = 0; i < n; i++)
        if (match_attr(k, col[i])) scores[i] = clamp(scores[i] * mul + add);
      continue;
    }
    const float *col = feat + (size_t)k->col * n;
    for (uint32_t i = 0; i < n; i++)
      if (match_x(k, col[i])) scores[i] = clamp(scores[i] * mul + add);
  }
  if (npins > 0) {
    uint32_t lo = (uint32_t)(pins[0] >> 32), hi = (uint32_t)(pins[npins - 1] >> 32);
    int32_t last = (int32_t)n - 1;
    for (uint32_t i = 0; i < n; i++) {
      uint32_t id = ids[i];
      if (id < lo || id > hi || !keep[i]) continue;
      uint32_t a = 0, e = npins;
      while (a < e) {
        uint32_t m = (a + e) >> 1;
        if ((uint32_t)(pins[m] >> 32) < id) a = m + 1;
        else e = m;
      }
      if (a < npins && (uint32_t)(pins[a] >> 32) == id) {
        int32_t pos = (int32_t)(uint32_t)pins[a];
        pin[i] = pos < last ? pos : last;
      }
    }
  }
  if (cap_col >= 0 && n > (uint32_t)cap_max)
    if (!apply_cap(attr + (size_t)cap_col * n, n, scores, keep, pin)) return 12;
  return 0;
}
