/* The HTTP/2 codec: an nghttp2 server session per connection, fed from the
 * bufferevent and flushed into it, with the CVE-2023-44487 (rapid reset) and
 * CVE-2024-28182 (CONTINUATION flood) limits on. Our API never calls
 * nghttp2_session_send itself: it queues and kicks the connection, so it is
 * safe from inside nghttp2 callbacks (where the handler often runs). */
#include <ctype.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/numtext.h"
#include "core/status.h"
#include "transcoder/http/internal.h"

/* Rapid reset (CVE-2023-44487): a connection whose client resets more than
 * half of its streams within PREMATURE_MS of opening them, once it opened
 * PREMATURE_MIN, is closed (GOAWAY ENHANCE_YOUR_CALM), as Envoy does. A
 * client that cancels some of its calls (gRPC cancellations, abandoned
 * streams) is not: a count of RST_STREAMs alone closed connections of a
 * healthy client cancelling ~30 streams a second. nghttp2's own rate limit
 * stays as a backstop for a flood that keeps the ratio under half. */
#define PREMATURE_MS 1000
#define PREMATURE_MIN 100
#define RESET_BURST 1000 /* RST_STREAMs a client may send at once */
#define RESET_RATE 100   /* ... and per second after that */
#define MAX_CONTINUATIONS 8

/* Milliseconds on a coarse monotonic clock (a few ms of resolution; cheap). */
static int64_t coarse_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static gw_http_stream *stream_of(nghttp2_session *sess, int32_t id) {
  return nghttp2_session_get_stream_user_data(sess, id);
}

static ssize_t send_cb(nghttp2_session *sess, const uint8_t *data, size_t len, int flags,
                       void *ud) {
  gw_http_conn *c = ud;
  struct evbuffer *out = bufferevent_get_output(c->bev);
  (void)sess;
  (void)flags;
  if (evbuffer_get_length(out) >= GW_HTTP_H2_OUT_HIGH)
    return NGHTTP2_ERR_WOULDBLOCK;
  if (evbuffer_add(out, data, len) != 0)
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  return (ssize_t)len;
}

