/* gRPC on the HTTP port's HTTP/2 streams (see grpc.h). The wire format is
 * gRPC's "over HTTP/2" protocol: request headers (:method POST, :path
 * /pkg.Service/Method, content-type application/grpc, te: trailers,
 * grpc-timeout), length-prefixed messages (1 byte compressed flag, 4 bytes
 * big-endian length), and an answer of headers, messages and trailers
 * (grpc-status, grpc-message percent-encoded), or Trailers-Only. */
#include "transcoder/grpc.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/numtext.h"
#include "proto/pb_arena.h"

#define LOW_WATER (64 * 1024)
#define FRAME_CAP (64u << 20)

/* The gRPC side of one call; lives in the call's arena. */
typedef struct gcall {
  gw_http_front *front;
  gw_http_stream *s; /* NULL once ended or gone */
  gw_call *call;
  bool started, released;
  gw_buf frame; /* one length-prefixed message being written */
} gcall;

static const gw_http_header grpc_type[] = {{"content-type", "application/grpc"}};

bool gw_grpc_h2_wanted(const gw_http_request *req) {
  const char *ct = req->known[GW_HDR_CONTENT_TYPE];
  if (!ct || strncasecmp(ct, "application/grpc", 16) != 0)
    return false;
  ct += 16;
  if (strncasecmp(ct, "+proto", 6) == 0)
    ct += 6;
  return *ct == '\0' || *ct == ';' || *ct == ' ';
}

/* grpc-message: bytes outside printable ASCII, and '%', as %XX. */
static const char *percent_encode(gw_arena *a, const char *msg) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n = strlen(msg), extra = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)msg[i];
    extra += (c < 0x20 || c > 0x7e || c == '%') ? 2 : 0;
  }
  if (!extra)
    return msg;
  char *out = gw_arena_alloc(a, n + extra + 1), *o = out;
  if (!out)
    return "";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)msg[i];
    if (c < 0x20 || c > 0x7e || c == '%') {
      *o++ = '%';
      *o++ = hex[c >> 4];
      *o++ = hex[c & 15];
    } else {
      *o++ = (char)c;
    }
  }
  *o = '\0';
  return out;
}

/* A Trailers-Only answer: the status in the only HEADERS frame. Ends |s|. */
static void respond_status(gw_http_stream *s, gw_arena *a, gw_status_code code,
                           const char *message) {
  char num[GW_NUMTEXT_MAX];
  num[gw_numtext_u64((uint64_t)code, num)] = '\0';
  gw_http_header hs[] = {
      {"content-type", "application/grpc"},
      {"grpc-status", num},
      {"grpc-message", message && *message ? percent_encode(a, message) : ""},
  };
  gw_http_respond(s, 200, hs, message && *message ? 3 : 2, NULL, 0);
}

/* Refuses |req| before a call exists, with a status and a message. */
static void refuse(gw_http_stream *s, gw_status_code code, const char *message) {
  gw_arena *a = gw_arena_new(1024, 0);
  respond_status(s, a, code, a ? message : "out of memory");
  gw_arena_free(a);
}

/* ---- the sink -------------------------------------------------------------- */

static void release(gcall *g) {
  if (g->released)
    return;
  g->released = true;
  g->front->in_flight--;
  gw_call_unref(g->call); /* the front door's reference */
}

static int sink_message(void *ctx, gw_call *call, const ProtobufCMessage *msg) {
  gcall *g = ctx;
  (void)call;
  if (!g->s)
    return GW_ERR_STATE;
  size_t len = protobuf_c_message_get_packed_size(msg);
  if (len > UINT32_MAX)
    return GW_ERR_TOOBIG;
  gw_buf_reset(&g->frame);
  int rc = gw_buf_reserve(&g->frame, 5 + len);
  if (rc != GW_OK)
    return rc;
  uint8_t *p = (uint8_t *)g->frame.data;
  p[0] = 0; /* not compressed */
  p[1] = (uint8_t)(len >> 24);
  p[2] = (uint8_t)(len >> 16);
  p[3] = (uint8_t)(len >> 8);
  p[4] = (uint8_t)len;
  protobuf_c_message_pack(msg, p + 5);
  g->frame.len = 5 + len;
  if (!g->started) {
    g->started = true;
    if (gw_http_start(g->s, 200, grpc_type, 1) != GW_OK)
      return GW_ERR_IO;
  }
  return gw_http_write(g->s, g->frame.data, g->frame.len) == GW_OK ? GW_OK : GW_ERR_IO;
}

static void sink_finish(void *ctx, gw_call *call, gw_status_code code, const char *message) {
  gcall *g = ctx;
  gw_http_stream *s = g->s;
  g->s = NULL;
  if (s) {
    if (!g->started) {
      respond_status(s, call->arena, code, code == GW_STATUS_OK ? NULL : message);
    } else {
      char num[GW_NUMTEXT_MAX];
      num[gw_numtext_u64((uint64_t)code, num)] = '\0';
      gw_http_header ts[] = {
          {"grpc-status", num},
          {"grpc-message", message && *message ? percent_encode(call->arena, message) : ""},
      };
      gw_http_end_trailers(s, ts, code != GW_STATUS_OK && message && *message ? 2 : 1);
    }
  }
  release(g);
}

static bool sink_ready(void *ctx) {
  gcall *g = ctx;
  return g->s && gw_http_pending(g->s) < LOW_WATER;
}

static const gw_sink_ops grpc_h2_sink = {
    .message = sink_message, .finish = sink_finish, .ready = sink_ready};

