/* Helpers shared by the unit tests (cmocka). */
#ifndef GW_TEST_SUPPORT_H
#define GW_TEST_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

/* Fail-malloc sweep (nghttp2's TEST_FAILMALLOC_RUN): runs |fn(arg)| once
 * counting its allocations (it must return 0), then once per allocation with
 * that allocation failing; each failing run must return nonzero (or 0 if the
 * code legitimately survives the failure) and leave no allocation live.
 * Returns the number of allocations the clean run made. */
long gw_test_failmalloc_sweep(int (*fn)(void *arg), void *arg);

/* Absolute path of a file under the source tree ($GW_SOURCE_DIR/|rel|). */
const char *gw_test_source_path(const char *rel);

#endif
