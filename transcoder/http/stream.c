/* The protocol-neutral half of a stream: building the gw_http_request from
 * what a codec parsed, enforcing the request limits, calling the handler, and
 * the public respond/start/write/end calls, which add the headers every
 * response carries and hand the bytes to the HTTP/1 or HTTP/2 codec. */
#include <ctype.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/numtext.h"
#include "core/status.h"
#include "transcoder/http/internal.h"

#define MAX_EXTRA_HEADERS 16

static void stream_timeout_cb(evutil_socket_t fd, short what, void *arg);

/* Bodies up to this (with a Content-Length) are read into the stream's arena. */
#define STREAM_ARENA_BODY_MAX (64 * 1024)

/* --- lifecycle ----------------------------------------------------------- */

/* A new stream attached to |c|, reading its head; NULL when out of memory. */
gw_http_stream *gw_http_stream_new(gw_http_conn *c) {
  gw_http_server *srv = c->srv;
  /* The stream, its timer and its head's buffers live in its own arena
   * (which a worker reuses): a request's stream costs no malloc. */
  gw_arena *a = gw_arena_new(4096, 0);
  if (!a)
    return NULL;
  gw_http_stream *s = gw_arena_calloc(a, sizeof *s);
  struct event *timer = gw_arena_alloc(a, event_get_struct_event_size());
  if (!s || !timer || event_assign(timer, srv->base, -1, 0, stream_timeout_cb, s) != 0) {
    gw_arena_free(a);
    return NULL;
  }
  s->srv = srv;
  s->conn = c;
  s->content_length = -1;
  s->proto_open = 1;
  s->arena = a;
  s->timer = timer;
  gw_buf_init(&s->body, srv->opts.max_body_bytes);
  gw_buf_init_arena(&s->hfield, srv->opts.max_header_bytes, a);
  gw_buf_init_arena(&s->hvalue, srv->opts.max_header_bytes, a);
  gw_buf_init_arena(&s->url, srv->opts.max_header_bytes, a);
  s->req.tls = c->tls;
  s->req.peer = c->peer;
  s->req.peer_ip = c->peer_ip;
  s->req.query = "";
  s->req.authority = "";
  s->req.path = "";
  s->req.method = "";
  s->req.body = (const uint8_t *)"";
  s->next = c->streams;
  if (c->streams)
    c->streams->prev = s;
  c->streams = s;
  c->n_open++;
  return s;
}

/* Takes |s|'s timer off when it is on: most streams never arm it, and
 * event_del on an idle event costs more than asking. */
static void timer_stop(gw_http_stream *s) {
  if (evtimer_pending(s->timer, NULL))
    event_del(s->timer);
}

/* Frees |s| and all it holds; detaches it from its connection first. */
void gw_http_stream_free(gw_http_stream *s) {
  gw_http_conn *c = s->conn;
  if (c) {
    if (s->prev)
      s->prev->next = s->next;
    else
      c->streams = s->next;
    if (s->next)
      s->next->prev = s->prev;
    if (c->h1_cur == s)
      c->h1_cur = NULL;
  }
  timer_stop(s);
  if (s->out)
    evbuffer_free(s->out);
  gw_buf_release(&s->body);
  gw_buf_release(&s->hfield);
  gw_buf_release(&s->hvalue);
  gw_buf_release(&s->url);
  gw_arena_free(s->arena); /* |s| itself goes with it */
}

static void maybe_reap(gw_http_stream *s) {
  if (!s->app_owned && !s->proto_open && !s->reap_queued)
    gw_http_reap_stream(s);
}

void gw_http_stream_proto_close(gw_http_stream *s) {
  if (!s->proto_open)
    return;
  s->proto_open = 0;
  if (s->conn && s->conn->n_open)
    s->conn->n_open--;
  timer_stop(s);
  maybe_reap(s);
}

static void app_release(gw_http_stream *s) {
  s->app_owned = 0;
  maybe_reap(s);
}

/* The client went away: no more bytes either way. The handler hears it
 * through on_close (and then is done with |s|); without an on_close it keeps
 * |s| until its gw_http_end. */