static void on_drain(gw_http_stream *s, void *arg) {
  gcall *g = arg;
  (void)s;
  if (g->s)
    gw_call_sink_drained(g->call);
}

static void on_close(gw_http_stream *s, void *arg) {
  gcall *g = arg;
  (void)s;
  g->s = NULL; /* RST_STREAM or the connection closed */
  GW_LOGD("grpc", g->call->request_id, "client went away: cancelling the call");
  gw_call_cancel(g->call); /* finishes through sink_finish, which releases */
}

/* ---- the request -------------------------------------------------------------- */

/* grpc-timeout: 1 to 8 digits and a unit (H M S m u n), in ms rounded up.
 * Returns -1 when malformed. */
static int64_t timeout_ms(const char *v) {
  size_t n = strspn(v, "0123456789");
  if (n == 0 || n > 8 || v[n] == '\0' || v[n + 1] != '\0')
    return -1;
  int64_t x = 0;
  for (size_t i = 0; i < n; i++)
    x = x * 10 + (v[i] - '0');
  switch (v[n]) {
  case 'H': return x * 3600000;
  case 'M': return x * 60000;
  case 'S': return x * 1000;
  case 'm': return x;
  case 'u': return (x + 999) / 1000;
  case 'n': return (x + 999999) / 1000000;
  default: return -1;
  }
}

/* The methods served here: the pipeline's, as on the gRPC port. */
static bool pipeline_method(const gw_method_info *m) {
  return m && m->input && m->output && !m->client_streaming &&
         strcmp(m->service, "grpc.health.v1.Health") != 0 &&
         strncmp(m->service, "grpc.reflection.", 16) != 0;
}

void gw_grpc_h2_handle(gw_http_stream *s, const gw_http_request *req, gw_http_front *front) {
  if (req->version != GW_HTTP_2) {
    gw_http_respond_error(s, 415, "invalid_request_error", "unsupported_media_type",
                          "gRPC needs HTTP/2 (h2c with prior knowledge, or TLS with ALPN h2)");
    return;
  }
  if (strcmp(req->method, "POST") != 0) {
    refuse(s, GW_STATUS_UNIMPLEMENTED, "gRPC calls are POST requests");
    return;
  }
  const gw_method_info *m = front->desc ? gw_descriptors_find_method(front->desc, req->path) : NULL;
  if (!pipeline_method(m)) {
    char msg[600];
    snprintf(msg, sizeof msg, "unknown method %.500s%s", req->path,
             m ? " (health and reflection are served on the gRPC port)" : "");
    refuse(s, GW_STATUS_UNIMPLEMENTED, msg);
    return;
  }
  int64_t timeout = 0;
  const char *t = gw_http_request_header(req, "grpc-timeout");
  if (t && (timeout = timeout_ms(t)) < 0) {
    refuse(s, GW_STATUS_INTERNAL, "malformed grpc-timeout");
    return;
  }

  /* Exactly one length-prefixed message, uncompressed. */
  const uint8_t *b = req->body;
  if (req->body_len < 5) {
    refuse(s, req->body_len ? GW_STATUS_INTERNAL : GW_STATUS_INVALID_ARGUMENT,
           req->body_len ? "truncated message" : "request message missing");
    return;
  }
  size_t len = (size_t)b[1] << 24 | (size_t)b[2] << 16 | (size_t)b[3] << 8 | b[4];
  if (b[0] > 1 || len != req->body_len - 5) {
    refuse(s, GW_STATUS_INTERNAL,
           len < req->body_len - 5 ? "more than one request message for a call that takes one"
                                   : "malformed message framing");
    return;
  }
  if (b[0] == 1) {
    refuse(s, GW_STATUS_UNIMPLEMENTED, "compressed messages are not accepted here; send identity");
    return;
  }

  gw_arena *arena = gw_arena_new(8192, 0);
  gw_call *call = arena ? gw_call_new(arena, front->worker, front->pipeline, m) : NULL;
  gcall *g = call ? gw_arena_calloc(arena, sizeof(*g)) : NULL;
  if (!g) {
    if (call)
      gw_call_unref(call);
    refuse(s, GW_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  g->front = front;
  g->s = s;
  g->call = call;
  gw_buf_init_arena(&g->frame, FRAME_CAP, arena);
  call->request_id = gw_arena_strdup(arena, req->request_id);
  const char *auth = req->known[GW_HDR_AUTHORIZATION];
  call->authorization = auth ? gw_arena_strdup(arena, auth) : NULL;
  const char *tp = req->known[GW_HDR_TRACEPARENT];
  call->traceparent = tp ? gw_arena_strdup(arena, tp) : NULL;
  call->front = "grpc";
  call->sink = &grpc_h2_sink;
  call->sink_ctx = g;
  if (t)
    call->deadline_ms = gw_now_ms() + timeout;
  front->in_flight++;
  gw_http_stream_set_callbacks(s, on_drain, on_close, g);

  gw_pb_arena pa;
  gw_pb_arena_init(&pa, arena);
  call->request = protobuf_c_message_unpack(m->input, &pa.allocator, len, b + 5);
  if (!call->request) {
    if (gw_pb_arena_unpack_error(&pa) == GW_ERR_NOMEM)
      gw_call_finish(call, GW_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    else
      gw_call_finishf(call, GW_STATUS_INVALID_ARGUMENT, "request is not a valid %s", m->input_type);
    return;
  }
  GW_LOGD("grpc", call->request_id, "%s started (HTTP port)", m->path);
  gw_call_start(call);
}
