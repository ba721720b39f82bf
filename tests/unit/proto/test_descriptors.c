/* Tests for proto/descriptors.c: the registry over the embedded set. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#include "aigateway/v1/inference.pb-c.h"
#include "core/alloc.h"
#include "core/status.h"
#include "google/protobuf/struct.pb-c.h"
#include "proto/descriptors.h"

static gw_descriptors *reg;

static int setup(void **state) {
  (void)state;
  return gw_descriptors_load(gw_descriptor_set, gw_descriptor_set_len, &reg);
}

static int teardown(void **state) {
  (void)state;
  gw_descriptors_free(reg);
  reg = NULL;
  return 0;
}

/* --- methods ------------------------------------------------------------ */

static const struct {
  const char *path, *input, *output;
  bool client_streaming, server_streaming, compiled;
} methods[] = {
    {"/aigateway.v1.Inference/CreateChatCompletion", "aigateway.v1.ChatCompletionRequest",
     "aigateway.v1.ChatCompletionResponse", false, false, true},
    {"/aigateway.v1.Inference/StreamChatCompletion", "aigateway.v1.ChatCompletionRequest",
     "aigateway.v1.ChatCompletionChunk", false, true, true},
    {"/aigateway.v1.Inference/CreateCompletion", "aigateway.v1.CompletionRequest",
     "aigateway.v1.CompletionResponse", false, false, true},
    {"/aigateway.v1.Inference/StreamCompletion", "aigateway.v1.CompletionRequest",
     "aigateway.v1.CompletionResponse", false, true, true},
    {"/aigateway.v1.Inference/CreateEmbedding", "aigateway.v1.EmbeddingRequest",
     "aigateway.v1.EmbeddingResponse", false, false, true},
    {"/aigateway.v1.Inference/ListModels", "aigateway.v1.ListModelsRequest",
     "aigateway.v1.ListModelsResponse", false, false, true},
    {"/aigateway.v1.Inference/GetModel", "aigateway.v1.GetModelRequest", "aigateway.v1.Model",
     false, false, true},
    {"/aigateway.v1.Auth/Login", "aigateway.v1.LoginRequest", "aigateway.v1.TokenResponse", false,
     false, true},
    {"/aigateway.v1.Auth/Refresh", "aigateway.v1.RefreshRequest", "aigateway.v1.TokenResponse",
     false, false, true},
    {"/aigateway.v1.Admin/GetHealth", "aigateway.v1.HealthRequest", "aigateway.v1.HealthResponse",
     false, false, true},
    {"/aigateway.v1.Admin/GetStats", "aigateway.v1.StatsRequest", "aigateway.v1.StatsResponse",
     false, false, true},
    {"/aigateway.v1.Admin/ListBackends", "aigateway.v1.ListBackendsRequest",
     "aigateway.v1.ListBackendsResponse", false, false, true},
    {"/grpc.health.v1.Health/Check", "grpc.health.v1.HealthCheckRequest",
     "grpc.health.v1.HealthCheckResponse", false, false, true},
    {"/grpc.health.v1.Health/Watch", "grpc.health.v1.HealthCheckRequest",
     "grpc.health.v1.HealthCheckResponse", false, true, true},
    {"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
     "grpc.reflection.v1.ServerReflectionRequest", "grpc.reflection.v1.ServerReflectionResponse",
     true, true, true},
    {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
     "grpc.reflection.v1alpha.ServerReflectionRequest",
     "grpc.reflection.v1alpha.ServerReflectionResponse", true, true, true},
};
#define N_METHODS (sizeof(methods) / sizeof(*methods))

