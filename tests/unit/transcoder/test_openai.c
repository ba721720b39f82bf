/* OpenAI adapters: required parameters, schema-required members filled
 * whatever the upstream left out, usage and base64 handling, error objects. */
#include "support.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <string.h>

#include "aigateway/v1/inference.pb-c.h"
#include "transcoder/openai.h"

static json_t *render(const ProtobufCMessage *m, const gw_openai_out *o, int *rc) {
  gw_buf b;
  gw_buf_init(&b, 1 << 20);
  *rc = gw_openai_render(m, o, &b);
  json_t *j = *rc == GW_OK ? json_loads(b.data, 0, NULL) : NULL;
  gw_buf_release(&b);
  return j;
}

static const gw_openai_out out_default = {.model = "asked", .request_id = "rid", .created = 42};

static void test_default_rules_name_real_fields(void **state) {
  assert_true(gw_openai_rules_valid());
}

static void test_empty_chat_response_gets_required_members(void **state) {
  Aigateway__V1__ChatCompletionResponse r;
  aigateway__v1__chat_completion_response__init(&r);
  Aigateway__V1__ChatChoice ch;
  aigateway__v1__chat_choice__init(&ch);
  Aigateway__V1__ChatChoice *chs[] = {&ch};
  r.choices = chs;
  r.n_choices = 1;
  int rc;
  json_t *j = render(&r.base, &out_default, &rc);
  assert_int_equal(rc, GW_OK);
  assert_string_equal(json_string_value(json_object_get(j, "id")), "chatcmpl-rid");
  assert_string_equal(json_string_value(json_object_get(j, "object")), "chat.completion");
  assert_int_equal(json_integer_value(json_object_get(j, "created")), 42);
  assert_string_equal(json_string_value(json_object_get(j, "model")), "asked");
  json_t *c = json_array_get(json_object_get(j, "choices"), 0);
  assert_int_equal(json_integer_value(json_object_get(c, "index")), 0);
  assert_true(json_is_integer(json_object_get(c, "index")));
  assert_string_equal(json_string_value(json_object_get(c, "finish_reason")), "stop");
  assert_true(json_is_null(json_object_get(c, "logprobs")));
  json_t *msg = json_object_get(c, "message");
  assert_string_equal(json_string_value(json_object_get(msg, "role")), "assistant");
  assert_true(json_is_null(json_object_get(msg, "content")));
  assert_true(json_is_null(json_object_get(msg, "refusal")));
  json_decref(j);
}

static void test_upstream_values_win(void **state) {
  Aigateway__V1__ChatCompletionResponse r;
  aigateway__v1__chat_completion_response__init(&r);
  r.id = "chatcmpl-up";
  r.model = "up-model";
  r.created = 7;
  int rc;
  json_t *j = render(&r.base, &out_default, &rc);
  assert_string_equal(json_string_value(json_object_get(j, "id")), "chatcmpl-up");
  assert_string_equal(json_string_value(json_object_get(j, "model")), "up-model");
  assert_int_equal(json_integer_value(json_object_get(j, "created")), 7);
  assert_int_equal(json_array_size(json_object_get(j, "choices")), 0);
  json_decref(j);
}

static void test_chunk_usage_only_when_asked(void **state) {
  Aigateway__V1__ChatCompletionChunk c;
  aigateway__v1__chat_completion_chunk__init(&c);
  Aigateway__V1__Usage u;
  aigateway__v1__usage__init(&u);
  u.prompt_tokens = 3;
  c.usage = &u;
  gw_openai_out o = out_default;
  o.stream = true;
  int rc;
  /* A usage-only chunk is dropped when the client did not ask. */
  json_t *j = render(&c.base, &o, &rc);
  assert_int_equal(rc, 1);
  assert_null(j);
  o.include_usage = true;
  j = render(&c.base, &o, &rc);
  assert_int_equal(rc, GW_OK);
  json_t *usage = json_object_get(j, "usage");
  assert_int_equal(json_integer_value(json_object_get(usage, "prompt_tokens")), 3);
  assert_true(json_is_integer(json_object_get(usage, "completion_tokens")));
  assert_true(json_is_integer(json_object_get(usage, "total_tokens")));
  json_decref(j);

  /* With a choice, usage is stripped but the chunk kept; finish_reason null. */
  Aigateway__V1__ChunkChoice ch;
  aigateway__v1__chunk_choice__init(&ch);
  Aigateway__V1__ChunkChoice *chs[] = {&ch};
  c.choices = chs;
  c.n_choices = 1;
  o.include_usage = false;
  j = render(&c.base, &o, &rc);
  assert_int_equal(rc, GW_OK);
  assert_null(json_object_get(j, "usage"));
  json_t *c0 = json_array_get(json_object_get(j, "choices"), 0);
  assert_true(json_is_null(json_object_get(c0, "finish_reason")));
  assert_true(json_is_object(json_object_get(c0, "delta")));
  assert_string_equal(json_string_value(json_object_get(j, "object")), "chat.completion.chunk");
  json_decref(j);
}

