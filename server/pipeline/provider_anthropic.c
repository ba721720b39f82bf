/* Anthropic Messages provider: translation both ways, and its exchange. */
#include "pipeline/provider_anthropic.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "pipeline/upstream_http.h"
#include "transcoder/json_pb.h"

static const gw_json_opts out_opts = {.int64_as_number = 1, .bare_unions = 1};

/* ---- request: OpenAI → Anthropic ------------------------------------------------- */

static int fail(char *err, size_t errlen, const char *fmt, const char *arg) {
  snprintf(err, errlen, fmt, arg ? arg : "");
  return GW_ERR_INVALID;
}

/* Content blocks of an OpenAI message content (string or parts), appended to
 * |blocks|. */
static int content_blocks(const json_t *content, json_t *blocks, char *err, size_t errlen) {
  if (json_is_string(content)) {
    if (json_string_length(content) == 0)
      return GW_OK;
    return json_array_append_new(blocks, json_pack("{s:s,s:O}", "type", "text", "text", content))
               ? GW_ERR_NOMEM
               : GW_OK;
  }
  size_t i;
  const json_t *part;
  json_array_foreach(content, i, part) {
    const char *type = json_string_value(json_object_get(part, "type"));
    json_t *b = NULL;
    if (type && strcmp(type, "text") == 0) {
      b = json_pack("{s:s,s:O}", "type", "text", "text", json_object_get(part, "text"));
    } else if (type && strcmp(type, "image_url") == 0) {
      const char *url =
          json_string_value(json_object_get(json_object_get(part, "image_url"), "url"));
      const char *media, *data;
      size_t mlen;
      if (!url)
        return fail(err, errlen, "image_url part without a url", NULL);
      if (gw_upstream_data_url(url, &media, &mlen, &data))
        b = json_pack("{s:s,s:{s:s,s:s%,s:s}}", "type", "image", "source", "type", "base64",
                      "media_type", media, mlen, "data", data);
      else
        b = json_pack("{s:s,s:{s:s,s:s}}", "type", "image", "source", "type", "url", "url", url);
    } else {
      return fail(err, errlen, "content part type %s is not supported by Anthropic", type);
    }
    if (!b || json_array_append_new(blocks, b))
      return GW_ERR_NOMEM;
  }
  return GW_OK;
}

/* Appends |msg| (role, content) to |messages|, merging it into the last one
 * when that has the same role (Anthropic wants user and assistant turns to
 * alternate; parallel tool results share one user turn). Takes |content|. */
static int push_message(json_t *messages, const char *role, json_t *content) {
  size_t n = json_array_size(messages);
  json_t *last = n ? json_array_get(messages, n - 1) : NULL;
  if (last && strcmp(json_string_value(json_object_get(last, "role")), role) == 0) {
    json_t *prev = json_object_get(last, "content");
    json_t *arr = json_is_array(prev) ? json_incref(prev) : json_array();
    if (!arr) {
      json_decref(content);
      return GW_ERR_NOMEM;
    }
    if (json_is_string(prev))
      json_array_append_new(arr, json_pack("{s:s,s:O}", "type", "text", "text", prev));
    if (json_is_string(content))
      json_array_append_new(arr, json_pack("{s:s,s:O}", "type", "text", "text", content));
    else
      json_array_extend(arr, content);
    json_decref(content);
    return json_object_set_new(last, "content", arr) ? GW_ERR_NOMEM : GW_OK;
  }
  json_t *m = json_pack("{s:s,s:o}", "role", role, "content", content);
  return !m || json_array_append_new(messages, m) ? GW_ERR_NOMEM : GW_OK;
}