static void test_methods_by_path(void **state) {
  (void)state;
  for (size_t i = 0; i < N_METHODS; i++) {
    const gw_method_info *m = gw_descriptors_find_method(reg, methods[i].path);
    if (!m)
      fail_msg("method %s not found", methods[i].path);
    assert_string_equal(m->path, methods[i].path);
    assert_string_equal(m->input_type, methods[i].input);
    assert_string_equal(m->output_type, methods[i].output);
    assert_int_equal(m->client_streaming, methods[i].client_streaming);
    assert_int_equal(m->server_streaming, methods[i].server_streaming);
    /* "/svc/name" agrees with service and name */
    char buf[256];
    snprintf(buf, sizeof buf, "/%s/%s", m->service, m->name);
    assert_string_equal(buf, m->path);
    if (methods[i].compiled) {
      assert_non_null(m->input);
      assert_non_null(m->output);
      assert_string_equal(m->input->name, methods[i].input);
      assert_string_equal(m->output->name, methods[i].output);
    }
  }
  /* The table is the whole set: every listed method round-trips by path. */
  assert_int_equal(gw_descriptors_method_count(reg), N_METHODS);
  for (size_t i = 0; i < gw_descriptors_method_count(reg); i++) {
    const gw_method_info *m = gw_descriptors_method(reg, i);
    assert_ptr_equal(gw_descriptors_find_method(reg, m->path), m);
  }
  assert_null(gw_descriptors_method(reg, N_METHODS));
}

static void test_unknown_methods(void **state) {
  (void)state;
  static const char *const bad[] = {
      "",
      "/",
      "/aigateway.v1.Inference/",
      "/aigateway.v1.Inference/Nope",
      "aigateway.v1.Inference/GetModel",
      "/aigateway.v1.Inference/GetModel/",
      "/aigateway.v1.inference/GetModel",
      "/aigateway.v1.Inference.GetModel",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
    assert_null(gw_descriptors_find_method(reg, bad[i]));
}

static void test_services(void **state) {
  (void)state;
  static const char *const want[] = {
      "aigateway.v1.Inference",
      "aigateway.v1.Auth",
      "aigateway.v1.Admin",
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
  };
  size_t n = gw_descriptors_service_count(reg);
  assert_int_equal(n, sizeof(want) / sizeof(*want));
  for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++) {
    bool found = false;
    for (size_t j = 0; j < n; j++)
      found |= strcmp(gw_descriptors_service_name(reg, j), want[i]) == 0;
    if (!found)
      fail_msg("service %s missing", want[i]);
    assert_true(gw_descriptors_has_service(reg, want[i]));
  }
  assert_null(gw_descriptors_service_name(reg, n));
  /* Whole names only. */
  assert_false(gw_descriptors_has_service(reg, ""));
  assert_false(gw_descriptors_has_service(reg, "aigateway.v1"));
  assert_false(gw_descriptors_has_service(reg, "aigateway.v1.Inferenc"));
  assert_false(gw_descriptors_has_service(reg, "aigateway.v1.InferenceX"));
  assert_false(gw_descriptors_has_service(reg, "no.such.Service"));
}

/* --- HTTP rules --------------------------------------------------------- */

static const struct {
  const char *path;
  Google__Api__HttpRule__PatternCase verb;
  const char *pattern, *body, *extra; /* extra: the one additional binding (POST), or NULL */
} rules[] = {
    {"/aigateway.v1.Inference/CreateChatCompletion", GOOGLE__API__HTTP_RULE__PATTERN_POST,
     "/v1/chat/completions", "*", "/local/chat/completions"},
    {"/aigateway.v1.Inference/StreamChatCompletion", GOOGLE__API__HTTP_RULE__PATTERN_POST,
     "/v1/chat/completions", "*", "/local/chat/completions"},
    {"/aigateway.v1.Inference/CreateCompletion", GOOGLE__API__HTTP_RULE__PATTERN_POST,
     "/v1/completions", "*", "/local/completions"},
    {"/aigateway.v1.Inference/CreateEmbedding", GOOGLE__API__HTTP_RULE__PATTERN_POST,
     "/v1/embeddings", "*", "/local/embeddings"},
    {"/aigateway.v1.Inference/ListModels", GOOGLE__API__HTTP_RULE__PATTERN_GET, "/v1/models", "",
     NULL},
    {"/aigateway.v1.Inference/GetModel", GOOGLE__API__HTTP_RULE__PATTERN_GET, "/v1/models/{id=**}",
     "", NULL},
    {"/aigateway.v1.Auth/Login", GOOGLE__API__HTTP_RULE__PATTERN_POST, "/auth/login", "*", NULL},
    {"/aigateway.v1.Admin/GetHealth", GOOGLE__API__HTTP_RULE__PATTERN_GET, "/health", "", NULL},
};

