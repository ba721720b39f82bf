/* The HTTP front door's server layer: one listener speaking HTTP/1.1, HTTP/2
 * (h2c prior knowledge, "Upgrade: h2c", TLS with ALPN h2/http/1.1) behind one
 * stream interface. A stream is one request/response exchange; the handler
 * sees the same gw_http_request and answers with the same calls whatever the
 * protocol.
 *
 * Threads: a gw_http_server belongs to one worker thread and its event_base.
 * Every function here must be called on that thread. Run one server per worker
 * on the same port (SO_REUSEPORT); nothing is shared between them, so nothing
 * is locked. The per-IP connection cap therefore counts per worker. */
#ifndef GW_TRANSCODER_HTTP_SERVER_H
#define GW_TRANSCODER_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/later.h"

struct event_base;

typedef struct gw_http_server gw_http_server;
typedef struct gw_http_stream gw_http_stream;

typedef enum {
  GW_HTTP_1_0 = 10,
  GW_HTTP_1_1 = 11,
  GW_HTTP_2 = 20,
} gw_http_version;

/* One header. In a request, |name| is lower-case; both are NUL-terminated. */
typedef struct gw_http_header {
  const char *name;
  const char *value;
} gw_http_header;

/* The request headers the server and the front door read for every request:
 * each is found once, as it is added, instead of by name for every read. */
typedef enum gw_http_known {
  GW_HDR_ACCEPT,
  GW_HDR_ACCEPT_ENCODING,
  GW_HDR_ACR_METHOD, /* access-control-request-method */
  GW_HDR_AUTHORIZATION,
  GW_HDR_CONTENT_ENCODING,
  GW_HDR_CONTENT_LENGTH,
  GW_HDR_CONTENT_TYPE,
  GW_HDR_EXPECT,
  GW_HDR_HOST,
  GW_HDR_ORIGIN,
  GW_HDR_TRACEPARENT,
  GW_HDR_X_REQUEST_ID,
  GW_HDR_KNOWN /* how many */
} gw_http_known;

/* One query parameter, percent-decoded ('+' is a space). */
typedef struct gw_http_param {
  const char *name;
  const char *value;
} gw_http_param;

/* The request as the handler sees it. Everything it points to is valid until
 * the stream ends (the handler's gw_http_end / gw_http_respond, or on_close). */
typedef struct gw_http_request {
  const char *method;          /* "GET", "POST", ... */
  const char *path;            /* the target's path, still percent-encoded */
  const char *query;           /* the raw query after '?', "" when none */
  const gw_http_param *params; /* |query| split and decoded */
  size_t n_params;
  const char *authority;         /* Host or :authority, "" when absent */
  const gw_http_header *headers; /* names lower-case, pseudo-headers excluded */
  size_t n_headers;
  const uint8_t *body; /* the whole body, gunzipped if it came gzipped; NUL follows it */
  size_t body_len;
  gw_http_version version;
  int tls; /* 1 when the connection is TLS */
  struct sockaddr_storage peer;
  const char *peer_ip;    /* text form of |peer|'s address */
  const char *request_id; /* the client's sane X-Request-Id, or a generated one */
  /* The first value of each known header (gw_http_known), or NULL: what
   * gw_http_request_header would answer for its name. */
  const char *known[GW_HDR_KNOWN];
} gw_http_request;

/* Called once per stream when the head and the whole body are in. The handler
 * answers now or later (on the same thread) with gw_http_respond, or with
 * gw_http_start / gw_http_write / gw_http_end. */
typedef void (*gw_http_handler)(gw_http_stream *s, const gw_http_request *req, void *arg);

