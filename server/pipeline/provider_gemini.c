/* Gemini / Vertex AI provider: translation both ways, the service-account
 * token, and the exchange. */
#include "pipeline/provider_gemini.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/jwt_sign.h"
#include "core/log.h"
#include "engine/curl_loop.h"
#include "pipeline/json_text.h"
#include "pipeline/upstream_http.h"
#include "transcoder/json_pb.h"

/* ---- request: OpenAI → Gemini ------------------------------------------------------ */

static int fail(char *err, size_t errlen, const char *fmt, const char *arg) {
  snprintf(err, errlen, fmt, arg ? arg : "");
  return GW_ERR_INVALID;
}

static const char *mime_from_url(const char *url) {
  const char *dot = strrchr(url, '.');
  if (dot && (strcasecmp(dot, ".png") == 0))
    return "image/png";
  if (dot && strcasecmp(dot, ".webp") == 0)
    return "image/webp";
  if (dot && strcasecmp(dot, ".gif") == 0)
    return "image/gif";
  if (dot && strcasecmp(dot, ".pdf") == 0)
    return "application/pdf";
  return "image/jpeg";
}

/* Turns speculatively opened are taken back when they get nothing. */
static void truncate_to(gw_buf *b, size_t len) {
  if (b->data) {
    b->len = len;
    b->data[len] = '\0';
  }
}

/* The Gemini parts of an OpenAI content: a string that is not empty is one
 * text part; text and image parts of a list one part each. */
static int put_parts(gw_buf *b, const gw_jval *content, size_t *n, char *err, size_t errlen) {
  if (gw_jt_is_str(content)) {
    if (!content->len)
      return GW_OK;
    int rc = gw_jt_sep(b, n);
    if (rc == GW_OK)
      rc = GW_JT_PUT(b, "{\"text\":");
    if (rc == GW_OK)
      rc = gw_jt_put_str(b, content);
    return rc == GW_OK ? gw_buf_appendc(b, '}') : rc;
  }
  int rc = GW_OK;
  for (size_t i = 0; rc == GW_OK && i < gw_jt_array_len(content); i++) {
    const gw_jval *p = &content->u.elems[i], *type = GW_JT_GET(p, "type");
    if (GW_JT_STR_IS(type, "text")) {
      const gw_jval *t = GW_JT_GET(p, "text");
      if (!gw_jt_is_str(t))
        continue;
      rc = gw_jt_sep(b, n);
      if (rc == GW_OK)
        rc = GW_JT_PUT(b, "{\"text\":");
      if (rc == GW_OK)
        rc = gw_jt_put_str(b, t);
      if (rc == GW_OK)
        rc = gw_buf_appendc(b, '}');
    } else if (GW_JT_STR_IS(type, "image_url")) {
      const char *url = gw_jt_str(GW_JT_GET(GW_JT_GET(p, "image_url"), "url")), *media, *data;
      size_t ml;
      if (!url)
        return fail(err, errlen, "image_url part without a url", NULL);
      rc = gw_jt_sep(b, n);
      if (rc == GW_OK && gw_upstream_data_url(url, &media, &ml, &data)) {
        rc = GW_JT_PUT(b, "{\"inlineData\":{\"mimeType\":");
        if (rc == GW_OK)
          rc = gw_buf_append_json_string(b, media, ml);
        if (rc == GW_OK)
          rc = GW_JT_PUT(b, ",\"data\":");
        if (rc == GW_OK)
          rc = gw_jt_put_cstr(b, data);
      } else if (rc == GW_OK) {
        rc = GW_JT_PUT(b, "{\"fileData\":{\"mimeType\":");
        if (rc == GW_OK)
          rc = gw_jt_put_cstr(b, mime_from_url(url));
        if (rc == GW_OK)
          rc = GW_JT_PUT(b, ",\"fileUri\":");
        if (rc == GW_OK)
          rc = gw_jt_put_cstr(b, url);
      }
      if (rc == GW_OK)
        rc = GW_JT_PUT(b, "}}");
    } else {
      return fail(err, errlen, "content part type %s is not supported by Gemini", gw_jt_str(type));
    }
  }
  return rc;
}

/* The function name of tool call |id| in the assistant turns of |msgs|. */
static const gw_jval *tool_name(const gw_jval *msgs, const gw_jval *id) {
  for (size_t i = 0; i < msgs->len; i++) {
    const gw_jval *calls = GW_JT_GET(&msgs->u.elems[i], "tool_calls");
    for (size_t k = 0; k < gw_jt_array_len(calls); k++) {
      const gw_jval *tc = &calls->u.elems[k], *tid = GW_JT_GET(tc, "id");
      if (gw_jt_is_str(tid) && tid->len == id->len && memcmp(tid->u.str, id->u.str, id->len) == 0)
        return GW_JT_GET(GW_JT_GET(tc, "function"), "name");
    }
  }
  return NULL;
}

