/*
 * podium_json.h: a small JSON reader for the params of freestanding C plugins (no libc).
 * It reads in place, allocates nothing, and is meant for podium_init only.
 *
 *   const char *v = pj_get(params, end, "weights");   // value of a top-level key, or 0
 *   pj_iter it = pj_iter_object(v, end);               // iterate {"name": value, ...}
 *   while (pj_next(&it)) { it.key, it.key_len, it.value ... }
 *   pj_number(v, end, &d); pj_string(v, end, &s, &len); pj_iter_array(v, end) ...
 *
 * Strings are returned raw (escapes are not decoded; names with escapes do not match).
 */
#ifndef PODIUM_JSON_H
#define PODIUM_JSON_H

#include <stdint.h>

static const char *pj_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p;
}

/* pj_skip returns the position after the value at p, or 0 if it is malformed. */
static const char *pj_skip(const char *p, const char *end) {
  p = pj_ws(p, end);
  if (p >= end) return 0;
  if (*p == '"') {
    for (p++; p < end; p++) {
      if (*p == '\\') p++;
      else if (*p == '"') return p + 1;
    }
    return 0;
  }
  if (*p == '{' || *p == '[') {
    int depth = 0;
    for (; p < end; p++) {
      if (*p == '"') {
        p = pj_skip(p, end);
        if (!p) return 0;
        p--;
      } else if (*p == '{' || *p == '[') depth++;
      else if (*p == '}' || *p == ']') {
        if (--depth == 0) return p + 1;
      }
    }
    return 0;
  }
  while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' && *p != '\t' && *p != '\r') p++;
  return p;
}

typedef struct {
  const char *p, *end;
  const char *key; /* object members only */
  uint32_t key_len;
  const char *value;
  char close;
} pj_iter;

static pj_iter pj_iter_of(const char *v, const char *end, char open, char close) {
  pj_iter it = {0, end, 0, 0, 0, close};
  if (v) {
    v = pj_ws(v, end);
    if (v < end && *v == open) it.p = v + 1;
  }
  return it;
}

static pj_iter pj_iter_object(const char *v, const char *end) { return pj_iter_of(v, end, '{', '}'); }
static pj_iter pj_iter_array(const char *v, const char *end) { return pj_iter_of(v, end, '[', ']'); }

/* pj_next advances to the next member or element; it returns 0 at the end or on error. */
static int pj_next(pj_iter *it) {
  if (!it->p) return 0;
  const char *p = pj_ws(it->p, it->end);
  if (p < it->end && *p == ',') p = pj_ws(p + 1, it->end);
  if (p >= it->end || *p == it->close) {
    it->p = 0;
    return 0;
  }
  if (it->close == '}') {
    if (*p != '"') return it->p = 0, 0;
    const char *k = p + 1;
    const char *q = pj_skip(p, it->end);
    if (!q) return it->p = 0, 0;
    it->key = k;
    it->key_len = (uint32_t)(q - 1 - k);
    p = pj_ws(q, it->end);
    if (p >= it->end || *p != ':') return it->p = 0, 0;
    p = pj_ws(p + 1, it->end);
  }
  it->value = p;
  it->p = pj_skip(p, it->end);
  return it->p != 0;
}

static int pj_key_is(const pj_iter *it, const char *s) {
  uint32_t i = 0;
  for (; i < it->key_len && s[i]; i++)
    if (it->key[i] != s[i]) return 0;
  return i == it->key_len && s[i] == 0;
}

/* pj_get returns the value of key in the object at v, or 0. */
static const char *pj_get(const char *v, const char *end, const char *key) {
  pj_iter it = pj_iter_object(v, end);
  while (pj_next(&it))
    if (pj_key_is(&it, key)) return it.value;
  return 0;
}

/* pj_string sets *s and *len to the raw bytes of the string at v; returns 0 if not one. */
static int pj_string(const char *v, const char *end, const char **s, uint32_t *len) {
  if (!v || v >= end || *v != '"') return 0;
  const char *q = pj_skip(v, end);
  if (!q) return 0;
  *s = v + 1;
  *len = (uint32_t)(q - 1 - (v + 1));
  return 1;
}

/* pj_number parses the number at v into *out; returns 0 if there is none. */
static int pj_number(const char *v, const char *end, double *out) {
  if (!v) return 0;
  const char *p = pj_ws(v, end);
  int neg = 0, digits = 0, exp = 0, eneg = 0, e = 0;
  double m = 0;
  if (p < end && *p == '-') neg = 1, p++;
  for (; p < end && *p >= '0' && *p <= '9'; p++, digits++) m = m * 10 + (*p - '0');
  if (p < end && *p == '.')
    for (p++; p < end && *p >= '0' && *p <= '9'; p++, digits++, exp--) m = m * 10 + (*p - '0');
  if (!digits) return 0;
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < end && (*p == '-' || *p == '+')) eneg = *p == '-', p++;
    for (; p < end && *p >= '0' && *p <= '9'; p++) e = e * 10 + (*p - '0');
    exp += eneg ? -e : e;
  }
  double scale = 1;
  int ae = exp < 0 ? -exp : exp;
  for (double b = 10; ae; ae >>= 1, b *= b)
    if (ae & 1) scale *= b;
  m = exp < 0 ? m / scale : m * scale;
  *out = neg ? -m : m;
  return 1;
}

static int pj_streq(const char *s, uint32_t len, const char *lit) {
  uint32_t i = 0;
  for (; i < len && lit[i]; i++)
    if (s[i] != lit[i]) return 0;
  return i == len && lit[i] == 0;
}

#endif
