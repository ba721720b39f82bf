/* Internals of the HTTP server layer shared by its files: the server, the
 * connection and the stream structs, and the codec entry points (h1.c, h2.c)
 * that the protocol-neutral stream code (stream.c) drives. Not for use outside
 * transcoder/http/. */
#ifndef GW_TRANSCODER_HTTP_INTERNAL_H
#define GW_TRANSCODER_HTTP_INTERNAL_H

#include <arpa/inet.h>
#include <http_parser.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/lazy_timer.h"
#include "core/later.h"
#include "transcoder/http/server.h"

struct bufferevent;
struct evconnlistener;
struct event;
struct evbuffer;

typedef struct gw_http_conn gw_http_conn;
typedef struct ipcap_entry ipcap_entry;

#define GW_HTTP_IPCAP_BUCKETS 256
#define GW_HTTP_H2_OUT_HIGH (64 * 1024) /* stop asking nghttp2 for frames above */
#define GW_HTTP_LINGER_MS 2000          /* read-and-discard after a closing error */

struct gw_http_server {
  struct event_base *base;
  gw_http_options opts; /* its strings are owned copies */
  const char **cors_origins;
  gw_http_handler handler;
  void *handler_arg;
  struct evconnlistener *listener;
  uint16_t port;
  SSL_CTX *ssl_ctx; /* NULL: cleartext */
  char *cert_file, *key_file;
  int stopping;
  size_t n_conns;
  gw_http_conn *conns; /* live connections */
  gw_http_conn *reap_conns;
  gw_http_stream *reap_streams;
  gw_later_q *later; /* opts.later, or the server's own (own_later) */
  int own_later;
  gw_later reap; /* frees reap_conns and reap_streams */
  ipcap_entry *ipcap[GW_HTTP_IPCAP_BUCKETS];
  uint64_t rid_prefix;     /* random, per server: generated request ids */
  char rid_prefix_hex[17]; /* |rid_prefix| in hex, written once */
  uint64_t rid_counter;
};

typedef enum {
  CONN_DETECT = 0, /* cleartext, waiting to see the h2 preface or not */
  CONN_HANDSHAKE,  /* TLS handshake in progress */
  CONN_H1,
  CONN_H2,
  CONN_LINGER, /* response sent, write side shut, discarding input */
} conn_state;

struct gw_http_conn {
  gw_http_server *srv;
  struct bufferevent *bev;
  int fd;
  int tls;
  conn_state state;
  struct sockaddr_storage peer;
  char peer_ip[INET6_ADDRSTRLEN];
  gw_lazy_timer timer;     /* idle / first-request / linger timeout (conn_timer_cb) */
  gw_later service;        /* deferred work: parse pipelined input, h2 send, close */
  struct event *rev;       /* cleartext: our own read event (see raw_read_cb) */
  int reading;             /* |rev| is armed */
  gw_http_stream *streams; /* streams still attached to this connection */
  size_t n_open;           /* streams the protocol still has open */
  int dead;                /* closed; waits in srv->reap_conns */
  int close_after_flush;   /* close once the output is written */
  int stopping;            /* graceful shutdown seen */
  gw_http_conn *next, *prev;
  gw_http_conn *reap_next;
  /* HTTP/1.1 */
  http_parser parser;
  gw_http_stream *h1_cur; /* the request being read or answered */
  int64_t h1_body_left;   /* body bytes still to come of a fast-path request (h1_head.h) */
  int h1_held;            /* the next request waits for the client to read (h1_output_full) */
  /* HTTP/2 */
  nghttp2_session *h2;
  int goaway;
  unsigned h2_streams;   /* streams the client opened */
  unsigned h2_premature; /* ... and reset itself within PREMATURE_MS */
};

typedef enum {
  ST_HEAD = 0, /* reading the request head */
  ST_BODY,     /* reading the body */
  ST_READY,    /* request complete, handler (or layer) answering */
  ST_DONE,     /* response fully queued */
} stream_state;

struct gw_http_stream {
  gw_http_server *srv;
  gw_http_conn *conn; /* NULL once the connection is gone */
  gw_arena *arena;
  gw_http_request req;
  stream_state state;
  gw_http_header *hdrs;
  size_t n_hdrs, hdrs_cap;
  size_t head_bytes;
  gw_buf body;
  gw_buf hfield, hvalue; /* HTTP/1 header being assembled */
  gw_buf url;            /* HTTP/1 request target being assembled */
  int h1_last_value;     /* the last header callback was a value */
  int32_t h2_id;
  int64_t h2_opened_ms;   /* when its HEADERS came (h2.c, coarse monotonic ms) */
  int64_t content_length; /* -1 when not given */
  int err_status;         /* layer error to answer once the head is in */
  const char *err_code, *err_msg;
  int is_head; /* HEAD request: no body in the response */
  int accept_gzip;
  int keepalive;   /* HTTP/1 */
  int upgrade_h2c; /* HTTP/1 asked to upgrade to h2c */
  int expect_continue;
  int dispatched;                  /* handed to the handler (or answered by the layer) */
  const char *h2_method, *h2_path; /* pseudo-headers until the head is in */
  int app_owned;                   /* the handler holds it */
  int proto_open;                  /* the codec still uses it */
  int reap_queued;
  int peer_gone;
  int resp_started, resp_ended, resp_streaming;
  int h1_chunked;
  int above_low;
  struct evbuffer *out; /* HTTP/2 response body not yet taken by nghttp2 */
  void *h2_trailers;    /* nghttp2_nv[] sent after the body (gw_http_end_trailers) */
  size_t n_h2_trailers;
  struct event *timer; /* header / body timeout */
  void (*on_drain)(gw_http_stream *, void *);
  void (*on_close)(gw_http_stream *, void *);
  void (*on_body)(gw_http_stream *, const uint8_t *, size_t, int, void *);
  int body_streaming;     /* dispatched at its head: the body goes to on_body */
  int no_browser_headers; /* gw_http_stream_omit_browser_headers */
  int body_ended;         /* ... and all of it came */
  void *cb_arg;
  gw_http_stream *next, *prev; /* in conn->streams */
  gw_http_stream *reap_next;
};

