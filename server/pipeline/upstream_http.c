/* A vendor HTTP exchange on the worker's curl loop, for translating providers. */
#include "pipeline/upstream_http.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/alloc.h"
#include "core/log.h"
#include "engine/curl_loop.h"
#include "engine/worker.h"
#include "pipeline/json_text.h"
#include "transcoder/json_pb.h"

#ifndef GW_VERSION
#define GW_VERSION "0.1.0"
#endif

#define REQUEST_CAP ((size_t)64 << 20)
#define BODY_CAP ((size_t)64 << 20)
#define ERROR_BODY_CAP ((size_t)64 << 10)
#define EVENT_CAP ((size_t)4 << 20)
#define CONNECT_TIMEOUT_MS 10000L

/* The translators' OpenAI JSON of an answer (Azure's passes the server's own
 * members on): kept where there is a slot, dropped elsewhere. */
static const gw_json_opts in_opts = {.keep_unknown = 1, .drop_unknown = 1, .bare_unions = 1};

long long gw_upstream_unix_time(void) { return (long long)time(NULL); }

bool gw_upstream_serves_chat(gw_call *call, const char *what) {
  const char *m = call->method->name;
  if (strcmp(m, "CreateChatCompletion") == 0 || strcmp(m, "StreamChatCompletion") == 0)
    return true;
  gw_call_finishf(call, GW_STATUS_UNIMPLEMENTED, "%s is not served by %s backends",
                  call->method->path, what);
  return false;
}

int gw_upstream_request_open(gw_upstream_request *r, const gw_call *call, char *err,
                             size_t errlen) {
  /* int64 as numbers and unions bare: the JSON the vendors' own OpenAI
   * compatibility takes, and what the translators read; the DOM built
   * straight from the message, not written as text and read back */
  static const gw_json_opts opts = {.int64_as_number = 1, .bare_unions = 1};
  const char *why = NULL;
  r->req = NULL;
  r->json_len = 0;
  if (!(r->arena = gw_arena_new(0, 0)))
    return GW_ERR_NOMEM;
  int rc = gw_pb_to_jval(call->request, &opts, r->arena, &r->req, &r->json_len, &why);
  if (rc == GW_OK && r->json_len > REQUEST_CAP)
    rc = GW_ERR_TOOBIG;
  if (rc == GW_ERR_INVALID || (rc == GW_OK && !gw_jt_is_object(r->req))) {
    snprintf(err, errlen, "the request cannot be translated: %s",
             rc != GW_OK ? why : "not an object");
    rc = GW_ERR_INVALID;
  }
  if (rc != GW_OK)
    r->req = NULL;
  return rc;
}

void gw_upstream_request_close(gw_upstream_request *r) {
  if (r->arena)
    gw_arena_free(r->arena);
  r->arena = NULL;
  r->req = NULL;
}

void gw_upstream_undecodable(gw_upstream *u, int rc, const char *what) {
  char m[160];
  snprintf(m, sizeof m, "backend %s sent an undecodable %s", u->backend_name, what);
  gw_upstream_end(u, rc == GW_ERR_NOMEM ? GW_STATUS_RESOURCE_EXHAUSTED : GW_STATUS_INTERNAL, m);
}

void gw_upstream_refuse(gw_call *call, int rc, const char *err) {
  if (rc == GW_ERR_INVALID)
    gw_call_finish(call, GW_STATUS_INVALID_ARGUMENT, err);
  else if (rc == GW_ERR_TOOBIG)
    gw_call_finish(call, GW_STATUS_RESOURCE_EXHAUSTED, "request too large");
  else
    gw_call_finish(call, GW_STATUS_RESOURCE_EXHAUSTED, "out of memory");
}

