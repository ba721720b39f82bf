/* The OpenAI-compatible provider's pieces without a network: the SSE reader
 * (any chunking, CRLF, comments, multi-line data, [DONE], the cap, a
 * fail-malloc sweep), the HTTP → gRPC status mapping, base64 float vectors,
 * and the model catalog as the route stage and ListModels use it. */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aigateway/v1/inference.pb-c.h"
#include "core/alloc.h"
#include "core/log.h"
#include "pipeline/call.h"
#include "pipeline/catalog.h"
#include "pipeline/pipeline.h"
#include "pipeline/provider_openai.h"
#include "pipeline/route.h"

/* ---- SSE reader ------------------------------------------------------------ */

/* Feeds |in| in pieces of |step| bytes (0: all at once) and writes every
 * event as "[event]data|" ("DONE|" for [DONE]) into |out|. Returns the
 * reader's first error, or GW_OK. */
static int sse_run(const char *in, size_t len, size_t step, size_t cap, char *out, size_t n) {
  gw_sse_reader r;
  gw_sse_reader_init(&r, cap);
  out[0] = '\0';
  int rc = GW_OK;
  size_t off = 0;
  while (off < len && rc == GW_OK) {
    size_t k = step && step < len - off ? step : len - off;
    rc = gw_sse_reader_feed(&r, in + off, k);
    off += k;
    gw_sse_event ev;
    int got;
    while (rc == GW_OK && (got = gw_sse_reader_next(&r, &ev)) != 0) {
      if (got < 0) {
        rc = got;
        break;
      }
      char one[256];
      if (ev.done)
        snprintf(one, sizeof one, "DONE|");
      else
        snprintf(one, sizeof one, "[%s]%.*s|", ev.event, (int)ev.len, ev.data);
      strncat(out, one, n - strlen(out) - 1);
    }
  }
  gw_sse_reader_release(&r);
  return rc;
}

typedef struct sse_case {
  const char *in;
  const char *want; /* events as sse_run writes them */
  int rc;
  size_t cap;
} sse_case;

static const sse_case sse_cases[] = {
    {"data: {\"a\":1}\n\ndata: [DONE]\n\n", "[]{\"a\":1}|DONE|", GW_OK, 0},
    /* CRLF and lone CR line ends. */
    {"data: x\r\n\r\ndata: y\r\rdata: z\n\n", "[]x|[]y|[]z|", GW_OK, 0},
    /* Comments, id, retry and unknown fields are ignored. */
    {": keep-alive\n\nid: 7\nretry: 100\nfoo: bar\ndata: x\n: mid\n\n", "[]x|", GW_OK, 0},
    /* Several data lines join with LF; no space after the colon; empty data. */
    {"data: one\ndata:two\ndata\n\n", "[]one\ntwo\n|", GW_OK, 0},
    /* Named events. */
    {"event: error\ndata: {\"error\":{}}\n\n", "[error]{\"error\":{}}|", GW_OK, 0},
    /* Only one space after the colon is dropped. */
    {"data:  two spaces\n\n", "[] two spaces|", GW_OK, 0},
    /* Blank lines without data dispatch nothing; an unterminated event is
     * held back. */
    {"\n\n\ndata: a\n\n\n\ndata: held", "[]a|", GW_OK, 0},
    /* The cap: an event's data, or one line, longer than it. */
    {"data: 0123456789\ndata: 0123456789\n\n", "", GW_ERR_TOOBIG, 16},
    {"data: 0123456789abcdefghijklmnopqrstuvwxyz", "", GW_ERR_TOOBIG, 16},
    {"data: 0123456789\n\n", "[]0123456789|", GW_OK, 16},
    /* Line ends at every offset of an 8-byte word (the scan reads eight at a
     * time), with each kind of line end, and bytes that are near LF and CR. */
    {"data: abcdefghijklmnopq\r\ndata: 0123456\n\ndata: 01234567\r\rdata: 012345678\n"
     "data: \x0b\x0c\x0e\x09\x8a\x8d\n\n",
     "[]abcdefghijklmnopq\n0123456|[]01234567|[]012345678\n\x0b\x0c\x0e\x09\x8a\x8d|", GW_OK, 0},
};

