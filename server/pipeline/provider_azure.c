/* Azure OpenAI provider: OpenAI JSON at deployment URLs. */
#include "pipeline/provider_azure.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "pipeline/json_text.h"
#include "pipeline/upstream_http.h"
#include "transcoder/json_pb.h"

gw_azure_backend *gw_azure_backend_new(const gw_backend_conf *bc) {
  gw_azure_backend *b = gw_calloc(1, sizeof(*b));
  if (!b)
    return NULL;
  b->timeout_ms = bc->timeout_ms;
  b->name = gw_strdup(bc->name ? bc->name : "azure");
  const char *t = bc->target ? bc->target : "";
  size_t n = strlen(t);
  while (n > 0 && t[n - 1] == '/')
    n--;
  b->base = gw_strndup(t, n);
  b->api_version = gw_strdup(bc->api_version ? bc->api_version : GW_AZURE_DEFAULT_API_VERSION);
  if (!b->name || !b->base || !b->api_version)
    goto fail;
  if (bc->api_key && *bc->api_key) {
    bool bearer = strncmp(bc->api_key, "Bearer ", 7) == 0;
    const char *fmt = bearer ? "Authorization: %s" : "api-key: %s";
    size_t len = strlen(fmt) + strlen(bc->api_key) + 1;
    if (!(b->auth_header = gw_malloc(len)))
      goto fail;
    snprintf(b->auth_header, len, fmt, bc->api_key);
  }
  return b;
fail:
  gw_azure_backend_free(b);
  return NULL;
}

void gw_azure_backend_free(gw_azure_backend *b) {
  if (!b)
    return;
  gw_free_secret(b->auth_header);
  gw_free(b->name);
  gw_free(b->base);
  gw_free(b->api_version);
  gw_free(b);
}

/* RFC 3986 unreserved characters stay; everything else is %XX. */
static void pct_encode(gw_buf *out, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
        strchr("-._~", *p))
      gw_buf_appendc(out, (char)*p);
    else
      gw_buf_printf(out, "%%%02X", *p);
  }
}

char *gw_azure_url(const gw_azure_backend *b, const char *deployment, const char *path_tail) {
  gw_buf u;
  gw_buf_init(&u, 8192);
  gw_buf_printf(&u, "%s/openai/deployments/", b->base);
  pct_encode(&u, deployment);
  gw_buf_printf(&u, "/%s?api-version=", path_tail);
  pct_encode(&u, b->api_version);
  char *s = u.len < u.cap ? gw_strndup(u.data, u.len) : NULL;
  gw_buf_release(&u);
  return s;
}

/* ---- the exchange: OpenAI JSON both ways -------------------------------------------- */

/* A string member as it is, an integer one as its text; NULL otherwise. */
static const char *json_str(gw_arena *a, const gw_jval *v) {
  if (gw_jt_is_str(v))
    return gw_arena_strndup(a, v->u.str, v->len);
  if (gw_jt_is_int(v))
    return gw_arena_strndup(a, v->u.str, v->len);
  return NULL;
}

/* A json_lite DOM of |data| in |a|; NULL when it is not JSON. */
static gw_status_code on_error(gw_upstream *u, long st, const char *data, size_t len) {
  gw_arena *a = u->x.call->arena;
  const gw_jval *e = GW_JT_GET(gw_jt_parse(a, data, len), "error");
  if (gw_jt_is_object(e)) {
    u->x.err.type = json_str(a, GW_JT_GET(e, "type"));
    u->x.err.code = json_str(a, GW_JT_GET(e, "code"));
    u->x.err.param = json_str(a, GW_JT_GET(e, "param"));
    u->x.err.message = json_str(a, GW_JT_GET(e, "message"));
  } else if (len) {
    u->x.err.message = gw_arena_strndup(a, data, len > 512 ? 512 : len);
  }
  return gw_openai_status_from_http(st);
}

static bool key_is(const gw_jmember *m, const char *k) {
  return m->key_len == strlen(k) && memcmp(m->key, k, m->key_len) == 0;
}

/* The members of object |o| but those |skip| names (NULL-ended), without
 * the braces; |*n| counts what is written. */
