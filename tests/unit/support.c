/* Shared unit-test helpers: the fail-malloc sweep and source paths. */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/alloc.h"

long gw_test_failmalloc_sweep(int (*fn)(void *arg), void *arg) {
  long live0 = gw_alloc_live();
  gw_alloc_reset_count();
  gw_alloc_fail_after(-1);
  assert_int_equal(fn(arg), 0);
  long n = gw_alloc_count();
  assert_int_equal(gw_alloc_live(), live0);
  for (long i = 0; i < n; i++) {
    gw_alloc_fail_after(i);
    (void)fn(arg);
    gw_alloc_fail_after(-1);
    if (gw_alloc_live() != live0)
      fail_msg("allocation %ld of %ld failed: %ld allocations leaked", i, n,
               gw_alloc_live() - live0);
  }
  return n;
}

const char *gw_test_source_path(const char *rel) {
  static char path[4096];
  const char *root = getenv("GW_SOURCE_DIR");
  snprintf(path, sizeof path, "%s/%s", root ? root : ".", rel);
  return path;
}