static void test_sse_reader(void **state) {
  for (size_t i = 0; i < sizeof(sse_cases) / sizeof(sse_cases[0]); i++) {
    const sse_case *c = &sse_cases[i];
    size_t len = strlen(c->in);
    /* Every chunking gives the same events: whole, byte by byte, and
     * pieces of every size in between. */
    for (size_t step = 0; step <= len; step++) {
      char out[1024];
      int rc = sse_run(c->in, len, step, c->cap ? c->cap : 1024, out, sizeof out);
      if (rc != c->rc || (rc == GW_OK && strcmp(out, c->want) != 0))
        fail_msg("case %zu step %zu: rc %d want %d, events \"%s\" want \"%s\"", i, step, rc, c->rc,
                 out, c->want);
    }
  }
}

/* gw_sse_names_error answers as memmem(p, n, "\"error\"", 7): the name at
 * each offset of events of each length up to 80 (both sides of the 16-wide
 * steps and the tail), in heap blocks of exactly that size, and near misses
 * (an escaped quote, "errors", a quote short) that are no match. */
static void test_sse_names_error(void **state) {
  (void)state;
  static const char *const names[] = {"\"error\"", "\\\"error\\\"", "\"errors\"",  "\"error",
                                      "error\"",   "\"Error\"",     "\"e\"error\""};
  for (size_t len = 0; len <= 80; len++)
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
      size_t nl = strlen(names[k]);
      for (size_t at = 0; at + nl <= len || (at == 0 && len < nl); at++) {
        char *p = malloc(len ? len : 1);
        memset(p, 'x', len);
        if (at + nl <= len)
          memcpy(p + at, names[k], nl);
        bool want = memmem(p, len, "\"error\"", 7) != NULL;
        if (gw_sse_names_error(p, len) != want)
          fail_msg("len %zu, %s at %zu: want %d", len, names[k], at, want);
        free(p);
        if (len < nl)
          break;
      }
    }
}

/* Line ends are found 16 bytes at a time: data lines of every length to 70
 * with each line end (LF, CRLF, CR), two events in one feed, come out whole. */
static void test_sse_reader_line_lengths(void **state) {
  (void)state;
  static const char *const ends[] = {"\n", "\r\n", "\r"};
  char line[80], in[256];
  for (size_t len = 0; len <= 70; len++)
    for (size_t e = 0; e < 3; e++) {
      for (size_t i = 0; i < len; i++)
        line[i] = (char)('a' + i % 26);
      line[len] = '\0';
      int n = snprintf(in, sizeof in, "data: %s%s%sdata: z%s%s", line, ends[e], ends[e], ends[e],
                       ends[e]);
      gw_sse_reader r;
      gw_sse_event ev;
      gw_sse_reader_init(&r, 1024);
      assert_int_equal(gw_sse_reader_feed(&r, in, (size_t)n), GW_OK);
      assert_int_equal(gw_sse_reader_next(&r, &ev), 1);
      assert_int_equal(ev.len, len);
      assert_string_equal(ev.data, line);
      assert_int_equal(gw_sse_reader_next(&r, &ev), 1); /* a last CR ends the line too */
      assert_string_equal(ev.data, "z");
      gw_sse_reader_release(&r);
    }
}

static void test_sse_reader_crlf_split_at_cr(void **state) {
  /* A CR ends a chunk; its LF comes first in the next one. */
  gw_sse_reader r;
  gw_sse_reader_init(&r, 1024);
  gw_sse_event ev;
  assert_int_equal(gw_sse_reader_feed(&r, "data: a\r", 8), GW_OK);
  assert_int_equal(gw_sse_reader_next(&r, &ev), 0);
  assert_int_equal(gw_sse_reader_feed(&r, "\n\r", 2), GW_OK);
  assert_int_equal(gw_sse_reader_next(&r, &ev), 1);
  assert_string_equal(ev.data, "a");
  assert_int_equal(gw_sse_reader_feed(&r, "\ndata: b\n\n", 10), GW_OK);
  assert_int_equal(gw_sse_reader_next(&r, &ev), 1);
  assert_string_equal(ev.data, "b"); /* the LF after CR made no extra event */
  assert_int_equal(gw_sse_reader_next(&r, &ev), 0);
  gw_sse_reader_release(&r);
}