static void test_http_rules(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(rules) / sizeof(*rules); i++) {
    const gw_method_info *m = gw_descriptors_find_method(reg, rules[i].path);
    assert_non_null(m);
    const Google__Api__HttpRule *r = m->http;
    if (!r)
      fail_msg("%s has no http rule", rules[i].path);
    assert_int_equal(r->pattern_case, rules[i].verb);
    assert_string_equal(r->pattern_case == GOOGLE__API__HTTP_RULE__PATTERN_GET ? r->get : r->post,
                        rules[i].pattern);
    assert_string_equal(r->body, rules[i].body);
    if (rules[i].extra) {
      assert_int_equal(r->n_additional_bindings, 1);
      const Google__Api__HttpRule *b = r->additional_bindings[0];
      assert_int_equal(b->pattern_case, GOOGLE__API__HTTP_RULE__PATTERN_POST);
      assert_string_equal(b->post, rules[i].extra);
      assert_string_equal(b->body, "*");
    } else {
      assert_int_equal(r->n_additional_bindings, 0);
    }
  }
  /* Health and reflection carry no HTTP binding. */
  assert_null(gw_descriptors_find_method(reg, "/grpc.health.v1.Health/Check")->http);
  assert_null(
      gw_descriptors_find_method(reg, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
          ->http);
}

/* --- symbols ------------------------------------------------------------ */

