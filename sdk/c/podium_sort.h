/*
 * podium_sort.h: in-place heapsorts for freestanding C guests, which have no libc qsort.
 * Ascending; no allocation, O(n log n) worst case. For keys whose order is total, any correct
 * sort gives the same result as Go's slices.Sort, which is what guests mirroring a Go package
 * need.
 */
#ifndef PODIUM_SORT_H
#define PODIUM_SORT_H

#include <stdint.h>

#define PODIUM_HEAPSORT(NAME, T)                                          \
  static inline void NAME##_sift(T *a, uint32_t i, uint32_t n) {          \
    for (;;) {                                                            \
      uint32_t c = 2 * i + 1;                                             \
      if (c >= n) return;                                                 \
      if (c + 1 < n && a[c + 1] > a[c]) c++;                              \
      if (a[i] >= a[c]) return;                                           \
      T t = a[i];                                                         \
      a[i] = a[c], a[c] = t, i = c;                                       \
    }                                                                     \
  }                                                                       \
  static inline void NAME(T *a, uint32_t n) {                             \
    for (uint32_t i = n / 2; i-- > 0;) NAME##_sift(a, i, n);              \
    for (uint32_t e = n; e > 1; e--) {                                    \
      T t = a[0];                                                         \
      a[0] = a[e - 1], a[e - 1] = t;                                      \
      NAME##_sift(a, 0, e - 1);                                           \
    }                                                                     \
  }

/* podium_sort_u64 and podium_sort_i32 sort a[0:n] ascending. */
PODIUM_HEAPSORT(podium_sort_u64, uint64_t)
PODIUM_HEAPSORT(podium_sort_i32, int32_t)

#endif
