/*
 * podium_params.h: strict reading of params JSON for freestanding C guests (rules/merch and
 * diversity/mmr use it), on top of podium_json.h. It reads what encoding/json would give the Go
 * guests (plugins/rules/merch/params.go, plugins/diversity/mmr/mmr.go) for the JSON the host
 * hands over (plugin.MergeParams: valid, compacted JSON, top-level keys unique):
 *
 *   - keys match ASCII case-insensitively, as encoding/json's field matching does;
 *   - strings are unescaped (the host's json.Marshal writes & < > as \u0026 ...), into a
 *     bounded arena (PJX_ARENA bytes);
 *   - numbers: float32 fields round like strconv.ParseFloat(s, 32) for literals of up to 19
 *     significant digits and |exponent| <= 22 (exact double, then one rounding to float32;
 *     a double rounding is possible only for literals longer than that); a value outside the
 *     float32 range is an error, as in Go; int fields take integer literals only (3.0 or 1e3
 *     are errors in Go too).
 *
 * It allocates nothing and is meant for podium_init only. scripts/build-wasm.sh hashes every
 * sdk/c header into each C guest's cache key, so editing it rebuilds the guests.
 */
#ifndef PODIUM_PARAMS_H
#define PODIUM_PARAMS_H

#include "podium.h"
#include "podium_json.h"

#ifndef PJX_ARENA
#define PJX_ARENA 65536
#endif

typedef struct {
  const char *p;
  uint32_t n;
} pjx_str;

enum { PJX_NULL, PJX_BOOL, PJX_NUM, PJX_STR, PJX_ARR, PJX_OBJ };

/* pjx_type returns the JSON type of the value at v (the host's JSON is valid and compact). */
static int pjx_type(const char *v) {
  switch (*v) {
  case 'n': return PJX_NULL;
  case 't': case 'f': return PJX_BOOL;
  case '"': return PJX_STR;
  case '[': return PJX_ARR;
  case '{': return PJX_OBJ;
  }
  return PJX_NUM;
}

static char pjx_arena[PJX_ARENA];
static uint32_t pjx_used;

static uint32_t pjx_hex4(const char *s, const char *end) {
  uint32_t u = 0;
  for (int i = 0; i < 4; i++) {
    if (s + i >= end) return 0xFFFD;
    char c = s[i];
    u <<= 4;
    if (c >= '0' && c <= '9') u |= (uint32_t)(c - '0');
    else if (c >= 'a' && c <= 'f') u |= (uint32_t)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') u |= (uint32_t)(c - 'A' + 10);
    else return 0xFFFD;
  }
  return u;
}

static uint32_t pjx_utf8(char *d, uint32_t r) {
  if (r < 0x80) return d[0] = (char)r, 1;
  if (r < 0x800) return d[0] = (char)(0xC0 | r >> 6), d[1] = (char)(0x80 | (r & 63)), 2;
  if (r < 0x10000) {
    d[0] = (char)(0xE0 | r >> 12), d[1] = (char)(0x80 | (r >> 6 & 63)), d[2] = (char)(0x80 | (r & 63));
    return 3;
  }
  d[0] = (char)(0xF0 | r >> 18), d[1] = (char)(0x80 | (r >> 12 & 63));
  d[2] = (char)(0x80 | (r >> 6 & 63)), d[3] = (char)(0x80 | (r & 63));
  return 4;
}

/* pjx_unescape decodes the raw string bytes s[0:n] into *out: in place when they hold no
 * escape, else into the arena (a decoded string is never longer than its raw bytes). It
 * returns 0 when the arena is full. Lone surrogates become U+FFFD, as in encoding/json. */