/* The parts |m| adds to its turn. */
static int put_message_parts(gw_buf *b, const gw_jval *msgs, const gw_jval *m, size_t *n,
                             gw_arena *a, char *err, size_t errlen) {
  const gw_jval *content = GW_JT_GET(m, "content");
  if (GW_JT_STR_IS(GW_JT_GET(m, "role"), "tool")) {
    const gw_jval *id = GW_JT_GET(m, "tool_call_id");
    const gw_jval *name = gw_jt_is_str(id) ? tool_name(msgs, id) : NULL;
    if (!gw_jt_is_str(name))
      return fail(err, errlen, "tool message answers no earlier tool call", NULL);
    int rc = gw_jt_sep(b, n);
    if (rc == GW_OK)
      rc = GW_JT_PUT(b, "{\"functionResponse\":{\"name\":");
    if (rc == GW_OK)
      rc = gw_jt_put_str(b, name);
    if (rc == GW_OK)
      rc = GW_JT_PUT(b, ",\"response\":{\"content\":");
    if (rc == GW_OK)
      rc = gw_jt_put_content_text(b, content);
    return rc == GW_OK ? GW_JT_PUT(b, "}}}") : rc;
  }
  int rc = put_parts(b, content, n, err, errlen);
  /* (Gemini's calls carry no id) */
  static const gw_jt_call_shape call = {"{\"functionCall\":{\"name\":", NULL, ",\"args\":", "}}"};
  if (rc == GW_OK)
    rc = gw_jt_put_tool_calls(b, GW_JT_GET(m, "tool_calls"), &call, n, a, err, errlen);
  return rc;
}

/* The turns, alternating (gw_jt_turns): consecutive messages on one side
 * share a turn; system messages go to the system instruction. */
static int put_turn(gw_jt_writer *t, const gw_jval *msgs, size_t from, size_t to, gw_jt_role side) {
  gw_buf *b = t->b;
  size_t parts = 0;
  int rc = gw_jt_sep(b, &t->n);
  if (rc == GW_OK)
    rc = side == GW_JT_USER ? GW_JT_PUT(b, "{\"role\":\"user\",\"parts\":[")
                            : GW_JT_PUT(b, "{\"role\":\"model\",\"parts\":[");
  for (size_t k = from; rc == GW_OK && k < to; k++)
    if (!gw_jt_is_system(&msgs->u.elems[k]))
      rc = put_message_parts(b, msgs, &msgs->u.elems[k], &parts, t->a, t->err, t->errlen);
  return rc == GW_OK ? GW_JT_PUT(b, "]}") : rc;
}

static int put_contents(gw_buf *b, const gw_jval *msgs, gw_arena *a, char *err, size_t errlen) {
  gw_jt_writer t = {b, 0, a, err, errlen};
  int rc = GW_JT_PUT(b, "\"contents\":[");
  if (rc == GW_OK) /* (a tool message's id is checked with its answer) */
    rc = gw_jt_turns(msgs, "Gemini", false, put_turn, &t);
  return rc == GW_OK ? gw_buf_appendc(b, ']') : rc;
}

static int put_system(gw_buf *b, const gw_jval *msgs, char *err, size_t errlen) {
  size_t at = b->len, parts = 0;
  int rc = GW_JT_PUT(b, ",\"systemInstruction\":{\"parts\":[");
  for (size_t i = 0; rc == GW_OK && i < msgs->len; i++) {
    if (gw_jt_is_system(&msgs->u.elems[i]))
      rc = put_parts(b, GW_JT_GET(&msgs->u.elems[i], "content"), &parts, err, errlen);
  }
  if (rc == GW_OK && !parts)
    truncate_to(b, at);
  else if (rc == GW_OK)
    rc = GW_JT_PUT(b, "]}");
  return rc;
}

static int put_tools(gw_buf *b, const gw_jval *req, char *err, size_t errlen) {
  const gw_jval *tools = GW_JT_GET(req, "tools");
  int rc = GW_OK;
  if (gw_jt_array_len(tools))
    rc = GW_JT_PUT(b, ",\"tools\":[{\"functionDeclarations\":[");
  static const gw_jt_tool_shape tool = {"{\"name\":", ",\"parameters\":", NULL, "}"};
  if (rc == GW_OK)
    rc = gw_jt_put_tools(b, tools, &tool, err, errlen);
  if (rc == GW_OK && gw_jt_array_len(tools))
    rc = GW_JT_PUT(b, "]}]");
  const gw_jval *choice = GW_JT_GET(req, "tool_choice");
  if (rc != GW_OK || !choice)
    return rc;
  if (gw_jt_is_str(choice)) {
    rc = GW_JT_PUT(b, ",\"toolConfig\":{\"functionCallingConfig\":{\"mode\":");
    if (rc == GW_OK)
      rc = gw_jt_put_cstr(b, GW_JT_STR_IS(choice, "required") ? "ANY"
                             : GW_JT_STR_IS(choice, "none")   ? "NONE"
                                                              : "AUTO");
    return rc == GW_OK ? GW_JT_PUT(b, "}}") : rc;
  }
  if (!gw_jt_is_object(choice))
    return GW_OK;
  const gw_jval *name = GW_JT_GET(GW_JT_GET(choice, "function"), "name");
  if (!gw_jt_is_str(name))
    return fail(err, errlen, "tool_choice names no function", NULL);
  rc = GW_JT_PUT(b, ",\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"ANY\","
                    "\"allowedFunctionNames\":[");
  if (rc == GW_OK)
    rc = gw_jt_put_str(b, name);
  return rc == GW_OK ? GW_JT_PUT(b, "]}}") : rc;
}

