/* Numbers as text: integers, and the shortest round-tripping "%g" of floats
 * and doubles, checked against the printf loop it replaces on values chosen
 * to hit every layout and on random bit patterns. */
#include "support.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/numtext.h"

/* The specification: the first precision in [lo, hi] whose text reads back. */
static void reference(double v, int lo, int hi, int is_float, char *out) {
  for (int p = lo; p <= hi; p++) {
    snprintf(out, GW_NUMTEXT_MAX, "%.*g", p, v);
    if (is_float ? strtof(out, NULL) == (float)v : strtod(out, NULL) == v)
      break;
  }
}

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void check_float(float v) {
  char want[GW_NUMTEXT_MAX], got[GW_NUMTEXT_MAX];
  reference(v, 6, 9, 1, want);
  size_t n = gw_numtext_float(v, got);
  if (strcmp(want, got) != 0)
    fail_msg("float %a: want %s got %s", (double)v, want, got);
  assert_int_equal(n, strlen(got));
}

static void check_double(double v) {
  char want[GW_NUMTEXT_MAX], got[GW_NUMTEXT_MAX];
  reference(v, 15, 17, 0, want);
  size_t n = gw_numtext_double(v, got);
  if (strcmp(want, got) != 0)
    fail_msg("double %a: want %s got %s", v, want, got);
  assert_int_equal(n, strlen(got));
}

static void test_integers(void **state) {
  char b[GW_NUMTEXT_MAX];
  assert_int_equal(gw_numtext_u64(0, b), 1);
  assert_string_equal(b, "0");
  gw_numtext_u64(UINT64_MAX, b);
  assert_string_equal(b, "18446744073709551615");
  /* every digit count, at its edges: 10^k - 1, 10^k, 10^k + 1 */
  for (uint64_t p = 10; p <= 10000000000000000000ull; p *= 10) {
    for (uint64_t v = p - 1; v <= p + 1; v++) {
      char want[GW_NUMTEXT_MAX];
      snprintf(want, sizeof want, "%llu", (unsigned long long)v);
      assert_int_equal(gw_numtext_u64(v, b), strlen(want));
      assert_string_equal(b, want);
    }
    if (p == 10000000000000000000ull)
      break;
  }
  gw_numtext_i64(INT64_MIN, b);
  assert_string_equal(b, "-9223372036854775808");
  gw_numtext_i64(-42, b);
  assert_string_equal(b, "-42");
  assert_int_equal(gw_numtext_hex(0, 0, b), 1);
  assert_string_equal(b, "0");
  assert_int_equal(gw_numtext_hex(0xabc, 8, b), 8);
  assert_string_equal(b, "00000abc");
  gw_numtext_hex(UINT64_MAX, 16, b);
  assert_string_equal(b, "ffffffffffffffff");
  for (int i = 0; i < 100000; i++) {
    char want[GW_NUMTEXT_MAX];
    uint64_t h = next() >> (next() % 64);
    int width = (int)(next() % 20);
    snprintf(want, sizeof want, "%0*llx", width, (unsigned long long)h);
    assert_int_equal(gw_numtext_hex(h, width, b), strlen(want));
    assert_string_equal(b, want);
  }
  for (int i = 0; i < 100000; i++) {
    char want[GW_NUMTEXT_MAX];
    int64_t v = (int64_t)next() >> (next() % 64);
    snprintf(want, sizeof want, "%lld", (long long)v);
    assert_int_equal(gw_numtext_i64(v, b), strlen(want));
    assert_string_equal(b, want);
  }
}

static void test_float_layouts(void **state) {
  /* Plain, trailing zeros, integers past the precision, tiny, huge, the
   * rounding carry into a new digit, and the edges of the fast path. */
  static const float cases[] = {
      0.0f,       1.0f,        0.1f,    0.0037f,     -0.5f,         123456.0f, 1e6f,    999999.7f,
      9999999.0f, 1e-4f,       1.5e-5f, 0.00012345f, 3.4028235e38f, FLT_MIN,   1e-45f,  1e-30f,
      1e30f,      16777216.0f, 0.3f,    2.5f,        1.0f / 3.0f,   -1e10f,    7.0e-10f};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    check_float(cases[i]);
  /* Every float that an embedding model's grid of 4 decimals produces. */
  for (int i = -20000; i <= 20000; i++)
    check_float((float)i / 10000.0f);
}

