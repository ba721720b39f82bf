/* The Anthropic provider's pure translations: OpenAI chat request → Messages
 * request, Message → chat.completion, and the stream events → chunks. Each
 * case is a pair of JSON documents compared with json_equal. */
#include "support.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/status.h"
#include "pipeline/provider_anthropic.h"
#include "transcoder/json_lite.h"

static json_t *J(const char *s) {
  json_error_t e;
  json_t *j = json_loads(s, 0, &e);
  if (!j)
    fail_msg("bad test JSON: %s: %s", e.text, s);
  return j;
}

/* |s| parsed the way the provider parses what the upstream sends. */
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
  const char *in, *model;
  int stream;
  const char *want;
} requests[] = {
    /* system + user, sampling knobs, stop as a string, max_tokens default */
    {"{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"S\"},"
     "{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0,\"stop\":\"X\"}",
     NULL, 0,
     "{\"model\":\"m\",\"system\":\"S\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
     "\"max_tokens\":4096,\"temperature\":0,\"stop_sequences\":[\"X\"]}"},
    /* two system parts stay blocks; max_completion_tokens wins; upstream model */
    {"{\"model\":\"pub\",\"messages\":[{\"role\":\"system\",\"content\":\"A\"},"
     "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"B\"}]},"
     "{\"role\":\"user\",\"content\":\"q\"}],\"max_tokens\":5,\"max_completion_tokens\":7}",
     "claude-x", 1,
     "{\"model\":\"claude-x\",\"system\":[{\"type\":\"text\",\"text\":\"A\"},{\"type\":\"text\","
     "\"text\":\"B\"}],\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],\"max_tokens\":7,"
     "\"stream\":true}"},
    /* images: data URL → base64 source, http URL → url source */
    {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
     "\"see\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/jpeg;base64,QUJD\"}},"
     "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/y.png\"}}]}]}",
     NULL, 0,
     "{\"model\":\"m\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":["
     "{\"type\":\"text\",\"text\":\"see\"},{\"type\":\"image\",\"source\":{\"type\":\"base64\","
     "\"media_type\":\"image/jpeg\",\"data\":\"QUJD\"}},{\"type\":\"image\",\"source\":{\"type\":"
     "\"url\",\"url\":\"https://x/y.png\"}}]}]}"},
    /* tools, tool_choice required, assistant tool call, two tool results merged */
    {"{\"model\":\"m\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
     "\"tool_choice\":\"required\",\"messages\":[{\"role\":\"user\",\"content\":\"go\"},"
     "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"t1\",\"type\":"
     "\"function\","
     "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}},{\"id\":\"t2\",\"type\":"
     "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]},"
     "{\"role\":\"tool\",\"tool_call_id\":\"t1\",\"content\":\"r1\"},"
     "{\"role\":\"tool\",\"tool_call_id\":\"t2\",\"content\":[{\"type\":\"text\",\"text\":\"r2\"}]}"
     ","
     "{\"role\":\"user\",\"content\":\"and?\"}]}",
     NULL, 0,
     "{\"model\":\"m\",\"max_tokens\":4096,\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":"
     "\"object\",\"properties\":{}}}],\"tool_choice\":{\"type\":\"any\"},\"messages\":["
     "{\"role\":\"user\",\"content\":\"go\"},{\"role\":\"assistant\",\"content\":[{\"type\":"
     "\"tool_use\",\"id\":\"t1\",\"name\":\"f\",\"input\":{\"a\":1}},{\"type\":\"tool_use\",\"id\":"
     "\"t2\",\"name\":\"f\",\"input\":{}}]},{\"role\":\"user\",\"content\":[{\"type\":"
     "\"tool_result\",\"tool_use_id\":\"t1\",\"content\":\"r1\"},{\"type\":\"tool_result\","
     "\"tool_use_id\":\"t2\",\"content\":\"r2\"},{\"type\":\"text\",\"text\":\"and?\"}]}]}"},
    /* named tool choice, no parallel calls, user → metadata */
    {"{\"model\":\"m\",\"user\":\"u1\",\"parallel_tool_calls\":false,\"tool_choice\":{\"type\":"
     "\"function\",\"function\":{\"name\":\"f\"}},\"messages\":[{\"role\":\"user\",\"content\":"
     "\"x\"}]}",
     NULL, 0,
     "{\"model\":\"m\",\"max_tokens\":4096,\"metadata\":{\"user_id\":\"u1\"},\"tool_choice\":{"
     "\"type\":\"tool\",\"name\":\"f\",\"disable_parallel_tool_use\":true},\"messages\":[{"
     "\"role\":\"user\",\"content\":\"x\"}]}"},
    /* Same-role turns merge around a system message (plain strings become
     * text blocks, an empty one too); an assistant turn with no content and no
     * calls has an empty block list; tools with description and schema; stop
     * as a list; numbers as written; no parallel calls with tools: auto. */
    {"{\"model\":\"m\",\"temperature\":0.70,\"top_k\":5,\"top_p\":1e-1,\"stop\":[\"a\","
     "\"b\"],\"parallel_tool_calls\":false,\"tools\":[{\"type\":\"function\",\"function\":{"
     "\"name\":\"g\",\"description\":\"G \\\"q\\\"\",\"parameters\":{\"type\":\"object\","
     "\"properties\":{\"n\":{\"type\":\"number\",\"maximum\":1.5e3}}}}}],\"messages\":["
     "{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"system\",\"content\":\"\"},"
     "{\"role\":\"user\",\"content\":\"\"},{\"role\":\"user\",\"content\":[{\"type\":"
     "\"text\",\"text\":\"\"},{\"type\":\"text\",\"text\":\"b\\n\"}]},{\"role\":"
     "\"assistant\",\"content\":null}]}",
     NULL, 0,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
     "\"text\":\"a\"},{\"type\":\"text\",\"text\":\"\"},{\"type\":\"text\",\"text\":"
     "\"b\\n\"}]},{\"role\":\"assistant\",\"content\":[]}],\"max_tokens\":4096,"
     "\"temperature\":0.7,\"top_k\":5,\"top_p\":0.1,\"stop_sequences\":[\"a\",\"b\"],"
     "\"tools\":[{\"name\":\"g\",\"description\":\"G \\\"q\\\"\",\"input_schema\":{"
     "\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"number\",\"maximum\":1.5e3}}}}],"
     "\"tool_choice\":{\"type\":\"auto\",\"disable_parallel_tool_use\":true}}"},
    /* tool_choice none: no disable flag */
    {"{\"model\":\"m\",\"tool_choice\":\"none\",\"parallel_tool_calls\":false,"
     "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
     NULL, 0,
     "{\"model\":\"m\",\"max_tokens\":4096,\"tool_choice\":{\"type\":\"none\"},"
     "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"},
};

static void test_request(void **state) {
  (void)state;
  gw_arena *a = gw_arena_new(0, 0);
  for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
    gw_buf out;
    gw_buf_init(&out, 1 << 20);
    char err[200] = "";
    int rc = gw_anthropic_request(L(a, requests[i].in), requests[i].model, requests[i].stream, a,
                                  &out, err, sizeof err);
    if (rc != GW_OK)
      fail_msg("case %zu: %d %s", i, rc, err);
    json_t *got = J(out.data);
    assert_json_eq(got, requests[i].want);
    json_decref(got);
    gw_buf_release(&out);
  }
  gw_arena_free(a);
}

