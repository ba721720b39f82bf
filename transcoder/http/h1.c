/* The HTTP/1.x codec: http_parser drives the request side (one request at a
 * time; pipelined input waits in the socket buffer), and responses are
 * written with Content-Length or chunked encoding. Also the h2c upgrade. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/numtext.h"
#include "core/status.h"
#include "core/h1_head.h"
#include "transcoder/http/internal.h"

#define ADD_LIT(out, lit) evbuffer_add((out), (lit), sizeof(lit) - 1)

static gw_http_stream *cur(http_parser *p) { return ((gw_http_conn *)p->data)->h1_cur; }

static int on_message_begin(http_parser *p) {
  gw_http_conn *c = p->data;
  gw_http_stream *s = gw_http_stream_new(c);
  if (!s)
    return -1;
  s->req.version = GW_HTTP_1_1;
  c->h1_cur = s;
  gw_http_conn_arm_timer(c, 0);
  gw_http_stream_arm_timer(s, c->srv->opts.header_timeout_ms);
  return 0;
}

static int head_too_big(gw_http_stream *s) {
  gw_http_stream_set_error(s, 431, "request_header_fields_too_large",
                           "Request headers are too large.");
  return -1;
}

static int on_url(http_parser *p, const char *at, size_t len) {
  gw_http_stream *s = cur(p);
  if (gw_buf_append(&s->url, at, len) != GW_OK)
    return head_too_big(s);
  return 0;
}

static int commit_header(gw_http_stream *s) {
  int rc = gw_http_stream_add_header(s, s->hfield.data ? s->hfield.data : "", s->hfield.len,
                                     s->hvalue.data ? s->hvalue.data : "", s->hvalue.len);
  gw_buf_reset(&s->hfield);
  gw_buf_reset(&s->hvalue);
  if (rc == GW_ERR_NOMEM)
    gw_http_stream_set_error(s, 500, "internal_error", "Out of memory.");
  return rc == GW_OK ? 0 : -1;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
  gw_http_stream *s = cur(p);
  if (s->h1_last_value && commit_header(s) != 0)
    return -1;
  s->h1_last_value = 0;
  if (s->hfield.len + len + s->head_bytes > s->srv->opts.max_header_bytes ||
      gw_buf_append(&s->hfield, at, len) != GW_OK)
    return head_too_big(s);
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  gw_http_stream *s = cur(p);
  s->h1_last_value = 1;
  if (s->hfield.len + s->hvalue.len + len + s->head_bytes > s->srv->opts.max_header_bytes ||
      gw_buf_append(&s->hvalue, at, len) != GW_OK)
    return head_too_big(s);
  return 0;
}

static int on_headers_complete(http_parser *p) {
  gw_http_conn *c = p->data;
  gw_http_stream *s = cur(p);
  if (s->h1_last_value && commit_header(s) != 0)
    return -1;
  s->h1_last_value = 0;
  s->head_bytes += s->url.len;
  if (s->head_bytes > s->srv->opts.max_header_bytes)
    return head_too_big(s);
  s->req.version = p->http_major == 1 && p->http_minor == 0 ? GW_HTTP_1_0 : GW_HTTP_1_1;
  if (p->http_major != 1) {
    gw_http_stream_set_error(s, 400, "bad_request", "Unsupported HTTP version.");
    return -1;
  }
  s->keepalive = http_should_keep_alive(p);
  if (gw_http_stream_set_target(s, http_method_str((enum http_method)p->method),
                                s->url.data ? s->url.data : "", s->url.len) != GW_OK) {
    gw_http_stream_set_error(s, 500, "internal_error", "Out of memory.");
    return -1;
  }
  if (gw_http_stream_head_done(s) != 0)
    return -1;
  if (p->upgrade && !c->tls && p->method != HTTP_CONNECT) {
    const char *up = gw_http_request_header(&s->req, "upgrade");
    s->upgrade_h2c = up && strcasecmp(up, "h2c") == 0 &&
                     gw_http_request_header(&s->req, "http2-settings") != NULL;
  }
  int has_body = (p->flags & F_CHUNKED) || (s->content_length > 0);
  if (s->expect_continue && has_body && s->req.version == GW_HTTP_1_1)
    ADD_LIT(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n");
  gw_http_stream_arm_timer(s, c->srv->opts.body_timeout_ms);
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
  return gw_http_stream_body(cur(p), at, len) == GW_OK ? 0 : -1;
}

static int on_message_complete(http_parser *p) {
  gw_http_stream *s = cur(p);
  s->state = ST_READY;
  gw_http_stream_arm_timer(s, 0);
  http_parser_pause(p, 1); /* one request at a time */
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void gw_h1_start(gw_http_conn *c) {
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
}

