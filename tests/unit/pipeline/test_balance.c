/* The balancers: weighted round robin distribution, least outstanding,
 * P2C over EWMA, masks, and a fail-malloc sweep of gw_balancer_init. */
#include "support.h"

#include <string.h>

#include "core/alloc.h"
#include "core/status.h"
#include "pipeline/balance.h"

#define N 4

typedef struct {
  gw_dep_stats st[N];
  gw_dep_stats *ptr[N];
  bool mask[N];
} fixture;

static void fixture_init(fixture *f) {
  memset(f, 0, sizeof(*f));
  for (int i = 0; i < N; i++) {
    f->ptr[i] = &f->st[i];
    f->mask[i] = true;
  }
}

/* Weighted round robin: over whole cycles the split is exactly the weights,
 * and a 3:1 split interleaves (no run longer than the heavier weight). */
static const struct {
  int weights[N];
  size_t n;
  bool mask[N];
  int want[N]; /* picks out of sum(weights of eligible) * 10 */
} wrr_cases[] = {
    {{1, 1}, 2, {true, true}, {10, 10}},
    {{3, 1}, 2, {true, true}, {30, 10}},
    {{5, 3, 2}, 3, {true, true, true}, {50, 30, 20}},
    {{1, 1, 1, 1}, 4, {true, false, true, true}, {10, 0, 10, 10}},
    {{2, 1}, 2, {false, true}, {0, 10}},
    {{0, -4}, 2, {true, true}, {10, 10}}, /* < 1 counts as 1 */
};

static void test_weighted_round_robin(void **state) {
  (void)state;
  for (size_t c = 0; c < sizeof(wrr_cases) / sizeof(wrr_cases[0]); c++) {
    fixture f;
    fixture_init(&f);
    gw_balancer b;
    assert_int_equal(
        gw_balancer_init(&b, GW_BALANCE_WEIGHTED, wrr_cases[c].weights, wrr_cases[c].n), GW_OK);
    int total = 0;
    for (size_t i = 0; i < wrr_cases[c].n; i++)
      total += wrr_cases[c].want[i];
    int got[N] = {0};
    int run = 0, last = -1, longest = 0;
    for (int k = 0; k < total; k++) {
      int i = gw_balancer_pick(&b, f.ptr, wrr_cases[c].mask);
      assert_true(i >= 0 && (size_t)i < wrr_cases[c].n);
      assert_true(wrr_cases[c].mask[i]);
      got[i]++;
      run = i == last ? run + 1 : 1;
      last = i;
      longest = run > longest ? run : longest;
    }
    for (size_t i = 0; i < wrr_cases[c].n; i++)
      if (got[i] != wrr_cases[c].want[i])
        fail_msg("case %zu: deployment %zu got %d, want %d", c, i, got[i], wrr_cases[c].want[i]);
    if (c == 1)
      assert_true(longest <= 3);
    gw_balancer_release(&b);
  }
}

static void test_no_eligible(void **state) {
  (void)state;
  static const gw_balance_strategy all[] = {GW_BALANCE_WEIGHTED, GW_BALANCE_LEAST_OUTSTANDING,
                                            GW_BALANCE_P2C_EWMA};
  for (size_t s = 0; s < 3; s++) {
    fixture f;
    fixture_init(&f);
    memset(f.mask, 0, sizeof f.mask);
    gw_balancer b;
    int w[N] = {1, 2, 3, 4};
    assert_int_equal(gw_balancer_init(&b, all[s], w, N), GW_OK);
    assert_int_equal(gw_balancer_pick(&b, f.ptr, f.mask), -1);
    f.mask[2] = true; /* one left: always that one */
    for (int k = 0; k < 10; k++)
      assert_int_equal(gw_balancer_pick(&b, f.ptr, f.mask), 2);
    gw_balancer_release(&b);
  }
  gw_balancer b;
  assert_int_equal(gw_balancer_init(&b, GW_BALANCE_WEIGHTED, NULL, 0), GW_ERR_INVALID);
}

/* Least outstanding: the fewest in flight per weight wins; ties rotate. */
static const struct {
  int in_flight[N];
  int weights[N];
  int want; /* -1: a tie between those with the lowest, see |ties| */
  int ties;
} lo_cases[] = {
    {{5, 1, 3, 9}, {1, 1, 1, 1}, 1, 0},
    {{0, 0, 7, 0}, {1, 1, 1, 1}, -1, 3},
    {{4, 3, 9, 9}, {4, 1, 1, 1}, 0, 0}, /* 4/4 < 3/1 */
    {{2, 2, 2, 1}, {1, 1, 1, 1}, 3, 0},
};

