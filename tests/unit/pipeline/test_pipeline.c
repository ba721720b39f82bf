/* The call pipeline without a network: stages run in order, watchers see
 * every message in reverse order, a stage can end a call early, the route
 * stage resolves models, and every path releases the call's memory. */
#include "support.h"

#include <pthread.h>

#include <stdio.h>
#include <string.h>

#include "aigateway/v1/inference.pb-c.h"
#include "core/alloc.h"
#include "core/log.h"
#include "pipeline/call.h"
#include "pipeline/pipeline.h"
#include "pipeline/route.h"

static gw_descriptors *desc;

/* ---- a recording sink --------------------------------------------------------- */

typedef struct rec {
  char log[512];
  int messages;
  int finished;
  gw_status_code code;
  char message[256];
  bool full; /* ready() answer */
} rec;

static void logf_(rec *r, const char *s) {
  strncat(r->log, s, sizeof(r->log) - strlen(r->log) - 1);
}

static int sink_message(void *ctx, gw_call *call, const ProtobufCMessage *msg) {
  rec *r = ctx;
  r->messages++;
  logf_(r, "sink.msg ");
  return GW_OK;
}

static void sink_finish(void *ctx, gw_call *call, gw_status_code code, const char *message) {
  rec *r = ctx;
  r->finished++;
  r->code = code;
  snprintf(r->message, sizeof r->message, "%s", message);
  logf_(r, "sink.finish ");
}

static bool sink_ready(void *ctx) { return !((rec *)ctx)->full; }

static const gw_sink_ops sink = {sink_message, sink_finish, sink_ready};

/* ---- stages and a fake provider ------------------------------------------------- */

static void tag_run(const gw_stage *st, gw_call *call) {
  rec *r = call->sink_ctx;
  logf_(r, st->name);
  logf_(r, " ");
  gw_call_next(call);
}

static void tag_msg(const gw_stage *st, gw_call *call, const ProtobufCMessage *m) {
  rec *r = call->sink_ctx;
  logf_(r, st->name);
  logf_(r, ".msg ");
}

static void tag_fin(const gw_stage *st, gw_call *call, gw_status_code code) {
  rec *r = call->sink_ctx;
  logf_(r, st->name);
  logf_(r, ".fin ");
}

static void deny_run(const gw_stage *st, gw_call *call) {
  gw_call_finish(call, GW_STATUS_PERMISSION_DENIED, "denied by test");
}

/* Emits two chunks then finishes OK; resumes when the sink drained. */
static int chunks_left;
static int fake_start(gw_call *call) {
  Aigateway__V1__ChatCompletionChunk c;
  aigateway__v1__chat_completion_chunk__init(&c);
  c.id = "x";
  gw_call_ref(call);
  call->provider_state = &chunks_left;
  while (chunks_left > 0 && gw_call_sink_ready(call)) {
    chunks_left--;
    gw_call_emit(call, &c.base);
  }
  if (chunks_left == 0) {
    call->provider_state = NULL;
    gw_call_finish(call, GW_STATUS_OK, NULL);
    gw_call_unref(call);
  }
  return GW_OK;
}

static int cancelled;
static void fake_cancel(gw_call *call) {
  cancelled++;
  call->provider_state = NULL;
  gw_call_unref(call);
}

static void fake_resume(gw_call *call) {
  Aigateway__V1__ChatCompletionChunk c;
  aigateway__v1__chat_completion_chunk__init(&c);
  while (chunks_left > 0 && gw_call_sink_ready(call)) {
    chunks_left--;
    gw_call_emit(call, &c.base);
  }
  if (chunks_left == 0) {
    call->provider_state = NULL;
    gw_call_finish(call, GW_STATUS_OK, NULL);
    gw_call_unref(call);
  }
}

static const gw_provider_ops fake = {"fake", fake_start, fake_cancel, fake_resume};

static void provider_run(const gw_stage *st, gw_call *call) {
  call->provider = &fake;
  fake.start(call);
}