void gw_http_stream_peer_gone(gw_http_stream *s) {
  if (s->peer_gone)
    return;
  s->peer_gone = 1;
  gw_http_stream_proto_close(s);
  if (s->app_owned && !s->resp_ended && s->on_close) {
    s->on_close(s, s->cb_arg);
    app_release(s);
  }
}

void gw_http_stream_arm_timer(gw_http_stream *s, unsigned ms) {
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  if (ms)
    evtimer_add(s->timer, &tv);
  else
    evtimer_del(s->timer);
}

static void stream_timeout_cb(evutil_socket_t fd, short what, void *arg) {
  gw_http_stream *s = arg;
  (void)fd;
  (void)what;
  if (s->state >= ST_READY || s->resp_started || !s->conn)
    return;
  gw_http_stream_set_error(s, 408, "request_timeout",
                           s->state == ST_HEAD ? "Timed out reading the request headers."
                                               : "Timed out reading the request body.");
  gw_http_stream_fail(s);
}

/* --- building the request ------------------------------------------------ */

void gw_http_stream_set_error(gw_http_stream *s, int status, const char *code, const char *msg) {
  if (s->err_status)
    return; /* the first error wins */
  s->err_status = status;
  s->err_code = code;
  s->err_msg = msg;
}

static int too_many_headers(gw_http_stream *s) {
  gw_http_stream_set_error(s, 431, "request_header_fields_too_large",
                           "Request headers are too large.");
  return GW_ERR_TOOBIG;
}

/* |n| bytes of |src| into |dst|, ASCII upper case made lower (no locale
 * lookups), eight at a time: in each byte below 0x80, adding 0x3f sets the
 * top bit from 'A' up and adding 0x25 from past 'Z' (no carry leaves a
 * byte), so the bytes between get 0x20. The last word overlaps the one
 * before it; lower-casing twice changes nothing. */
int gw_http_hop_by_hop(const char *name, size_t len) {
  switch (len) {
  case 2: return strcasecmp(name, "te") == 0;
  case 7: return strcasecmp(name, "upgrade") == 0;
  case 10: return strcasecmp(name, "connection") == 0 || strcasecmp(name, "keep-alive") == 0;
  case 14: return strcasecmp(name, "content-length") == 0;
  case 16: return strcasecmp(name, "proxy-connection") == 0;
  case 17: return strcasecmp(name, "transfer-encoding") == 0;
  default: return 0;
  }
}

static void lower_ascii(char *dst, const char *src, size_t n) {
  const uint64_t low7 = 0x7f7f7f7f7f7f7f7full, tops = 0x8080808080808080ull;
  if (n < 8) {
    for (size_t i = 0; i < n; i++) {
      unsigned char ch = (unsigned char)src[i];
      dst[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch);
    }
    return;
  }
  for (size_t i = 0;; i += 8) {
    if (i + 8 > n)
      i = n - 8;
    uint64_t x, h;
    memcpy(&x, src + i, 8);
    h = x & low7;
    x |= ((h + 0x3f3f3f3f3f3f3f3full) & ~(h + 0x2525252525252525ull) & ~x & tops) >> 2;
    memcpy(dst + i, &x, 8);
    if (i + 8 == n)
      return;
  }
}

/* The gw_http_known index of the lower-case header name |n| (|len| bytes),
 * or -1: its length, then one comparison. */
static int known_header(const char *n, size_t len) {
#define KNOWN(lit, k) (memcmp(n, lit, sizeof(lit) - 1) == 0 ? (int)(k) : -1)
  switch (len) {
  case 4: return KNOWN("host", GW_HDR_HOST);
  case 6:
    return n[0] == 'a'   ? KNOWN("accept", GW_HDR_ACCEPT)
           : n[0] == 'o' ? KNOWN("origin", GW_HDR_ORIGIN)
                         : KNOWN("expect", GW_HDR_EXPECT);
  case 11: return KNOWN("traceparent", GW_HDR_TRACEPARENT);
  case 12:
    return n[0] == 'c' ? KNOWN("content-type", GW_HDR_CONTENT_TYPE)
                       : KNOWN("x-request-id", GW_HDR_X_REQUEST_ID);
  case 13: return KNOWN("authorization", GW_HDR_AUTHORIZATION);
  case 14: return KNOWN("content-length", GW_HDR_CONTENT_LENGTH);
  case 15: return KNOWN("accept-encoding", GW_HDR_ACCEPT_ENCODING);
  case 16: return KNOWN("content-encoding", GW_HDR_CONTENT_ENCODING);
  case 29: return KNOWN("access-control-request-method", GW_HDR_ACR_METHOD);
  default: return -1;
  }
#undef KNOWN
}