/* Answers a request the parser rejected, then closes. */
static void parse_error(gw_http_conn *c, enum http_errno e) {
  gw_http_stream *s = c->h1_cur;
  if (!s) {
    s = gw_http_stream_new(c);
    if (!s) {
      gw_http_conn_close(c);
      return;
    }
    s->req.version = GW_HTTP_1_1;
    c->h1_cur = s;
  }
  if (e == HPE_HEADER_OVERFLOW)
    gw_http_stream_set_error(s, 431, "request_header_fields_too_large",
                             "Request headers are too large.");
  else
    gw_http_stream_set_error(s, 400, "bad_request", "Malformed HTTP request.");
  GW_LOGD("http", s->req.request_id, "HTTP/1 parse error from %s: %s (answering %d)", c->peer_ip,
          http_errno_name(e), s->err_status);
  s->state = ST_READY;
  s->dispatched = 1;
  gw_http_stream_fail(s);
}

/* A whole, plain request head at the start of |p| read in one pass
 * (h1_head.c), then the steps of the callbacks above. Returns the bytes it
 * used, 0 when http_parser must read this request, -1 when it answered with
 * an error. A body only partly here goes on in gw_h1_on_read. */
static long fast_request(gw_http_conn *c, const char *p, size_t len) {
  gw_h1_head h;
  if (!gw_h1_parse_head(p, len, &h))
    return 0;
  gw_http_stream *s = gw_http_stream_new(c);
  if (!s)
    return 0; /* http_parser's path meets the same failure and answers it */
  s->req.version = GW_HTTP_1_1;
  c->h1_cur = s;
  gw_http_conn_arm_timer(c, 0);
  enum http_errno fail = HPE_OK;
  for (size_t i = 0; i < h.n_fields && fail == HPE_OK; i++) {
    const gw_h1_field *f = &h.fields[i];
    int rc = gw_http_stream_add_header(s, f->name, f->nlen, f->value, f->vlen);
    if (rc == GW_ERR_NOMEM)
      gw_http_stream_set_error(s, 500, "internal_error", "Out of memory.");
    if (rc != GW_OK)
      fail = HPE_CB_header_field;
  }
  if (fail == HPE_OK) {
    fail = HPE_CB_headers_complete;
    s->head_bytes += h.target_len;
    s->keepalive = h.keepalive;
    if (s->head_bytes > s->srv->opts.max_header_bytes)
      head_too_big(s);
    else if (gw_http_stream_set_target(s, h.method, h.target, h.target_len) != GW_OK)
      gw_http_stream_set_error(s, 500, "internal_error", "Out of memory.");
    else if (gw_http_stream_head_done(s) == 0)
      fail = HPE_OK;
  }
  size_t used = h.head_len;
  int64_t cl = h.content_length > 0 ? h.content_length : 0;
  size_t n = len - used < (uint64_t)cl ? len - used : (size_t)cl;
  if (fail == HPE_OK && n && gw_http_stream_body(s, p + used, n) != GW_OK)
    fail = HPE_CB_body;
  if (fail != HPE_OK) {
    parse_error(c, fail);
    return -1;
  }
  if (cl && s->expect_continue)
    ADD_LIT(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n");
  if ((c->h1_body_left = cl - (int64_t)n) > 0)
    gw_http_stream_arm_timer(s, c->srv->opts.body_timeout_ms);
  else
    s->state = ST_READY;
  return (long)(used + n);
}

static int b64url_val(int ch) {
  if (ch >= 'A' && ch <= 'Z')
    return ch - 'A';
  if (ch >= 'a' && ch <= 'z')
    return ch - 'a' + 26;
  if (ch >= '0' && ch <= '9')
    return ch - '0' + 52;
  if (ch == '-' || ch == '+')
    return 62;
  if (ch == '_' || ch == '/')
    return 63;
  return -1;
}

/* Switches |c| to HTTP/2 for the h2c upgrade request |s| (RFC 7540 3.2):
 * 101, then the request becomes stream 1. Returns 0 when the request does not
 * qualify (it is then served over HTTP/1.1). */
static int try_upgrade(gw_http_conn *c, gw_http_stream *s) {
  const char *b64 = gw_http_request_header(&s->req, "http2-settings");
  uint8_t settings[512];
  size_t n = 0;
  unsigned acc = 0, bits = 0;
  for (const char *p = b64; *p && *p != '='; p++) {
    int v = b64url_val((unsigned char)*p);
    if (v < 0 || n >= sizeof settings)
      return 0;
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      settings[n++] = (uint8_t)(acc >> bits);
    }
  }
  ADD_LIT(bufferevent_get_output(c->bev),
          "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n");
  c->state = CONN_H2;
  s->req.version = GW_HTTP_2;
  if (gw_h2_start(c) != GW_OK || nghttp2_session_upgrade2(c->h2, settings, n, s->is_head, s) != 0) {
    gw_http_conn_close(c);
    return 1;
  }
  c->h1_cur = NULL;
  s->h2_id = 1;
  gw_http_stream_dispatch(s);
  gw_h2_on_read(c);
  return 1;
}