static void test_sse_reader_pull_one_at_a_time(void **state) {
  /* Events stay in the reader until asked for (back-pressure), and the
   * consumed input is dropped on the next feed. */
  gw_sse_reader r;
  gw_sse_reader_init(&r, 64);
  gw_sse_event ev;
  for (int round = 0; round < 100; round++) {
    assert_int_equal(gw_sse_reader_feed(&r, "data: 1\n\ndata: 2\n\n", 18), GW_OK);
    assert_int_equal(gw_sse_reader_next(&r, &ev), 1);
    assert_string_equal(ev.data, "1");
    assert_int_equal(gw_sse_reader_next(&r, &ev), 1);
    assert_string_equal(ev.data, "2");
    assert_int_equal(gw_sse_reader_next(&r, &ev), 0);
  }
  assert_true(r.in.alloc < 1024); /* bounded, not growing with the stream */
  gw_sse_reader_release(&r);
}

static int sse_workload(void *arg) {
  static const char in[] = ": c\r\ndata: {\"x\":[1,2,3]}\r\ndata: more\r\n\r\n"
                           "event: e\ndata: second\n\ndata: [DONE]\n\n";
  char out[512];
  int rc = sse_run(in, sizeof(in) - 1, 7, 256, out, sizeof out);
  if (rc != GW_OK)
    return rc;
  return strcmp(out, "[]{\"x\":[1,2,3]}\nmore|[e]second|DONE|") == 0 ? GW_OK : GW_ERR_STATE;
}

static void test_sse_reader_failmalloc(void **state) {
  assert_true(gw_test_failmalloc_sweep(sse_workload, NULL) > 0);
}

/* ---- status mapping ---------------------------------------------------------- */

static const struct {
  long http;
  gw_status_code code;
} status_cases[] = {
    {200, GW_STATUS_OK},
    {201, GW_STATUS_OK},
    {400, GW_STATUS_INVALID_ARGUMENT},
    {401, GW_STATUS_UNAUTHENTICATED},
    {403, GW_STATUS_PERMISSION_DENIED},
    {404, GW_STATUS_NOT_FOUND},
    {408, GW_STATUS_DEADLINE_EXCEEDED},
    {409, GW_STATUS_ABORTED},
    {413, GW_STATUS_INVALID_ARGUMENT},
    {422, GW_STATUS_INVALID_ARGUMENT},
    {429, GW_STATUS_RESOURCE_EXHAUSTED},
    {418, GW_STATUS_FAILED_PRECONDITION},
    {500, GW_STATUS_INTERNAL},
    {501, GW_STATUS_UNAVAILABLE},
    {502, GW_STATUS_UNAVAILABLE},
    {503, GW_STATUS_UNAVAILABLE},
    {504, GW_STATUS_DEADLINE_EXCEEDED},
    {599, GW_STATUS_UNAVAILABLE},
    {302, GW_STATUS_UNKNOWN},
    {0, GW_STATUS_UNKNOWN},
};

static void test_status_from_http(void **state) {
  for (size_t i = 0; i < sizeof(status_cases) / sizeof(status_cases[0]); i++)
    if (gw_openai_status_from_http(status_cases[i].http) != status_cases[i].code)
      fail_msg("HTTP %ld: got %s want %s", status_cases[i].http,
               gw_status_code_name(gw_openai_status_from_http(status_cases[i].http)),
               gw_status_code_name(status_cases[i].code));
}

/* ---- backends: the key never leaves the auth header ----------------------------- */

static void test_backend_new(void **state) {
  gw_backend_conf bc = {.name = "b",
                        .provider = "openai",
                        .target = "http://h:1/v1//",
                        .api_key = "sk-1",
                        .timeout_ms = 5};
  gw_openai_backend *b = gw_openai_backend_new(&bc);
  assert_non_null(b);
  assert_string_equal(b->base, "http://h:1/v1");
  assert_string_equal(b->auth_header, "Authorization: Bearer sk-1");
  gw_openai_backend_free(b);
  bc.api_key = NULL;
  b = gw_openai_backend_new(&bc);
  assert_null(b->auth_header);
  gw_openai_backend_free(b);
}

/* ---- the catalog and the route stage --------------------------------------------- */

static gw_descriptors *desc;

typedef struct rec {
  int messages, finished;
  gw_status_code code;
  char message[256];
  char ids[512]; /* ListModels / GetModel answer: "id:owner " ... */
} rec;

static int sink_message(void *ctx, gw_call *call, const ProtobufCMessage *msg) {
  rec *r = ctx;
  r->messages++;
  if (msg->descriptor == &aigateway__v1__list_models_response__descriptor) {
    const Aigateway__V1__ListModelsResponse *l = (const void *)msg;
    for (size_t i = 0; i < l->n_data; i++) {
      char one[128];
      snprintf(one, sizeof one, "%s:%s ", l->data[i]->id, l->data[i]->owned_by);
      strncat(r->ids, one, sizeof(r->ids) - strlen(r->ids) - 1);
    }
  } else if (msg->descriptor == &aigateway__v1__model__descriptor) {
    const Aigateway__V1__Model *m = (const void *)msg;
    snprintf(r->ids, sizeof r->ids, "%s:%s ", m->id, m->owned_by);
  }
  return GW_OK;
}

