/* OpenAI-compatible provider: http:// and https:// on the worker's native
 * HTTP/1.1 client; proxied schemes (and UPSTREAM_CLIENT=curl) on its curl
 * loop; one SSE reader. */
#include "pipeline/provider_openai.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "aigateway/v1/inference.pb-c.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/pbfield.h"
#include "engine/curl_loop.h"
#include "engine/http_client.h"
#include "engine/worker.h"
#include "pipeline/exchange.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "transcoder/json_pb.h"

#ifndef GW_VERSION
#define GW_VERSION "0.1.0"
#endif

#define REQUEST_CAP ((size_t)64 << 20)    /* the JSON body we send */
#define BODY_CAP ((size_t)64 << 20)       /* a unary answer */
#define ERROR_BODY_CAP ((size_t)64 << 10) /* an error answer: the rest is dropped */
#define EVENT_CAP ((size_t)4 << 20)       /* one SSE event */
#define CONNECT_TIMEOUT_MS 10000L

static const gw_json_opts out_opts = {.int64_as_number = 1, .bare_unions = 1};
/* Answers: base64 embeddings (what the official SDKs ask for, and so what
 * the gateway asks the upstream for) decode straight into the float field;
 * a server's own members are kept where the answer has a slot for them and
 * dropped elsewhere (vLLM's choices carry stop_reason: an answer refused
 * for it was a 500). */
static const gw_json_opts in_opts = {
    .keep_unknown = 1, .drop_unknown = 1, .bare_unions = 1, .floats_base64 = 1};

/* ---- status mapping ------------------------------------------------------------ */

gw_status_code gw_openai_status_from_http(long s) {
  if (s >= 200 && s < 300)
    return GW_STATUS_OK;
  switch (s) {
  case 400:
  case 413:
  case 422: return GW_STATUS_INVALID_ARGUMENT;
  case 401: return GW_STATUS_UNAUTHENTICATED;
  case 403: return GW_STATUS_PERMISSION_DENIED;
  case 404: return GW_STATUS_NOT_FOUND;
  case 408:
  case 504: return GW_STATUS_DEADLINE_EXCEEDED;
  case 409: return GW_STATUS_ABORTED;
  case 429: return GW_STATUS_RESOURCE_EXHAUSTED;
  case 500: return GW_STATUS_INTERNAL;
  }
  if (s >= 500 && s < 600)
    return GW_STATUS_UNAVAILABLE;
  if (s >= 400 && s < 500)
    return GW_STATUS_FAILED_PRECONDITION;
  return GW_STATUS_UNKNOWN;
}

/* An error object's `type` when it carries no HTTP-like code (stream errors). */
static gw_status_code status_from_type(const char *type) {
  static const struct {
    const char *type;
    gw_status_code code;
  } map[] = {
      {"invalid_request_error", GW_STATUS_INVALID_ARGUMENT},
      {"authentication_error", GW_STATUS_UNAUTHENTICATED},
      {"permission_error", GW_STATUS_PERMISSION_DENIED},
      {"not_found_error", GW_STATUS_NOT_FOUND},
      {"rate_limit_error", GW_STATUS_RESOURCE_EXHAUSTED},
      {"rate_limit_exceeded", GW_STATUS_RESOURCE_EXHAUSTED},
      {"insufficient_quota", GW_STATUS_RESOURCE_EXHAUSTED},
      {"overloaded_error", GW_STATUS_UNAVAILABLE},
      {"timeout_error", GW_STATUS_DEADLINE_EXCEEDED},
  };
  for (size_t i = 0; type && i < sizeof(map) / sizeof(map[0]); i++)
    if (strcmp(type, map[i].type) == 0)
      return map[i].code;
  return GW_STATUS_INTERNAL;
}

/* ---- backends -------------------------------------------------------------------- */

/* The upstream paths of the methods served, by method_path's index. */
enum { P_CHAT, P_COMPLETIONS, P_EMBEDDINGS, P_COUNT };
static const char *const path_of[P_COUNT] = {"/chat/completions", "/completions", "/embeddings"};

