/* The Gemini provider's pure translations: OpenAI chat request →
 * GenerateContentRequest, GenerateContentResponse → chat.completion, the
 * streamed responses → chunks, finish reasons. */
#include "support.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "core/status.h"
#include "pipeline/provider_gemini.h"

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

static const struct {
  const char *in, *want;
} requests[] = {
    {"{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"hi\"}"
     "],"
     "\"temperature\":0,\"max_completion_tokens\":9,\"stop\":[\"a\",\"b\"],\"response_format\":{"
     "\"type\":\"json_object\"}}",
     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}],\"systemInstruction\":{"
     "\"parts\":[{\"text\":\"S\"}]},\"generationConfig\":{\"temperature\":0,\"maxOutputTokens\":9,"
     "\"stopSequences\":[\"a\",\"b\"],\"responseMimeType\":\"application/json\"}}"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{"
     "\"url\":"
     "\"https://x/a.png\"}}]},{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":"
     "\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]}"
     ","
     "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"r\"}],\"tools\":[{\"type\":"
     "\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}],"
     "\"tool_choice\":\"none\"}",
     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"fileData\":{\"mimeType\":\"image/png\","
     "\"fileUri\":\"https://x/a.png\"}}]},{\"role\":\"model\",\"parts\":[{\"functionCall\":{"
     "\"name\":\"f\",\"args\":{\"a\":1}}}]},{\"role\":\"user\",\"parts\":[{\"functionResponse\":{"
     "\"name\":\"f\",\"response\":{\"content\":\"r\"}}}]}],\"tools\":[{\"functionDeclarations\":"
     "[{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}]}],\"toolConfig\":{"
     "\"functionCallingConfig\":{\"mode\":\"NONE\"}}}"},
};

static void test_request(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
    json_t *in = J(requests[i].in), *out = NULL;
    char err[200];
    assert_int_equal(gw_gemini_request(in, &out, err, sizeof err), GW_OK);
    assert_json_eq(out, requests[i].want);
    json_decref(in);
    json_decref(out);
  }
  json_t *in = J("{\"messages\":[{\"role\":\"tool\",\"tool_call_id\":\"zz\",\"content\":\"r\"}]}");
  json_t *out = NULL;
  char err[200] = "";
  assert_int_equal(gw_gemini_request(in, &out, err, sizeof err), GW_ERR_INVALID);
  assert_true(err[0]);
  json_decref(in);
}

static void test_response(void **state) {
  (void)state;
  json_t *in = J("{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"a\"},"
                 "{\"text\":\"b\"},{\"functionCall\":{\"name\":\"f\",\"args\":{\"x\":2}}}]},"
                 "\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":"
                 "4,\"candidatesTokenCount\":2,\"totalTokenCount\":6},\"modelVersion\":\"g-001\","
                 "\"responseId\":\"r1\"}");
  json_t *out = NULL;
  assert_int_equal(gw_gemini_response(in, "id0", "g", 5, &out), GW_OK);
  assert_json_eq(out,
                 "{\"id\":\"r1\",\"object\":\"chat.completion\",\"created\":5,\"model\":\"g-001\","
                 "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"ab\","
                 "\"refusal\":null,\"tool_calls\":[{\"id\":\"call_r1_0\",\"type\":\"function\","
                 "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"x\\\":2}\"}}]},"
                 "\"finish_reason\":\"tool_calls\",\"logprobs\":null}],\"usage\":{"
                 "\"prompt_tokens\":4,\"completion_tokens\":2,\"total_tokens\":6}}");
  json_decref(in);
  json_decref(out);
  /* A blocked prompt: no candidates. */
  in = J("{\"promptFeedback\":{\"blockReason\":\"SAFETY\"}}");
  assert_int_equal(gw_gemini_response(in, "id0", "g", 5, &out), GW_OK);
  assert_string_equal(json_string_value(json_object_get(
                          json_array_get(json_object_get(out, "choices"), 0), "finish_reason")),
                      "content_filter");
  json_decref(in);
  json_decref(out);
}

static void test_stream(void **state) {
  (void)state;
  gw_gemini_stream s;
  gw_gemini_stream_init(&s, "id0", "g", 5, true);
  json_t *chunks = json_array();
  json_t *ev = J("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"He\"}]}}],\"responseId\":"
                 "\"r2\",\"modelVersion\":\"g-2\"}");
  assert_int_equal(gw_gemini_stream_event(&s, ev, chunks), GW_OK);
  json_decref(ev);
  ev = J("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"y\"}]},\"finishReason\":"
         "\"MAX_TOKENS\"}],\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":2}}");
  assert_int_equal(gw_gemini_stream_event(&s, ev, chunks), GW_OK);
  json_decref(ev);
  assert_true(s.finished);
  assert_int_equal(gw_gemini_stream_end(&s, chunks), GW_OK);
  assert_json_eq(
      chunks, "[{\"id\":\"r2\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":"
              "\"g-2\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":"
              "\"He\"},\"finish_reason\":null,\"logprobs\":null}]},{\"id\":\"r2\",\"object\":"
              "\"chat.completion.chunk\",\"created\":5,\"model\":\"g-2\",\"choices\":[{\"index\":"
              "0,\"delta\":{\"content\":\"y\"},\"finish_reason\":\"length\",\"logprobs\":null}]},"
              "{\"id\":\"r2\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"g-2\","
              "\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,"
              "\"total_tokens\":5}}]");
  json_decref(chunks);
}

static void test_finish(void **state) {
  (void)state;
  assert_string_equal(gw_gemini_finish_reason("STOP", false), "stop");
  assert_string_equal(gw_gemini_finish_reason("STOP", true), "tool_calls");
  assert_string_equal(gw_gemini_finish_reason("MAX_TOKENS", false), "length");
  assert_string_equal(gw_gemini_finish_reason("SAFETY", false), "content_filter");
  assert_null(gw_gemini_finish_reason(NULL, false));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_request),
      cmocka_unit_test(test_response),
      cmocka_unit_test(test_stream),
      cmocka_unit_test(test_finish),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