static gw_call *new_call(gw_pipeline *p, const char *path, rec *r) {
  gw_arena *a = gw_arena_new(0, 0);
  if (!a)
    return NULL;
  gw_call *call = gw_call_new(a, NULL, p, gw_descriptors_find_method(desc, path));
  if (!call)
    return NULL;
  call->sink = &sink;
  call->sink_ctx = r;
  return call;
}

static void build(gw_pipeline *p, bool deny) {
  gw_pipeline_init(p);
  gw_stage a = {.name = "a", .run = tag_run, .on_message = tag_msg, .on_finish = tag_fin};
  gw_stage b = {.name = "b", .run = tag_run, .on_message = tag_msg, .on_finish = tag_fin};
  gw_stage d = {.name = "deny", .run = deny_run};
  gw_stage prov = {.name = "provider", .run = provider_run};
  assert_int_equal(gw_pipeline_add(p, &a), GW_OK);
  assert_int_equal(gw_pipeline_add(p, &b), GW_OK);
  if (deny)
    assert_int_equal(gw_pipeline_add(p, &d), GW_OK);
  assert_int_equal(gw_pipeline_add(p, &prov), GW_OK);
}

static void test_stages_run_in_order_and_watch_in_reverse(void **state) {
  gw_pipeline p;
  build(&p, false);
  rec r = {0};
  chunks_left = 2;
  long live = gw_alloc_live();
  gw_call *call = new_call(&p, "/aigateway.v1.Inference/StreamChatCompletion", &r);
  gw_call_start(call);
  assert_string_equal(r.log,
                      "a b b.msg a.msg sink.msg b.msg a.msg sink.msg b.fin a.fin sink.finish ");
  assert_int_equal(r.finished, 1);
  assert_int_equal(r.code, GW_STATUS_OK);
  gw_call_unref(call); /* the front door's reference */
  assert_int_equal(gw_alloc_live(), live);
  gw_pipeline_release(&p);
}

static void test_stage_ends_call_early(void **state) {
  gw_pipeline p;
  build(&p, true);
  rec r = {0};
  chunks_left = 2;
  gw_call *call = new_call(&p, "/aigateway.v1.Inference/CreateChatCompletion", &r);
  gw_call_start(call);
  assert_int_equal(r.messages, 0);
  assert_int_equal(r.code, GW_STATUS_PERMISSION_DENIED);
  assert_string_equal(r.message, "denied by test");
  assert_string_equal(r.log, "a b b.fin a.fin sink.finish ");
  /* Finishing twice is ignored. */
  gw_call_finish(call, GW_STATUS_INTERNAL, "again");
  assert_int_equal(r.finished, 1);
  gw_call_unref(call);
  gw_pipeline_release(&p);
}

static void test_backpressure_and_cancel(void **state) {
  gw_pipeline p;
  build(&p, false);
  rec r = {0};
  chunks_left = 5;
  cancelled = 0;
  r.full = true; /* the sink holds its low-water mark: nothing is pulled */
  gw_call *call = new_call(&p, "/aigateway.v1.Inference/StreamChatCompletion", &r);
  gw_call_start(call);
  assert_int_equal(r.messages, 0);
  r.full = false;
  gw_call_sink_drained(call);
  assert_int_equal(r.messages, 5);
  assert_int_equal(r.code, GW_STATUS_OK);
  gw_call_unref(call);

  /* A client that leaves mid-stream cancels the provider once. */
  memset(&r, 0, sizeof r);
  chunks_left = 5;
  r.full = true;
  call = new_call(&p, "/aigateway.v1.Inference/StreamChatCompletion", &r);
  gw_call_start(call);
  gw_call_cancel(call);
  assert_int_equal(cancelled, 1);
  assert_int_equal(r.code, GW_STATUS_CANCELLED);
  gw_call_sink_drained(call); /* no effect after the end */
  assert_int_equal(r.messages, 0);
  gw_call_unref(call);
  gw_pipeline_release(&p);
}

/* ---- the route stage --------------------------------------------------------------- */