gw_openai_backend *gw_openai_backend_new(const gw_backend_conf *bc) {
  gw_openai_backend *b = gw_calloc(1, sizeof(*b));
  if (!b)
    return NULL;
  b->timeout_ms = bc->timeout_ms;
  b->embeddings_float = bc->embeddings_float;
  b->name = gw_strdup(bc->name ? bc->name : "openai");
  const char *t = bc->target ? bc->target : "";
  size_t n = strlen(t);
  while (n > 0 && t[n - 1] == '/')
    n--;
  b->base = gw_strndup(t, n);
  if (!b->name || !b->base)
    goto fail;
  char host[256];
  const char *prefix;
  if (gw_http_parse_url(b->base, &b->tls, host, sizeof host, &b->port, &prefix) == GW_OK) {
    b->native = true;
    if (!(b->host = gw_strdup(host)))
      goto fail;
    for (int i = 0; i < P_COUNT; i++) {
      size_t len = strlen(prefix) + strlen(path_of[i]) + 1;
      if (!(b->paths[i] = gw_malloc(len)))
        goto fail;
      snprintf(b->paths[i], len, "%s%s", prefix, path_of[i]);
    }
  }
  if (bc->api_key && *bc->api_key) {
    size_t len = strlen("Authorization: Bearer ") + strlen(bc->api_key) + 1;
    b->auth_header = gw_malloc(len);
    if (!b->auth_header)
      goto fail;
    snprintf(b->auth_header, len, "Authorization: Bearer %s", bc->api_key);
  }
  return b;
fail:
  gw_openai_backend_free(b);
  return NULL;
}

void gw_openai_backend_free(gw_openai_backend *b) {
  if (!b)
    return;
  if (b->auth_header) {
    volatile char *p = b->auth_header; /* a secret: wipe it */
    while (*p)
      *p++ = 0;
    gw_free(b->auth_header);
  }
  gw_free(b->name);
  gw_free(b->base);
  gw_free(b->host);
  for (int i = 0; i < P_COUNT; i++)
    gw_free(b->paths[i]);
  gw_free(b);
}

/* ---- one exchange ------------------------------------------------------------------ */

/* Lives in the call's arena; stays reachable through call->provider_state
 * after the end so that gw_openai_error_of() can answer. */
typedef struct oai_call {
  gw_exchange x; /* the call, the transfer, the buffers, the upstream's error */
  const gw_openai_backend *b;
  char errbuf[CURL_ERROR_SIZE];
  int64_t timeout_ms;
  bool streaming, embedding;
  bool backlog;  /* the sink was full: events may wait in |x.sse| */
  bool paused;   /* curl holds data for us */
  bool saw_done; /* [DONE] arrived */
  const char *hdrs[8];
} oai_call;

static const char *backend_name(const oai_call *o) { return o->b->name; }

