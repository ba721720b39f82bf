/* Pool port substitution: where the --port value sits in a command, and
 * what replaces it for each member. */
#include "support.h"

#include <string.h>

#include "core/status.h"
#include "engine/pool.h"

static const struct {
  const char *argv[8];
  int want_index;
  bool want_joined;
} port_cases[] = {
    {{"/usr/bin/python3", "-m", "aigw_model_server", "--backend", "echo", "--port", "50061"},
     6,
     false},
    {{"python3", "--port=7000", "--backend", "echo"}, 1, true},
    {{"server", "--backend", "echo"}, -1, false},
    {{"server", "--port"}, -1, false},                      /* no value after it */
    {{"server", "--", "--port", "1"}, -1, false},           /* after "--": not ours */
    {{"server", "--portal", "1", "--port", "9"}, 4, false}, /* only the exact option */
    {{"server", "--port", "1", "--port", "9"}, 2, false},   /* the first one */
};

static void test_port_index(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof port_cases / sizeof port_cases[0]; i++) {
    size_t n = 0;
    while (n < 8 && port_cases[i].argv[n])
      n++;
    bool joined = true;
    int got = gw_pool_port_index((char *const *)port_cases[i].argv, n, &joined);
    if (got != port_cases[i].want_index || joined != port_cases[i].want_joined)
      fail_msg("case %zu: got %d/%d, want %d/%d", i, got, joined, port_cases[i].want_index,
               port_cases[i].want_joined);
  }
}

static void test_port_arg(void **state) {
  (void)state;
  char buf[32];
  assert_int_equal(gw_pool_port_arg(false, 50062, buf, sizeof buf), GW_OK);
  assert_string_equal(buf, "50062");
  assert_int_equal(gw_pool_port_arg(true, 7001, buf, sizeof buf), GW_OK);
  assert_string_equal(buf, "--port=7001");
  assert_int_equal(gw_pool_port_arg(true, 7001, buf, 8), GW_ERR_TOOBIG);
}

static void test_state_names(void **state) {
  (void)state;
  assert_string_equal(gw_member_state_to_str(GW_MEMBER_READY), "serving");
  assert_string_equal(gw_member_state_to_str(GW_MEMBER_DRAINING), "draining");
  assert_string_equal(gw_member_state_to_str(GW_MEMBER_OFF), "off");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_port_index),
      cmocka_unit_test(test_port_arg),
      cmocka_unit_test(test_state_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