static void sink_finish(void *ctx, gw_call *call, gw_status_code code, const char *message) {
  rec *r = ctx;
  r->finished++;
  r->code = code;
  snprintf(r->message, sizeof r->message, "%s", message);
}

static bool sink_ready(void *ctx) { return true; }

static const gw_sink_ops sink = {sink_message, sink_finish, sink_ready};

static gw_deployment_conf dep_any = {.backend = "up", .weight = 1};
static gw_deployment_conf dep_fixed = {.backend = "up", .upstream_model = "m-1", .weight = 1};
static gw_model_conf models[] = {
    {.name = "alias", .deployments = &dep_fixed, .n_deployments = 1},
    {.name = "fam/*", .deployments = &dep_any, .n_deployments = 1},
    {.name = "*", .deployments = &dep_any, .n_deployments = 1},
};
static gw_backend_conf backends[] = {
    {.name = "up", .provider = "openai", .target = "http://127.0.0.1:9/v1", .api_key = "k"},
};

static const char listing[] =
    "{\"object\":\"list\",\"data\":["
    "{\"id\":\"m-1\",\"object\":\"model\",\"created\":1,\"owned_by\":\"org-a\"},"
    "{\"id\":\"fam/x\",\"object\":\"model\",\"created\":2,\"owned_by\":\"org-b\"},"
    "{\"id\":\"m-1\",\"object\":\"model\"},"
    "{\"object\":\"model\"},"
    "{\"id\":\"alias\",\"object\":\"model\"}]}";

static void run(gw_pipeline *p, const char *path, const char *model, rec *r) {
  memset(r, 0, sizeof *r);
  gw_arena *a = gw_arena_new(0, 0);
  assert_non_null(a);
  gw_call *call = gw_call_new(a, NULL, p, gw_descriptors_find_method(desc, path));
  assert_non_null(call);
  call->sink = &sink;
  call->sink_ctx = r;
  const gw_method_info *m = call->method;
  call->request = gw_arena_calloc(a, m->input->sizeof_message);
  protobuf_c_message_init(m->input, call->request);
  if (model && strstr(path, "GetModel"))
    ((Aigateway__V1__GetModelRequest *)call->request)->id = (char *)model;
  else if (model)
    ((Aigateway__V1__ChatCompletionRequest *)call->request)->model = (char *)model;
  gw_call_start(call);
  gw_call_unref(call);
  assert_int_equal(r->finished, 1);
}