static void test_embeddings_base64(void **state) {
  Aigateway__V1__EmbeddingResponse r;
  aigateway__v1__embedding_response__init(&r);
  Aigateway__V1__Embedding e;
  aigateway__v1__embedding__init(&e);
  float v[] = {1.0f, -2.0f};
  e.embedding = v;
  e.n_embedding = 2;
  Aigateway__V1__Embedding *es[] = {&e};
  r.data = es;
  r.n_data = 1;
  gw_openai_out o = out_default;
  int rc;
  json_t *j = render(&r.base, &o, &rc);
  json_t *d0 = json_array_get(json_object_get(j, "data"), 0);
  assert_true(json_is_array(json_object_get(d0, "embedding")));
  assert_string_equal(json_string_value(json_object_get(d0, "object")), "embedding");
  assert_string_equal(json_string_value(json_object_get(j, "object")), "list");
  assert_true(json_is_object(json_object_get(j, "usage")));
  json_decref(j);
  o.base64_embeddings = true;
  j = render(&r.base, &o, &rc);
  d0 = json_array_get(json_object_get(j, "data"), 0);
  /* 1.0f = 00 00 80 3f, -2.0f = 00 00 00 c0 (little-endian). */
  assert_string_equal(json_string_value(json_object_get(d0, "embedding")), "AACAPwAAAMA=");
  json_decref(j);
  /* Every length up to 3 * 4 floats (each padding case, and the writer's
   * groups of three floats), random bits, against OpenSSL's encoder. */
  uint32_t x = 88675123u;
  for (size_t n = 1; n <= 12; n++) {
    float w[12];
    for (size_t i = 0; i < n; i++) {
      x ^= x << 13, x ^= x >> 17, x ^= x << 5;
      uint32_t bits = x & 0xff7fffffu; /* finite */
      memcpy(&w[i], &bits, 4);
    }
    e.embedding = w;
    e.n_embedding = n;
    unsigned char want[80];
    EVP_EncodeBlock(want, (const unsigned char *)w, (int)(n * 4)); /* little-endian host */
    j = render(&r.base, &o, &rc);
    d0 = json_array_get(json_object_get(j, "data"), 0);
    assert_string_equal(json_string_value(json_object_get(d0, "embedding")), (const char *)want);
    json_decref(j);
  }
  /* Every 12-bit value in both halves of a group of three bytes (the writer
   * looks up two digits at a time): group i holds i and 4095 - i. The
   * floats' bits are whatever that makes, NaNs included: base64 is of bytes. */
  static unsigned char groups[4096 * 3];
  for (uint32_t i = 0; i < 4096; i++) {
    uint32_t g = i << 12 | (4095 - i);
    groups[3 * i] = (unsigned char)(g >> 16);
    groups[3 * i + 1] = (unsigned char)(g >> 8);
    groups[3 * i + 2] = (unsigned char)g;
  }
  static float all[sizeof groups / 4];
  memcpy(all, groups, sizeof groups);
  e.embedding = all;
  e.n_embedding = sizeof all / sizeof all[0];
  static unsigned char want_all[sizeof groups / 3 * 4 + 1];
  EVP_EncodeBlock(want_all, groups, (int)sizeof groups);
  j = render(&r.base, &o, &rc);
  d0 = json_array_get(json_object_get(j, "data"), 0);
  assert_string_equal(json_string_value(json_object_get(d0, "embedding")), (const char *)want_all);
  json_decref(j);
}

typedef struct req_case {
  const ProtobufCMessageDescriptor *desc;
  const char *json;
  int rc;
  const char *param;
} req_case;

