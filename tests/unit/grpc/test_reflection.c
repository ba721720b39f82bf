/* Tests for grpc/reflection.c: one answer per request kind, v1 and v1alpha. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#include "core/alloc.h"
#include "core/buf.h"
#include "core/status.h"
#include "grpc/reflection.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"
#include "proto/descriptors.h"

typedef Grpc__Reflection__V1__ServerReflectionRequest v1_request;
typedef Grpc__Reflection__V1__ServerReflectionResponse v1_response;

#define OUT_CAP (4u << 20)

static gw_descriptors *reg;

static int setup(void **state) {
  (void)state;
  return gw_descriptors_load(gw_descriptor_set, gw_descriptor_set_len, &reg);
}

static int teardown(void **state) {
  (void)state;
  gw_descriptors_free(reg);
  return 0;
}

/* A request of |kind| with string |arg| (ignored for extension requests). */
static size_t make_request(uint8_t **out,
                           Grpc__Reflection__V1__ServerReflectionRequest__MessageRequestCase kind,
                           const char *arg, const char *ext_type, int32_t ext_num) {
  v1_request rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  Grpc__Reflection__V1__ExtensionRequest er = GRPC__REFLECTION__V1__EXTENSION_REQUEST__INIT;
  rq.host = "localhost:50051";
  rq.message_request_case = kind;
  switch (kind) {
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
    rq.file_by_filename = (char *)arg;
    break;
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
    rq.file_containing_symbol = (char *)arg;
    break;
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
    rq.all_extension_numbers_of_type = (char *)arg;
    break;
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
    rq.list_services = (char *)arg;
    break;
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
    er.containing_type = (char *)ext_type;
    er.extension_number = ext_num;
    rq.file_containing_extension = &er;
    break;
  default: break;
  }
  size_t n = grpc__reflection__v1__server_reflection_request__get_packed_size(&rq);
  *out = malloc(n ? n : 1);
  grpc__reflection__v1__server_reflection_request__pack(&rq, *out);
  return n;
}

/* Answers |kind|(|arg|) and returns the decoded response (free with
 * grpc__reflection__v1__server_reflection_response__free_unpacked). */
static v1_response *ask_ext(Grpc__Reflection__V1__ServerReflectionRequest__MessageRequestCase kind,
                            const char *arg, const char *ext_type, int32_t ext_num) {
  uint8_t *req;
  size_t n = make_request(&req, kind, arg, ext_type, ext_num);
  gw_buf out;
  gw_buf_init(&out, OUT_CAP);
  assert_int_equal(gw_reflection_answer(reg, req, n, &out), GW_OK);
  v1_response *r = grpc__reflection__v1__server_reflection_response__unpack(
      NULL, out.len, (const uint8_t *)out.data);
  assert_non_null(r);
  /* valid_host and original_request echo the request. */
  assert_string_equal(r->valid_host, "localhost:50051");
  assert_non_null(r->original_request);
  uint8_t echo[1024];
  size_t en = grpc__reflection__v1__server_reflection_request__get_packed_size(r->original_request);
  assert_true(en == n && en <= sizeof echo);
  grpc__reflection__v1__server_reflection_request__pack(r->original_request, echo);
  assert_memory_equal(echo, req, n);
  gw_buf_release(&out);
  free(req);
  return r;
}

static v1_response *ask(Grpc__Reflection__V1__ServerReflectionRequest__MessageRequestCase kind,
                        const char *arg) {
  return ask_ext(kind, arg, NULL, 0);
}

#define FILE_BY_NAME                                                                               \
  GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME
#define FILE_BY_SYMBOL                                                                             \
  GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL
#define FILE_BY_EXT                                                                                \
  GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION
#define EXT_NUMBERS                                                                                \
  GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE
#define LIST_SERVICES GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES
#define NOT_SET GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST__NOT_SET

#define R_FILES                                                                                    \
  GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE
#define R_NUMBERS                                                                                  \
  GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE
#define R_SERVICES                                                                                 \
  GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE
#define R_ERROR GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE

/* --- list_services ------------------------------------------------------ */

static const char *const all_services[] = {
    "aigateway.v1.Inference",
    "aigateway.v1.Auth",
    "aigateway.v1.Admin",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
};
#define N_SERVICES (sizeof(all_services) / sizeof(*all_services))

static void test_list_services(void **state) {
  (void)state;
  v1_response *r = ask(LIST_SERVICES, "*");
  assert_int_equal(r->message_response_case, R_SERVICES);
  assert_int_equal(r->list_services_response->n_service, N_SERVICES);
  for (size_t i = 0; i < N_SERVICES; i++) {
    size_t found = 0;
    for (size_t j = 0; j < r->list_services_response->n_service; j++)
      found += strcmp(r->list_services_response->service[j]->name, all_services[i]) == 0;
    if (found != 1)
      fail_msg("service %s listed %zu times", all_services[i], found);
  }
  grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
}

/* --- file_descriptor_response ------------------------------------------- */

/* Checks |r| is a file_descriptor_response with |first| first, every file
 * once, and every import of every file present (the closure is complete). */
static void check_files(const v1_response *r, const char *first, const char *const *want,
                        size_t n_want) {
  assert_int_equal(r->message_response_case, R_FILES);
  const Grpc__Reflection__V1__FileDescriptorResponse *fr = r->file_descriptor_response;
  size_t n = fr->n_file_descriptor_proto;
  assert_true(n > 0 && n < 32);
  Google__Protobuf__FileDescriptorProto *f[32];
  for (size_t i = 0; i < n; i++) {
    f[i] = google__protobuf__file_descriptor_proto__unpack(NULL, fr->file_descriptor_proto[i].len,
                                                           fr->file_descriptor_proto[i].data);
    assert_non_null(f[i]);
  }
  assert_string_equal(f[0]->name, first);
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++)
      if (strcmp(f[i]->name, f[j]->name) == 0)
        fail_msg("%s sent twice", f[i]->name);
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < f[i]->n_dependency; k++) {
      bool found = false;
      for (size_t j = 0; j < n; j++)
        found |= strcmp(f[j]->name, f[i]->dependency[k]) == 0;
      if (!found)
        fail_msg("%s imports %s, which was not sent", f[i]->name, f[i]->dependency[k]);
    }
  for (size_t w = 0; w < n_want; w++) {
    bool found = false;
    for (size_t j = 0; j < n; j++)
      found |= strcmp(f[j]->name, want[w]) == 0;
    if (!found)
      fail_msg("%s missing from the answer", want[w]);
  }
  for (size_t i = 0; i < n; i++)
    google__protobuf__file_descriptor_proto__free_unpacked(f[i], NULL);
}

static const char *const inference_closure[] = {
    "aigateway/v1/inference.proto", "google/api/annotations.proto",
    "google/api/http.proto",        "google/protobuf/descriptor.proto",
    "google/protobuf/struct.proto", "google/protobuf/wrappers.proto",
};

static void test_file_by_filename(void **state) {
  (void)state;
  v1_response *r = ask(FILE_BY_NAME, "aigateway/v1/inference.proto");
  check_files(r, "aigateway/v1/inference.proto", inference_closure, 6);
  assert_int_equal(r->file_descriptor_response->n_file_descriptor_proto, 6);
  grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);

  r = ask(FILE_BY_NAME, "google/protobuf/descriptor.proto");
  check_files(r, "google/protobuf/descriptor.proto", NULL, 0);
  assert_int_equal(r->file_descriptor_response->n_file_descriptor_proto, 1);
  grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
}