static void test_request_invalid(void **state) {
  (void)state;
  static const char *const bad[] = {
      "{\"messages\":[]}",
      "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":3}",
      "{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
      "{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\",\"function\":{"
      "\"name\":\"f\",\"arguments\":\"[1]\"}}]}]}",
      "{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\",\"function\":{"
      "\"name\":\"f\",\"arguments\":\"{\\\"a\\\":\"}}]}]}",
      "{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"name\":\"f\"}}]}]}",
      "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\"}]}]}",
      "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{}}]}]"
      "}",
      "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}",
      "{\"messages\":[{\"content\":\"x\"}]}",
      "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"function\":{}}]}",
      "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":{\"type\":"
      "\"function\"}}",
  };
  gw_arena *a = gw_arena_new(0, 0);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    gw_buf out;
    gw_buf_init(&out, 1 << 20);
    char err[200] = "";
    if (gw_anthropic_request(L(a, bad[i]), "m", 0, a, &out, err, sizeof err) != GW_ERR_INVALID)
      fail_msg("case %zu was taken: %s", i, bad[i]);
    assert_true(err[0] != '\0');
    gw_buf_release(&out);
  }
  gw_arena_free(a);
}

/* The translation's output must be JSON that parses, and equal |want|. */
static void assert_text_eq(const gw_buf *got, const char *want) {
  json_t *g = J(got->data ? got->data : "");
  assert_json_eq(g, want);
  json_decref(g);
}

