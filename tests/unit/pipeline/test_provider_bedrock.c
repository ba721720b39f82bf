/* The Bedrock provider's pure translations: OpenAI chat request → Converse,
 * Converse → chat.completion, ConverseStream events → chunks, model ids as
 * path segments. */
#include "support.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/status.h"
#include "pipeline/provider_bedrock.h"

static json_t *J(const char *s) {
  json_error_t e;
  json_t *j = json_loads(s, 0, &e);
  if (!j)
    fail_msg("bad test JSON: %s: %s", e.text, s);
  return j;
}

static void assert_json_eq(const json_t *got, const char *want) {
  json_t *w = J(want);
  if (!json_equal(got, w)) {
    char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
    char *x = json_dumps(w, JSON_COMPACT | JSON_SORT_KEYS);
    print_error("got:  %s\nwant: %s\n", g, x);
    free(g);
    free(x);
    json_decref(w);
    fail();
  }
  json_decref(w);
}

static void test_request(void **state) {
  (void)state;
  json_t *in =
      J("{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"S\"},"
        "{\"role\":\"user\",\"content\":\"go\"},{\"role\":\"assistant\",\"content\":null,"
        "\"tool_calls\":[{\"id\":\"t1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
        "\"arguments\":\"{}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"t1\",\"content\":"
        "\"r\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
        "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}},"
        "\"max_tokens\":5,\"stop\":\"x\"}");
  json_t *out = NULL;
  char err[200];
  assert_int_equal(gw_bedrock_request(in, &out, err, sizeof err), GW_OK);
  assert_json_eq(out,
                 "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"go\"}]},{\"role\":"
                 "\"assistant\",\"content\":[{\"toolUse\":{\"toolUseId\":\"t1\",\"name\":\"f\","
                 "\"input\":{}}}]},{\"role\":\"user\",\"content\":[{\"toolResult\":{\"toolUseId\":"
                 "\"t1\",\"content\":[{\"text\":\"r\"}]}}]}],\"system\":[{\"text\":\"S\"}],"
                 "\"inferenceConfig\":{\"maxTokens\":5,\"stopSequences\":[\"x\"]},\"toolConfig\":{"
                 "\"tools\":[{\"toolSpec\":{\"name\":\"f\",\"inputSchema\":{\"json\":{\"type\":"
                 "\"object\",\"properties\":{}}}}}],\"toolChoice\":{\"tool\":{\"name\":\"f\"}}}}");
  json_decref(in);
  json_decref(out);
  out = NULL;
  in = J("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{"
         "\"url\":\"https://x/y.png\"}}]}]}");
  assert_int_equal(gw_bedrock_request(in, &out, err, sizeof err), GW_ERR_INVALID);
  assert_null(out);
  json_decref(in);
}

static void test_response_and_stream(void **state) {
  (void)state;
  json_t *in =
      J("{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":[{\"text\":\"hi\"}]}},"
        "\"stopReason\":\"max_tokens\",\"usage\":{\"inputTokens\":3,\"outputTokens\":2,"
        "\"totalTokens\":5}}");
  json_t *out = NULL;
  assert_int_equal(gw_bedrock_response(in, "id1", "m", 9, &out), GW_OK);
  assert_json_eq(out,
                 "{\"id\":\"id1\",\"object\":\"chat.completion\",\"created\":9,\"model\":\"m\","
                 "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
                 "\"hi\",\"refusal\":null},\"finish_reason\":\"length\",\"logprobs\":null}],"
                 "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}");
  json_decref(in);
  json_decref(out);

  gw_bedrock_stream s;
  gw_bedrock_stream_init(&s, "id1", "m", 9, true);
  static const struct {
    const char *type, *ev;
    size_t n;
  } evs[] = {
      {"messageStart", "{\"role\":\"assistant\"}", 1},
      {"contentBlockStart",
       "{\"contentBlockIndex\":0,\"start\":{\"toolUse\":{\"toolUseId\":\"u\","
       "\"name\":\"f\"}}}",
       1},
      {"contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"toolUse\":{\"input\":\"{}\"}}}",
       1},
      {"contentBlockStop", "{\"contentBlockIndex\":0}", 0},
      {"messageStop", "{\"stopReason\":\"tool_use\"}", 1},
      {"metadata", "{\"usage\":{\"inputTokens\":4,\"outputTokens\":6}}", 1},
  };
  json_t *chunks = json_array();
  for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
    size_t before = json_array_size(chunks);
    json_t *ev = J(evs[i].ev);
    assert_int_equal(gw_bedrock_stream_event(&s, evs[i].type, ev, chunks), GW_OK);
    assert_int_equal(json_array_size(chunks) - before, evs[i].n);
    json_decref(ev);
  }
  assert_json_eq(
      json_object_get(json_array_get(json_object_get(json_array_get(chunks, 1), "choices"), 0),
                      "delta"),
      "{\"tool_calls\":[{\"index\":0,\"id\":\"u\",\"type\":\"function\",\"function\":{"
      "\"name\":\"f\",\"arguments\":\"\"}}]}");
  assert_string_equal(json_string_value(json_object_get(
                          json_array_get(json_object_get(json_array_get(chunks, 3), "choices"), 0),
                          "finish_reason")),
                      "tool_calls");
  assert_json_eq(json_object_get(json_array_get(chunks, 4), "usage"),
                 "{\"prompt_tokens\":4,\"completion_tokens\":6,\"total_tokens\":10}");
  json_decref(chunks);
}

static void test_model_path(void **state) {
  (void)state;
  char *p = gw_bedrock_model_path("anthropic.claude-3-haiku-20240307-v1:0");
  assert_string_equal(p, "anthropic.claude-3-haiku-20240307-v1%3A0");
  gw_free(p);
  p = gw_bedrock_model_path("arn:aws:bedrock:us-east-1::foundation-model/x");
  assert_string_equal(p, "arn%3Aaws%3Abedrock%3Aus-east-1%3A%3Afoundation-model%2Fx");
  gw_free(p);
  assert_string_equal(gw_bedrock_finish_reason("end_turn"), "stop");
  assert_string_equal(gw_bedrock_finish_reason("guardrail_intervened"), "content_filter");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_request),
      cmocka_unit_test(test_response_and_stream),
      cmocka_unit_test(test_model_path),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