typedef struct gw_http_options {
  const char *host; /* bind address; NULL or "" is every address */
  uint16_t port;    /* 0 picks an ephemeral port (see gw_http_server_port) */
  int listen_fd;    /* >= 0: serve this bound, listening socket (taken) instead */

  size_t max_body_bytes;              /* 413 beyond; also caps the gunzipped body. 1 MiB */
  size_t max_header_bytes;            /* request line + headers, 431 beyond. 60 KiB */
  size_t max_headers;                 /* header count, 431 beyond. 100 */
  unsigned header_timeout_ms;         /* head must arrive within; 408. 60000 */
  unsigned body_timeout_ms;           /* body must arrive within; 408. 60000 */
  unsigned keepalive_timeout_ms;      /* idle connection closed after. 75000 */
  uint32_t h2_max_concurrent_streams; /* 128 */
  unsigned max_conns_per_ip;          /* per worker; 0 is no cap. 256 */
  size_t write_low_water;             /* on_drain fires below this many pending bytes. 64 KiB */

  const char *tls_cert_file; /* both set: the listener speaks TLS only */
  const char *tls_key_file;
  unsigned hsts_max_age; /* Strict-Transport-Security under TLS; 0 omits it */

  int gzip;              /* compress responses the client accepts gzip for */
  size_t gzip_min_bytes; /* smallest body compressed. 1024 */

  const char *const *cors_origins; /* allowed Origin values; "*" allows any */
  size_t n_cors_origins;           /* 0: CORS off */
  const char *cors_allow_headers;  /* preflight's Access-Control-Allow-Headers */
  const char *cors_allow_methods;  /* preflight's Access-Control-Allow-Methods */
  unsigned cors_max_age;           /* preflight's Access-Control-Max-Age */

  gw_later_q *later; /* deferred work goes here (a worker's queue); NULL: the server's own */

  /* HTTP/2 only, may be NULL: asked when a request's head is in; nonzero
   * calls the handler at once, with an empty body, and hands the body to the
   * stream's on_body callback (gw_http_stream_set_body_cb) as it arrives,
   * with no cap or timeout (the handler enforces its own): for requests
   * that stream both ways, such as gRPC's bidirectional calls. |arg| is the
   * handler's. */
  int (*dispatch_at_head)(const gw_http_request *req, void *arg);
} gw_http_options;

/* Fills |opts| with the defaults above (port 8080, gzip on, CORS off). */
void gw_http_options_init(gw_http_options *opts);

/* Creates a server on |base| that calls |handler(stream, request, arg)| for
 * every request, and starts accepting. Binds |opts->host|:|opts->port| with
 * SO_REUSEPORT (so every worker can bind the same port) unless
 * |opts->listen_fd| is given. |opts| is copied (its strings too). Returns
 * GW_OK, GW_ERR_NOMEM, GW_ERR_IO (bind/listen failed) or GW_ERR_INVALID (bad
 * TLS files, bad options). */
int gw_http_server_new(struct event_base *base, const gw_http_options *opts,
                       gw_http_handler handler, void *arg, gw_http_server **out);

/* Closes every connection without ceremony and frees the server. Streams whose
 * handler set no on_close and has not ended them are leaked to the handler:
 * call this only after gw_http_server_connections() reached 0 or on exit. */
void gw_http_server_free(gw_http_server *srv);

/* The bound port (useful with port 0). */
uint16_t gw_http_server_port(const gw_http_server *srv);

/* Graceful shutdown: stops accepting, closes idle connections, sends GOAWAY
 * on HTTP/2 and "Connection: close" on HTTP/1.1, and lets in-flight streams
 * finish; each connection closes when its last stream is done. */
void gw_http_server_stop_accepting(gw_http_server *srv);

/* Connections still open (poll it after stop_accepting). */
size_t gw_http_server_connections(const gw_http_server *srv);

/* Loads |cert_file| and |key_file| (NULL: the files given at creation) into a
 * new TLS context used for new connections; existing ones keep theirs.
 * GW_OK, GW_ERR_STATE (not a TLS server) or GW_ERR_INVALID (files bad; the old
 * context stays). */
int gw_http_server_reload_tls(gw_http_server *srv, const char *cert_file, const char *key_file);

/* Hands an accepted, connected socket |fd| to the server as if its listener
 * had accepted it (tests, fuzzing, socket activation). Takes |fd|. */
int gw_http_server_adopt(gw_http_server *srv, int fd, const struct sockaddr *peer,
                         socklen_t peer_len);

/* --- streams ------------------------------------------------------------- */

/* The request of |s| (the one the handler was given). */
const gw_http_request *gw_http_stream_request(const gw_http_stream *s);

/* First value of header |name| (any case), or NULL. For a known header,
 * req->known[GW_HDR_...] is the same answer without the search. */
