/* The pool autoscaling decision: load samples -> up / down / hold, with the
 * sustain delays and cooldowns (table-driven, one timeline per case). */
#include "support.h"

#include <string.h>

#include "engine/autoscale.h"

/* The pool the cases run against: 1..3 processes of 2 calls each. */
static gw_pool_conf conf(void) {
  gw_pool_conf c;
  memset(&c, 0, sizeof c);
  c.min = 1;
  c.max = 3;
  c.max_concurrency = 2;
  c.scale_up_inflight = 2;
  c.scale_down_inflight = 1;
  c.scale_up_wait_ms = 200;
  c.scale_up_latency_ms = 0;
  c.up_after_ms = 1000;
  c.down_after_ms = 3000;
  c.up_cooldown_ms = 2000;
  c.down_cooldown_ms = 4000;
  return c;
}

typedef struct step {
  int64_t t;
  int active;
  long inflight, queued;
  double wait_ms, latency_ms;
  gw_scale_action want;
} step;

#define END                                                                                        \
  { -1, 0, 0, 0, 0, 0, GW_SCALE_HOLD }

static const struct tcase {
  const char *name;
  int64_t last_change; /* the state's starting last_change_ms */
  int latency_threshold;
  step steps[12];
} cases[] = {
    {"idle single process holds",
     0,
     0,
     {{1000, 1, 0, 0, 0, 0, GW_SCALE_HOLD}, {60000, 1, 0, 0, 0, 0, GW_SCALE_HOLD}, END}},
    {"below the minimum starts one at once", 0, 0, {{1000, 0, 0, 0, 0, 0, GW_SCALE_UP}, END}},
    {"above the maximum drains one at once", 0, 0, {{1000, 4, 0, 0, 0, 0, GW_SCALE_DOWN}, END}},
    {"high load must last up_after_ms",
     0,
     0,
     {{1000, 1, 2, 0, 0, 0, GW_SCALE_HOLD},
      {1500, 1, 2, 0, 0, 0, GW_SCALE_HOLD},
      {2000, 1, 2, 0, 0, 0, GW_SCALE_UP},
      END}},
    {"a dip restarts the sustain clock",
     0,
     0,
     {{1000, 1, 2, 0, 0, 0, GW_SCALE_HOLD},
      {1500, 1, 1, 0, 0, 0, GW_SCALE_HOLD},
      {1800, 1, 2, 0, 0, 0, GW_SCALE_HOLD},
      {2700, 1, 2, 0, 0, 0, GW_SCALE_HOLD},
      {2800, 1, 2, 0, 0, 0, GW_SCALE_UP},
      END}},
    {"queued calls are high load",
     0,
     0,
     {{1000, 2, 1, 1, 0, 0, GW_SCALE_HOLD}, {2000, 2, 1, 1, 0, 0, GW_SCALE_UP}, END}},
    {"queue wait above the threshold is high load",
     0,
     0,
     {{1000, 2, 1, 0, 250, 0, GW_SCALE_HOLD}, {2000, 2, 1, 0, 250, 0, GW_SCALE_UP}, END}},
    {"latency counts only when its threshold is set",
     0,
     0,
     {{1000, 2, 2, 0, 0, 5000, GW_SCALE_HOLD}, {9000, 2, 2, 0, 0, 5000, GW_SCALE_HOLD}, END}},
    {"latency above its threshold is high load",
     0,
     800,
     {{1000, 2, 1, 0, 0, 900, GW_SCALE_HOLD}, {2000, 2, 1, 0, 0, 900, GW_SCALE_UP}, END}},
    {"up cooldown after a change",
     0,
     0,
     {{1000, 1, 4, 0, 0, 0, GW_SCALE_HOLD},
      {2000, 1, 4, 0, 0, 0, GW_SCALE_UP},
      {3000, 2, 4, 0, 0, 0, GW_SCALE_HOLD}, /* high again, sustain restarts */
      {3500, 2, 4, 0, 0, 0, GW_SCALE_HOLD}, /* sustained, cooldown until 4000 */
      {4000, 2, 4, 0, 0, 0, GW_SCALE_UP},
      END}},
    {"the maximum caps scale-up",
     0,
     0,
     {{1000, 3, 9, 3, 500, 0, GW_SCALE_HOLD}, {9000, 3, 9, 3, 500, 0, GW_SCALE_HOLD}, END}},
    {"quiet must last down_after_ms",
     0,
     0,
     {{10000, 3, 1, 0, 0, 0, GW_SCALE_HOLD},
      {12000, 3, 2, 0, 0, 0, GW_SCALE_HOLD}, /* 2 <= 1 * (3-1): still low */
      {13000, 3, 0, 0, 0, 0, GW_SCALE_DOWN},
      END}},
    {"busy enough to need every process holds",
     0,
     0,
     {{10000, 3, 3, 0, 0, 0, GW_SCALE_HOLD}, {60000, 3, 3, 0, 0, 0, GW_SCALE_HOLD}, END}},
    {"down cooldown after a change",
     10000,
     0,
     {{11000, 2, 0, 0, 0, 0, GW_SCALE_HOLD},
      {13900, 2, 0, 0, 0, 0, GW_SCALE_HOLD}, /* quiet for 2.9 s only */
      {14000, 2, 0, 0, 0, 0, GW_SCALE_DOWN}, /* 3 s quiet, cooldown over at 14000 */
      END}},
    {"down stops at the minimum",
     0,
     0,
     {{10000, 2, 0, 0, 0, 0, GW_SCALE_HOLD},
      {13000, 2, 0, 0, 0, 0, GW_SCALE_DOWN},
      {20000, 1, 0, 0, 0, 0, GW_SCALE_HOLD},
      {90000, 1, 0, 0, 0, 0, GW_SCALE_HOLD},
      END}},
};

