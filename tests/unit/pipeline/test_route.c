/* The routing tables: built from a config with several deployments and
 * fallbacks, swapped by a reload, kept alive while a call holds one, health
 * fail-malloc sweeps of building and reloading. */
#include "support.h"

#include <stdatomic.h>
#include <string.h>

#include "config/config.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "pipeline/route.h"

static const char config_json[] =
    "{\"backends\": ["
    "  {\"name\": \"a\", \"provider\": \"openai\", \"target\": \"http://127.0.0.1:9/v1\"},"
    "  {\"name\": \"b\", \"provider\": \"openai\", \"target\": \"http://127.0.0.1:10/v1\"}],"
    " \"models\": ["
    "  {\"name\": \"chat\", \"deployments\": ["
    "     {\"backend\": \"a\", \"weight\": 3, \"max_concurrency\": 4},"
    "     {\"backend\": \"b\", \"priority\": 1}],"
    "   \"fallbacks\": [\"big\"]},"
    "  {\"name\": \"big\", \"backend\": \"b\", \"upstream_model\": \"gpt-big\"},"
    "  {\"name\": \"openai/*\", \"backend\": \"a\"}],"
    " \"routing\": {\"balance\": \"p2c_ewma\", \"eject_base_ms\": 100000, \"eject_max_ms\": "
    "100000}}";

static const char *no_env(void *arg, const char *name) {
  (void)arg;
  (void)name;
  return NULL;
}

static int load(gw_config *c) {
  return gw_config_load_buffer(c, "test.json", config_json, sizeof(config_json) - 1, no_env, NULL,
                               NULL);
}

static int sweep_build_and_reload(void *arg) {
  (void)arg;
  gw_config c;
  int rc = load(&c);
  if (rc != GW_OK)
    return rc;
  gw_router *r;
  if ((rc = gw_router_new(&c, NULL, &r)) != GW_OK) {
    gw_config_release(&c);
    return rc;
  }
  gw_config *next = gw_calloc(1, sizeof(*next));
  if (!next) {
    rc = GW_ERR_NOMEM;
    goto out;
  }
  if ((rc = load(next)) != GW_OK) {
    gw_free(next);
    goto out;
  }
  gw_route_table *held = gw_router_acquire(r);
  rc = gw_router_reload(r, next, NULL); /* takes |next| */
  gw_route_table_release(held);
  gw_router_collect(r);
out:
  gw_router_free(r);
  gw_config_release(&c);
  return rc;
}

static void test_failmalloc(void **state) {
  (void)state;
  assert_true(gw_test_failmalloc_sweep(sweep_build_and_reload, NULL) > 20);
}

static void test_reload_keeps_old_table_while_held(void **state) {
  (void)state;
  gw_config c;
  assert_int_equal(load(&c), GW_OK);
  gw_router *r;
  assert_int_equal(gw_router_new(&c, NULL, &r), GW_OK);
  gw_route_table *t0 = gw_router_acquire(r);
  assert_int_equal(t0->n_backends, 2);
  assert_string_equal(gw_route_table_backend_state(t0, 0), "unknown");

  /* Calls come and go on the current table. */
  for (int i = 0; i < 3; i++) {
    gw_route_table *t = gw_router_acquire(r);
    assert_ptr_equal(t, t0);
    gw_route_table_release(t);
  }

  gw_config *next = gw_calloc(1, sizeof(*next));
  assert_non_null(next);
  assert_int_equal(load(next), GW_OK);
  assert_int_equal(gw_router_reload(r, next, NULL), GW_OK);
  gw_route_table *t1 = gw_router_acquire(r);
  assert_ptr_not_equal(t0, t1);
  assert_int_equal(t1->generation, 1);
  /* t0 is retired but held: not freed. */
  assert_int_equal(gw_router_collect(r), 1);
  assert_int_equal(t0->n_backends, 2);
  gw_route_table_release(t0);
  assert_int_equal(gw_router_collect(r), 0);
  gw_route_table_release(t1);

  /* An invalid reload leaves the current table as it was. */
  gw_config *bad = gw_calloc(1, sizeof(*bad));
  assert_non_null(bad);
  gw_buf err;
  gw_buf_init(&err, 512);
  static const char broken[] = "{\"backends\": [], \"models\": []}";
  assert_int_equal(
      gw_config_load_buffer(bad, "broken.json", broken, sizeof(broken) - 1, no_env, NULL, &err),
      GW_ERR_INVALID);
  assert_non_null(strstr(err.data, "broken.json: backends"));
  gw_free(bad);
  assert_ptr_equal(atomic_load(&r->current), t1);
  gw_buf_release(&err);
  gw_router_free(r);
  gw_config_release(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reload_keeps_old_table_while_held),
      cmocka_unit_test(test_failmalloc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