int gw_http_stream_add_header(gw_http_stream *s, const char *name, size_t nlen, const char *value,
                              size_t vlen) {
  const gw_http_options *o = &s->srv->opts;
  if (s->err_status)
    return GW_ERR_STATE;
  s->head_bytes += nlen + vlen + 4;
  if (s->head_bytes > o->max_header_bytes || s->n_hdrs >= o->max_headers)
    return too_many_headers(s);
  if (s->n_hdrs == s->hdrs_cap) {
    size_t cap = s->hdrs_cap ? s->hdrs_cap * 2 : 16;
    gw_http_header *h = gw_arena_alloc(s->arena, cap * sizeof *h);
    if (!h)
      return GW_ERR_NOMEM;
    if (s->n_hdrs)
      memcpy(h, s->hdrs, s->n_hdrs * sizeof *h);
    s->hdrs = h;
    s->hdrs_cap = cap;
  }
  /* Optional whitespace around a value is not part of it (RFC 9110 5.5). */
  while (vlen && (*value == ' ' || *value == '\t'))
    value++, vlen--;
  while (vlen && (value[vlen - 1] == ' ' || value[vlen - 1] == '\t'))
    vlen--;
  char *n = gw_arena_alloc(s->arena, nlen + vlen + 2); /* name, NUL, value, NUL */
  if (!n)
    return GW_ERR_NOMEM;
  lower_ascii(n, name, nlen);
  n[nlen] = '\0';
  char *v = n + nlen + 1;
  memcpy(v, value, vlen);
  v[vlen] = '\0';
  int k = known_header(n, nlen);
  if (k >= 0 && !s->req.known[k])
    s->req.known[k] = v;
  s->hdrs[s->n_hdrs].name = n;
  s->hdrs[s->n_hdrs].value = v;
  s->n_hdrs++;
  return GW_OK;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c = tolower(c);
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/* Percent-decodes |p|/|n| ('+' is a space) into a new arena string. */
static char *decode(gw_arena *a, const char *p, size_t n) {
  char *out = gw_arena_alloc(a, n + 1), *o = out;
  if (!out)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '+') {
      *o++ = ' ';
    } else if (p[i] == '%' && i + 2 < n && hexval((unsigned char)p[i + 1]) >= 0 &&
               hexval((unsigned char)p[i + 2]) >= 0) {
      *o++ = (char)(hexval((unsigned char)p[i + 1]) * 16 + hexval((unsigned char)p[i + 2]));
      i += 2;
    } else {
      *o++ = p[i];
    }
  }
  *o = '\0';
  return out;
}

/* Splits |query| on '&' into decoded name/value pairs. */
static int split_query(gw_http_stream *s, const char *q, size_t n) {
  size_t count = 0;
  for (size_t i = 0; i < n; i++)
    count += q[i] == '&';
  count++;
  if (count > s->srv->opts.max_headers) {
    gw_http_stream_set_error(s, 400, "bad_request", "Too many query parameters.");
    return GW_ERR_TOOBIG;
  }
  gw_http_param *params = gw_arena_alloc(s->arena, count * sizeof *params);
  if (!params)
    return GW_ERR_NOMEM;
  size_t k = 0, start = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i < n && q[i] != '&')
      continue;
    if (i > start) {
      const char *eq = memchr(q + start, '=', i - start);
      size_t nl = eq ? (size_t)(eq - (q + start)) : i - start;
      params[k].name = decode(s->arena, q + start, nl);
      params[k].value = eq ? decode(s->arena, eq + 1, i - start - nl - 1) : "";
      if (!params[k].name || !params[k].value)
        return GW_ERR_NOMEM;
      k++;
    }
    start = i + 1;
  }
  s->req.params = params;
  s->req.n_params = k;
  return GW_OK;
}