static int on_begin_headers(nghttp2_session *sess, const nghttp2_frame *frame, void *ud) {
  gw_http_conn *c = ud;
  if (c->dead || frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0;
  gw_http_stream *s = gw_http_stream_new(c);
  if (!s)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
  s->h2_id = frame->hd.stream_id;
  s->h2_opened_ms = coarse_ms();
  c->h2_streams++;
  s->req.version = GW_HTTP_2;
  s->keepalive = 1;
  nghttp2_session_set_stream_user_data(sess, s->h2_id, s);
  gw_http_conn_arm_timer(c, 0);
  gw_http_stream_arm_timer(s, c->srv->opts.header_timeout_ms);
  return 0;
}

static int on_header(nghttp2_session *sess, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *ud) {
  gw_http_conn *c = ud;
  (void)flags;
  if (c->dead || frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0; /* trailers are ignored */
  gw_http_stream *s = stream_of(sess, frame->hd.stream_id);
  if (!s || s->err_status)
    return 0;
  if (namelen && name[0] == ':') {
    s->head_bytes += namelen + valuelen;
    if (s->head_bytes > c->srv->opts.max_header_bytes) {
      gw_http_stream_set_error(s, 431, "request_header_fields_too_large",
                               "Request headers are too large.");
      return 0;
    }
    char *v = gw_arena_strndup(s->arena, (const char *)value, valuelen);
    if (!v) {
      gw_http_stream_set_error(s, 500, "internal_error", "Out of memory.");
      return 0;
    }
    if (namelen == 7 && memcmp(name, ":method", 7) == 0)
      s->h2_method = v;
    else if (namelen == 5 && memcmp(name, ":path", 5) == 0)
      s->h2_path = v;
    else if (namelen == 10 && memcmp(name, ":authority", 10) == 0)
      s->req.authority = v;
    return 0;
  }
  if (gw_http_stream_add_header(s, (const char *)name, namelen, (const char *)value, valuelen) ==
      GW_ERR_NOMEM)
    gw_http_stream_set_error(s, 500, "internal_error", "Out of memory.");
  return 0;
}

/* The request head is in: fill the request, or answer its error now. */
static void head_complete(gw_http_conn *c, gw_http_stream *s) {
  if (!s->err_status) {
    if (!s->h2_method || !s->h2_path)
      gw_http_stream_set_error(s, 400, "bad_request", "Missing :method or :path.");
    else if (gw_http_stream_set_target(s, s->h2_method, s->h2_path, strlen(s->h2_path)) != GW_OK &&
             !s->err_status)
      gw_http_stream_set_error(s, 500, "internal_error", "Out of memory.");
  }
  if (gw_http_stream_head_done(s) != 0) {
    s->dispatched = 1;
    gw_http_stream_fail(s);
    return;
  }
  const gw_http_options *o = &c->srv->opts;
  if (o->dispatch_at_head && o->dispatch_at_head(&s->req, c->srv->handler_arg)) {
    s->body_streaming = 1;
    s->dispatched = 1;
    gw_http_stream_dispatch(s); /* stops the header timer */
    return;
  }
  gw_http_stream_arm_timer(s, o->body_timeout_ms);
}

/* A body piece for a stream dispatched at its head (|len| 0 and |end| when
 * the client has sent it all), while its handler still holds it. */
static void body_piece(gw_http_stream *s, const uint8_t *p, size_t len, int end) {
  if (s->body_ended)
    return;
  s->body_ended = end;
  if (s->app_owned && !s->resp_ended && !s->peer_gone && s->on_body)
    s->on_body(s, p, len, end, s->cb_arg);
}

static void request_complete(gw_http_stream *s) {
  if (s->body_streaming) {
    body_piece(s, NULL, 0, 1);
    return;
  }
  if (s->dispatched)
    return;
  s->dispatched = 1;
  gw_http_stream_dispatch(s);
}

static int on_frame_recv(nghttp2_session *sess, const nghttp2_frame *frame, void *ud) {
  gw_http_conn *c = ud;
  if (c->dead)
    return 0;
  gw_http_stream *s = frame->hd.stream_id ? stream_of(sess, frame->hd.stream_id) : NULL;
  if (!s)
    return 0;
  switch (frame->hd.type) {
  case NGHTTP2_HEADERS:
    if (frame->headers.cat == NGHTTP2_HCAT_REQUEST && (frame->hd.flags & NGHTTP2_FLAG_END_HEADERS))
      head_complete(c, s);
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
      request_complete(s);
    break;
  case NGHTTP2_DATA:
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
      request_complete(s);
    break;
  case NGHTTP2_RST_STREAM:
    if (coarse_ms() - s->h2_opened_ms < PREMATURE_MS && ++c->h2_premature * 2 > c->h2_streams &&
        c->h2_streams >= PREMATURE_MIN) {
      GW_LOGW("http", NULL, "%s reset %u of its %u streams at once: closing", c->peer_ip,
              c->h2_premature, c->h2_streams);
      nghttp2_session_terminate_session(sess, NGHTTP2_ENHANCE_YOUR_CALM);
    }
    break;
  default: break;
  }
  return 0;
}

static int on_data_chunk(nghttp2_session *sess, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud) {
  gw_http_conn *c = ud;
  (void)flags;
  if (c->dead)
    return 0;
  gw_http_stream *s = stream_of(sess, id);
  if (s && s->body_streaming) {
    body_piece(s, data, len, 0);
    return 0;
  }
  if (!s || s->dispatched)
    return 0;
  if (gw_http_stream_body(s, data, len) != GW_OK && !s->dispatched) {
    /* Over the cap: answer now rather than read the rest. */
    s->dispatched = 1;
    gw_http_stream_fail(s);
  }
  return 0;
}

/* An early answer (error before the request was whole) resets the stream
 * once its last frame is out, so the client stops sending the body. */
static int on_frame_send(nghttp2_session *sess, const nghttp2_frame *frame, void *ud) {
  gw_http_conn *c = ud;
  if (c->dead || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
      (frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS))
    return 0;
  gw_http_stream *s = stream_of(sess, frame->hd.stream_id);
  if (s && s->err_status && s->state < ST_READY)
    nghttp2_submit_rst_stream(sess, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
  return 0;
}

static int on_stream_close(nghttp2_session *sess, int32_t id, uint32_t error_code, void *ud) {
  gw_http_conn *c = ud;
  if (c->dead)
    return 0;
  gw_http_stream *s = stream_of(sess, id);
  if (!s)
    return 0;
  nghttp2_session_set_stream_user_data(sess, id, NULL);
  if (s->resp_ended && s->state == ST_DONE && error_code == NGHTTP2_NO_ERROR)
    gw_http_stream_proto_close(s);
  else
    gw_http_stream_peer_gone(s);
  if (c->n_open == 0 && !c->dead) {
    if (c->goaway)
      gw_http_conn_close_after_flush(c);
    else
      gw_http_conn_arm_timer(c, c->srv->opts.keepalive_timeout_ms);
  }
  return 0;
}

static ssize_t data_read(nghttp2_session *sess, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *ud) {
  gw_http_stream *s = source->ptr;
  (void)sess;
  (void)id;
  (void)ud;
  size_t avail = evbuffer_get_length(s->out);
  size_t n = avail < length ? avail : length;
  if (n)
    evbuffer_remove(s->out, buf, n);
  if (n == avail && s->resp_ended) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    s->state = ST_DONE;
    /* Trailers end the stream instead of this last DATA frame (nghttp2
     * allows submitting them from here). */
    if (s->h2_trailers && nghttp2_submit_trailer(sess, id, s->h2_trailers, s->n_h2_trailers) == 0)
      *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
  } else if (n == 0) {
    return NGHTTP2_ERR_DEFERRED;
  }
  return (ssize_t)n;
}

/* nghttp2 allocates through gw_malloc too. */
static void *mem_malloc(size_t n, void *ud) {
  (void)ud;
  return gw_malloc(n);
}
static void mem_free(void *p, void *ud) {
  (void)ud;
  gw_free(p);
}
static void *mem_calloc(size_t n, size_t size, void *ud) {
  (void)ud;
  return gw_calloc(n, size);
}
static void *mem_realloc(void *p, size_t n, void *ud) {
  (void)ud;
  return gw_realloc(p, n);
}

int gw_h2_start(gw_http_conn *c) {
  const gw_http_options *o = &c->srv->opts;
  nghttp2_session_callbacks *cbs = NULL;
  nghttp2_option *opt = NULL;
  nghttp2_mem mem = {NULL, mem_malloc, mem_free, mem_calloc, mem_realloc};
  int rc = GW_ERR_NOMEM;

  if (nghttp2_session_callbacks_new(&cbs) != 0)
    goto fail_cbs;
  if (nghttp2_option_new(&opt) != 0)
    goto fail_opt;
  nghttp2_session_callbacks_set_send_callback(cbs, send_cb);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
  nghttp2_option_set_stream_reset_rate_limit(opt, RESET_BURST, RESET_RATE);
  nghttp2_option_set_max_continuations(opt, MAX_CONTINUATIONS);
  if (nghttp2_session_server_new3(&c->h2, cbs, c, opt, &mem) != 0)
    goto fail_session;
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, o->h2_max_concurrent_streams},
      /* Twice our limit: a client a little over it still sends, and gets a
       * 431 it can read, rather than refusing the request itself. */
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)(o->max_header_bytes * 2 + 8192)},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1024 * 1024},
  };
  if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) != 0) {
    nghttp2_session_del(c->h2);
    c->h2 = NULL;
    goto fail_session;
  }
  rc = GW_OK;