static const struct {
  const char *symbol, *file;
} symbol_cases[] = {
    {"aigateway.v1.Inference", "aigateway/v1/inference.proto"},
    {"aigateway.v1.Inference.StreamChatCompletion", "aigateway/v1/inference.proto"},
    {"aigateway.v1.ChatCompletionRequest", "aigateway/v1/inference.proto"},
    {"aigateway.v1.ChatMessage", "aigateway/v1/inference.proto"},
    {"aigateway.v1.ChatCompletionRequest.LogitBiasEntry", "aigateway/v1/inference.proto"},
    {"aigateway.v1.ChatCompletionRequest.temperature", "aigateway/v1/inference.proto"},
    {"aigateway.v1.Auth", "aigateway/v1/auth.proto"},
    {"aigateway.v1.Admin.ListBackends", "aigateway/v1/admin.proto"},
    {"grpc.health.v1.Health", "grpc/health/v1/health.proto"},
    {"grpc.health.v1.HealthCheckResponse.ServingStatus", "grpc/health/v1/health.proto"},
    {"grpc.reflection.v1.ServerReflection", "grpc/reflection/v1/reflection.proto"},
    {"grpc.reflection.v1alpha.ServerReflection", "grpc/reflection/v1alpha/reflection.proto"},
    {"google.protobuf.Struct", "google/protobuf/struct.proto"},
    {"google.api.HttpRule", "google/api/http.proto"},
};

static void test_file_containing_symbol(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(symbol_cases) / sizeof(*symbol_cases); i++) {
    v1_response *r = ask(FILE_BY_SYMBOL, symbol_cases[i].symbol);
    if (r->message_response_case != R_FILES)
      fail_msg("%s: response kind %d", symbol_cases[i].symbol, r->message_response_case);
    check_files(r, symbol_cases[i].file, NULL, 0);
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
  }
  v1_response *r = ask(FILE_BY_SYMBOL, "aigateway.v1.Inference");
  check_files(r, "aigateway/v1/inference.proto", inference_closure, 6);
  grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
}

/* --- errors ------------------------------------------------------------- */

static const struct {
  Grpc__Reflection__V1__ServerReflectionRequest__MessageRequestCase kind;
  const char *arg, *ext_type;
  int32_t ext_num;
  int code;
  const char *in_message; /* must appear in error_message */
} error_cases[] = {
    {FILE_BY_NAME, "nope/nope.proto", NULL, 0, 5, "nope/nope.proto"},
    {FILE_BY_NAME, "", NULL, 0, 5, "file"},
    {FILE_BY_SYMBOL, "aigateway.v1.Nope", NULL, 0, 5, "aigateway.v1.Nope"},
    {FILE_BY_SYMBOL, "aigateway.v1.Inference.Nope", NULL, 0, 5, "aigateway.v1.Inference.Nope"},
    {FILE_BY_SYMBOL, "", NULL, 0, 5, "symbol"},
    {FILE_BY_EXT, NULL, "google.protobuf.MethodOptions", 1, 5, "google.protobuf.MethodOptions"},
    {FILE_BY_EXT, NULL, "aigateway.v1.ChatMessage", 72295728, 5, "72295728"},
    {EXT_NUMBERS, "aigateway.v1.Nope", NULL, 0, 5, "aigateway.v1.Nope"},
    {EXT_NUMBERS, "aigateway.v1.Inference", NULL, 0, 5, "aigateway.v1.Inference"},
    {NOT_SET, NULL, NULL, 0, 12, "not implemented"},
};

static void test_errors(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(error_cases) / sizeof(*error_cases); i++) {
    v1_response *r = ask_ext(error_cases[i].kind, error_cases[i].arg, error_cases[i].ext_type,
                             error_cases[i].ext_num);
    if (r->message_response_case != R_ERROR)
      fail_msg("case %zu: response kind %d", i, r->message_response_case);
    assert_int_equal(r->error_response->error_code, error_cases[i].code);
    if (!strstr(r->error_response->error_message, error_cases[i].in_message))
      fail_msg("case %zu: '%s' lacks '%s'", i, r->error_response->error_message,
               error_cases[i].in_message);
    grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
  }
}

