/* Gemini / Vertex AI provider: translation both ways, the service-account
 * token, and the exchange. */
#include "pipeline/provider_gemini.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/jwt_sign.h"
#include "core/log.h"
#include "engine/curl_loop.h"
#include "pipeline/upstream_http.h"
#include "transcoder/json_pb.h"

static const gw_json_opts out_opts = {.int64_as_number = 1, .bare_unions = 1};

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

static int append_parts(const json_t *content, json_t *parts, char *err, size_t errlen) {
  if (json_is_string(content)) {
    if (json_string_length(content) == 0)
      return GW_OK;
    return json_array_append_new(parts, json_pack("{s:O}", "text", content)) ? GW_ERR_NOMEM : GW_OK;
  }
  size_t i;
  const json_t *p;
  json_array_foreach(content, i, p) {
    const char *type = json_string_value(json_object_get(p, "type"));
    json_t *o = NULL;
    if (type && strcmp(type, "text") == 0) {
      o = json_pack("{s:O}", "text", json_object_get(p, "text"));
    } else if (type && strcmp(type, "image_url") == 0) {
      const char *url = json_string_value(json_object_get(json_object_get(p, "image_url"), "url"));
      const char *media, *data;
      size_t ml;
      if (!url)
        return fail(err, errlen, "image_url part without a url", NULL);
      if (gw_upstream_data_url(url, &media, &ml, &data))
        o = json_pack("{s:{s:s%,s:s}}", "inlineData", "mimeType", media, ml, "data", data);
      else
        o = json_pack("{s:{s:s,s:s}}", "fileData", "mimeType", mime_from_url(url), "fileUri", url);
    } else {
      return fail(err, errlen, "content part type %s is not supported by Gemini", type);
    }
    if (!o || json_array_append_new(parts, o))
      return GW_ERR_NOMEM;
  }
  return GW_OK;
}

/* The function name of tool call |id| in the assistant turns of |msgs|. */
static const char *tool_name(const json_t *msgs, const char *id) {
  size_t i, k;
  const json_t *m, *tc;
  json_array_foreach(msgs, i, m) {
    json_array_foreach(json_object_get(m, "tool_calls"), k, tc) {
      const char *tid = json_string_value(json_object_get(tc, "id"));
      if (tid && strcmp(tid, id) == 0)
        return json_string_value(json_object_get(json_object_get(tc, "function"), "name"));
    }
  }
  return NULL;
}

/* Appends |parts| (taken) as a turn of |role|, merged into the last turn
 * when that has the same role (Gemini wants them alternating). */
static int push_turn(json_t *contents, const char *role, json_t *parts) {
  size_t n = json_array_size(contents);
  json_t *last = n ? json_array_get(contents, n - 1) : NULL;
  if (last && strcmp(json_string_value(json_object_get(last, "role")), role) == 0) {
    int rc = json_array_extend(json_object_get(last, "parts"), parts) ? GW_ERR_NOMEM : GW_OK;
    json_decref(parts);
    return rc;
  }
  json_t *t = json_pack("{s:s,s:o}", "role", role, "parts", parts);
  return !t || json_array_append_new(contents, t) ? GW_ERR_NOMEM : GW_OK;
}

