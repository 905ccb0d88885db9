/*
 * podium.h: the Podium plugin ABI version 1 for C guests (see sdk/ABI.md).
 *
 * Freestanding: it needs no libc. Build with
 *   clang --target=wasm32 -O3 -msimd128 -mbulk-memory -nostdlib -Wl,--no-entry \
 *         -I sdk/c -o plugin.wasm plugin.c
 * and embed the manifest with `go run ./sdk/cmd/podium-manifest embed` (scripts/build-wasm.sh
 * does both). A plugin implements podium_init and podium_call; PODIUM_DEFINE_BUFFER defines
 * podium_abi_version and podium_buffer.
 */
#ifndef PODIUM_H
#define PODIUM_H

#include <stdint.h>
#include <stddef.h>

#ifndef PODIUM_ABI_VERSION /* overridable only to test the host's version check */
#define PODIUM_ABI_VERSION 1
#endif
#define PODIUM_MAGIC 0x314D4450u

/* Header words (uint32). */
enum {
  PODIUM_H_MAGIC = 0, PODIUM_H_ABI = 1, PODIUM_H_KIND = 2, PODIUM_H_N = 3, PODIUM_H_K = 4,
  PODIUM_H_NFEAT = 5, PODIUM_H_DIM = 6, PODIUM_H_QDIM = 7, PODIUM_H_NATTR = 8, PODIUM_H_NCTX = 9,
  PODIUM_H_FLAGS = 10, PODIUM_H_CTX_STR = 11, PODIUM_H_IDS = 12, PODIUM_H_FEAT = 13,
  PODIUM_H_EMB = 14, PODIUM_H_QEMB = 15, PODIUM_H_ATTR = 16, PODIUM_H_SCORE = 17,
  PODIUM_H_CTX = 18, PODIUM_H_SID = 19, PODIUM_H_SID_DATA = 20, PODIUM_H_OUT_SCORE = 21,
  PODIUM_H_OUT_KEEP = 22, PODIUM_H_OUT_PIN = 23, PODIUM_H_OUT_ORDER = 24,
  PODIUM_H_OUT_ORDER_LEN = 25, PODIUM_H_BLOCK_LEN = 26, PODIUM_HEADER_WORDS = 32
};

enum { PODIUM_KIND_RANK = 1, PODIUM_KIND_RULES = 2, PODIUM_KIND_DIVERSITY = 3 };
enum { PODIUM_LOG_DEBUG = 0, PODIUM_LOG_INFO = 1, PODIUM_LOG_WARN = 2, PODIUM_LOG_ERROR = 3 };
enum { PODIUM_CTX_NUMBER = 1, PODIUM_CTX_STRING = 2 };

/* One context entry (32 bytes). */
typedef struct {
  uint32_t key_off, key_len, type, str_off, str_len, reserved;
  double num;
} podium_ctx_entry;

#define PODIUM_EXPORT(name) __attribute__((export_name(name)))
#define PODIUM_IMPORT(name) __attribute__((import_module("podium"), import_name(name)))

/* Host imports. */
PODIUM_IMPORT("log") void podium_log(int32_t level, const char *msg, int32_t len);
PODIUM_IMPORT("lookup") int32_t podium_lookup(const char *space, int32_t space_len,
                                              const char *value, int32_t value_len);
PODIUM_IMPORT("dot") void podium_dot(const float *q, const float *rows, int32_t n, int32_t dim, float *out);
PODIUM_IMPORT("cosine") void podium_cosine(const float *q, const float *rows, int32_t n, int32_t dim, float *out);
PODIUM_IMPORT("wsum") void podium_wsum(const float *w, const float *cols, int32_t m, int32_t n, float *out);
PODIUM_IMPORT("sigmoid") void podium_sigmoid(float *x, int32_t n);

/* Block accessors: b is the block address passed to podium_call. */
static inline uint32_t podium_word(const uint8_t *b, int w) { return ((const uint32_t *)b)[w]; }
static inline void *podium_at(uint8_t *b, int w) { return b + ((const uint32_t *)b)[w]; }

