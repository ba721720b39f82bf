/* AWS Bedrock Converse / ConverseStream provider. */
#include "pipeline/provider_bedrock.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/sigv4.h"
#include "pipeline/upstream_http.h"
#include "transcoder/json_pb.h"

static const gw_json_opts out_opts = {.int64_as_number = 1, .bare_unions = 1};

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

static int content_blocks(const json_t *content, json_t *blocks, char *err, size_t errlen) {
  if (json_is_string(content)) {
    if (!json_string_length(content))
      return GW_OK;
    return json_array_append_new(blocks, json_pack("{s:O}", "text", content)) ? GW_ERR_NOMEM
                                                                              : GW_OK;
  }
  size_t i;
  const json_t *p;
  json_array_foreach(content, i, p) {
    const char *type = json_string_value(json_object_get(p, "type"));
    json_t *b = NULL;
    if (type && strcmp(type, "text") == 0) {
      b = json_pack("{s:O}", "text", json_object_get(p, "text"));
    } else if (type && strcmp(type, "image_url") == 0) {
      const char *url = json_string_value(json_object_get(json_object_get(p, "image_url"), "url"));
      const char *media, *data;
      size_t ml;
      if (!url || !gw_upstream_data_url(url, &media, &ml, &data))
        return fail(err, errlen, "Bedrock takes images as data: URLs (base64) only", NULL);
      const char *fmt = image_format(media, ml);
      if (!fmt)
        return fail(err, errlen, "image type not supported by Bedrock", NULL);
      b = json_pack("{s:{s:s,s:{s:s}}}", "image", "format", fmt, "source", "bytes", data);
    } else {
      return fail(err, errlen, "content part type %s is not supported by Bedrock", type);
    }
    if (!b || json_array_append_new(blocks, b))
      return GW_ERR_NOMEM;
  }
  return GW_OK;
}

/* Appends |blocks| (taken) as a turn of |role|, merged with the last turn of
 * the same role (Converse wants them alternating). */
static int push_turn(json_t *messages, const char *role, json_t *blocks) {
  size_t n = json_array_size(messages);
  json_t *last = n ? json_array_get(messages, n - 1) : NULL;
  if (last && strcmp(json_string_value(json_object_get(last, "role")), role) == 0) {
    int rc = json_array_extend(json_object_get(last, "content"), blocks) ? GW_ERR_NOMEM : GW_OK;
    json_decref(blocks);
    return rc;
  }
  json_t *m = json_pack("{s:s,s:o}", "role", role, "content", blocks);
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
    int rc =
        *t && json_array_append_new(system, json_pack("{s:s}", "text", t)) ? GW_ERR_NOMEM : GW_OK;
    gw_free(t);
    return rc;
  }
  json_t *blocks = json_array();
  if (!blocks)
    return GW_ERR_NOMEM;
  int rc = GW_OK;
  const char *brole = "user";
  if (strcmp(role, "tool") == 0) {
    const char *id = json_string_value(json_object_get(m, "tool_call_id"));
    char *t = id ? gw_upstream_content_text(content) : NULL;
    if (!id)
      rc = fail(err, errlen, "a tool message has no tool_call_id", NULL);
    else if (!t)
      rc = GW_ERR_NOMEM;
    else if (json_array_append_new(blocks, json_pack("{s:{s:s,s:[{s:s}]}}", "toolResult",
                                                     "toolUseId", id, "content", "text", t)))
      rc = GW_ERR_NOMEM;
    gw_free(t);
  } else if (strcmp(role, "user") == 0 || strcmp(role, "assistant") == 0) {
    brole = role;
    rc = content_blocks(content, blocks, err, errlen);
    size_t i;
    const json_t *tc;
    json_array_foreach(json_object_get(m, "tool_calls"), i, tc) {
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
      json_t *b = json_pack("{s:{s:O,s:O,s:o}}", "toolUse", "toolUseId", json_object_get(tc, "id"),
                            "name", json_object_get(fn, "name"), "input", input);
      if (!b || json_array_append_new(blocks, b))
        rc = GW_ERR_NOMEM;
    }
  } else {
    rc = fail(err, errlen, "message role %s is not supported by Bedrock", role);
  }
  if (rc != GW_OK) {
    json_decref(blocks);
    return rc;
  }
  return push_turn(messages, brole, blocks);
}

