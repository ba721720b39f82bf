/* Anthropic Messages provider: translation both ways, and its exchange. */
#include "pipeline/provider_anthropic.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "core/numtext.h"
#include "pipeline/json_text.h"
#include "pipeline/upstream_http.h"
#include "transcoder/json_pb.h"

/* ---- request: OpenAI → Anthropic ------------------------------------------------- */

static int fail(char *err, size_t errlen, const char *fmt, const char *arg) {
  snprintf(err, errlen, fmt, arg ? arg : "");
  return GW_ERR_INVALID;
}

/* {"type":"text","text":...} of a string, or of a content's text. */
static int put_text_block(gw_buf *b, const gw_jval *text_or_content) {
  int rc = GW_JT_PUT(b, "{\"type\":\"text\",\"text\":");
  if (rc == GW_OK)
    rc = gw_jt_put_content_text(b, text_or_content);
  return rc == GW_OK ? gw_buf_appendc(b, '}') : rc;
}

/* The content blocks of an OpenAI content (parts; a string that is not
 * empty: one text block). */
static int put_content_blocks(gw_buf *b, const gw_jval *content, size_t *n, char *err,
                              size_t errlen) {
  if (gw_jt_is_str(content)) {
    int rc = content->len ? gw_jt_sep(b, n) : GW_OK;
    return rc == GW_OK && content->len ? put_text_block(b, content) : rc;
  }
  int rc = GW_OK;
  for (size_t i = 0; rc == GW_OK && i < gw_jt_array_len(content); i++) {
    const gw_jval *part = &content->u.elems[i], *type = GW_JT_GET(part, "type");
    if (GW_JT_STR_IS(type, "text")) {
      const gw_jval *t = GW_JT_GET(part, "text");
      if (gw_jt_is_str(t) && t->len &&
          (rc = gw_jt_sep(b, n)) == GW_OK) /* (Anthropic refuses empty text) */
        rc = put_text_block(b, t);
    } else if (GW_JT_STR_IS(type, "image_url")) {
      const gw_jval *iu = GW_JT_GET(part, "image_url");
      const char *url = iu ? gw_jt_str(GW_JT_GET(iu, "url")) : NULL, *media, *data;
      size_t mlen;
      if (!url)
        return fail(err, errlen, "image_url part without a url", NULL);
      if ((rc = gw_jt_sep(b, n)) != GW_OK)
        break;
      if (gw_upstream_data_url(url, &media, &mlen, &data)) {
        rc = GW_JT_PUT(b, "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":");
        if (rc == GW_OK)
          rc = gw_buf_append_json_string(b, media, mlen);
        if (rc == GW_OK)
          rc = GW_JT_PUT(b, ",\"data\":");
        if (rc == GW_OK)
          rc = gw_buf_append_json_string(b, data, strlen(data));
      } else {
        rc = GW_JT_PUT(b, "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":");
        if (rc == GW_OK)
          rc = gw_buf_append_json_string(b, url, strlen(url));
      }
      if (rc == GW_OK)
        rc = GW_JT_PUT(b, "}}");
    } else {
      return fail(err, errlen, "content part type %s is not supported by Anthropic",
                  gw_jt_str(type));
    }
  }
  return rc;
}

/* The tool_use blocks of an assistant message's tool calls. */
static int put_tool_uses(gw_buf *b, const gw_jval *calls, size_t *n, gw_arena *a, char *err,
                         size_t errlen) {
  static const gw_jt_call_shape tool_use = {
      "{\"type\":\"tool_use\",\"id\":", ",\"name\":", ",\"input\":", "}"};
  return gw_jt_put_tool_calls(b, calls, &tool_use, n, a, err, errlen);
}

/* A user or assistant message whose content is a plain string. */
static bool plain_text(const gw_jval *m) {
  return !GW_JT_STR_IS(GW_JT_GET(m, "role"), "tool") && gw_jt_is_str(GW_JT_GET(m, "content")) &&
         gw_jt_array_len(GW_JT_GET(m, "tool_calls")) == 0;
}

/* The blocks |m| adds to its turn. In a turn of several messages a plain
 * string counts as a text block even when empty, as it stands. */
static int put_message_blocks(gw_buf *b, const gw_jval *m, size_t *n, gw_arena *a, char *err,
                              size_t errlen) {
  const gw_jval *content = GW_JT_GET(m, "content");
  if (GW_JT_STR_IS(GW_JT_GET(m, "role"), "tool")) {
    int rc = gw_jt_sep(b, n);
    if (rc == GW_OK)
      rc = GW_JT_PUT(b, "{\"type\":\"tool_result\",\"tool_use_id\":");
    if (rc == GW_OK)
      rc = gw_jt_put_str(b, GW_JT_GET(m, "tool_call_id"));
    if (rc == GW_OK)
      rc = GW_JT_PUT(b, ",\"content\":");
    if (rc == GW_OK)
      rc = gw_jt_put_content_text(b, content);
    return rc == GW_OK ? gw_buf_appendc(b, '}') : rc;
  }
  if (plain_text(m)) {
    int rc = gw_jt_sep(b, n);
    return rc == GW_OK ? put_text_block(b, content) : rc;
  }
  int rc = put_content_blocks(b, content, n, err, errlen);
  return rc == GW_OK ? put_tool_uses(b, GW_JT_GET(m, "tool_calls"), n, a, err, errlen) : rc;
}

/* The messages, merged into alternating turns: Anthropic wants user and
 * assistant turns to alternate, so consecutive messages on one side
 * (parallel tool results among them) share one turn; system messages go to
 * the system prompt and do not break a turn (gw_jt_turns). */
static int put_turn(gw_jt_writer *t, const gw_jval *msgs, size_t from, size_t to, gw_jt_role side) {
  gw_buf *b = t->b;
  const gw_jval *first = &msgs->u.elems[from];
  size_t members = 0;
  for (size_t k = from; k < to; k++)
    members += !gw_jt_is_system(&msgs->u.elems[k]);
  int rc = gw_jt_sep(b, &t->n);
  if (rc == GW_OK)
    rc = side == GW_JT_USER ? GW_JT_PUT(b, "{\"role\":\"user\",\"content\":")
                            : GW_JT_PUT(b, "{\"role\":\"assistant\",\"content\":");
  if (rc == GW_OK && members == 1 && plain_text(first)) {
    rc = gw_jt_put_str(b, GW_JT_GET(first, "content"));
  } else if (rc == GW_OK) {
    size_t blocks = 0;
    rc = gw_buf_appendc(b, '[');
    for (size_t k = from; rc == GW_OK && k < to; k++)
      if (!gw_jt_is_system(&msgs->u.elems[k]))
        rc = put_message_blocks(b, &msgs->u.elems[k], &blocks, t->a, t->err, t->errlen);
    if (rc == GW_OK)
      rc = gw_buf_appendc(b, ']');
  }
  return rc == GW_OK ? gw_buf_appendc(b, '}') : rc;
}

static int put_messages(gw_buf *b, const gw_jval *msgs, gw_arena *a, char *err, size_t errlen) {
  gw_jt_writer t = {b, 0, a, err, errlen};
  int rc = GW_JT_PUT(b, ",\"messages\":[");
  if (rc == GW_OK)
    rc = gw_jt_turns(msgs, "Anthropic", true, put_turn, &t);
  return rc == GW_OK ? gw_buf_appendc(b, ']') : rc;
}

/* The system prompt: the text of the system and developer messages that
 * have some; one goes as a plain string, several as text blocks. */
static int put_system(gw_buf *b, const gw_jval *msgs) {
  size_t n = 0, written = 0;
  const gw_jval *only = NULL;
  for (size_t i = 0; i < msgs->len; i++) {
    const gw_jval *m = &msgs->u.elems[i];
    if (gw_jt_is_system(m) && gw_jt_content_text_len(GW_JT_GET(m, "content"))) {
      n++;
      only = GW_JT_GET(m, "content");
    }
  }
  if (n == 0)
    return GW_OK;
  int rc = GW_JT_PUT(b, ",\"system\":");
  if (n == 1)
    return rc == GW_OK ? gw_jt_put_content_text(b, only) : rc;
  if (rc == GW_OK)
    rc = gw_buf_appendc(b, '[');
  for (size_t i = 0; rc == GW_OK && i < msgs->len; i++) {
    const gw_jval *m = &msgs->u.elems[i], *c = GW_JT_GET(m, "content");
    if (gw_jt_is_system(m) && gw_jt_content_text_len(c) && (rc = gw_jt_sep(b, &written)) == GW_OK)
      rc = put_text_block(b, c);
  }
  return rc == GW_OK ? gw_buf_appendc(b, ']') : rc;
}

static int put_tools(gw_buf *b, const gw_jval *req, char *err, size_t errlen) {
  const gw_jval *tools = GW_JT_GET(req, "tools");
  size_t ntools = gw_jt_array_len(tools);
  int rc = GW_OK;
  if (ntools)
    rc = GW_JT_PUT(b, ",\"tools\":[");
  static const gw_jt_tool_shape tool = {
      "{\"name\":", ",\"input_schema\":", "{\"type\":\"object\",\"properties\":{}}", "}"};
  if (rc == GW_OK)
    rc = gw_jt_put_tools(b, tools, &tool, err, errlen);
  if (rc == GW_OK && ntools)
    rc = gw_buf_appendc(b, ']');
  if (rc != GW_OK)
    return rc;
  /* tool_choice: "required" is Anthropic's "any"; parallel_tool_calls false
   * is its disable_parallel_tool_use. */
  const gw_jval *choice = GW_JT_GET(req, "tool_choice"),
                *parallel = GW_JT_GET(req, "parallel_tool_calls");
  bool no_parallel = gw_jt_is_false(parallel);
  const char *type = NULL;
  const gw_jval *name = NULL;
  if (gw_jt_is_str(choice)) {
    type = GW_JT_STR_IS(choice, "required") ? "any"
           : GW_JT_STR_IS(choice, "none")   ? "none"
                                            : "auto";
  } else if (gw_jt_is_object(choice)) {
    const gw_jval *fn = GW_JT_GET(choice, "function");
    name = GW_JT_GET(fn, "name");
    if (!gw_jt_is_str(name))
      return fail(err, errlen, "tool_choice names no function", NULL);
    type = "tool";
  } else if (no_parallel && ntools) {
    type = "auto";
  }
  if (!type)
    return GW_OK;
  rc = GW_JT_PUT(b, ",\"tool_choice\":{\"type\":");
  if (rc == GW_OK)
    rc = gw_buf_append_json_string(b, type, strlen(type));
  if (rc == GW_OK && name && (rc = GW_JT_PUT(b, ",\"name\":")) == GW_OK)
    rc = gw_jt_put_str(b, name);
  if (rc == GW_OK && no_parallel && strcmp(type, "none") != 0)
    rc = GW_JT_PUT(b, ",\"disable_parallel_tool_use\":true");
  return rc == GW_OK ? gw_buf_appendc(b, '}') : rc;
}

int gw_anthropic_request(const gw_jval *req, const char *model, bool stream, gw_arena *a,
                         gw_buf *out, char *err, size_t errlen) {
  err[0] = '\0';
  const gw_jval *msgs = gw_jt_is_object(req) ? GW_JT_GET(req, "messages") : NULL;
  if (gw_jt_array_len(msgs) == 0) {
    snprintf(err, errlen, "messages must be a non-empty list");
    return GW_ERR_INVALID;
  }
  const gw_jval *n = GW_JT_GET(req, "n");
  int64_t nv;
  if (gw_jt_is_int(n) && gw_json_lite_int64(n, &nv) == GW_OK && nv != 1) {
    snprintf(err, errlen, "n other than 1 is not supported by Anthropic");
    return GW_ERR_INVALID;
  }
  const gw_jval *jmodel = GW_JT_GET(req, "model");
  if (!model)
    model = gw_jt_str(jmodel) ? gw_jt_str(jmodel) : "";
  int rc = GW_JT_PUT(out, "{\"model\":");
  if (rc == GW_OK)
    rc = gw_buf_append_json_string(out, model, strlen(model));
  if (rc == GW_OK)
    rc = put_system(out, msgs);
  if (rc == GW_OK)
    rc = put_messages(out, msgs, a, err, errlen);
  if (rc != GW_OK)
    return rc;
  const gw_jval *mt = GW_JT_GET(req, "max_completion_tokens");
  if (!gw_jt_is_int(mt))
    mt = GW_JT_GET(req, "max_tokens");
  rc = GW_JT_PUT(out, ",\"max_tokens\":");
  if (rc == GW_OK)
    rc = gw_jt_is_int(mt) ? gw_buf_append(out, mt->u.str, mt->len)
                          : gw_jt_put_int(out, GW_ANTHROPIC_DEFAULT_MAX_TOKENS);
  static const char *const same[] = {"temperature", "top_p", "top_k"};
  for (size_t k = 0; rc == GW_OK && k < sizeof(same) / sizeof(same[0]); k++) {
    const gw_jval *v = gw_jt_get(req, same[k], strlen(same[k]));
    if (gw_jt_is_number(v) && (rc = gw_buf_printf(out, ",\"%s\":", same[k])) == GW_OK)
      rc = gw_buf_append(out, v->u.str, v->len);
  }
  const gw_jval *stop = GW_JT_GET(req, "stop");
  if (rc == GW_OK && gw_jt_is_str(stop)) {
    rc = GW_JT_PUT(out, ",\"stop_sequences\":[");
    if (rc == GW_OK)
      rc = gw_jt_put_str(out, stop);
    if (rc == GW_OK)
      rc = gw_buf_appendc(out, ']');
  } else if (rc == GW_OK && gw_jt_array_len(stop)) {
    rc = GW_JT_PUT(out, ",\"stop_sequences\":");
    if (rc == GW_OK)
      rc = gw_jt_put_value(out, stop);
  }
  const gw_jval *user = GW_JT_GET(req, "user");
  if (rc == GW_OK && gw_jt_is_str(user) && user->len) {
    rc = GW_JT_PUT(out, ",\"metadata\":{\"user_id\":");
    if (rc == GW_OK)
      rc = gw_jt_put_str(out, user);
    if (rc == GW_OK)
      rc = gw_buf_appendc(out, '}');
  }
  if (rc == GW_OK)
    rc = put_tools(out, req, err, errlen);
  if (rc == GW_OK && stream)
    rc = GW_JT_PUT(out, ",\"stream\":true");
  return rc == GW_OK ? gw_buf_appendc(out, '}') : rc;
}

/* ---- response: Anthropic → OpenAI ----------------------------------------------- */

const char *gw_anthropic_finish_reason(const char *stop) {
  if (!stop)
    return NULL;
  if (strcmp(stop, "max_tokens") == 0)
    return "length";
  if (strcmp(stop, "tool_use") == 0)
    return "tool_calls";
  if (strcmp(stop, "refusal") == 0)
    return "content_filter";
  return "stop"; /* end_turn, stop_sequence, pause_turn */
}

int gw_anthropic_http_status(const char *type) {
  static const struct {
    const char *type;
    int status;
  } map[] = {
      {"invalid_request_error", 400},
      {"authentication_error", 401},
      {"permission_error", 403},
      {"not_found_error", 404},
      {"request_too_large", 413},
      {"rate_limit_error", 429},
      {"api_error", 500},
      {"overloaded_error", 529},
  };
  for (size_t i = 0; type && i < sizeof(map) / sizeof(map[0]); i++)
    if (strcmp(type, map[i].type) == 0)
      return map[i].status;
  return 500;
}

/* OpenAI's usage: its prompt tokens count the cached and cache-written
 * ones too, as OpenAI's do. */
static int anthropic_usage(gw_buf *b, int64_t in, int64_t out, int64_t cache_read,
                           int64_t cache_write) {
  return gw_jt_put_usage(b, in + cache_read + cache_write, out, cache_read);
}

/* A tool_use block as an OpenAI tool call: its input becomes the arguments
 * string (compact JSON). */
static int put_tool_call(gw_buf *b, const gw_jval *block) {
  const gw_jval *id = GW_JT_GET(block, "id"), *name = GW_JT_GET(block, "name"),
                *input = GW_JT_GET(block, "input");
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

int gw_anthropic_response(const gw_jval *msg, long long created, gw_buf *out) {
  const gw_jval *content = GW_JT_GET(msg, "content");
  const gw_jval *id = GW_JT_GET(msg, "id"), *model = GW_JT_GET(msg, "model");
  if (!content || content->type != GW_JVAL_ARRAY || !gw_jt_is_str(id) || !gw_jt_is_str(model))
    return GW_ERR_INVALID;
  int rc = GW_JT_PUT(out, "{\"id\":");
  if (rc == GW_OK)
    rc = gw_jt_put_str(out, id);
  if (rc == GW_OK)
    rc = GW_JT_PUT(out, ",\"object\":\"chat.completion\",\"created\":");
  if (rc == GW_OK)
    rc = gw_jt_put_int(out, created);
  if (rc == GW_OK)
    rc = GW_JT_PUT(out, ",\"model\":");
  if (rc == GW_OK)
    rc = gw_jt_put_str(out, model);
  if (rc == GW_OK)
    rc = GW_JT_PUT(out,
                   ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
  /* The text blocks joined into one string (null when there are none);
   * thinking and other blocks are not part of OpenAI's message. */
  size_t texts = 0, tools = 0;
  for (size_t i = 0; rc == GW_OK && i < content->len; i++) {
    const gw_jval *b = &content->u.elems[i], *type = GW_JT_GET(b, "type");
    if (GW_JT_STR_IS(type, "tool_use")) {
      tools++;
    } else if (GW_JT_STR_IS(type, "text")) {
      const gw_jval *t = GW_JT_GET(b, "text");
      if (texts++ == 0)
        rc = gw_buf_appendc(out, '"');
      if (rc == GW_OK && gw_jt_is_str(t))
        rc = gw_buf_append_json_chars(out, t->u.str, t->len);
    }
  }
  if (rc == GW_OK)
    rc = texts ? gw_buf_appendc(out, '"') : GW_JT_PUT(out, "null");
  if (rc == GW_OK)
    rc = GW_JT_PUT(out, ",\"refusal\":null");
  if (rc == GW_OK && tools) {
    rc = GW_JT_PUT(out, ",\"tool_calls\":[");
    size_t n = 0;
    for (size_t i = 0; rc == GW_OK && i < content->len; i++) {
      const gw_jval *b = &content->u.elems[i];
      if (!GW_JT_STR_IS(GW_JT_GET(b, "type"), "tool_use"))
        continue;
      if (n++)
        rc = gw_buf_appendc(out, ',');
      if (rc == GW_OK)
        rc = put_tool_call(out, b);
    }
    if (rc == GW_OK)
      rc = gw_buf_appendc(out, ']');
  }
  const char *finish = gw_anthropic_finish_reason(gw_jt_str(GW_JT_GET(msg, "stop_reason")));
  if (rc == GW_OK)
    rc = GW_JT_PUT(out, "},\"finish_reason\":");
  if (rc == GW_OK)
    rc = gw_buf_append_json_string(out, finish ? finish : "stop", strlen(finish ? finish : "stop"));
  if (rc == GW_OK)
    rc = GW_JT_PUT(out, ",\"logprobs\":null}],\"usage\":");
  const gw_jval *usage = GW_JT_GET(msg, "usage");
  if (rc == GW_OK)
    rc = anthropic_usage(out, GW_JT_INT_OF(usage, "input_tokens"),
                         GW_JT_INT_OF(usage, "output_tokens"),
                         GW_JT_INT_OF(usage, "cache_read_input_tokens"),
                         GW_JT_INT_OF(usage, "cache_creation_input_tokens"));
  return rc == GW_OK ? gw_buf_appendc(out, '}') : rc;
}

/* ---- stream: Anthropic events → OpenAI chunks ------------------------------------ */

void gw_anthropic_stream_init(gw_anthropic_stream *s, long long created, bool include_usage) {
  memset(s, 0, sizeof(*s));
  s->created = created;
  s->include_usage = include_usage;
}

static void copy_id(char *dst, size_t cap, const gw_jval *v) {
  if (gw_jt_is_str(v))
    snprintf(dst, cap, "%s", v->u.str);
}

/* A chunk whose delta is {"content": text}. */
static int text_chunk(const gw_anthropic_stream *s, gw_buf *b, const gw_jval *text) {
  if (!gw_jt_is_str(text))
    return GW_ERR_INVALID;
  int rc = gw_jt_chunk_open(b, s->id, s->created, s->model);
  if (rc == GW_OK)
    rc = GW_JT_PUT(b, "{\"content\":");
  if (rc == GW_OK)
    rc = gw_jt_put_str(b, text);
  if (rc == GW_OK)
    rc = gw_buf_appendc(b, '}');
  return rc == GW_OK ? gw_jt_chunk_close(b, NULL) : rc;
}

/* The content block |idx|'s tool call index, -1 when it is not a tool. */
static int block_tool(const gw_anthropic_stream *s, int64_t idx) {
  size_t n = sizeof s->block_tool / sizeof s->block_tool[0];
  return idx >= 0 && (uint64_t)idx < n ? s->block_tool[idx] - 1 : -1;
}

int gw_anthropic_stream_event(gw_anthropic_stream *s, const gw_jval *ev, gw_buf *chunk) {
  const gw_jval *type = GW_JT_GET(ev, "type");
  if (!gw_jt_is_str(type))
    return GW_ERR_INVALID;
  int rc;
  if (GW_JT_STR_IS(type, "message_start")) {
    const gw_jval *m = GW_JT_GET(ev, "message"), *u = GW_JT_GET(m, "usage");
    if (m) {
      copy_id(s->id, sizeof s->id, GW_JT_GET(m, "id"));
      copy_id(s->model, sizeof s->model, GW_JT_GET(m, "model"));
    }
    s->input_tokens =
        GW_JT_INT_OF(u, "input_tokens") + GW_JT_INT_OF(u, "cache_creation_input_tokens");
    s->cache_read = GW_JT_INT_OF(u, "cache_read_input_tokens");
    s->output_tokens = GW_JT_INT_OF(u, "output_tokens");
    rc = gw_jt_chunk_open(chunk, s->id, s->created, s->model);
    if (rc == GW_OK)
      rc = GW_JT_PUT(chunk, "{\"role\":\"assistant\",\"content\":\"\"}");
    return rc == GW_OK ? gw_jt_chunk_close(chunk, NULL) : rc;
  }
  if (GW_JT_STR_IS(type, "content_block_start")) {
    const gw_jval *b = GW_JT_GET(ev, "content_block");
    const gw_jval *bt = GW_JT_GET(b, "type");
    if (GW_JT_STR_IS(bt, "tool_use")) {
      const gw_jval *id = GW_JT_GET(b, "id"), *name = GW_JT_GET(b, "name");
      if (!gw_jt_is_str(id) || !gw_jt_is_str(name))
        return GW_ERR_INVALID;
      int tool = s->next_tool++;
      int64_t idx = GW_JT_INT_OF(ev, "index");
      if (idx >= 0 && (uint64_t)idx < sizeof s->block_tool / sizeof s->block_tool[0])
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
    const gw_jval *t = GW_JT_GET(b, "text");
    if (GW_JT_STR_IS(bt, "text") && gw_jt_is_str(t) && t->len)
      return text_chunk(s, chunk, t);
    return GW_OK;
  }
  if (GW_JT_STR_IS(type, "content_block_delta")) {
    const gw_jval *d = GW_JT_GET(ev, "delta");
    const gw_jval *dt = GW_JT_GET(d, "type");
    if (GW_JT_STR_IS(dt, "text_delta"))
      return text_chunk(s, chunk, GW_JT_GET(d, "text"));
    if (GW_JT_STR_IS(dt, "input_json_delta")) {
      int tool = block_tool(s, GW_JT_INT_OF(ev, "index"));
      const gw_jval *pj = GW_JT_GET(d, "partial_json");
      if (tool < 0)
        return GW_OK;
      if (!gw_jt_is_str(pj))
        return GW_ERR_INVALID;
      rc = gw_jt_chunk_open(chunk, s->id, s->created, s->model);
      if (rc == GW_OK)
        rc = GW_JT_PUT(chunk, "{\"tool_calls\":[{\"index\":");
      if (rc == GW_OK)
        rc = gw_jt_put_int(chunk, tool);
      if (rc == GW_OK)
        rc = GW_JT_PUT(chunk, ",\"function\":{\"arguments\":");
      if (rc == GW_OK)
        rc = gw_jt_put_str(chunk, pj);
      if (rc == GW_OK)
        rc = GW_JT_PUT(chunk, "}}]}");
      return rc == GW_OK ? gw_jt_chunk_close(chunk, NULL) : rc;
    }
    return GW_OK; /* thinking_delta, signature_delta, citations: not in OpenAI's chunk */
  }
  if (GW_JT_STR_IS(type, "message_delta")) {
    const gw_jval *u = GW_JT_GET(ev, "usage"), *d = GW_JT_GET(ev, "delta");
    const gw_jval *ot = GW_JT_GET(u, "output_tokens"), *it = GW_JT_GET(u, "input_tokens");
    if (gw_jt_is_int(ot))
      s->output_tokens = GW_JT_INT_OF(u, "output_tokens");
    if (gw_jt_is_int(it))
      s->input_tokens =
          GW_JT_INT_OF(u, "input_tokens") + GW_JT_INT_OF(u, "cache_creation_input_tokens");
    const char *stop = gw_jt_str(GW_JT_GET(d, "stop_reason"));
    if (!stop)
      return GW_OK;
    rc = gw_jt_chunk_open(chunk, s->id, s->created, s->model);
    if (rc == GW_OK)
      rc = GW_JT_PUT(chunk, "{}");
    return rc == GW_OK ? gw_jt_chunk_close(chunk, gw_anthropic_finish_reason(stop)) : rc;
  }
  if (GW_JT_STR_IS(type, "message_stop")) {
    s->finished = true;
    if (!s->include_usage)
      return GW_OK;
    rc = gw_jt_chunk_head(chunk, s->id, s->created, s->model);
    if (rc == GW_OK)
      rc = GW_JT_PUT(chunk, "[],\"usage\":");
    if (rc == GW_OK)
      rc = anthropic_usage(chunk, s->input_tokens, s->output_tokens, s->cache_read, 0);
    return rc == GW_OK ? gw_buf_appendc(chunk, '}') : rc;
  }
  if (GW_JT_STR_IS(type, "error"))
    return GW_ERR_STATE;
  return GW_OK; /* ping, content_block_stop, unknown events */
}

/* ---- backends -------------------------------------------------------------------- */

static char *strdup_printf(const char *fmt, const char *a, const char *b) {
  size_t len = strlen(fmt) + strlen(a) + (b ? strlen(b) : 0) + 1;
  char *s = gw_malloc(len);
  if (s)
    snprintf(s, len, fmt, a, b);
  return s;
}

gw_anthropic_backend *gw_anthropic_backend_new(const gw_backend_conf *bc) {
  gw_anthropic_backend *b = gw_calloc(1, sizeof(*b));
  if (!b)
    return NULL;
  b->timeout_ms = bc->timeout_ms;
  b->name = gw_strdup(bc->name ? bc->name : "anthropic");
  const char *t = bc->target && *bc->target ? bc->target : GW_ANTHROPIC_DEFAULT_URL;
  size_t n = strlen(t);
  while (n > 0 && t[n - 1] == '/')
    n--;
  char *base = gw_strndup(t, n);
  if (!base)
    goto fail;
  bool has_v1 = n >= 3 && strcmp(base + n - 3, "/v1") == 0;
  b->url = strdup_printf(has_v1 ? "%s/messages" : "%s/v1/messages", base, NULL);
  gw_free(base);
  b->version_header = strdup_printf(
      "anthropic-version: %s",
      bc->api_version && *bc->api_version ? bc->api_version : GW_ANTHROPIC_DEFAULT_VERSION, NULL);
  if (!b->name || !b->url || !b->version_header)
    goto fail;
  if (bc->api_key && *bc->api_key &&
      !(b->key_header = strdup_printf("x-api-key: %s", bc->api_key, NULL)))
    goto fail;
  return b;
fail:
  gw_anthropic_backend_free(b);
  return NULL;
}

void gw_anthropic_backend_free(gw_anthropic_backend *b) {
  if (!b)
    return;
  gw_free_secret(b->key_header);
  gw_free(b->name);
  gw_free(b->url);
  gw_free(b->version_header);
  gw_free(b);
}

/* ---- the exchange -------------------------------------------------------------------- */

typedef struct {
  gw_anthropic_stream s;
} anth_state;

/* Fills u->x.err from an Anthropic error object {"type":"error","error":{...}}. */
static gw_status_code take_error(gw_upstream *u, long http_status, const gw_jval *root) {
  gw_arena *a = u->x.call->arena;
  const gw_jval *e = GW_JT_GET(root, "error");
  const char *type = gw_jt_str(GW_JT_GET(e, "type"));
  const char *msg = gw_jt_str(GW_JT_GET(e, "message"));
  u->x.has_error = true;
  u->x.err.http_status = http_status ? http_status : gw_anthropic_http_status(type);
  u->x.err.type = type ? gw_arena_strdup(a, type) : NULL;
  u->x.err.message = msg ? gw_arena_strdup(a, msg) : NULL;
  if (http_status >= 400)
    return gw_openai_status_from_http(http_status);
  return gw_upstream_status_from_type(type);
}

static gw_status_code on_error(gw_upstream *u, long st, const char *data, size_t len) {
  const gw_jval *root = NULL;
  gw_json_lite_error je;
  gw_status_code code = gw_openai_status_from_http(st);
  if (gw_json_lite_parse(data, len, u->x.call->arena, 0, 0, &root, &je) == GW_OK &&
      root->type == GW_JVAL_OBJECT) {
    const gw_jval *e = GW_JT_GET(root, "error");
    if (gw_jt_is_object(e))
      return take_error(u, st, root);
  }
  if (len)
    u->x.err.message = gw_arena_strndup(u->x.call->arena, data, len > 512 ? 512 : len);
  return code;
}

static void on_body(gw_upstream *u, const char *data, size_t len) {
  gw_arena *a = u->x.call->arena; /* the answer lives as long as the call anyway */
  const gw_jval *root = NULL;
  gw_json_lite_error je;
  int rc = gw_json_lite_parse(data, len, a, 0, 0, &root, &je);
  gw_buf out;
  gw_buf_init_arena(&out, (size_t)64 << 20, a);
  if (rc == GW_OK)
    rc = root->type == GW_JVAL_OBJECT ? gw_anthropic_response(root, gw_upstream_unix_time(), &out)
                                      : GW_ERR_INVALID;
  if (rc != GW_OK) {
    gw_upstream_undecodable(u, rc, "message");
    return;
  }
  gw_upstream_emit_text(u, out.data, out.len);
}

static void on_event(gw_upstream *u, const char *name, const char *data, size_t len, bool exc) {
  (void)name;
  (void)exc;
  anth_state *st = u->state;
  /* An event's DOM and chunk live until it is emitted. */
  gw_arena *a = gw_arena_new(0, 0);
  if (!a) {
    gw_upstream_end(u, GW_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  const gw_jval *ev = NULL;
  gw_json_lite_error je;
  gw_buf chunk;
  gw_buf_init_arena(&chunk, (size_t)64 << 20, a);
  int rc = gw_json_lite_parse(data, len, a, 0, 0, &ev, &je);
  if (rc == GW_OK)
    rc =
        ev->type == GW_JVAL_OBJECT ? gw_anthropic_stream_event(&st->s, ev, &chunk) : GW_ERR_INVALID;
  if (rc == GW_ERR_STATE) {
    gw_status_code code = take_error(u, 0, ev);
    gw_upstream_end(u, code, u->x.err.message ? u->x.err.message : "backend stream failed");
  } else if (rc != GW_OK) {
    gw_upstream_undecodable(u, rc, "event");
  } else {
    if (chunk.len)
      gw_upstream_emit_text(u, chunk.data, chunk.len);
    u->x.call->usage.prompt_tokens = st->s.input_tokens + st->s.cache_read;
    u->x.call->usage.completion_tokens = st->s.output_tokens;
  }
  gw_arena_free(a);
}

static void on_stream_end(gw_upstream *u) {
  anth_state *st = u->state;
  if (!st->s.finished) {
    char m[160];
    snprintf(m, sizeof m, "backend %s ended the stream before message_stop", u->backend_name);
    gw_upstream_end(u, GW_STATUS_UNAVAILABLE, m);
  }
}

static const gw_upstream_codec codec = {
    .body = on_body, .event = on_event, .stream_end = on_stream_end, .error = on_error};

static bool include_usage(const gw_jval *req) {
  const gw_jval *so = GW_JT_GET(req, "stream_options");
  const gw_jval *iu = GW_JT_GET(so, "include_usage");
  return gw_jt_is_true(iu);
}

static int start(gw_call *call) {
  const gw_anthropic_backend *b = call->route.backend_impl;
  if (!b)
    return GW_ERR_STATE;
  if (!gw_upstream_serves_chat(call, "Anthropic"))
    return GW_OK;
  bool streaming = call->method->server_streaming;
  gw_upstream *u =
      gw_upstream_new(call, &codec, b->name, streaming, GW_UPSTREAM_SSE, b->timeout_ms);
  anth_state *st = u ? gw_arena_calloc(call->arena, sizeof(*st)) : NULL;
  if (!st) {
    if (u)
      gw_upstream_discard(u);
    return GW_ERR_NOMEM;
  }
  u->state = st;

  char err[256] = "";
  gw_upstream_request in;
  int rc = gw_upstream_request_open(&in, call, err, sizeof err);
  gw_upstream_body_room(&u->x.body, &in);
  if (rc == GW_OK)
    rc = gw_anthropic_request(in.req, call->route.upstream_model, streaming, in.arena, &u->x.body,
                              err, sizeof err);
  gw_anthropic_stream_init(&st->s, gw_upstream_unix_time(), in.req && include_usage(in.req));
  gw_upstream_request_close(&in);
  if (rc == GW_OK && ((b->key_header && gw_upstream_add_header(u, b->key_header) != GW_OK) ||
                      gw_upstream_add_header(u, b->version_header) != GW_OK ||
                      gw_upstream_add_header(u, "Content-Type: application/json") != GW_OK ||
                      gw_upstream_add_header(u, streaming ? "Accept: text/event-stream"
                                                          : "Accept: application/json") != GW_OK))
    rc = GW_ERR_NOMEM;
  if (rc == GW_OK)
    return gw_upstream_start(u, "POST", b->url);
  /* Nothing went upstream: |u| goes, then the call ends (which may dispose
   * of it and |u| with it). */
  gw_upstream_discard(u);
  gw_upstream_refuse(call, rc, err);
  return GW_OK;
}

const gw_provider_ops gw_provider_anthropic = {.name = "anthropic",
                                               .start = start,
                                               .cancel = gw_upstream_cancel,
                                               .resume = gw_upstream_resume};