static int translate_message(const json_t *m, json_t *messages, json_t *system, char *err,
                             size_t errlen) {
  const char *role = json_string_value(json_object_get(m, "role"));
  const json_t *content = json_object_get(m, "content");
  if (!role)
    return fail(err, errlen, "a message has no role", NULL);
  if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
    char *t = gw_upstream_content_text(content);
    if (!t)
      return GW_ERR_NOMEM;
    int rc = *t && json_array_append_new(system, json_pack("{s:s,s:s}", "type", "text", "text", t))
                 ? GW_ERR_NOMEM
                 : GW_OK;
    gw_free(t);
    return rc;
  }
  if (strcmp(role, "tool") == 0) {
    const char *id = json_string_value(json_object_get(m, "tool_call_id"));
    if (!id)
      return fail(err, errlen, "a tool message has no tool_call_id", NULL);
    char *t = gw_upstream_content_text(content);
    if (!t)
      return GW_ERR_NOMEM;
    json_t *blocks =
        json_pack("[{s:s,s:s,s:s}]", "type", "tool_result", "tool_use_id", id, "content", t);
    gw_free(t);
    return blocks ? push_message(messages, "user", blocks) : GW_ERR_NOMEM;
  }
  if (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0)
    return fail(err, errlen, "message role %s is not supported by Anthropic", role);
  const json_t *calls = json_object_get(m, "tool_calls");
  if (json_is_string(content) && json_array_size(calls) == 0)
    return push_message(messages, role, json_incref((json_t *)content));
  json_t *blocks = json_array();
  if (!blocks)
    return GW_ERR_NOMEM;
  int rc = content_blocks(content, blocks, err, errlen);
  size_t i;
  const json_t *tc;
  json_array_foreach(calls, i, tc) {
    if (rc != GW_OK)
      break;
    const json_t *fn = json_object_get(tc, "function");
    const char *args = json_string_value(json_object_get(fn, "arguments"));
    json_t *input = args && *args ? json_loads(args, JSON_DECODE_ANY, NULL) : json_object();
    if (!json_is_object(input)) {
      json_decref(input);
      rc = fail(err, errlen, "tool call arguments are not a JSON object", NULL);
      break;
    }
    json_t *b = json_pack("{s:s,s:O,s:O,s:o}", "type", "tool_use", "id", json_object_get(tc, "id"),
                          "name", json_object_get(fn, "name"), "input", input);
    if (!b || json_array_append_new(blocks, b))
      rc = GW_ERR_NOMEM;
  }
  if (rc != GW_OK) {
    json_decref(blocks);
    return rc;
  }
  return push_message(messages, role, blocks);
}

static int translate_tools(const json_t *req, json_t *out, char *err, size_t errlen) {
  const json_t *tools = json_object_get(req, "tools");
  if (json_array_size(tools)) {
    json_t *arr = json_array();
    if (!arr || json_object_set_new(out, "tools", arr))
      return GW_ERR_NOMEM;
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t) {
      const json_t *fn = json_object_get(t, "function");
      const char *name = json_string_value(json_object_get(fn, "name"));
      if (!name)
        return fail(err, errlen, "a tool has no function name", NULL);
      json_t *schema = json_object_get(fn, "parameters");
      json_t *o = json_pack("{s:s}", "name", name);
      if (!o || json_array_append_new(arr, o))
        return GW_ERR_NOMEM;
      const json_t *d = json_object_get(fn, "description");
      if (json_is_string(d))
        json_object_set(o, "description", (json_t *)d);
      if (json_is_object(schema))
        json_object_set(o, "input_schema", schema);
      else
        json_object_set_new(o, "input_schema",
                            json_pack("{s:s,s:{}}", "type", "object", "properties"));
    }
  }
  const json_t *choice = json_object_get(req, "tool_choice");
  const json_t *parallel = json_object_get(req, "parallel_tool_calls");
  json_t *tc = NULL;
  if (json_is_string(choice)) {
    const char *c = json_string_value(choice);
    const char *type = strcmp(c, "required") == 0 ? "any"
                       : strcmp(c, "none") == 0   ? "none"
                                                  : "auto";
    tc = json_pack("{s:s}", "type", type);
  } else if (json_is_object(choice)) {
    const char *name =
        json_string_value(json_object_get(json_object_get(choice, "function"), "name"));
    if (!name)
      return fail(err, errlen, "tool_choice names no function", NULL);
    tc = json_pack("{s:s,s:s}", "type", "tool", "name", name);
  } else if (json_is_false(parallel) && json_array_size(tools)) {
    tc = json_pack("{s:s}", "type", "auto");
  }
  if (tc && json_is_false(parallel) &&
      strcmp(json_string_value(json_object_get(tc, "type")), "none"))
    json_object_set_new(tc, "disable_parallel_tool_use", json_true());
  if (tc && json_object_set_new(out, "tool_choice", tc))
    return GW_ERR_NOMEM;
  return GW_OK;
}