static void test_response(void **state) {
  (void)state;
  gw_arena *a = gw_arena_new(0, 0);
  const gw_jval *in = L(
      a, "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"c\","
         "\"content\":[{\"type\":\"text\",\"text\":\"Hi \"},{\"type\":\"text\",\"text\":"
         "\"there \\\"q\\\"\\n\"},{\"type\":\"tool_use\",\"id\":\"tu\",\"name\":\"f\",\"input\":"
         "{\"k\":[1,2.50,-3e2,true,null,\"s\\u00e9\\\\\"],\"o\":{}}},{\"type\":\"thinking\","
         "\"thinking\":\"hmm\"},{\"type\":\"tool_use\",\"id\":\"tu2\",\"name\":\"g\",\"input\":{}}]"
         ",\"stop_reason\":\"tool_use\",\"usage\":{\"input_tokens\":10,\"output_tokens\":3,"
         "\"cache_read_input_tokens\":4,\"cache_creation_input_tokens\":2}}");
  gw_buf out;
  gw_buf_init(&out, 1 << 20);
  assert_int_equal(gw_anthropic_response(in, 1700000000, &out), GW_OK);
  assert_text_eq(&out,
                 "{\"id\":\"msg_1\",\"object\":\"chat.completion\",\"created\":1700000000,"
                 "\"model\":\"c\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                 "\"content\":\"Hi there \\\"q\\\"\\n\",\"refusal\":null,\"tool_calls\":[{\"id\":"
                 "\"tu\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
                 "\"{\\\"k\\\":[1,2.50,-3e2,true,null,\\\"s\\u00e9\\\\\\\\\\\"],\\\"o\\\":{}}\"}},"
                 "{\"id\":\"tu2\",\"type\":\"function\",\"function\":{\"name\":\"g\",\"arguments\":"
                 "\"{}\"}}]},\"finish_reason\":\"tool_calls\",\"logprobs\":null}],"
                 "\"usage\":{\"prompt_tokens\":16,\"completion_tokens\":3,\"total_tokens\":19,"
                 "\"prompt_tokens_details\":{\"cached_tokens\":4}}}");
  /* No text block: content is null; no stop_reason: "stop"; no usage: zeros. */
  gw_buf_reset(&out);
  assert_int_equal(
      gw_anthropic_response(L(a, "{\"id\":\"m\",\"model\":\"c\",\"content\":[]}"), 5, &out), GW_OK);
  assert_text_eq(&out,
                 "{\"id\":\"m\",\"object\":\"chat.completion\",\"created\":5,\"model\":\"c\","
                 "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
                 "null,\"refusal\":null},\"finish_reason\":\"stop\",\"logprobs\":null}],"
                 "\"usage\":{\"prompt_tokens\":0,\"completion_tokens\":0,\"total_tokens\":0}}");
  /* Not a message, or a tool call it cannot name. */
  const char *bad[] = {"{\"type\":\"message\"}", "{\"id\":\"m\",\"content\":[]}",
                       "{\"id\":1,\"model\":\"c\",\"content\":[]}",
                       "{\"id\":\"m\",\"model\":\"c\",\"content\":{}}",
                       "{\"id\":\"m\",\"model\":\"c\",\"content\":[{\"type\":\"tool_use\","
                       "\"name\":\"f\",\"input\":{}}]}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    gw_buf_reset(&out);
    assert_int_equal(gw_anthropic_response(L(a, bad[i]), 0, &out), GW_ERR_INVALID);
  }
  gw_buf_release(&out);
  gw_arena_free(a);
}

static void test_finish_reasons(void **state) {
  (void)state;
  assert_string_equal(gw_anthropic_finish_reason("end_turn"), "stop");
  assert_string_equal(gw_anthropic_finish_reason("stop_sequence"), "stop");
  assert_string_equal(gw_anthropic_finish_reason("max_tokens"), "length");
  assert_string_equal(gw_anthropic_finish_reason("tool_use"), "tool_calls");
  assert_string_equal(gw_anthropic_finish_reason("refusal"), "content_filter");
  assert_null(gw_anthropic_finish_reason(NULL));
  assert_int_equal(gw_anthropic_http_status("overloaded_error"), 529);
  assert_int_equal(gw_anthropic_http_status("rate_limit_error"), 429);
  assert_int_equal(gw_anthropic_http_status("who_knows"), 500);
}

