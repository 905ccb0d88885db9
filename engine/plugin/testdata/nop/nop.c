/* nop.c: a rank plugin that does nothing: the host's prefilled scores (the input scores)
 * are its output. BenchmarkBoundary uses it to measure copy in + call + copy out. */
#include "podium.h"

PODIUM_DEFINE_BUFFER

PODIUM_EXPORT("podium_init") int32_t podium_init(const uint8_t *params, int32_t len) { return 0; }

PODIUM_EXPORT("podium_call") int32_t podium_call(uint8_t *b, int32_t len) { return 0; }
