/* HTTP request -> route -> canonical request -> pipeline -> JSON / SSE. */
#include "transcoder/front.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/log.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "transcoder/grpc.h"
#include "transcoder/openai.h"

#define SSE_LOW_WATER (64 * 1024)
#define UNARY_BODY_CAP (64u << 20)
#define EVENT_CAP (16u << 20)

enum mode { MODE_UNARY, MODE_SSE, MODE_NDJSON };

static const gw_http_header json_headers[] = {{"content-type", "application/json"}};

/* The HTTP side of one call; lives in the call's arena. */
typedef struct hcall {
  gw_http_front *front;
  gw_http_stream *s; /* NULL once ended or gone */
  gw_call *call;
  enum mode mode;
  bool started, released, openai;
  gw_openai_out out;
  gw_buf body;  /* unary: the rendered answer */
  gw_buf event; /* stream: one event being written */
} hcall;

static void release(hcall *h) {
  if (h->released)
    return;
  h->released = true;
  gw_buf_release(&h->body);
  gw_buf_release(&h->event);
  h->front->in_flight--;
  gw_call_unref(h->call); /* the front door's reference */
}

/* OpenAI's error object with its param. Ends the stream. */
static void respond_error(gw_http_stream *s, int status, const char *type, const char *code,
                          const char *param, const char *message, const char *retry_after) {
  gw_buf body;
  gw_buf_init(&body, 64 * 1024);
  gw_http_header hs[] = {{"content-type", "application/json"}, {"retry-after", retry_after}};
  if (gw_openai_error_body(status, type, code, param, message, &body) == GW_OK)
    gw_http_respond(s, status, hs, retry_after ? 2 : 1, body.data, body.len);
  else
    gw_http_respond_error(s, status, type, code, message);
  gw_buf_release(&body);
}

/* ---- the sink -------------------------------------------------------------- */

static int sink_message(void *ctx, gw_call *call, const ProtobufCMessage *msg) {
  hcall *h = ctx;
  if (!h->s)
    return GW_ERR_STATE;
  if (h->mode == MODE_UNARY) {
    gw_buf_reset(&h->body);
    int rc = gw_openai_render(msg, &h->out, &h->body);
    return rc == 1 ? GW_OK : rc;
  }
  gw_buf_reset(&h->event);
  int rc = gw_buf_appends(&h->event, h->mode == MODE_SSE ? "data: " : "");
  size_t mark = h->event.len;
  if (rc == GW_OK)
    rc = gw_openai_render(msg, &h->out, &h->event);
  if (rc == 1)
    return GW_OK; /* nothing to send for this one */
  if (rc != GW_OK || h->event.len == mark)
    return rc ? rc : GW_ERR_INVALID;
  rc = gw_buf_appends(&h->event, h->mode == MODE_SSE ? "\n\n" : "\n");
  if (rc != GW_OK)
    return rc;
  if (!h->started) {
    gw_http_header hs[] = {
        {"content-type",
         h->mode == MODE_SSE ? "text/event-stream; charset=utf-8" : "application/x-ndjson"},
        {"cache-control", "no-cache"},
        {"x-accel-buffering", "no"},
    };
    h->started = true;
    if (gw_http_start(h->s, 200, hs, 3) != GW_OK)
      return GW_ERR_IO;
  }
  return gw_http_write(h->s, h->event.data, h->event.len) == GW_OK ? GW_OK : GW_ERR_IO;
}

/* The error's HTTP status, type, code and param for a failed call. */
static int error_parts(const hcall *h, gw_status_code code, const char **type, const char **ecode,
                       const char **param) {
  const gw_call *call = h->call;
  *type = NULL;
  *ecode = NULL;
  *param = NULL;
  if (call->upstream_error.http_status >= 400) {
    *type = call->upstream_error.type;
    *ecode = call->upstream_error.code;
    *param = call->upstream_error.param;
    return call->upstream_error.http_status;
  }
  int status = gw_openai_http_status(code);
  if (code == GW_STATUS_NOT_FOUND && h->openai) {
    *ecode = "model_not_found";
    *param = "model";
  } else if (code == GW_STATUS_INVALID_ARGUMENT) {
    *ecode = "invalid_value";
  } else if (code == GW_STATUS_DEADLINE_EXCEEDED) {
    *ecode = "timeout";
  } else if (code == GW_STATUS_UNAVAILABLE) {
    *ecode = "upstream_unavailable";
  } else if (code == GW_STATUS_RESOURCE_EXHAUSTED) {
    *ecode = "rate_limit_exceeded";
  } else if (code == GW_STATUS_UNIMPLEMENTED) {
    *ecode = "not_implemented";
  }
  return status;
}