int gw_anthropic_request(const json_t *req, const char *model, bool stream, json_t **out, char *err,
                         size_t errlen) {
  err[0] = '\0';
  const json_t *msgs = json_object_get(req, "messages");
  if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
    snprintf(err, errlen, "messages must be a non-empty list");
    return GW_ERR_INVALID;
  }
  const json_t *n = json_object_get(req, "n");
  if (json_is_integer(n) && json_integer_value(n) != 1) {
    snprintf(err, errlen, "n other than 1 is not supported by Anthropic");
    return GW_ERR_INVALID;
  }
  if (!model)
    model = json_string_value(json_object_get(req, "model"));
  json_t *o = json_object(), *messages = json_array(), *system = json_array();
  int rc = GW_ERR_NOMEM;
  if (!o || !messages || !system)
    goto done;
  if (json_object_set_new(o, "model", json_string(model ? model : "")))
    goto done;
  size_t i;
  const json_t *m;
  json_array_foreach(msgs, i, m) {
    if ((rc = translate_message(m, messages, system, err, errlen)) != GW_OK)
      goto done;
  }
  rc = GW_ERR_NOMEM;
  /* A system prompt of one text block goes as a plain string. */
  if (json_array_size(system) == 1) {
    if (json_object_set(o, "system", json_object_get(json_array_get(system, 0), "text")))
      goto done;
  } else if (json_array_size(system) > 1 && json_object_set(o, "system", system)) {
    goto done;
  }
  if (json_object_set(o, "messages", messages))
    goto done;
  const json_t *mt = json_object_get(req, "max_completion_tokens");
  if (!json_is_integer(mt))
    mt = json_object_get(req, "max_tokens");
  if (json_object_set_new(o, "max_tokens",
                          json_integer(json_is_integer(mt) ? json_integer_value(mt)
                                                           : GW_ANTHROPIC_DEFAULT_MAX_TOKENS)))
    goto done;
  static const char *const same[] = {"temperature", "top_p", "top_k"};
  for (size_t k = 0; k < sizeof(same) / sizeof(same[0]); k++) {
    json_t *v = json_object_get(req, same[k]);
    if (json_is_number(v) && json_object_set(o, same[k], v))
      goto done;
  }
  const json_t *stop = json_object_get(req, "stop");
  if (json_is_string(stop)) {
    if (json_object_set_new(o, "stop_sequences", json_pack("[O]", stop)))
      goto done;
  } else if (json_array_size(stop) && json_object_set(o, "stop_sequences", (json_t *)stop)) {
    goto done;
  }
  const json_t *user = json_object_get(req, "user");
  if (json_is_string(user) && json_string_length(user) &&
      json_object_set_new(o, "metadata", json_pack("{s:O}", "user_id", user)))
    goto done;
  if ((rc = translate_tools(req, o, err, errlen)) != GW_OK)
    goto done;
  rc = GW_ERR_NOMEM;
  if (stream && json_object_set_new(o, "stream", json_true()))
    goto done;
  *out = o;
  o = NULL;
  rc = GW_OK;
done:
  json_decref(o);
  json_decref(messages);
  json_decref(system);
  return rc;
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

static json_t *usage_json(int64_t in, int64_t out, int64_t cache_read, int64_t cache_write) {
  int64_t prompt = in + cache_read + cache_write;
  json_t *u = json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)prompt, "completion_tokens",
                        (json_int_t)out, "total_tokens", (json_int_t)(prompt + out));
  if (u && cache_read > 0)
    json_object_set_new(u, "prompt_tokens_details",
                        json_pack("{s:I}", "cached_tokens", (json_int_t)cache_read));
  return u;
}

