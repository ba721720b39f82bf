/* AWS Bedrock Converse / ConverseStream provider. */
#include "pipeline/provider_bedrock.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/sigv4.h"
#include "pipeline/json_text.h"
#include "pipeline/upstream_http.h"
#include "transcoder/json_pb.h"

static int fail(char *err, size_t errlen, const char *fmt, const char *arg) {
  snprintf(err, errlen, fmt, arg ? arg : "");
  return GW_ERR_INVALID;
}

/* ---- request: OpenAI → Converse ------------------------------------------------------- */

/* "image/png" → "png"; NULL when Bedrock has no such image format. */
static const char *image_format(const char *media, size_t n) {
  static const char *const f[] = {"png", "jpeg", "gif", "webp"};
  if (n < 7 || strncmp(media, "image/", 6) != 0)
    return NULL;
  for (size_t i = 0; i < 4; i++)
    if (strlen(f[i]) == n - 6 && strncmp(media + 6, f[i], n - 6) == 0)
      return f[i];
  if (n - 6 == 3 && strncmp(media + 6, "jpg", 3) == 0)
    return "jpeg";
  return NULL;
}

/* The Converse blocks of an OpenAI content: a string that is not empty is
 * one text block; text and (data: URL) image parts one block each. */
static int put_blocks(gw_buf *b, const gw_jval *content, size_t *n, char *err, size_t errlen) {
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
      if (!gw_jt_is_str(t) || !t->len)
        continue; /* (Converse refuses empty text blocks) */
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
      if (!url || !gw_upstream_data_url(url, &media, &ml, &data))
        return fail(err, errlen, "Bedrock takes images as data: URLs (base64) only", NULL);
      const char *fmt = image_format(media, ml);
      if (!fmt)
        return fail(err, errlen, "image type not supported by Bedrock", NULL);
      rc = gw_jt_sep(b, n);
      if (rc == GW_OK)
        rc = GW_JT_PUT(b, "{\"image\":{\"format\":");
      if (rc == GW_OK)
        rc = gw_jt_put_cstr(b, fmt);
      if (rc == GW_OK)
        rc = GW_JT_PUT(b, ",\"source\":{\"bytes\":");
      if (rc == GW_OK)
        rc = gw_jt_put_cstr(b, data);
      if (rc == GW_OK)
        rc = GW_JT_PUT(b, "}}}");
    } else {
      return fail(err, errlen, "content part type %s is not supported by Bedrock", gw_jt_str(type));
    }
  }
  return rc;
}

/* The blocks |m| adds to its turn. */
static int put_message_blocks(gw_buf *b, const gw_jval *m, size_t *n, gw_arena *a, char *err,
                              size_t errlen) {
  const gw_jval *content = GW_JT_GET(m, "content");
  if (GW_JT_STR_IS(GW_JT_GET(m, "role"), "tool")) {
    int rc = gw_jt_sep(b, n);
    if (rc == GW_OK)
      rc = GW_JT_PUT(b, "{\"toolResult\":{\"toolUseId\":");
    if (rc == GW_OK)
      rc = gw_jt_put_str(b, GW_JT_GET(m, "tool_call_id"));
    if (rc == GW_OK)
      rc = GW_JT_PUT(b, ",\"content\":[{\"text\":");
    if (rc == GW_OK)
      rc = gw_jt_put_content_text(b, content);
    return rc == GW_OK ? GW_JT_PUT(b, "}]}}") : rc;
  }
  int rc = put_blocks(b, content, n, err, errlen);
  static const gw_jt_call_shape tool_use = {
      "{\"toolUse\":{\"toolUseId\":", ",\"name\":", ",\"input\":", "}}"};
  if (rc == GW_OK)
    rc = gw_jt_put_tool_calls(b, GW_JT_GET(m, "tool_calls"), &tool_use, n, a, err, errlen);
  return rc;
}

/* The turns, alternating (gw_jt_turns): consecutive messages on one side
 * share a turn (Converse wants them alternating); system messages go to
 * the system prompt. */