fail_session:
  nghttp2_option_del(opt);
fail_opt:
  nghttp2_session_callbacks_del(cbs);
fail_cbs:
  if (rc == GW_OK) {
    /* Streams time themselves; the connection times out only when idle. */
    gw_http_conn_arm_timer(c, c->n_open ? 0 : o->keepalive_timeout_ms);
    bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
  }
  return rc;
}

void gw_h2_on_read(gw_http_conn *c) {
  struct evbuffer *in = bufferevent_get_input(c->bev);
  while (!c->dead && evbuffer_get_length(in)) {
    struct evbuffer_iovec v;
    if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
      break;
    ssize_t r = nghttp2_session_mem_recv(c->h2, v.iov_base, v.iov_len);
    if (r < 0) {
      GW_LOGD("http", NULL, "HTTP/2 from %s: %s", c->peer_ip, nghttp2_strerror((int)r));
      /* nghttp2 queued a GOAWAY for protocol errors; send it, then close. */
      evbuffer_drain(in, evbuffer_get_length(in));
      c->goaway = 1;
      nghttp2_session_send(c->h2);
      gw_http_conn_close_after_flush(c);
      return;
    }
    evbuffer_drain(in, (size_t)r);
  }
  gw_h2_flush(c);
}

void gw_h2_flush(gw_http_conn *c) {
  if (c->dead || !c->h2 || c->close_after_flush)
    return;
  if (nghttp2_session_send(c->h2) != 0) {
    gw_http_conn_close(c);
    return;
  }
  if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2))
    gw_http_conn_close_after_flush(c);
  else if (c->goaway && c->n_open == 0 && !nghttp2_session_want_write(c->h2))
    gw_http_conn_close_after_flush(c);
}