int gw_http_stream_set_target(gw_http_stream *s, const char *method, const char *target,
                              size_t len) {
  s->req.method = gw_arena_strdup(s->arena, method);
  if (!s->req.method)
    return GW_ERR_NOMEM;
  s->is_head = strcmp(method, "HEAD") == 0;
  const char *end = memchr(target, '#', len);
  if (end)
    len = (size_t)(end - target);
  const char *q = memchr(target, '?', len);
  size_t plen = q ? (size_t)(q - target) : len;
  s->req.path = gw_arena_strndup(s->arena, target, plen);
  if (!s->req.path)
    return GW_ERR_NOMEM;
  if (q) {
    s->req.query = gw_arena_strndup(s->arena, q + 1, len - plen - 1);
    if (!s->req.query)
      return GW_ERR_NOMEM;
    return split_query(s, q + 1, len - plen - 1);
  }
  return GW_OK;
}

/* 1 when |id| is a request id we may echo: 1..128 of [A-Za-z0-9._-]. */
static int sane_request_id(const char *id) {
  size_t n = 0;
  for (; id[n]; n++) {
    unsigned char c = (unsigned char)id[n];
    if (n >= 128 || !(isalnum(c) || c == '.' || c == '_' || c == '-'))
      return 0;
  }
  return n > 0;
}

int gw_http_stream_head_done(gw_http_stream *s) {
  const gw_http_options *o = &s->srv->opts;
  gw_http_request *r = &s->req;
  r->headers = s->hdrs;
  r->n_headers = s->n_hdrs;
  if (s->err_status)
    return s->err_status;
  const char *rid = r->known[GW_HDR_X_REQUEST_ID];
  if (rid && sane_request_id(rid)) {
    r->request_id = rid;
  } else {
    /* "%016llx%08llx" of prefix and counter, without printf (~3K
     * instructions a request). */
    char *id = gw_arena_alloc(s->arena, 25);
    if (id) {
      memcpy(id, s->srv->rid_prefix_hex, 16); /* the prefix's hex, made once */
      gw_numtext_hex((uint32_t)++s->srv->rid_counter, 8, id + 16);
    }
    r->request_id = id;
    if (!r->request_id) {
      gw_http_stream_set_error(s, 500, "internal_error", "Out of memory.");
      return s->err_status;
    }
  }
  if (!*r->authority) {
    const char *host = r->known[GW_HDR_HOST];
    r->authority = host ? host : "";
  }
  s->accept_gzip = o->gzip && gw_http_accepts_gzip(r->known[GW_HDR_ACCEPT_ENCODING]);
  const char *cl = r->known[GW_HDR_CONTENT_LENGTH];
  if (cl) {
    /* digits only (strtoull would take a sign and blanks), saturating:
     * anything from 2^63 up is over every limit alike */
    unsigned long long v = 0;
    const char *end = cl;
    for (; *end >= '0' && *end <= '9'; end++)
      v = v < ULLONG_MAX / 10 ? v * 10 + (unsigned)(*end - '0') : ULLONG_MAX;
    if (end == cl || *end) {
      gw_http_stream_set_error(s, 400, "bad_request", "Invalid Content-Length.");
      return s->err_status;
    }
    s->content_length = v > INT64_MAX ? INT64_MAX : (int64_t)v;
    if ((unsigned long long)s->content_length > o->max_body_bytes) {
      gw_http_stream_set_error(s, 413, "request_too_large",
                               "Request body is larger than the server accepts.");
      return s->err_status;
    }
    /* A body of known, moderate size is read into the stream's arena in one
     * piece: no malloc, no growth. Larger ones grow on the heap. */
    if (s->content_length > 0 && s->content_length <= STREAM_ARENA_BODY_MAX && !s->body.data) {
      s->body.arena = s->arena;
      if (gw_buf_reserve(&s->body, (size_t)s->content_length) != GW_OK) {
        gw_http_stream_set_error(s, 500, "internal_error", "Out of memory.");
        return s->err_status;
      }
    }
  }
  const char *expect = r->known[GW_HDR_EXPECT];
  if (expect) {
    if (strcasecmp(expect, "100-continue") != 0) {
      gw_http_stream_set_error(s, 417, "expectation_failed", "Unsupported Expect value.");
      return s->err_status;
    }
    s->expect_continue = 1;
  }
  s->state = ST_BODY;
  return 0;
}