/* 1 when the answers already queued for |c| reach the low-water mark: the
 * next request is not started until the client has read them down (after_write
 * resumes it), or a client that pipelines requests and reads nothing would
 * have their answers pile up here without end. Its input then fills and is
 * no longer read: TCP stops the client. */
static int h1_output_full(gw_http_conn *c) {
  if (evbuffer_get_length(bufferevent_get_output(c->bev)) < c->srv->opts.write_low_water)
    return 0;
  c->h1_held = 1;
  return 1;
}

/* A whole request read into |p| while the connection's input was empty and
 * no request was open: parsed where it lies, sparing the copy into the input
 * and the drain out of it. Returns the bytes used (the caller queues the rest),
 * 0 when the request must go through the input, -1 when it was answered with
 * an error (the rest is never read). */
long gw_h1_take(gw_http_conn *c, const char *p, size_t len) {
  if (c->state != CONN_H1 || c->h1_cur || c->h1_body_left || c->close_after_flush || c->dead ||
      h1_output_full(c))
    return 0;
  return fast_request(c, p, len);
}

/* Feeds buffered input to the parser while no request waits for its answer,
 * and hands complete requests to the stream code. */
void gw_h1_on_read(gw_http_conn *c) {
  struct evbuffer *in = bufferevent_get_input(c->bev);
  while (!c->dead && !c->close_after_flush && c->state == CONN_H1) {
    gw_http_stream *s = c->h1_cur;
    if (s && s->state >= ST_READY) {
      if (s->dispatched)
        break; /* answering: pipelined input waits */
      s->dispatched = 1;
      if (s->upgrade_h2c && !s->err_status && try_upgrade(c, s))
        return;
      gw_http_stream_dispatch(s);
      continue;
    }
    struct evbuffer_iovec v;
    if (evbuffer_get_length(in) == 0 || evbuffer_peek(in, -1, NULL, &v, 1) < 1)
      break;
    if (s && c->h1_body_left > 0) { /* the rest of a fast-path request's body */
      size_t n = v.iov_len < (uint64_t)c->h1_body_left ? v.iov_len : (size_t)c->h1_body_left;
      if (gw_http_stream_body(s, v.iov_base, n) != GW_OK) {
        parse_error(c, HPE_CB_body);
        return;
      }
      evbuffer_drain(in, n);
      if ((c->h1_body_left -= (int64_t)n) == 0) {
        s->state = ST_READY;
        gw_http_stream_arm_timer(s, 0);
      }
      continue;
    }
    if (!s && c->h1_body_left > 0) { /* a body cut short by an early answer: never a request */
      gw_http_conn_close(c);
      return;
    }
    if (!s && h1_output_full(c))
      break;
    if (!s) { /* between requests: http_parser is too */
      long used = fast_request(c, v.iov_base, v.iov_len);
      if (used < 0)
        return;
      if (used > 0) {
        evbuffer_drain(in, (size_t)used);
        continue;
      }
    }
    size_t n = http_parser_execute(&c->parser, &settings, v.iov_base, v.iov_len);
    evbuffer_drain(in, n);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e == HPE_PAUSED) {
      http_parser_pause(&c->parser, 0);
      continue;
    }
    if (e != HPE_OK) {
      parse_error(c, e);
      return;
    }
  }
}