static gw_deployment_conf dep_a = {.backend = "remote", .upstream_model = "up-a", .weight = 1};
static gw_model_conf models[] = {
    {.name = "m-a", .deployments = &dep_a, .n_deployments = 1},
    {.name = "fam/*", .deployments = &dep_a, .n_deployments = 1},
};
static gw_backend_conf backends[] = {
    {.name = "remote", .provider = "openai", .target = "https://example.invalid/v1"},
};

static gw_config make_config(void) {
  gw_config c;
  memset(&c, 0, sizeof c);
  c.backends = backends;
  c.n_backends = 1;
  c.models = models;
  c.n_models = 2;
  return c;
}

typedef struct route_case {
  const char *path, *model;
  gw_status_code code;
  const char *message_part;
  int messages;
} route_case;

static const route_case route_cases[] = {
    {"/aigateway.v1.Inference/CreateChatCompletion", "", GW_STATUS_INVALID_ARGUMENT, "model", 0},
    {"/aigateway.v1.Inference/CreateChatCompletion", "nope", GW_STATUS_NOT_FOUND, "'nope'", 0},
    /* Routed to the openai provider, which cannot start without a worker's
     * curl loop (there is none here). */
    {"/aigateway.v1.Inference/CreateChatCompletion", "m-a", GW_STATUS_UNAVAILABLE, "openai", 0},
    {"/aigateway.v1.Inference/StreamChatCompletion", "fam/x", GW_STATUS_UNAVAILABLE, "openai", 0},
    {"/aigateway.v1.Inference/ListModels", NULL, GW_STATUS_OK, "", 1},
    {"/aigateway.v1.Admin/GetStats", NULL, GW_STATUS_OK, "", 1},
    {"/aigateway.v1.Admin/GetHealth", NULL, GW_STATUS_OK, "", 1},
    {"/aigateway.v1.Auth/Login", NULL, GW_STATUS_UNIMPLEMENTED, "Login", 0},
};

static int run_route_case(gw_pipeline *p, const route_case *rc, rec *r) {
  memset(r, 0, sizeof *r);
  gw_call *call = new_call(p, rc->path, r);
  if (!call)
    return GW_ERR_NOMEM;
  const gw_method_info *m = call->method;
  call->request = gw_arena_calloc(call->arena, m->input->sizeof_message);
  if (!call->request) {
    gw_call_unref(call);
    return GW_ERR_NOMEM;
  }
  protobuf_c_message_init(m->input, call->request);
  if (rc->model) {
    Aigateway__V1__ChatCompletionRequest *req = (void *)call->request;
    req->model = (char *)rc->model;
  }
  gw_call_start(call);
  gw_call_unref(call);
  return r->finished == 1 ? GW_OK : GW_ERR_STATE;
}

static void test_route_stage(void **state) {
  gw_config c = make_config();
  gw_router *router;
  gw_buf err;
  gw_buf_init(&err, 256);
  assert_int_equal(gw_router_new(&c, &err, &router), GW_OK);
  gw_pipeline p;
  gw_pipeline_init(&p);
  p.router = router;
  gw_stage route = gw_router_stage(router);
  assert_int_equal(gw_pipeline_add(&p, &gw_stage_stats), GW_OK);
  assert_int_equal(gw_pipeline_add(&p, &gw_stage_auth), GW_OK);
  assert_int_equal(gw_pipeline_add(&p, &gw_stage_limit), GW_OK);
  assert_int_equal(gw_pipeline_add(&p, &gw_stage_cache), GW_OK);
  assert_int_equal(gw_pipeline_add(&p, &route), GW_OK);
  for (size_t i = 0; i < sizeof(route_cases) / sizeof(route_cases[0]); i++) {
    rec r;
    assert_int_equal(run_route_case(&p, &route_cases[i], &r), GW_OK);
    if (r.code != route_cases[i].code || !strstr(r.message, route_cases[i].message_part))
      fail_msg("case %zu (%s %s): got %s \"%s\"", i, route_cases[i].path,
               route_cases[i].model ? route_cases[i].model : "", gw_status_code_name(r.code),
               r.message);
    assert_int_equal(r.messages, route_cases[i].messages);
  }
  /* The stats stage counted every call, the failures and nothing in flight. */
  gw_stats_sum sum;
  gw_pipeline_stats(&p, &sum);
  assert_int_equal(sum.requests_total, 8);
  assert_int_equal(sum.requests_failed, 5);
  assert_int_equal(sum.in_flight, 0);
  assert_int_equal(sum.streams_total, 1);
  gw_pipeline_release(&p);
  gw_router_free(router);
  gw_buf_release(&err);
}

