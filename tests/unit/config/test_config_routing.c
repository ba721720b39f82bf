/* The routing keys of the config: `routing`, per-deployment
 * `max_concurrency`, model `fallbacks`, and a comma-separated
 * TARGET_API_URL; good values, errors naming file and key, and a
 * fail-malloc sweep. */
#include "support.h"

#include <string.h>

#include "config/config.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/status.h"

#define NO_DOTENV "/nonexistent/config-routing-test/.env"

static const char *env_get(void *arg, const char *name) {
  const char *const *kv = arg;
  for (size_t i = 0; kv && kv[i]; i += 2)
    if (strcmp(kv[i], name) == 0)
      return kv[i + 1];
  return NULL;
}

#define BACKENDS                                                                                   \
  "\"backends\": [{\"name\": \"a\", \"provider\": \"openai\", \"target\": \"http://h1/v1\"},"      \
  "{\"name\": \"b\", \"provider\": \"openai\", \"target\": \"http://h2/v1\"}]"

static int load_json(gw_config *c, const char *json, gw_buf *err) {
  return gw_config_load_buffer(c, "gw.json", json, strlen(json), env_get, NULL, err);
}

static void test_defaults_and_values(void **state) {
  (void)state;
  gw_config c;
  assert_int_equal(
      load_json(&c, "{" BACKENDS ", \"models\": [{\"name\": \"m\", \"backend\": \"a\"}]}", NULL),
      GW_OK);
  assert_int_equal(c.routing.balance, GW_CONF_BALANCE_WEIGHTED);
  assert_int_equal(c.routing.max_retries, 2);
  assert_int_equal(c.routing.eject_failures, 3);
  assert_int_equal(c.routing.reload_poll_ms, 1000);
  assert_int_equal(c.models[0].deployments[0].max_concurrency, 0);
  assert_int_equal(c.models[0].n_fallbacks, 0);
  gw_config_release(&c);

  assert_int_equal(
      load_json(
          &c,
          "{" BACKENDS ", \"models\": ["
          "{\"name\": \"m\", \"deployments\": [{\"backend\": \"a\", \"max_concurrency\": 8},"
          "{\"backend\": \"b\"}], \"fallbacks\": [\"n\", \"o\"]},"
          "{\"name\": \"n\", \"backend\": \"b\"}, {\"name\": \"o\", \"backend\": \"a\"}],"
          "\"routing\": {\"balance\": \"p2c\", \"max_retries\": 4, \"retry_budget_percent\": 50,"
          "\"eject_failures\": 5, \"eject_base_ms\": 200, \"eject_max_ms\": 800,"
          "\"probe_interval_ms\": 0, \"reload_poll_ms\": 0}}",
          NULL),
      GW_OK);
  assert_int_equal(c.routing.balance, GW_CONF_BALANCE_P2C_EWMA);
  assert_int_equal(c.routing.max_retries, 4);
  assert_int_equal(c.routing.retry_budget_percent, 50);
  assert_int_equal(c.routing.eject_failures, 5);
  assert_int_equal(c.routing.eject_max_ms, 800);
  assert_int_equal(c.routing.reload_poll_ms, 0);
  assert_int_equal(c.models[0].deployments[0].max_concurrency, 8);
  assert_int_equal(c.models[0].n_fallbacks, 2);
  assert_string_equal(c.models[0].fallbacks[1], "o");
  gw_config_release(&c);
}

static const struct {
  const char *json;
  const char *error;
} bad[] = {
    {"{" BACKENDS ", \"models\": [{\"name\": \"m\", \"backend\": \"a\"}], \"routing\": 3}",
     "gw.json: routing: must be an object"},
    {"{" BACKENDS ", \"models\": [{\"name\": \"m\", \"backend\": \"a\"}], "
     "\"routing\": {\"balance\": \"fastest\"}}",
     "gw.json: routing.balance: \"fastest\" is not one of"},
    {"{" BACKENDS ", \"models\": [{\"name\": \"m\", \"backend\": \"a\"}], "
     "\"routing\": {\"max_retries\": 11}}",
     "gw.json: routing.max_retries: must be an integer in 0-10"},
    {"{" BACKENDS ", \"models\": [{\"name\": \"m\", \"backend\": \"a\"}], "
     "\"routing\": {\"eject_base_ms\": 500, \"eject_max_ms\": 100}}",
     "gw.json: routing.eject_max_ms: must be >= eject_base_ms"},
    {"{" BACKENDS ", \"models\": [{\"name\": \"m\", \"backend\": \"a\"}], "
     "\"routing\": {\"retries\": 1}}",
     "gw.json: routing.retries: unknown key"},
    {"{" BACKENDS ", \"models\": [{\"name\": \"m\", \"backend\": \"a\", \"fallbacks\": [\"x\"]}]}",
     "gw.json: models[0].fallbacks[0]: unknown model \"x\""},
    {"{" BACKENDS ", \"models\": [{\"name\": \"m\", \"backend\": \"a\", \"fallbacks\": [\"m\"]}]}",
     "gw.json: models[0].fallbacks[0]: a model cannot fall back to itself"},
    {"{" BACKENDS ", \"models\": [{\"name\": \"m\", \"backend\": \"a\", \"fallbacks\": \"n\"}]}",
     "gw.json: models[0].fallbacks: must be a list of model names"},
    {"{" BACKENDS ", \"models\": [{\"name\": \"m\", \"deployments\": "
     "[{\"backend\": \"a\", \"max_concurrency\": -1}]}]}",
     "gw.json: models[0].deployments[0].max_concurrency: must be an integer >= 0"},
};

