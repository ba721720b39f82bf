/* Retry decisions, the budget, back-off with jitter and Retry-After. */
#include "support.h"

#include <string.h>

#include "pipeline/retry.h"

static const struct {
  gw_attempt_outcome o;
  bool retry, health_failure, context;
} cases[] = {
    /* code, http, upstream, any_output, error code, message */
    {{GW_STATUS_UNAVAILABLE, 0, true, false, NULL, "connect refused"}, true, true, false},
    {{GW_STATUS_UNAVAILABLE, 503, true, false, NULL, "overloaded"}, true, true, false},
    {{GW_STATUS_INTERNAL, 500, true, false, NULL, "oops"}, true, true, false},
    {{GW_STATUS_DEADLINE_EXCEEDED, 504, true, false, NULL, "gw timeout"}, true, true, false},
    {{GW_STATUS_RESOURCE_EXHAUSTED, 429, true, false, "rate_limit_exceeded", "slow down"},
     true,
     false,
     false},
    {{GW_STATUS_DEADLINE_EXCEEDED, 0, true, false, NULL, "did not answer in time"},
     false,
     true,
     false},
    {{GW_STATUS_INVALID_ARGUMENT, 400, true, false, "invalid_value", "bad"}, false, false, false},
    {{GW_STATUS_UNAUTHENTICATED, 401, true, false, NULL, "key"}, false, false, false},
    {{GW_STATUS_NOT_FOUND, 404, true, false, "model_not_found", "no"}, false, false, false},
    {{GW_STATUS_INVALID_ARGUMENT, 400, true, false, "context_length_exceeded", "too long"},
     false,
     false,
     true},
    {{GW_STATUS_INVALID_ARGUMENT, 400, true, false, NULL,
      "This model's maximum context length is 4097 tokens"},
     false,
     false,
     true},
    /* output reached the client: never again */
    {{GW_STATUS_UNAVAILABLE, 0, true, true, NULL, "stream broke"}, false, true, false},
    {{GW_STATUS_INVALID_ARGUMENT, 400, true, true, "context_length_exceeded", NULL},
     false,
     false,
     false},
    /* not the upstream: the client left or its deadline passed */
    {{GW_STATUS_CANCELLED, 0, false, false, NULL, NULL}, false, false, false},
    {{GW_STATUS_DEADLINE_EXCEEDED, 0, false, false, NULL, NULL}, false, false, false},
    /* gRPC backends: no HTTP status */
    {{GW_STATUS_RESOURCE_EXHAUSTED, 0, true, false, NULL, "busy"}, true, false, false},
    {{GW_STATUS_INTERNAL, 0, true, false, NULL, "crash"}, true, true, false},
};

static void test_decisions(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (gw_retry_retryable(&cases[i].o) != cases[i].retry ||
        gw_retry_health_failure(&cases[i].o) != cases[i].health_failure ||
        gw_retry_context_length(&cases[i].o) != cases[i].context)
      fail_msg("case %zu (%s): retry %d health %d context %d", i,
               cases[i].o.message ? cases[i].o.message : "", gw_retry_retryable(&cases[i].o),
               gw_retry_health_failure(&cases[i].o), gw_retry_context_length(&cases[i].o));
  }
}

static void test_backoff(void **state) {
  (void)state;
  const gw_retry_conf conf = {2, 20, 10, 100, 1000, 10000};
  static const struct {
    int retry;
    int64_t lo, hi;
  } want[] = {{1, 50, 100},  {2, 100, 200},  {3, 200, 400},
              {4, 400, 800}, {5, 500, 1000}, {9, 500, 1000}};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    int64_t min = 1 << 30, max = 0;
    for (uint64_t r = 0; r < 2000; r++) {
      int64_t ms = gw_retry_backoff_ms(&conf, want[i].retry, r * 2654435761u);
      min = ms < min ? ms : min;
      max = ms > max ? ms : max;
    }
    if (min < want[i].lo || max > want[i].hi || max == min)
      fail_msg("retry %d: %lld..%lld, want within %lld..%lld, jittered", want[i].retry,
               (long long)min, (long long)max, (long long)want[i].lo, (long long)want[i].hi);
  }
  const gw_retry_conf zero = {2, 20, 10, 0, 0, 0};
  assert_int_equal(gw_retry_backoff_ms(&zero, 3, 12345), 0);
}

static void test_retry_after(void **state) {
  (void)state;
  const int64_t now = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
  static const struct {
    const char *v;
    int64_t ms;
  } vec[] = {
      {"7", 7000},
      {"0", 0},
      {" 1.5", 1500},
      {"Sun, 06 Nov 1994 08:49:47 GMT", 10000},
      {"Sun, 06 Nov 1994 08:49:30 GMT", 0}, /* past */
      {"soon", -1},
      {"-3", -1},
      {"7 seconds", -1},
      {"Sun, 06 Foo 1994 08:49:47 GMT", -1},
      {NULL, -1},
  };
  for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++)
    if (gw_retry_after_ms(vec[i].v, now) != vec[i].ms)
      fail_msg("\"%s\": %lld, want %lld", vec[i].v ? vec[i].v : "(null)",
               (long long)gw_retry_after_ms(vec[i].v, now), (long long)vec[i].ms);
}

static void test_budget(void **state) {
  (void)state;
  const gw_retry_conf conf = {2, 20, 3, 25, 1000, 10000};
  gw_retry_budget b;
  gw_retry_budget_init(&b, &conf);
  /* A reserve of 3 retries, then 1 per 5 requests. */
  for (int i = 0; i < 3; i++)
    assert_true(gw_retry_budget_withdraw(&b));
  assert_false(gw_retry_budget_withdraw(&b));
  for (int i = 0; i < 4; i++)
    gw_retry_budget_deposit(&b);
  assert_false(gw_retry_budget_withdraw(&b));
  gw_retry_budget_deposit(&b);
  assert_true(gw_retry_budget_withdraw(&b));
  assert_false(gw_retry_budget_withdraw(&b));
  /* Deposits stop at the reserve. */
  for (int i = 0; i < 1000; i++)
    gw_retry_budget_deposit(&b);
  int n = 0;
  while (gw_retry_budget_withdraw(&b))
    n++;
  assert_int_equal(n, 3);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decisions),
      cmocka_unit_test(test_backoff),
      cmocka_unit_test(test_retry_after),
      cmocka_unit_test(test_budget),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