static int put_turn(gw_jt_writer *t, const gw_jval *msgs, size_t from, size_t to, gw_jt_role side) {
  gw_buf *b = t->b;
  size_t blocks = 0;
  int rc = gw_jt_sep(b, &t->n);
  if (rc == GW_OK)
    rc = side == GW_JT_USER ? GW_JT_PUT(b, "{\"role\":\"user\",\"content\":[")
                            : GW_JT_PUT(b, "{\"role\":\"assistant\",\"content\":[");
  for (size_t k = from; rc == GW_OK && k < to; k++)
    if (!gw_jt_is_system(&msgs->u.elems[k]))
      rc = put_message_blocks(b, &msgs->u.elems[k], &blocks, t->a, t->err, t->errlen);
  return rc == GW_OK ? GW_JT_PUT(b, "]}") : rc;
}

static int put_messages(gw_buf *b, const gw_jval *msgs, gw_arena *a, char *err, size_t errlen) {
  gw_jt_writer t = {b, 0, a, err, errlen};
  int rc = GW_JT_PUT(b, "\"messages\":[");
  if (rc == GW_OK)
    rc = gw_jt_turns(msgs, "Bedrock", true, put_turn, &t);
  return rc == GW_OK ? gw_buf_appendc(b, ']') : rc;
}

/* The system prompt: one text block per system message with some text. */
static int put_system(gw_buf *b, const gw_jval *msgs) {
  size_t n = 0;
  int rc = GW_OK;
  for (size_t i = 0; rc == GW_OK && i < msgs->len; i++) {
    const gw_jval *m = &msgs->u.elems[i], *c = GW_JT_GET(m, "content");
    if (!gw_jt_is_system(m) || !gw_jt_content_text_len(c))
      continue;
    rc = n++ ? gw_buf_appendc(b, ',') : GW_JT_PUT(b, ",\"system\":[");
    if (rc == GW_OK)
      rc = GW_JT_PUT(b, "{\"text\":");
    if (rc == GW_OK)
      rc = gw_jt_put_content_text(b, c);
    if (rc == GW_OK)
      rc = gw_buf_appendc(b, '}');
  }
  return rc == GW_OK && n ? gw_buf_appendc(b, ']') : rc;
}

static int put_tools(gw_buf *b, const gw_jval *req, char *err, size_t errlen) {
  const gw_jval *tools = GW_JT_GET(req, "tools"), *choice = GW_JT_GET(req, "tool_choice");
  if (!gw_jt_array_len(tools))
    return GW_OK;
  /* "none": send no tools, so none can be called. */
  if (GW_JT_STR_IS(choice, "none"))
    return GW_OK;
  int rc = GW_JT_PUT(b, ",\"toolConfig\":{\"tools\":[");
  static const gw_jt_tool_shape tool = {"{\"toolSpec\":{\"name\":", ",\"inputSchema\":{\"json\":",
                                        "{\"type\":\"object\",\"properties\":{}}", "}}}"};
  if (rc == GW_OK)
    rc = gw_jt_put_tools(b, tools, &tool, err, errlen);
  if (rc == GW_OK)
    rc = gw_buf_appendc(b, ']');
  if (rc == GW_OK && gw_jt_is_str(choice))
    rc = GW_JT_STR_IS(choice, "required") ? GW_JT_PUT(b, ",\"toolChoice\":{\"any\":{}}")
                                          : GW_JT_PUT(b, ",\"toolChoice\":{\"auto\":{}}");
  else if (rc == GW_OK && gw_jt_is_object(choice)) {
    const gw_jval *name = GW_JT_GET(GW_JT_GET(choice, "function"), "name");
    if (!gw_jt_is_str(name))
      return fail(err, errlen, "tool_choice names no function", NULL);
    rc = GW_JT_PUT(b, ",\"toolChoice\":{\"tool\":{\"name\":");
    if (rc == GW_OK)
      rc = gw_jt_put_str(b, name);
    if (rc == GW_OK)
      rc = GW_JT_PUT(b, "}}");
  }
  return rc == GW_OK ? gw_buf_appendc(b, '}') : rc;
}