int gw_http_stream_body(gw_http_stream *s, const void *p, size_t n) {
  if (s->err_status)
    return GW_ERR_STATE;
  int rc = gw_buf_append(&s->body, p, n);
  if (rc == GW_ERR_TOOBIG)
    gw_http_stream_set_error(s, 413, "request_too_large",
                             "Request body is larger than the server accepts.");
  else if (rc != GW_OK)
    gw_http_stream_set_error(s, 500, "internal_error", "Out of memory.");
  return rc;
}

static const char *cors_match(gw_http_stream *s) {
  const gw_http_options *o = &s->srv->opts;
  const char *origin = s->req.known[GW_HDR_ORIGIN];
  if (!origin || !o->n_cors_origins)
    return NULL;
  for (size_t i = 0; i < o->n_cors_origins; i++)
    if (strcmp(o->cors_origins[i], "*") == 0 || strcasecmp(o->cors_origins[i], origin) == 0)
      return origin;
  return NULL;
}

static int respond_internal(gw_http_stream *s, int status, const gw_http_header *h, size_t n,
                            const void *body, size_t len);

/* Answers a CORS preflight with 204 and the Access-Control-* headers (none
 * when the Origin is not allowed: the browser then refuses). */
static void answer_preflight(gw_http_stream *s) {
  const gw_http_options *o = &s->srv->opts;
  gw_http_header h[4];
  size_t n = 0;
  char age[24];
  if (cors_match(s)) {
    snprintf(age, sizeof age, "%u", o->cors_max_age);
    h[n++] = (gw_http_header){"Access-Control-Allow-Methods",
                              o->cors_allow_methods ? o->cors_allow_methods : "GET, POST, OPTIONS"};
    const char *want = gw_http_request_header(&s->req, "access-control-request-headers");
    h[n++] = (gw_http_header){"Access-Control-Allow-Headers",
                              o->cors_allow_headers ? o->cors_allow_headers : (want ? want : "")};
    h[n++] = (gw_http_header){"Access-Control-Max-Age", age};
  }
  respond_internal(s, 204, h, n, NULL, 0);
}

void gw_http_stream_dispatch(gw_http_stream *s) {
  gw_http_server *srv = s->srv;
  gw_http_request *r = &s->req;
  s->state = ST_READY;
  timer_stop(s);
  if (s->err_status) {
    gw_http_stream_fail(s);
    return;
  }
  const char *ce = r->known[GW_HDR_CONTENT_ENCODING];
  if (ce && s->body.len) {
    if (strcasecmp(ce, "gzip") == 0 || strcasecmp(ce, "x-gzip") == 0) {
      gw_buf plain;
      gw_buf_init(&plain, srv->opts.max_body_bytes);
      int rc = gw_http_gunzip(s->body.data, s->body.len, srv->opts.max_body_bytes, &plain);
      if (rc != GW_OK) {
        gw_buf_release(&plain);
        if (rc == GW_ERR_TOOBIG)
          gw_http_stream_set_error(s, 413, "request_too_large",
                                   "Decompressed request body is larger than the server accepts.");
        else if (rc == GW_ERR_NOMEM)
          gw_http_stream_set_error(s, 500, "internal_error", "Out of memory.");
        else
          gw_http_stream_set_error(s, 400, "invalid_body", "Request body is not valid gzip.");
        gw_http_stream_fail(s);
        return;
      }
      gw_buf_release(&s->body);
      s->body = plain;
    } else if (strcasecmp(ce, "identity") != 0) {
      gw_http_stream_set_error(s, 415, "unsupported_content_encoding",
                               "Unsupported Content-Encoding.");
      gw_http_stream_fail(s);
      return;
    }
  }
  r->body = s->body.data ? (const uint8_t *)s->body.data : (const uint8_t *)"";
  r->body_len = s->body.len;
  if (srv->opts.n_cors_origins && strcmp(r->method, "OPTIONS") == 0 && r->known[GW_HDR_ORIGIN] &&
      r->known[GW_HDR_ACR_METHOD]) {
    answer_preflight(s);
    return;
  }
  s->app_owned = 1;
  srv->handler(s, r, srv->handler_arg);
}