static void test_catalog_routes_and_lists(void **state) {
  gw_config c;
  memset(&c, 0, sizeof c);
  c.backends = backends;
  c.n_backends = 1;
  c.models = models;
  c.n_models = 3;
  gw_router *router;
  gw_buf err;
  gw_buf_init(&err, 256);
  assert_int_equal(gw_router_new(&c, &err, &router), GW_OK);
  gw_pipeline p;
  gw_pipeline_init(&p);
  p.router = router;
  gw_stage route = gw_router_stage(router);
  assert_int_equal(gw_pipeline_add(&p, &route), GW_OK);
  const char *chat = "/aigateway.v1.Inference/CreateChatCompletion";
  const char *list = "/aigateway.v1.Inference/ListModels";
  const char *get = "/aigateway.v1.Inference/GetModel";
  rec r;

  /* Not loaded yet: "*" routes anything to the provider (which cannot
   * start here: no worker curl loop), and lists only exact names. */
  assert_null(gw_catalog_get(atomic_load(&router->current)->backends[0].catalog));
  run(&p, chat, "whatever", &r);
  assert_int_equal(r.code, GW_STATUS_UNAVAILABLE);
  run(&p, list, NULL, &r);
  assert_string_equal(r.ids, "alias:ai-gateway ");
  assert_string_equal(gw_route_table_backend_state(atomic_load(&router->current), 0), "unknown");

  /* Loaded: the catalog decides what a wildcard reaches. */
  assert_int_equal(
      gw_catalog_load_json(atomic_load(&router->current)->backends[0].catalog, "[]", 2),
      GW_ERR_INVALID);
  assert_null(gw_catalog_get(atomic_load(&router->current)->backends[0].catalog));
  assert_int_equal(gw_catalog_load_json(atomic_load(&router->current)->backends[0].catalog, listing,
                                        sizeof(listing) - 1),
                   GW_OK);
  const gw_catalog_snapshot *s = gw_catalog_get(atomic_load(&router->current)->backends[0].catalog);
  assert_int_equal(s->n, 3); /* duplicates and id-less entries dropped */
  assert_string_equal(gw_catalog_find(s, "m-1")->owned_by, "org-a");
  assert_null(gw_catalog_find(s, "nope"));
  assert_string_equal(gw_route_table_backend_state(atomic_load(&router->current), 0),
                      "unknown"); /* nothing fetched */

  run(&p, chat, "whatever", &r);
  assert_int_equal(r.code, GW_STATUS_NOT_FOUND);
  assert_string_equal(r.message, "The model 'whatever' does not exist");
  run(&p, chat, "fam/y", &r);
  assert_int_equal(r.code, GW_STATUS_NOT_FOUND);
  run(&p, chat, "m-1", &r);
  assert_int_equal(r.code, GW_STATUS_UNAVAILABLE); /* listed: routed on */
  run(&p, chat, "fam/x", &r);
  assert_int_equal(r.code, GW_STATUS_UNAVAILABLE);
  run(&p, chat, "alias", &r); /* exact entries are not checked */
  assert_int_equal(r.code, GW_STATUS_UNAVAILABLE);

  /* Exact names first, then what each wildcard reaches, each id once,
   * with the upstream's owner. */
  run(&p, list, NULL, &r);
  assert_int_equal(r.code, GW_STATUS_OK);
  assert_string_equal(r.ids, "alias:ai-gateway fam/x:org-b m-1:org-a ");
  run(&p, get, "fam/x", &r);
  assert_int_equal(r.code, GW_STATUS_OK);
  assert_string_equal(r.ids, "fam/x:org-b ");
  run(&p, get, "fam/zzz", &r);
  assert_int_equal(r.code, GW_STATUS_NOT_FOUND);

  /* A refresh swaps a new snapshot in; the old one stays readable. */
  static const char fresh[] = "{\"data\":[{\"id\":\"new\"}]}";
  assert_int_equal(gw_catalog_load_json(atomic_load(&router->current)->backends[0].catalog, fresh,
                                        sizeof(fresh) - 1),
                   GW_OK);
  assert_string_equal(s->models[0].id, "alias");
  run(&p, list, NULL, &r);
  assert_string_equal(r.ids, "alias:ai-gateway new:ai-gateway ");

  gw_pipeline_release(&p);
  gw_router_free(router);
  gw_buf_release(&err);
}

typedef struct cat_arg {
  gw_catalog *c;
} cat_arg;

static int catalog_workload(void *arg) {
  gw_backend_conf bc = {.name = "x", .target = "http://h/v1/", .api_key = "k"};
  gw_catalog *c = gw_catalog_new(&bc);
  if (!c)
    return GW_ERR_NOMEM;
  int rc = gw_catalog_load_json(c, listing, sizeof(listing) - 1);
  if (rc == GW_OK)
    rc = gw_catalog_load_json(c, listing, sizeof(listing) - 1);
  if (rc == GW_OK && gw_catalog_get(c)->n != 3)
    rc = GW_ERR_STATE;
  gw_catalog_free(c);
  return rc;
}

static void test_catalog_failmalloc(void **state) {
  assert_true(gw_test_failmalloc_sweep(catalog_workload, NULL) > 4);
}

static int setup(void **state) {
  gw_log_setup(GW_LOG_OFF, GW_LOG_TEXT);
  return gw_descriptors_load(gw_descriptor_set, gw_descriptor_set_len, &desc);
}

static int teardown(void **state) {
  gw_descriptors_free(desc);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sse_reader),
      cmocka_unit_test(test_sse_names_error),
      cmocka_unit_test(test_sse_reader_line_lengths),
      cmocka_unit_test(test_sse_reader_crlf_split_at_cr),
      cmocka_unit_test(test_sse_reader_pull_one_at_a_time),
      cmocka_unit_test(test_sse_reader_failmalloc),
      cmocka_unit_test(test_status_from_http),
      cmocka_unit_test(test_backend_new),
      cmocka_unit_test(test_catalog_routes_and_lists),
      cmocka_unit_test(test_catalog_failmalloc),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