static const req_case req_cases[] = {
    {&aigateway__v1__chat_completion_request__descriptor,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", GW_OK, ""},
    {&aigateway__v1__chat_completion_request__descriptor, "", GW_ERR_INVALID, "model"},
    {&aigateway__v1__chat_completion_request__descriptor, "  \n", GW_ERR_INVALID, "model"},
    {&aigateway__v1__chat_completion_request__descriptor, "{\"model\":\"m\"}", GW_ERR_INVALID,
     "messages"},
    {&aigateway__v1__chat_completion_request__descriptor,
     "{\"model\":\"m\",\"messages\":[],\"temperature\":\"x\"}", GW_ERR_INVALID, "temperature"},
    {&aigateway__v1__completion_request__descriptor, "{\"model\":\"m\"}", GW_ERR_INVALID, "prompt"},
    {&aigateway__v1__completion_request__descriptor, "{\"model\":\"m\",\"prompt\":[1,2]}", GW_OK,
     ""},
    {&aigateway__v1__embedding_request__descriptor, "{\"input\":\"x\"}", GW_ERR_INVALID, "model"},
    {&aigateway__v1__embedding_request__descriptor, "{\"model\":\"m\",\"input\":[\"a\"],\"x\":1}",
     GW_OK, ""},
    {&aigateway__v1__list_models_request__descriptor, "", GW_OK, ""},
};

static void test_parse_request_required(void **state) {
  for (size_t i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
    gw_arena *a = gw_arena_new(0, 0);
    ProtobufCMessage *m = NULL;
    gw_json_error err = {{0}, {0}};
    int rc = gw_openai_parse_request(req_cases[i].desc, req_cases[i].json,
                                     strlen(req_cases[i].json), a, &m, &err);
    if (rc != req_cases[i].rc || strcmp(err.param, req_cases[i].param) != 0)
      fail_msg("case %zu: rc %d param '%s' (%s)", i, rc, err.param, err.message);
    gw_arena_free(a);
  }
}

static void test_status_and_error_body(void **state) {
  static const struct {
    gw_status_code code;
    int http;
  } map[] = {
      {GW_STATUS_OK, 200},
      {GW_STATUS_CANCELLED, 499},
      {GW_STATUS_INVALID_ARGUMENT, 400},
      {GW_STATUS_DEADLINE_EXCEEDED, 504},
      {GW_STATUS_NOT_FOUND, 404},
      {GW_STATUS_ALREADY_EXISTS, 409},
      {GW_STATUS_PERMISSION_DENIED, 403},
      {GW_STATUS_RESOURCE_EXHAUSTED, 429},
      {GW_STATUS_FAILED_PRECONDITION, 400},
      {GW_STATUS_ABORTED, 409},
      {GW_STATUS_OUT_OF_RANGE, 400},
      {GW_STATUS_UNIMPLEMENTED, 501},
      {GW_STATUS_INTERNAL, 500},
      {GW_STATUS_UNAVAILABLE, 503},
      {GW_STATUS_DATA_LOSS, 500},
      {GW_STATUS_UNAUTHENTICATED, 401},
      {GW_STATUS_UNKNOWN, 500},
  };
  for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
    assert_int_equal(gw_openai_http_status(map[i].code), map[i].http);
  gw_buf b;
  gw_buf_init(&b, 1024);
  assert_int_equal(gw_openai_error_body(404, NULL, "model_not_found", "model", "no \"x\"", &b),
                   GW_OK);
  assert_string_equal(b.data, "{\"error\":{\"message\":\"no \\\"x\\\"\",\"type\":"
                              "\"invalid_request_error\",\"param\":\"model\",\"code\":"
                              "\"model_not_found\"}}");
  gw_buf_reset(&b);
  assert_int_equal(gw_openai_error_body(503, NULL, NULL, NULL, "down", &b), GW_OK);
  assert_string_equal(b.data, "{\"error\":{\"message\":\"down\",\"type\":\"server_error\","
                              "\"param\":null,\"code\":null}}");
  gw_buf_release(&b);
}

static int render_workload(void *arg) {
  Aigateway__V1__ChatCompletionResponse r;
  aigateway__v1__chat_completion_response__init(&r);
  Aigateway__V1__ChatChoice ch;
  aigateway__v1__chat_choice__init(&ch);
  Aigateway__V1__ChatChoice *chs[] = {&ch};
  r.choices = chs;
  r.n_choices = 1;
  gw_buf b;
  gw_buf_init(&b, 1 << 20);
  int rc = gw_openai_render(&r.base, &out_default, &b);
  gw_buf_release(&b);
  return rc;
}

static void test_render_failmalloc(void **state) {
  gw_test_failmalloc_sweep(render_workload, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_default_rules_name_real_fields),
      cmocka_unit_test(test_empty_chat_response_gets_required_members),
      cmocka_unit_test(test_upstream_values_win),
      cmocka_unit_test(test_chunk_usage_only_when_asked),
      cmocka_unit_test(test_embeddings_base64),
      cmocka_unit_test(test_parse_request_required),
      cmocka_unit_test(test_status_and_error_body),
      cmocka_unit_test(test_render_failmalloc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
