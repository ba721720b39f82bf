/* The per-deployment circuit: ejection after consecutive failures,
 * exponential back-off, one trial at a time, readmission, Retry-After
 * cool-down; driven by a table of steps on a fake clock. */
#include "support.h"

#include "pipeline/health.h"

typedef enum { ADMIT, REPORT_OK, REPORT_FAIL, COOL, ABANDON } op;

typedef struct {
  int64_t now;
  op what;
  int64_t arg;     /* COOL: ms */
  bool want_admit; /* ADMIT */
  bool want_trial; /* ADMIT */
  int want_change; /* REPORT_*: gw_health_change */
  int64_t want_ms; /* REPORT_*: ejection length when ejected */
  gw_circuit_state after;
} step;

#define END                                                                                        \
  { -1, 0, 0, 0, 0, 0, 0, 0 }

static const struct {
  const char *name;
  step steps[16];
} cases[] = {
    {"failures below the threshold keep it in",
     {{0, REPORT_FAIL, 0, 0, 0, GW_HEALTH_NO_CHANGE, 0, GW_CIRCUIT_CLOSED},
      {1, REPORT_FAIL, 0, 0, 0, GW_HEALTH_NO_CHANGE, 0, GW_CIRCUIT_CLOSED},
      {2, REPORT_OK, 0, 0, 0, GW_HEALTH_NO_CHANGE, 0, GW_CIRCUIT_CLOSED}, /* resets the count */
      {3, REPORT_FAIL, 0, 0, 0, GW_HEALTH_NO_CHANGE, 0, GW_CIRCUIT_CLOSED},
      {4, REPORT_FAIL, 0, 0, 0, GW_HEALTH_NO_CHANGE, 0, GW_CIRCUIT_CLOSED},
      {5, ADMIT, 0, true, false, 0, 0, GW_CIRCUIT_CLOSED},
      END}},
    {"eject, one trial, readmit",
     {{0, REPORT_FAIL, 0, 0, 0, GW_HEALTH_NO_CHANGE, 0, GW_CIRCUIT_CLOSED},
      {0, REPORT_FAIL, 0, 0, 0, GW_HEALTH_NO_CHANGE, 0, GW_CIRCUIT_CLOSED},
      {0, REPORT_FAIL, 0, 0, 0, GW_HEALTH_EJECTED, 100, GW_CIRCUIT_OPEN},
      {50, ADMIT, 0, false, false, 0, 0, GW_CIRCUIT_OPEN},
      {100, ADMIT, 0, true, true, 0, 0, GW_CIRCUIT_HALF_OPEN},
      {101, ADMIT, 0, false, false, 0, 0, GW_CIRCUIT_HALF_OPEN}, /* one trial at a time */
      {120, REPORT_OK + 10, 0, 0, 0, GW_HEALTH_READMITTED, 0, GW_CIRCUIT_CLOSED},
      {121, ADMIT, 0, true, false, 0, 0, GW_CIRCUIT_CLOSED},
      END}},
    {"failed trials double the back-off up to the cap",
     {{0, REPORT_FAIL, 0, 0, 0, GW_HEALTH_NO_CHANGE, 0, GW_CIRCUIT_CLOSED},
      {0, REPORT_FAIL, 0, 0, 0, GW_HEALTH_NO_CHANGE, 0, GW_CIRCUIT_CLOSED},
      {0, REPORT_FAIL, 0, 0, 0, GW_HEALTH_EJECTED, 100, GW_CIRCUIT_OPEN},
      {100, ADMIT, 0, true, true, 0, 0, GW_CIRCUIT_HALF_OPEN},
      {100, REPORT_FAIL + 10, 0, 0, 0, GW_HEALTH_REEJECTED, 200, GW_CIRCUIT_OPEN},
      {299, ADMIT, 0, false, false, 0, 0, GW_CIRCUIT_OPEN},
      {300, ADMIT, 0, true, true, 0, 0, GW_CIRCUIT_HALF_OPEN},
      {300, REPORT_FAIL + 10, 0, 0, 0, GW_HEALTH_REEJECTED, 350, GW_CIRCUIT_OPEN},
      {650, ADMIT, 0, true, true, 0, 0, GW_CIRCUIT_HALF_OPEN},
      {650, REPORT_FAIL + 10, 0, 0, 0, GW_HEALTH_REEJECTED, 350, GW_CIRCUIT_OPEN},
      {1000, ADMIT, 0, true, true, 0, 0, GW_CIRCUIT_HALF_OPEN},
      {1000, REPORT_OK + 10, 0, 0, 0, GW_HEALTH_READMITTED, 0, GW_CIRCUIT_CLOSED},
      END}},
    {"late reports of calls admitted before the ejection change nothing",
     {{0, REPORT_FAIL, 0, 0, 0, GW_HEALTH_NO_CHANGE, 0, GW_CIRCUIT_CLOSED},
      {0, REPORT_FAIL, 0, 0, 0, GW_HEALTH_NO_CHANGE, 0, GW_CIRCUIT_CLOSED},
      {0, REPORT_FAIL, 0, 0, 0, GW_HEALTH_EJECTED, 100, GW_CIRCUIT_OPEN},
      {10, REPORT_FAIL, 0, 0, 0, GW_HEALTH_NO_CHANGE, 0, GW_CIRCUIT_OPEN},
      {10, REPORT_OK, 0, 0, 0, GW_HEALTH_NO_CHANGE, 0, GW_CIRCUIT_OPEN},
      END}},
    {"an abandoned trial lets the next caller be the trial",
     {{0, REPORT_FAIL, 0, 0, 0, GW_HEALTH_NO_CHANGE, 0, GW_CIRCUIT_CLOSED},
      {0, REPORT_FAIL, 0, 0, 0, GW_HEALTH_NO_CHANGE, 0, GW_CIRCUIT_CLOSED},
      {0, REPORT_FAIL, 0, 0, 0, GW_HEALTH_EJECTED, 100, GW_CIRCUIT_OPEN},
      {100, ADMIT, 0, true, true, 0, 0, GW_CIRCUIT_HALF_OPEN},
      {110, ABANDON, 0, 0, 0, 0, 0, GW_CIRCUIT_OPEN},
      {111, ADMIT, 0, true, true, 0, 0, GW_CIRCUIT_HALF_OPEN},
      END}},
    {"Retry-After cools down without ejecting",
     {{0, COOL, 500, 0, 0, 0, 0, GW_CIRCUIT_CLOSED},
      {499, ADMIT, 0, false, false, 0, 0, GW_CIRCUIT_CLOSED},
      {100, COOL, 100, 0, 0, 0, 0, GW_CIRCUIT_CLOSED}, /* never shortens */
      {499, ADMIT, 0, false, false, 0, 0, GW_CIRCUIT_CLOSED},
      {500, ADMIT, 0, true, false, 0, 0, GW_CIRCUIT_CLOSED},
      END}},
};