/* inferenceConfig, when any of its knobs is set. */
static int put_inference(gw_buf *b, const gw_jval *req) {
  size_t at = b->len, n = 0;
  int rc = GW_JT_PUT(b, ",\"inferenceConfig\":{");
  const gw_jval *mt = GW_JT_GET(req, "max_completion_tokens");
  if (!gw_jt_is_int(mt))
    mt = GW_JT_GET(req, "max_tokens");
  const struct {
    const char *name;
    const gw_jval *v;
  } knobs[] = {{"maxTokens", gw_jt_is_int(mt) ? mt : NULL},
               {"temperature", GW_JT_GET(req, "temperature")},
               {"topP", GW_JT_GET(req, "top_p")}};
  for (size_t k = 0; rc == GW_OK && k < sizeof knobs / sizeof knobs[0]; k++)
    if (gw_jt_is_number(knobs[k].v) && (rc = gw_jt_sep(b, &n)) == GW_OK &&
        (rc = gw_buf_printf(b, "\"%s\":", knobs[k].name)) == GW_OK)
      rc = gw_buf_append(b, knobs[k].v->u.str, knobs[k].v->len);
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
  if (rc == GW_OK && !n) {
    b->len = at;
    b->data[at] = '\0';
  } else if (rc == GW_OK) {
    rc = gw_buf_appendc(b, '}');
  }
  return rc;
}

int gw_bedrock_request(const gw_jval *req, gw_arena *a, gw_buf *out, char *err, size_t errlen) {
  err[0] = '\0';
  const gw_jval *msgs = GW_JT_GET(req, "messages");
  if (!gw_jt_array_len(msgs))
    return fail(err, errlen, "messages must be a non-empty list", NULL);
  const gw_jval *n = GW_JT_GET(req, "n");
  if (gw_jt_is_int(n) && gw_jt_int(n) != 1)
    return fail(err, errlen, "n other than 1 is not supported by Bedrock", NULL);
  int rc = gw_buf_appendc(out, '{');
  if (rc == GW_OK)
    rc = put_messages(out, msgs, a, err, errlen);
  if (rc == GW_OK)
    rc = put_system(out, msgs);
  if (rc == GW_OK)
    rc = put_inference(out, req);
  if (rc == GW_OK)
    rc = put_tools(out, req, err, errlen);
  return rc == GW_OK ? gw_buf_appendc(out, '}') : rc;
}

/* ---- response: Converse → OpenAI -------------------------------------------------------- */

const char *gw_bedrock_finish_reason(const char *r) {
  if (!r)
    return NULL;
  if (strcmp(r, "tool_use") == 0)
    return "tool_calls";
  if (strcmp(r, "max_tokens") == 0)
    return "length";
  if (strcmp(r, "guardrail_intervened") == 0 || strcmp(r, "content_filtered") == 0)
    return "content_filter";
  return "stop";
}

/* Prompt tokens count the cache reads and writes too, as OpenAI's do. */
static int64_t prompt_tokens(const gw_jval *u) {
  return GW_JT_INT_OF(u, "inputTokens") + GW_JT_INT_OF(u, "cacheReadInputTokens") +
         GW_JT_INT_OF(u, "cacheWriteInputTokens");
}

/* A toolUse block as an OpenAI tool call; its input as the arguments. */
static int put_tool_call(gw_buf *b, const gw_jval *tu) {
  const gw_jval *id = GW_JT_GET(tu, "toolUseId"), *name = GW_JT_GET(tu, "name");
  const gw_jval *input = GW_JT_GET(tu, "input");
  if (!gw_jt_is_str(id) || !gw_jt_is_str(name))
    return GW_ERR_INVALID;
  int rc = GW_JT_PUT(b, "{\"id\":");
  if (rc == GW_OK)
    rc = gw_jt_put_str(b, id);
  if (rc == GW_OK)
    rc = GW_JT_PUT(b, ",\"type\":\"function\",\"function\":{\"name\":");
  if (rc == GW_OK)
    rc = gw_jt_put_str(b, name);
  if (rc == GW_OK)
    rc = GW_JT_PUT(b, ",\"arguments\":");
  if (rc == GW_OK)
    rc = gw_jt_put_args_string(b, input);
  return rc == GW_OK ? GW_JT_PUT(b, "}}") : rc;
}

