/* The float printer's speed: nanoseconds per number for
 * gw_numtext_floats over 64 different vectors of 256 floats, as the C mock
 * sends them (tests/bench/mock_upstream.c: the same fixed pseudo-random
 * sequence, values in +-0.05). One vector printed again and again would let
 * the CPU learn its branches. Five rounds of N vectors each:
 *   make -C tests/bench numtext_bench && tests/bench/bin/numtext_bench [N]
 * (compiled from the working tree's server/core/numtext.c at -O2). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/numtext.h"

enum { VECTORS = 64, FLOATS = 256 };

int main(int argc, char **argv) {
  static float vec[VECTORS][FLOATS];
  static char out[FLOATS * (GW_NUMTEXT_MAX + 1)];
  uint32_t seed = 12345;
  for (int v = 0; v < VECTORS; v++)
    for (int i = 0; i < FLOATS; i++) {
      seed = seed * 1103515245u + 12345u;
      vec[v][i] = ((float)(seed >> 8) / 16777216.0f - 0.5f) * 0.1f;
    }
  int reps = argc > 1 ? atoi(argv[1]) : 8000;
  if (reps <= 0)
    reps = 8000;
  size_t bytes = 0, done;
  for (int round = 0; round < 5; round++) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int r = 0; r < reps; r++)
      bytes += gw_numtext_floats(vec[r % VECTORS], FLOATS, out, &done);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
    printf("round %d: %.2f ns/number\n", round + 1, ns / reps / FLOATS);
  }
  printf("(%zu bytes of text)\n", bytes);
  return 0;
}