/* server.c */
void gw_http_conn_close(gw_http_conn *c);
void gw_http_conn_kick(gw_http_conn *c);
/* The connection's timeout falls |ms| from now (0: none); conn_timer_cb then
 * closes it (an idle h2 one gets a GOAWAY first). Lazy (core/lazy_timer.h). */
void gw_http_conn_arm_timer(gw_http_conn *c, unsigned ms);
void gw_http_conn_close_after_flush(gw_http_conn *c);
void gw_http_reap_stream(gw_http_stream *s);

/* stream.c: the protocol-neutral half of a stream. */
gw_http_stream *gw_http_stream_new(gw_http_conn *c);
void gw_http_stream_free(gw_http_stream *s);
/* Adds a request header (lower-cases |name|); GW_ERR_TOOBIG sets 431. */
int gw_http_stream_add_header(gw_http_stream *s, const char *name, size_t nlen, const char *value,
                              size_t vlen);
/* Sets method and target (path, query, params). */
int gw_http_stream_set_target(gw_http_stream *s, const char *method, const char *target,
                              size_t len);
/* Head complete: checks limits, fills the derived fields. Returns 0 or the
 * error status already recorded in s->err_status. */
int gw_http_stream_head_done(gw_http_stream *s);
/* Body bytes; a body over the cap records 413 and returns GW_ERR_TOOBIG. */
int gw_http_stream_body(gw_http_stream *s, const void *p, size_t n);
/* Request complete: answers preflights and layer errors, else calls the handler. */
void gw_http_stream_dispatch(gw_http_stream *s);
/* Records a layer error to be answered. */
void gw_http_stream_set_error(gw_http_stream *s, int status, const char *code, const char *msg);
/* Answers the recorded layer error (OpenAI error body). */
void gw_http_stream_fail(gw_http_stream *s);
/* The client is gone: tell the handler, release what the codec held. */
void gw_http_stream_peer_gone(gw_http_stream *s);
/* The codec no longer uses |s|; frees it once the handler is done too. */
void gw_http_stream_proto_close(gw_http_stream *s);
void gw_http_stream_check_drain(gw_http_stream *s);
void gw_http_stream_arm_timer(gw_http_stream *s, unsigned ms);
const char *gw_http_reason(int status);
/* A connection-level header (Connection, Keep-Alive, Transfer-Encoding,
 * Content-Length, Upgrade, Proxy-Connection, TE) of |len| bytes, which the
 * codecs write themselves (HTTP/1.1) or must not send (HTTP/2). */
int gw_http_hop_by_hop(const char *name, size_t len);

/* gzip.c */
int gw_http_gzip(const void *in, size_t n, gw_buf *out);
int gw_http_gzip_compressible(const char *content_type);
int gw_http_accepts_gzip(const char *accept_encoding);

/* h1.c */
void gw_h1_start(gw_http_conn *c);
void gw_h1_on_read(gw_http_conn *c);
long gw_h1_take(gw_http_conn *c, const char *p, size_t len);
void gw_h1_stop(gw_http_conn *c);
int gw_h1_submit_head(gw_http_stream *s, int status, const gw_http_header *h, size_t n,
                      int64_t content_length);
int gw_h1_submit_data(gw_http_stream *s, const void *p, size_t n);
int gw_h1_submit_end(gw_http_stream *s);
size_t gw_h1_pending(const gw_http_stream *s);

/* h2.c */
int gw_h2_start(gw_http_conn *c);
void gw_h2_on_read(gw_http_conn *c);
void gw_h2_flush(gw_http_conn *c);
void gw_h2_stop(gw_http_conn *c);
void gw_h2_free(gw_http_conn *c);
int gw_h2_submit_head(gw_http_stream *s, int status, const gw_http_header *h, size_t n,
                      int64_t content_length);
int gw_h2_submit_data(gw_http_stream *s, const void *p, size_t n);
int gw_h2_submit_end(gw_http_stream *s);
int gw_h2_submit_trailers(gw_http_stream *s, const gw_http_header *h, size_t n);
size_t gw_h2_pending(const gw_http_stream *s);

/* tls.c */
int gw_http_tls_ctx_new(const char *cert_file, const char *key_file, SSL_CTX **out);
/* The ALPN protocol the handshake chose: 2 for h2, 1 otherwise. */
int gw_http_tls_alpn_is_h2(struct bufferevent *bev);
/* Reads what SSL holds for |bev| when the socket will not say so (tls.c). */
void gw_http_tls_read_pending(struct bufferevent *bev);

#endif
