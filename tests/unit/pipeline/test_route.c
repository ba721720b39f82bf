/* The routing tables: built from a config with several deployments and
 * fallbacks, swapped by a reload, kept alive while a call holds one, health
 * fail-malloc sweeps of building and reloading. */
#include "support.h"

#include <pthread.h>
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

/* A table's references are counted per thread (one shard each): a call may
 * drop its reference on another thread than took it, and the table lives
 * exactly until the last one is dropped. */
static void *release_on_thread(void *arg) {
  gw_route_table_release(arg);
  return NULL;
}

struct churn {
  gw_router *r;
  _Atomic int stop;
  long calls;
};

/* A worker: calls routed on whatever table is current, held a moment. */
static void *churn_thread(void *arg) {
  struct churn *c = arg;
  while (!atomic_load(&c->stop)) {
    gw_route_table *t = gw_router_acquire(c->r);
    assert_true(t->n_backends == 2); /* ASan: never a freed table */
    gw_route_table_release(t);
    c->calls++;
  }
  return NULL;
}

static void test_references_across_threads(void **state) {
  (void)state;
  gw_config c;
  assert_int_equal(load(&c), GW_OK);
  gw_router *r;
  assert_int_equal(gw_router_new(&c, NULL, &r), GW_OK);

  /* Taken here, dropped on another thread: the retired table is freed then. */
  gw_route_table *t0 = gw_router_acquire(r);
  gw_config *next = gw_calloc(1, sizeof(*next));
  assert_non_null(next);
  assert_int_equal(load(next), GW_OK);
  assert_int_equal(gw_router_reload(r, next, NULL), GW_OK);
  assert_int_equal(gw_router_collect(r), 1);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, release_on_thread, t0), 0);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(gw_router_collect(r), 0);

  /* Four workers route calls while the main thread reloads and collects. */
  struct churn ch[4];
  pthread_t w[4];
  for (int i = 0; i < 4; i++) {
    ch[i] = (struct churn){.r = r};
    assert_int_equal(pthread_create(&w[i], NULL, churn_thread, &ch[i]), 0);
  }
  for (int i = 0; i < 50; i++) {
    next = gw_calloc(1, sizeof(*next));
    assert_non_null(next);
    assert_int_equal(load(next), GW_OK);
    assert_int_equal(gw_router_reload(r, next, NULL), GW_OK);
    gw_router_collect(r);
  }
  for (int i = 0; i < 4; i++)
    atomic_store(&ch[i].stop, 1);
  long calls = 0;
  for (int i = 0; i < 4; i++) {
    assert_int_equal(pthread_join(w[i], NULL), 0);
    calls += ch[i].calls;
  }
  assert_true(calls > 0);
  /* Every call ended: every retired table goes now, and the current one is
   * held by the router alone. */
  assert_int_equal(gw_router_collect(r), 0);
  assert_int_equal(atomic_load(&r->current)->generation, 51);
  gw_router_free(r);
  gw_config_release(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reload_keeps_old_table_while_held),
      cmocka_unit_test(test_failmalloc),
      cmocka_unit_test(test_references_across_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