/* The documented event sequence of a streamed text + tool_use answer. */
static const struct {
  const char *event, *chunks;
} stream[] = {
    {"{\"type\":\"message_start\",\"message\":{\"id\":\"msg_s\",\"type\":\"message\",\"role\":"
     "\"assistant\",\"content\":[],\"model\":\"c\",\"stop_reason\":null,\"usage\":{"
     "\"input_tokens\":25,\"output_tokens\":1}}}",
     "[{\"id\":\"msg_s\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"c\","
     "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
     "\"finish_reason\":null,\"logprobs\":null}]}]"},
    {"{\"type\":\"ping\"}", "[]"},
    {"{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
     "\"text\":\"\"}}",
     "[]"},
    {"{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":"
     "\"Hello\"}}",
     "[{\"id\":\"msg_s\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"c\","
     "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"finish_reason\":null,"
     "\"logprobs\":null}]}]"},
    {"{\"type\":\"content_block_stop\",\"index\":0}", "[]"},
    {"{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\","
     "\"id\":\"toolu_1\",\"name\":\"f\",\"input\":{}}}",
     "[{\"id\":\"msg_s\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"c\","
     "\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"toolu_1\","
     "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]},"
     "\"finish_reason\":null,\"logprobs\":null}]}]"},
    {"{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
     "\"partial_json\":\"{\\\"a\\\":\"}}",
     "[{\"id\":\"msg_s\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"c\","
     "\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{"
     "\"arguments\":\"{\\\"a\\\":\"}}]},\"finish_reason\":null,\"logprobs\":null}]}]"},
    {"{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},"
     "\"usage\":{\"output_tokens\":15}}",
     "[{\"id\":\"msg_s\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"c\","
     "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\",\"logprobs\":null}]}"
     "]"},
    {"{\"type\":\"message_stop\"}",
     "[{\"id\":\"msg_s\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"c\","
     "\"choices\":[],\"usage\":{\"prompt_tokens\":25,\"completion_tokens\":15,\"total_tokens\":40}}"
     "]"},
};

/* One event in, its chunks (a JSON array of none or one) compared. */
static int stream_step(gw_anthropic_stream *s, gw_arena *a, const char *event, const char *want) {
  gw_buf chunk;
  gw_buf_init(&chunk, 1 << 20);
  int rc = gw_anthropic_stream_event(s, L(a, event), &chunk);
  if (want) {
    gw_buf arr;
    gw_buf_init(&arr, 1 << 20);
    assert_int_equal(gw_buf_printf(&arr, "[%s]", chunk.len ? chunk.data : ""), GW_OK);
    assert_text_eq(&arr, want);
    gw_buf_release(&arr);
  } else {
    assert_int_equal(chunk.len, 0);
  }
  gw_buf_release(&chunk);
  return rc;
}

static void test_stream(void **state) {
  (void)state;
  gw_arena *a = gw_arena_new(0, 0);
  gw_anthropic_stream s;
  gw_anthropic_stream_init(&s, 7, true);
  for (size_t i = 0; i < sizeof(stream) / sizeof(stream[0]); i++)
    assert_int_equal(stream_step(&s, a, stream[i].event, stream[i].chunks), GW_OK);
  assert_true(s.finished);

  assert_int_equal(
      stream_step(&s, a,
                  "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
                  "\"O\"}}",
                  NULL),
      GW_ERR_STATE);
  assert_int_equal(stream_step(&s, a, "[1]", NULL), GW_ERR_INVALID);
  assert_int_equal(stream_step(&s, a, "{\"index\":0}", NULL), GW_ERR_INVALID);
  /* What a delta's type needs must be there. */
  assert_int_equal(stream_step(&s, a,
                               "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                               "\"text_delta\"}}",
                               NULL),
                   GW_ERR_INVALID);
  assert_int_equal(stream_step(&s, a,
                               "{\"type\":\"content_block_start\",\"index\":2,\"content_block\":{"
                               "\"type\":\"tool_use\",\"name\":\"f\"}}",
                               NULL),
                   GW_ERR_INVALID);
  /* A delta for a block that is not a tool call, and unknown deltas: nothing. */
  assert_int_equal(stream_step(&s, a,
                               "{\"type\":\"content_block_delta\",\"index\":40,\"delta\":{\"type\":"
                               "\"input_json_delta\",\"partial_json\":\"x\"}}",
                               "[]"),
                   GW_OK);
  assert_int_equal(stream_step(&s, a,
                               "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                               "\"thinking_delta\",\"thinking\":\"x\"}}",
                               "[]"),
                   GW_OK);
  /* Text that needs escaping, in a block's start. */
  assert_int_equal(
      stream_step(&s, a,
                  "{\"type\":\"content_block_start\",\"index\":3,\"content_block\":{"
                  "\"type\":\"text\",\"text\":\"a\\\"b\\u0001\"}}",
                  "[{\"id\":\"msg_s\",\"object\":\"chat.completion.chunk\",\"created\":"
                  "7,\"model\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
                  "\"a\\\"b\\u0001\"},\"finish_reason\":null,\"logprobs\":null}]}]"),
      GW_OK);
  gw_arena_free(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_request),  cmocka_unit_test(test_request_invalid),
      cmocka_unit_test(test_response), cmocka_unit_test(test_finish_reasons),
      cmocka_unit_test(test_stream),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