static void test_float_random(void **state) {
  for (int i = 0; i < 300000; i++) {
    uint32_t bits = (uint32_t)next();
    float v;
    memcpy(&v, &bits, sizeof v);
    if (!isfinite(v) || (v == 0 && signbit(v)))
      continue;
    check_float(v);
  }
  /* Values embedding models give: N(0, 0.05)-ish, dense near zero. */
  for (int i = 0; i < 200000; i++) {
    double u = ((double)(next() >> 11) / 9007199254740992.0) - 0.5;
    check_float((float)(u * 0.2));
  }
}

/* The exact integer path covers binary exponents from 2^-27 to 2^31: at
 * each of them, the power of two (where the gap below is half as wide), the
 * largest mantissa, and a run of consecutive floats from a random start.
 * (Offline, every float in [2^-27, 2^31) was compared with the previous
 * implementation: no difference; and again, every float of either sign
 * from 2^-32 to 2^33, when the exponent came from a table and the
 * precision from two tries.) */
static void test_float_every_exponent(void **state) {
  for (uint32_t be = 100; be <= 158; be++) {
    uint32_t start = (uint32_t)(next() & 0x7fffffu);
    uint32_t picks[] = {0, 1, 0x7fffffu, 0x7ffffeu};
    for (size_t i = 0; i < sizeof picks / sizeof picks[0]; i++) {
      uint32_t bits = be << 23 | picks[i];
      float v;
      memcpy(&v, &bits, sizeof v);
      check_float(v);
      check_float(-v);
    }
    for (uint32_t m = start; m < start + 1500 && m <= 0x7fffffu; m++) {
      uint32_t bits = be << 23 | m;
      float v;
      memcpy(&v, &bits, sizeof v);
      check_float(v);
    }
  }
  /* whole numbers of nine digits: nothing below the point */
  for (int i = 0; i < 20000; i++)
    check_float((float)(100000000 + (int)(next() % 900000000)));
}

/* The floats next to each power of ten from 10^-9 to 10^10, where the
 * decimal exponent of the first digit changes: the fast path reads it from
 * a table of the smallest float at or above each power (a wrong entry would
 * only send these floats to the slow path, which must agree too). */
static void test_float_powers_of_ten(void **state) {
  for (int j = -9; j <= 10; j++) {
    float near = (float)pow(10, j);
    uint32_t bits;
    memcpy(&bits, &near, sizeof bits);
    for (uint32_t b = bits - 16; b <= bits + 16; b++) {
      float v;
      memcpy(&v, &b, sizeof v);
      check_float(v);
      check_float(-v);
    }
  }
}

/* gw_numtext_floats on |v| (|n| floats, the first |stop| of them written):
 * the numbers one at a time, commas between, from gw_numtext_float or, with
 * |by_printf|, from the printf loop itself. */
static void check_vector(const float *v, size_t n, size_t stop, int by_printf) {
  static char got[700 * (GW_NUMTEXT_MAX + 1)], want[700 * (GW_NUMTEXT_MAX + 1)];
  assert_true(n <= 700);
  size_t w = 0;
  for (size_t i = 0; i < stop; i++) {
    if (i)
      want[w++] = ',';
    if (by_printf)
      reference(v[i], 6, 9, 1, want + w);
    else
      gw_numtext_float(v[i], want + w);
    w += strlen(want + w);
  }
  want[w] = '\0';
  size_t done = 12345;
  got[0] = '\0';
  size_t len = gw_numtext_floats(v, n, got, &done);
  assert_int_equal(done, stop);
  assert_string_equal(got, want);
  assert_int_equal(len, w);
}

/* A vector in one call: the same text as one number at a time, commas
 * between, stopping before the first value it leaves to the caller. */