static int64_t int_of(const json_t *o, const char *k) {
  const json_t *v = json_object_get(o, k);
  return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

int gw_anthropic_response(const json_t *msg, long long created, json_t **out) {
  const json_t *content = json_object_get(msg, "content");
  if (!json_is_object(msg) || !json_is_array(content))
    return GW_ERR_INVALID;
  json_t *text = NULL, *calls = json_array();
  char *joined = NULL;
  int rc = GW_ERR_NOMEM;
  if (!calls)
    return rc;
  size_t i, tl = 0;
  const json_t *b;
  json_array_foreach(content, i, b) {
    const char *type = json_string_value(json_object_get(b, "type"));
    if (!type)
      continue;
    if (strcmp(type, "text") == 0) {
      const json_t *t = json_object_get(b, "text");
      size_t add = json_string_length(t);
      char *nj = gw_realloc(joined, tl + add + 1);
      if (!nj)
        goto done;
      joined = nj;
      memcpy(joined + tl, json_string_value(t) ? json_string_value(t) : "", add);
      tl += add;
      joined[tl] = '\0';
    } else if (strcmp(type, "tool_use") == 0) {
      char *args = json_dumps(json_object_get(b, "input"), JSON_COMPACT | JSON_ENCODE_ANY);
      json_t *c = args ? json_pack("{s:O,s:s,s:{s:O,s:s}}", "id", json_object_get(b, "id"), "type",
                                   "function", "function", "name", json_object_get(b, "name"),
                                   "arguments", args)
                       : NULL;
      free(args);
      if (!c || json_array_append_new(calls, c))
        goto done;
    } /* thinking and other blocks: not part of OpenAI's message */
  }
  text = joined ? json_stringn(joined, tl) : json_null();
  const json_t *usage = json_object_get(msg, "usage");
  const char *finish =
      gw_anthropic_finish_reason(json_string_value(json_object_get(msg, "stop_reason")));
  json_t *message = json_pack("{s:s,s:O,s:n}", "role", "assistant", "content", text, "refusal");
  if (!message)
    goto done;
  if (json_array_size(calls))
    json_object_set(message, "tool_calls", calls);
  json_t *r =
      json_pack("{s:O,s:s,s:I,s:O,s:[{s:i,s:o,s:s?,s:n}],s:o}", "id", json_object_get(msg, "id"),
                "object", "chat.completion", "created", (json_int_t)created, "model",
                json_object_get(msg, "model"), "choices", "index", 0, "message", message,
                "finish_reason", finish ? finish : "stop", "logprobs", "usage",
                usage_json(int_of(usage, "input_tokens"), int_of(usage, "output_tokens"),
                           int_of(usage, "cache_read_input_tokens"),
                           int_of(usage, "cache_creation_input_tokens")));
  if (!r)
    goto done;
  *out = r;
  rc = GW_OK;
done:
  gw_free(joined);
  json_decref(text);
  json_decref(calls);
  return rc;
}

/* ---- stream: Anthropic events → OpenAI chunks ------------------------------------ */

void gw_anthropic_stream_init(gw_anthropic_stream *s, long long created, bool include_usage) {
  memset(s, 0, sizeof(*s));
  s->created = created;
  s->include_usage = include_usage;
}

static void copy_id(char *dst, size_t cap, const json_t *v) {
  const char *s = json_string_value(v);
  if (s)
    snprintf(dst, cap, "%s", s);
}

/* A chunk with one choice holding |delta| (taken) and |finish| (may be NULL). */
static int push_chunk(gw_anthropic_stream *s, json_t *chunks, json_t *delta, const char *finish) {
  json_t *c =
      json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:s?,s:n}]}", "id", s->id, "object",
                "chat.completion.chunk", "created", (json_int_t)s->created, "model", s->model,
                "choices", "index", 0, "delta", delta, "finish_reason", finish, "logprobs");
  return !c || json_array_append_new(chunks, c) ? GW_ERR_NOMEM : GW_OK;
}