static int translate_tools(const json_t *req, json_t *out, char *err, size_t errlen) {
  const json_t *tools = json_object_get(req, "tools");
  const json_t *choice = json_object_get(req, "tool_choice");
  if (!json_array_size(tools))
    return GW_OK;
  /* "none": send no tools, so none can be called. */
  if (json_is_string(choice) && strcmp(json_string_value(choice), "none") == 0)
    return GW_OK;
  json_t *arr = json_array();
  json_t *cfg = arr ? json_pack("{s:o}", "tools", arr) : NULL;
  if (!cfg || json_object_set_new(out, "toolConfig", cfg))
    return GW_ERR_NOMEM;
  size_t i;
  const json_t *t;
  json_array_foreach(tools, i, t) {
    const json_t *fn = json_object_get(t, "function");
    if (!json_is_string(json_object_get(fn, "name")))
      return fail(err, errlen, "a tool has no function name", NULL);
    json_t *params = json_object_get(fn, "parameters");
    json_t *schema = json_is_object(params)
                         ? json_incref(params)
                         : json_pack("{s:s,s:{}}", "type", "object", "properties");
    json_t *spec = schema ? json_pack("{s:O,s:{s:o}}", "name", json_object_get(fn, "name"),
                                      "inputSchema", "json", schema)
                          : NULL;
    if (!spec)
      return GW_ERR_NOMEM;
    if (json_is_string(json_object_get(fn, "description")))
      json_object_set(spec, "description", json_object_get(fn, "description"));
    if (json_array_append_new(arr, json_pack("{s:o}", "toolSpec", spec)))
      return GW_ERR_NOMEM;
  }
  json_t *tc = NULL;
  if (json_is_string(choice)) {
    tc = strcmp(json_string_value(choice), "required") == 0 ? json_pack("{s:{}}", "any")
                                                            : json_pack("{s:{}}", "auto");
  } else if (json_is_object(choice)) {
    const json_t *name = json_object_get(json_object_get(choice, "function"), "name");
    if (!json_is_string(name))
      return fail(err, errlen, "tool_choice names no function", NULL);
    tc = json_pack("{s:{s:O}}", "tool", "name", name);
  }
  if (tc && json_object_set_new(cfg, "toolChoice", tc))
    return GW_ERR_NOMEM;
  return GW_OK;
}

int gw_bedrock_request(const json_t *req, json_t **out, char *err, size_t errlen) {
  err[0] = '\0';
  const json_t *msgs = json_object_get(req, "messages");
  if (!json_is_array(msgs) || json_array_size(msgs) == 0)
    return fail(err, errlen, "messages must be a non-empty list", NULL);
  const json_t *n = json_object_get(req, "n");
  if (json_is_integer(n) && json_integer_value(n) != 1)
    return fail(err, errlen, "n other than 1 is not supported by Bedrock", NULL);
  json_t *o = json_object(), *messages = json_array(), *system = json_array(), *inf = json_object();
  int rc = GW_ERR_NOMEM;
  if (!o || !messages || !system || !inf)
    goto done;
  size_t i;
  const json_t *m;
  json_array_foreach(msgs, i, m) {
    if ((rc = translate_message(m, messages, system, err, errlen)) != GW_OK)
      goto done;
  }
  rc = GW_ERR_NOMEM;
  if (json_object_set(o, "messages", messages))
    goto done;
  if (json_array_size(system) && json_object_set(o, "system", system))
    goto done;
  const json_t *mt = json_object_get(req, "max_completion_tokens");
  if (!json_is_integer(mt))
    mt = json_object_get(req, "max_tokens");
  if (json_is_integer(mt) && json_object_set(inf, "maxTokens", (json_t *)mt))
    goto done;
  if (json_is_number(json_object_get(req, "temperature")) &&
      json_object_set(inf, "temperature", json_object_get(req, "temperature")))
    goto done;
  if (json_is_number(json_object_get(req, "top_p")) &&
      json_object_set(inf, "topP", json_object_get(req, "top_p")))
    goto done;
  const json_t *stop = json_object_get(req, "stop");
  if (json_is_string(stop) && json_object_set_new(inf, "stopSequences", json_pack("[O]", stop)))
    goto done;
  if (json_array_size(stop) && json_object_set(inf, "stopSequences", (json_t *)stop))
    goto done;
  if (json_object_size(inf) && json_object_set(o, "inferenceConfig", inf))
    goto done;
  if ((rc = translate_tools(req, o, err, errlen)) != GW_OK)
    goto done;
  *out = o;
  o = NULL;
  rc = GW_OK;
done:
  json_decref(o);
  json_decref(messages);
  json_decref(system);
  json_decref(inf);
  return rc;
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

static int64_t int_of(const json_t *o, const char *k) {
  const json_t *v = json_object_get(o, k);
  return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static json_t *usage_json(int64_t in, int64_t out, int64_t cached) {
  json_t *u = json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)in, "completion_tokens",
                        (json_int_t)out, "total_tokens", (json_int_t)(in + out));
  if (u && cached)
    json_object_set_new(u, "prompt_tokens_details",
                        json_pack("{s:I}", "cached_tokens", (json_int_t)cached));
  return u;
}

