/* testplug.h: helpers shared by the test plugins of engine/plugin. */
#include "podium.h"

static int streq(const uint8_t *a, uint32_t alen, const char *b) {
  uint32_t i = 0;
  for (; i < alen && b[i]; i++)
    if (a[i] != (uint8_t)b[i]) return 0;
  return i == alen && b[i] == 0;
}

static uint32_t cstrlen(const char *s) {
  uint32_t n = 0;
  while (s[n]) n++;
  return n;
}

/* ctx_str returns the string value of context key, or 0 (and *len 0). */
static const uint8_t *ctx_str(uint8_t *b, const char *key, uint32_t *len) {
  uint32_t nctx = podium_word(b, PODIUM_H_NCTX);
  podium_ctx_entry *e = (podium_ctx_entry *)podium_at(b, PODIUM_H_CTX);
  for (uint32_t i = 0; i < nctx; i++) {
    if (streq(b + e[i].key_off, e[i].key_len, key) && e[i].type == PODIUM_CTX_STRING) {
      *len = e[i].str_len;
      return b + e[i].str_off;
    }
  }
  *len = 0;
  return 0;
}

/* ctx_num returns the number value of context key, or def. */
static double ctx_num(uint8_t *b, const char *key, double def) {
  uint32_t nctx = podium_word(b, PODIUM_H_NCTX);
  podium_ctx_entry *e = (podium_ctx_entry *)podium_at(b, PODIUM_H_CTX);
  for (uint32_t i = 0; i < nctx; i++)
    if (streq(b + e[i].key_off, e[i].key_len, key) && e[i].type == PODIUM_CTX_NUMBER) return e[i].num;
  return def;
}

/* behave reports whether the context's "behave" string is want. */
static int behave(uint8_t *b, const char *want) {
  uint32_t len;
  const uint8_t *s = ctx_str(b, "behave", &len);
  return s && streq(s, len, want);
}

static void logs(int level, const char *s) { podium_log(level, s, (int32_t)cstrlen(s)); }

/* Misbehaviours common to every test plugin. Returns 1 if it handled the call. */
static volatile uint32_t sink;
static int misbehave(uint8_t *b) {
  if (behave(b, "trap")) __builtin_trap();
  if (behave(b, "spin")) {
    for (;;) sink++;
  }
  if (behave(b, "grow")) {
    while ((int32_t)__builtin_wasm_memory_grow(0, 16) >= 0) {
    }
    __builtin_trap();
  }
  if (behave(b, "growquiet")) { /* grows to the limit and returns normally */
    while ((int32_t)__builtin_wasm_memory_grow(0, 16) >= 0) {
    }
    return 0;
  }
  if (behave(b, "oob")) {
    sink = *(volatile uint32_t *)(uintptr_t)0xfffffff0u;
  }
  if (behave(b, "kernel")) { /* a kernel call with a range past the end of memory */
    podium_dot((const float *)0, (const float *)0xfff00000u, 1 << 20, 64, (float *)0);
  }
  if (behave(b, "hugelog")) {
    static char big[10000];
    for (int i = 0; i < (int)sizeof big; i++) big[i] = 'x';
    for (int i = 0; i < 1000; i++) podium_log(PODIUM_LOG_INFO, big, sizeof big);
  }
  return 0;
}

/* Init: params may say {"init":"fail"} or {"init":"spin"} (matched as raw text). */
static int contains(const uint8_t *s, int32_t n, const char *pat) {
  int32_t m = (int32_t)cstrlen(pat);
  for (int32_t i = 0; i + m <= n; i++) {
    int32_t j = 0;
    while (j < m && s[i + j] == (uint8_t)pat[j]) j++;
    if (j == m) return 1;
  }
  return 0;
}