static void test_errors(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    gw_config c;
    gw_buf err;
    gw_buf_init(&err, 1024);
    assert_int_equal(load_json(&c, bad[i].json, &err), GW_ERR_INVALID);
    if (!err.data || !strstr(err.data, bad[i].error))
      fail_msg("case %zu: got \"%s\", want \"%s\"", i, err.data ? err.data : "", bad[i].error);
    gw_buf_release(&err);
  }
}

static void test_target_api_url_list(void **state) {
  (void)state;
  const char *env[] = {"TARGET_API_URL", "http://h1:1/v1,http://h2:2/v1,https://h3/v1",
                       "TARGET_API_KEY", "k", NULL};
  gw_config c;
  gw_buf err;
  gw_buf_init(&err, 512);
  assert_int_equal(gw_config_load(&c, env_get, (void *)env, NO_DOTENV, &err), GW_OK);
  assert_int_equal(c.n_backends, 3);
  assert_string_equal(c.backends[0].name, "upstream-1");
  assert_string_equal(c.backends[2].target, "https://h3/v1");
  assert_string_equal(c.backends[1].api_key, "k");
  assert_int_equal(c.n_models, 1);
  assert_string_equal(c.models[0].name, "*");
  assert_int_equal(c.models[0].n_deployments, 3);
  assert_string_equal(c.models[0].deployments[1].backend, "upstream-2");
  assert_null(c.models[0].deployments[1].upstream_model);
  gw_config_release(&c);

  const char *one[] = {"TARGET_API_URL", "http://h1:1/v1", NULL};
  assert_int_equal(gw_config_load(&c, env_get, (void *)one, NO_DOTENV, &err), GW_OK);
  assert_int_equal(c.n_backends, 1);
  assert_string_equal(c.backends[0].name, "upstream"); /* unchanged for one URL */
  gw_config_release(&c);

  const char *empty_item[] = {"TARGET_API_URL", "http://h1:1/v1,", NULL};
  assert_int_equal(gw_config_load(&c, env_get, (void *)empty_item, NO_DOTENV, &err),
                   GW_ERR_INVALID);
  assert_non_null(strstr(err.data, "TARGET_API_URL: item 2"));
  gw_buf_release(&err);
}

static int sweep(void *arg) {
  const char **env = arg;
  gw_config c;
  int rc = gw_config_load(&c, env_get, (void *)env, NO_DOTENV, NULL);
  if (rc == GW_OK)
    gw_config_release(&c);
  return rc;
}

static int sweep_file(void *arg) {
  (void)arg;
  gw_config c;
  int rc = load_json(&c,
                     "{" BACKENDS ", \"models\": [{\"name\": \"m\", \"deployments\": ["
                     "{\"backend\": \"a\", \"max_concurrency\": 2}, {\"backend\": \"b\"}],"
                     "\"fallbacks\": [\"n\"]}, {\"name\": \"n\", \"backend\": \"b\"}],"
                     "\"routing\": {\"balance\": \"least_outstanding\"}}",
                     NULL);
  if (rc == GW_OK)
    gw_config_release(&c);
  return rc;
}

static void test_failmalloc(void **state) {
  (void)state;
  const char *env[] = {"TARGET_API_URL", "http://h1:1/v1,http://h2:2/v1", "TARGET_API_KEY", "k",
                       NULL};
  assert_true(gw_test_failmalloc_sweep(sweep, (void *)env) > 10);
  assert_true(gw_test_failmalloc_sweep(sweep_file, NULL) > 10);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults_and_values),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_target_api_url_list),
      cmocka_unit_test(test_failmalloc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