static void test_state_machine(void **state) {
  (void)state;
  const gw_health_conf conf = {3, 100, 350};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    gw_health h;
    gw_health_init(&h);
    bool trial = false;
    for (size_t k = 0; cases[c].steps[k].now >= 0; k++) {
      const step *s = &cases[c].steps[k];
      int what = s->what;
      bool is_trial = what >= 10;
      if (is_trial)
        what -= 10;
      int64_t ms = 0;
      int change = GW_HEALTH_NO_CHANGE;
      switch (what) {
      case ADMIT: {
        bool ok = gw_health_admit(&h, s->now, &trial);
        if (ok != s->want_admit || trial != s->want_trial)
          fail_msg("%s, step %zu: admit %d trial %d", cases[c].name, k, ok, trial);
        if (ok)
          assert_true(gw_health_available(&h, s->now) || trial);
        break;
      }
      case REPORT_OK:
      case REPORT_FAIL:
        change = gw_health_report(&h, &conf, s->now, what == REPORT_OK, is_trial, &ms);
        if (change != s->want_change || (s->want_ms && ms != s->want_ms))
          fail_msg("%s, step %zu: change %d (want %d), %lld ms", cases[c].name, k, change,
                   s->want_change, (long long)ms);
        break;
      case COOL: gw_health_cool_down(&h, s->now, s->arg); break;
      case ABANDON: gw_health_abandon(&h); break;
      }
      if (h.state != (int)s->after)
        fail_msg("%s, step %zu: state %s, want %s", cases[c].name, k,
                 gw_circuit_state_to_str(h.state), gw_circuit_state_to_str(s->after));
    }
  }
}

static void test_backoff(void **state) {
  (void)state;
  const gw_health_conf conf = {1, 1000, 30000};
  static const int64_t want[] = {0, 1000, 2000, 4000, 8000, 16000, 30000, 30000};
  for (int i = 1; i < 8; i++)
    assert_int_equal(gw_health_backoff_ms(&conf, i), want[i]);
  assert_int_equal(gw_health_backoff_ms(&conf, 1000), 30000);
  assert_string_equal(gw_circuit_state_to_str(GW_CIRCUIT_HALF_OPEN), "half_open");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_state_machine),
      cmocka_unit_test(test_backoff),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
