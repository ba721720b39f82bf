/* Arena, capped buffer and allocator hooks. */
#include "support.h"

#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/status.h"

static void test_arena_alignment_and_growth(void **state) {
  gw_arena *a = gw_arena_new(64, 0);
  assert_non_null(a);
  static const size_t sizes[] = {1, 3, 7, 16, 17, 100, 1000, 5000, 70000, 2};
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    unsigned char *p = gw_arena_alloc(a, sizes[i]);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 16, 0);
    memset(p, 0xab, sizes[i]); /* ASan checks the whole block is ours */
  }
  assert_true(gw_arena_used(a) >= 76000);
  gw_arena_free(a);
}

static void test_arena_cap(void **state) {
  gw_arena *a = gw_arena_new(0, 100);
  assert_non_null(gw_arena_alloc(a, 64));
  assert_null(gw_arena_alloc(a, 64)); /* 128 > 100 */
  assert_non_null(gw_arena_alloc(a, 16));
  assert_null(gw_arena_alloc(a, SIZE_MAX));
  gw_arena_free(a);
}

static void test_arena_strings(void **state) {
  gw_arena *a = gw_arena_new(0, 0);
  assert_string_equal(gw_arena_strdup(a, "hello"), "hello");
  assert_string_equal(gw_arena_strndup(a, "hello", 3), "hel");
  assert_string_equal(gw_arena_printf(a, "%s-%d", "x", 42), "x-42");
  assert_string_equal(gw_arena_concat(a, "chatcmpl-", "r1"), "chatcmpl-r1");
  assert_string_equal(
      gw_arena_concat3(a, "https://h/v1beta/models/", "gemini-2.0", ":generateContent"),
      "https://h/v1beta/models/gemini-2.0:generateContent");
  assert_string_equal(gw_arena_concat3(a, "", "", ""), "");
  gw_arena_free(a);
  /* a cap that leaves no room: NULL */
  a = gw_arena_new(64, 16);
  assert_null(gw_arena_concat3(a, "0123456789", "0123456789", "x"));
  gw_arena_free(a);
}

static int order[4];
static int n_order;
static void record(void *arg) { order[n_order++] = (int)(intptr_t)arg; }

static void test_arena_defer_runs_lifo(void **state) {
  gw_arena *a = gw_arena_new(0, 0);
  n_order = 0;
  assert_int_equal(gw_arena_defer(a, record, (void *)1), GW_OK);
  assert_int_equal(gw_arena_defer(a, record, (void *)2), GW_OK);
  gw_arena_free(a);
  assert_int_equal(n_order, 2);
  assert_int_equal(order[0], 2);
  assert_int_equal(order[1], 1);
}

static int arena_workload(void *arg) {
  gw_arena *a = gw_arena_new(128, 0);
  if (!a)
    return GW_ERR_NOMEM;
  int rc = GW_OK;
  for (int i = 0; i < 50 && rc == GW_OK; i++)
    if (!gw_arena_alloc(a, (size_t)(i * 37 % 900 + 1)))
      rc = GW_ERR_NOMEM;
  if (rc == GW_OK && gw_arena_defer(a, record, (void *)3) != GW_OK)
    rc = GW_ERR_NOMEM;
  n_order = 0;
  gw_arena_free(a);
  return rc;
}

static void test_arena_failmalloc(void **state) {
  assert_true(gw_test_failmalloc_sweep(arena_workload, NULL) > 3);
}

static void test_buf_cap_and_json(void **state) {
  gw_buf b;
  gw_buf_init(&b, 10);
  assert_int_equal(gw_buf_appends(&b, "0123456789"), GW_OK);
  assert_int_equal(gw_buf_appendc(&b, 'x'), GW_ERR_TOOBIG);
  assert_int_equal(b.len, 10);
  assert_string_equal(b.data, "0123456789");
  gw_buf_consume(&b, 4);
  assert_string_equal(b.data, "456789");
  gw_buf_release(&b);

  static const struct {
    const char *in, *out;
  } cases[] = {
      {"plain", "\"plain\""},  {"q\"b\\", "\"q\\\"b\\\\\""},       {"nl\n\t\r", "\"nl\\n\\t\\r\""},
      {"\x01", "\"\\u0001\""}, {"caf\xc3\xa9", "\"caf\xc3\xa9\""},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    gw_buf_init(&b, 1024);
    assert_int_equal(gw_buf_append_json_string(&b, cases[i].in, strlen(cases[i].in)), GW_OK);
    assert_string_equal(b.data, cases[i].out);
    gw_buf_release(&b);
  }
  /* A string that does not fit leaves the buffer as it was. */
  gw_buf_init(&b, 8);
  assert_int_equal(gw_buf_appends(&b, "ab"), GW_OK);
  assert_int_equal(gw_buf_append_json_string(&b, "0123456789", 10), GW_ERR_TOOBIG);
  assert_string_equal(b.data, "ab");
  gw_buf_release(&b);
}

static int buf_workload(void *arg) {
  gw_buf b;
  gw_buf_init(&b, 1 << 20);
  int rc = GW_OK;
  for (int i = 0; i < 200 && rc == GW_OK; i++)
    rc = gw_buf_printf(&b, "%d,", i);
  gw_buf_release(&b);
  return rc;
}

static void test_buf_failmalloc(void **state) { gw_test_failmalloc_sweep(buf_workload, NULL); }