static int translate_messages(const json_t *msgs, json_t *contents, json_t *system, char *err,
                              size_t errlen) {
  size_t i;
  const json_t *m;
  json_array_foreach(msgs, i, m) {
    const char *role = json_string_value(json_object_get(m, "role"));
    const json_t *content = json_object_get(m, "content");
    if (!role)
      return fail(err, errlen, "a message has no role", NULL);
    int rc;
    if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
      if ((rc = append_parts(content, system, err, errlen)) != GW_OK)
        return rc;
      continue;
    }
    json_t *parts = json_array();
    if (!parts)
      return GW_ERR_NOMEM;
    const char *grole = "user";
    if (strcmp(role, "tool") == 0) {
      const char *id = json_string_value(json_object_get(m, "tool_call_id"));
      const char *name = id ? tool_name(msgs, id) : NULL;
      if (!name) {
        json_decref(parts);
        return fail(err, errlen, "tool message answers no earlier tool call", NULL);
      }
      char *text = gw_upstream_content_text(content);
      json_t *fr = text ? json_pack("{s:{s:s,s:{s:s}}}", "functionResponse", "name", name,
                                    "response", "content", text)
                        : NULL;
      gw_free(text);
      rc = !fr || json_array_append_new(parts, fr) ? GW_ERR_NOMEM : GW_OK;
    } else if (strcmp(role, "user") == 0 || strcmp(role, "assistant") == 0) {
      grole = role[0] == 'a' ? "model" : "user";
      rc = append_parts(content, parts, err, errlen);
      size_t k;
      const json_t *tc;
      json_array_foreach(json_object_get(m, "tool_calls"), k, tc) {
        if (rc != GW_OK)
          break;
        const json_t *fn = json_object_get(tc, "function");
        const char *args = json_string_value(json_object_get(fn, "arguments"));
        json_t *a = args && *args ? json_loads(args, JSON_DECODE_ANY, NULL) : json_object();
        if (!json_is_object(a)) {
          json_decref(a);
          rc = fail(err, errlen, "tool call arguments are not a JSON object", NULL);
          break;
        }
        json_t *fc = json_pack("{s:{s:O,s:o}}", "functionCall", "name", json_object_get(fn, "name"),
                               "args", a);
        if (!fc || json_array_append_new(parts, fc))
          rc = GW_ERR_NOMEM;
      }
    } else {
      json_decref(parts);
      return fail(err, errlen, "message role %s is not supported by Gemini", role);
    }
    if (rc != GW_OK) {
      json_decref(parts);
      return rc;
    }
    if ((rc = push_turn(contents, grole, parts)) != GW_OK)
      return rc;
  }
  return GW_OK;
}

static int translate_tools(const json_t *req, json_t *out, char *err, size_t errlen) {
  const json_t *tools = json_object_get(req, "tools");
  if (json_array_size(tools)) {
    json_t *decls = json_array();
    if (!decls ||
        json_object_set_new(out, "tools", json_pack("[{s:o}]", "functionDeclarations", decls)))
      return GW_ERR_NOMEM;
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t) {
      const json_t *fn = json_object_get(t, "function");
      if (!json_is_string(json_object_get(fn, "name")))
        return fail(err, errlen, "a tool has no function name", NULL);
      json_t *d = json_pack("{s:O}", "name", json_object_get(fn, "name"));
      if (!d || json_array_append_new(decls, d))
        return GW_ERR_NOMEM;
      if (json_is_string(json_object_get(fn, "description")))
        json_object_set(d, "description", json_object_get(fn, "description"));
      if (json_is_object(json_object_get(fn, "parameters")))
        json_object_set(d, "parameters", json_object_get(fn, "parameters"));
    }
  }
  const json_t *choice = json_object_get(req, "tool_choice");
  json_t *cfg = NULL;
  if (json_is_string(choice)) {
    const char *c = json_string_value(choice);
    cfg = json_pack("{s:s}", "mode",
                    strcmp(c, "required") == 0 ? "ANY"
                    : strcmp(c, "none") == 0   ? "NONE"
                                               : "AUTO");
  } else if (json_is_object(choice)) {
    const json_t *name = json_object_get(json_object_get(choice, "function"), "name");
    if (!json_is_string(name))
      return fail(err, errlen, "tool_choice names no function", NULL);
    cfg = json_pack("{s:s,s:[O]}", "mode", "ANY", "allowedFunctionNames", name);
  }
  if (cfg &&
      json_object_set_new(out, "toolConfig", json_pack("{s:o}", "functionCallingConfig", cfg)))
    return GW_ERR_NOMEM;
  return GW_OK;
}