static const char *json_str(gw_arena *a, json_t *v) {
  if (json_is_string(v))
    return gw_arena_strndup(a, json_string_value(v), json_string_length(v));
  if (json_is_integer(v))
    return gw_arena_printf(a, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
  return NULL;
}

/* Fills o->x.err from an OpenAI error object |e|; returns the status for it
 * (from |http_status| when it is an error status, else from the object). */
static gw_status_code take_error(oai_call *o, json_t *e, long http_status) {
  gw_arena *a = o->x.call->arena;
  o->x.has_error = true;
  o->x.err.http_status = http_status;
  o->x.err.type = json_str(a, json_object_get(e, "type"));
  o->x.err.code = json_str(a, json_object_get(e, "code"));
  o->x.err.param = json_str(a, json_object_get(e, "param"));
  o->x.err.message = json_str(a, json_object_get(e, "message"));
  if (http_status >= 300)
    return gw_openai_status_from_http(http_status);
  json_t *code = json_object_get(e, "code");
  if (json_is_integer(code) && json_integer_value(code) >= 400 && json_integer_value(code) < 600)
    return gw_openai_status_from_http((long)json_integer_value(code));
  return status_from_type(o->x.err.type);
}

/* The upstream answered with an error status: its body, as far as it is an
 * OpenAI error object ({"detail": ...} and plain text are taken too). */
static void http_error(oai_call *o, long st) {
  gw_arena *a = o->x.call->arena;
  json_t *root = o->x.resp.len ? json_loadb(o->x.resp.data, o->x.resp.len, 0, NULL) : NULL;
  json_t *e = root ? json_object_get(root, "error") : NULL;
  gw_status_code code;
  if (json_is_object(e)) {
    code = take_error(o, e, st);
  } else {
    o->x.has_error = true;
    o->x.err.http_status = st;
    code = gw_openai_status_from_http(st);
    json_t *d = root ? json_object_get(root, "detail") : NULL;
    if (!d && root)
      d = json_object_get(root, "message");
    if (json_is_string(e))
      o->x.err.message = json_str(a, e);
    else if (json_is_string(d))
      o->x.err.message = json_str(a, d);
    else if (!root && o->x.resp.len)
      o->x.err.message =
          gw_arena_strndup(a, o->x.resp.data, o->x.resp.len > 512 ? 512 : o->x.resp.len);
  }
  json_decref(root);
  if (o->x.err.message && *o->x.err.message)
    gw_exchange_end(&o->x, code, o->x.err.message);
  else {
    char msg[160];
    snprintf(msg, sizeof msg, "backend %s answered HTTP %ld", backend_name(o), st);
    o->x.err.message = gw_arena_strdup(a, msg);
    gw_exchange_end(&o->x, code, msg);
  }
}

/* The exchange failed below HTTP (connect, TLS, timeout, a broken stream). */
static void transport_error(oai_call *o, CURLcode rc) {
  const char *why = o->errbuf[0] ? o->errbuf : curl_easy_strerror(rc);
  char m[400];
  gw_status_code code = GW_STATUS_UNAVAILABLE;
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    code = GW_STATUS_DEADLINE_EXCEEDED;
    snprintf(m, sizeof m, "backend %s did not answer in time", backend_name(o));
  } else if (o->x.http_status) {
    snprintf(m, sizeof m, "backend %s: response broken: %s", backend_name(o), why);
  } else {
    snprintf(m, sizeof m, "backend %s unavailable: %s", backend_name(o), why);
  }
  gw_exchange_end(&o->x, code, m);
}

/* An event that is an error object ({"error": {...}}, or any object under
 * "event: error"): ends the call and returns true. */
static bool stream_error(oai_call *o, const gw_sse_event *ev) {
  bool named = strcmp(ev->event, "error") == 0;
  if (!named && !gw_sse_names_error(ev->data, ev->len))
    return false;
  json_t *root = json_loadb(ev->data, ev->len, 0, NULL);
  json_t *e = root ? json_object_get(root, "error") : NULL;
  if (!json_is_object(e))
    e = named && json_is_object(root) ? root : NULL;
  if (!e) {
    json_decref(root);
    return false;
  }
  gw_status_code code = take_error(o, e, o->x.http_status);
  json_decref(root);
  const char *msg =
      o->x.err.message && *o->x.err.message ? o->x.err.message : "backend stream failed";
  gw_exchange_end(&o->x, code, msg);
  return true;
}