gw_status_code gw_upstream_status_from_type(const char *type) {
  static const struct {
    const char *type;
    gw_status_code code;
  } map[] = {
      {"invalid_request_error", GW_STATUS_INVALID_ARGUMENT},
      {"authentication_error", GW_STATUS_UNAUTHENTICATED},
      {"permission_error", GW_STATUS_PERMISSION_DENIED},
      {"not_found_error", GW_STATUS_NOT_FOUND},
      {"rate_limit_error", GW_STATUS_RESOURCE_EXHAUSTED},
      {"overloaded_error", GW_STATUS_UNAVAILABLE},
      {"api_error", GW_STATUS_INTERNAL},
      {"timeout_error", GW_STATUS_DEADLINE_EXCEEDED},
      /* Bedrock */
      {"ValidationException", GW_STATUS_INVALID_ARGUMENT},
      {"AccessDeniedException", GW_STATUS_PERMISSION_DENIED},
      {"ResourceNotFoundException", GW_STATUS_NOT_FOUND},
      {"ThrottlingException", GW_STATUS_RESOURCE_EXHAUSTED},
      {"ServiceQuotaExceededException", GW_STATUS_RESOURCE_EXHAUSTED},
      {"ModelTimeoutException", GW_STATUS_DEADLINE_EXCEEDED},
      {"ModelNotReadyException", GW_STATUS_UNAVAILABLE},
      {"ServiceUnavailableException", GW_STATUS_UNAVAILABLE},
      {"ModelStreamErrorException", GW_STATUS_INTERNAL},
      {"InternalServerException", GW_STATUS_INTERNAL},
      /* Google */
      {"INVALID_ARGUMENT", GW_STATUS_INVALID_ARGUMENT},
      {"FAILED_PRECONDITION", GW_STATUS_FAILED_PRECONDITION},
      {"UNAUTHENTICATED", GW_STATUS_UNAUTHENTICATED},
      {"PERMISSION_DENIED", GW_STATUS_PERMISSION_DENIED},
      {"NOT_FOUND", GW_STATUS_NOT_FOUND},
      {"RESOURCE_EXHAUSTED", GW_STATUS_RESOURCE_EXHAUSTED},
      {"UNAVAILABLE", GW_STATUS_UNAVAILABLE},
      {"DEADLINE_EXCEEDED", GW_STATUS_DEADLINE_EXCEEDED},
      {"INTERNAL", GW_STATUS_INTERNAL},
  };
  for (size_t i = 0; type && i < sizeof(map) / sizeof(map[0]); i++)
    if (strcmp(type, map[i].type) == 0)
      return map[i].code;
  return GW_STATUS_INTERNAL;
}

/* ---- ending ---------------------------------------------------------------------- */

void gw_upstream_end(gw_upstream *u, gw_status_code code, const char *msg) {
  gw_exchange_end(&u->x, code, msg);
}

void gw_upstream_fail(gw_upstream *u, long http_status, gw_status_code code, const char *type,
                      const char *ecode, const char *message) {
  gw_arena *a = u->x.call->arena;
  u->x.has_error = true;
  u->x.err.http_status = http_status;
  u->x.err.type = type ? gw_arena_strdup(a, type) : NULL;
  u->x.err.code = ecode ? gw_arena_strdup(a, ecode) : NULL;
  u->x.err.message = message ? gw_arena_strdup(a, message) : NULL;
  if (http_status >= 400)
    code = gw_openai_status_from_http(http_status);
  gw_upstream_end(u, code, message && *message ? message : "backend failed");
}

/* ---- emitting ---------------------------------------------------------------------- */

int gw_upstream_decode_text(gw_upstream *u, const char *json, size_t len, gw_arena *a,
                            const char *const *skip, ProtobufCMessage **out) {
  gw_json_error je = {{0}, {0}};
  gw_json_opts o = in_opts;
  o.skip_unknown = skip;
  int rc = gw_json_to_pb(u->x.call->method->output, json, len, a, &o, out, &je);
  if (rc != GW_OK) {
    char m[640];
    snprintf(m, sizeof m, "backend %s: untranslatable answer: %s%s%s", u->backend_name, je.param,
             je.param[0] ? ": " : "", je.message);
    gw_upstream_end(u, rc == GW_ERR_NOMEM ? GW_STATUS_RESOURCE_EXHAUSTED : GW_STATUS_INTERNAL, m);
  }
  return rc;
}