/* --- responding ---------------------------------------------------------- */

const char *gw_http_reason(int status) {
  switch (status) {
  case 100: return "Continue";
  case 101: return "Switching Protocols";
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 204: return "No Content";
  case 206: return "Partial Content";
  case 301: return "Moved Permanently";
  case 302: return "Found";
  case 304: return "Not Modified";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 413: return "Content Too Large";
  case 415: return "Unsupported Media Type";
  case 417: return "Expectation Failed";
  case 422: return "Unprocessable Content";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default: return "Unknown";
  }
}

/* 1 when the header names |a| and |b| are equal, ASCII case folded. The first
 * bytes are compared first (equal but for the 0x20 bit: letters of either
 * case, never a false miss), which spares most calls to strcasecmp. */
static inline int same_name(const char *a, const char *b) {
  return ((a[0] ^ b[0]) & ~0x20) == 0 && strcasecmp(a, b) == 0;
}

static const char *find_header(const gw_http_header *h, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (same_name(h[i].name, name))
      return h[i].value;
  return NULL;
}

/* The handler's headers plus what every response carries. The result lives
 * in the stream's arena. */
static int build_headers(gw_http_stream *s, const gw_http_header *h, size_t n, int gzipped,
                         gw_http_header **out, size_t *out_n) {
  const gw_http_options *o = &s->srv->opts;
  gw_http_header *all = gw_arena_alloc(s->arena, (n + MAX_EXTRA_HEADERS) * sizeof *all);
  size_t k = 0;
  if (!all)
    return GW_ERR_NOMEM;
  for (size_t i = 0; i < n; i++)
    all[k++] = h[i];
  if (s->req.request_id && !find_header(h, n, "x-request-id"))
    all[k++] = (gw_http_header){"X-Request-Id", s->req.request_id};
  if (!s->no_browser_headers) {
    all[k++] = (gw_http_header){"X-Content-Type-Options", "nosniff"};
    all[k++] = (gw_http_header){"X-Frame-Options", "DENY"};
    all[k++] = (gw_http_header){"Referrer-Policy", "no-referrer"};
  }
  if (s->req.tls && o->hsts_max_age) {
    char *v = gw_arena_printf(s->arena, "max-age=%u; includeSubDomains", o->hsts_max_age);
    if (!v)
      return GW_ERR_NOMEM;
    all[k++] = (gw_http_header){"Strict-Transport-Security", v};
  }
  const char *origin = cors_match(s);
  if (origin) {
    all[k++] = (gw_http_header){"Access-Control-Allow-Origin", origin};
    all[k++] = (gw_http_header){"Vary", "Origin"};
  }
  if (gzipped) {
    all[k++] = (gw_http_header){"Content-Encoding", "gzip"};
    all[k++] = (gw_http_header){"Vary", "Accept-Encoding"};
  }
  *out = all;
  *out_n = k;
  return GW_OK;
}

static int codec_head(gw_http_stream *s, int status, const gw_http_header *h, size_t n,
                      int64_t cl) {
  return s->conn->h2 ? gw_h2_submit_head(s, status, h, n, cl)
                     : gw_h1_submit_head(s, status, h, n, cl);
}

static int codec_data(gw_http_stream *s, const void *p, size_t n) {
  return s->conn->h2 ? gw_h2_submit_data(s, p, n) : gw_h1_submit_data(s, p, n);
}

static int codec_end(gw_http_stream *s) {
  return s->conn->h2 ? gw_h2_submit_end(s) : gw_h1_submit_end(s);
}

static int writable(const gw_http_stream *s) { return s->conn && !s->conn->dead && !s->peer_gone; }