const char *gw_http_request_header(const gw_http_request *req, const char *name);
/* First value of query parameter |name|, or NULL. */
const char *gw_http_request_param(const gw_http_request *req, const char *name);

/* |on_drain(s, arg)|: pending output fell below the low-water mark after it
 * was at or above it. |on_close(s, arg)|: the client went away (connection
 * closed, RST_STREAM) before the handler ended the stream; cancel upstream
 * work; the stream is gone when it returns, do not touch it again. Without an
 * on_close the stream stays the handler's until gw_http_end, and writes fail
 * with GW_ERR_IO. */
void gw_http_stream_set_callbacks(gw_http_stream *s, void (*on_drain)(gw_http_stream *, void *),
                                  void (*on_close)(gw_http_stream *, void *), void *arg);

/* The answer of |s| is for a program, not a browser (gRPC): it goes out
 * without the browser's security headers (X-Content-Type-Options,
 * X-Frame-Options, Referrer-Policy). */
void gw_http_stream_omit_browser_headers(gw_http_stream *s);

/* For a request dispatched at its head (gw_http_options.dispatch_at_head):
 * |on_body(s, data, len, end, arg)| gets each piece of the body as it comes,
 * then once |end| = 1 (len 0) when the client has sent all of it; |arg| is
 * the one of gw_http_stream_set_callbacks. Not called once the handler ended
 * the stream or the client went away (on_close). */
void gw_http_stream_set_body_cb(gw_http_stream *s,
                                void (*on_body)(gw_http_stream *, const uint8_t *, size_t, int,
                                                void *));

/* The whole response. |headers| must not contain hop-by-hop headers or
 * Content-Length; the layer adds Content-Length, the security headers,
 * X-Request-Id, HSTS and CORS, and gzips |body| when the client accepts it,
 * it is over gzip_min_bytes and its Content-Type is compressible. Ends the
 * stream: do not touch |s| afterwards. GW_OK, GW_ERR_STATE (already started),
 * GW_ERR_IO (client gone; the stream is still ended), GW_ERR_NOMEM. */
int gw_http_respond(gw_http_stream *s, int status, const gw_http_header *headers, size_t n,
                    const void *body, size_t len);

/* A streamed response: the head now, then the body in pieces, each sent at
 * once (chunked on HTTP/1.1, DATA frames on HTTP/2; never gzipped). */
int gw_http_start(gw_http_stream *s, int status, const gw_http_header *headers, size_t n);
int gw_http_write(gw_http_stream *s, const void *data, size_t len);
/* Ends the stream (and a started response). Do not touch |s| afterwards. */
int gw_http_end(gw_http_stream *s);

/* Ends a streamed response (gw_http_start) with trailers: a last HEADERS
 * frame after the body (HTTP/2 only, as gRPC needs). Ends the stream either
 * way: do not touch |s| afterwards. GW_ERR_STATE when the response was not
 * started with gw_http_start, is over, or the connection is HTTP/1.x (the
 * body is then ended without them); GW_ERR_IO when the client is gone. */
int gw_http_end_trailers(gw_http_stream *s, const gw_http_header *trailers, size_t n);

/* Inflates the gzip stream |in|/|n|, appending to |out|: GW_OK, GW_ERR_TOOBIG
 * past |cap| inflated bytes (a bomb stops there), GW_ERR_INVALID for a corrupt
 * or truncated stream, GW_ERR_NOMEM. */
int gw_http_gunzip(const void *in, size_t n, size_t cap, gw_buf *out);

/* Bytes of |s|'s response queued and not yet written to the socket. */
size_t gw_http_pending(const gw_http_stream *s);

/* 1 while a write left |s|'s pending output at the low-water mark or above
 * and the client has not read it down yet: on_drain comes when it has. A
 * handler that makes its answers as it likes (not from an upstream that can
 * be paused) stops making them here, so that memory stays bounded. */
int gw_http_stream_waiting(const gw_http_stream *s);

/* Answers with OpenAI's error object: {"error":{"message":|message|,
 * "type":|type| (NULL: invalid_request_error or server_error by status),
 * "param":null,"code":|code| (NULL: null)}}. Ends the stream. */
int gw_http_respond_error(gw_http_stream *s, int status, const char *type, const char *code,
                          const char *message);

#endif