/* Graceful shutdown: GOAWAY naming the last stream we took; those finish. */
void gw_h2_stop(gw_http_conn *c) {
  if (!c->h2 || c->goaway)
    return;
  c->goaway = 1;
  nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->h2),
                        NGHTTP2_NO_ERROR, NULL, 0);
  if (c->n_open == 0)
    gw_http_conn_close_after_flush(c);
  else
    gw_http_conn_kick(c);
}

void gw_h2_free(gw_http_conn *c) {
  if (c->h2)
    nghttp2_session_del(c->h2);
  c->h2 = NULL;
}

/* Response headers whose value differs in every response: sent as literals
 * never indexed. Indexed, each one went into the HPACK dynamic table, and as
 * nghttp2 chains the entries of one name together, every response searched
 * a chain of ~60 earlier request ids (two memcmp per entry, 2.5K
 * instructions). */
static int h2_unique_value(const char *name, size_t len) {
  return len == 12 && memcmp(name, "x-request-id", 12) == 0;
}

/* |name| of |len| bytes in lower case: itself when it is already (the
 * gateway's own names are), else a lower-cased copy in |a|. NULL: no memory. */
static const char *h2_lower_name(gw_arena *a, const char *name, size_t len) {
  size_t i = 0;
  while (i < len && !(name[i] >= 'A' && name[i] <= 'Z'))
    i++;
  if (i == len)
    return name;
  char *l = gw_arena_alloc(a, len + 1);
  if (!l)
    return NULL;
  for (size_t j = 0; j < len; j++)
    l[j] = (char)tolower((unsigned char)name[j]);
  l[len] = '\0';
  return l;
}

/* nghttp2_submit_response copies every name and value: |nv| may point at the
 * caller's strings and at this frame's digits. */
