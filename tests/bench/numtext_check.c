/* Every float in a range printed by two builds of server/core/numtext.c,
 * compared byte for byte: the check for a change to the float printer that
 * must not change its text (f4789ea, b6efefb were checked this way). The
 * unit tests compare the printer with the printf loop it replaces on chosen
 * and random values; this covers all 2^23 mantissas of each exponent.
 *
 *   tests/bench/numtext_check.sh [BASE_REV]    (default: HEAD; ~1 min)
 *
 * The script compiles BASE_REV's numtext.c with its names prefixed old_ and
 * links it beside the working tree's. Usage of this program:
 *   numtext_check FIRST_BITS END_BITS    (hex or decimal; non-finite skipped) */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/numtext.h"

size_t old_numtext_float(float v, char *out);
size_t old_numtext_floats(const float *v, size_t n, char *out, size_t *done);

/* The vectors' path too: the same floats in blocks of 64, through both
 * builds' gw_numtext_floats. */
static unsigned long long compare_block(const float *v, size_t n) {
  static char a[64 * (GW_NUMTEXT_MAX + 1)], c[64 * (GW_NUMTEXT_MAX + 1)];
  size_t da, dc;
  size_t na = old_numtext_floats(v, n, a, &da), nc = gw_numtext_floats(v, n, c, &dc);
  if (na == nc && da == dc && memcmp(a, c, na) == 0)
    return 0;
  uint32_t u;
  memcpy(&u, v, sizeof u);
  printf("block from %08x: the vectors differ", u);
  /* the first number that does, read off the new text */
  const char *t = c;
  for (size_t i = 0; i < n && i < dc; i++) {
    char want[GW_NUMTEXT_MAX + 8];
    size_t len = strcspn(t, ","), nw = old_numtext_float(v[i], want);
    if (len != nw || memcmp(t, want, len) != 0) {
      memcpy(&u, &v[i], sizeof u);
      printf(" at %08x: base %s, now %.*s", u, want, (int)len, t);
      break;
    }
    t += len + (t[len] == ',');
  }
  printf("\n");
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: numtext_check FIRST_BITS END_BITS\n");
    return 2;
  }
  uint64_t lo = strtoull(argv[1], NULL, 0), hi = strtoull(argv[2], NULL, 0), bad = 0;
  float block[64];
  size_t nblock = 0;
  for (uint64_t b = lo; b < hi; b++) {
    uint32_t u = (uint32_t)b;
    float v;
    memcpy(&v, &u, sizeof v);
    if (!isfinite(v))
      continue;
    block[nblock++] = v;
    if (nblock == 64) {
      bad += compare_block(block, nblock);
      nblock = 0;
    }
    char a[GW_NUMTEXT_MAX + 8], c[GW_NUMTEXT_MAX + 8];
    size_t na = old_numtext_float(v, a), nc = gw_numtext_float(v, c);
    if (na != nc || strcmp(a, c) != 0) {
      if (bad < 10)
        printf("%08x: base %s, now %s\n", u, a, c);
      bad++;
    }
  }
  if (nblock)
    bad += compare_block(block, nblock);
  printf("%#llx-%#llx: %llu differ\n", (unsigned long long)lo, (unsigned long long)hi,
         (unsigned long long)bad);
  return bad != 0;
}