/* A buffer growing in an arena: the same contents and cap as on the heap,
 * no heap allocation of its own, nothing to free; gw_buf_reserve makes room
 * once. */
static void test_buf_in_arena(void **state) {
  (void)state;
  gw_arena *a = gw_arena_new(1024, 0);
  assert_non_null(a);
  long live0 = gw_alloc_live();
  gw_buf b;
  gw_buf_init_arena(&b, 600, a);
  char piece[50];
  memset(piece, 'x', sizeof piece);
  for (int i = 0; i < 12; i++) { /* 256 -> 512 -> 601: copied as it grows */
    piece[0] = (char)('a' + i);
    assert_int_equal(gw_buf_append(&b, piece, sizeof piece), GW_OK);
  }
  assert_int_equal(b.len, 600);
  assert_int_equal(b.data[600], '\0');
  for (int i = 0; i < 12; i++)
    assert_int_equal(b.data[i * 50], 'a' + i);
  assert_int_equal(gw_buf_appendc(&b, 'y'), GW_ERR_TOOBIG);
  assert_int_equal(b.len, 600);
  gw_buf_release(&b);                           /* nothing to free: the arena holds it */
  assert_int_equal(gw_alloc_live(), live0 + 1); /* one chunk past the first */

  gw_buf_init_arena(&b, 4096, a);
  assert_int_equal(gw_buf_reserve(&b, 3000), GW_OK);
  assert_true(b.alloc >= 3001);
  assert_string_equal(b.data, "");
  char *at = b.data;
  for (int i = 0; i < 60; i++)
    assert_int_equal(gw_buf_append(&b, piece, sizeof piece), GW_OK);
  assert_ptr_equal(b.data, at); /* no growth after the reserve */
  assert_int_equal(gw_buf_reserve(&b, 4096), GW_ERR_TOOBIG);
  gw_buf_release(&b);
  gw_arena_free(a);
}

static int deferred_runs;
static void count_run(void *arg) { (void)arg, deferred_runs++; }

/* A worker's cache hands a freed arena out again, reset, and gives every
 * byte back when drained; without it nothing is kept. */
static void test_arena_cache(void **state) {
  long live0 = gw_alloc_live();
  gw_arena *a = gw_arena_new(8192, 0);
  gw_arena_free(a);
  assert_int_equal(gw_alloc_live(), live0); /* off: all released */

  gw_arena_cache_enable();
  a = gw_arena_new(8192, 0);
  assert_non_null(gw_arena_alloc(a, 64));
  assert_non_null(gw_arena_alloc(a, 20000)); /* a big chunk: never cached */
  assert_int_equal(gw_arena_defer(a, count_run, NULL), GW_OK);
  gw_arena_free(a);
  assert_int_equal(deferred_runs, 1);
  assert_true(gw_alloc_live() > live0); /* kept: the arena and its first chunk */

  gw_arena *b = gw_arena_new(4096, 0);   /* another size: a new one */
  gw_arena *c = gw_arena_new(8192, 100); /* the cached one, reset */
  assert_ptr_equal(c, a);
  assert_int_equal(gw_arena_used(c), 0);
  assert_null(gw_arena_alloc(c, 128)); /* its new cap holds */
  unsigned char *p = gw_arena_alloc(c, 64);
  assert_non_null(p);
  memset(p, 0xcd, 64);
  gw_arena_free(c);
  gw_arena_free(b);
  assert_int_equal(deferred_runs, 1); /* not run twice */
  gw_arena_cache_drain();
  assert_int_equal(gw_alloc_live(), live0);
  a = gw_arena_new(8192, 0); /* drained turns it off again */
  gw_arena_free(a);
  assert_int_equal(gw_alloc_live(), live0);
}

/* A burst: a worker with 100 calls in flight frees 100 arenas of one size at
 * once; the next 100 calls get them all back without asking the allocator.
 * Sizes without a stack are never kept. */
static void test_arena_cache_burst(void **state) {
  (void)state;
  enum { N = 100 };
  gw_arena *a[N];
  long live0 = gw_alloc_live();
  gw_arena_cache_enable();
  for (int i = 0; i < N; i++)
    assert_non_null(a[i] = gw_arena_new(4096, 0));
  for (int i = 0; i < N; i++)
    gw_arena_free(a[i]);
  long kept = gw_alloc_live();
  assert_int_equal(kept - live0, 2 * N); /* each arena and its first chunk */
  for (int i = 0; i < N; i++)
    assert_non_null(a[i] = gw_arena_new(4096, 0));
  assert_int_equal(gw_alloc_live(), kept); /* all from the cache */
  for (int i = 0; i < N; i++)
    gw_arena_free(a[i]);
  gw_arena *odd = gw_arena_new(12345, 0);
  gw_arena_free(odd);
  assert_int_equal(gw_alloc_live(), kept); /* not kept */
  gw_arena_cache_drain();
  assert_int_equal(gw_alloc_live(), live0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_arena_alignment_and_growth),
      cmocka_unit_test(test_arena_cache),
      cmocka_unit_test(test_arena_cache_burst),
      cmocka_unit_test(test_arena_cap),
      cmocka_unit_test(test_arena_strings),
      cmocka_unit_test(test_arena_defer_runs_lifo),
      cmocka_unit_test(test_arena_failmalloc),
      cmocka_unit_test(test_buf_cap_and_json),
      cmocka_unit_test(test_buf_in_arena),
      cmocka_unit_test(test_buf_failmalloc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
