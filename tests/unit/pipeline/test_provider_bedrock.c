/* The Bedrock provider's pure translations: OpenAI chat request → Converse,
 * Converse → chat.completion, ConverseStream events → chunks, model ids as
 * path segments. */
#include "support.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/status.h"
#include "pipeline/provider_bedrock.h"
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

/* The output must be JSON that parses, and equal |want|. */
static void assert_text_eq(const gw_buf *got, const char *want) {
  json_t *g = J(got->data ? got->data : "");
  assert_json_eq(g, want);
  json_decref(g);
}

static void test_request(void **state) {
  (void)state;
  gw_arena *a = gw_arena_new(0, 0);
  gw_buf out;
  gw_buf_init(&out, 1 << 20);
  char err[200] = "";
  int rc = gw_bedrock_request(
      L(a, "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"S\"},"
           "{\"role\":\"user\",\"content\":\"go\"},{\"role\":\"assistant\",\"content\":null,"
           "\"tool_calls\":[{\"id\":\"t1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
           "\"arguments\":\"{}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"t1\",\"content\":"
           "\"r\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
           "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}},"
           "\"max_tokens\":5,\"stop\":\"x\"}"),
      a, &out, err, sizeof err);
  assert_int_equal(rc, GW_OK);
  assert_text_eq(&out,
                 "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"go\"}]},{\"role\":"
                 "\"assistant\",\"content\":[{\"toolUse\":{\"toolUseId\":\"t1\",\"name\":\"f\","
                 "\"input\":{}}}]},{\"role\":\"user\",\"content\":[{\"toolResult\":{\"toolUseId\":"
                 "\"t1\",\"content\":[{\"text\":\"r\"}]}}]}],\"system\":[{\"text\":\"S\"}],"
                 "\"inferenceConfig\":{\"maxTokens\":5,\"stopSequences\":[\"x\"]},\"toolConfig\":{"
                 "\"tools\":[{\"toolSpec\":{\"name\":\"f\",\"inputSchema\":{\"json\":{\"type\":"
                 "\"object\",\"properties\":{}}}}}],\"toolChoice\":{\"tool\":{\"name\":\"f\"}}}}");
  /* Turns merge around system messages (empty ones give no block);
   * parallel tool results share a turn; knobs as written; a schema and a
   * description; tool_choice none sends no tools; a data: image. */
  gw_buf_reset(&out);
  rc = gw_bedrock_request(
      L(a,
        "{\"temperature\":0.50,\"top_p\":1,\"max_completion_tokens\":9,\"max_tokens\":5,"
        "\"stop\":[\"a\",\"b\"],\"tools\":[{\"function\":{\"name\":\"f\"}}],\"tool_choice\":"
        "\"none\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"\"},{\"type\":\"text\",\"text\":\"q\\\"\"},{\"type\":\"image_url\",\"image_url\":{"
        "\"url\":\"data:image/jpg;base64,QUJD\"}}]},{\"role\":\"developer\",\"content\":\"\"},"
        "{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"A\"},{\"type\":"
        "\"text\",\"text\":\"B\"}]},{\"role\":\"user\",\"content\":\"more\"},{\"role\":"
        "\"assistant\",\"tool_calls\":[{\"id\":\"1\",\"function\":{\"name\":\"f\",\"arguments\":"
        "\"{\\\"x\\\":1.50}\"}},{\"id\":\"2\",\"function\":{\"name\":\"g\"}}]},{\"role\":\"tool\","
        "\"tool_call_id\":\"1\",\"content\":\"r1\"},{\"role\":\"tool\",\"tool_call_id\":\"2\","
        "\"content\":\"r2\"}]}"),
      a, &out, err, sizeof err);
  if (rc != GW_OK)
    fail_msg("%d %s", rc, err);
  assert_text_eq(
      &out, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"q\\\"\"},{\"image\":{"
            "\"format\":\"jpeg\",\"source\":{\"bytes\":\"QUJD\"}}},{\"text\":\"more\"}]},{\"role\":"
            "\"assistant\",\"content\":[{\"toolUse\":{\"toolUseId\":\"1\",\"name\":\"f\",\"input\":"
            "{\"x\":1.50}}},{\"toolUse\":{\"toolUseId\":\"2\",\"name\":\"g\",\"input\":{}}}]},"
            "{\"role\":\"user\",\"content\":[{\"toolResult\":{\"toolUseId\":\"1\",\"content\":[{"
            "\"text\":\"r1\"}]}},{\"toolResult\":{\"toolUseId\":\"2\",\"content\":[{\"text\":"
            "\"r2\"}]}}]}],\"system\":[{\"text\":\"AB\"}],\"inferenceConfig\":{\"maxTokens\":9,"
            "\"temperature\":0.5,\"topP\":1,\"stopSequences\":[\"a\",\"b\"]}}");
  static const char *const bad[] = {
      "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{"
      "\"url\":\"https://x/y.png\"}}]}]}",
      "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{"
      "\"url\":\"data:image/tiff;base64,QUJD\"}}]}]}",
      "{\"messages\":[]}",
      "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2}",
      "{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
      "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}",
      "{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\",\"function\":{"
      "\"name\":\"f\",\"arguments\":\"[1]\"}}]}]}",
      "{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"name\":\"f\"}}]}]}",
      "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"function\":{}}]}",
      "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"function\":{\"name\":"
      "\"f\"}}],\"tool_choice\":{\"type\":\"function\"}}",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    gw_buf_reset(&out);
    err[0] = '\0';
    if (gw_bedrock_request(L(a, bad[i]), a, &out, err, sizeof err) != GW_ERR_INVALID)
      fail_msg("case %zu was taken: %s", i, bad[i]);
    assert_true(err[0]);
  }
  gw_buf_release(&out);
  gw_arena_free(a);
}