int gw_bedrock_response(const json_t *resp, const char *id, const char *model, long long created,
                        json_t **out) {
  const json_t *content =
      json_object_get(json_object_get(json_object_get(resp, "output"), "message"), "content");
  if (!json_is_array(content))
    return GW_ERR_INVALID;
  json_t *calls = json_array();
  char *text = NULL;
  size_t tl = 0, i;
  const json_t *b;
  int rc = GW_ERR_NOMEM;
  if (!calls)
    return rc;
  json_array_foreach(content, i, b) {
    const json_t *t = json_object_get(b, "text");
    const json_t *tu = json_object_get(b, "toolUse");
    if (json_is_string(t)) {
      size_t add = json_string_length(t);
      char *nt = gw_realloc(text, tl + add + 1);
      if (!nt)
        goto done;
      text = nt;
      memcpy(text + tl, json_string_value(t), add);
      tl += add;
      text[tl] = '\0';
    } else if (json_is_object(tu)) {
      char *args = json_dumps(json_object_get(tu, "input"), JSON_COMPACT | JSON_ENCODE_ANY);
      json_t *c = args ? json_pack("{s:O,s:s,s:{s:O,s:s}}", "id", json_object_get(tu, "toolUseId"),
                                   "type", "function", "function", "name",
                                   json_object_get(tu, "name"), "arguments", args)
                       : NULL;
      free(args);
      if (!c || json_array_append_new(calls, c))
        goto done;
    }
  }
  const char *finish =
      gw_bedrock_finish_reason(json_string_value(json_object_get(resp, "stopReason")));
  json_t *msg = json_pack("{s:s,s:s?,s:n}", "role", "assistant", "content", text, "refusal");
  if (!msg)
    goto done;
  if (json_array_size(calls))
    json_object_set(msg, "tool_calls", calls);
  const json_t *u = json_object_get(resp, "usage");
  json_t *r = json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:s,s:n}],s:o}", "id", id, "object",
                        "chat.completion", "created", (json_int_t)created, "model", model,
                        "choices", "index", 0, "message", msg, "finish_reason",
                        finish ? finish : "stop", "logprobs", "usage",
                        usage_json(int_of(u, "inputTokens") + int_of(u, "cacheReadInputTokens") +
                                       int_of(u, "cacheWriteInputTokens"),
                                   int_of(u, "outputTokens"), int_of(u, "cacheReadInputTokens")));
  if (!r)
    goto done;
  *out = r;
  rc = GW_OK;
done:
  gw_free(text);
  json_decref(calls);
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

static int push(gw_bedrock_stream *s, json_t *chunks, json_t *delta, const char *finish) {
  json_t *c = delta ? json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:s?,s:n}]}", "id", s->id, "object",
                                "chat.completion.chunk", "created", (json_int_t)s->created, "model",
                                s->model, "choices", "index", 0, "delta", delta, "finish_reason",
                                finish, "logprobs")
                    : NULL;
  return !c || json_array_append_new(chunks, c) ? GW_ERR_NOMEM : GW_OK;
}

#define N_BLOCKS ((json_int_t)(sizeof(((gw_bedrock_stream *)0)->block_tool) / sizeof(int)))