static void test_float_vectors(void **state) {
  static float v[700];
  for (int round = 0; round < 200; round++) {
    size_t n = (size_t)(next() % 700), stop = n;
    for (size_t i = 0; i < n; i++) {
      double u = ((double)(next() >> 11) / 9007199254740992.0) - 0.5;
      v[i] = (float)(u * (round % 2 ? 0.2 : 2e6));
    }
    if (n && round % 3 == 0) { /* a value that ends the run */
      stop = (size_t)(next() % n);
      static const float special[] = {NAN, INFINITY, -INFINITY, -0.0f};
      v[stop] = special[round % 4];
    }
    check_vector(v, n, stop, 0);
  }
}

/* Where the CPU has AVX2 a vector is printed eight floats at a time, with
 * lanes it cannot prove left to the one-number path. Groups mixing both
 * kinds at every position: the edges of its range (10^-4, 10^9), powers of
 * two (the gap below is half as wide), exact values and values whose
 * nine-digit scaling ends in exactly .5 (123456.0625 * 1000), and the
 * embeddings' own range; each number checked against printf's loop, and a
 * value that ends the run in every lane. */
static void test_float_vectors_in_groups(void **state) {
  enum { POOL = 4096, N = 64 };
  static float pool[POOL];
  size_t np = 0;
  static const double edges[] = {1e-4, 1e9, 1e-3, 0.01, 0.1, 1, 10, 1e5, 1e8};
  for (size_t e = 0; e < sizeof edges / sizeof edges[0]; e++) {
    float near = (float)edges[e];
    uint32_t bits;
    memcpy(&bits, &near, sizeof bits);
    for (uint32_t b = bits - 40; b <= bits + 40; b++)
      memcpy(&pool[np++], &b, sizeof b);
  }
  for (int x = -16; x <= 31; x++) /* powers of two, exact */
    pool[np++] = ldexpf(1.0f, x);
  for (int i = 1; i <= 300; i++) {
    pool[np++] = (float)i;         /* exact: the scaled value has no fraction */
    pool[np++] = (float)i + 0.5f;  /* exact */
    pool[np++] = 100000.0625f * i; /* (some) a fraction of exactly one half at nine digits */
    pool[np++] = (float)(123456 + i) + 0.0625f;
  }
  while (np < POOL) { /* the embeddings' range, and wider */
    double u = ((double)(next() >> 11) / 9007199254740992.0) - 0.5;
    pool[np] = (float)(np % 2 ? u * 0.1 : ldexp(u, (int)(next() % 80) - 40));
    np++;
  }
  static float v[N];
  for (int round = 0; round < 3000; round++) {
    size_t n = 8 + (size_t)(next() % (N - 7)), stop = n;
    for (size_t i = 0; i < n; i++)
      v[i] = pool[next() % POOL] * (next() & 1 ? -1.0f : 1.0f);
    if (round % 4 == 0) {
      static const float special[] = {NAN, INFINITY, -INFINITY, -0.0f};
      stop = (size_t)(round / 4) % n;
      v[stop] = special[(round / 4) % 4];
    }
    check_vector(v, n, stop, 1);
  }
}

static void test_double_layouts_and_random(void **state) {
  static const double cases[] = {0.0,
                                 1.0,
                                 0.1,
                                 0.7,
                                 1e21,
                                 1e22,
                                 123456789012345.0,
                                 1e15,
                                 1e16,
                                 2.5,
                                 1e-5,
                                 1e-300,
                                 1e300,
                                 DBL_MAX,
                                 DBL_MIN,
                                 5e-324,
                                 0.3,
                                 1.0 / 3,
                                 -2.0e-7,
                                 9007199254740993.0};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    check_double(cases[i]);
  for (int i = 0; i < 200000; i++) {
    uint64_t bits = next();
    double v;
    memcpy(&v, &bits, sizeof v);
    if (!isfinite(v) || (v == 0 && signbit(v)))
      continue;
    check_double(v);
  }
  for (int i = 0; i < 100000; i++) /* short decimals, as JSON requests carry them */
    check_double((double)(int64_t)(next() % 2000001 - 1000000) / 1000.0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_integers),
      cmocka_unit_test(test_float_layouts),
      cmocka_unit_test(test_float_random),
      cmocka_unit_test(test_float_every_exponent),
      cmocka_unit_test(test_float_powers_of_ten),
      cmocka_unit_test(test_float_vectors),
      cmocka_unit_test(test_float_vectors_in_groups),
      cmocka_unit_test(test_double_layouts_and_random),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