/* Graceful shutdown: an idle connection closes now, a busy one after its
 * response (which says Connection: close). */
void gw_h1_stop(gw_http_conn *c) {
  if (!c->h1_cur)
    gw_http_conn_close(c);
}

/* The length of |s|, or SIZE_MAX when it holds a CR or LF (header injection). */
static size_t safe_len(const char *s) {
  size_t n = strcspn(s, "\r\n");
  return s[n] ? SIZE_MAX : n;
}

/* The "name: value\r\n" line of |h| is |*nlen| + |*vlen| + 4 bytes; 0 when
 * the header is not written (hop-by-hop, or unsafe). */
static int head_line(const gw_http_header *h, size_t *nlen, size_t *vlen) {
  *nlen = safe_len(h->name);
  *vlen = safe_len(h->value);
  return *nlen != SIZE_MAX && *vlen != SIZE_MAX && !gw_http_hop_by_hop(h->name, *nlen);
}

/* Writes |v| in decimal at |p|; returns the end. */
static char *put_uint(char *p, uint64_t v) {
  char tmp[20];
  size_t n = 0;
  do
    tmp[n++] = (char)('0' + v % 10);
  while ((v /= 10) != 0);
  while (n)
    *p++ = tmp[--n];
  return p;
}

static char *put(char *p, const char *s, size_t n) {
  memcpy(p, s, n);
  return p + n;
}

#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

/* The response head is built in one piece of the output buffer (no printf:
 * libevent's evbuffer_add_printf was ~2% of the instructions per request). */