int gw_bedrock_stream_event(gw_bedrock_stream *s, const char *type, const json_t *ev,
                            json_t *chunks) {
  if (!json_is_object(ev))
    return GW_ERR_INVALID;
  json_int_t idx = json_integer_value(json_object_get(ev, "contentBlockIndex"));
  if (strcmp(type, "messageStart") == 0)
    return push(s, chunks, json_pack("{s:s,s:s}", "role", "assistant", "content", ""), NULL);
  if (strcmp(type, "contentBlockStart") == 0) {
    const json_t *tu = json_object_get(json_object_get(ev, "start"), "toolUse");
    if (!json_is_object(tu))
      return GW_OK;
    int tool = s->next_tool++;
    if (idx >= 0 && idx < N_BLOCKS)
      s->block_tool[idx] = tool + 1;
    return push(s, chunks,
                json_pack("{s:[{s:i,s:O,s:s,s:{s:O,s:s}}]}", "tool_calls", "index", tool, "id",
                          json_object_get(tu, "toolUseId"), "type", "function", "function", "name",
                          json_object_get(tu, "name"), "arguments", ""),
                NULL);
  }
  if (strcmp(type, "contentBlockDelta") == 0) {
    const json_t *d = json_object_get(ev, "delta");
    const json_t *t = json_object_get(d, "text");
    const json_t *tu = json_object_get(d, "toolUse");
    if (json_is_string(t))
      return push(s, chunks, json_pack("{s:O}", "content", t), NULL);
    if (json_is_object(tu)) {
      int tool = idx >= 0 && idx < N_BLOCKS ? s->block_tool[idx] - 1 : -1;
      if (tool < 0)
        return GW_OK;
      return push(s, chunks,
                  json_pack("{s:[{s:i,s:{s:O}}]}", "tool_calls", "index", tool, "function",
                            "arguments", json_object_get(tu, "input")),
                  NULL);
    }
    return GW_OK; /* reasoningContent and others */
  }
  if (strcmp(type, "messageStop") == 0) {
    s->finished = true;
    const char *f = gw_bedrock_finish_reason(json_string_value(json_object_get(ev, "stopReason")));
    return push(s, chunks, json_object(), f ? f : "stop");
  }
  if (strcmp(type, "metadata") == 0) {
    const json_t *u = json_object_get(ev, "usage");
    s->input_tokens = int_of(u, "inputTokens") + int_of(u, "cacheReadInputTokens") +
                      int_of(u, "cacheWriteInputTokens");
    s->output_tokens = int_of(u, "outputTokens");
    if (!s->include_usage)
      return GW_OK;
    json_t *c =
        json_pack("{s:s,s:s,s:I,s:s,s:[],s:o}", "id", s->id, "object", "chat.completion.chunk",
                  "created", (json_int_t)s->created, "model", s->model, "choices", "usage",
                  usage_json(s->input_tokens, s->output_tokens, int_of(u, "cacheReadInputTokens")));
    return !c || json_array_append_new(chunks, c) ? GW_ERR_NOMEM : GW_OK;
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

static const char *message_of(const json_t *root) {
  const char *m = json_string_value(json_object_get(root, "message"));
  return m ? m : json_string_value(json_object_get(root, "Message"));
}

static gw_status_code on_error(gw_upstream *u, long st, const char *data, size_t len) {
  gw_arena *a = u->call->arena;
  json_t *root = json_loadb(data, len, 0, NULL);
  const char *m = message_of(root);
  u->err.type = type_for_status(st);
  if (m)
    u->err.message = gw_arena_strdup(a, m);
  else if (len)
    u->err.message = gw_arena_strndup(a, data, len > 512 ? 512 : len);
  json_decref(root);
  return gw_openai_status_from_http(st);
}

static void on_body(gw_upstream *u, const char *data, size_t len) {
  br_state *st = u->state;
  json_t *root = json_loadb(data, len, 0, NULL);
  json_t *out = NULL;
  int rc = root ? gw_bedrock_response(root, st->id, st->model, gw_upstream_unix_time(), &out)
                : GW_ERR_INVALID;
  json_decref(root);
  if (rc != GW_OK) {
    char m[160];
    snprintf(m, sizeof m, "backend %s sent an undecodable answer", u->backend_name);
    gw_upstream_end(u, rc == GW_ERR_NOMEM ? GW_STATUS_RESOURCE_EXHAUSTED : GW_STATUS_INTERNAL, m);
    return;
  }
  gw_upstream_emit_json(u, out);
  json_decref(out);
}

static void on_event(gw_upstream *u, const char *name, const char *data, size_t len, bool exc) {
  br_state *st = u->state;
  json_t *root = json_loadb(data, len, 0, NULL);
  if (exc) {
    /* "throttlingException" → "ThrottlingException", as the HTTP errors name it. */
    char type[64];
    snprintf(type, sizeof type, "%s", name);
    if (type[0] >= 'a' && type[0] <= 'z')
      type[0] = (char)(type[0] - 'a' + 'A');
    const char *m = message_of(root);
    gw_upstream_fail(u, status_for_type(name), GW_STATUS_INTERNAL, type, NULL,
                     m ? m : "backend stream failed");
    json_decref(root);
    return;
  }
  json_t *chunks = json_array();
  int rc = root && chunks ? gw_bedrock_stream_event(&st->s, name, root, chunks) : GW_ERR_INVALID;
  if (rc != GW_OK) {
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
    u->call->usage.prompt_tokens = st->s.input_tokens;
    u->call->usage.completion_tokens = st->s.output_tokens;
  }
  json_decref(chunks);
  json_decref(root);
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
  gw_arena *a = u->call->arena;
  char date[17];
  gw_sigv4_amz_date(gw_upstream_unix_time(), date);
  const char *accept = streaming ? "application/vnd.amazon.eventstream" : "application/json";
  gw_sigv4_header h[5] = {{"host", b->host},
                          {"x-amz-date", date},
                          {"content-type", "application/json"},
                          {"accept", accept},
                          {"x-amz-security-token", b->session_token}};
  size_t nh = b->session_token ? 5 : 4;
  gw_sigv4_request r = {"POST", path, NULL, h, nh, u->body.data ? u->body.data : "", u->body.len};
  gw_sigv4_credentials cred = {b->access_key_id, b->secret_access_key, b->region, "bedrock"};
  gw_buf auth;
  gw_buf_init(&auth, 4096);
  int rc = gw_sigv4_authorization(&r, &cred, date, &auth, NULL);
  const char *lines[6] = {
      gw_arena_printf(a, "Host: %s", b->host),
      gw_arena_printf(a, "X-Amz-Date: %s", date),
      "Content-Type: application/json",
      gw_arena_printf(a, "Accept: %s", accept),
      rc == GW_OK ? gw_arena_printf(a, "Authorization: %s", auth.data) : NULL,
      b->session_token ? gw_arena_printf(a, "X-Amz-Security-Token: %s", b->session_token) : NULL,
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
  const char *mname = call->method->name;
  if (strcmp(mname, "CreateChatCompletion") != 0 && strcmp(mname, "StreamChatCompletion") != 0) {
    gw_call_finishf(call, GW_STATUS_UNIMPLEMENTED, "%s is not served by Bedrock backends",
                    call->method->path);
    return GW_OK;
  }
  bool streaming = call->method->server_streaming;
  gw_buf js;
  gw_buf_init(&js, (size_t)64 << 20);
  int rc = gw_pb_to_json(call->request, &out_opts, &js);
  json_t *req = rc == GW_OK ? json_loadb(js.data, js.len, 0, NULL) : NULL;
  gw_buf_release(&js);
  if (!req)
    return GW_ERR_NOMEM;
  const char *model = call->route.upstream_model;
  if (!model)
    model = json_string_value(json_object_get(req, "model"));
  model = gw_arena_strdup(call->arena, model ? model : "");
  bool usage =
      json_is_true(json_object_get(json_object_get(req, "stream_options"), "include_usage"));
  char err[300] = "";
  json_t *breq = NULL;
  rc = model && *model ? gw_bedrock_request(req, &breq, err, sizeof err) : GW_ERR_INVALID;
  if (model && !*model)
    snprintf(err, sizeof err, "no model to send to Bedrock");
  json_decref(req);
  if (rc != GW_OK) {
    if (rc == GW_ERR_NOMEM)
      return rc;
    gw_call_finish(call, GW_STATUS_INVALID_ARGUMENT, err);
    return GW_OK;
  }
  gw_upstream *u =
      gw_upstream_new(call, &codec, b->name, streaming,
                      streaming ? GW_UPSTREAM_EVENTSTREAM : GW_UPSTREAM_SSE, b->timeout_ms);
  br_state *st = u ? gw_arena_calloc(call->arena, sizeof(*st)) : NULL;
  char *mp = st ? gw_bedrock_model_path(model) : NULL;
  const char *path = mp ? gw_arena_printf(call->arena, "/model/%s/%s", mp,
                                          streaming ? "converse-stream" : "converse")
                        : NULL;
  gw_free(mp);
  const char *url = path ? gw_arena_printf(call->arena, "%s%s", b->base, path) : NULL;
  const char *id = call->request_id ? gw_arena_printf(call->arena, "chatcmpl-%s", call->request_id)
                                    : "chatcmpl-bedrock";
  rc = url && id ? GW_OK : GW_ERR_NOMEM;
  if (rc == GW_OK) {
    u->state = st;
    st->id = id;
    st->model = model;
    gw_bedrock_stream_init(&st->s, id, model, gw_upstream_unix_time(), usage);
    char *s = json_dumps(breq, JSON_COMPACT);
    rc = s ? gw_buf_appends(&u->body, s) : GW_ERR_NOMEM;
    free(s);
  }
  json_decref(breq);
  /* The signed path is the one on the wire, after the base URL's own path. */
  if (rc == GW_OK) {
    const char *bp = strstr(b->base, "://");
    bp = bp ? strchr(bp + 3, '/') : NULL;
    const char *signed_path = bp ? gw_arena_printf(call->arena, "%s%s", bp, path) : path;
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