static void test_decisions(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const struct tcase *tc = &cases[i];
    gw_pool_conf c = conf();
    c.scale_up_latency_ms = tc->latency_threshold;
    gw_autoscale_state st;
    memset(&st, 0, sizeof st);
    st.last_change_ms = tc->last_change;
    for (size_t k = 0; tc->steps[k].t >= 0; k++) {
      const step *s = &tc->steps[k];
      gw_autoscale_sample x = {s->t, s->active, s->inflight, s->queued, s->wait_ms, s->latency_ms};
      const char *why = NULL;
      gw_scale_action got = gw_autoscale_decide(&c, &st, &x, &why);
      if (got != s->want)
        fail_msg("%s, step %zu (t=%lld): got %s (%s), want %s", tc->name, k, (long long)s->t,
                 gw_scale_action_to_str(got), why ? why : "", gw_scale_action_to_str(s->want));
      assert_non_null(why);
    }
  }
}

static void test_down_cooldown(void **state) {
  (void)state;
  gw_pool_conf c = conf();
  gw_autoscale_state st = {0, 0, 10000}; /* scaled at t=10 s; down cooldown 4 s */
  const char *why;
  gw_autoscale_sample x = {10500, 2, 0, 0, 0, 0};
  assert_int_equal(gw_autoscale_decide(&c, &st, &x, &why), GW_SCALE_HOLD);
  x.now_ms = 13600; /* quiet for 3.1 s, but the cooldown runs to 14 s */
  assert_int_equal(gw_autoscale_decide(&c, &st, &x, &why), GW_SCALE_HOLD);
  assert_string_equal(why, "load is low, in the down cooldown");
  x.now_ms = 14000;
  assert_int_equal(gw_autoscale_decide(&c, &st, &x, &why), GW_SCALE_DOWN);
  assert_int_equal(st.last_change_ms, 14000);
}

static void test_ewma(void **state) {
  (void)state;
  assert_true(gw_autoscale_ewma(0, 100, 0.5) == 50);
  assert_true(gw_autoscale_ewma(50, 0, 0.5) == 25);
  assert_string_equal(gw_scale_action_to_str(GW_SCALE_UP), "up");
  assert_string_equal(gw_scale_action_to_str(GW_SCALE_DOWN), "down");
  assert_string_equal(gw_scale_action_to_str(GW_SCALE_HOLD), "hold");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decisions),
      cmocka_unit_test(test_down_cooldown),
      cmocka_unit_test(test_ewma),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