/* generationConfig, when any of its knobs is set. */
static int put_generation(gw_buf *b, const gw_jval *req) {
  static const struct {
    const char *from, *to;
  } knobs[] = {{"temperature", "temperature"},
               {"top_p", "topP"},
               {"top_k", "topK"},
               {"n", "candidateCount"},
               {"seed", "seed"},
               {"presence_penalty", "presencePenalty"},
               {"frequency_penalty", "frequencyPenalty"}};
  size_t at = b->len, n = 0;
  int rc = GW_JT_PUT(b, ",\"generationConfig\":{");
  for (size_t k = 0; rc == GW_OK && k < sizeof(knobs) / sizeof(knobs[0]); k++) {
    const gw_jval *v = gw_jt_get(req, knobs[k].from, strlen(knobs[k].from));
    if (gw_jt_is_number(v) && (rc = gw_jt_sep(b, &n)) == GW_OK &&
        (rc = gw_buf_appendc(b, '"')) == GW_OK && (rc = gw_buf_appends(b, knobs[k].to)) == GW_OK &&
        (rc = GW_JT_PUT(b, "\":")) == GW_OK)
      rc = gw_buf_append(b, v->u.str, v->len);
  }
  const gw_jval *mt = GW_JT_GET(req, "max_completion_tokens");
  if (!gw_jt_is_int(mt))
    mt = GW_JT_GET(req, "max_tokens");
  if (rc == GW_OK && gw_jt_is_int(mt) && (rc = gw_jt_sep(b, &n)) == GW_OK &&
      (rc = GW_JT_PUT(b, "\"maxOutputTokens\":")) == GW_OK)
    rc = gw_buf_append(b, mt->u.str, mt->len);
  const gw_jval *stop = GW_JT_GET(req, "stop");
  if (rc == GW_OK && (gw_jt_is_str(stop) || gw_jt_array_len(stop)) &&
      (rc = gw_jt_sep(b, &n)) == GW_OK && (rc = GW_JT_PUT(b, "\"stopSequences\":")) == GW_OK) {
    if (gw_jt_is_str(stop)) {
      rc = gw_buf_appendc(b, '[');
      if (rc == GW_OK)
        rc = gw_jt_put_str(b, stop);
      if (rc == GW_OK)
        rc = gw_buf_appendc(b, ']');
    } else {
      rc = gw_jt_put_value(b, stop);
    }
  }
  const gw_jval *rf = GW_JT_GET(req, "response_format"), *rft = GW_JT_GET(rf, "type");
  if (rc == GW_OK && (GW_JT_STR_IS(rft, "json_object") || GW_JT_STR_IS(rft, "json_schema"))) {
    rc = gw_jt_sep(b, &n);
    if (rc == GW_OK)
      rc = GW_JT_PUT(b, "\"responseMimeType\":\"application/json\"");
    const gw_jval *schema = GW_JT_GET(GW_JT_GET(rf, "json_schema"), "schema");
    if (rc == GW_OK && gw_jt_is_object(schema) &&
        (rc = GW_JT_PUT(b, ",\"responseSchema\":")) == GW_OK)
      rc = gw_jt_put_value(b, schema);
  }
  if (rc == GW_OK && !n)
    truncate_to(b, at);
  else if (rc == GW_OK)
    rc = gw_buf_appendc(b, '}');
  return rc;
}

int gw_gemini_request(const gw_jval *req, gw_arena *a, gw_buf *out, char *err, size_t errlen) {
  err[0] = '\0';
  const gw_jval *msgs = GW_JT_GET(req, "messages");
  if (!gw_jt_array_len(msgs))
    return fail(err, errlen, "messages must be a non-empty list", NULL);
  int rc = gw_buf_appendc(out, '{');
  if (rc == GW_OK)
    rc = put_contents(out, msgs, a, err, errlen);
  if (rc == GW_OK)
    rc = put_system(out, msgs, err, errlen);
  if (rc == GW_OK)
    rc = put_tools(out, req, err, errlen);
  if (rc == GW_OK)
    rc = put_generation(out, req);
  return rc == GW_OK ? gw_buf_appendc(out, '}') : rc;
}

/* ---- response: Gemini → OpenAI ------------------------------------------------------ */

const char *gw_gemini_finish_reason(const char *r, bool has_calls) {
  if (!r || !*r || strcmp(r, "FINISH_REASON_UNSPECIFIED") == 0)
    return NULL;
  if (has_calls)
    return "tool_calls";
  if (strcmp(r, "MAX_TOKENS") == 0)
    return "length";
  if (strcmp(r, "SAFETY") == 0 || strcmp(r, "RECITATION") == 0 || strcmp(r, "BLOCKLIST") == 0 ||
      strcmp(r, "PROHIBITED_CONTENT") == 0 || strcmp(r, "SPII") == 0 ||
      strcmp(r, "IMAGE_SAFETY") == 0)
    return "content_filter";
  return "stop";
}

static int put_usage_metadata(gw_buf *b, const gw_jval *um) {
  return gw_jt_put_usage(b, GW_JT_INT_OF(um, "promptTokenCount"),
                         GW_JT_INT_OF(um, "candidatesTokenCount") +
                             GW_JT_INT_OF(um, "thoughtsTokenCount"),
                         GW_JT_INT_OF(um, "cachedContentTokenCount"));
}

static bool text_part(const gw_jval *p) {
  return gw_jt_is_str(GW_JT_GET(p, "text")) && !gw_jt_is_true(GW_JT_GET(p, "thought"));
}

/* The joined text of |parts| as a JSON string, or null when none has text. */
static int put_parts_text(gw_buf *b, const gw_jval *parts) {
  size_t texts = 0;
  int rc = GW_OK;
  for (size_t i = 0; rc == GW_OK && i < gw_jt_array_len(parts); i++) {
    const gw_jval *p = &parts->u.elems[i];
    if (!text_part(p))
      continue;
    const gw_jval *t = GW_JT_GET(p, "text");
    if (texts++ == 0)
      rc = gw_buf_appendc(b, '"');
    if (rc == GW_OK)
      rc = gw_buf_append_json_chars(b, t->u.str, t->len);
  }
  if (rc == GW_OK)
    rc = texts ? gw_buf_appendc(b, '"') : GW_JT_PUT(b, "null");
  return rc;
}

/* The tool calls of |parts| (functionCall parts), numbered from
 * |*next_tool|; with "index" members in a stream. |*n| counts them. */