static int put_members(gw_buf *b, const gw_jval *o, const char *const *skip, size_t *n) {
  int rc = GW_OK;
  for (size_t i = 0; rc == GW_OK && i < o->len; i++) {
    const gw_jmember *m = &o->u.members[i];
    bool drop = false;
    for (const char *const *k = skip; *k && !drop; k++)
      drop = key_is(m, *k);
    if (drop)
      continue;
    rc = gw_jt_sep(b, n);
    if (rc == GW_OK)
      rc = gw_buf_append_json_string(b, m->key, m->key_len);
    if (rc == GW_OK)
      rc = gw_buf_appendc(b, ':');
    if (rc == GW_OK)
      rc = gw_jt_put_value(b, &m->value);
  }
  return rc;
}

/* Object |o| rewritten without the members |skip| names. */
static int put_without(gw_buf *b, const gw_jval *o, const char *const *skip) {
  size_t n = 0;
  int rc = gw_buf_appendc(b, '{');
  if (rc == GW_OK)
    rc = put_members(b, o, skip, &n);
  return rc == GW_OK ? gw_buf_appendc(b, '}') : rc;
}

/* An answer or chunk as OpenAI's shape: Azure's content-filter annotations
 * (prompt_filter_results; a choice's content_filter_results) have no place
 * in it. */
static int put_stripped(gw_buf *b, const gw_jval *root) {
  static const char *const choice_skip[] = {"content_filter_results", "content_filter_result",
                                            NULL};
  int rc = gw_buf_appendc(b, '{');
  size_t n = 0;
  for (size_t i = 0; rc == GW_OK && i < root->len; i++) {
    const gw_jmember *m = &root->u.members[i];
    if (key_is(m, "prompt_filter_results"))
      continue;
    rc = gw_jt_sep(b, &n);
    if (rc == GW_OK)
      rc = gw_buf_append_json_string(b, m->key, m->key_len);
    if (rc == GW_OK)
      rc = gw_buf_appendc(b, ':');
    if (rc != GW_OK)
      break;
    if (!key_is(m, "choices") || m->value.type != GW_JVAL_ARRAY) {
      rc = gw_jt_put_value(b, &m->value);
      continue;
    }
    rc = gw_buf_appendc(b, '[');
    for (size_t k = 0; rc == GW_OK && k < m->value.len; k++) {
      const gw_jval *c = &m->value.u.elems[k];
      if (k)
        rc = gw_buf_appendc(b, ',');
      if (rc == GW_OK)
        rc = gw_jt_is_object(c) ? put_without(b, c, choice_skip) : gw_jt_put_value(b, c);
    }
    if (rc == GW_OK)
      rc = gw_buf_appendc(b, ']');
  }
  return rc == GW_OK ? gw_buf_appendc(b, '}') : rc;
}