static int pjx_unescape(const char *s, uint32_t n, pjx_str *out) {
  uint32_t i = 0;
  while (i < n && s[i] != '\\') i++;
  if (i == n) {
    out->p = s, out->n = n;
    return 1;
  }
  if (n > PJX_ARENA - pjx_used) return 0;
  char *d = pjx_arena + pjx_used;
  const char *end = s + n;
  uint32_t k = 0;
  for (i = 0; i < n;) {
    char c = s[i++];
    if (c != '\\' || i >= n) {
      d[k++] = c;
      continue;
    }
    c = s[i++];
    switch (c) {
    case 'b': d[k++] = '\b'; break;
    case 'f': d[k++] = '\f'; break;
    case 'n': d[k++] = '\n'; break;
    case 'r': d[k++] = '\r'; break;
    case 't': d[k++] = '\t'; break;
    case 'u': {
      uint32_t r = pjx_hex4(s + i, end);
      i += 4;
      if (r >= 0xD800 && r < 0xDC00 && i + 6 <= n && s[i] == '\\' && s[i + 1] == 'u') {
        uint32_t lo = pjx_hex4(s + i + 2, end);
        if (lo >= 0xDC00 && lo < 0xE000) {
          r = 0x10000 + ((r - 0xD800) << 10) + (lo - 0xDC00);
          i += 6;
        } else r = 0xFFFD;
      } else if (r >= 0xD800 && r < 0xE000) r = 0xFFFD;
      k += pjx_utf8(d + k, r);
      break;
    }
    default: d[k++] = c; /* \" \\ \/ */
    }
  }
  pjx_used += k;
  out->p = d, out->n = k;
  return 1;
}

/* pjx_string reads the string value at v; 0 if it is not a string or the arena is full. */
static int pjx_string(const char *v, const char *end, pjx_str *out) {
  const char *s;
  uint32_t n;
  return pj_string(v, end, &s, &n) && pjx_unescape(s, n, out);
}

static int pjx_eq(pjx_str a, pjx_str b) {
  if (a.n != b.n) return 0;
  for (uint32_t i = 0; i < a.n; i++)
    if (a.p[i] != b.p[i]) return 0;
  return 1;
}

static int pjx_eqlit(pjx_str a, const char *lit) {
  uint32_t i = 0;
  for (; i < a.n && lit[i]; i++)
    if (a.p[i] != lit[i]) return 0;
  return i == a.n && lit[i] == 0;
}

/* pjx_key reports whether the current member's key is lit, ASCII case-insensitively (as
 * encoding/json matches struct fields). */
static int pjx_key(const pj_iter *it, const char *lit) {
  pjx_str k;
  uint32_t mark = pjx_used;
  if (!pjx_unescape(it->key, it->key_len, &k)) return 0;
  pjx_used = mark; /* keys are compared, not kept */
  uint32_t i = 0;
  for (; i < k.n && lit[i]; i++) {
    char a = k.p[i], b = lit[i];
    if (a >= 'A' && a <= 'Z') a += 'a' - 'A';
    if (b >= 'A' && b <= 'Z') b += 'a' - 'A';
    if (a != b) return 0;
  }
  return i == k.n && lit[i] == 0;
}

/* pjx_pow10 returns 10^e for e in [0, 22], exactly. */
static double pjx_pow10(int e) {
  static const double p[23] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                               1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  return p[e];
}

/* pjx_number parses the number literal at v (valid JSON) into a double: exact when the
 * significand has at most 19 digits, fits in 53 bits and the exponent is within ±22. */
static int pjx_number(const char *v, const char *end, double *out, int *integer) {
  const char *p = v;
  int neg = 0, exp = 0, digits = 0, isint = 1;
  uint64_t m = 0;
  if (p < end && *p == '-') neg = 1, p++;
  for (; p < end && *p >= '0' && *p <= '9'; p++, digits++) {
    if (m < 1000000000000000000ull) m = m * 10 + (uint64_t)(*p - '0');
    else exp++;
  }
  if (!digits) return 0;
  if (p < end && *p == '.') {
    isint = 0;
    for (p++; p < end && *p >= '0' && *p <= '9'; p++)
      if (m < 1000000000000000000ull) m = m * 10 + (uint64_t)(*p - '0'), exp--;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    isint = 0;
    int eneg = 0, e = 0;
    p++;
    if (p < end && (*p == '-' || *p == '+')) eneg = *p == '-', p++;
    for (; p < end && *p >= '0' && *p <= '9'; p++)
      if (e < 100000) e = e * 10 + (*p - '0');
    exp += eneg ? -e : e;
  }
  double d = (double)m; /* exact when m < 2^53 */
  if (m == 0) d = 0;
  else if (exp < 0) {
    int ae = -exp;
    if (ae <= 22) d /= pjx_pow10(ae);
    else {
      while (ae > 22 && d != 0) d /= 1e22, ae -= 22;
      d /= pjx_pow10(ae);
    }
  } else if (exp > 0) {
    int ae = exp;
    while (ae > 22 && d - d == 0) d *= 1e22, ae -= 22;
    d *= pjx_pow10(ae > 22 ? 22 : ae);
  }
  *out = neg ? -d : d;
  if (integer) *integer = isint;
  return 1;
}

