/* The process allocator with fail-malloc and counting hooks for tests.
 *
 * The hooks exist only in builds with the unit tests (GW_ALLOC_HOOKS, set by
 * CMake with GW_TESTS): their counters are process-wide atomics, and every
 * allocation of every worker wrote the same two cache lines. Two threads
 * allocating at once paid ~148 ns a malloc+free pair instead of ~15.5
 * (tests/bench/alloc_bench: two pinned threads, 64-byte blocks, a 2-vCPU
 * VM), and a gRPC call makes some twenty such pairs (nghttp2's state). The
 * release build (scripts/build.sh: GW_TESTS=OFF) calls malloc and free
 * directly. */
#include "core/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(GW_ALLOC_HOOKS)
static _Atomic long fail_after = -1;
static _Atomic long n_allocs;
static _Atomic long n_live;

static int should_fail(void) {
  long f = atomic_load_explicit(&fail_after, memory_order_relaxed);
  if (f < 0)
    return 0;
  if (f == 0) {
    atomic_store(&fail_after, -1);
    return 1;
  }
  atomic_store(&fail_after, f - 1);
  return 0;
}

void *gw_malloc(size_t n) {
  if (should_fail())
    return NULL;
  void *p = malloc(n ? n : 1);
  if (p) {
    atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&n_live, 1, memory_order_relaxed);
  }
  return p;
}

void *gw_calloc(size_t count, size_t n) {
  if (should_fail())
    return NULL;
  void *p = calloc(count ? count : 1, n ? n : 1);
  if (p) {
    atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&n_live, 1, memory_order_relaxed);
  }
  return p;
}

void *gw_realloc(void *p, size_t n) {
  if (!p)
    return gw_malloc(n);
  if (should_fail())
    return NULL;
  atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
  return realloc(p, n ? n : 1);
}

void gw_free(void *p) {
  if (!p)
    return;
  atomic_fetch_sub_explicit(&n_live, 1, memory_order_relaxed);
  free(p);
}

void gw_alloc_fail_after(long n) { atomic_store(&fail_after, n); }
long gw_alloc_count(void) { return atomic_load(&n_allocs); }
long gw_alloc_live(void) { return atomic_load(&n_live); }
void gw_alloc_reset_count(void) { atomic_store(&n_allocs, 0); }
#else
void *gw_malloc(size_t n) { return malloc(n ? n : 1); }
void *gw_calloc(size_t count, size_t n) { return calloc(count ? count : 1, n ? n : 1); }
void *gw_realloc(void *p, size_t n) { return realloc(p, n ? n : 1); }
void gw_free(void *p) { free(p); }

void gw_alloc_fail_after(long n) { (void)n; }
long gw_alloc_count(void) { return 0; }
long gw_alloc_live(void) { return 0; }
void gw_alloc_reset_count(void) {}
#endif

void gw_free_secret(char *s) {
  if (!s)
    return;
  explicit_bzero(s, strlen(s));
  gw_free(s);
}

char *gw_strndup(const char *s, size_t n) {
  char *d = gw_malloc(n + 1);
  if (!d)
    return NULL;
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

char *gw_strdup(const char *s) { return gw_strndup(s, strlen(s)); }