/* --- extensions --------------------------------------------------------- */

static void test_extensions(void **state) {
  (void)state;
  v1_response *r = ask_ext(FILE_BY_EXT, NULL, "google.protobuf.MethodOptions", 72295728);
  static const char *const want[] = {"google/api/annotations.proto", "google/api/http.proto",
                                     "google/protobuf/descriptor.proto"};
  check_files(r, "google/api/annotations.proto", want, 3);
  grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);

  r = ask(EXT_NUMBERS, "google.protobuf.MethodOptions");
  assert_int_equal(r->message_response_case, R_NUMBERS);
  assert_string_equal(r->all_extension_numbers_response->base_type_name,
                      "google.protobuf.MethodOptions");
  assert_int_equal(r->all_extension_numbers_response->n_extension_number, 1);
  assert_int_equal(r->all_extension_numbers_response->extension_number[0], 72295728);
  grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);

  r = ask(EXT_NUMBERS, "aigateway.v1.ChatMessage");
  assert_int_equal(r->message_response_case, R_NUMBERS);
  assert_string_equal(r->all_extension_numbers_response->base_type_name,
                      "aigateway.v1.ChatMessage");
  assert_int_equal(r->all_extension_numbers_response->n_extension_number, 0);
  grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
}

/* --- v1alpha ------------------------------------------------------------ */

/* A v1alpha client's bytes, answered by the same function, decode as a
 * v1alpha response with the same content. */
static void test_v1alpha(void **state) {
  (void)state;
  Grpc__Reflection__V1alpha__ServerReflectionRequest rq =
      GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__INIT;
  rq.host = "h";
  rq.message_request_case =
      GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
  rq.file_containing_symbol = "aigateway.v1.Inference";
  uint8_t req[256];
  size_t n = grpc__reflection__v1alpha__server_reflection_request__pack(&rq, req);
  gw_buf out;
  gw_buf_init(&out, OUT_CAP);
  assert_int_equal(gw_reflection_answer(reg, req, n, &out), GW_OK);
  Grpc__Reflection__V1alpha__ServerReflectionResponse *r =
      grpc__reflection__v1alpha__server_reflection_response__unpack(NULL, out.len,
                                                                    (const uint8_t *)out.data);
  assert_non_null(r);
  assert_string_equal(r->valid_host, "h");
  assert_string_equal(r->original_request->file_containing_symbol, "aigateway.v1.Inference");
  assert_int_equal(
      r->message_response_case,
      GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE);
  assert_int_equal(r->file_descriptor_response->n_file_descriptor_proto, 6);
  grpc__reflection__v1alpha__server_reflection_response__free_unpacked(r, NULL);
  gw_buf_release(&out);

  rq.message_request_case =
      GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
  rq.list_services = "";
  n = grpc__reflection__v1alpha__server_reflection_request__pack(&rq, req);
  gw_buf_init(&out, OUT_CAP);
  assert_int_equal(gw_reflection_answer(reg, req, n, &out), GW_OK);
  r = grpc__reflection__v1alpha__server_reflection_response__unpack(NULL, out.len,
                                                                    (const uint8_t *)out.data);
  assert_non_null(r);
  assert_int_equal(
      r->message_response_case,
      GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE);
  assert_int_equal(r->list_services_response->n_service, N_SERVICES);
  grpc__reflection__v1alpha__server_reflection_response__free_unpacked(r, NULL);
  gw_buf_release(&out);
}

/* --- bad input and caps ------------------------------------------------- */