static int put_calls(gw_buf *b, const gw_jval *parts, int *next_tool, bool with_index,
                     const char *id_prefix, size_t *n) {
  int rc = GW_OK;
  for (size_t i = 0; rc == GW_OK && i < gw_jt_array_len(parts); i++) {
    const gw_jval *p = &parts->u.elems[i], *fc = GW_JT_GET(p, "functionCall");
    if (text_part(p) || !gw_jt_is_object(fc))
      continue;
    const gw_jval *name = GW_JT_GET(fc, "name"), *args = GW_JT_GET(fc, "args");
    const gw_jval *gid = GW_JT_GET(fc, "id");
    if (!gw_jt_is_str(name))
      return GW_ERR_INVALID;
    int tool = (*next_tool)++;
    rc = gw_jt_sep(b, n);
    if (rc == GW_OK && with_index && (rc = GW_JT_PUT(b, "{\"index\":")) == GW_OK &&
        (rc = gw_jt_put_int(b, tool)) == GW_OK)
      rc = GW_JT_PUT(b, ",\"id\":");
    else if (rc == GW_OK && !with_index)
      rc = GW_JT_PUT(b, "{\"id\":");
    if (rc == GW_OK)
      rc = gw_jt_is_str(gid) ? gw_jt_put_str(b, gid)
                             : gw_buf_printf(b, "\"call_%s_%d\"", id_prefix, tool);
    if (rc == GW_OK)
      rc = GW_JT_PUT(b, ",\"type\":\"function\",\"function\":{\"name\":");
    if (rc == GW_OK)
      rc = gw_jt_put_str(b, name);
    if (rc == GW_OK)
      rc = GW_JT_PUT(b, ",\"arguments\":");
    if (rc == GW_OK)
      rc = gw_jt_put_args_string(b, args);
    if (rc == GW_OK)
      rc = GW_JT_PUT(b, "}}");
  }
  return rc;
}

static size_t count_calls(const gw_jval *parts) {
  size_t n = 0;
  for (size_t i = 0; i < gw_jt_array_len(parts); i++) {
    const gw_jval *p = &parts->u.elems[i];
    n += !text_part(p) && gw_jt_is_object(GW_JT_GET(p, "functionCall"));
  }
  return n;
}

int gw_gemini_response(const gw_jval *resp, const char *id, const char *model, long long created,
                       gw_buf *out) {
  if (!gw_jt_is_object(resp))
    return GW_ERR_INVALID;
  const char *rid = gw_jt_str(GW_JT_GET(resp, "responseId"));
  const char *mv = gw_jt_str(GW_JT_GET(resp, "modelVersion"));
  const gw_jval *cands = GW_JT_GET(resp, "candidates");
  size_t at = out->len;
  int rc = GW_JT_PUT(out, "{\"id\":");
  if (rc == GW_OK)
    rc = gw_jt_put_cstr(out, rid ? rid : id);
  if (rc == GW_OK)
    rc = GW_JT_PUT(out, ",\"object\":\"chat.completion\",\"created\":");
  if (rc == GW_OK)
    rc = gw_jt_put_int(out, created);
  if (rc == GW_OK)
    rc = GW_JT_PUT(out, ",\"model\":");
  if (rc == GW_OK)
    rc = gw_jt_put_cstr(out, mv ? mv : model);
  if (rc == GW_OK)
    rc = GW_JT_PUT(out, ",\"choices\":[");
  int next_tool = 0;
  size_t nc = gw_jt_array_len(cands);
  for (size_t i = 0; rc == GW_OK && i < nc; i++) {
    const gw_jval *cand = &cands->u.elems[i];
    const gw_jval *parts = GW_JT_GET(GW_JT_GET(cand, "content"), "parts");
    const gw_jval *idx = GW_JT_GET(cand, "index");
    size_t calls = count_calls(parts), written = 0;
    const char *finish =
        gw_gemini_finish_reason(gw_jt_str(GW_JT_GET(cand, "finishReason")), calls > 0);
    rc = i ? GW_JT_PUT(out, ",{\"index\":") : GW_JT_PUT(out, "{\"index\":");
    if (rc == GW_OK)
      rc = gw_jt_put_int(out, gw_jt_is_int(idx) ? gw_jt_int(idx) : (int64_t)i);
    if (rc == GW_OK)
      rc = GW_JT_PUT(out, ",\"message\":{\"role\":\"assistant\",\"content\":");
    if (rc == GW_OK)
      rc = put_parts_text(out, parts);
    if (rc == GW_OK)
      rc = GW_JT_PUT(out, ",\"refusal\":null");
    if (rc == GW_OK && calls) {
      rc = GW_JT_PUT(out, ",\"tool_calls\":[");
      if (rc == GW_OK)
        rc = put_calls(out, parts, &next_tool, false, rid ? rid : id, &written);
      if (rc == GW_OK)
        rc = gw_buf_appendc(out, ']');
    }
    if (rc == GW_OK)
      rc = GW_JT_PUT(out, "},\"finish_reason\":");
    if (rc == GW_OK)
      rc = gw_jt_put_cstr(out, finish ? finish : "stop");
    if (rc == GW_OK)
      rc = GW_JT_PUT(out, ",\"logprobs\":null}");
  }
  if (rc == GW_OK && nc == 0) /* the prompt was blocked */
    rc = GW_JT_PUT(out, "{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,"
                        "\"refusal\":null},\"finish_reason\":\"content_filter\","
                        "\"logprobs\":null}");
  if (rc == GW_OK)
    rc = GW_JT_PUT(out, "],\"usage\":");
  if (rc == GW_OK)
    rc = put_usage_metadata(out, GW_JT_GET(resp, "usageMetadata"));
  if (rc == GW_OK)
    rc = gw_buf_appendc(out, '}');
  if (rc != GW_OK)
    truncate_to(out, at);
  return rc;
}