static const struct {
  const char *symbol, *file; /* file NULL: not found */
  gw_symbol_kind kind;
} symbols[] = {
    {"aigateway.v1.Inference", "aigateway/v1/inference.proto", GW_SYMBOL_SERVICE},
    {".aigateway.v1.Inference", "aigateway/v1/inference.proto", GW_SYMBOL_SERVICE},
    {"aigateway.v1.Inference.CreateChatCompletion", "aigateway/v1/inference.proto",
     GW_SYMBOL_METHOD},
    {"aigateway.v1.ChatCompletionRequest", "aigateway/v1/inference.proto", GW_SYMBOL_MESSAGE},
    {"aigateway.v1.ChatCompletionRequest.model", "aigateway/v1/inference.proto", GW_SYMBOL_FIELD},
    {"aigateway.v1.ChatCompletionRequest.LogitBiasEntry", "aigateway/v1/inference.proto",
     GW_SYMBOL_MESSAGE},
    {"aigateway.v1.ChatCompletionRequest.LogitBiasEntry.key", "aigateway/v1/inference.proto",
     GW_SYMBOL_FIELD},
    {"aigateway.v1.MessageContent.kind", "aigateway/v1/inference.proto", GW_SYMBOL_ONEOF},
    {"aigateway.v1.Auth", "aigateway/v1/auth.proto", GW_SYMBOL_SERVICE},
    {"aigateway.v1.Admin.GetStats", "aigateway/v1/admin.proto", GW_SYMBOL_METHOD},
    {"aigateway.v1", "aigateway/v1/inference.proto", GW_SYMBOL_PACKAGE},
    {"aigateway", "aigateway/v1/inference.proto", GW_SYMBOL_PACKAGE},
    {"grpc.health.v1.Health", "grpc/health/v1/health.proto", GW_SYMBOL_SERVICE},
    {"grpc.health.v1.Health.Watch", "grpc/health/v1/health.proto", GW_SYMBOL_METHOD},
    {"grpc.health.v1.HealthCheckResponse.ServingStatus", "grpc/health/v1/health.proto",
     GW_SYMBOL_ENUM},
    {"grpc.health.v1.HealthCheckResponse.SERVING", "grpc/health/v1/health.proto",
     GW_SYMBOL_ENUM_VALUE},
    {"grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING", "grpc/health/v1/health.proto",
     GW_SYMBOL_ENUM_VALUE},
    {"grpc.reflection.v1.ServerReflection", "grpc/reflection/v1/reflection.proto",
     GW_SYMBOL_SERVICE},
    {"grpc.reflection.v1alpha.ServerReflection", "grpc/reflection/v1alpha/reflection.proto",
     GW_SYMBOL_SERVICE},
    {"google.protobuf.Struct", "google/protobuf/struct.proto", GW_SYMBOL_MESSAGE},
    {"google.protobuf.NullValue", "google/protobuf/struct.proto", GW_SYMBOL_ENUM},
    {"google.protobuf.NULL_VALUE", "google/protobuf/struct.proto", GW_SYMBOL_ENUM_VALUE},
    {"google.protobuf.DoubleValue", "google/protobuf/wrappers.proto", GW_SYMBOL_MESSAGE},
    {"google.protobuf.MethodOptions", "google/protobuf/descriptor.proto", GW_SYMBOL_MESSAGE},
    {"google.protobuf.FieldDescriptorProto.Type.TYPE_STRING", "google/protobuf/descriptor.proto",
     GW_SYMBOL_ENUM_VALUE},
    {"google.api.HttpRule", "google/api/http.proto", GW_SYMBOL_MESSAGE},
    {"google.api.http", "google/api/annotations.proto", GW_SYMBOL_EXTENSION},
    /* negative */
    {"", NULL, GW_SYMBOL_NONE},
    {".", NULL, GW_SYMBOL_NONE},
    {"aigateway.v1.Nope", NULL, GW_SYMBOL_NONE},
    {"aigateway.v1.Inference.Nope", NULL, GW_SYMBOL_NONE},
    {"aigateway.v1.ChatCompletionRequest.nope", NULL, GW_SYMBOL_NONE},
    {"ChatCompletionRequest", NULL, GW_SYMBOL_NONE},
    {"aigateway.v1.chatcompletionrequest", NULL, GW_SYMBOL_NONE},
    {"aigateway.v", NULL, GW_SYMBOL_NONE},
    {"aigateway.v1.", NULL, GW_SYMBOL_NONE},
};

static void test_symbols(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(symbols) / sizeof(*symbols); i++) {
    const Google__Protobuf__FileDescriptorProto *f =
        gw_descriptors_file_containing_symbol(reg, symbols[i].symbol);
    if (!symbols[i].file) {
      if (f)
        fail_msg("symbol '%s' unexpectedly found in %s", symbols[i].symbol, f->name);
    } else {
      if (!f)
        fail_msg("symbol '%s' not found", symbols[i].symbol);
      assert_string_equal(f->name, symbols[i].file);
      assert_ptr_equal(f, gw_descriptors_file_by_name(reg, symbols[i].file));
    }
    assert_int_equal(gw_descriptors_symbol_kind(reg, symbols[i].symbol), symbols[i].kind);
  }
  assert_null(gw_descriptors_file_containing_symbol(reg, NULL));
}