/* Sends a whole response; does not touch app ownership. */
static int respond_internal(gw_http_stream *s, int status, const gw_http_header *h, size_t n,
                            const void *body, size_t len) {
  gw_http_header *all;
  size_t n_all;
  gw_buf z;
  int gzipped = 0, rc;

  if (s->resp_started)
    return GW_ERR_STATE;
  s->resp_started = 1;
  s->resp_ended = 1;
  if (!writable(s))
    return GW_ERR_IO;
  gw_buf_init(&z, len + 1024);
  if (s->accept_gzip && len >= s->srv->opts.gzip_min_bytes &&
      !find_header(h, n, "content-encoding") &&
      gw_http_gzip_compressible(find_header(h, n, "content-type"))) {
    if (gw_http_gzip(body, len, &z) == GW_OK && z.len < len) {
      body = z.data;
      len = z.len;
      gzipped = 1;
    }
  }
  rc = build_headers(s, h, n, gzipped, &all, &n_all);
  if (rc != GW_OK)
    goto done;
  int no_body = status == 204 || status == 304 || status < 200;
  rc = codec_head(s, status, all, n_all, no_body ? -1 : (int64_t)len);
  if (rc == GW_OK && len && !no_body)
    rc = codec_data(s, body, len);
  if (rc == GW_OK)
    rc = codec_end(s);
done:
  gw_buf_release(&z);
  return rc;
}

/* The gRPC status for a layer error, for a client that speaks gRPC. */
static const char *grpc_status_of(int http_status) {
  switch (http_status) {
  case 408: return "4"; /* DEADLINE_EXCEEDED: the request came too slowly */
  case 413:
  case 431:
  case 429: return "8";  /* RESOURCE_EXHAUSTED */
  case 415: return "12"; /* UNIMPLEMENTED: a content coding we do not take */
  case 503: return "14"; /* UNAVAILABLE */
  default: return "13";  /* INTERNAL */
  }
}

void gw_http_stream_fail(gw_http_stream *s) {
  gw_buf b;
  const char *type = s->err_status >= 500 ? "server_error" : "invalid_request_error";
  gw_http_header h[] = {{"Content-Type", "application/json"}};
  timer_stop(s);
  if (s->conn && !s->conn->h2)
    s->keepalive = 0; /* the rest of the input cannot be trusted */
  const char *ct = s->req.known[GW_HDR_CONTENT_TYPE];
  if (s->conn && s->conn->h2 && ct && strncasecmp(ct, "application/grpc", 16) == 0) {
    /* A gRPC client reads the status, not the HTTP one: Trailers-Only. The
     * layer's messages are printable ASCII without '%': no encoding. */
    gw_http_header g[] = {{"content-type", "application/grpc"},
                          {"grpc-status", grpc_status_of(s->err_status)},
                          {"grpc-message", s->err_msg}};
    respond_internal(s, 200, g, 3, NULL, 0);
    return;
  }
  gw_buf_init(&b, 4096);
  if (gw_buf_appends(&b, "{\"error\":{\"message\":") == GW_OK &&
      gw_buf_append_json_string(&b, s->err_msg, strlen(s->err_msg)) == GW_OK &&
      gw_buf_printf(&b, ",\"type\":\"%s\",\"param\":null,\"code\":\"%s\"}}", type, s->err_code) ==
          GW_OK)
    respond_internal(s, s->err_status, h, 1, b.data, b.len);
  else
    respond_internal(s, s->err_status, NULL, 0, NULL, 0);
  gw_buf_release(&b);
}

const gw_http_request *gw_http_stream_request(const gw_http_stream *s) { return &s->req; }

const char *gw_http_request_header(const gw_http_request *req, const char *name) {
  return find_header(req->headers, req->n_headers, name);
}

const char *gw_http_request_param(const gw_http_request *req, const char *name) {
  for (size_t i = 0; i < req->n_params; i++)
    if (strcmp(req->params[i].name, name) == 0)
      return req->params[i].value;
  return NULL;
}

void gw_http_stream_set_callbacks(gw_http_stream *s, void (*on_drain)(gw_http_stream *, void *),
                                  void (*on_close)(gw_http_stream *, void *), void *arg) {
  s->on_drain = on_drain;
  s->on_close = on_close;
  s->cb_arg = arg;
}

void gw_http_stream_omit_browser_headers(gw_http_stream *s) { s->no_browser_headers = 1; }

void gw_http_stream_set_body_cb(gw_http_stream *s,
                                void (*on_body)(gw_http_stream *, const uint8_t *, size_t, int,
                                                void *)) {
  s->on_body = on_body;
}

