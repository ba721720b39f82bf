/* Routes built from the embedded set's google.api.http annotations. */
#include "support.h"

#include <string.h>

#include "core/log.h"
#include "core/status.h"
#include "transcoder/routes.h"

static gw_descriptors *desc;
static gw_routes *routes;

typedef struct route_case {
  const char *method, *path;
  int rc;
  const char *unary, *streaming; /* method names, NULL when none */
  const char *var_field, *var_value;
  const char *allow;
} route_case;

static const route_case cases[] = {
    {"POST", "/v1/chat/completions", GW_OK, "CreateChatCompletion", "StreamChatCompletion"},
    {"POST", "/local/chat/completions", GW_OK, "CreateChatCompletion", "StreamChatCompletion"},
    {"POST", "/v1/completions", GW_OK, "CreateCompletion", "StreamCompletion"},
    {"POST", "/local/completions", GW_OK, "CreateCompletion", "StreamCompletion"},
    {"POST", "/v1/embeddings", GW_OK, "CreateEmbedding", NULL},
    {"POST", "/local/embeddings", GW_OK, "CreateEmbedding", NULL},
    {"GET", "/v1/models", GW_OK, "ListModels", NULL},
    {"HEAD", "/v1/models", GW_OK, "ListModels", NULL},
    {"GET", "/v1/models/gpt-4o", GW_OK, "GetModel", NULL, "id", "gpt-4o"},
    /* {id=**}: ids with slashes, percent-decoded. */
    {"GET", "/v1/models/anthropic/claude-3", GW_OK, "GetModel", NULL, "id", "anthropic/claude-3"},
    {"GET", "/v1/models/a%20b", GW_OK, "GetModel", NULL, "id", "a b"},
    {"GET", "/health", GW_OK, "GetHealth", NULL},
    {"GET", "/api/v1/monitoring/stats", GW_OK, "GetStats", NULL},
    {"GET", "/api/v1/monitoring/backends", GW_OK, "ListBackends", NULL},
    {"POST", "/auth/login", GW_OK, "Login", NULL},
    {"POST", "/auth/refresh", GW_OK, "Refresh", NULL},
    {"GET", "/v1/chat/completions", GW_ERR_STATE, NULL, NULL, NULL, NULL, "POST"},
    {"POST", "/v1/models", GW_ERR_STATE, NULL, NULL, NULL, NULL, "GET"},
    {"POST", "/v1/nothing", GW_ERR_NOTFOUND},
    {"POST", "/v1/chat/completions/extra", GW_ERR_NOTFOUND},
    {"GET", "/v1/models/", GW_ERR_NOTFOUND},
    {"GET", "/", GW_ERR_NOTFOUND},
    {"GET", "", GW_ERR_NOTFOUND},
    {"GET", "/health:verb", GW_ERR_NOTFOUND},
    /* All-literal templates compare the whole path: near misses. */
    {"POST", "/v1/chat/completions/", GW_ERR_NOTFOUND},
    {"POST", "/v1/chat//completions", GW_ERR_NOTFOUND},
    {"POST", "//v1/embeddings", GW_ERR_NOTFOUND},
    {"POST", "/v1/embedding", GW_ERR_NOTFOUND},
    {"POST", "/v1/embeddingss", GW_ERR_NOTFOUND},
    {"POST", "/v1/Embeddings", GW_ERR_NOTFOUND},
    {"POST", "v1/embeddings", GW_ERR_NOTFOUND},
    {"GET", "/health/", GW_ERR_NOTFOUND},
    {"GET", "/v1/models:list", GW_ERR_NOTFOUND},
};

static void test_match_table(void **state) {
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const route_case *c = &cases[i];
    gw_arena *a = gw_arena_new(0, 0);
    gw_route_match m;
    const char *allow = NULL;
    int rc = gw_routes_match(routes, c->method, c->path, a, &m, &allow);
    if (rc != c->rc)
      fail_msg("%s %s: rc %d, want %d", c->method, c->path, rc, c->rc);
    if (rc == GW_OK) {
      assert_non_null(m.unary ? m.unary : m.streaming);
      if (c->unary)
        assert_string_equal(m.unary->name, c->unary);
      else
        assert_null(m.unary);
      if (c->streaming)
        assert_string_equal(m.streaming->name, c->streaming);
      else
        assert_null(m.streaming);
      if (c->var_field) {
        assert_int_equal(m.n_vars, 1);
        assert_string_equal(m.vars[0].field, c->var_field);
        assert_string_equal(m.vars[0].value, c->var_value);
      } else {
        assert_int_equal(m.n_vars, 0);
      }
    }
    if (c->allow)
      assert_string_equal(allow, c->allow);
    gw_arena_free(a);
  }
}

static void test_bodies(void **state) {
  gw_arena *a = gw_arena_new(0, 0);
  gw_route_match m;
  assert_int_equal(gw_routes_match(routes, "POST", "/v1/chat/completions", a, &m, NULL), GW_OK);
  assert_string_equal(m.body, "*");
  assert_int_equal(gw_routes_match(routes, "GET", "/v1/models", a, &m, NULL), GW_OK);
  assert_string_equal(m.body, "");
  assert_string_equal(m.template, "/v1/models");
  gw_arena_free(a);
  assert_int_equal(gw_routes_count(routes), 13);
}

static int build_once(void *arg) {
  gw_routes *r = NULL;
  int rc = gw_routes_build(desc, &r);
  gw_routes_free(r);
  return rc;
}

static void test_build_failmalloc(void **state) {
  assert_true(gw_test_failmalloc_sweep(build_once, NULL) > 10);
}

static int setup(void **state) {
  gw_log_setup(GW_LOG_OFF, GW_LOG_TEXT);
  if (gw_descriptors_load(gw_descriptor_set, gw_descriptor_set_len, &desc))
    return -1;
  return gw_routes_build(desc, &routes);
}

static int teardown(void **state) {
  gw_routes_free(routes);
  gw_descriptors_free(desc);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_match_table),
      cmocka_unit_test(test_bodies),
      cmocka_unit_test(test_build_failmalloc),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