/* pjx_f32 reads a float32 field: a number within the float32 range (else 0, as Go's
 * decoder refuses it). */
static int pjx_f32(const char *v, const char *end, float *out) {
  double d;
  if (pjx_type(v) != PJX_NUM || !pjx_number(v, end, &d, 0)) return 0;
  float f = (float)d;
  if (f - f != 0) return 0; /* beyond ±MaxFloat32 after rounding */
  *out = f;
  return 1;
}

/* pjx_int reads an int field: an integer literal within int64 (Go's int on wasm and amd64). */
static int pjx_int(const char *v, const char *end, int64_t *out) {
  const char *p = v;
  int neg = 0;
  uint64_t m = 0;
  if (pjx_type(v) != PJX_NUM) return 0;
  if (p < end && *p == '-') neg = 1, p++;
  const char *first = p;
  for (; p < end && *p >= '0' && *p <= '9'; p++) {
    if (m > (9223372036854775808ull - (uint64_t)(*p - '0')) / 10) return 0;
    m = m * 10 + (uint64_t)(*p - '0');
  }
  if (p == first || (p < end && (*p == '.' || *p == 'e' || *p == 'E'))) return 0;
  if (!neg && m > 9223372036854775807ull) return 0;
  *out = neg ? (int64_t)(0 - m) : (int64_t)m;
  return 1;
}


/* A log line built in a fixed buffer (the host keeps 512 bytes of a message). */
static char pjx_line[512];
static uint32_t pjx_linelen;

static void pjx_s(const char *s) {
  while (*s && pjx_linelen < sizeof pjx_line) pjx_line[pjx_linelen++] = *s++;
}

static void pjx_q(pjx_str s) { /* quoted, like %q for printable strings */
  pjx_s("\"");
  for (uint32_t i = 0; i < s.n && pjx_linelen < sizeof pjx_line; i++) pjx_line[pjx_linelen++] = s.p[i];
  pjx_s("\"");
}

__attribute__((unused)) static void pjx_i(int64_t v) {
  char b[24];
  int k = 0;
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  do b[k++] = (char)('0' + u % 10), u /= 10;
  while (u);
  if (v < 0) b[k++] = '-';
  while (k && pjx_linelen < sizeof pjx_line) pjx_line[pjx_linelen++] = b[--k];
}

static void pjx_flush(int level) {
  podium_log(level, pjx_line, (int32_t)pjx_linelen);
  pjx_linelen = 0;
}

/* pjx_names reads the SDK's features or attributes param (a list of strings, or null for
 * none) into dst, at most max names; a null entry reads as the empty name. It returns 0 when
 * the value is not such a list or holds more than max names. */
static int pjx_names(const char *v, const char *end, pjx_str *dst, uint32_t *n, uint32_t max) {
  *n = 0;
  if (!v || pjx_type(v) == PJX_NULL) return 1;
  if (pjx_type(v) != PJX_ARR) return 0;
  pj_iter it = pj_iter_array(v, end);
  while (pj_next(&it)) {
    if (*n == max) return 0;
    dst[*n] = (pjx_str){0, 0};
    if (pjx_type(it.value) != PJX_NULL && !pjx_string(it.value, end, &dst[*n])) return 0;
    ++*n;
  }
  return 1;
}

/* pjx_sdk_params is the Go SDK's own check of params before a plugin decodes them: an
 * object whose "features" and "attributes" are lists of names (pjx_names, at most max each).
 * It returns where the object starts, or 0 with *err set. */
static const char *pjx_sdk_params(const char *params, const char *end, pjx_str *feats, uint32_t *nfeat,
                                  pjx_str *attrs, uint32_t *nattr, uint32_t max, const char **err) {
  const char *p = pj_ws(params, end);
  if (p >= end || *p != '{') return *err = "params must be a JSON object", (const char *)0;
  const char *fv = 0, *av = 0;
  pj_iter it = pj_iter_object(p, end);
  while (pj_next(&it)) {
    if (pjx_key(&it, "features")) fv = it.value;
    else if (pjx_key(&it, "attributes")) av = it.value;
  }
  if (!pjx_names(fv, end, feats, nfeat, max) || !pjx_names(av, end, attrs, nattr, max))
    return *err = "features and attributes must be lists of names", (const char *)0;
  return p;
}

#endif