static void sink_finish(void *ctx, gw_call *call, gw_status_code code, const char *message) {
  hcall *h = ctx;
  gw_http_stream *s = h->s;
  h->s = NULL;
  if (s) {
    if (code == GW_STATUS_OK) {
      if (h->mode == MODE_UNARY) {
        if (h->body.len == 0)
          gw_http_respond_error(s, 502, "server_error", "empty_response",
                                "the backend finished without an answer");
        else
          gw_http_respond(s, 200, json_headers, 1, h->body.data, h->body.len);
      } else {
        if (!h->started) {
          gw_http_header hs[] = {{"content-type", h->mode == MODE_SSE
                                                      ? "text/event-stream; charset=utf-8"
                                                      : "application/x-ndjson"},
                                 {"cache-control", "no-cache"}};
          gw_http_start(s, 200, hs, 2);
        }
        if (h->mode == MODE_SSE)
          gw_http_write(s, "data: [DONE]\n\n", 14);
        gw_http_end(s);
      }
    } else {
      const char *type, *ecode, *param;
      int status = error_parts(h, code, &type, &ecode, &param);
      if (!h->started) {
        respond_error(s, status, type, ecode, param, message, call->upstream_error.retry_after);
      } else {
        /* Mid-stream: an error event the client can see, never a silent
         * end. OpenAI's SDKs raise it as an APIError. */
        gw_buf_reset(&h->event);
        gw_buf_appends(&h->event, h->mode == MODE_SSE ? "data: " : "");
        gw_openai_error_body(status, type, ecode, param, message, &h->event);
        gw_buf_appends(&h->event, h->mode == MODE_SSE ? "\n\n" : "\n");
        if (h->event.data)
          gw_http_write(s, h->event.data, h->event.len);
        gw_http_end(s);
      }
    }
  }
  release(h);
}

static bool sink_ready(void *ctx) {
  hcall *h = ctx;
  return h->s && gw_http_pending(h->s) < SSE_LOW_WATER;
}

static const gw_sink_ops http_sink = {
    .message = sink_message, .finish = sink_finish, .ready = sink_ready};

static void on_drain(gw_http_stream *s, void *arg) {
  hcall *h = arg;
  if (h->s)
    gw_call_sink_drained(h->call);
}

static void on_close(gw_http_stream *s, void *arg) {
  hcall *h = arg;
  h->s = NULL; /* the stream is gone */
  GW_LOGD("http", h->call->request_id, "client went away: cancelling the call");
  gw_call_cancel(h->call); /* finishes through sink_finish, which releases */
}

/* ---- binding request fields ------------------------------------------------ */

/* Field |name| of |m|'s type; |cache| as in gw_json_field_cached. The
 * per-request lookups (stream, model...) each keep their own. */
static const ProtobufCFieldDescriptor *top_field(const ProtobufCMessage *m, const char *name,
                                                 gw_json_field_cache *cache) {
  return gw_json_field_cached(cache, m->descriptor, name);
}

/* Sets scalar field |name| of |m| from text |value|: path variables and
 * query parameters. Unknown names and non-scalar fields are ignored;
 * a value that does not parse is GW_ERR_INVALID. */