/* |src| (NULL: "") into |dst| (|cap| bytes), cut short to fit: snprintf's
 * "%s" without its ~400 instructions. */
static void copy_cut(char *dst, size_t cap, const char *src) {
  size_t n = src ? strnlen(src, cap - 1) : 0;
  memcpy(dst, src ? src : "", n);
  dst[n] = '\0';
}

void gw_gemini_stream_init(gw_gemini_stream *s, const char *id, const char *model,
                           long long created, bool include_usage) {
  memset(s, 0, sizeof(*s));
  copy_cut(s->id, sizeof s->id, id);
  copy_cut(s->model, sizeof s->model, model);
  s->created = created;
  s->include_usage = include_usage;
}

int gw_gemini_stream_event(gw_gemini_stream *s, const gw_jval *resp, gw_buf *chunk) {
  if (!gw_jt_is_object(resp))
    return GW_ERR_INVALID;
  const char *rid = gw_jt_str(GW_JT_GET(resp, "responseId"));
  const char *mv = gw_jt_str(GW_JT_GET(resp, "modelVersion"));
  if (!s->started) {
    if (rid)
      copy_cut(s->id, sizeof s->id, rid);
    if (mv)
      copy_cut(s->model, sizeof s->model, mv);
  }
  const gw_jval *um = GW_JT_GET(resp, "usageMetadata");
  if (gw_jt_is_object(um)) {
    s->prompt_tokens = GW_JT_INT_OF(um, "promptTokenCount");
    s->completion_tokens =
        GW_JT_INT_OF(um, "candidatesTokenCount") + GW_JT_INT_OF(um, "thoughtsTokenCount");
  }
  const gw_jval *cands = GW_JT_GET(resp, "candidates");
  if (!gw_jt_array_len(cands)) {
    if (GW_JT_GET(resp, "promptFeedback") && !s->finished) {
      s->finished = true;
      int rc = gw_jt_chunk_open(chunk, s->id, s->created, s->model);
      if (rc == GW_OK)
        rc = GW_JT_PUT(chunk, "{}");
      return rc == GW_OK ? gw_jt_chunk_close(chunk, "content_filter") : rc;
    }
    return GW_OK;
  }
  const gw_jval *parts = GW_JT_GET(GW_JT_GET(&cands->u.elems[0], "content"), "parts");
  size_t calls = count_calls(parts), written = 0, members = 0;
  bool has_text = false;
  for (size_t i = 0; i < gw_jt_array_len(parts); i++)
    has_text |= text_part(&parts->u.elems[i]);
  const char *finish = gw_gemini_finish_reason(
      gw_jt_str(GW_JT_GET(&cands->u.elems[0], "finishReason")), s->next_tool + calls > 0);
  size_t at = chunk->len;
  int rc = gw_jt_chunk_open(chunk, s->id, s->created, s->model);
  if (rc == GW_OK)
    rc = gw_buf_appendc(chunk, '{');
  if (rc == GW_OK && !s->started && (rc = gw_jt_sep(chunk, &members)) == GW_OK)
    rc = GW_JT_PUT(chunk, "\"role\":\"assistant\"");
  if (rc == GW_OK && (has_text || !s->started) && (rc = gw_jt_sep(chunk, &members)) == GW_OK &&
      (rc = GW_JT_PUT(chunk, "\"content\":")) == GW_OK)
    rc = has_text ? put_parts_text(chunk, parts) : GW_JT_PUT(chunk, "\"\"");
  if (rc == GW_OK && calls && (rc = gw_jt_sep(chunk, &members)) == GW_OK &&
      (rc = GW_JT_PUT(chunk, "\"tool_calls\":[")) == GW_OK) {
    rc = put_calls(chunk, parts, &s->next_tool, true, s->id, &written);
    if (rc == GW_OK)
      rc = gw_buf_appendc(chunk, ']');
  }
  if (rc == GW_OK)
    rc = gw_buf_appendc(chunk, '}');
  if (rc == GW_OK)
    rc = gw_jt_chunk_close(chunk, finish);
  if (rc != GW_OK) {
    truncate_to(chunk, at);
    return rc;
  }
  s->started = true;
  if (finish)
    s->finished = true;
  return GW_OK;
}

int gw_gemini_stream_end(gw_gemini_stream *s, gw_buf *chunk) {
  if (!s->include_usage)
    return GW_OK;
  int rc = gw_jt_chunk_head(chunk, s->id, s->created, s->model);
  if (rc == GW_OK)
    rc = GW_JT_PUT(chunk, "[],\"usage\":");
  if (rc == GW_OK)
    rc = gw_jt_put_usage(chunk, s->prompt_tokens, s->completion_tokens, 0);
  return rc == GW_OK ? gw_buf_appendc(chunk, '}') : rc;
}

/* ---- Vertex service-account token ---------------------------------------------------- */