static void test_response_and_stream(void **state) {
  (void)state;
  gw_arena *a = gw_arena_new(0, 0);
  gw_buf out;
  gw_buf_init(&out, 1 << 20);
  assert_int_equal(
      gw_bedrock_response(
          L(a, "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":[{\"text\":\"hi\"},"
               "{\"text\":\" there\"},{\"toolUse\":{\"toolUseId\":\"t\",\"name\":\"f\",\"input\":{"
               "\"k\":[1e2]}}}]}},\"stopReason\":\"max_tokens\",\"usage\":{\"inputTokens\":3,"
               "\"outputTokens\":2,\"cacheReadInputTokens\":4,\"totalTokens\":9}}"),
          "id1", "m", 9, &out),
      GW_OK);
  assert_text_eq(
      &out, "{\"id\":\"id1\",\"object\":\"chat.completion\",\"created\":9,\"model\":\"m\","
            "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
            "\"hi there\",\"refusal\":null,\"tool_calls\":[{\"id\":\"t\",\"type\":"
            "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"k\\\":[1e2]}\"}}]},"
            "\"finish_reason\":\"length\",\"logprobs\":null}],\"usage\":{\"prompt_tokens\":7,"
            "\"completion_tokens\":2,\"total_tokens\":9,\"prompt_tokens_details\":{"
            "\"cached_tokens\":4}}}");
  gw_buf_reset(&out);
  assert_int_equal(gw_bedrock_response(L(a, "{\"output\":{}}"), "id1", "m", 9, &out),
                   GW_ERR_INVALID);
  assert_int_equal(gw_bedrock_response(L(a, "{\"output\":{\"message\":{\"content\":[{"
                                            "\"toolUse\":{\"name\":\"f\"}}]}}}"),
                                       "id1", "m", 9, &out),
                   GW_ERR_INVALID);
  assert_int_equal(out.len, 0);

  gw_bedrock_stream s;
  gw_bedrock_stream_init(&s, "id1", "m", 9, true);
  static const struct {
    const char *type, *ev, *want; /* want: the chunk, NULL for none */
  } evs[] = {
      {"messageStart", "{\"role\":\"assistant\"}",
       "{\"id\":\"id1\",\"object\":\"chat.completion.chunk\",\"created\":9,\"model\":\"m\","
       "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
       "\"finish_reason\":null,\"logprobs\":null}]}"},
      {"contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"a\\nb\"}}",
       "{\"id\":\"id1\",\"object\":\"chat.completion.chunk\",\"created\":9,\"model\":\"m\","
       "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\\nb\"},\"finish_reason\":null,"
       "\"logprobs\":null}]}"},
      {"contentBlockStart",
       "{\"contentBlockIndex\":1,\"start\":{\"toolUse\":{\"toolUseId\":\"u\",\"name\":\"f\"}}}",
       "{\"id\":\"id1\",\"object\":\"chat.completion.chunk\",\"created\":9,\"model\":\"m\","
       "\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"u\",\"type\":"
       "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]},\"finish_reason\":null,"
       "\"logprobs\":null}]}"},
      {"contentBlockDelta", "{\"contentBlockIndex\":1,\"delta\":{\"toolUse\":{\"input\":\"{}\"}}}",
       "{\"id\":\"id1\",\"object\":\"chat.completion.chunk\",\"created\":9,\"model\":\"m\","
       "\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{"
       "\"arguments\":\"{}\"}}]},\"finish_reason\":null,\"logprobs\":null}]}"},
      {"contentBlockDelta", "{\"contentBlockIndex\":7,\"delta\":{\"toolUse\":{\"input\":\"x\"}}}",
       NULL},
      {"contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"reasoningContent\":{}}}", NULL},
      {"contentBlockStop", "{\"contentBlockIndex\":1}", NULL},
      {"messageStop", "{\"stopReason\":\"tool_use\"}",
       "{\"id\":\"id1\",\"object\":\"chat.completion.chunk\",\"created\":9,\"model\":\"m\","
       "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\",\"logprobs\":"
       "null}]}"},
      {"metadata", "{\"usage\":{\"inputTokens\":4,\"outputTokens\":6}}",
       "{\"id\":\"id1\",\"object\":\"chat.completion.chunk\",\"created\":9,\"model\":\"m\","
       "\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":6,\"total_tokens\":"
       "10}}"},
  };
  for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
    gw_buf_reset(&out);
    assert_int_equal(gw_bedrock_stream_event(&s, evs[i].type, L(a, evs[i].ev), &out), GW_OK);
    if (evs[i].want)
      assert_text_eq(&out, evs[i].want);
    else
      assert_int_equal(out.len, 0);
  }
  assert_true(s.finished);
  gw_buf_reset(&out);
  assert_int_equal(gw_bedrock_stream_event(&s, "contentBlockStart",
                                           L(a, "{\"start\":{\"toolUse\":{\"name\":\"f\"}}}"),
                                           &out),
                   GW_ERR_INVALID);
  assert_int_equal(gw_bedrock_stream_event(&s, "messageStart", L(a, "[]"), &out), GW_ERR_INVALID);
  assert_int_equal(out.len, 0);
  gw_buf_release(&out);
  gw_arena_free(a);
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