static int bind_text(ProtobufCMessage *m, gw_arena *a, const char *name, const char *value) {
  const ProtobufCFieldDescriptor *f = top_field(m, name, NULL);
  if (!f || f->label == PROTOBUF_C_LABEL_REPEATED || (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
    return GW_OK;
  void *slot = (char *)m + f->offset;
  char *end = NULL;
  switch (f->type) {
  case PROTOBUF_C_TYPE_STRING: {
    char *v = gw_arena_strdup(a, value);
    if (!v)
      return GW_ERR_NOMEM;
    *(char **)slot = v;
    return GW_OK;
  }
  case PROTOBUF_C_TYPE_BOOL:
    if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
      *(protobuf_c_boolean *)slot = 1;
    else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
      *(protobuf_c_boolean *)slot = 0;
    else
      return GW_ERR_INVALID;
    return GW_OK;
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32: {
    long v = strtol(value, &end, 10);
    if (!*value || *end || v < INT32_MIN || v > INT32_MAX)
      return GW_ERR_INVALID;
    *(int32_t *)slot = (int32_t)v;
    return GW_OK;
  }
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64: {
    long long v = strtoll(value, &end, 10);
    if (!*value || *end)
      return GW_ERR_INVALID;
    *(int64_t *)slot = v;
    return GW_OK;
  }
  case PROTOBUF_C_TYPE_DOUBLE: {
    double v = strtod(value, &end);
    if (!*value || *end)
      return GW_ERR_INVALID;
    *(double *)slot = v;
    return GW_OK;
  }
  default: return GW_OK;
  }
}

/* `stream` as the client set it (a bool or a BoolValue), false if absent. */
static bool wants_stream(const ProtobufCMessage *m) {
  static _Thread_local gw_json_field_cache cache;
  const ProtobufCFieldDescriptor *f = top_field(m, "stream", &cache);
  if (!f)
    return false;
  const void *slot = (const char *)m + f->offset;
  if (f->type == PROTOBUF_C_TYPE_BOOL)
    return *(const protobuf_c_boolean *)slot;
  if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
    const Google__Protobuf__BoolValue *b = *(Google__Protobuf__BoolValue *const *)slot;
    return b && b->value;
  }
  return false;
}

static const char *string_field(const ProtobufCMessage *m, const char *name,
                                gw_json_field_cache *cache) {
  const ProtobufCFieldDescriptor *f = top_field(m, name, cache);
  if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
    return NULL;
  return *(const char *const *)((const char *)m + f->offset);
}

static bool include_usage(const ProtobufCMessage *m) {
  static _Thread_local gw_json_field_cache cache_so, cache_iu;
  const ProtobufCFieldDescriptor *f = top_field(m, "stream_options", &cache_so);
  if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE)
    return false;
  const ProtobufCMessage *so = *(const ProtobufCMessage *const *)((const char *)m + f->offset);
  if (!so)
    return false;
  const ProtobufCFieldDescriptor *g = top_field(so, "include_usage", &cache_iu);
  if (!g || g->type != PROTOBUF_C_TYPE_MESSAGE)
    return false;
  const Google__Protobuf__BoolValue *b =
      *(Google__Protobuf__BoolValue *const *)((const char *)so + g->offset);
  return b && b->value;
}