int gw_gemini_sa_assertion(const char *email, const char *key_id, const char *pem,
                           const char *token_uri, long long now, gw_buf *out) {
  json_t *h = key_id ? json_pack("{s:s,s:s,s:s}", "alg", "RS256", "typ", "JWT", "kid", key_id)
                     : json_pack("{s:s,s:s}", "alg", "RS256", "typ", "JWT");
  json_t *c = json_pack("{s:s,s:s,s:s,s:I,s:I}", "iss", email, "scope",
                        "https://www.googleapis.com/auth/cloud-platform", "aud", token_uri, "iat",
                        (json_int_t)now, "exp", (json_int_t)(now + 3600));
  char *hs = h ? json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  char *cs = c ? json_dumps(c, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  int rc = hs && cs ? gw_jwt_sign_rs256(pem, strlen(pem), hs, cs, out) : GW_ERR_NOMEM;
  free(hs);
  free(cs);
  json_decref(h);
  json_decref(c);
  return rc;
}

static size_t collect(char *p, size_t size, size_t n, void *arg) {
  return gw_buf_append(arg, p, size * n) == GW_OK ? size * n : 0;
}

/* Fetches a token into |*token| (an Authorization line) and |*lifetime_ms|.
 * Touches nothing of |b| that can change: callable without its lock. */
static int fetch_token(gw_gemini_backend *b, char **token, int64_t *lifetime_ms, char *err,
                       size_t errlen) {
  gw_buf jwt, form, resp;
  gw_buf_init(&jwt, 16384);
  gw_buf_init(&form, 16384);
  gw_buf_init(&resp, 65536);
  int rc = gw_gemini_sa_assertion(b->sa_email, b->sa_key_id, b->sa_key_pem, b->token_uri,
                                  gw_upstream_unix_time(), &jwt);
  CURL *e = NULL;
  json_t *root = NULL;
  if (rc != GW_OK) {
    snprintf(err, errlen, "cannot sign the service-account assertion");
    goto done;
  }
  rc = gw_buf_printf(&form,
                     "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer"
                     "&assertion=%s",
                     jwt.data);
  if (rc != GW_OK || !(e = curl_easy_init())) {
    rc = GW_ERR_NOMEM;
    snprintf(err, errlen, "out of memory");
    goto done;
  }
  curl_easy_setopt(e, CURLOPT_URL, b->token_uri);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  gw_curl_trust_env(e);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, form.data);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &resp);
  CURLcode cr = curl_easy_perform(e);
  long st = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &st);
  root = cr == CURLE_OK ? json_loadb(resp.data ? resp.data : "", resp.len, 0, NULL) : NULL;
  const char *tok = json_string_value(json_object_get(root, "access_token"));
  json_int_t exp = json_integer_value(json_object_get(root, "expires_in"));
  if (st != 200 || !tok) {
    rc = GW_ERR_IO;
    const char *why = json_string_value(json_object_get(root, "error_description"));
    snprintf(err, errlen, "backend %s: token endpoint answered %ld%s%s", b->name, st,
             why ? ": " : "", why ? why : "");
    goto done;
  }
  size_t len = strlen("Authorization: Bearer ") + strlen(tok) + 1;
  char *h = gw_malloc(len);
  if (!h) {
    rc = GW_ERR_NOMEM;
    snprintf(err, errlen, "out of memory");
    goto done;
  }
  snprintf(h, len, "Authorization: Bearer %s", tok);
  *token = h;
  /* A minute's margin on an hour's token; half of a short one. */
  *lifetime_ms = (exp > 120 ? exp - 60 : exp > 1 ? exp / 2 : 1) * 1000;
  rc = GW_OK;
done:
  if (e)
    curl_easy_cleanup(e);
  json_decref(root);
  gw_buf_release(&jwt);
  gw_buf_release(&form);
  gw_buf_release(&resp);
  return rc;
}

/* Installs a fetched token (|b|'s lock held). */
static void set_token(gw_gemini_backend *b, char *token, int64_t lifetime_ms) {
  gw_free_secret(b->token);
  b->token = token;
  int64_t now = gw_now_ms();
  b->token_expires_ms = now + lifetime_ms;
  /* The last 5 minutes (half of a short token's life) are for fetching the
   * next one in the background while this one serves. */
  b->token_refresh_ms = b->token_expires_ms - (lifetime_ms / 2 < 300000 ? lifetime_ms / 2 : 300000);
}

static void *refresh_main(void *arg) {
  gw_gemini_backend *b = arg;
  char err[256], *token = NULL;
  int64_t lifetime = 0;
  int rc = fetch_token(b, &token, &lifetime, err, sizeof err);
  pthread_mutex_lock(&b->lock);
  if (rc == GW_OK)
    set_token(b, token, lifetime);
  else /* the current token serves on; a later request tries again */
    GW_LOGW("vertex", NULL, "%s (the current token serves until it expires)", err);
  b->refreshing = false;
  pthread_mutex_unlock(&b->lock);
  return NULL;
}

/* The Authorization header to send, copied into |a|. Only the first token
 * (or one that ran out unused) is fetched on the worker, under the lock;
 * the next ones are fetched on a thread of their own while the current one
 * serves, so that an hourly fetch (a round trip to Google, up to 10 s) does
 * not stall every worker that sends to this backend. */
static const char *vertex_auth(gw_gemini_backend *b, gw_arena *a, char *err, size_t errlen) {
  pthread_mutex_lock(&b->lock);
  const char *h = NULL;
  int64_t now = gw_now_ms();
  if (!b->token || now >= b->token_expires_ms) {
    char *token = NULL;
    int64_t lifetime = 0;
    if (fetch_token(b, &token, &lifetime, err, errlen) != GW_OK)
      goto out;
    set_token(b, token, lifetime);
  } else if (now >= b->token_refresh_ms && !b->refreshing) {
    if (b->refresher_made) /* the last one has ended: |refreshing| is false */
      pthread_join(b->refresher, NULL);
    b->refresher_made = pthread_create(&b->refresher, NULL, refresh_main, b) == 0;
    b->refreshing = b->refresher_made; /* (none made: the next request tries again) */
  }
  h = gw_arena_strdup(a, b->token);
  if (!h)
    snprintf(err, errlen, "out of memory");
out:
  pthread_mutex_unlock(&b->lock);
  return h;
}

/* ---- backends ------------------------------------------------------------------------- */