int gw_bedrock_response(const gw_jval *resp, const char *id, const char *model, long long created,
                        gw_buf *out) {
  const gw_jval *content = GW_JT_GET(GW_JT_GET(GW_JT_GET(resp, "output"), "message"), "content");
  if (!content || content->type != GW_JVAL_ARRAY)
    return GW_ERR_INVALID;
  size_t at = out->len, texts = 0, calls = 0;
  int rc = GW_JT_PUT(out, "{\"id\":");
  if (rc == GW_OK)
    rc = gw_jt_put_cstr(out, id);
  if (rc == GW_OK)
    rc = GW_JT_PUT(out, ",\"object\":\"chat.completion\",\"created\":");
  if (rc == GW_OK)
    rc = gw_jt_put_int(out, created);
  if (rc == GW_OK)
    rc = GW_JT_PUT(out, ",\"model\":");
  if (rc == GW_OK)
    rc = gw_jt_put_cstr(out, model);
  if (rc == GW_OK)
    rc = GW_JT_PUT(out,
                   ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
  for (size_t i = 0; rc == GW_OK && i < content->len; i++) {
    const gw_jval *t = GW_JT_GET(&content->u.elems[i], "text");
    if (!gw_jt_is_str(t))
      continue;
    if (texts++ == 0)
      rc = gw_buf_appendc(out, '"');
    if (rc == GW_OK)
      rc = gw_buf_append_json_chars(out, t->u.str, t->len);
  }
  if (rc == GW_OK)
    rc = texts ? gw_buf_appendc(out, '"') : GW_JT_PUT(out, "null");
  if (rc == GW_OK)
    rc = GW_JT_PUT(out, ",\"refusal\":null");
  for (size_t i = 0; rc == GW_OK && i < content->len; i++) {
    const gw_jval *blk = &content->u.elems[i], *tu = GW_JT_GET(blk, "toolUse");
    if (gw_jt_is_str(GW_JT_GET(blk, "text")) || !gw_jt_is_object(tu))
      continue;
    rc = calls++ ? gw_buf_appendc(out, ',') : GW_JT_PUT(out, ",\"tool_calls\":[");
    if (rc == GW_OK)
      rc = put_tool_call(out, tu);
  }
  if (rc == GW_OK && calls)
    rc = gw_buf_appendc(out, ']');
  const char *finish = gw_bedrock_finish_reason(gw_jt_str(GW_JT_GET(resp, "stopReason")));
  if (rc == GW_OK)
    rc = GW_JT_PUT(out, "},\"finish_reason\":");
  if (rc == GW_OK)
    rc = gw_jt_put_cstr(out, finish ? finish : "stop");
  if (rc == GW_OK)
    rc = GW_JT_PUT(out, ",\"logprobs\":null}],\"usage\":");
  const gw_jval *u = GW_JT_GET(resp, "usage");
  if (rc == GW_OK)
    rc = gw_jt_put_usage(out, prompt_tokens(u), GW_JT_INT_OF(u, "outputTokens"),
                         GW_JT_INT_OF(u, "cacheReadInputTokens"));
  if (rc == GW_OK)
    rc = gw_buf_appendc(out, '}');
  if (rc != GW_OK && out->data) {
    out->len = at;
    out->data[at] = '\0';
  }
  return rc;
}

void gw_bedrock_stream_init(gw_bedrock_stream *s, const char *id, const char *model,
                            long long created, bool include_usage) {
  memset(s, 0, sizeof(*s));
  snprintf(s->id, sizeof s->id, "%s", id ? id : "");
  snprintf(s->model, sizeof s->model, "%s", model ? model : "");
  s->created = created;
  s->include_usage = include_usage;
}

#define N_BLOCKS ((int64_t)(sizeof(((gw_bedrock_stream *)0)->block_tool) / sizeof(int)))

int gw_bedrock_stream_event(gw_bedrock_stream *s, const char *type, const gw_jval *ev,
                            gw_buf *chunk) {
  if (!gw_jt_is_object(ev))
    return GW_ERR_INVALID;
  int64_t idx = GW_JT_INT_OF(ev, "contentBlockIndex");
  int rc;
  if (strcmp(type, "messageStart") == 0) {
    rc = gw_jt_chunk_open(chunk, s->id, s->created, s->model);
    if (rc == GW_OK)
      rc = GW_JT_PUT(chunk, "{\"role\":\"assistant\",\"content\":\"\"}");
    return rc == GW_OK ? gw_jt_chunk_close(chunk, NULL) : rc;
  }
  if (strcmp(type, "contentBlockStart") == 0) {
    const gw_jval *tu = GW_JT_GET(GW_JT_GET(ev, "start"), "toolUse");
    if (!gw_jt_is_object(tu))
      return GW_OK;
    const gw_jval *id = GW_JT_GET(tu, "toolUseId"), *name = GW_JT_GET(tu, "name");
    if (!gw_jt_is_str(id) || !gw_jt_is_str(name))
      return GW_ERR_INVALID;
    int tool = s->next_tool++;
    if (idx >= 0 && idx < N_BLOCKS)
      s->block_tool[idx] = tool + 1;
    rc = gw_jt_chunk_open(chunk, s->id, s->created, s->model);
    if (rc == GW_OK)
      rc = GW_JT_PUT(chunk, "{\"tool_calls\":[{\"index\":");
    if (rc == GW_OK)
      rc = gw_jt_put_int(chunk, tool);
    if (rc == GW_OK)
      rc = GW_JT_PUT(chunk, ",\"id\":");
    if (rc == GW_OK)
      rc = gw_jt_put_str(chunk, id);
    if (rc == GW_OK)
      rc = GW_JT_PUT(chunk, ",\"type\":\"function\",\"function\":{\"name\":");
    if (rc == GW_OK)
      rc = gw_jt_put_str(chunk, name);
    if (rc == GW_OK)
      rc = GW_JT_PUT(chunk, ",\"arguments\":\"\"}}]}");
    return rc == GW_OK ? gw_jt_chunk_close(chunk, NULL) : rc;
  }
  if (strcmp(type, "contentBlockDelta") == 0) {
    const gw_jval *d = GW_JT_GET(ev, "delta");
    const gw_jval *t = GW_JT_GET(d, "text"), *tu = GW_JT_GET(d, "toolUse");
    if (gw_jt_is_str(t)) {
      rc = gw_jt_chunk_open(chunk, s->id, s->created, s->model);
      if (rc == GW_OK)
        rc = GW_JT_PUT(chunk, "{\"content\":");
      if (rc == GW_OK)
        rc = gw_jt_put_str(chunk, t);
      if (rc == GW_OK)
        rc = gw_buf_appendc(chunk, '}');
      return rc == GW_OK ? gw_jt_chunk_close(chunk, NULL) : rc;
    }
    if (gw_jt_is_object(tu)) {
      int tool = idx >= 0 && idx < N_BLOCKS ? s->block_tool[idx] - 1 : -1;
      const gw_jval *input = GW_JT_GET(tu, "input");
      if (tool < 0)
        return GW_OK;
      if (!gw_jt_is_str(input))
        return GW_ERR_INVALID;
      rc = gw_jt_chunk_open(chunk, s->id, s->created, s->model);
      if (rc == GW_OK)
        rc = GW_JT_PUT(chunk, "{\"tool_calls\":[{\"index\":");
      if (rc == GW_OK)
        rc = gw_jt_put_int(chunk, tool);
      if (rc == GW_OK)
        rc = GW_JT_PUT(chunk, ",\"function\":{\"arguments\":");
      if (rc == GW_OK)
        rc = gw_jt_put_str(chunk, input);
      if (rc == GW_OK)
        rc = GW_JT_PUT(chunk, "}}]}");
      return rc == GW_OK ? gw_jt_chunk_close(chunk, NULL) : rc;
    }
    return GW_OK; /* reasoningContent and others */
  }
  if (strcmp(type, "messageStop") == 0) {
    s->finished = true;
    const char *f = gw_bedrock_finish_reason(gw_jt_str(GW_JT_GET(ev, "stopReason")));
    rc = gw_jt_chunk_open(chunk, s->id, s->created, s->model);
    if (rc == GW_OK)
      rc = GW_JT_PUT(chunk, "{}");
    return rc == GW_OK ? gw_jt_chunk_close(chunk, f ? f : "stop") : rc;
  }
  if (strcmp(type, "metadata") == 0) {
    const gw_jval *u = GW_JT_GET(ev, "usage");
    s->input_tokens = prompt_tokens(u);
    s->output_tokens = GW_JT_INT_OF(u, "outputTokens");
    if (!s->include_usage)
      return GW_OK;
    rc = gw_jt_chunk_head(chunk, s->id, s->created, s->model);
    if (rc == GW_OK)
      rc = GW_JT_PUT(chunk, "[],\"usage\":");
    if (rc == GW_OK)
      rc = gw_jt_put_usage(chunk, s->input_tokens, s->output_tokens,
                           GW_JT_INT_OF(u, "cacheReadInputTokens"));
    return rc == GW_OK ? gw_buf_appendc(chunk, '}') : rc;
  }
  return GW_OK; /* contentBlockStop, unknown events */
}

char *gw_bedrock_model_path(const char *model) {
  size_t n = strlen(model);
  char *s = gw_malloc(3 * n + 1), *o = s;
  if (!s)
    return NULL;
  for (const unsigned char *p = (const unsigned char *)model; *p; p++) {
    if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
        strchr("-._~", *p))
      *o++ = (char)*p;
    else
      o += sprintf(o, "%%%02X", *p);
  }
  *o = '\0';
  return s;
}