int gw_gemini_request(const json_t *req, json_t **out, char *err, size_t errlen) {
  err[0] = '\0';
  const json_t *msgs = json_object_get(req, "messages");
  if (!json_is_array(msgs) || json_array_size(msgs) == 0)
    return fail(err, errlen, "messages must be a non-empty list", NULL);
  json_t *o = json_object(), *contents = json_array(), *system = json_array(), *gen = json_object();
  int rc = GW_ERR_NOMEM;
  if (!o || !contents || !system || !gen)
    goto done;
  if ((rc = translate_messages(msgs, contents, system, err, errlen)) != GW_OK)
    goto done;
  rc = GW_ERR_NOMEM;
  if (json_object_set(o, "contents", contents))
    goto done;
  if (json_array_size(system) &&
      json_object_set_new(o, "systemInstruction", json_pack("{s:O}", "parts", system)))
    goto done;
  if ((rc = translate_tools(req, o, err, errlen)) != GW_OK)
    goto done;
  rc = GW_ERR_NOMEM;
  static const struct {
    const char *from, *to;
  } knobs[] = {{"temperature", "temperature"},
               {"top_p", "topP"},
               {"top_k", "topK"},
               {"n", "candidateCount"},
               {"seed", "seed"},
               {"presence_penalty", "presencePenalty"},
               {"frequency_penalty", "frequencyPenalty"}};
  for (size_t k = 0; k < sizeof(knobs) / sizeof(knobs[0]); k++) {
    json_t *v = json_object_get(req, knobs[k].from);
    if (json_is_number(v) && json_object_set(gen, knobs[k].to, v))
      goto done;
  }
  const json_t *mt = json_object_get(req, "max_completion_tokens");
  if (!json_is_integer(mt))
    mt = json_object_get(req, "max_tokens");
  if (json_is_integer(mt) && json_object_set(gen, "maxOutputTokens", (json_t *)mt))
    goto done;
  const json_t *stop = json_object_get(req, "stop");
  if (json_is_string(stop) && json_object_set_new(gen, "stopSequences", json_pack("[O]", stop)))
    goto done;
  if (json_array_size(stop) && json_object_set(gen, "stopSequences", (json_t *)stop))
    goto done;
  const json_t *rf = json_object_get(req, "response_format");
  const char *rft = json_string_value(json_object_get(rf, "type"));
  if (rft && (strcmp(rft, "json_object") == 0 || strcmp(rft, "json_schema") == 0)) {
    if (json_object_set_new(gen, "responseMimeType", json_string("application/json")))
      goto done;
    const json_t *schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
    if (json_is_object(schema) && json_object_set(gen, "responseSchema", (json_t *)schema))
      goto done;
  }
  if (json_object_size(gen) && json_object_set(o, "generationConfig", gen))
    goto done;
  *out = o;
  o = NULL;
  rc = GW_OK;
done:
  json_decref(o);
  json_decref(contents);
  json_decref(system);
  json_decref(gen);
  return rc;
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

static int64_t int_of(const json_t *o, const char *k) {
  const json_t *v = json_object_get(o, k);
  return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static json_t *usage_json(const json_t *um) {
  int64_t p = int_of(um, "promptTokenCount");
  int64_t c = int_of(um, "candidatesTokenCount") + int_of(um, "thoughtsTokenCount");
  json_t *u = json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)p, "completion_tokens",
                        (json_int_t)c, "total_tokens", (json_int_t)(p + c));
  int64_t cached = int_of(um, "cachedContentTokenCount");
  if (u && cached)
    json_object_set_new(u, "prompt_tokens_details",
                        json_pack("{s:I}", "cached_tokens", (json_int_t)cached));
  return u;
}

/* The text and tool calls of candidate |cand|: |*text| (new string or
 * NULL) and calls appended to |calls| numbered from |*next_tool|. */
static int candidate_parts(const json_t *cand, char **text, json_t *calls, int *next_tool,
                           bool with_index, const char *id_prefix) {
  *text = NULL;
  size_t i, tl = 0;
  const json_t *p;
  json_array_foreach(json_object_get(json_object_get(cand, "content"), "parts"), i, p) {
    const json_t *t = json_object_get(p, "text");
    const json_t *fc = json_object_get(p, "functionCall");
    if (json_is_string(t) && !json_is_true(json_object_get(p, "thought"))) {
      size_t add = json_string_length(t);
      char *nt = gw_realloc(*text, tl + add + 1);
      if (!nt)
        return GW_ERR_NOMEM;
      *text = nt;
      memcpy(nt + tl, json_string_value(t), add);
      tl += add;
      nt[tl] = '\0';
    } else if (json_is_object(fc)) {
      char *args =
          json_dumps(json_object_get(fc, "args") ? json_object_get(fc, "args") : json_object(),
                     JSON_COMPACT | JSON_ENCODE_ANY);
      const char *gid = json_string_value(json_object_get(fc, "id"));
      char idbuf[200];
      if (gid)
        snprintf(idbuf, sizeof idbuf, "%s", gid);
      else
        snprintf(idbuf, sizeof idbuf, "call_%s_%d", id_prefix, *next_tool);
      json_t *c =
          args ? json_pack("{s:s,s:s,s:{s:O,s:s}}", "id", idbuf, "type", "function", "function",
                           "name", json_object_get(fc, "name"), "arguments", args)
               : NULL;
      free(args);
      if (c && with_index)
        json_object_set_new(c, "index", json_integer(*next_tool));
      (*next_tool)++;
      if (!c || json_array_append_new(calls, c))
        return GW_ERR_NOMEM;
    }
  }
  return GW_OK;
}