static char *dup_json(const json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? gw_strdup(s) : NULL;
}

gw_gemini_backend *gw_gemini_backend_new(const gw_backend_conf *bc, bool vertex) {
  gw_gemini_backend *b = gw_calloc(1, sizeof(*b));
  if (!b)
    return NULL;
  pthread_mutex_init(&b->lock, NULL);
  b->vertex = vertex;
  b->timeout_ms = bc->timeout_ms;
  b->name = gw_strdup(bc->name ? bc->name : vertex ? "vertex" : "gemini");
  const char *t = bc->target ? bc->target : "";
  size_t n = strlen(t);
  while (n > 0 && t[n - 1] == '/')
    n--;
  gw_buf u;
  gw_buf_init(&u, 4096);
  if (vertex)
    gw_buf_printf(&u, "%.*s/projects/%s/locations/%s/publishers/google/models/", (int)n, t,
                  bc->project ? bc->project : "", bc->location ? bc->location : "us-central1");
  else
    gw_buf_printf(&u, "%.*s/models/", (int)n, t);
  b->model_base = u.data ? gw_strndup(u.data, u.len) : NULL;
  gw_buf_release(&u);
  if (!b->name || !b->model_base)
    goto fail;
  if (!vertex) {
    if (bc->api_key && *bc->api_key) {
      size_t len = strlen("x-goog-api-key: ") + strlen(bc->api_key) + 1;
      if (!(b->key_header = gw_malloc(len)))
        goto fail;
      snprintf(b->key_header, len, "x-goog-api-key: %s", bc->api_key);
    }
    return b;
  }
  json_error_t je;
  json_t *sa = bc->credentials_file ? json_load_file(bc->credentials_file, 0, &je) : NULL;
  if (!sa) {
    GW_LOGE("vertex", NULL, "backend %s: cannot read credentials_file %s: %s", b->name,
            bc->credentials_file ? bc->credentials_file : "(none)",
            bc->credentials_file ? je.text : "");
    goto fail;
  }
  b->sa_email = dup_json(sa, "client_email");
  b->sa_key_pem = dup_json(sa, "private_key");
  b->sa_key_id = dup_json(sa, "private_key_id");
  b->token_uri = dup_json(sa, "token_uri");
  if (!b->token_uri)
    b->token_uri = gw_strdup("https://oauth2.googleapis.com/token");
  json_decref(sa);
  if (!b->sa_email || !b->sa_key_pem || !b->token_uri) {
    GW_LOGE("vertex", NULL,
            "backend %s: credentials_file is not a service-account key "
            "(client_email, private_key)",
            b->name);
    goto fail;
  }
  return b;
fail:
  gw_gemini_backend_free(b);
  return NULL;
}

void gw_gemini_backend_free(gw_gemini_backend *b) {
  if (!b)
    return;
  if (b->refresher_made) /* (a fetch in flight ends within its 10 s timeout) */
    pthread_join(b->refresher, NULL);
  gw_free_secret(b->key_header);
  gw_free_secret(b->sa_key_pem);
  gw_free_secret(b->token);
  gw_free(b->sa_email);
  gw_free(b->sa_key_id);
  gw_free(b->token_uri);
  gw_free(b->name);
  gw_free(b->model_base);
  pthread_mutex_destroy(&b->lock);
  gw_free(b);
}

/* ---- the exchange ---------------------------------------------------------------------- */

typedef struct {
  gw_gemini_stream s;
  const char *id, *model;
} gem_state;

static gw_status_code take_error(gw_upstream *u, long st, const gw_jval *e) {
  gw_arena *a = u->x.call->arena;
  const char *status = gw_jt_str(GW_JT_GET(e, "status"));
  const char *msg = gw_jt_str(GW_JT_GET(e, "message"));
  int64_t code = GW_JT_INT_OF(e, "code");
  u->x.has_error = true;
  u->x.err.http_status = st ? st : (code >= 400 && code < 600 ? code : 500);
  u->x.err.type = status ? gw_arena_strdup(a, status) : NULL;
  u->x.err.message = msg ? gw_arena_strdup(a, msg) : NULL;
  return gw_openai_status_from_http(u->x.err.http_status);
}

/* A json_lite DOM of |data| in |a|; NULL when it is not JSON. */
static gw_status_code on_error(gw_upstream *u, long st, const char *data, size_t len) {
  const gw_jval *root = gw_jt_parse(u->x.call->arena, data, len);
  /* Google answers {"error":{...}}, some proxies a list of them. */
  if (gw_jt_array_len(root))
    root = &root->u.elems[0];
  const gw_jval *e = GW_JT_GET(root, "error");
  if (gw_jt_is_object(e))
    return take_error(u, st, e);
  if (len)
    u->x.err.message = gw_arena_strndup(u->x.call->arena, data, len > 512 ? 512 : len);
  return gw_openai_status_from_http(st);
}

static void on_body(gw_upstream *u, const char *data, size_t len) {
  gem_state *st = u->state;
  gw_arena *a = u->x.call->arena; /* the answer lives as long as the call anyway */
  const gw_jval *root = gw_jt_parse(a, data, len);
  gw_buf out;
  gw_buf_init_arena(&out, (size_t)64 << 20, a);
  int rc = root ? gw_gemini_response(root, st->id, st->model, gw_upstream_unix_time(), &out)
                : GW_ERR_INVALID;
  if (rc != GW_OK) {
    gw_upstream_undecodable(u, rc, "answer");
    return;
  }
  gw_upstream_emit_text(u, out.data, out.len);
}

