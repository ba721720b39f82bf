/* The Gemini provider's pure translations: OpenAI chat request →
 * GenerateContentRequest, GenerateContentResponse → chat.completion, the
 * streamed responses → chunks, finish reasons. */
#include "support.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/status.h"
#include "pipeline/provider_gemini.h"
#include "transcoder/json_lite.h"

static json_t *J(const char *s) {
  json_error_t e;
  json_t *j = json_loads(s, 0, &e);
  if (!j)
    fail_msg("bad test JSON: %s: %s", e.text, s);
  return j;
}

/* |s| parsed the way the provider parses what it is given. */
static const gw_jval *L(gw_arena *a, const char *s) {
  const gw_jval *v = NULL;
  gw_json_lite_error e;
  if (gw_json_lite_parse(s, strlen(s), a, 0, 0, &v, &e) != GW_OK)
    fail_msg("bad test JSON: %s: %s", e.text, s);
  return v;
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
    /* Turns merge around a system message; consecutive tool results share
     * one user turn; knobs renamed and as written; a named tool choice; a
     * tool's description; a data URL; stop as a string; a schema. */
    {"{\"model\":\"g\",\"top_p\":0.50,\"top_k\":3,\"n\":1,\"seed\":7,\"presence_penalty\":-1e-1,"
     "\"frequency_penalty\":0.2,\"max_tokens\":5,\"stop\":\"END\",\"response_format\":{\"type\":"
     "\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":{\"type\":\"object\"}}},"
     "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"description\":\"F "
     "\\\"q\\\"\"}},{\"type\":\"function\",\"function\":{\"name\":\"g\"}}],\"tool_choice\":{"
     "\"type\":\"function\",\"function\":{\"name\":\"g\"}},\"messages\":[{\"role\":\"user\","
     "\"content\":\"a\"},{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":"
     "\"D\"}]},{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":"
     "\"data:image/webp;base64,QUJD\"}}]},{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":"
     "[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}},"
     "{\"id\":\"c2\",\"type\":\"function\",\"function\":{\"name\":\"g\",\"arguments\":"
     "\"{\\\"n\\\":[1.50,true]}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"c2\",\"content\":"
     "[{\"type\":\"text\",\"text\":\"r\\n2\"}]},{\"role\":\"tool\",\"tool_call_id\":\"c1\","
     "\"content\":\"r1\"}]}",
     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"a\"},{\"inlineData\":{"
     "\"mimeType\":\"image/webp\",\"data\":\"QUJD\"}}]},{\"role\":\"model\",\"parts\":["
     "{\"functionCall\":{\"name\":\"f\",\"args\":{}}},{\"functionCall\":{\"name\":\"g\","
     "\"args\":{\"n\":[1.5,true]}}}]},{\"role\":\"user\",\"parts\":[{\"functionResponse\":{"
     "\"name\":\"g\",\"response\":{\"content\":\"r\\n2\"}}},{\"functionResponse\":{\"name\":"
     "\"f\",\"response\":{\"content\":\"r1\"}}}]}],\"systemInstruction\":{\"parts\":[{"
     "\"text\":\"D\"}]},\"tools\":[{\"functionDeclarations\":[{\"name\":\"f\",\"description\":"
     "\"F \\\"q\\\"\"},{\"name\":\"g\"}]}],\"toolConfig\":{\"functionCallingConfig\":{"
     "\"mode\":\"ANY\",\"allowedFunctionNames\":[\"g\"]}},\"generationConfig\":{\"topP\":0.5,"
     "\"topK\":3,\"candidateCount\":1,\"seed\":7,\"presencePenalty\":-0.1,\"frequencyPenalty\":"
     "0.2,\"maxOutputTokens\":5,\"stopSequences\":[\"END\"],\"responseMimeType\":"
     "\"application/json\",\"responseSchema\":{\"type\":\"object\"}}}"},
};

/* The output must be JSON that parses, and equal |want|. */
static void assert_text_eq(const gw_buf *got, const char *want) {
  json_t *g = J(got->data ? got->data : "");
  assert_json_eq(g, want);
  json_decref(g);
}

static void test_request(void **state) {
  (void)state;
  gw_arena *a = gw_arena_new(0, 0);
  for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
    gw_buf out;
    gw_buf_init(&out, 1 << 20);
    char err[200] = "";
    int rc = gw_gemini_request(L(a, requests[i].in), a, &out, err, sizeof err);
    if (rc != GW_OK)
      fail_msg("case %zu: %d %s", i, rc, err);
    assert_text_eq(&out, requests[i].want);
    gw_buf_release(&out);
  }
  static const char *const bad[] = {
      "{\"messages\":[{\"role\":\"tool\",\"tool_call_id\":\"zz\",\"content\":\"r\"}]}",
      "{\"messages\":[]}",
      "{\"messages\":[{\"content\":\"x\"}]}",
      "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}",
      "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\"}]}]}",
      "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{}}]}]"
      "}",
      "{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\",\"function\":{"
      "\"name\":\"f\",\"arguments\":\"[1]\"}}]}]}",
      "{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\",\"function\":{}}]}]}",
      "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"function\":{}}]}",
      "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":{\"type\":"
      "\"function\"}}",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    gw_buf out;
    gw_buf_init(&out, 1 << 20);
    char err[200] = "";
    if (gw_gemini_request(L(a, bad[i]), a, &out, err, sizeof err) != GW_ERR_INVALID)
      fail_msg("case %zu was taken: %s", i, bad[i]);
    assert_true(err[0]);
    gw_buf_release(&out);
  }
  gw_arena_free(a);
}

static void test_response(void **state) {
  (void)state;
  gw_arena *a = gw_arena_new(0, 0);
  gw_buf out;
  gw_buf_init(&out, 1 << 20);
  const gw_jval *in =
      L(a, "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"a\"},"
           "{\"text\":\"hm\",\"thought\":true},{\"text\":\"b\\\"\"},{\"functionCall\":{\"name\":"
           "\"f\",\"args\":{\"x\":2.50}}},{\"functionCall\":{\"id\":\"own\",\"name\":\"g\"}}]},"
           "\"finishReason\":\"STOP\",\"index\":0},{\"content\":{\"parts\":[{\"functionCall\":{"
           "\"name\":\"h\",\"args\":{}}}]},\"index\":1}],\"usageMetadata\":{\"promptTokenCount\":"
           "4,\"candidatesTokenCount\":2,\"thoughtsTokenCount\":3,\"cachedContentTokenCount\":1,"
           "\"totalTokenCount\":9},\"modelVersion\":\"g-001\",\"responseId\":\"r1\"}");
  assert_int_equal(gw_gemini_response(in, "id0", "g", 5, &out), GW_OK);
  assert_text_eq(&out,
                 "{\"id\":\"r1\",\"object\":\"chat.completion\",\"created\":5,\"model\":\"g-001\","
                 "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
                 "\"ab\\\"\",\"refusal\":null,\"tool_calls\":[{\"id\":\"call_r1_0\",\"type\":"
                 "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"x\\\":2.50}\"}},"
                 "{\"id\":\"own\",\"type\":\"function\",\"function\":{\"name\":\"g\",\"arguments\":"
                 "\"{}\"}}]},\"finish_reason\":\"tool_calls\",\"logprobs\":null},{\"index\":1,"
                 "\"message\":{\"role\":\"assistant\",\"content\":null,\"refusal\":null,"
                 "\"tool_calls\":[{\"id\":\"call_r1_2\",\"type\":\"function\",\"function\":{"
                 "\"name\":\"h\",\"arguments\":\"{}\"}}]},\"finish_reason\":\"stop\",\"logprobs\":"
                 "null}],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":5,\"total_tokens\":9,"
                 "\"prompt_tokens_details\":{\"cached_tokens\":1}}}");
  /* A blocked prompt: no candidates; the caller's id and model. */
  gw_buf_reset(&out);
  assert_int_equal(gw_gemini_response(L(a, "{\"promptFeedback\":{\"blockReason\":\"SAFETY\"}}"),
                                      "id0", "g", 5, &out),
                   GW_OK);
  assert_text_eq(&out, "{\"id\":\"id0\",\"object\":\"chat.completion\",\"created\":5,\"model\":"
                       "\"g\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                       "\"content\":null,\"refusal\":null},\"finish_reason\":\"content_filter\","
                       "\"logprobs\":null}],\"usage\":{\"prompt_tokens\":0,\"completion_tokens\":0,"
                       "\"total_tokens\":0}}");
  gw_buf_reset(&out);
  assert_int_equal(gw_gemini_response(L(a, "[1]"), "id0", "g", 5, &out), GW_ERR_INVALID);
  assert_int_equal(gw_gemini_response(L(a, "{\"candidates\":[{\"content\":{\"parts\":[{"
                                           "\"functionCall\":{\"args\":{}}}]}}]}"),
                                      "id0", "g", 5, &out),
                   GW_ERR_INVALID);
  gw_buf_release(&out);
  gw_arena_free(a);
}

/* One event in, its chunk (none or one) appended to the array |all|. */
static void step(gw_gemini_stream *s, gw_arena *a, const char *ev, gw_buf *all) {
  gw_buf chunk;
  gw_buf_init(&chunk, 1 << 20);
  assert_int_equal(
      ev ? gw_gemini_stream_event(s, L(a, ev), &chunk) : gw_gemini_stream_end(s, &chunk), GW_OK);
  if (chunk.len)
    assert_int_equal(gw_buf_printf(all, "%s%s", all->len > 1 ? "," : "", chunk.data), GW_OK);
  gw_buf_release(&chunk);
}

static void test_stream(void **state) {
  (void)state;
  gw_arena *a = gw_arena_new(0, 0);
  gw_gemini_stream s;
  gw_gemini_stream_init(&s, "id0", "g", 5, true);
  gw_buf all;
  gw_buf_init(&all, 1 << 20);
  gw_buf_appendc(&all, '[');
  step(&s, a,
       "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"He\"}]}}],\"responseId\":"
       "\"r2\",\"modelVersion\":\"g-2\"}",
       &all);
  step(&s, a,
       "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"f\","
       "\"args\":{\"k\":\"v\"}}}]}}],\"responseId\":\"other\"}",
       &all);
  step(&s, a, "{\"usageMetadata\":{\"promptTokenCount\":1}}", &all); /* no candidate: nothing */
  step(&s, a,
       "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"y\"}]},\"finishReason\":"
       "\"MAX_TOKENS\"}],\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":2}}",
       &all);
  assert_true(s.finished);
  step(&s, a, NULL, &all);
  gw_buf_appendc(&all, ']');
  assert_text_eq(
      &all, "[{\"id\":\"r2\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"g-2\","
            "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"He\"},"
            "\"finish_reason\":null,\"logprobs\":null}]},{\"id\":\"r2\",\"object\":"
            "\"chat.completion.chunk\",\"created\":5,\"model\":\"g-2\",\"choices\":[{\"index\":0,"
            "\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_r2_0\",\"type\":\"function\","
            "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"k\\\":\\\"v\\\"}\"}}]},"
            "\"finish_reason\":null,\"logprobs\":null}]},{\"id\":\"r2\",\"object\":"
            "\"chat.completion.chunk\",\"created\":5,\"model\":\"g-2\",\"choices\":[{\"index\":0,"
            "\"delta\":{\"content\":\"y\"},\"finish_reason\":\"tool_calls\",\"logprobs\":null}]},"
            "{\"id\":\"r2\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"g-2\","
            "\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,"
            "\"total_tokens\":5}}]");
  /* A prompt blocked mid-stream: one content_filter chunk, then nothing. */
  gw_gemini_stream_init(&s, "id0", "g", 5, false);
  gw_buf_reset(&all);
  gw_buf_appendc(&all, '[');
  step(&s, a, "{\"promptFeedback\":{\"blockReason\":\"SAFETY\"}}", &all);
  step(&s, a, "{\"promptFeedback\":{\"blockReason\":\"SAFETY\"}}", &all);
  step(&s, a, NULL, &all); /* no usage asked for */
  gw_buf_appendc(&all, ']');
  assert_text_eq(&all, "[{\"id\":\"id0\",\"object\":\"chat.completion.chunk\",\"created\":5,"
                       "\"model\":\"g\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":"
                       "\"content_filter\",\"logprobs\":null}]}]");
  gw_buf chunk;
  gw_buf_init(&chunk, 1 << 20);
  assert_int_equal(gw_gemini_stream_event(&s, L(a, "\"x\""), &chunk), GW_ERR_INVALID);
  /* A call it cannot name fails the event, and leaves nothing behind. */
  assert_int_equal(gw_gemini_stream_event(&s,
                                          L(a, "{\"candidates\":[{\"content\":{\"parts\":[{"
                                               "\"text\":\"a\"},{\"functionCall\":{}}]}}]}"),
                                          &chunk),
                   GW_ERR_INVALID);
  assert_int_equal(chunk.len, 0);
  gw_buf_release(&chunk);
  gw_buf_release(&all);
  gw_arena_free(a);
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