static void test_files(void **state) {
  (void)state;
  static const char *const present[] = {
      "aigateway/v1/inference.proto",
      "aigateway/v1/auth.proto",
      "aigateway/v1/admin.proto",
      "google/api/annotations.proto",
      "google/api/http.proto",
      "google/protobuf/descriptor.proto",
      "google/protobuf/struct.proto",
      "google/protobuf/wrappers.proto",
      "grpc/health/v1/health.proto",
      "grpc/reflection/v1/reflection.proto",
      "grpc/reflection/v1alpha/reflection.proto",
  };
  for (size_t i = 0; i < sizeof(present) / sizeof(*present); i++) {
    const Google__Protobuf__FileDescriptorProto *f = gw_descriptors_file_by_name(reg, present[i]);
    assert_non_null(f);
    assert_string_equal(f->name, present[i]);
  }
  assert_null(gw_descriptors_file_by_name(reg, "nope.proto"));
  assert_null(gw_descriptors_file_by_name(reg, "aigateway/v1/inference"));
  assert_null(gw_descriptors_file_by_name(reg, ""));
}

/* --- closure ------------------------------------------------------------ */

typedef struct {
  char names[32][128];
  size_t n;
  int stop_after; /* return 7 after this many files; 0: never */
} closure_acc;

static int collect(void *arg, const uint8_t *bytes, size_t len) {
  closure_acc *acc = arg;
  Google__Protobuf__FileDescriptorProto *f =
      google__protobuf__file_descriptor_proto__unpack(NULL, len, bytes);
  assert_non_null(f);
  assert_true(acc->n < 32);
  snprintf(acc->names[acc->n++], 128, "%s", f->name);
  google__protobuf__file_descriptor_proto__free_unpacked(f, NULL);
  return acc->stop_after && (int)acc->n == acc->stop_after ? 7 : 0;
}

static size_t count_name(const closure_acc *acc, const char *name) {
  size_t n = 0;
  for (size_t i = 0; i < acc->n; i++)
    n += strcmp(acc->names[i], name) == 0;
  return n;
}

static void test_closure(void **state) {
  (void)state;
  static const char *const want[] = {
      "aigateway/v1/inference.proto", "google/api/annotations.proto",
      "google/api/http.proto",        "google/protobuf/descriptor.proto",
      "google/protobuf/struct.proto", "google/protobuf/wrappers.proto",
  };
  const Google__Protobuf__FileDescriptorProto *f =
      gw_descriptors_file_by_name(reg, "aigateway/v1/inference.proto");
  closure_acc acc = {.n = 0};
  assert_int_equal(gw_descriptors_file_closure(reg, f, collect, &acc), GW_OK);
  assert_int_equal(acc.n, sizeof(want) / sizeof(*want));
  assert_string_equal(acc.names[0], want[0]);
  for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++)
    assert_int_equal(count_name(&acc, want[i]), 1);

  /* A file with no imports is its own closure. */
  acc.n = 0;
  f = gw_descriptors_file_by_name(reg, "google/protobuf/descriptor.proto");
  assert_int_equal(gw_descriptors_file_closure(reg, f, collect, &acc), GW_OK);
  assert_int_equal(acc.n, 1);

  /* The callback's nonzero value stops the walk and comes back. */
  acc = (closure_acc){.stop_after = 2};
  f = gw_descriptors_file_by_name(reg, "aigateway/v1/inference.proto");
  assert_int_equal(gw_descriptors_file_closure(reg, f, collect, &acc), 7);
  assert_int_equal(acc.n, 2);

  /* A file that is not the registry's own. */
  Google__Protobuf__FileDescriptorProto other = GOOGLE__PROTOBUF__FILE_DESCRIPTOR_PROTO__INIT;
  other.name = "aigateway/v1/inference.proto";
  assert_int_equal(gw_descriptors_file_closure(reg, &other, collect, &acc), GW_ERR_NOTFOUND);
  assert_int_equal(gw_descriptors_file_closure(reg, NULL, collect, &acc), GW_ERR_NOTFOUND);
}

/* --- compiled messages -------------------------------------------------- */