/* ---- backends ---------------------------------------------------------------------------- */

gw_bedrock_backend *gw_bedrock_backend_new(const gw_backend_conf *bc) {
  gw_bedrock_backend *b = gw_calloc(1, sizeof(*b));
  if (!b)
    return NULL;
  b->timeout_ms = bc->timeout_ms;
  b->name = gw_strdup(bc->name ? bc->name : "bedrock");
  const char *t = bc->target ? bc->target : "";
  size_t n = strlen(t);
  while (n > 0 && t[n - 1] == '/')
    n--;
  b->base = gw_strndup(t, n);
  /* Host: what follows "scheme://" up to the path. */
  const char *h = strstr(t, "://");
  h = h ? h + 3 : t;
  size_t hl = strcspn(h, "/?#");
  b->host = gw_strndup(h, hl);
  b->region = gw_strdup(bc->region ? bc->region : "us-east-1");
  b->access_key_id = bc->aws_access_key_id ? gw_strdup(bc->aws_access_key_id) : NULL;
  b->secret_access_key = bc->aws_secret_access_key ? gw_strdup(bc->aws_secret_access_key) : NULL;
  if (bc->aws_session_token && !(b->session_token = gw_strdup(bc->aws_session_token)))
    goto fail;
  if (!b->name || !b->base || !b->host || !b->region || !b->access_key_id || !b->secret_access_key)
    goto fail;
  return b;
fail:
  gw_bedrock_backend_free(b);
  return NULL;
}