int gw_gemini_response(const json_t *resp, const char *id, const char *model, long long created,
                       json_t **out) {
  if (!json_is_object(resp))
    return GW_ERR_INVALID;
  const char *rid = json_string_value(json_object_get(resp, "responseId"));
  const char *mv = json_string_value(json_object_get(resp, "modelVersion"));
  json_t *choices = json_array();
  json_t *r = NULL;
  int rc = GW_ERR_NOMEM;
  if (!choices)
    return rc;
  size_t i;
  const json_t *cand;
  int next_tool = 0;
  json_array_foreach(json_object_get(resp, "candidates"), i, cand) {
    json_t *calls = json_array();
    char *text = NULL;
    if (!calls || candidate_parts(cand, &text, calls, &next_tool, false, rid ? rid : id) != GW_OK) {
      json_decref(calls);
      gw_free(text);
      goto done;
    }
    const char *fr = json_string_value(json_object_get(cand, "finishReason"));
    const char *finish = gw_gemini_finish_reason(fr, json_array_size(calls) > 0);
    json_t *msg = json_pack("{s:s,s:s?,s:n}", "role", "assistant", "content", text, "refusal");
    gw_free(text);
    if (msg && json_array_size(calls))
      json_object_set(msg, "tool_calls", calls);
    json_decref(calls);
    json_t *idx = json_object_get(cand, "index");
    json_t *c =
        msg ? json_pack(
                  "{s:I,s:o,s:s,s:n}", "index",
                  (json_int_t)(json_is_integer(idx) ? json_integer_value(idx) : (json_int_t)i),
                  "message", msg, "finish_reason", finish ? finish : "stop", "logprobs")
            : NULL;
    if (!c || json_array_append_new(choices, c))
      goto done;
  }
  if (json_array_size(choices) == 0) { /* the prompt was blocked */
    json_t *c =
        json_pack("{s:i,s:{s:s,s:n,s:n},s:s,s:n}", "index", 0, "message", "role", "assistant",
                  "content", "refusal", "finish_reason", "content_filter", "logprobs");
    if (!c || json_array_append_new(choices, c))
      goto done;
  }
  r = json_pack("{s:s,s:s,s:I,s:s,s:O,s:o}", "id", rid ? rid : id, "object", "chat.completion",
                "created", (json_int_t)created, "model", mv ? mv : model, "choices", choices,
                "usage", usage_json(json_object_get(resp, "usageMetadata")));
  if (!r)
    goto done;
  *out = r;
  rc = GW_OK;
done:
  json_decref(choices);
  return rc;
}

void gw_gemini_stream_init(gw_gemini_stream *s, const char *id, const char *model,
                           long long created, bool include_usage) {
  memset(s, 0, sizeof(*s));
  snprintf(s->id, sizeof s->id, "%s", id ? id : "");
  snprintf(s->model, sizeof s->model, "%s", model ? model : "");
  s->created = created;
  s->include_usage = include_usage;
}

static json_t *chunk(const gw_gemini_stream *s, json_t *choices) {
  return json_pack("{s:s,s:s,s:I,s:s,s:o}", "id", s->id, "object", "chat.completion.chunk",
                   "created", (json_int_t)s->created, "model", s->model, "choices", choices);
}