static void test_garbage(void **state) {
  (void)state;
  static const struct {
    const char *bytes;
    size_t len;
  } bad[] = {
      {"\xff", 1}, /* truncated varint */
      {"\x0a\x05"
       "ab",
       4},                             /* host longer than the message */
      {"\x3a\xff\xff\xff\xff\x0f", 6}, /* list_services of 4 GiB */
      {"\x2a\x02\xff\xff", 4},         /* file_containing_extension that does not decode */
      {"\x0b", 1},                     /* start group */
      {"\x0f", 1},                     /* reserved wire type */
      {"\x18\x01", 2},                 /* file_by_filename as a varint */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
    gw_buf out;
    gw_buf_init(&out, OUT_CAP);
    assert_int_equal(gw_buf_append(&out, "x", 1), GW_OK);
    long live = gw_alloc_live();
    int rc = gw_reflection_answer(reg, (const uint8_t *)bad[i].bytes, bad[i].len, &out);
    if (rc != GW_ERR_INVALID)
      fail_msg("garbage %zu: rc %d", i, rc);
    assert_int_equal(out.len, 1); /* unchanged */
    assert_int_equal(gw_alloc_live(), live);
    gw_buf_release(&out);
  }
  gw_buf out;
  gw_buf_init(&out, OUT_CAP);
  assert_int_equal(gw_reflection_answer(reg, NULL, 3, &out), GW_ERR_INVALID);
  /* No bytes is a request with nothing set: decodable, answered UNIMPLEMENTED. */
  assert_int_equal(gw_reflection_answer(reg, NULL, 0, &out), GW_OK);
  v1_response *r = grpc__reflection__v1__server_reflection_response__unpack(
      NULL, out.len, (const uint8_t *)out.data);
  assert_non_null(r);
  assert_int_equal(r->message_response_case, R_ERROR);
  assert_int_equal(r->error_response->error_code, 12);
  grpc__reflection__v1__server_reflection_response__free_unpacked(r, NULL);
  gw_buf_release(&out);
}

static void test_cap(void **state) {
  (void)state;
  uint8_t *req;
  size_t n = make_request(&req, FILE_BY_NAME, "aigateway/v1/inference.proto", NULL, 0);
  gw_buf out;
  gw_buf_init(&out, 1024); /* descriptor.proto alone is far bigger */
  assert_int_equal(gw_reflection_answer(reg, req, n, &out), GW_ERR_TOOBIG);
  assert_int_equal(out.len, 0);
  gw_buf_release(&out);
  free(req);
}

/* --- fail-malloc -------------------------------------------------------- */

typedef struct {
  uint8_t *req;
  size_t len;
} sweep_arg;

static int answer_once(void *arg) {
  sweep_arg *a = arg;
  gw_buf out;
  gw_buf_init(&out, OUT_CAP);
  int rc = gw_reflection_answer(reg, a->req, a->len, &out);
  if (rc != GW_OK && rc != GW_ERR_NOMEM)
    fail_msg("answer failed with %d, not GW_ERR_NOMEM", rc);
  if (rc != GW_OK && out.len != 0)
    fail_msg("failed answer wrote %zu bytes", out.len);
  gw_buf_release(&out);
  return rc;
}

static void test_failmalloc(void **state) {
  (void)state;
  static const struct {
    Grpc__Reflection__V1__ServerReflectionRequest__MessageRequestCase kind;
    const char *arg;
  } cases[] = {
      {FILE_BY_SYMBOL, "aigateway.v1.ChatMessage"},
      {FILE_BY_NAME, "aigateway/v1/inference.proto"},
      {LIST_SERVICES, ""},
      {FILE_BY_SYMBOL, "aigateway.v1.Nope"},
      {EXT_NUMBERS, "google.protobuf.MethodOptions"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
    sweep_arg a;
    a.len = make_request(&a.req, cases[i].kind, cases[i].arg, NULL, 0);
    assert_true(gw_test_failmalloc_sweep(answer_once, &a) > 0);
    free(a.req);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_list_services),
      cmocka_unit_test(test_file_by_filename),
      cmocka_unit_test(test_file_containing_symbol),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_extensions),
      cmocka_unit_test(test_v1alpha),
      cmocka_unit_test(test_garbage),
      cmocka_unit_test(test_cap),
      cmocka_unit_test(test_failmalloc),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
