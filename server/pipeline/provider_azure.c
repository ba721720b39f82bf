/* Azure OpenAI provider: OpenAI JSON at deployment URLs. */
#include "pipeline/provider_azure.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/pbfield.h"
#include "google/protobuf/wrappers.pb-c.h"
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

/* Azure's content-filter annotations (prompt_filter_results; a choice's
 * content_filter_results) have no place in OpenAI's answers: the decoder
 * reads and drops them (a Struct built and thrown away cost ~10K
 * instructions an answer). */
static const char *const filters[] = {"prompt_filter_results", "content_filter_results",
                                      "content_filter_result", NULL};

/* The answer, read straight into the call's output message (the decoder's
 * direct path: no DOM, no text written again) and emitted. */
static void on_body(gw_upstream *u, const char *data, size_t len) {
  ProtobufCMessage *msg = NULL;
  if (gw_upstream_decode_text(u, data, len, u->x.call->arena, filters, &msg) == GW_OK)
    (void)gw_call_emit(u->x.call, msg); /* (else the call is ended) */
}

/* Whether a chunk carries nothing for the client: Azure's first chunk,
 * prompt_filter_results with no choice and no usage. */
static bool nothing_to_send(const ProtobufCMessage *m) {
  const ProtobufCFieldDescriptor *cf = GW_PB_FIELD(m->descriptor, "choices");
  const ProtobufCFieldDescriptor *uf = GW_PB_FIELD(m->descriptor, "usage");
  return cf && cf->label == PROTOBUF_C_LABEL_REPEATED &&
         *(const size_t *)((const char *)m + cf->quantifier_offset) == 0 &&
         (!uf || uf->type != PROTOBUF_C_TYPE_MESSAGE ||
          !*(ProtobufCMessage *const *)((const char *)m + uf->offset));
}

/* An error event: {"error": {...}} (or an "error" event's data as the
 * error itself), ends the stream with the upstream's error. */
static void on_error_event(gw_upstream *u, const gw_jval *e) {
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
}

static void on_event(gw_upstream *u, const char *name, const char *data, size_t len, bool exc) {
  (void)exc;
  /* A chunk and what it holds live until it is emitted. */
  gw_arena *a = gw_arena_new(0, 0);
  if (!a) {
    gw_upstream_end(u, GW_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  if (strcmp(name, "error") == 0 || memmem(data, len, "\"error\"", 7)) {
    /* (rare) an error event, or a chunk that names one: read as a DOM */
    const gw_jval *root = gw_jt_parse(a, data, len), *e = GW_JT_GET(root, "error");
    if (!gw_jt_is_object(root))
      gw_upstream_undecodable(u, GW_ERR_INVALID, "event");
    else if (gw_jt_is_object(e) || strcmp(name, "error") == 0)
      on_error_event(u, gw_jt_is_object(e) ? e : root);
    if (u->x.ended) {
      gw_arena_free(a);
      return;
    }
  }
  ProtobufCMessage *msg = NULL;
  if (gw_upstream_decode_text(u, data, len, a, filters, &msg) == GW_OK && !nothing_to_send(msg))
    (void)gw_call_emit(u->x.call, msg);
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

/* Sets string field |name| of |m| to |v| for a while: its old value in
 * |*old|, NULL when |m| has no such field. */
static char **swap_string(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, char *v,
                          char **old) {
  if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED ||
      (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
    return NULL;
  char **slot = (char **)((char *)m + f->offset);
  *old = *slot;
  *slot = v;
  return slot;
}

/* The canonical request as Azure takes it, printed straight from the
 * message: OpenAI's JSON without "model" (the deployment names it), with
 * "stream":true when the call streams and nothing when it does not,
 * embeddings asked for as floats. Those fields are set for the print and
 * put back after it. (It was read as a DOM and written again from that:
 * ~14K instructions a small request.) */
static int write_body(gw_call *call, bool streaming, bool embedding, gw_buf *body, char *err,
                      size_t errlen) {
  static const gw_json_opts opts = {.int64_as_number = 1, .bare_unions = 1};
  ProtobufCMessage *req = call->request;
  const ProtobufCMessageDescriptor *d = req->descriptor;
  char *old_model = NULL, *old_enc = NULL;
  char **model = swap_string(req, GW_PB_FIELD(d, "model"), "", &old_model);
  char **enc =
      embedding ? swap_string(req, GW_PB_FIELD(d, "encoding_format"), "float", &old_enc) : NULL;
  Google__Protobuf__BoolValue yes = GOOGLE__PROTOBUF__BOOL_VALUE__INIT, *old_stream = NULL;
  Google__Protobuf__BoolValue **stream = NULL;
  const ProtobufCFieldDescriptor *sf = GW_PB_FIELD(d, "stream");
  if (sf && sf->type == PROTOBUF_C_TYPE_MESSAGE && sf->label != PROTOBUF_C_LABEL_REPEATED &&
      sf->descriptor == &google__protobuf__bool_value__descriptor) {
    stream = (Google__Protobuf__BoolValue **)((char *)req + sf->offset);
    old_stream = *stream;
    yes.value = 1;
    *stream = streaming ? &yes : NULL;
  }
  /* room for about what the client sent, at once */
  size_t hint = call->request_bytes;
  if (hint > 200 && hint < ((size_t)32 << 20))
    (void)gw_buf_reserve(body, hint + hint / 4 + 256);
  int rc = gw_pb_to_json(req, &opts, body);
  if (model)
    *model = old_model;
  if (enc)
    *enc = old_enc;
  if (stream)
    *stream = old_stream;
  if (rc == GW_ERR_INVALID)
    snprintf(err, errlen, "the request cannot be written as JSON: nested too deep");
  return rc;
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
  char err[256] = "";
  const char *deployment = call->route.upstream_model;
  const ProtobufCFieldDescriptor *mf = GW_PB_FIELD(call->request->descriptor, "model");
  if (!deployment && mf && mf->type == PROTOBUF_C_TYPE_STRING &&
      mf->label != PROTOBUF_C_LABEL_REPEATED)
    deployment = *(char *const *)((const char *)call->request + mf->offset);
  char *url = NULL;
  int rc = GW_OK;
  if (!deployment || !*deployment) {
    snprintf(err, sizeof err, "no model to name an Azure OpenAI deployment");
    rc = GW_ERR_INVALID;
  } else if (!(url = gw_azure_url(b, deployment, tail))) {
    rc = GW_ERR_NOMEM;
  } else {
    rc = write_body(call, streaming, embedding, &u->x.body, err, sizeof err);
  }
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