int gw_gemini_stream_event(gw_gemini_stream *s, const json_t *resp, json_t *chunks) {
  if (!json_is_object(resp))
    return GW_ERR_INVALID;
  const char *rid = json_string_value(json_object_get(resp, "responseId"));
  const char *mv = json_string_value(json_object_get(resp, "modelVersion"));
  if (!s->started) {
    if (rid)
      snprintf(s->id, sizeof s->id, "%s", rid);
    if (mv)
      snprintf(s->model, sizeof s->model, "%s", mv);
  }
  const json_t *um = json_object_get(resp, "usageMetadata");
  if (json_is_object(um)) {
    s->prompt_tokens = int_of(um, "promptTokenCount");
    s->completion_tokens = int_of(um, "candidatesTokenCount") + int_of(um, "thoughtsTokenCount");
  }
  const json_t *cand = json_array_get(json_object_get(resp, "candidates"), 0);
  if (!cand) {
    if (json_object_get(resp, "promptFeedback") && !s->finished) {
      s->finished = true;
      json_t *c = chunk(s, json_pack("[{s:i,s:{},s:s,s:n}]", "index", 0, "delta", "finish_reason",
                                     "content_filter", "logprobs"));
      return !c || json_array_append_new(chunks, c) ? GW_ERR_NOMEM : GW_OK;
    }
    return GW_OK;
  }
  json_t *calls = json_array();
  char *text = NULL;
  int first_tool = s->next_tool;
  if (!calls || candidate_parts(cand, &text, calls, &s->next_tool, true, s->id) != GW_OK) {
    json_decref(calls);
    gw_free(text);
    return GW_ERR_NOMEM;
  }
  const char *fr = json_string_value(json_object_get(cand, "finishReason"));
  const char *finish = gw_gemini_finish_reason(fr, s->next_tool > 0);
  (void)first_tool;
  json_t *delta = json_object();
  if (delta && !s->started)
    json_object_set_new(delta, "role", json_string("assistant"));
  if (delta && (text || !s->started))
    json_object_set_new(delta, "content", json_string(text ? text : ""));
  gw_free(text);
  if (delta && json_array_size(calls))
    json_object_set(delta, "tool_calls", calls);
  json_decref(calls);
  s->started = true;
  if (finish)
    s->finished = true;
  json_t *c = delta ? chunk(s, json_pack("[{s:i,s:o,s:s?,s:n}]", "index", 0, "delta", delta,
                                         "finish_reason", finish, "logprobs"))
                    : NULL;
  return !c || json_array_append_new(chunks, c) ? GW_ERR_NOMEM : GW_OK;
}

