/* Azure OpenAI provider: OpenAI JSON at deployment URLs. */
#include "pipeline/provider_azure.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "pipeline/upstream_http.h"
#include "transcoder/json_pb.h"

static const gw_json_opts out_opts = {.int64_as_number = 1, .bare_unions = 1};

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

static const char *json_str(gw_arena *a, const json_t *v) {
  if (json_is_string(v))
    return gw_arena_strndup(a, json_string_value(v), json_string_length(v));
  if (json_is_integer(v))
    return gw_arena_printf(a, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
  return NULL;
}

static gw_status_code on_error(gw_upstream *u, long st, const char *data, size_t len) {
  gw_arena *a = u->call->arena;
  json_t *root = json_loadb(data, len, 0, NULL);
  const json_t *e = json_object_get(root, "error");
  if (json_is_object(e)) {
    u->err.type = json_str(a, json_object_get(e, "type"));
    u->err.code = json_str(a, json_object_get(e, "code"));
    u->err.param = json_str(a, json_object_get(e, "param"));
    u->err.message = json_str(a, json_object_get(e, "message"));
  } else if (len) {
    u->err.message = gw_arena_strndup(a, data, len > 512 ? 512 : len);
  }
  json_decref(root);
  return gw_openai_status_from_http(st);
}

/* Azure's content-filter annotations have no place in OpenAI's shapes. */
static void strip_azure(json_t *root) {
  json_object_del(root, "prompt_filter_results");
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(root, "choices"), i, c) {
    json_object_del(c, "content_filter_results");
    json_object_del(c, "content_filter_result");
  }
}

static void on_body(gw_upstream *u, const char *data, size_t len) {
  json_t *root = json_loadb(data, len, 0, NULL);
  if (!json_is_object(root)) {
    json_decref(root);
    char m[160];
    snprintf(m, sizeof m, "backend %s sent an undecodable answer", u->backend_name);
    gw_upstream_end(u, GW_STATUS_INTERNAL, m);
    return;
  }
  strip_azure(root);
  gw_upstream_emit_json(u, root);
  json_decref(root);
}

static void on_event(gw_upstream *u, const char *name, const char *data, size_t len, bool exc) {
  (void)exc;
  json_t *root = json_loadb(data, len, 0, NULL);
  const json_t *e = json_object_get(root, "error");
  if (!json_is_object(root)) {
    char m[160];
    snprintf(m, sizeof m, "backend %s sent an undecodable event", u->backend_name);
    gw_upstream_end(u, GW_STATUS_INTERNAL, m);
  } else if (json_is_object(e) || strcmp(name, "error") == 0) {
    if (!json_is_object(e))
      e = root;
    gw_arena *a = u->call->arena;
    const char *type = json_str(a, json_object_get(e, "type"));
    const char *code = json_str(a, json_object_get(e, "code"));
    const char *msg = json_str(a, json_object_get(e, "message"));
    u->has_error = true;
    u->err.http_status =
        code && code[0] >= '4' && code[0] <= '5' && strlen(code) == 3 ? atoi(code) : 500;
    u->err.type = type;
    u->err.code = code;
    u->err.message = msg;
    gw_upstream_end(u, gw_openai_status_from_http(u->err.http_status),
                    msg ? msg : "backend stream failed");
  } else if (json_array_size(json_object_get(root, "choices")) == 0 &&
             !json_is_object(json_object_get(root, "usage"))) {
    /* Azure's prompt_filter_results chunk: nothing for the client. */
  } else {
    strip_azure(root);
    gw_upstream_emit_json(u, root);
  }
  json_decref(root);
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
  gw_buf js;
  gw_buf_init(&js, (size_t)64 << 20);
  int rc = gw_pb_to_json(call->request, &out_opts, &js);
  json_t *req = rc == GW_OK ? json_loadb(js.data, js.len, 0, NULL) : NULL;
  gw_buf_release(&js);
  const char *deployment = call->route.upstream_model;
  if (!deployment)
    deployment = json_string_value(json_object_get(req, "model"));
  char *url = req && deployment ? gw_azure_url(b, deployment, tail) : NULL;
  rc = url ? GW_OK : GW_ERR_NOMEM;
  if (rc == GW_OK) {
    /* The deployment names the model; the body does not. */
    json_object_del(req, "model");
    if (streaming)
      json_object_set_new(req, "stream", json_true());
    else
      json_object_del(req, "stream");
    if (embedding)
      json_object_set_new(req, "encoding_format", json_string("float"));
    char *s = json_dumps(req, JSON_COMPACT);
    rc = s ? gw_buf_appends(&u->body, s) : GW_ERR_NOMEM;
    free(s);
  }
  json_decref(req);
  if (rc == GW_OK && ((b->auth_header && gw_upstream_add_header(u, b->auth_header) != GW_OK) ||
                      gw_upstream_add_header(u, "Content-Type: application/json") != GW_OK ||
                      gw_upstream_add_header(u, streaming ? "Accept: text/event-stream"
                                                          : "Accept: application/json") != GW_OK))
    rc = GW_ERR_NOMEM;
  if (rc == GW_OK)
    rc = gw_upstream_start(u, "POST", url);
  else
    gw_upstream_discard(u);
  gw_free(url);
  return rc;
}

const gw_provider_ops gw_provider_azure = {
    .name = "azure", .start = start, .cancel = gw_upstream_cancel, .resume = gw_upstream_resume};