int gw_upstream_emit_text(gw_upstream *u, const char *json, size_t len) {
  if (u->x.ended)
    return GW_ERR_STATE;
  /* A unary answer lives as long as the call; a chunk only until emitted. */
  gw_arena *a = u->streaming ? gw_arena_new(0, 0) : u->x.call->arena;
  if (!a) {
    gw_upstream_end(u, GW_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return GW_ERR_NOMEM;
  }
  ProtobufCMessage *msg = NULL;
  int rc = gw_upstream_decode_text(u, json, len, a, NULL, &msg);
  if (rc == GW_OK)
    rc = gw_call_emit(u->x.call, msg);
  if (a != u->x.call->arena)
    gw_arena_free(a);
  return rc;
}

/* ---- reading ------------------------------------------------------------------------ */

static void framing_error(gw_upstream *u, int rc) {
  char m[200];
  if (rc == GW_ERR_INVALID)
    snprintf(m, sizeof m, "backend %s sent a malformed event-stream frame", u->backend_name);
  else
    snprintf(m, sizeof m, "backend %s sent a stream event over %zu bytes", u->backend_name,
             (size_t)EVENT_CAP);
  gw_upstream_end(u, rc == GW_ERR_NOMEM ? GW_STATUS_RESOURCE_EXHAUSTED : GW_STATUS_INTERNAL, m);
}

/* The next event, handed to the codec: 1, 0 (need more) or an error. */
static int next_event(gw_upstream *u) {
  if (u->framing == GW_UPSTREAM_SSE) {
    gw_sse_event ev;
    int rc = gw_sse_reader_next(&u->x.sse, &ev);
    if (rc <= 0)
      return rc;
    if (u->saw_done)
      return 1;
    if (ev.done) {
      u->saw_done = true;
      return 1;
    }
    u->codec->event(u, ev.event, ev.data, ev.len, false);
    return 1;
  }
  gw_eventstream_message m;
  int rc = gw_eventstream_next(&u->x.es, &m);
  if (rc <= 0)
    return rc;
  if (strcmp(m.message_type, "error") == 0) {
    const char *code = m.error_code[0] ? m.error_code : "InternalServerException";
    gw_upstream_fail(u, 0, gw_upstream_status_from_type(code), code, NULL,
                     m.error_message[0] ? m.error_message : code);
    return 1;
  }
  bool exc = strcmp(m.message_type, "exception") == 0;
  /* The payload is not NUL-terminated: the codecs take its length. */
  u->codec->event(u, exc ? m.exception_type : m.event_type, m.payload, m.payload_len, exc);
  return 1;
}

static void pump(gw_upstream *u) {
  while (!u->x.ended) {
    if (!gw_call_sink_ready(u->x.call)) {
      u->backlog = true;
      return;
    }
    int rc = next_event(u);
    if (rc == 0) {
      u->backlog = false;
      return;
    }
    if (rc < 0) {
      framing_error(u, rc);
      return;
    }
  }
}

static int feed(gw_upstream *u, const char *p, size_t n) {
  if (u->framing == GW_UPSTREAM_SSE)
    return gw_sse_reader_feed(&u->x.sse, p, n);
  return gw_eventstream_feed(&u->x.es, p, n);
}

static void finish_stream(gw_upstream *u) {
  if (u->x.ended || u->backlog)
    return;
  if (u->framing == GW_UPSTREAM_SSE && gw_sse_reader_feed(&u->x.sse, "\n\n", 2) == GW_OK)
    pump(u);
  if (u->x.ended || u->backlog)
    return;
  if (u->framing == GW_UPSTREAM_EVENTSTREAM && gw_eventstream_pending(&u->x.es)) {
    char m[160];
    snprintf(m, sizeof m, "backend %s: stream cut inside a frame", u->backend_name);
    gw_upstream_end(u, GW_STATUS_UNAVAILABLE, m);
    return;
  }
  if (u->codec->stream_end)
    u->codec->stream_end(u);
  gw_upstream_end(u, GW_STATUS_OK, NULL);
}

static bool is_2xx(long st) { return st >= 200 && st < 300; }

/* Keeps |n| bytes of a unary or an error answer (an error keeps what fits). */
static void keep_body(gw_upstream *u, const char *p, size_t n) {
  int rc = gw_buf_append(&u->x.resp, p, n);
  if (rc != GW_OK && is_2xx(u->x.http_status)) {
    char m[160];
    snprintf(m, sizeof m, "backend %s sent a response over %zu bytes", u->backend_name,
             u->x.resp.cap);
    gw_upstream_end(u, rc == GW_ERR_NOMEM ? GW_STATUS_RESOURCE_EXHAUSTED : GW_STATUS_INTERNAL, m);
  }
}

static size_t write_cb(char *p, size_t size, size_t nmemb, void *arg) {
  gw_upstream *u = arg;
  size_t n = size * nmemb;
  if (u->x.ended)
    return n;
  curl_easy_getinfo(u->x.cx.easy, CURLINFO_RESPONSE_CODE, &u->x.http_status);
  if (!u->streaming || !is_2xx(u->x.http_status)) {
    keep_body(u, p, n);
    return n;
  }
  if (u->backlog) {
    pump(u);
    if (u->x.ended)
      return n;
    if (u->backlog) {
      u->paused = true;
      return CURL_WRITEFUNC_PAUSE;
    }
  }
  int rc = feed(u, p, n);
  if (rc != GW_OK) {
    framing_error(u, rc);
    return n;
  }
  pump(u);
  return n;
}

/* A Retry-After value (|v| and |end| around it, blanks included). */
static void keep_retry_after(gw_upstream *u, const char *v, const char *end) {
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
    end--;
  u->x.err.retry_after = gw_arena_strndup(u->x.call->arena, v, (size_t)(end - v));
}

static size_t header_cb(char *p, size_t size, size_t nmemb, void *arg) {
  gw_upstream *u = arg;
  size_t n = size * nmemb;
  static const char name[] = "retry-after:";
  if (n > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0)
    keep_retry_after(u, p + sizeof(name) - 1, p + n);
  return n;
}

static void http_error(gw_upstream *u, long st) {
  gw_arena *a = u->x.call->arena;
  const char *data = u->x.resp.data ? u->x.resp.data : "";
  gw_status_code code = gw_openai_status_from_http(st);
  u->x.has_error = true;
  u->x.err.http_status = st;
  if (u->codec->error)
    code = u->codec->error(u, st, data, u->x.resp.len);
  else if (u->x.resp.len)
    u->x.err.message = gw_arena_strndup(a, data, u->x.resp.len > 512 ? 512 : u->x.resp.len);
  u->x.err.http_status = st;
  if (u->x.err.message && *u->x.err.message) {
    gw_upstream_end(u, code, u->x.err.message);
  } else {
    char msg[160];
    snprintf(msg, sizeof msg, "backend %s answered HTTP %ld", u->backend_name, st);
    u->x.err.message = gw_arena_strdup(a, msg);
    gw_upstream_end(u, code, msg);
  }
}

/* The exchange failed below HTTP (|why|, either client's words). */
static void transport_error(gw_upstream *u, bool timed_out, const char *why) {
  char m[400];
  gw_status_code code = GW_STATUS_UNAVAILABLE;
  if (timed_out) {
    code = GW_STATUS_DEADLINE_EXCEEDED;
    snprintf(m, sizeof m, "backend %s did not answer in time", u->backend_name);
  } else if (u->x.http_status) {
    snprintf(m, sizeof m, "backend %s: response broken: %s", u->backend_name, why);
  } else {
    snprintf(m, sizeof m, "backend %s unavailable: %s", u->backend_name, why);
  }
  gw_upstream_end(u, code, m);
}

/* The transfer ended with the whole answer. */
static void answer_done(gw_upstream *u) {
  if (u->streaming) {
    finish_stream(u);
    return;
  }
  u->codec->body(u, u->x.resp.data ? u->x.resp.data : "", u->x.resp.len);
  gw_upstream_end(u, GW_STATUS_OK, NULL);
}

static void on_done(gw_curl_xfer *x, CURLcode result) {
  gw_upstream *u = GW_CONTAINER_OF(x, gw_upstream, x.cx);
  if (!gw_exchange_curl_done(&u->x))
    return;
  long st = u->x.http_status;
  if (st != 0 && !is_2xx(st)) {
    http_error(u, st);
    return;
  }
  if (result != CURLE_OK) {
    transport_error(u, result == CURLE_OPERATION_TIMEDOUT,
                    u->errbuf[0] ? u->errbuf : curl_easy_strerror(result));
    return;
  }
  answer_done(u);
}

/* ---- the native client ------------------------------------------------------------ */

/* The same handling as header_cb / write_cb / on_done, for an exchange on
 * the worker's native client. */

static int native_on_header(gw_http_req *r, const char *name, size_t nlen, const char *v,
                            size_t vlen) {
  if (nlen == 11 && strncasecmp(name, "retry-after", 11) == 0)
    keep_retry_after(r->arg, v, v + vlen);
  return 0;
}

static int native_on_body(gw_http_req *r, const char *p, size_t n) {
  gw_upstream *u = r->arg;
  if (u->x.ended)
    return 0; /* cancelled from inside: the client ends it on return */
  u->x.http_status = r->status;
  if (!u->streaming || !is_2xx(u->x.http_status)) {
    keep_body(u, p, n);
    return 0;
  }
  int rc = feed(u, p, n); /* the bytes are taken: fed, then pumped */
  if (rc != GW_OK) {
    framing_error(u, rc);
    return 0;
  }
  pump(u);
  if (!u->x.ended && u->backlog) { /* the client is slow: stop reading the upstream */
    u->paused = true;
    gw_http_req_pause(r);
  }
  return 0;
}

static void native_done(gw_http_req *r, int err) {
  gw_upstream *u = r->arg;
  u->x.transfer_done = true;
  u->x.http_status = r->status;
  gw_buf_release(&u->x.body);
  if (u->x.ended) {
    gw_exchange_release(&u->x);
    return;
  }
  if (r->status != 0 && !is_2xx(r->status)) {
    http_error(u, r->status);
    return;
  }
  if (err != GW_OK) {
    char why[200];
    gw_http_req_describe(r, err, why, sizeof why);
    transport_error(u, err == GW_ERR_IO && r->sys_errno == ETIMEDOUT, why);
    return;
  }
  answer_done(u);
}

/* ---- starting ------------------------------------------------------------------------ */

gw_upstream *gw_upstream_new(gw_call *call, const gw_upstream_codec *codec,
                             const char *backend_name, bool streaming, gw_upstream_framing framing,
                             int timeout_ms) {
  gw_upstream *u = gw_arena_calloc(call->arena, sizeof(*u));
  if (!u)
    return NULL;
  u->x.call = call;
  u->codec = codec;
  u->backend_name = backend_name;
  u->streaming = streaming;
  u->framing = framing;
  u->timeout_ms = timeout_ms;
  u->lines_end = &u->lines;
  gw_buf_init(&u->x.body, REQUEST_CAP);
  gw_buf_init(&u->x.resp, streaming ? ERROR_BODY_CAP : BODY_CAP);
  gw_sse_reader_init(&u->x.sse, EVENT_CAP);
  gw_eventstream_init(&u->x.es, EVENT_CAP);
  return u;
}

struct gw_upstream_line {
  const char *text;
  struct gw_upstream_line *next;
};

int gw_upstream_add_header(gw_upstream *u, const char *h) {
  struct gw_upstream_line *l = gw_arena_alloc(u->x.call->arena, sizeof(*l));
  if (!l || !(l->text = gw_arena_strdup(u->x.call->arena, h)))
    return GW_ERR_NOMEM;
  l->next = NULL;
  *u->lines_end = l;
  u->lines_end = &l->next;
  u->n_lines++;
  return GW_OK;
}

/* The header lines as curl's list (x.headers, which the exchange frees). */
static int curl_lines(gw_upstream *u) {
  for (const struct gw_upstream_line *l = u->lines; l; l = l->next) {
    struct curl_slist *n = curl_slist_append(u->x.headers, l->text);
    if (!n)
      return GW_ERR_NOMEM;
    u->x.headers = n;
  }
  return GW_OK;
}

void gw_upstream_discard(gw_upstream *u) { gw_exchange_discard(&u->x); }

/* Starts |u| on the worker's native client: GW_OK, an error (nothing
 * started), or 1 when curl must serve it (a URL it does not take, a proxy
 * for the scheme). The header lines are curl's, less its "Name:" removals,
 * with the User-Agent and Accept curl would add. */
static int native_start(gw_upstream *u, gw_http_client *hc, const char *method, const char *url) {
  gw_call *call = u->x.call;
  const char *prefix;
  int port;
  bool tls;
  if (gw_http_parse_url(url, &tls, u->host, sizeof u->host, &port, &prefix) != GW_OK ||
      gw_http_proxy_for(tls))
    return 1;
  bool accept = false;
  for (const struct gw_upstream_line *l = u->lines; l; l = l->next)
    accept = accept || strncasecmp(l->text, "Accept:", 7) == 0;
  const char **h = gw_arena_alloc(call->arena, (u->n_lines + 2) * sizeof *h);
  if (!h)
    return GW_ERR_NOMEM;
  size_t n = 0;
  h[n++] = "User-Agent: ai-gateway/" GW_VERSION;
  if (!accept)
    h[n++] = "Accept: */*";
  for (const struct gw_upstream_line *l = u->lines; l; l = l->next) {
    size_t len = strlen(l->text);
    if (len && l->text[len - 1] != ':') /* "Expect:": curl's way to send none */
      h[n++] = l->text;
  }
  gw_http_req *r = &u->x.hr;
  memset(r, 0, sizeof(*r));
  r->host = u->host;
  r->port = port;
  r->tls = tls;
  r->method = method;
  r->path = *prefix ? prefix : "/";
  r->headers = h;
  r->n_headers = n;
  r->body = u->x.body.data;
  r->body_len = u->x.body.len;
  r->timeout_ms = gw_exchange_timeout(call, u->timeout_ms);
  r->connect_timeout_ms =
      r->timeout_ms > 0 && r->timeout_ms < CONNECT_TIMEOUT_MS ? r->timeout_ms : CONNECT_TIMEOUT_MS;
  r->arg = u;
  r->on_header = native_on_header;
  r->on_body = native_on_body;
  r->done = native_done;
  gw_call_ref(call);
  call->provider_state = u;
  u->x.native = true;
  int rc = gw_http_req_start(hc, r);
  if (rc != GW_OK) {
    call->provider_state = NULL;
    u->x.native = false;
    gw_call_unref(call);
    return rc == GW_ERR_NOMEM ? rc : GW_ERR_IO;
  }
  GW_LOGD("upstream", call->request_id, "%s -> backend %s %s (%zu bytes, native)",
          call->method->path, u->backend_name, method, u->x.body.len);
  return GW_OK;
}

int gw_upstream_start(gw_upstream *u, const char *method, const char *url) {
  gw_call *call = u->x.call;
  gw_curl_loop *loop = gw_curl_loop_of(call->worker);
  int rc = GW_ERR_NOMEM;
  if (gw_upstream_add_header(u, "Expect:") != GW_OK)
    goto fail;
  if (gw_header_safe(call->request_id)) {
    const char *h = gw_arena_concat(call->arena, "X-Request-Id: ", call->request_id);
    if (!h || gw_upstream_add_header(u, h) != GW_OK)
      goto fail;
  }
  if (gw_header_safe(call->traceparent)) {
    const char *h = gw_arena_concat(call->arena, "traceparent: ", call->traceparent);
    if (!h || gw_upstream_add_header(u, h) != GW_OK)
      goto fail;
  }
  gw_http_client *hc = gw_http_client_of(call->worker); /* NULL: UPSTREAM_CLIENT=curl */
  if (hc && (rc = native_start(u, hc, method, url)) != 1) {
    if (rc != GW_OK)
      goto fail;
    return GW_OK;
  }
  if (!loop) {
    rc = GW_ERR_STATE;
    goto fail;
  }
  rc = GW_ERR_NOMEM;
  CURL *e = curl_lines(u) == GW_OK ? curl_easy_init() : NULL;
  if (!e)
    goto fail;
  u->x.cx.easy = e;
  u->x.cx.done = on_done;
  int64_t timeout = gw_exchange_timeout(call, u->timeout_ms);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  gw_curl_trust_env(e);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  long connect_ms = CONNECT_TIMEOUT_MS;
  if (timeout > 0 && timeout < connect_ms)
    connect_ms = (long)timeout;
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
  if (timeout > 0)
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout);
  if (strcmp(method, "POST") == 0) {
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, u->x.body.data ? u->x.body.data : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)u->x.body.len);
  } else if (strcmp(method, "GET") != 0) {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, u->x.headers);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "ai-gateway/" GW_VERSION);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, u);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, u);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, u->errbuf);

  gw_call_ref(call);
  call->provider_state = u;
  if (gw_curl_loop_add(loop, &u->x.cx) != GW_OK) {
    call->provider_state = NULL;
    gw_call_unref(call);
    rc = GW_ERR_IO;
    goto fail;
  }
  GW_LOGD("upstream", call->request_id, "%s -> backend %s %s (%zu bytes)", call->method->path,
          u->backend_name, method, u->x.body.len);
  return GW_OK;