/* |root| stripped and emitted; its text lives in |a|. */
static void emit(gw_upstream *u, const gw_jval *root, gw_arena *a) {
  gw_buf out;
  gw_buf_init_arena(&out, (size_t)64 << 20, a);
  if (put_stripped(&out, root) != GW_OK) {
    gw_upstream_end(u, GW_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  gw_upstream_emit_text(u, out.data, out.len);
}

static void on_body(gw_upstream *u, const char *data, size_t len) {
  gw_arena *a = u->x.call->arena; /* the answer lives as long as the call anyway */
  const gw_jval *root = gw_jt_parse(a, data, len);
  if (!gw_jt_is_object(root)) {
    gw_upstream_undecodable(u, GW_ERR_INVALID, "answer");
    return;
  }
  emit(u, root, a);
}

static void on_event(gw_upstream *u, const char *name, const char *data, size_t len, bool exc) {
  (void)exc;
  /* An event's DOM and chunk live until it is emitted. */
  gw_arena *a = gw_arena_new(0, 0);
  if (!a) {
    gw_upstream_end(u, GW_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  const gw_jval *root = gw_jt_parse(a, data, len), *e = GW_JT_GET(root, "error");
  if (!gw_jt_is_object(root)) {
    gw_upstream_undecodable(u, GW_ERR_INVALID, "event");
  } else if (gw_jt_is_object(e) || strcmp(name, "error") == 0) {
    if (!gw_jt_is_object(e))
      e = root;
    gw_arena *ca = u->x.call->arena;
    const char *type = json_str(ca, GW_JT_GET(e, "type"));
    const char *code = json_str(ca, GW_JT_GET(e, "code"));
    const char *msg = json_str(ca, GW_JT_GET(e, "message"));
    u->x.has_error = true;
    u->x.err.http_status =
        code && code[0] >= '4' && code[0] <= '5' && strlen(code) == 3 ? atoi(code) : 500;
    u->x.err.type = type;
    u->x.err.code = code;
    u->x.err.message = msg;
    gw_upstream_end(u, gw_openai_status_from_http(u->x.err.http_status),
                    msg ? msg : "backend stream failed");
  } else if (gw_jt_array_len(GW_JT_GET(root, "choices")) == 0 &&
             !gw_jt_is_object(GW_JT_GET(root, "usage"))) {
    /* Azure's prompt_filter_results chunk: nothing for the client. */
  } else {
    emit(u, root, a);
  }
  gw_arena_free(a);
}

static const gw_upstream_codec codec = {.body = on_body, .event = on_event, .error = on_error};

static const char *method_tail(const char *name, bool *embedding) {
  *embedding = false;
  if (strcmp(name, "CreateChatCompletion") == 0 || strcmp(name, "StreamChatCompletion") == 0)
    return "chat/completions";
  if (strcmp(name, "CreateCompletion") == 0 || strcmp(name, "StreamCompletion") == 0)
    return "completions";
  if (strcmp(name, "CreateEmbedding") == 0) {
    *embedding = true;
    return "embeddings";
  }
  return NULL;
}

static int start(gw_call *call) {
  const gw_azure_backend *b = call->route.backend_impl;
  if (!b)
    return GW_ERR_STATE;
  bool embedding;
  const char *tail = method_tail(call->method->name, &embedding);
  if (!tail) {
    gw_call_finishf(call, GW_STATUS_UNIMPLEMENTED, "%s is not served by Azure OpenAI backends",
                    call->method->path);
    return GW_OK;
  }
  bool streaming = call->method->server_streaming;
  gw_upstream *u =
      gw_upstream_new(call, &codec, b->name, streaming, GW_UPSTREAM_SSE, b->timeout_ms);
  if (!u)
    return GW_ERR_NOMEM;
  /* The canonical request written again: the deployment names the model,
   * so the body does not; "stream" says what the call is; embeddings come
   * back as floats. */
  char err[256] = "";
  gw_upstream_request in;
  int rc = gw_upstream_request_open(&in, call, err, sizeof err);
  gw_upstream_body_room(&u->x.body, &in);
  const char *deployment = call->route.upstream_model;
  if (!deployment)
    deployment = gw_jt_str(GW_JT_GET(in.req, "model"));
  char *url = NULL;
  if (rc == GW_OK && !deployment) {
    snprintf(err, sizeof err, "no model to name an Azure OpenAI deployment");
    rc = GW_ERR_INVALID;
  } else if (rc == GW_OK && !(url = gw_azure_url(b, deployment, tail))) {
    rc = GW_ERR_NOMEM;
  }
  if (rc == GW_OK) {
    static const char *const skip_emb[] = {"model", "stream", "encoding_format", NULL};
    static const char *const skip[] = {"model", "stream", NULL};
    size_t n = 0;
    rc = gw_buf_appendc(&u->x.body, '{');
    if (rc == GW_OK)
      rc = put_members(&u->x.body, in.req, embedding ? skip_emb : skip, &n);
    if (rc == GW_OK && streaming && (rc = gw_jt_sep(&u->x.body, &n)) == GW_OK)
      rc = GW_JT_PUT(&u->x.body, "\"stream\":true");
    if (rc == GW_OK && embedding && (rc = gw_jt_sep(&u->x.body, &n)) == GW_OK)
      rc = GW_JT_PUT(&u->x.body, "\"encoding_format\":\"float\"");
    if (rc == GW_OK)
      rc = gw_buf_appendc(&u->x.body, '}');
  }
  gw_upstream_request_close(&in);
  if (rc == GW_OK && ((b->auth_header && gw_upstream_add_header(u, b->auth_header) != GW_OK) ||
                      gw_upstream_add_header(u, "Content-Type: application/json") != GW_OK ||
                      gw_upstream_add_header(u, streaming ? "Accept: text/event-stream"
                                                          : "Accept: application/json") != GW_OK))
    rc = GW_ERR_NOMEM;
  if (rc == GW_OK) {
    rc = gw_upstream_start(u, "POST", url);
  } else {
    gw_upstream_discard(u);
    if (rc == GW_ERR_INVALID || rc == GW_ERR_TOOBIG) {
      gw_upstream_refuse(call, rc, err);
      rc = GW_OK;
    }
  }
  gw_free(url);
  return rc;
}

const gw_provider_ops gw_provider_azure = {
    .name = "azure", .start = start, .cancel = gw_upstream_cancel, .resume = gw_upstream_resume};