int gw_h1_submit_head(gw_http_stream *s, int status, const gw_http_header *h, size_t n,
                      int64_t content_length) {
  gw_http_conn *c = s->conn;
  struct evbuffer *out = bufferevent_get_output(c->bev);
  int v11 = s->req.version != GW_HTTP_1_0;
  int body_allowed = status >= 200 && status != 204 && status != 304;
  const char *reason = gw_http_reason(status);
  size_t reason_len = strlen(reason), nlen, vlen, total;
  struct evbuffer_iovec v;
  char *p;
  if (c->stopping || c->srv->stopping || s->state < ST_READY)
    s->keepalive = 0;
  if (content_length < 0 && body_allowed) {
    if (v11)
      s->h1_chunked = 1;
    else
      s->keepalive = 0; /* HTTP/1.0: the body ends with the connection */
  }
  /* "HTTP/1.1 " status(<= 11 chars) " " reason CRLF */
  total = 9 + 11 + 1 + reason_len + 2;
  /* Each header's line lengths, found once (SIZE_MAX: not written); heads
   * with more headers than this measure the rest again below. */
  size_t lens[2 * 16];
  for (size_t i = 0; i < n; i++) {
    int ok = head_line(&h[i], &nlen, &vlen);
    if (ok)
      total += nlen + vlen + 4;
    if (i < 16) {
      lens[2 * i] = ok ? nlen : SIZE_MAX;
      lens[2 * i + 1] = vlen;
    }
  }
  total += sizeof("Content-Length: \r\n") - 1 + 20;
  total += sizeof("Transfer-Encoding: chunked\r\n") - 1;
  total += sizeof("Connection: keep-alive\r\n\r\n") - 1;
  if (evbuffer_reserve_space(out, (ev_ssize_t)total, &v, 1) < 1 || v.iov_len < total)
    return GW_ERR_NOMEM;
  p = v.iov_base;
  p = v11 ? PUT_LIT(p, "HTTP/1.1 ") : PUT_LIT(p, "HTTP/1.0 ");
  if (status < 0)
    *p++ = '-';
  p = put_uint(p, status < 0 ? 0 - (uint64_t)(int64_t)status : (uint64_t)status);
  *p++ = ' ';
  p = put(p, reason, reason_len);
  p = PUT_LIT(p, "\r\n");
  for (size_t i = 0; i < n; i++) {
    if (i < 16) {
      nlen = lens[2 * i];
      vlen = lens[2 * i + 1];
      if (nlen == SIZE_MAX)
        continue;
    } else if (!head_line(&h[i], &nlen, &vlen)) {
      continue;
    }
    p = put(p, h[i].name, nlen);
    p = PUT_LIT(p, ": ");
    p = put(p, h[i].value, vlen);
    p = PUT_LIT(p, "\r\n");
  }
  if (content_length >= 0 && body_allowed) {
    p = PUT_LIT(p, "Content-Length: ");
    p = put_uint(p, (uint64_t)content_length);
    p = PUT_LIT(p, "\r\n");
  }
  if (s->h1_chunked)
    p = PUT_LIT(p, "Transfer-Encoding: chunked\r\n");
  if (s->keepalive)
    p = PUT_LIT(p, "Connection: keep-alive\r\n\r\n");
  else
    p = PUT_LIT(p, "Connection: close\r\n\r\n");
  v.iov_len = (size_t)(p - (char *)v.iov_base);
  if (evbuffer_commit_space(out, &v, 1) != 0)
    return GW_ERR_NOMEM;
  gw_http_conn_kick(c); /* written at the end of this loop turn */
  return GW_OK;
}

/* A body piece; on chunked responses one "size CRLF data CRLF" chunk, built in
 * one piece of the output buffer. */
int gw_h1_submit_data(gw_http_stream *s, const void *p, size_t n) {
  struct evbuffer *out = bufferevent_get_output(s->conn->bev);
  if (s->is_head || !n)
    return GW_OK;
  if (s->h1_chunked) {
    char size[GW_NUMTEXT_MAX];
    size_t slen = gw_numtext_hex(n, 0, size);
    size[slen++] = '\r';
    size[slen++] = '\n';
    size_t total = slen + n + 2;
    struct evbuffer_iovec v;
    if (evbuffer_reserve_space(out, (ev_ssize_t)total, &v, 1) < 1 || v.iov_len < total)
      return GW_ERR_NOMEM;
    char *w = put(v.iov_base, size, slen);
    w = put(w, p, n);
    w = PUT_LIT(w, "\r\n");
    v.iov_len = total;
    if (evbuffer_commit_space(out, &v, 1) != 0)
      return GW_ERR_NOMEM;
  } else if (evbuffer_add(out, p, n) != 0) {
    return GW_ERR_NOMEM;
  }
  gw_http_conn_kick(s->conn);
  return GW_OK;
}

int gw_h1_submit_end(gw_http_stream *s) {
  gw_http_conn *c = s->conn;
  if (s->h1_chunked && !s->is_head)
    ADD_LIT(bufferevent_get_output(c->bev), "0\r\n\r\n");
  s->state = ST_DONE;
  int keep = s->keepalive && !c->stopping && !c->srv->stopping;
  if (c->h1_cur == s)
    c->h1_cur = NULL;
  gw_http_stream_proto_close(s);
  if (!keep) {
    gw_http_conn_close_after_flush(c);
  } else {
    gw_http_conn_arm_timer(c, c->srv->opts.keepalive_timeout_ms);
    gw_http_conn_kick(c); /* parse what the client pipelined */
  }
  return GW_OK;
}

size_t gw_h1_pending(const gw_http_stream *s) {
  return evbuffer_get_length(bufferevent_get_output(s->conn->bev));
}