fail:
  gw_upstream_discard(u);
  return rc;
}

void gw_upstream_cancel(gw_call *call) {
  gw_upstream *u = call->provider_state;
  gw_exchange_cancel(u ? &u->x : NULL);
}

void gw_upstream_resume(gw_call *call) {
  gw_upstream *u = call->provider_state;
  if (!u || u->x.ended || !u->streaming)
    return;
  pump(u);
  if (u->x.ended || u->backlog)
    return;
  if (u->x.transfer_done) {
    finish_stream(u);
    return;
  }
  if (u->paused) {
    u->paused = false;
    if (u->x.native)
      gw_http_req_resume(&u->x.hr);
    else
      gw_curl_loop_unpause(&u->x.cx);
  }
}

/* ---- translation helpers ------------------------------------------------------------ */

bool gw_upstream_data_url(const char *url, const char **media, size_t *media_len,
                          const char **data) {
  if (strncmp(url, "data:", 5) != 0)
    return false;
  const char *m = url + 5;
  const char *comma = strchr(m, ',');
  if (!comma)
    return false;
  const char *semi = memchr(m, ';', (size_t)(comma - m));
  if (!semi || strncmp(semi, ";base64,", 8) != 0)
    return false;
  *media = m;
  *media_len = (size_t)(semi - m);
  *data = comma + 1;
  return true;
}