int gw_http_respond(gw_http_stream *s, int status, const gw_http_header *headers, size_t n,
                    const void *body, size_t len) {
  if (s->resp_started)
    return GW_ERR_STATE;
  int rc = respond_internal(s, status, headers, n, body, len);
  app_release(s);
  return rc;
}

int gw_http_respond_error(gw_http_stream *s, int status, const char *type, const char *code,
                          const char *message) {
  gw_buf b;
  int rc;
  gw_http_header h[] = {{"Content-Type", "application/json"}};
  if (!type)
    type = status >= 500 ? "server_error" : "invalid_request_error";
  gw_buf_init(&b, 8192 + (message ? strlen(message) * 6 : 0));
  rc = gw_buf_appends(&b, "{\"error\":{\"message\":");
  if (rc == GW_OK)
    rc = gw_buf_append_json_string(&b, message ? message : "", message ? strlen(message) : 0);
  if (rc == GW_OK)
    rc = gw_buf_appends(&b, ",\"type\":");
  if (rc == GW_OK)
    rc = gw_buf_append_json_string(&b, type, strlen(type));
  if (rc == GW_OK)
    rc = gw_buf_appends(&b, ",\"param\":null,\"code\":");
  if (rc == GW_OK)
    rc = code ? gw_buf_append_json_string(&b, code, strlen(code)) : gw_buf_appends(&b, "null");
  if (rc == GW_OK)
    rc = gw_buf_appends(&b, "}}");
  if (rc == GW_OK)
    rc = gw_http_respond(s, status, h, 1, b.data, b.len);
  else
    gw_http_respond(s, status, NULL, 0, NULL, 0);
  gw_buf_release(&b);
  return rc;
}

int gw_http_start(gw_http_stream *s, int status, const gw_http_header *headers, size_t n) {
  gw_http_header *all;
  size_t n_all;
  if (s->resp_started)
    return GW_ERR_STATE;
  s->resp_started = 1;
  s->resp_streaming = 1;
  if (!writable(s))
    return GW_ERR_IO;
  int rc = build_headers(s, headers, n, 0, &all, &n_all);
  if (rc != GW_OK)
    return rc;
  return codec_head(s, status, all, n_all, -1);
}

int gw_http_write(gw_http_stream *s, const void *data, size_t len) {
  if (!s->resp_streaming || s->resp_ended)
    return GW_ERR_STATE;
  if (!writable(s))
    return GW_ERR_IO;
  if (!len)
    return GW_OK;
  int rc = codec_data(s, data, len);
  if (rc == GW_OK && gw_http_pending(s) >= s->srv->opts.write_low_water)
    s->above_low = 1;
  return rc;
}

int gw_http_end(gw_http_stream *s) {
  int rc = GW_OK;
  if (!s->resp_started) {
    rc = gw_http_respond(s, 200, NULL, 0, NULL, 0);
    return rc;
  }
  if (s->resp_streaming && !s->resp_ended) {
    s->resp_ended = 1;
    rc = writable(s) ? codec_end(s) : GW_ERR_IO;
  }
  app_release(s);
  return rc;
}

int gw_http_end_trailers(gw_http_stream *s, const gw_http_header *trailers, size_t n) {
  if (!s->resp_streaming || s->resp_ended || !writable(s) || !s->conn->h2) {
    int rc = gw_http_end(s);
    return rc != GW_OK ? rc : GW_ERR_STATE;
  }
  s->resp_ended = 1;
  int rc = gw_h2_submit_trailers(s, trailers, n);
  app_release(s);
  return rc;
}

size_t gw_http_pending(const gw_http_stream *s) {
  if (!writable(s))
    return 0;
  return s->conn->h2 ? gw_h2_pending(s) : gw_h1_pending(s);
}

int gw_http_stream_waiting(const gw_http_stream *s) { return s->above_low && writable(s); }

/* Calls on_drain when |s| went above the low-water mark and is now below. */
void gw_http_stream_check_drain(gw_http_stream *s) {
  if (!s->above_low || !s->app_owned || s->resp_ended || !writable(s))
    return;
  if (gw_http_pending(s) < s->srv->opts.write_low_water) {
    s->above_low = 0;
    if (s->on_drain)
      s->on_drain(s, s->cb_arg);
  }
}