/* podium_grow takes bytes of fresh linear memory (memory.grow, whole pages) for a guest's
 * scratch, 64 KiB aligned, and returns it, or 0 when the host's memory limit refuses. */
static inline uint8_t *podium_grow(uint64_t bytes) {
  int32_t old = __builtin_wasm_memory_grow(0, (uint32_t)((bytes + 65535) / 65536));
  return old < 0 ? (uint8_t *)0 : (uint8_t *)((uintptr_t)old * 65536u);
}

/* podium_check_header is abi.Header.Check: before trusting an offset, a guest checks the
 * magic, ABI version, stage kind, block length, candidate bound (2^20) and that every
 * section is 16-byte aligned and inside the block. It returns 1 when the block is sound. */
static inline int podium_check_header(const uint8_t *b, uint32_t len, uint32_t kind) {
  const uint32_t *h = (const uint32_t *)b;
  if (len < 4 * PODIUM_HEADER_WORDS || h[PODIUM_H_MAGIC] != PODIUM_MAGIC || h[PODIUM_H_ABI] != 1 ||
      h[PODIUM_H_KIND] != kind || h[PODIUM_H_BLOCK_LEN] > len || h[PODIUM_H_BLOCK_LEN] < 4 * PODIUM_HEADER_WORDS ||
      h[PODIUM_H_N] > (1u << 20))
    return 0;
  uint64_t n = h[PODIUM_H_N], end = h[PODIUM_H_BLOCK_LEN];
  uint64_t sid = h[PODIUM_H_FLAGS] & 1 ? n + 1 : 0;
  const struct { uint8_t word; uint64_t size; } s[] = {
      {PODIUM_H_IDS, 4 * n}, {PODIUM_H_SCORE, 4 * n}, {PODIUM_H_FEAT, 4 * n * h[PODIUM_H_NFEAT]},
      {PODIUM_H_EMB, 4 * n * h[PODIUM_H_DIM]}, {PODIUM_H_QEMB, 4ull * h[PODIUM_H_QDIM]},
      {PODIUM_H_ATTR, 4 * n * h[PODIUM_H_NATTR]}, {PODIUM_H_CTX, 32ull * h[PODIUM_H_NCTX]}, {PODIUM_H_CTX_STR, 0},
      {PODIUM_H_SID, 4 * sid}, {PODIUM_H_SID_DATA, 0}, {PODIUM_H_OUT_SCORE, 4 * n}, {PODIUM_H_OUT_KEEP, n},
      {PODIUM_H_OUT_PIN, 4 * n}, {PODIUM_H_OUT_ORDER, 4 * n}};
  for (uint32_t i = 0; i < sizeof s / sizeof s[0]; i++) {
    uint64_t off = h[s[i].word];
    if (off % 16 || off < 4 * PODIUM_HEADER_WORDS || off + s[i].size > end) return 0;
  }
  return 1;
}

/*
 * PODIUM_DEFINE_BUFFER defines podium_abi_version and podium_buffer. The buffer is taken from
 * fresh pages at the end of linear memory (memory.grow), so it is page-aligned and costs
 * memory only when a large block needs it; a larger request abandons the old pages.
 */
#define PODIUM_DEFINE_BUFFER                                                          \
  static uint8_t *podium_buf_;                                                        \
  static uint32_t podium_cap_;                                                        \
  PODIUM_EXPORT("podium_abi_version") int32_t podium_abi_version(void) {              \
    return PODIUM_ABI_VERSION;                                                        \
  }                                                                                   \
  PODIUM_EXPORT("podium_buffer") uint8_t *podium_buffer(int32_t size) {               \
    if (size < 0) return 0;                                                           \
    if ((uint32_t)size <= podium_cap_) return podium_buf_;                            \
    uint8_t *b = podium_grow((uint32_t)size);                                         \
    if (!b) return 0;                                                                 \
    podium_buf_ = b, podium_cap_ = ((uint32_t)size + 65535u) / 65536u * 65536u;       \
    return podium_buf_;                                                               \
  }

#endif