static bool is_json_type(const char *ct) {
  while (*ct == ' ')
    ct++;
  size_t n = strcspn(ct, "; ");
  return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
         (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}

static bool accepts_sse(const gw_http_request *req) {
  const char *a = req->known[GW_HDR_ACCEPT];
  return a && strstr(a, "text/event-stream");
}

/* ---- the handler ------------------------------------------------------------ */

void gw_http_front_handle(gw_http_stream *s, const gw_http_request *req, void *arg) {
  gw_http_front *front = arg;
  if (req->known[GW_HDR_CONTENT_TYPE] && gw_grpc_h2_wanted(req)) {
    gw_grpc_h2_handle(s, req, front);
    return;
  }
  gw_arena *arena = gw_arena_new(16384, 0);
  if (!arena) {
    gw_http_respond_error(s, 503, "server_error", "overloaded", "out of memory");
    return;
  }
  gw_route_match m;
  const char *allow = NULL;
  int rc = gw_routes_match(front->routes, req->method, req->path, arena, &m, &allow);
  if (rc != GW_OK) {
    char msg[600];
    if (rc == GW_ERR_STATE) {
      snprintf(msg, sizeof msg, "Method %.16s is not allowed on %.500s (allowed: %s)", req->method,
               req->path, allow ? allow : "");
      gw_buf body;
      gw_buf_init(&body, 4096);
      gw_openai_error_body(405, NULL, "method_not_allowed", NULL, msg, &body);
      gw_http_header hs[] = {{"content-type", "application/json"}, {"allow", allow ? allow : ""}};
      gw_http_respond(s, 405, hs, 2, body.data ? body.data : "", body.len);
      gw_buf_release(&body);
    } else if (rc == GW_ERR_NOTFOUND) {
      snprintf(msg, sizeof msg, "Invalid URL (%.16s %.500s)", req->method, req->path);
      gw_http_respond_error(s, 404, "invalid_request_error", "unknown_url", msg);
    } else {
      gw_http_respond_error(s, 503, "server_error", "overloaded", "out of memory");
    }
    gw_arena_free(arena);
    return;
  }
  const gw_method_info *method = m.unary ? m.unary : m.streaming;
  bool openai = gw_openai_is_response_type(method->output);

  /* The request message: the body for body:"*", path variables and query
   * parameters otherwise. */
  ProtobufCMessage *msg = NULL;
  gw_json_error jerr = {{0}, {0}};
  if (m.body[0]) {
    const char *ct = req->known[GW_HDR_CONTENT_TYPE];
    if (req->body_len > 0 && ct && !is_json_type(ct)) {
      gw_http_respond_error(s, 415, "invalid_request_error", "unsupported_media_type",
                            "Content-Type must be application/json");
      gw_arena_free(arena);
      return;
    }
    rc = gw_openai_parse_request(method->input, (const char *)req->body, req->body_len, arena, &msg,
                                 &jerr);
  } else {
    msg = gw_arena_calloc(arena, method->input->sizeof_message);
    rc = msg ? GW_OK : GW_ERR_NOMEM;
    if (msg)
      protobuf_c_message_init(method->input, msg);
    for (size_t i = 0; rc == GW_OK && i < req->n_params; i++) {
      rc = bind_text(msg, arena, req->params[i].name, req->params[i].value);
      if (rc == GW_ERR_INVALID) {
        snprintf(jerr.param, sizeof jerr.param, "%s", req->params[i].name);
        snprintf(jerr.message, sizeof jerr.message, "invalid value \"%.100s\"",
                 req->params[i].value);
      }
    }
  }
  for (size_t i = 0; rc == GW_OK && i < m.n_vars; i++)
    rc = bind_text(msg, arena, m.vars[i].field, m.vars[i].value);
  if (rc != GW_OK) {
    if (rc == GW_ERR_INVALID) {
      char text[600];
      if (jerr.param[0])
        snprintf(text, sizeof text, "Invalid value for '%s': %s", jerr.param, jerr.message);
      else
        snprintf(text, sizeof text, "We could not parse the JSON body of your request: %s",
                 jerr.message);
      respond_error(s, 400, "invalid_request_error",
                    jerr.param[0] ? "invalid_value" : "invalid_json",
                    jerr.param[0] ? jerr.param : NULL, text, NULL);
    } else {
      gw_http_respond_error(s, 503, "server_error", "overloaded", "out of memory");
    }
    gw_arena_free(arena);
    return;
  }

  bool stream = m.streaming && (wants_stream(msg) || !m.unary);
  const gw_method_info *chosen = stream ? m.streaming : m.unary;
  gw_call *call = gw_call_new(arena, front->worker, front->pipeline, chosen);
  hcall *h = call ? gw_arena_calloc(arena, sizeof(*h)) : NULL;
  if (!h) {
    if (call)
      gw_call_unref(call);
    gw_http_respond_error(s, 503, "server_error", "overloaded", "out of memory");
    return;
  }
  call->request_bytes = req->body_len;
  h->front = front;
  h->s = s;
  h->call = call;
  h->openai = openai;
  h->mode = !stream ? MODE_UNARY : (wants_stream(msg) || accepts_sse(req) ? MODE_SSE : MODE_NDJSON);
  /* The answer's text (or each event's, reused) grows in the call's arena. */
  gw_buf_init_arena(&h->body, UNARY_BODY_CAP, arena);
  gw_buf_init_arena(&h->event, EVENT_CAP, arena);
  static _Thread_local gw_json_field_cache cache_model, cache_format;
  h->out.model = string_field(msg, "model", &cache_model);
  h->out.request_id = req->request_id;
  h->out.created = (int64_t)time(NULL);
  h->out.stream = stream;
  h->out.include_usage = include_usage(msg);
  const char *fmt = string_field(msg, "encoding_format", &cache_format);
  h->out.base64_embeddings = fmt && strcmp(fmt, "base64") == 0;

  call->request = msg;
  call->request_id = gw_arena_strdup(arena, req->request_id);
  const char *auth = req->known[GW_HDR_AUTHORIZATION];
  call->authorization = auth ? gw_arena_strdup(arena, auth) : NULL;
  const char *tp = req->known[GW_HDR_TRACEPARENT];
  call->traceparent = tp ? gw_arena_strdup(arena, tp) : NULL;
  call->front = "http";
  call->sink = &http_sink;
  call->sink_ctx = h;
  if (strncmp(m.template, "/local/", 7) == 0)
    call->backend_hint = "local";
  front->in_flight++;
  gw_http_stream_set_callbacks(s, on_drain, on_close, h);
  GW_LOGD("http", call->request_id, "%s %s -> %s", req->method, req->path, chosen->path);
  gw_call_start(call);
}