void gw_bedrock_backend_free(gw_bedrock_backend *b) {
  if (!b)
    return;
  gw_free_secret(b->access_key_id);
  gw_free_secret(b->secret_access_key);
  gw_free_secret(b->session_token);
  gw_free(b->name);
  gw_free(b->base);
  gw_free(b->host);
  gw_free(b->region);
  gw_free(b);
}

/* ---- the exchange -------------------------------------------------------------------------- */

typedef struct {
  gw_bedrock_stream s;
  const char *id, *model;
} br_state;

/* Bedrock's exception names for HTTP statuses (its x-amzn-ErrorType). */
static const char *type_for_status(long st) {
  switch (st) {
  case 400: return "ValidationException";
  case 403: return "AccessDeniedException";
  case 404: return "ResourceNotFoundException";
  case 408: return "ModelTimeoutException";
  case 424: return "ModelErrorException";
  case 429: return "ThrottlingException";
  case 503: return "ServiceUnavailableException";
  default: return st >= 500 ? "InternalServerException" : "ValidationException";
  }
}

static int status_for_type(const char *t) {
  static const struct {
    const char *type;
    int status;
  } m[] = {{"validationException", 400},       {"accessDeniedException", 403},
           {"resourceNotFoundException", 404}, {"modelTimeoutException", 408},
           {"throttlingException", 429},       {"serviceUnavailableException", 503},
           {"modelStreamErrorException", 424}, {"internalServerException", 500}};
  for (size_t i = 0; t && i < sizeof(m) / sizeof(m[0]); i++)
    if (strcasecmp(t, m[i].type) == 0)
      return m[i].status;
  return 500;
}

static const char *message_of(const gw_jval *root) {
  const char *m = gw_jt_str(GW_JT_GET(root, "message"));
  return m ? m : gw_jt_str(GW_JT_GET(root, "Message"));
}