int gw_h2_submit_head(gw_http_stream *s, int status, const gw_http_header *h, size_t n,
                      int64_t content_length) {
  gw_http_conn *c = s->conn;
  nghttp2_nv *nv = gw_arena_alloc(s->arena, (n + 2) * sizeof *nv);
  char st[GW_NUMTEXT_MAX], cl[GW_NUMTEXT_MAX];
  size_t k = 0;
  if (!nv)
    return GW_ERR_NOMEM;
  nv[k++] =
      (nghttp2_nv){(uint8_t *)":status", (uint8_t *)st, 7,
                   gw_numtext_u64(status > 0 ? (uint64_t)status : 0, st), NGHTTP2_NV_FLAG_NONE};
  for (size_t i = 0; i < n; i++) {
    size_t nlen = strlen(h[i].name);
    if (gw_http_hop_by_hop(h[i].name, nlen))
      continue;
    const char *lname = h2_lower_name(s->arena, h[i].name, nlen);
    if (!lname)
      return GW_ERR_NOMEM;
    nv[k++] = (nghttp2_nv){(uint8_t *)lname, (uint8_t *)h[i].value, nlen, strlen(h[i].value),
                           h2_unique_value(lname, nlen) ? NGHTTP2_NV_FLAG_NO_INDEX
                                                        : NGHTTP2_NV_FLAG_NONE};
  }
  if (content_length >= 0 && status >= 200 && status != 204 && status != 304)
    nv[k++] = (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)cl, 14,
                           gw_numtext_u64((uint64_t)content_length, cl), NGHTTP2_NV_FLAG_NONE};
  int has_body = !s->is_head && (s->resp_streaming || content_length > 0);
  nghttp2_data_provider dp;
  dp.source.ptr = s;
  dp.read_callback = data_read;
  if (has_body && !s->out && !(s->out = evbuffer_new()))
    return GW_ERR_NOMEM;
  if (!has_body)
    s->state = ST_DONE;
  int rv = nghttp2_submit_response(c->h2, s->h2_id, nv, k, has_body ? &dp : NULL);
  if (rv != 0) {
    GW_LOGD("http", s->req.request_id, "nghttp2_submit_response: %s", nghttp2_strerror(rv));
    return rv == NGHTTP2_ERR_NOMEM ? GW_ERR_NOMEM : GW_ERR_IO;
  }
  gw_http_conn_kick(c);
  return GW_OK;
}

int gw_h2_submit_data(gw_http_stream *s, const void *p, size_t n) {
  if (s->is_head || !s->out)
    return GW_OK;
  if (evbuffer_add(s->out, p, n) != 0)
    return GW_ERR_NOMEM;
  nghttp2_session_resume_data(s->conn->h2, s->h2_id);
  gw_http_conn_kick(s->conn);
  return GW_OK;
}

int gw_h2_submit_end(gw_http_stream *s) {
  if (s->out)
    nghttp2_session_resume_data(s->conn->h2, s->h2_id);
  gw_http_conn_kick(s->conn);
  return GW_OK;
}

/* The trailing HEADERS frame of a streamed response: kept in the stream's
 * arena until data_read gives out the last of the body and submits it. */
int gw_h2_submit_trailers(gw_http_stream *s, const gw_http_header *h, size_t n) {
  nghttp2_nv *nv = gw_arena_alloc(s->arena, (n ? n : 1) * sizeof *nv);
  size_t k = 0;
  bool ok = nv != NULL;
  for (size_t i = 0; ok && i < n; i++) {
    size_t nlen = strlen(h[i].name);
    if (gw_http_hop_by_hop(h[i].name, nlen))
      continue;
    /* Both copied: they are sent after the caller returned. */
    size_t vlen = strlen(h[i].value);
    char *lname = gw_arena_strndup(s->arena, h[i].name, nlen);
    char *value = gw_arena_strndup(s->arena, h[i].value, vlen);
    ok = lname && value;
    if (!ok)
      break;
    for (size_t j = 0; j < nlen; j++)
      lname[j] = (char)tolower((unsigned char)lname[j]);
    nv[k++] = (nghttp2_nv){(uint8_t *)lname, (uint8_t *)value, nlen, vlen, NGHTTP2_NV_FLAG_NONE};
  }
  /* Out of memory: the body still ends (without them). */
  s->h2_trailers = ok ? nv : NULL;
  s->n_h2_trailers = ok ? k : 0;
  gw_h2_submit_end(s);
  return ok ? GW_OK : GW_ERR_NOMEM;
}

size_t gw_h2_pending(const gw_http_stream *s) {
  size_t n = s->out ? evbuffer_get_length(s->out) : 0;
  return n + evbuffer_get_length(bufferevent_get_output(s->conn->bev));
}
