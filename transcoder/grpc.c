/* gRPC on the gateway's own HTTP/2 streams, either port (see grpc.h). The wire format is
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
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection.h"
#include "proto/pb_arena.h"

#define LOW_WATER (64 * 1024)
#define FRAME_CAP (64u << 20)
#define REFLECTION_IN_CAP (4u << 20) /* one reflection request, framed */
/* Requests held while their answers wait for the client to read the ones
 * before (about 2,000 of the usual 30 bytes). */
#define REFLECTION_QUEUE_CAP (64u << 10)
#define INFLATED_CAP (4u << 20) /* a gzip-compressed message, inflated */

enum kind { K_PIPELINE, K_HEALTH, K_REFLECTION };

/* The gRPC side of one call: in the call's arena (K_PIPELINE) or in an
 * arena of its own (the others, whose |call| is NULL). */
typedef struct gcall {
  gw_http_front *front;
  gw_http_stream *s; /* NULL once ended or gone */
  gw_call *call;
  gw_arena *arena;
  int kind;
  bool started, released;
  gw_buf frame;                          /* one length-prefixed message being written */
  gw_buf in;                             /* K_REFLECTION: received bytes not yet answered */
  bool in_ended;                         /* K_REFLECTION: the client has sent all it will */
  struct gcall *watch_next, *watch_prev; /* a health Watch: in front->grpc_watches */
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

static void watch_unlink(gcall *g) {
  gw_http_front *f = g->front;
  if (g->watch_prev)
    g->watch_prev->watch_next = g->watch_next;
  else if (f->grpc_watches == g)
    f->grpc_watches = g->watch_next;
  if (g->watch_next)
    g->watch_next->watch_prev = g->watch_prev;
  g->watch_next = g->watch_prev = NULL;
}

static void release(gcall *g) {
  if (g->released)
    return;
  g->released = true;
  g->front->in_flight--;
  if (g->call) {
    gw_call_unref(g->call); /* the front door's reference */
    return;
  }
  watch_unlink(g);
  gw_buf_release(&g->in);
  gw_arena_free(g->arena); /* |g| lives in it */
}

/* Sends one message: a packed one (|msg|) or bytes already serialized
 * (|bytes|, |len|), behind its 5-byte prefix; the head goes first. */
static int send_message(gcall *g, const ProtobufCMessage *msg, const void *bytes, size_t len) {
  if (!g->s)
    return GW_ERR_STATE;
  if (msg)
    len = protobuf_c_message_get_packed_size(msg);
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
  if (msg)
    protobuf_c_message_pack(msg, p + 5);
  else if (len)
    memcpy(p + 5, bytes, len);
  g->frame.len = 5 + len;
  if (!g->started) {
    g->started = true;
    if (gw_http_start(g->s, 200, grpc_type, 1) != GW_OK)
      return GW_ERR_IO;
  }
  return gw_http_write(g->s, g->frame.data, g->frame.len) == GW_OK ? GW_OK : GW_ERR_IO;
}

/* Ends |g|'s stream with |code|: trailers after the messages sent, or
 * Trailers-Only when there were none. Then releases |g|. */
static void finish(gcall *g, gw_status_code code, const char *message) {
  gw_http_stream *s = g->s;
  g->s = NULL;
  if (s) {
    if (!g->started) {
      respond_status(s, g->arena, code, code == GW_STATUS_OK ? NULL : message);
    } else {
      char num[GW_NUMTEXT_MAX];
      num[gw_numtext_u64((uint64_t)code, num)] = '\0';
      gw_http_header ts[] = {
          {"grpc-status", num},
          {"grpc-message", message && *message ? percent_encode(g->arena, message) : ""},
      };
      gw_http_end_trailers(s, ts, code != GW_STATUS_OK && message && *message ? 2 : 1);
    }
  }
  release(g);
}

static int sink_message(void *ctx, gw_call *call, const ProtobufCMessage *msg) {
  (void)call;
  return send_message(ctx, msg, NULL, 0);
}

static void sink_finish(void *ctx, gw_call *call, gw_status_code code, const char *message) {
  (void)call;
  finish(ctx, code, message);
}

static bool sink_ready(void *ctx) {
  gcall *g = ctx;
  return g->s && gw_http_pending(g->s) < LOW_WATER;
}

static const gw_sink_ops grpc_h2_sink = {
    .message = sink_message, .finish = sink_finish, .ready = sink_ready};

static void reflection_go(gcall *g);

static void on_drain(gw_http_stream *s, void *arg) {
  gcall *g = arg;
  (void)s;
  if (!g->s)
    return;
  if (g->kind == K_REFLECTION)
    reflection_go(g); /* the answers it held back */
  else
    gw_call_sink_drained(g->call);
}

static void on_close(gw_http_stream *s, void *arg) {
  gcall *g = arg;
  (void)s;
  g->s = NULL; /* RST_STREAM or the connection closed */
  if (!g->call) {
    release(g);
    return;
  }
  GW_LOGD("grpc", g->call->request_id, "client went away: cancelling the call");
  gw_call_cancel(g->call); /* finishes through sink_finish, which releases */
}

/* ---- the request -------------------------------------------------------------- */

/* The length in a gRPC message's 5-byte prefix at |b| (flag, then big-endian length). */
static size_t frame_len(const uint8_t *b) {
  return (size_t)b[1] << 24 | (size_t)b[2] << 16 | (size_t)b[3] << 8 | b[4];
}

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

/* Refuses a message whose compressed flag is set (|s|, or |g| once it
 * exists) unless the client named gzip, which is inflated into |plain| (a
 * heap buffer the caller releases): GW_OK with |*msg|, |*len| pointing at the
 * bytes to decode, or the status to end the call with, and its text. */
static gw_status_code plain_message(const gw_http_request *req, const uint8_t **msg, size_t *len,
                                    gw_buf *plain, const char **why) {
  const char *enc = gw_http_request_header(req, "grpc-encoding");
  if (!enc || strcasecmp(enc, "identity") == 0) {
    *why = "compressed flag set without grpc-encoding";
    return GW_STATUS_INTERNAL;
  }
  if (strcasecmp(enc, "gzip") != 0) {
    *why = "grpc-encoding not supported here (identity, gzip)";
    return GW_STATUS_UNIMPLEMENTED;
  }
  int rc = gw_http_gunzip(*msg, *len, INFLATED_CAP, plain);
  if (rc != GW_OK) {
    *why = rc == GW_ERR_TOOBIG  ? "message larger than 4 MiB once inflated"
           : rc == GW_ERR_NOMEM ? "out of memory"
                                : "message is not valid gzip";
    return rc == GW_ERR_INVALID ? GW_STATUS_INTERNAL : GW_STATUS_RESOURCE_EXHAUSTED;
  }
  *msg = plain->data ? (const uint8_t *)plain->data : (const uint8_t *)"";
  *len = plain->len;
  return GW_STATUS_OK;
}

/* An UNIMPLEMENTED for an encoding names the ones accepted (gRPC's rule). */
static void refuse_encoding(gw_http_stream *s, gw_status_code code, const char *why) {
  if (code != GW_STATUS_UNIMPLEMENTED) {
    refuse(s, code, why);
    return;
  }
  gw_http_header hs[] = {{"content-type", "application/grpc"},
                         {"grpc-status", "12"},
                         {"grpc-message", why},
                         {"grpc-accept-encoding", "identity,gzip"}};
  gw_http_respond(s, 200, hs, 4, NULL, 0);
}

/* The one length-prefixed message of |req|, inflated into |plain| when
 * gzip-compressed, or a refusal sent on |s|: false then. */
static bool one_message_of(gw_http_stream *s, const gw_http_request *req, const uint8_t **msg,
                           size_t *len, gw_buf *plain) {
  const uint8_t *b = req->body;
  if (req->body_len < 5) {
    refuse(s, req->body_len ? GW_STATUS_INTERNAL : GW_STATUS_INVALID_ARGUMENT,
           req->body_len ? "truncated message" : "request message missing");
    return false;
  }
  size_t n = frame_len(b);
  if (b[0] > 1 || n != req->body_len - 5) {
    refuse(s, GW_STATUS_INTERNAL,
           n < req->body_len - 5 ? "more than one request message for a call that takes one"
                                 : "malformed message framing");
    return false;
  }
  *msg = b + 5;
  *len = n;
  if (b[0] == 1) {
    const char *why = NULL;
    gw_status_code code = plain_message(req, msg, len, plain, &why);
    if (code != GW_STATUS_OK) {
      refuse_encoding(s, code, why);
      return false;
    }
  }
  return true;
}

/* The one length-prefixed message of |req| (unary and server-streaming
 * calls), inflated into |plain| (set up here; the caller releases it once
 * the message is decoded) when gzip-compressed; or a refusal sent on |s|:
 * false then, and |plain| already released. */
static bool one_message(gw_http_stream *s, const gw_http_request *req, const uint8_t **msg,
                        size_t *len, gw_buf *plain) {
  gw_buf_init(plain, INFLATED_CAP);
  if (!one_message_of(s, req, msg, len, plain)) {
    gw_buf_release(plain);
    return false;
  }
  return true;
}

/* A gcall for a built-in service (health, reflection): its own arena. */
static gcall *gcall_new(gw_http_stream *s, gw_http_front *front, int kind) {
  gw_arena *arena = gw_arena_new(4096, 0);
  gcall *g = arena ? gw_arena_calloc(arena, sizeof(*g)) : NULL;
  if (!g) {
    gw_arena_free(arena);
    refuse(s, GW_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return NULL;
  }
  g->front = front;
  g->s = s;
  g->arena = arena;
  g->kind = kind;
  gw_buf_init_arena(&g->frame, FRAME_CAP, arena);
  front->in_flight++;
  gw_http_stream_set_callbacks(s, NULL, on_close, g);
  return g;
}

/* ---- health (grpc.health.v1.Health) ------------------------------------------ */

/* The health service's names: "" (the server as a whole) or a service of ours. */
static bool known_service(const gw_descriptors *d, const char *name) {
  return !*name || gw_descriptors_has_service(d, name);
}

static void send_health(gcall *g, int status) {
  Grpc__Health__V1__HealthCheckResponse resp;
  grpc__health__v1__health_check_response__init(&resp);
  resp.status = status;
  send_message(g, &resp.base, NULL, 0);
}

static void serve_health(gw_http_stream *s, const gw_http_request *req, gw_http_front *front,
                         bool watch) {
  const uint8_t *msg;
  size_t len;
  gw_buf plain;
  if (!one_message(s, req, &msg, &len, &plain))
    return;
  gcall *g = gcall_new(s, front, K_HEALTH);
  if (!g) {
    gw_buf_release(&plain);
    return;
  }
  gw_pb_arena pa;
  gw_pb_arena_init(&pa, g->arena);
  Grpc__Health__V1__HealthCheckRequest *hr =
      grpc__health__v1__health_check_request__unpack(&pa.allocator, len, msg);
  gw_buf_release(&plain);
  if (!hr) {
    finish(g, GW_STATUS_INVALID_ARGUMENT, "request is not a grpc.health.v1.HealthCheckRequest");
    return;
  }
  const char *service = hr->service ? hr->service : "";
  int st = !known_service(front->desc, service)
               ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN
           : front->grpc_stopping
               ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
               : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
  if (!watch) {
    if (st == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN) {
      char text[300];
      snprintf(text, sizeof text, "unknown service %.256s", service);
      finish(g, GW_STATUS_NOT_FOUND, text);
      return;
    }
    send_health(g, st);
    finish(g, GW_STATUS_OK, NULL);
    return;
  }
  /* Watch: the status now; the stream stays open until the client leaves or
   * the server stops (gw_grpc_h2_stop: NOT_SERVING, then UNAVAILABLE). */
  send_health(g, st);
  if (front->grpc_stopping) {
    finish(g, GW_STATUS_UNAVAILABLE, "server shutting down");
    return;
  }
  g->watch_next = front->grpc_watches;
  if (g->watch_next)
    g->watch_next->watch_prev = g;
  front->grpc_watches = g;
}

void gw_grpc_h2_stop(gw_http_front *front) {
  front->grpc_stopping = true;
  while (front->grpc_watches) {
    gcall *g = front->grpc_watches;
    watch_unlink(g);
    send_health(g, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING);
    finish(g, GW_STATUS_UNAVAILABLE, "server shutting down");
  }
}

/* ---- reflection (bidirectional: the body comes in pieces) ---------------------- */

static bool is_reflection(const char *path) {
  return strcmp(path, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo") == 0 ||
         strcmp(path, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo") == 0;
}

int gw_grpc_h2_at_head(const gw_http_request *req, void *arg) {
  (void)arg;
  return req->version == GW_HTTP_2 && gw_grpc_h2_wanted(req) && is_reflection(req->path);
}

/* Answers the whole request messages in |g->in| until the client falls
 * behind (gw_http_stream_waiting: on_drain calls again); false once |g| is
 * done. An answer is made only when the one before has mostly gone out, so
 * a stream holds one answer and its queued requests, however many it is
 * asked for; a client that reads slowly gets all of them. */
static bool reflection_answer_all(gcall *g) {
  size_t off = 0;
  bool live = true;
  gw_buf out, plain;
  gw_buf_init(&out, 64 << 20);
  gw_buf_init(&plain, INFLATED_CAP);
  while (live && g->in.len - off >= 5 && g->s && !gw_http_stream_waiting(g->s)) {
    const uint8_t *b = (const uint8_t *)g->in.data + off;
    size_t n = frame_len(b);
    if (b[0] > 1 || n > REFLECTION_IN_CAP - 5) {
      finish(g, b[0] > 1 ? GW_STATUS_INTERNAL : GW_STATUS_RESOURCE_EXHAUSTED,
             b[0] > 1 ? "malformed message framing" : "reflection request too large");
      live = false;
      break;
    }
    if (g->in.len - off < 5 + n)
      break;
    const uint8_t *msg = b + 5;
    size_t len = n;
    gw_buf_reset(&plain);
    if (b[0] == 1) {
      const char *why = NULL;
      gw_status_code code = plain_message(gw_http_stream_request(g->s), &msg, &len, &plain, &why);
      if (code != GW_STATUS_OK) {
        finish(g, code, why);
        live = false;
        break;
      }
    }
    gw_buf_reset(&out);
    int rc = gw_reflection_answer(g->front->desc, msg, len, &out);
    if (rc != GW_OK) {
      finish(g, rc == GW_ERR_INVALID ? GW_STATUS_INVALID_ARGUMENT : GW_STATUS_INTERNAL,
             rc == GW_ERR_INVALID ? "request is not a ServerReflectionRequest"
                                  : "reflection failed");
      live = false;
      break;
    }
    if (send_message(g, NULL, out.data, out.len) != GW_OK) {
      finish(g, GW_STATUS_UNAVAILABLE, "cannot write the answer");
      live = false;
      break;
    }
    off += 5 + n;
  }
  gw_buf_release(&out);
  gw_buf_release(&plain);
  if (live)
    gw_buf_consume(&g->in, off);
  return live;
}

/* 1 when |g->in| holds a whole message, which waits for its turn. */
static bool reflection_has_message(const gcall *g) {
  const uint8_t *b = (const uint8_t *)g->in.data;
  if (g->in.len < 5)
    return false;
  size_t n = frame_len(b);
  return g->in.len - 5 >= n;
}

/* Answers what may be answered now; once the client has sent all it will
 * and all of it is answered, ends the stream. */
static void reflection_go(gcall *g) {
  if (!reflection_answer_all(g) || !g->in_ended || reflection_has_message(g))
    return;
  finish(g, g->in.len ? GW_STATUS_INTERNAL : GW_STATUS_OK,
         g->in.len ? "the stream ended inside a message" : NULL);
}

static void on_reflection_body(gw_http_stream *s, const uint8_t *p, size_t len, int end,
                               void *arg) {
  gcall *g = arg;
  if (len && gw_http_stream_waiting(s) && g->in.len + len > REFLECTION_QUEUE_CAP) {
    /* Asking on and on without reading: what is asked would pile up here. */
    finish(g, GW_STATUS_RESOURCE_EXHAUSTED, "the client is not reading the answers");
    return;
  }
  if (len && gw_buf_append(&g->in, p, len) != GW_OK) {
    finish(g, GW_STATUS_RESOURCE_EXHAUSTED, "reflection request too large");
    return;
  }
  if (end)
    g->in_ended = true;
  reflection_go(g);
}

static void serve_reflection(gw_http_stream *s, const gw_http_request *req, gw_http_front *front) {
  gcall *g = gcall_new(s, front, K_REFLECTION);
  if (!g)
    return;
  gw_buf_init(&g->in, REFLECTION_IN_CAP);
  gw_http_stream_set_callbacks(s, on_drain, on_close, g);
  gw_http_stream_set_body_cb(s, on_reflection_body);
  if (req->body_len) /* not dispatched at its head: the whole body is here */
    on_reflection_body(s, req->body, req->body_len, 1, g);
}

/* ---- the pipeline's methods ---------------------------------------------------- */

/* The methods the pipeline serves, as on gRPC core's port. */
static bool pipeline_method(const gw_method_info *m) {
  return m->input && m->output && !m->client_streaming &&
         strcmp(m->service, "grpc.health.v1.Health") != 0 &&
         strncmp(m->service, "grpc.reflection.", 16) != 0;
}

static void serve_pipeline(gw_http_stream *s, const gw_http_request *req, gw_http_front *front,
                           const gw_method_info *m, int64_t timeout, bool has_timeout) {
  const uint8_t *msg;
  size_t len;
  gw_buf plain;
  if (!one_message(s, req, &msg, &len, &plain))
    return;
  gw_arena *arena = gw_arena_new(8192, 0);
  gw_call *call = arena ? gw_call_new(arena, front->worker, front->pipeline, m) : NULL;
  gcall *g = call ? gw_arena_calloc(arena, sizeof(*g)) : NULL;
  if (!g) {
    if (call)
      gw_call_unref(call);
    gw_buf_release(&plain);
    refuse(s, GW_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  g->front = front;
  g->s = s;
  g->call = call;
  g->arena = arena;
  gw_buf_init_arena(&g->frame, FRAME_CAP, arena);
  call->request_id = gw_arena_strdup(arena, req->request_id);
  const char *auth = req->known[GW_HDR_AUTHORIZATION];
  call->authorization = auth ? gw_arena_strdup(arena, auth) : NULL;
  const char *tp = req->known[GW_HDR_TRACEPARENT];
  call->traceparent = tp ? gw_arena_strdup(arena, tp) : NULL;
  call->front = "grpc";
  call->sink = &grpc_h2_sink;
  call->sink_ctx = g;
  if (has_timeout)
    call->deadline_ms = gw_now_ms() + timeout;
  front->in_flight++;
  gw_http_stream_set_callbacks(s, on_drain, on_close, g);

  gw_pb_arena pa;
  gw_pb_arena_init(&pa, arena);
  call->request = protobuf_c_message_unpack(m->input, &pa.allocator, len, msg);
  call->request_bytes = len;
  gw_buf_release(&plain);
  if (!call->request) {
    if (gw_pb_arena_unpack_error(&pa) == GW_ERR_NOMEM)
      gw_call_finish(call, GW_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    else
      gw_call_finishf(call, GW_STATUS_INVALID_ARGUMENT, "request is not a valid %s", m->input_type);
    return;
  }
  GW_LOGD("grpc", call->request_id, "%s started", m->path);
  gw_call_start(call);
}

/* ---- dispatch -------------------------------------------------------------------- */

void gw_grpc_h2_handle(gw_http_stream *s, const gw_http_request *req, gw_http_front *front) {
  if (req->version != GW_HTTP_2) {
    gw_http_respond_error(s, 415, "invalid_request_error", "unsupported_media_type",
                          "gRPC needs HTTP/2 (h2c with prior knowledge, or TLS with ALPN h2)");
    return;
  }
  gw_http_stream_omit_browser_headers(s);
  if (strcmp(req->method, "POST") != 0) {
    refuse(s, GW_STATUS_UNIMPLEMENTED, "gRPC calls are POST requests");
    return;
  }
  const gw_method_info *m = front->desc ? gw_descriptors_find_method(front->desc, req->path) : NULL;
  if (m && is_reflection(req->path)) {
    serve_reflection(s, req, front);
    return;
  }
  if (m && strcmp(m->service, "grpc.health.v1.Health") == 0 &&
      (strcmp(m->name, "Check") == 0 || strcmp(m->name, "Watch") == 0)) {
    serve_health(s, req, front, strcmp(m->name, "Watch") == 0);
    return;
  }
  if (!m || !pipeline_method(m)) {
    char msg[600];
    snprintf(msg, sizeof msg, "unknown method %.500s", req->path);
    refuse(s, GW_STATUS_UNIMPLEMENTED, msg);
    return;
  }
  int64_t timeout = 0;
  const char *t = gw_http_request_header(req, "grpc-timeout");
  if (t && (timeout = timeout_ms(t)) < 0) {
    refuse(s, GW_STATUS_INTERNAL, "malformed grpc-timeout");
    return;
  }
  serve_pipeline(s, req, front, m, timeout, t != NULL);
}

void gw_grpc_port_handle(gw_http_stream *s, const gw_http_request *req, void *arg) {
  if (req->known[GW_HDR_CONTENT_TYPE] && gw_grpc_h2_wanted(req)) {
    gw_grpc_h2_handle(s, req, arg);
    return;
  }
  gw_http_respond_error(s, 415, "invalid_request_error", "unsupported_media_type",
                        "this port speaks gRPC (content-type application/grpc over HTTP/2); "
                        "the OpenAI HTTP API is on PORT");
}