static void emit(gw_upstream *u, const gw_buf *chunk) {
  gem_state *st = u->state;
  if (chunk->len)
    gw_upstream_emit_text(u, chunk->data, chunk->len);
  u->x.call->usage.prompt_tokens = st->s.prompt_tokens;
  u->x.call->usage.completion_tokens = st->s.completion_tokens;
}

static void on_event(gw_upstream *u, const char *name, const char *data, size_t len, bool exc) {
  (void)name;
  (void)exc;
  gem_state *st = u->state;
  /* An event's DOM and chunk live until it is emitted. */
  gw_arena *a = gw_arena_new(0, 0);
  if (!a) {
    gw_upstream_end(u, GW_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  const gw_jval *root = gw_jt_parse(a, data, len), *e = GW_JT_GET(root, "error");
  gw_buf chunk;
  gw_buf_init_arena(&chunk, (size_t)64 << 20, a);
  if (gw_jt_is_object(e)) {
    gw_status_code code = take_error(u, 0, e);
    gw_upstream_end(u, code, u->x.err.message ? u->x.err.message : "backend stream failed");
  } else {
    int rc = root ? gw_gemini_stream_event(&st->s, root, &chunk) : GW_ERR_INVALID;
    if (rc != GW_OK)
      gw_upstream_undecodable(u, rc, "event");
    else
      emit(u, &chunk);
  }
  gw_arena_free(a);
}

static void on_stream_end(gw_upstream *u) {
  gem_state *st = u->state;
  if (!st->s.finished) {
    char m[160];
    snprintf(m, sizeof m, "backend %s ended the stream without a finishReason", u->backend_name);
    gw_upstream_end(u, GW_STATUS_UNAVAILABLE, m);
    return;
  }
  gw_buf chunk;
  gw_buf_init_arena(&chunk, (size_t)64 << 20, u->x.call->arena);
  if (gw_gemini_stream_end(&st->s, &chunk) == GW_OK)
    emit(u, &chunk);
}

static const gw_upstream_codec codec = {
    .body = on_body, .event = on_event, .stream_end = on_stream_end, .error = on_error};

/* Model names go into the path: keep them to a safe alphabet. */
static bool model_ok(const char *m) {
  return m && *m &&
         strspn(m, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.@") ==
             strlen(m);
}

static int start(gw_call *call) {
  gw_gemini_backend *b = (gw_gemini_backend *)call->route.backend_impl;
  if (!b)
    return GW_ERR_STATE;
  if (!gw_upstream_serves_chat(call, "Gemini"))
    return GW_OK;
  bool streaming = call->method->server_streaming;
  char err[300] = "";
  gw_upstream_request in;
  int rc = gw_upstream_request_open(&in, call, err, sizeof err);
  const char *model = NULL, *auth = NULL;
  bool usage = false;
  gw_buf body;
  gw_buf_init(&body, (size_t)64 << 20);
  gw_upstream_body_room(&body, &in);
  if (rc == GW_OK) {
    model = call->route.upstream_model;
    if (!model)
      model = gw_jt_str(GW_JT_GET(in.req, "model"));
    usage = gw_jt_is_true(GW_JT_GET(GW_JT_GET(in.req, "stream_options"), "include_usage"));
    model = model ? gw_arena_strdup(call->arena, model) : NULL;
    if (!model_ok(model)) {
      snprintf(err, sizeof err, "model name not usable in a Gemini URL");
      rc = GW_ERR_INVALID;
    } else {
      rc = gw_gemini_request(in.req, in.arena, &body, err, sizeof err);
    }
  }
  gw_upstream_request_close(&in);
  if (rc == GW_OK && b->vertex && !(auth = vertex_auth(b, call->arena, err, sizeof err))) {
    gw_buf_release(&body);
    gw_call_finish(call, GW_STATUS_UNAVAILABLE, err);
    return GW_OK;
  }
  if (rc != GW_OK) {
    gw_buf_release(&body);
    if (rc == GW_ERR_NOMEM)
      return rc;
    gw_upstream_refuse(call, rc, err);
    return GW_OK;
  }
  gw_upstream *u =
      gw_upstream_new(call, &codec, b->name, streaming, GW_UPSTREAM_SSE, b->timeout_ms);
  gem_state *st = u ? gw_arena_calloc(call->arena, sizeof(*st)) : NULL;
  /* (concatenated: the two gw_arena_printf calls, two vsnprintf each, were
   * ~3.7K instructions a request) */
  const char *url =
      st ? gw_arena_concat3(call->arena, b->model_base, model,
                            streaming ? ":streamGenerateContent?alt=sse" : ":generateContent")
         : NULL;
  const char *id = call->request_id ? gw_arena_concat(call->arena, "chatcmpl-", call->request_id)
                                    : "chatcmpl-gemini";
  rc = url && id ? GW_OK : GW_ERR_NOMEM;
  if (rc == GW_OK) {
    u->state = st;
    st->id = id;
    st->model = model;
    gw_gemini_stream_init(&st->s, id, model, gw_upstream_unix_time(), usage);
    gw_buf_release(&u->x.body); /* (empty: the body just written takes its place) */
    u->x.body = body;
  } else {
    gw_buf_release(&body);
  }
  const char *key = b->vertex ? auth : b->key_header;
  if (rc == GW_OK && ((key && gw_upstream_add_header(u, key) != GW_OK) ||
                      gw_upstream_add_header(u, "Content-Type: application/json") != GW_OK))
    rc = GW_ERR_NOMEM;
  if (rc == GW_OK)
    return gw_upstream_start(u, "POST", url);
  if (u)
    gw_upstream_discard(u);
  return rc;
}

const gw_provider_ops gw_provider_gemini = {
    .name = "gemini", .start = start, .cancel = gw_upstream_cancel, .resume = gw_upstream_resume};