static void test_messages(void **state) {
  (void)state;
  static const struct {
    const char *name;
    const ProtobufCMessageDescriptor *want;
  } cases[] = {
      {"aigateway.v1.ChatCompletionRequest", &aigateway__v1__chat_completion_request__descriptor},
      {"aigateway.v1.ChatMessage", &aigateway__v1__chat_message__descriptor},
      {".aigateway.v1.ChatMessage", &aigateway__v1__chat_message__descriptor},
      {"aigateway.v1.ContentPart", &aigateway__v1__content_part__descriptor},
      {"aigateway.v1.ChatCompletionRequest.LogitBiasEntry",
       &aigateway__v1__chat_completion_request__logit_bias_entry__descriptor},
      {"google.protobuf.Struct", &google__protobuf__struct__descriptor},
      {"google.protobuf.Value", &google__protobuf__value__descriptor},
      {"google.protobuf.ListValue", &google__protobuf__list_value__descriptor},
      {"aigateway.v1.Nope", NULL},
      {"ChatMessage", NULL},
      {"", NULL},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
    assert_ptr_equal(gw_descriptors_message(reg, cases[i].name), cases[i].want);
  assert_non_null(gw_descriptors_message(reg, "google.protobuf.Int32Value"));
  assert_non_null(gw_descriptors_message(reg, "grpc.reflection.v1.FileDescriptorResponse"));
  assert_null(gw_descriptors_message(reg, NULL));
}

/* --- extensions --------------------------------------------------------- */

static void test_extensions(void **state) {
  (void)state;
  const Google__Protobuf__FileDescriptorProto *f =
      gw_descriptors_file_containing_extension(reg, "google.protobuf.MethodOptions", 72295728);
  assert_non_null(f);
  assert_string_equal(f->name, "google/api/annotations.proto");
  assert_ptr_equal(
      gw_descriptors_file_containing_extension(reg, ".google.protobuf.MethodOptions", 72295728), f);
  assert_null(gw_descriptors_file_containing_extension(reg, "google.protobuf.MethodOptions", 1));
  assert_null(
      gw_descriptors_file_containing_extension(reg, "google.protobuf.FileOptions", 72295728));
  assert_null(gw_descriptors_file_containing_extension(reg, NULL, 72295728));

  int32_t nums[4];
  assert_int_equal(gw_descriptors_extension_numbers(reg, "google.protobuf.MethodOptions", nums, 4),
                   1);
  assert_int_equal(nums[0], 72295728);
  assert_int_equal(gw_descriptors_extension_numbers(reg, "google.protobuf.MethodOptions", NULL, 0),
                   1);
  assert_int_equal(gw_descriptors_extension_numbers(reg, "aigateway.v1.ChatMessage", nums, 4), 0);
}

/* --- loading bad sets --------------------------------------------------- */

/* Serializes a set of files given as (name, dependency or NULL) pairs. */
static size_t make_set(uint8_t *out, size_t cap, const char *const (*files)[2], size_t n) {
  Google__Protobuf__FileDescriptorSet set = GOOGLE__PROTOBUF__FILE_DESCRIPTOR_SET__INIT;
  Google__Protobuf__FileDescriptorProto fp[4], *ptrs[4];
  char *deps[4];
  assert_true(n <= 4);
  for (size_t i = 0; i < n; i++) {
    google__protobuf__file_descriptor_proto__init(&fp[i]);
    fp[i].name = (char *)files[i][0];
    if (files[i][1]) {
      deps[i] = (char *)files[i][1];
      fp[i].n_dependency = 1;
      fp[i].dependency = &deps[i];
    }
    ptrs[i] = &fp[i];
  }
  set.n_file = n;
  set.file = ptrs;
  size_t len = google__protobuf__file_descriptor_set__get_packed_size(&set);
  assert_true(len <= cap);
  return google__protobuf__file_descriptor_set__pack(&set, out);
}

static void test_bad_sets(void **state) {
  (void)state;
  static const struct {
    const char *bytes;
    size_t len;
  } bad[] = {
      {"\xff", 1},                                          /* truncated varint */
      {"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11}, /* varint too long */
      {"\x0a\x05"
       "ab",
       4},                     /* length past the end */
      {"\x08\x01", 2},         /* file as a varint */
      {"\x0b", 1},             /* group */
      {"\x0f", 1},             /* reserved wire type */
      {"\x00\x00", 2},         /* field 0 */
      {"\x0a\x02\xff\xff", 4}, /* a file that does not decode */
      {"\x0a\x02\x12\x00", 4}, /* a file with no name */
      {"hello, world", 12},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
    gw_descriptors *d = (gw_descriptors *)1;
    long live = gw_alloc_live();
    int rc = gw_descriptors_load((const uint8_t *)bad[i].bytes, bad[i].len, &d);
    if (rc != GW_ERR_INVALID)
      fail_msg("bad set %zu: rc %d", i, rc);
    assert_null(d);
    assert_int_equal(gw_alloc_live(), live);
  }

  uint8_t buf[256];
  gw_descriptors *d;
  /* An import the set lacks (built without --include_imports). */
  static const char *const missing[][2] = {{"a.proto", "b.proto"}};
  size_t n = make_set(buf, sizeof buf, missing, 1);
  assert_int_equal(gw_descriptors_load(buf, n, &d), GW_ERR_INVALID);
  /* The same file twice. */
  static const char *const twice[][2] = {{"a.proto", NULL}, {"a.proto", NULL}};
  n = make_set(buf, sizeof buf, twice, 2);
  assert_int_equal(gw_descriptors_load(buf, n, &d), GW_ERR_INVALID);
  /* An import cycle is not ours to reject, and must not loop. */
  static const char *const cycle[][2] = {{"a.proto", "b.proto"}, {"b.proto", "a.proto"}};
  n = make_set(buf, sizeof buf, cycle, 2);
  assert_int_equal(gw_descriptors_load(buf, n, &d), GW_OK);
  closure_acc acc = {.n = 0};
  assert_int_equal(
      gw_descriptors_file_closure(d, gw_descriptors_file_by_name(d, "b.proto"), collect, &acc), 0);
  assert_int_equal(acc.n, 2);
  assert_string_equal(acc.names[0], "b.proto");
  gw_descriptors_free(d);
  /* An empty set is a set. */
  assert_int_equal(gw_descriptors_load((const uint8_t *)"", 0, &d), GW_OK);
  assert_int_equal(gw_descriptors_service_count(d), 0);
  assert_int_equal(gw_descriptors_method_count(d), 0);
  assert_null(gw_descriptors_find_method(d, "/a.B/C"));
  assert_null(gw_descriptors_file_containing_symbol(d, "a"));
  gw_descriptors_free(d);
  gw_descriptors_free(NULL);
}

/* --- fail-malloc -------------------------------------------------------- */

static int load_and_free(void *arg) {
  (void)arg;
  gw_descriptors *d;
  int rc = gw_descriptors_load(gw_descriptor_set, gw_descriptor_set_len, &d);
  if (rc == GW_OK) {
    if (!gw_descriptors_find_method(d, "/aigateway.v1.Inference/GetModel"))
      rc = -100;
    gw_descriptors_free(d);
  } else if (rc != GW_ERR_NOMEM) {
    fail_msg("load failed with %d, not GW_ERR_NOMEM", rc);
  } else if (d) {
    fail_msg("failed load left a registry");
  }
  return rc;
}

static void test_failmalloc(void **state) {
  (void)state;
  long n = gw_test_failmalloc_sweep(load_and_free, NULL);
  assert_true(n > 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_methods_by_path), cmocka_unit_test(test_unknown_methods),
      cmocka_unit_test(test_services),        cmocka_unit_test(test_http_rules),
      cmocka_unit_test(test_symbols),         cmocka_unit_test(test_files),
      cmocka_unit_test(test_closure),         cmocka_unit_test(test_messages),
      cmocka_unit_test(test_extensions),      cmocka_unit_test(test_bad_sets),
      cmocka_unit_test(test_failmalloc),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