typedef struct sweep_arg {
  gw_pipeline *p;
} sweep_arg;

static int route_workload(void *arg) {
  sweep_arg *s = arg;
  rec r;
  for (size_t i = 0; i < sizeof(route_cases) / sizeof(route_cases[0]); i++) {
    int rc = run_route_case(s->p, &route_cases[i], &r);
    if (rc != GW_OK)
      return rc;
    if (r.code == GW_STATUS_RESOURCE_EXHAUSTED)
      return GW_ERR_NOMEM;
  }
  return GW_OK;
}

static void test_route_failmalloc(void **state) {
  gw_config c = make_config();
  gw_router *router;
  gw_buf err;
  gw_buf_init(&err, 256);
  assert_int_equal(gw_router_new(&c, &err, &router), GW_OK);
  gw_pipeline p;
  gw_pipeline_init(&p);
  p.router = router;
  gw_stage route = gw_router_stage(router);
  assert_int_equal(gw_pipeline_add(&p, &gw_stage_stats), GW_OK);
  assert_int_equal(gw_pipeline_add(&p, &route), GW_OK);
  sweep_arg s = {&p};
  assert_true(gw_test_failmalloc_sweep(route_workload, &s) > 8);
  gw_pipeline_release(&p);
  gw_router_free(router);
  gw_buf_release(&err);
}

static int setup(void **state) {
  gw_log_setup(GW_LOG_OFF, GW_LOG_TEXT);
  return gw_descriptors_load(gw_descriptor_set, gw_descriptor_set_len, &desc);
}
static int teardown(void **state) {
  gw_descriptors_free(desc);
  return 0;
}

/* The stats stage's counters are kept per thread: calls on four threads at
 * once are all counted, and gw_pipeline_stats adds them up. */
struct stats_worker {
  gw_pipeline *p;
  int calls;
};

static void *stats_thread(void *arg) {
  struct stats_worker *w = arg;
  for (int i = 0; i < w->calls; i++) {
    rec r = {0};
    gw_call *call = new_call(w->p, "/aigateway.v1.Inference/CreateChatCompletion", &r);
    assert_non_null(call);
    gw_call_start(call); /* denied: a failure */
    assert_int_equal(r.finished, 1);
    gw_call_unref(call);
  }
  return NULL;
}

static void test_stats_from_many_threads(void **state) {
  (void)state;
  gw_pipeline p;
  gw_pipeline_init(&p);
  gw_stage d = {.name = "deny", .run = deny_run};
  assert_int_equal(gw_pipeline_add(&p, &gw_stage_stats), GW_OK);
  assert_int_equal(gw_pipeline_add(&p, &d), GW_OK);
  struct stats_worker w[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (struct stats_worker){.p = &p, .calls = 1000 + i};
    assert_int_equal(pthread_create(&th[i], NULL, stats_thread, &w[i]), 0);
  }
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_join(th[i], NULL), 0);
  gw_stats_sum sum;
  gw_pipeline_stats(&p, &sum);
  assert_int_equal(sum.requests_total, 4006);
  assert_int_equal(sum.requests_failed, 4006);
  assert_int_equal(sum.in_flight, 0);
  assert_int_equal(sum.streams_total, 0);
  gw_pipeline_release(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stages_run_in_order_and_watch_in_reverse),
      cmocka_unit_test(test_stage_ends_call_early),
      cmocka_unit_test(test_backpressure_and_cancel),
      cmocka_unit_test(test_route_stage),
      cmocka_unit_test(test_route_failmalloc),
      cmocka_unit_test(test_stats_from_many_threads),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