/* A json_lite DOM of |data| in |a|; NULL when it is not JSON. */
static gw_status_code on_error(gw_upstream *u, long st, const char *data, size_t len) {
  gw_arena *a = u->x.call->arena;
  const char *m = message_of(gw_jt_parse(a, data, len));
  u->x.err.type = type_for_status(st);
  if (m)
    u->x.err.message = gw_arena_strdup(a, m);
  else if (len)
    u->x.err.message = gw_arena_strndup(a, data, len > 512 ? 512 : len);
  return gw_openai_status_from_http(st);
}

static void on_body(gw_upstream *u, const char *data, size_t len) {
  br_state *st = u->state;
  gw_arena *a = u->x.call->arena; /* the answer lives as long as the call anyway */
  const gw_jval *root = gw_jt_parse(a, data, len);
  gw_buf out;
  gw_buf_init_arena(&out, (size_t)64 << 20, a);
  int rc = root ? gw_bedrock_response(root, st->id, st->model, gw_upstream_unix_time(), &out)
                : GW_ERR_INVALID;
  if (rc != GW_OK) {
    gw_upstream_undecodable(u, rc, "answer");
    return;
  }
  gw_upstream_emit_text(u, out.data, out.len);
}

static void on_event(gw_upstream *u, const char *name, const char *data, size_t len, bool exc) {
  br_state *st = u->state;
  /* An event's DOM and chunk live until it is emitted. */
  gw_arena *a = gw_arena_new(0, 0);
  if (!a) {
    gw_upstream_end(u, GW_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  const gw_jval *root = gw_jt_parse(a, data, len);
  if (exc) {
    /* "throttlingException" → "ThrottlingException", as the HTTP errors name it. */
    char type[64];
    snprintf(type, sizeof type, "%s", name);
    if (type[0] >= 'a' && type[0] <= 'z')
      type[0] = (char)(type[0] - 'a' + 'A');
    const char *m = message_of(root);
    gw_upstream_fail(u, status_for_type(name), GW_STATUS_INTERNAL, type, NULL,
                     m ? m : "backend stream failed");
    gw_arena_free(a);
    return;
  }
  gw_buf chunk;
  gw_buf_init_arena(&chunk, (size_t)64 << 20, a);
  int rc = root ? gw_bedrock_stream_event(&st->s, name, root, &chunk) : GW_ERR_INVALID;
  if (rc != GW_OK) {
    gw_upstream_undecodable(u, rc, "event");
  } else {
    if (chunk.len)
      gw_upstream_emit_text(u, chunk.data, chunk.len);
    u->x.call->usage.prompt_tokens = st->s.input_tokens;
    u->x.call->usage.completion_tokens = st->s.output_tokens;
  }
  gw_arena_free(a);
}

static void on_stream_end(gw_upstream *u) {
  br_state *st = u->state;
  if (!st->s.finished) {
    char m[160];
    snprintf(m, sizeof m, "backend %s ended the stream before messageStop", u->backend_name);
    gw_upstream_end(u, GW_STATUS_UNAVAILABLE, m);
  }
}

static const gw_upstream_codec codec = {
    .body = on_body, .event = on_event, .stream_end = on_stream_end, .error = on_error};

/* Signs and adds the headers: host, x-amz-date, content-type, accept,
 * x-amz-security-token, authorization. */
static int sign(gw_upstream *u, const gw_bedrock_backend *b, const char *path, bool streaming) {
  gw_arena *a = u->x.call->arena;
  char date[17];
  gw_sigv4_amz_date(gw_upstream_unix_time(), date);
  const char *accept = streaming ? "application/vnd.amazon.eventstream" : "application/json";
  gw_sigv4_header h[5] = {{"host", b->host},
                          {"x-amz-date", date},
                          {"content-type", "application/json"},
                          {"accept", accept},
                          {"x-amz-security-token", b->session_token}};
  size_t nh = b->session_token ? 5 : 4;
  gw_sigv4_request r = {"POST",       path, NULL, h, nh, u->x.body.data ? u->x.body.data : "",
                        u->x.body.len};
  gw_sigv4_credentials cred = {b->access_key_id, b->secret_access_key, b->region, "bedrock"};
  gw_buf auth;
  gw_buf_init(&auth, 4096);
  int rc = gw_sigv4_authorization(&r, &cred, date, &auth, NULL);
  const char *lines[6] = {
      gw_arena_concat(a, "Host: ", b->host),
      gw_arena_concat(a, "X-Amz-Date: ", date),
      "Content-Type: application/json",
      gw_arena_concat(a, "Accept: ", accept),
      rc == GW_OK ? gw_arena_concat(a, "Authorization: ", auth.data) : NULL,
      b->session_token ? gw_arena_concat(a, "X-Amz-Security-Token: ", b->session_token) : NULL,
  };
  gw_buf_release(&auth);
  if (rc != GW_OK)
    return rc;
  for (size_t i = 0; i < 6; i++) {
    if (i == 5 && !b->session_token)
      break;
    if (!lines[i] || gw_upstream_add_header(u, lines[i]) != GW_OK)
      return GW_ERR_NOMEM;
  }
  return GW_OK;
}

static int start(gw_call *call) {
  const gw_bedrock_backend *b = call->route.backend_impl;
  if (!b)
    return GW_ERR_STATE;
  if (!gw_upstream_serves_chat(call, "Bedrock"))
    return GW_OK;
  bool streaming = call->method->server_streaming;
  char err[300] = "";
  gw_upstream_request in;
  int rc = gw_upstream_request_open(&in, call, err, sizeof err);
  const char *model = NULL;
  bool usage = false;
  gw_buf body;
  gw_buf_init(&body, (size_t)64 << 20);
  gw_upstream_body_room(&body, &in);
  if (rc == GW_OK) {
    model = call->route.upstream_model;
    if (!model)
      model = gw_jt_str(GW_JT_GET(in.req, "model"));
    model = gw_arena_strdup(call->arena, model ? model : "");
    usage = gw_jt_is_true(GW_JT_GET(GW_JT_GET(in.req, "stream_options"), "include_usage"));
    if (!model) {
      rc = GW_ERR_NOMEM;
    } else if (!*model) {
      snprintf(err, sizeof err, "no model to send to Bedrock");
      rc = GW_ERR_INVALID;
    } else {
      rc = gw_bedrock_request(in.req, in.arena, &body, err, sizeof err);
    }
  }
  gw_upstream_request_close(&in);
  if (rc != GW_OK) {
    gw_buf_release(&body);
    if (rc == GW_ERR_NOMEM)
      return rc;
    gw_upstream_refuse(call, rc, err);
    return GW_OK;
  }
  gw_upstream *u =
      gw_upstream_new(call, &codec, b->name, streaming,
                      streaming ? GW_UPSTREAM_EVENTSTREAM : GW_UPSTREAM_SSE, b->timeout_ms);
  br_state *st = u ? gw_arena_calloc(call->arena, sizeof(*st)) : NULL;
  char *mp = st ? gw_bedrock_model_path(model) : NULL;
  const char *path = mp ? gw_arena_concat3(call->arena, "/model/", mp,
                                           streaming ? "/converse-stream" : "/converse")
                        : NULL;
  gw_free(mp);
  const char *url = path ? gw_arena_concat(call->arena, b->base, path) : NULL;
  const char *id = call->request_id ? gw_arena_concat(call->arena, "chatcmpl-", call->request_id)
                                    : "chatcmpl-bedrock";
  rc = url && id ? GW_OK : GW_ERR_NOMEM;
  if (rc == GW_OK) {
    u->state = st;
    st->id = id;
    st->model = model;
    gw_bedrock_stream_init(&st->s, id, model, gw_upstream_unix_time(), usage);
    gw_buf_release(&u->x.body); /* (empty: the body just written takes its place) */
    u->x.body = body;
  } else {
    gw_buf_release(&body);
  }
  /* The signed path is the one on the wire, after the base URL's own path. */
  if (rc == GW_OK) {
    const char *bp = strstr(b->base, "://");
    bp = bp ? strchr(bp + 3, '/') : NULL;
    const char *signed_path = bp ? gw_arena_concat(call->arena, bp, path) : path;
    rc = signed_path ? sign(u, b, signed_path, streaming) : GW_ERR_NOMEM;
  }
  if (rc == GW_OK)
    return gw_upstream_start(u, "POST", url);
  if (u)
    gw_upstream_discard(u);
  return rc;
}

const gw_provider_ops gw_provider_bedrock = {
    .name = "bedrock", .start = start, .cancel = gw_upstream_cancel, .resume = gw_upstream_resume};