int gw_gemini_stream_end(gw_gemini_stream *s, json_t *chunks) {
  if (!s->include_usage)
    return GW_OK;
  json_t *c = json_pack("{s:s,s:s,s:I,s:s,s:[],s:{s:I,s:I,s:I}}", "id", s->id, "object",
                        "chat.completion.chunk", "created", (json_int_t)s->created, "model",
                        s->model, "choices", "usage", "prompt_tokens", (json_int_t)s->prompt_tokens,
                        "completion_tokens", (json_int_t)s->completion_tokens, "total_tokens",
                        (json_int_t)(s->prompt_tokens + s->completion_tokens));
  return !c || json_array_append_new(chunks, c) ? GW_ERR_NOMEM : GW_OK;
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

static gw_status_code take_error(gw_upstream *u, long st, const json_t *e) {
  gw_arena *a = u->call->arena;
  const char *status = json_string_value(json_object_get(e, "status"));
  const char *msg = json_string_value(json_object_get(e, "message"));
  json_int_t code = json_integer_value(json_object_get(e, "code"));
  u->has_error = true;
  u->err.http_status = st ? st : (code >= 400 && code < 600 ? code : 500);
  u->err.type = status ? gw_arena_strdup(a, status) : NULL;
  u->err.message = msg ? gw_arena_strdup(a, msg) : NULL;
  return gw_openai_status_from_http(u->err.http_status);
}

static gw_status_code on_error(gw_upstream *u, long st, const char *data, size_t len) {
  json_t *root = json_loadb(data, len, 0, NULL);
  /* Google answers {"error":{...}}, some proxies a list of them. */
  const json_t *e = json_object_get(json_is_array(root) ? json_array_get(root, 0) : root, "error");
  gw_status_code code = gw_openai_status_from_http(st);
  if (json_is_object(e))
    code = take_error(u, st, e);
  else if (len)
    u->err.message = gw_arena_strndup(u->call->arena, data, len > 512 ? 512 : len);
  json_decref(root);
  return code;
}

static void on_body(gw_upstream *u, const char *data, size_t len) {
  gem_state *st = u->state;
  json_t *root = json_loadb(data, len, 0, NULL);
  json_t *out = NULL;
  int rc = root ? gw_gemini_response(root, st->id, st->model, gw_upstream_unix_time(), &out)
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

static void emit_all(gw_upstream *u, json_t *chunks) {
  gem_state *st = u->state;
  size_t i;
  json_t *c;
  json_array_foreach(chunks, i, c) {
    if (gw_upstream_emit_json(u, c) != GW_OK)
      break;
  }
  u->call->usage.prompt_tokens = st->s.prompt_tokens;
  u->call->usage.completion_tokens = st->s.completion_tokens;
}

static void on_event(gw_upstream *u, const char *name, const char *data, size_t len, bool exc) {
  (void)name;
  (void)exc;
  gem_state *st = u->state;
  json_t *root = json_loadb(data, len, 0, NULL);
  json_t *chunks = json_array();
  const json_t *e = json_object_get(root, "error");
  if (json_is_object(e)) {
    gw_status_code code = take_error(u, 0, e);
    gw_upstream_end(u, code, u->err.message ? u->err.message : "backend stream failed");
  } else {
    int rc = root && chunks ? gw_gemini_stream_event(&st->s, root, chunks) : GW_ERR_INVALID;
    if (rc != GW_OK) {
      char m[160];
      snprintf(m, sizeof m, "backend %s sent an undecodable event", u->backend_name);
      gw_upstream_end(u, rc == GW_ERR_NOMEM ? GW_STATUS_RESOURCE_EXHAUSTED : GW_STATUS_INTERNAL, m);
    } else {
      emit_all(u, chunks);
    }
  }
  json_decref(chunks);
  json_decref(root);
}

static void on_stream_end(gw_upstream *u) {
  gem_state *st = u->state;
  if (!st->s.finished) {
    char m[160];
    snprintf(m, sizeof m, "backend %s ended the stream without a finishReason", u->backend_name);
    gw_upstream_end(u, GW_STATUS_UNAVAILABLE, m);
    return;
  }
  json_t *chunks = json_array();
  if (chunks && gw_gemini_stream_end(&st->s, chunks) == GW_OK)
    emit_all(u, chunks);
  json_decref(chunks);
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
  const char *mname = call->method->name;
  if (strcmp(mname, "CreateChatCompletion") != 0 && strcmp(mname, "StreamChatCompletion") != 0) {
    gw_call_finishf(call, GW_STATUS_UNIMPLEMENTED, "%s is not served by Gemini backends",
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
  char err[300] = "";
  json_t *greq = NULL;
  gw_status_code fail_code = GW_STATUS_INVALID_ARGUMENT;
  const char *auth = NULL;
  model = model ? gw_arena_strdup(call->arena, model) : NULL;
  if (!model_ok(model)) {
    snprintf(err, sizeof err, "model name not usable in a Gemini URL");
    rc = GW_ERR_INVALID;
  } else {
    rc = gw_gemini_request(req, &greq, err, sizeof err);
  }
  bool usage =
      json_is_true(json_object_get(json_object_get(req, "stream_options"), "include_usage"));
  json_decref(req);
  if (rc == GW_OK && b->vertex && !(auth = vertex_auth(b, call->arena, err, sizeof err))) {
    rc = GW_ERR_IO;
    fail_code = GW_STATUS_UNAVAILABLE;
  }
  if (rc != GW_OK) {
    json_decref(greq);
    if (rc == GW_ERR_NOMEM)
      return rc;
    gw_call_finish(call, fail_code, err);
    return GW_OK;
  }
  gw_upstream *u =
      gw_upstream_new(call, &codec, b->name, streaming, GW_UPSTREAM_SSE, b->timeout_ms);
  gem_state *st = u ? gw_arena_calloc(call->arena, sizeof(*st)) : NULL;
  const char *url =
      st ? gw_arena_printf(call->arena, "%s%s:%s", b->model_base, model,
                           streaming ? "streamGenerateContent?alt=sse" : "generateContent")
         : NULL;
  const char *id = call->request_id ? gw_arena_printf(call->arena, "chatcmpl-%s", call->request_id)
                                    : "chatcmpl-gemini";
  rc = url && id ? GW_OK : GW_ERR_NOMEM;
  if (rc == GW_OK) {
    u->state = st;
    st->id = id;
    st->model = model;
    gw_gemini_stream_init(&st->s, id, model, gw_upstream_unix_time(), usage);
    char *s = json_dumps(greq, JSON_COMPACT);
    rc = s ? gw_buf_appends(&u->body, s) : GW_ERR_NOMEM;
    free(s);
  }
  json_decref(greq);
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