int gw_anthropic_stream_event(gw_anthropic_stream *s, const json_t *ev, json_t *chunks) {
  if (!json_is_object(ev))
    return GW_ERR_INVALID;
  const char *type = json_string_value(json_object_get(ev, "type"));
  if (!type)
    return GW_ERR_INVALID;
  if (strcmp(type, "message_start") == 0) {
    const json_t *m = json_object_get(ev, "message");
    copy_id(s->id, sizeof s->id, json_object_get(m, "id"));
    copy_id(s->model, sizeof s->model, json_object_get(m, "model"));
    const json_t *u = json_object_get(m, "usage");
    s->input_tokens = int_of(u, "input_tokens") + int_of(u, "cache_creation_input_tokens");
    s->cache_read = int_of(u, "cache_read_input_tokens");
    s->output_tokens = int_of(u, "output_tokens");
    return push_chunk(s, chunks, json_pack("{s:s,s:s}", "role", "assistant", "content", ""), NULL);
  }
  if (strcmp(type, "content_block_start") == 0) {
    const json_t *b = json_object_get(ev, "content_block");
    json_int_t idx = json_integer_value(json_object_get(ev, "index"));
    const char *bt = json_string_value(json_object_get(b, "type"));
    if (bt && strcmp(bt, "tool_use") == 0) {
      int tool = s->next_tool++;
      if (idx >= 0 && idx < (json_int_t)(sizeof s->block_tool / sizeof s->block_tool[0]))
        s->block_tool[idx] = tool + 1;
      json_t *d = json_pack("{s:[{s:i,s:O,s:s,s:{s:O,s:s}}]}", "tool_calls", "index", tool, "id",
                            json_object_get(b, "id"), "type", "function", "function", "name",
                            json_object_get(b, "name"), "arguments", "");
      return d ? push_chunk(s, chunks, d, NULL) : GW_ERR_NOMEM;
    }
    if (bt && strcmp(bt, "text") == 0 && json_string_length(json_object_get(b, "text")))
      return push_chunk(s, chunks, json_pack("{s:O}", "content", json_object_get(b, "text")), NULL);
    return GW_OK;
  }
  if (strcmp(type, "content_block_delta") == 0) {
    const json_t *d = json_object_get(ev, "delta");
    const char *dt = json_string_value(json_object_get(d, "type"));
    json_int_t idx = json_integer_value(json_object_get(ev, "index"));
    if (dt && strcmp(dt, "text_delta") == 0)
      return push_chunk(s, chunks, json_pack("{s:O}", "content", json_object_get(d, "text")), NULL);
    if (dt && strcmp(dt, "input_json_delta") == 0) {
      int tool = idx >= 0 && idx < (json_int_t)(sizeof s->block_tool / sizeof s->block_tool[0])
                     ? s->block_tool[idx] - 1
                     : -1;
      if (tool < 0)
        return GW_OK;
      json_t *o = json_pack("{s:[{s:i,s:{s:O}}]}", "tool_calls", "index", tool, "function",
                            "arguments", json_object_get(d, "partial_json"));
      return o ? push_chunk(s, chunks, o, NULL) : GW_ERR_NOMEM;
    }
    return GW_OK; /* thinking_delta, signature_delta, citations: not in OpenAI's chunk */
  }
  if (strcmp(type, "message_delta") == 0) {
    const json_t *u = json_object_get(ev, "usage");
    if (json_is_integer(json_object_get(u, "output_tokens")))
      s->output_tokens = int_of(u, "output_tokens");
    if (json_is_integer(json_object_get(u, "input_tokens")))
      s->input_tokens = int_of(u, "input_tokens") + int_of(u, "cache_creation_input_tokens");
    const char *stop =
        json_string_value(json_object_get(json_object_get(ev, "delta"), "stop_reason"));
    if (!stop)
      return GW_OK;
    return push_chunk(s, chunks, json_object(), gw_anthropic_finish_reason(stop));
  }
  if (strcmp(type, "message_stop") == 0) {
    s->finished = true;
    if (!s->include_usage)
      return GW_OK;
    json_t *c =
        json_pack("{s:s,s:s,s:I,s:s,s:[],s:o}", "id", s->id, "object", "chat.completion.chunk",
                  "created", (json_int_t)s->created, "model", s->model, "choices", "usage",
                  usage_json(s->input_tokens, s->output_tokens, s->cache_read, 0));
    return !c || json_array_append_new(chunks, c) ? GW_ERR_NOMEM : GW_OK;
  }
  if (strcmp(type, "error") == 0)
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

/* Fills u->err from an Anthropic error object {"type":"error","error":{...}}. */
static gw_status_code take_error(gw_upstream *u, long http_status, const json_t *root) {
  gw_arena *a = u->call->arena;
  const json_t *e = json_object_get(root, "error");
  const char *type = json_string_value(json_object_get(e, "type"));
  const char *msg = json_string_value(json_object_get(e, "message"));
  u->has_error = true;
  u->err.http_status = http_status ? http_status : gw_anthropic_http_status(type);
  u->err.type = type ? gw_arena_strdup(a, type) : NULL;
  u->err.message = msg ? gw_arena_strdup(a, msg) : NULL;
  if (http_status >= 400)
    return gw_openai_status_from_http(http_status);
  return gw_upstream_status_from_type(type);
}

static gw_status_code on_error(gw_upstream *u, long st, const char *data, size_t len) {
  json_t *root = json_loadb(data, len, 0, NULL);
  gw_status_code code = gw_openai_status_from_http(st);
  if (json_is_object(json_object_get(root, "error")))
    code = take_error(u, st, root);
  else if (len)
    u->err.message = gw_arena_strndup(u->call->arena, data, len > 512 ? 512 : len);
  json_decref(root);
  return code;
}

static void on_body(gw_upstream *u, const char *data, size_t len) {
  json_t *root = json_loadb(data, len, 0, NULL);
  json_t *out = NULL;
  int rc = root ? gw_anthropic_response(root, gw_upstream_unix_time(), &out) : GW_ERR_INVALID;
  json_decref(root);
  if (rc != GW_OK) {
    char m[160];
    snprintf(m, sizeof m, "backend %s sent an undecodable message", u->backend_name);
    gw_upstream_end(u, rc == GW_ERR_NOMEM ? GW_STATUS_RESOURCE_EXHAUSTED : GW_STATUS_INTERNAL, m);
    return;
  }
  gw_upstream_emit_json(u, out);
  json_decref(out);
}

static void on_event(gw_upstream *u, const char *name, const char *data, size_t len, bool exc) {
  (void)name;
  (void)exc;
  anth_state *st = u->state;
  json_t *ev = json_loadb(data, len, 0, NULL);
  json_t *chunks = json_array();
  int rc = ev && chunks ? gw_anthropic_stream_event(&st->s, ev, chunks) : GW_ERR_INVALID;
  if (rc == GW_ERR_STATE) {
    gw_status_code code = take_error(u, 0, ev);
    gw_upstream_end(u, code, u->err.message ? u->err.message : "backend stream failed");
  } else if (rc != GW_OK) {
    char m[160];
    snprintf(m, sizeof m, "backend %s sent an undecodable event", u->backend_name);
    gw_upstream_end(u, rc == GW_ERR_NOMEM ? GW_STATUS_RESOURCE_EXHAUSTED : GW_STATUS_INTERNAL, m);
  } else {
    size_t i;
    json_t *c;
    json_array_foreach(chunks, i, c) {
      if (gw_upstream_emit_json(u, c) != GW_OK)
        break;
    }
    u->call->usage.prompt_tokens = st->s.input_tokens + st->s.cache_read;
    u->call->usage.completion_tokens = st->s.output_tokens;
  }
  json_decref(chunks);
  json_decref(ev);
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

static bool include_usage(const json_t *req) {
  return json_is_true(json_object_get(json_object_get(req, "stream_options"), "include_usage"));
}

static int start(gw_call *call) {
  const gw_anthropic_backend *b = call->route.backend_impl;
  if (!b)
    return GW_ERR_STATE;
  const char *mname = call->method->name;
  if (strcmp(mname, "CreateChatCompletion") != 0 && strcmp(mname, "StreamChatCompletion") != 0) {
    gw_call_finishf(call, GW_STATUS_UNIMPLEMENTED, "%s is not served by Anthropic backends",
                    call->method->path);
    return GW_OK;
  }
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

  gw_buf js;
  gw_buf_init(&js, (size_t)64 << 20);
  int rc = gw_pb_to_json(call->request, &out_opts, &js);
  json_t *req = rc == GW_OK ? json_loadb(js.data, js.len, 0, NULL) : NULL;
  gw_buf_release(&js);
  json_t *areq = NULL;
  char err[256] = "";
  rc =
      req ? gw_anthropic_request(req, call->route.upstream_model, streaming, &areq, err, sizeof err)
          : GW_ERR_NOMEM;
  gw_anthropic_stream_init(&st->s, gw_upstream_unix_time(), req && include_usage(req));
  json_decref(req);
  if (rc == GW_OK) {
    char *s = json_dumps(areq, JSON_COMPACT);
    rc = s ? gw_buf_appends(&u->body, s) : GW_ERR_NOMEM;
    free(s);
  }
  json_decref(areq);
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
  if (rc == GW_ERR_INVALID)
    gw_call_finish(call, GW_STATUS_INVALID_ARGUMENT, err);
  else
    gw_call_finish(call, GW_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  return GW_OK;
}

const gw_provider_ops gw_provider_anthropic = {.name = "anthropic",
                                               .start = start,
                                               .cancel = gw_upstream_cancel,
                                               .resume = gw_upstream_resume};
