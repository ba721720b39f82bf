/* gzip helpers of the HTTP layer (transcoder/http/gzip.c): header tests,
 * round trip, the inflate cap, and a fail-malloc sweep. Internal functions are
 * reached through transcoder/http/internal.h, the layer's one escape hatch. */
#include "support.h"

#include <string.h>

#include "core/status.h"
#include "transcoder/http/internal.h"

static void test_accepts_gzip(void **state) {
  static const struct {
    const char *ae;
    int want;
  } v[] = {
      {NULL, 0},       {"", 0},
      {"gzip", 1},     {"deflate, gzip;q=0.5", 1},
      {"gzip;q=0", 0}, {"gzip; q=0.000", 0},
      {"br, *", 1},    {"identity", 0},
      {"x-gzip", 1},   {"gzipx", 0},
  };
  (void)state;
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
    assert_int_equal(gw_http_accepts_gzip(v[i].ae), v[i].want);
}

static void test_compressible(void **state) {
  (void)state;
  assert_true(gw_http_gzip_compressible("application/json; charset=utf-8"));
  assert_true(gw_http_gzip_compressible("text/plain"));
  assert_true(gw_http_gzip_compressible("application/problem+json"));
  assert_false(gw_http_gzip_compressible("text/event-stream"));
  assert_false(gw_http_gzip_compressible("image/png"));
  assert_false(gw_http_gzip_compressible(NULL));
}

static int roundtrip(void *arg) {
  static char text[5000];
  gw_buf z, back;
  int rc;
  (void)arg;
  memset(text, 'q', sizeof text);
  gw_buf_init(&z, 1 << 20);
  gw_buf_init(&back, sizeof text);
  rc = gw_http_gzip(text, sizeof text, &z);
  if (rc == GW_OK)
    rc = gw_http_gunzip(z.data, z.len, sizeof text, &back);
  if (rc == GW_OK && (back.len != sizeof text || memcmp(back.data, text, sizeof text) != 0))
    rc = GW_ERR_INVALID;
  if (rc == GW_OK) {
    gw_buf_reset(&back);
    /* One byte under the size is over the cap. */
    if (gw_http_gunzip(z.data, z.len, sizeof text - 1, &back) != GW_ERR_TOOBIG)
      rc = GW_ERR_STATE;
    gw_buf_reset(&back);
    if (gw_http_gunzip(z.data, z.len / 2, sizeof text, &back) != GW_ERR_INVALID)
      rc = GW_ERR_STATE;
  }
  gw_buf_release(&z);
  gw_buf_release(&back);
  return rc == GW_OK ? 0 : 1;
}

static void test_roundtrip_and_cap(void **state) {
  (void)state;
  assert_int_equal(roundtrip(NULL), 0);
}

static void test_failmalloc(void **state) {
  (void)state;
  assert_true(gw_test_failmalloc_sweep(roundtrip, NULL) > 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accepts_gzip),
      cmocka_unit_test(test_compressible),
      cmocka_unit_test(test_roundtrip_and_cap),
      cmocka_unit_test(test_failmalloc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