/* One SSE event: one output message, emitted now. */
static void handle_event(oai_call *o, const gw_sse_event *ev) {
  if (stream_error(o, ev))
    return;
  gw_arena *a = gw_arena_new(0, 0);
  if (!a) {
    gw_exchange_end(&o->x, GW_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  ProtobufCMessage *msg = NULL;
  gw_json_error je = {{0}, {0}};
  int rc = gw_json_to_pb(o->x.call->method->output, ev->data, ev->len, a, &in_opts, &msg, &je);
  if (rc != GW_OK) {
    char m[640];
    snprintf(m, sizeof m, "backend %s sent an undecodable event: %s%s%s", backend_name(o), je.param,
             je.param[0] ? ": " : "", je.message);
    gw_arena_free(a);
    gw_exchange_end(&o->x, rc == GW_ERR_NOMEM ? GW_STATUS_RESOURCE_EXHAUSTED : GW_STATUS_INTERNAL,
                    m);
    return;
  }
  gw_call_emit(o->x.call, msg);
  gw_arena_free(a);
}

/* Emits the events waiting in the reader while the sink takes them. */
static void pump(oai_call *o) {
  while (!o->x.ended) {
    if (!gw_call_sink_ready(o->x.call)) {
      o->backlog = true;
      return;
    }
    gw_sse_event ev;
    int rc = gw_sse_reader_next(&o->x.sse, &ev);
    if (rc == 0) {
      o->backlog = false;
      return;
    }
    if (rc < 0) {
      char m[160];
      snprintf(m, sizeof m, "backend %s sent a stream event over %zu bytes", backend_name(o),
               o->x.sse.cap);
      gw_exchange_end(&o->x, rc == GW_ERR_NOMEM ? GW_STATUS_RESOURCE_EXHAUSTED : GW_STATUS_INTERNAL,
                      m);
      return;
    }
    if (o->saw_done)
      continue; /* nothing counts after [DONE] */
    if (ev.done) {
      o->saw_done = true;
      continue;
    }
    handle_event(o, &ev);
  }
}

/* The stream's transfer ended well: flush a last event the upstream did not
 * close with a blank line, then end the call once nothing waits. */
static void finish_stream(oai_call *o) {
  if (o->x.ended || o->backlog)
    return;
  if (gw_sse_reader_feed(&o->x.sse, "\n\n", 2) == GW_OK)
    pump(o);
  if (!o->x.ended && !o->backlog)
    gw_exchange_end(&o->x, GW_STATUS_OK, NULL);
}

static bool is_2xx(long st) { return st >= 200 && st < 300; }

static size_t write_cb(char *p, size_t size, size_t nmemb, void *arg) {
  oai_call *o = arg;
  size_t n = size * nmemb;
  if (o->x.ended)
    return n; /* cancelled from inside curl: removed once it returns */
  curl_easy_getinfo(o->x.cx.easy, CURLINFO_RESPONSE_CODE, &o->x.http_status);
  if (!o->streaming || !is_2xx(o->x.http_status)) {
    int rc = gw_buf_append(&o->x.resp, p, n);
    if (rc != GW_OK && is_2xx(o->x.http_status)) {
      char m[160];
      snprintf(m, sizeof m, "backend %s sent a response over %zu bytes", backend_name(o),
               o->x.resp.cap);
      gw_exchange_end(&o->x, rc == GW_ERR_NOMEM ? GW_STATUS_RESOURCE_EXHAUSTED : GW_STATUS_INTERNAL,
                      m);
    }
    return n; /* an error body keeps what fits */
  }
  if (o->backlog) {
    pump(o);
    if (o->x.ended)
      return n;
    if (o->backlog) { /* the client is slow: stop reading the upstream */
      o->paused = true;
      return CURL_WRITEFUNC_PAUSE;
    }
  }
  int rc = gw_sse_reader_feed(&o->x.sse, p, n);
  if (rc != GW_OK) {
    char m[160];
    snprintf(m, sizeof m, "backend %s sent a stream event over %zu bytes", backend_name(o),
             o->x.sse.cap);
    gw_exchange_end(&o->x, rc == GW_ERR_NOMEM ? GW_STATUS_RESOURCE_EXHAUSTED : GW_STATUS_INTERNAL,
                    m);
    return n;
  }
  pump(o);
  return n;
}

static size_t header_cb(char *p, size_t size, size_t nmemb, void *arg) {
  oai_call *o = arg;
  size_t n = size * nmemb;
  static const char name[] = "retry-after:";
  if (n > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
    const char *v = p + sizeof(name) - 1;
    const char *end = p + n;
    while (v < end && (*v == ' ' || *v == '\t'))
      v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
      end--;
    o->x.err.retry_after = gw_arena_strndup(o->x.call->arena, v, (size_t)(end - v));
  }
  return n;
}

static void unary_done(oai_call *o) {
  gw_call *call = o->x.call;
  const char *json = o->x.resp.data ? o->x.resp.data : "";
  size_t len = o->x.resp.len;
  ProtobufCMessage *msg = NULL;
  gw_json_error je = {{0}, {0}};
  int rc = gw_json_to_pb(call->method->output, json, len, call->arena, &in_opts, &msg, &je);
  if (rc != GW_OK) {
    char m[640];
    snprintf(m, sizeof m, "backend %s sent an undecodable %s: %s%s%s", backend_name(o),
             call->method->output_type, je.param, je.param[0] ? ": " : "", je.message);
    gw_exchange_end(&o->x, rc == GW_ERR_NOMEM ? GW_STATUS_RESOURCE_EXHAUSTED : GW_STATUS_INTERNAL,
                    m);
    return;
  }
  gw_call_emit(call, msg);
  gw_exchange_end(&o->x, GW_STATUS_OK, NULL);
}

static void on_done(gw_curl_xfer *x, CURLcode result) {
  oai_call *o = GW_CONTAINER_OF(x, oai_call, x.cx);
  if (!gw_exchange_curl_done(&o->x))
    return;
  long st = o->x.http_status;
  if (st != 0 && !is_2xx(st)) {
    http_error(o, st);
    return;
  }
  if (result != CURLE_OK) {
    transport_error(o, result);
    return;
  }
  if (!o->streaming)
    unary_done(o);
  else
    finish_stream(o); /* or resume() does, once the backlog is out */
}

/* ---- the native client (http:// and https://, the default) ---------------------- */

/* The same handling as header_cb / write_cb / on_done, for an exchange on
 * the worker's native HTTP/1.1 client (engine/http_client.h). */

static int native_on_header(gw_http_req *r, const char *name, size_t nlen, const char *v,
                            size_t vlen) {
  oai_call *o = r->arg;
  if (nlen == 11 && strncasecmp(name, "retry-after", 11) == 0) {
    while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
      vlen--;
    o->x.err.retry_after = gw_arena_strndup(o->x.call->arena, v, vlen);
  }
  return 0;
}

static int native_on_body(gw_http_req *r, const char *p, size_t n) {
  oai_call *o = r->arg;
  if (o->x.ended)
    return 0; /* cancelled from inside: the client ends it on return */
  o->x.http_status = r->status;
  if (!o->streaming || !is_2xx(o->x.http_status)) {
    int rc = gw_buf_append(&o->x.resp, p, n);
    if (rc != GW_OK && is_2xx(o->x.http_status)) {
      char m[160];
      snprintf(m, sizeof m, "backend %s sent a response over %zu bytes", backend_name(o),
               o->x.resp.cap);
      gw_exchange_end(&o->x, rc == GW_ERR_NOMEM ? GW_STATUS_RESOURCE_EXHAUSTED : GW_STATUS_INTERNAL,
                      m);
    }
    return 0; /* an error body keeps what fits */
  }
  int rc = gw_sse_reader_feed(&o->x.sse, p, n);
  if (rc != GW_OK) {
    char m[160];
    snprintf(m, sizeof m, "backend %s sent a stream event over %zu bytes", backend_name(o),
             o->x.sse.cap);
    gw_exchange_end(&o->x, rc == GW_ERR_NOMEM ? GW_STATUS_RESOURCE_EXHAUSTED : GW_STATUS_INTERNAL,
                    m);
    return 0;
  }
  pump(o);
  if (!o->x.ended && o->backlog) { /* the client is slow: stop reading the upstream */
    o->paused = true;
    gw_http_req_pause(r);
  }
  return 0;
}

static void native_transport_error(oai_call *o, const gw_http_req *r, int err) {
  char why[200], m[400];
  gw_http_req_describe(r, err, why, sizeof why);
  gw_status_code code = GW_STATUS_UNAVAILABLE;
  if (err == GW_ERR_IO && r->sys_errno == ETIMEDOUT) {
    code = GW_STATUS_DEADLINE_EXCEEDED;
    snprintf(m, sizeof m, "backend %s did not answer in time", backend_name(o));
  } else if (o->x.http_status) {
    snprintf(m, sizeof m, "backend %s: response broken: %s", backend_name(o), why);
  } else {
    snprintf(m, sizeof m, "backend %s unavailable: %s", backend_name(o), why);
  }
  gw_exchange_end(&o->x, code, m);
}

static void native_done(gw_http_req *r, int err) {
  oai_call *o = r->arg;
  o->x.transfer_done = true;
  long st = r->status;
  o->x.http_status = st;
  gw_buf_release(&o->x.body);
  if (o->x.ended) {
    gw_exchange_release(&o->x);
    return;
  }
  if (st != 0 && !is_2xx(st)) {
    http_error(o, st);
    return;
  }
  if (err != GW_OK) {
    native_transport_error(o, r, err);
    return;
  }
  if (!o->streaming)
    unary_done(o);
  else
    finish_stream(o); /* or resume() does, once the backlog is out */
}

/* Sets up |o->x.hr| for |b->base| + path |which| when the base is an
 * http:// or https:// URL and no proxy is configured for its scheme. GW_OK,
 * GW_ERR_NOMEM, or 1 (nothing done) when not: curl serves it. The host and
 * path were read from the URL once, with the backend (which outlives the
 * call). */
static int native_prepare(oai_call *o, int which) {
  gw_call *call = o->x.call;
  const gw_openai_backend *b = o->b;
  if (!b->native || gw_http_proxy_for(b->tls))
    return 1;
  gw_http_req *r = &o->x.hr;
  memset(r, 0, sizeof(*r));
  r->host = b->host;
  r->port = b->port;
  r->tls = b->tls;
  r->method = "POST";
  r->path = b->paths[which];
  size_t n = 0;
  /* curl's order: User-Agent, ours, then Content-Length (the client's). */
  o->hdrs[n++] = "User-Agent: ai-gateway/" GW_VERSION;
  if (o->b->auth_header)
    o->hdrs[n++] = o->b->auth_header;
  o->hdrs[n++] = "Content-Type: application/json";
  o->hdrs[n++] = o->streaming ? "Accept: text/event-stream" : "Accept: application/json";
  if (gw_header_safe(call->request_id) &&
      !(o->hdrs[n++] = gw_arena_concat(call->arena, "X-Request-Id: ", call->request_id)))
    return GW_ERR_NOMEM;
  if (gw_header_safe(call->traceparent) &&
      !(o->hdrs[n++] = gw_arena_concat(call->arena, "traceparent: ", call->traceparent)))
    return GW_ERR_NOMEM;
  r->headers = o->hdrs;
  r->n_headers = n;
  r->body = o->x.body.data;
  r->body_len = o->x.body.len;
  r->timeout_ms = o->timeout_ms;
  r->connect_timeout_ms =
      o->timeout_ms > 0 && o->timeout_ms < CONNECT_TIMEOUT_MS ? o->timeout_ms : CONNECT_TIMEOUT_MS;
  r->arg = o;
  r->on_header = native_on_header;
  r->on_body = native_on_body;
  r->done = native_done;
  o->x.native = true;
  return GW_OK;
}

/* Starts |o| on |hc|: GW_OK, an error (nothing started), or 1 when the
 * backend is neither http:// nor https://, or its scheme goes through a
 * proxy (curl serves it). */
static int native_start(oai_call *o, gw_http_client *hc, int which) {
  gw_call *call = o->x.call;
  o->timeout_ms = gw_exchange_timeout(call, o->b->timeout_ms);
  int rc = native_prepare(o, which);
  if (rc != GW_OK)
    return rc;
  gw_call_ref(call);
  call->provider_state = o;
  rc = gw_http_req_start(hc, &o->x.hr);
  if (rc != GW_OK) {
    call->provider_state = NULL;
    o->x.native = false;
    gw_call_unref(call); /* the front door still holds its own */
    return rc == GW_ERR_NOMEM ? rc : GW_ERR_IO;
  }
  GW_LOGD("openai", call->request_id, "%s -> backend %s POST %s (%zu bytes, native)",
          call->method->path, o->b->name, o->x.hr.path, o->x.body.len);
  return GW_OK;
}

/* ---- the request ---------------------------------------------------------------- */

#define field(m, name) GW_PB_FIELD((m)->descriptor, name)

/* Puts the backend's model name, the stream flag and the embedding encoding
 * into the request (in the call's arena) before it is written. */
static int rewrite_request(oai_call *o) {
  gw_call *call = o->x.call;
  ProtobufCMessage *req = call->request;
  const ProtobufCFieldDescriptor *f = field(req, "model");
  if (f && f->type == PROTOBUF_C_TYPE_STRING && call->route.upstream_model)
    *(const char **)((char *)req + f->offset) = call->route.upstream_model;
  f = field(req, "stream");
  if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
      f->descriptor == &google__protobuf__bool_value__descriptor) {
    Google__Protobuf__BoolValue **slot = (Google__Protobuf__BoolValue **)((char *)req + f->offset);
    if (o->streaming || (*slot && (*slot)->value)) {
      Google__Protobuf__BoolValue *v = gw_arena_alloc(call->arena, sizeof(*v));
      if (!v)
        return GW_ERR_NOMEM;
      google__protobuf__bool_value__init(v);
      v->value = o->streaming;
      *slot = v;
    }
  }
  if (o->embedding) {
    /* Base64 whatever the client asked: 5.3 bytes a float instead of ~12,
     * decoded straight into the float field where text had to be parsed
     * (a third of a 256-float answer's cost); the front door answers in
     * the client's encoding. "float" for upstreams without base64. */
    f = field(req, "encoding_format");
    if (f && f->type == PROTOBUF_C_TYPE_STRING)
      *(const char **)((char *)req + f->offset) = o->b->embeddings_float ? "float" : "base64";
  }
  /* Room for the upstream's JSON at once, about the size of what the client
   * sent (JSON or the smaller protobuf, plus a margin): a 10 KB conversation
   * grew the buffer from 256 bytes six times, each time copying what was
   * written (the arena cannot grow a block in place). A failure here is
   * the print's to report. */
  size_t hint = call->request_bytes;
  if (hint > 200 && hint < REQUEST_CAP / 2)
    (void)gw_buf_reserve(&o->x.body, hint + hint / 4 + 256);
  return gw_pb_to_json(req, &out_opts, &o->x.body);
}

static int add_header(oai_call *o, const char *h) {
  struct curl_slist *l = curl_slist_append(o->x.headers, h);
  if (!l)
    return GW_ERR_NOMEM;
  o->x.headers = l;
  return GW_OK;
}

static int build_headers(oai_call *o) {
  gw_call *call = o->x.call;
  gw_arena *a = call->arena;
  if (o->b->auth_header && add_header(o, o->b->auth_header) != GW_OK)
    return GW_ERR_NOMEM;
  if (add_header(o, "Content-Type: application/json") != GW_OK ||
      add_header(o, o->streaming ? "Accept: text/event-stream" : "Accept: application/json") !=
          GW_OK ||
      add_header(o, "Expect:") != GW_OK)
    return GW_ERR_NOMEM;
  if (gw_header_safe(call->request_id)) {
    const char *h = gw_arena_concat(a, "X-Request-Id: ", call->request_id);
    if (!h || add_header(o, h) != GW_OK)
      return GW_ERR_NOMEM;
  }
  if (gw_header_safe(call->traceparent)) {
    const char *h = gw_arena_concat(a, "traceparent: ", call->traceparent);
    if (!h || add_header(o, h) != GW_OK)
      return GW_ERR_NOMEM;
  }
  return GW_OK;
}

/* The upstream path of method |name| (an index into path_of), or -1. */
static int method_path(const char *name) {
  if (strcmp(name, "CreateChatCompletion") == 0 || strcmp(name, "StreamChatCompletion") == 0)
    return P_CHAT;
  if (strcmp(name, "CreateCompletion") == 0 || strcmp(name, "StreamCompletion") == 0)
    return P_COMPLETIONS;
  if (strcmp(name, "CreateEmbedding") == 0)
    return P_EMBEDDINGS;
  return -1;
}

static int start(gw_call *call) {
  const gw_openai_backend *b = call->route.backend_impl;
  gw_curl_loop *loop = gw_curl_loop_of(call->worker);
  if (!b || !loop)
    return GW_ERR_STATE;
  int which = method_path(call->method->name);
  if (which < 0) {
    gw_call_finishf(call, GW_STATUS_UNIMPLEMENTED, "%s is not served by OpenAI-compatible backends",
                    call->method->path);
    return GW_OK;
  }
  oai_call *o = gw_arena_calloc(call->arena, sizeof(*o));
  if (!o)
    return GW_ERR_NOMEM;
  o->x.call = call;
  o->b = b;
  o->streaming = call->method->server_streaming;
  o->embedding = which == P_EMBEDDINGS;
  /* The upstream request and answer live as long as the call: in its arena. */
  gw_buf_init_arena(&o->x.body, REQUEST_CAP, call->arena);
  gw_buf_init_arena(&o->x.resp, o->streaming ? ERROR_BODY_CAP : BODY_CAP, call->arena);
  gw_sse_reader_init(&o->x.sse, EVENT_CAP);

  int rc = rewrite_request(o);
  if (rc != GW_OK)
    goto fail;
  gw_http_client *hc = gw_http_client_of(call->worker); /* NULL: UPSTREAM_CLIENT=curl */
  if (hc && (rc = native_start(o, hc, which)) != 1) {
    if (rc != GW_OK)
      goto fail;
    return GW_OK;
  }
  const char *url = gw_arena_concat(call->arena, b->base, path_of[which]);
  if (!url) {
    rc = GW_ERR_NOMEM;
    goto fail;
  }
  if ((rc = build_headers(o)) != GW_OK)
    goto fail;
  CURL *e = curl_easy_init();
  if (!e) {
    rc = GW_ERR_NOMEM;
    goto fail;
  }
  o->x.cx.easy = e;
  o->x.cx.done = on_done;
  o->timeout_ms = gw_exchange_timeout(call, b->timeout_ms);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  gw_curl_trust_env(e);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  long connect_ms = CONNECT_TIMEOUT_MS;
  if (o->timeout_ms > 0 && o->timeout_ms < connect_ms)
    connect_ms = (long)o->timeout_ms;
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
  if (o->timeout_ms > 0)
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, o->x.body.data ? o->x.body.data : "");
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->x.body.len);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, o->x.headers);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "ai-gateway/" GW_VERSION);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, o);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, o);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, o->errbuf);

  gw_call_ref(call);
  call->provider_state = o;
  if (gw_curl_loop_add(loop, &o->x.cx) != GW_OK) {
    call->provider_state = NULL;
    rc = GW_ERR_IO;
    gw_call_unref(call); /* the front door still holds its own */
    goto fail;
  }
  GW_LOGD("openai", call->request_id, "%s -> backend %s POST %s (%zu bytes)", call->method->path,
          b->name, path_of[which], o->x.body.len);
  return GW_OK;

fail:
  gw_exchange_discard(&o->x);
  return rc;
}

static void cancel(gw_call *call) {
  oai_call *o = call->provider_state;
  gw_exchange_cancel(o ? &o->x : NULL);
}

static void resume(gw_call *call) {
  oai_call *o = call->provider_state;
  if (!o || o->x.ended || !o->streaming)
    return;
  pump(o);
  if (o->x.ended || o->backlog)
    return;
  if (o->x.transfer_done) {
    finish_stream(o);
    return;
  }
  if (o->paused) {
    o->paused = false;
    if (o->x.native)
      gw_http_req_resume(&o->x.hr);
    else
      gw_curl_loop_unpause(&o->x.cx);
  }
}

const gw_openai_error *gw_openai_error_of(const gw_call *call) {
  if (call->provider != &gw_provider_openai || !call->provider_state)
    return NULL;
  const oai_call *o = call->provider_state;
  return o->x.has_error ? &o->x.err : NULL;
}

const gw_provider_ops gw_provider_openai = {
    .name = "openai", .start = start, .cancel = cancel, .resume = resume};