static void test_least_outstanding(void **state) {
  (void)state;
  for (size_t c = 0; c < sizeof(lo_cases) / sizeof(lo_cases[0]); c++) {
    fixture f;
    fixture_init(&f);
    for (int i = 0; i < N; i++)
      f.st[i].in_flight = lo_cases[c].in_flight[i];
    gw_balancer b;
    assert_int_equal(gw_balancer_init(&b, GW_BALANCE_LEAST_OUTSTANDING, lo_cases[c].weights, N),
                     GW_OK);
    int seen[N] = {0};
    for (int k = 0; k < 40; k++)
      seen[gw_balancer_pick(&b, f.ptr, f.mask)]++;
    if (lo_cases[c].want >= 0) {
      assert_int_equal(seen[lo_cases[c].want], 40);
    } else {
      int distinct = 0;
      for (int i = 0; i < N; i++) {
        if (seen[i])
          assert_int_equal(f.st[i].in_flight, 0);
        distinct += seen[i] > 0;
      }
      assert_int_equal(distinct, lo_cases[c].ties); /* ties spread */
    }
    gw_balancer_release(&b);
  }
}

/* P2C over EWMA: the slow deployment gets (almost) nothing once the fast
 * ones have samples; a deployment without a sample gets tried. */
static void test_p2c_ewma(void **state) {
  (void)state;
  fixture f;
  fixture_init(&f);
  int w[N] = {1, 1, 1, 1};
  gw_balancer b;
  assert_int_equal(gw_balancer_init(&b, GW_BALANCE_P2C_EWMA, w, N), GW_OK);
  for (int k = 0; k < 20; k++) {
    gw_dep_stats_observe(&f.st[0], 1000);
    gw_dep_stats_observe(&f.st[1], 1100);
    gw_dep_stats_observe(&f.st[2], 50000); /* slow */
    gw_dep_stats_observe(&f.st[3], 900);
  }
  int seen[N] = {0};
  for (int k = 0; k < 3000; k++)
    seen[gw_balancer_pick(&b, f.ptr, f.mask)]++;
  /* The slowest loses every pair it is in: never picked. */
  assert_int_equal(seen[2], 0);
  assert_true(seen[3] > seen[1]);
  assert_true(seen[0] > 0 && seen[1] > 0);
  /* Queue length counts: the fastest with a deep queue yields. */
  f.st[3].in_flight = 100;
  memset(seen, 0, sizeof seen);
  for (int k = 0; k < 3000; k++)
    seen[gw_balancer_pick(&b, f.ptr, f.mask)]++;
  assert_true(seen[3] < seen[0]);
  /* No sample yet: scores 0, it is tried. */
  f.st[1].ewma_us = 0;
  memset(seen, 0, sizeof seen);
  for (int k = 0; k < 300; k++)
    seen[gw_balancer_pick(&b, f.ptr, f.mask)]++;
  assert_true(seen[1] > 100);
  gw_balancer_release(&b);
}

static void test_ewma(void **state) {
  (void)state;
  gw_dep_stats s;
  memset(&s, 0, sizeof s);
  gw_dep_stats_observe(&s, 1000);
  assert_int_equal(s.ewma_us, 1000);
  gw_dep_stats_observe(&s, 2000);
  assert_int_equal(s.ewma_us, 1200);
  for (int i = 0; i < 100; i++)
    gw_dep_stats_observe(&s, 2000);
  assert_true(s.ewma_us > 1990 && s.ewma_us <= 2000);
}

static void test_strategy_names(void **state) {
  (void)state;
  static const struct {
    const char *name;
    int rc;
    gw_balance_strategy s;
  } cases[] = {{"weighted", GW_OK, GW_BALANCE_WEIGHTED},
               {"round_robin", GW_OK, GW_BALANCE_WEIGHTED},
               {"least_outstanding", GW_OK, GW_BALANCE_LEAST_OUTSTANDING},
               {"p2c", GW_OK, GW_BALANCE_P2C_EWMA},
               {"p2c_ewma", GW_OK, GW_BALANCE_P2C_EWMA},
               {"random", GW_ERR_INVALID, GW_BALANCE_WEIGHTED},
               {"", GW_ERR_INVALID, GW_BALANCE_WEIGHTED}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    gw_balance_strategy s = GW_BALANCE_WEIGHTED;
    assert_int_equal(gw_balance_strategy_parse(cases[i].name, &s), cases[i].rc);
    assert_int_equal(s, cases[i].s);
  }
  assert_string_equal(gw_balance_strategy_to_str(GW_BALANCE_P2C_EWMA), "p2c_ewma");
}

static int sweep_init(void *arg) {
  (void)arg;
  int w[3] = {5000, 3000, 1}; /* scaled down to the schedule cap */
  gw_balancer b;
  int rc = gw_balancer_init(&b, GW_BALANCE_WEIGHTED, w, 3);
  if (rc != GW_OK)
    return rc;
  assert_true(b.sched_len <= GW_BALANCE_MAX_SCHEDULE + 3);
  gw_balancer_release(&b);
  return GW_OK;
}

static void test_failmalloc(void **state) {
  (void)state;
  assert_int_equal(gw_test_failmalloc_sweep(sweep_init, NULL), 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_weighted_round_robin),
      cmocka_unit_test(test_no_eligible),
      cmocka_unit_test(test_least_outstanding),
      cmocka_unit_test(test_p2c_ewma),
      cmocka_unit_test(test_ewma),
      cmocka_unit_test(test_strategy_names),
      cmocka_unit_test(test_failmalloc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
