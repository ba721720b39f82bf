/* A native HTTP/1.1 client for http:// and https:// upstreams, on a
 * worker's libevent base: a pool of idle keep-alive connections per
 * scheme:host:port, one
 * request per connection at a time, the request written with one writev,
 * the response parsed with http_parser (Content-Length, chunked, close
 * delimited; 1xx skipped) and its body handed over as it arrives, the
 * socket read on each wake-up while reads fill the buffer (a short read
 * ends it: no read that would fail with EAGAIN). https:// is HTTP/1.1 over
 * TLS 1.2 or 1.3 (OpenSSL): the server's certificate is verified against
 * the system's trust store (SSL_CERT_FILE and SSL_CERT_DIR name others, as
 * for OpenSSL itself) and must match the host name or address; SNI is sent
 * for names; a new connection resumes the host's last TLS session. The default for every provider's
 * upstream exchanges (UPSTREAM_CLIENT=curl turns it off); proxies stay on curl.
 *
 * A request is a gw_http_req embedded in its owner. Once started, its |done|
 * runs exactly once: when the response ended (GW_OK, whatever its status),
 * when the exchange failed, when it was cancelled, or when the client is
 * freed. |done| never runs inside gw_http_req_start nor inside |on_header|
 * or |on_body|; after it the client no longer touches |r|, so |done| may
 * free the object around it. */
#ifndef GW_ENGINE_HTTP_CLIENT_H
#define GW_ENGINE_HTTP_CLIENT_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/later.h"

struct gw_worker;
struct hc_conn;
struct hc_host;
struct sockaddr_storage;
typedef struct gw_http_client gw_http_client;

typedef struct gw_http_client_opts {
  int max_idle_per_host;   /* idle keep-alive connections kept per host:port; 0: no cap */
  int idle_timeout_ms;     /* an idle connection is closed after this */
  int connect_timeout_ms;  /* default connect timeout of a request */
  size_t max_header_bytes; /* one response's header block */
  size_t max_request_head; /* the request line and headers we write */
  int dns_refresh_ms;      /* a name's address is looked up again, in the background, after this */
  gw_later_q *later;       /* deferred work goes here (a worker's queue); NULL: the client's own */
} gw_http_client_opts;

/* The defaults: no cap on idle connections per host (as many as were busy at
 * once; each closes after 30 s unused), 10 s connect, 64 KiB heads, names
 * looked up again every 30 s. */
void gw_http_client_opts_init(gw_http_client_opts *o);

typedef struct gw_http_req {
  /* Set by the owner before gw_http_req_start; borrowed until |done|. */
  const char *host; /* name or address, without brackets */
  int port;
  bool tls;                   /* https: TLS, the certificate checked against |host| */
  const char *method, *path;  /* "POST", "/v1/chat/completions" */
  const char *const *headers; /* "Name: value" lines, no CRLF; a Host line replaces
                               * the one made from |host| and |port| */
  size_t n_headers;
  const char *body; /* may be NULL when |body_len| is 0 */
  size_t body_len;
  int64_t timeout_ms;         /* the whole exchange; 0: none */
  int64_t connect_timeout_ms; /* 0: the client's default */
  void *arg;                  /* the owner's, untouched */
  /* A response header (final responses only; 1xx are skipped). Nonzero
   * aborts the exchange (done gets GW_ERR_STATE). May be NULL. */
  int (*on_header)(struct gw_http_req *r, const char *name, size_t name_len, const char *value,
                   size_t value_len);
  /* |n| body bytes (chunked framing removed), in order. The bytes are
   * taken; call gw_http_req_pause() to stop reading. Nonzero aborts. */
  int (*on_body)(struct gw_http_req *r, const char *p, size_t n);
  /* |err|: GW_OK (response complete), GW_ERR_IO (connect, TLS handshake,
   * read, write, timeout or early close: |sys_errno| and |reason| say which;
   * a refused certificate is EPROTO with OpenSSL's words for why),
   * GW_ERR_INVALID (not HTTP), GW_ERR_TOOBIG (headers over the cap),
   * GW_ERR_NOMEM, or GW_ERR_STATE (cancelled, aborted by a callback, the
   * client freed). */
  void (*done)(struct gw_http_req *r, int err);

  /* Results, valid from the first callback on. */
  int status;         /* the final response's status; 0 before */
  int sys_errno;      /* with GW_ERR_IO: ETIMEDOUT, ECONNREFUSED, ... */
  const char *reason; /* static text for logs ("connect", "read", ...) */
  bool reused;        /* served on a pooled connection */
  bool retried;       /* a stale pooled connection failed; sent again */

  /* Owned by the client. */
  gw_http_client *client;
  struct hc_conn *conn;
  struct hc_host *wait_host; /* waiting for its host's name to be looked up */
  struct gw_http_req *next_wait;
  int64_t wait_until;
  struct gw_http_req *next_fail, *next_reap;
  void (*reap)(struct gw_http_req *r);
  int64_t deadline; /* gw_http_now_ms() based; 0: none */
  int fail_err;
  bool started, finished, paused, in_cb, cancel_pending;
} gw_http_req;

/* A client on |base| (borrowed: must outlive the client); |opts| NULL for
 * the defaults. GW_OK or GW_ERR_NOMEM. */
int gw_http_client_new(struct event_base *base, const gw_http_client_opts *opts,
                       gw_http_client **out);
/* Ends every open request (|done| gets GW_ERR_STATE), runs the reaps due,
 * closes every connection and frees the client. On the base's thread, or
 * once it stopped, before the base is freed. NULL is a no-op. */
void gw_http_client_free(gw_http_client *c);

/* Starts |r| (fields above set). GW_OK: |done| will run. GW_ERR_INVALID
 * (missing fields, a header with CR/LF), GW_ERR_NOMEM or GW_ERR_TOOBIG
 * (request head over the cap): |done| will not run. Name resolution and
 * connect failures come through |done|. */
int gw_http_req_start(gw_http_client *c, gw_http_req *r);

/* Stops |r| at once: its connection is closed (never pooled) and |done|
 * runs with GW_ERR_STATE — now when called outside |r|'s callbacks, or as
 * soon as the callback running now returns. No-op once |done| ran or is
 * due. */
void gw_http_req_cancel(gw_http_req *r);

/* Stops reading |r|'s response (bytes already read wait); the deadline
 * still runs. Callable from |on_body|. */
void gw_http_req_pause(gw_http_req *r);
/* Delivers what waits and reads again, from a later loop iteration (never
 * from inside this call). */
void gw_http_req_resume(gw_http_req *r);

/* Runs |fn(r)| on a later loop iteration (or when the client is freed),
 * outside every callback: for dropping the last reference to the object
 * around |r|. |r| must have been started once. */
void gw_http_req_reap_later(gw_http_req *r, void (*fn)(gw_http_req *r));

/* Splits "http[s]://host[:port][/prefix]" into |*tls| (https), |host|
 * (NUL-terminated, at most |host_n| - 1 chars), |*port| (80 or 443 by
 * default) and |*prefix| (points into |url|; "" when none). GW_OK,
 * GW_ERR_UNSUPPORTED (another scheme, credentials, a query) or
 * GW_ERR_INVALID. */
int gw_http_parse_url(const char *url, bool *tls, char *host, size_t host_n, int *port,
                      const char **prefix);

/* Whether a proxy is set for the scheme (http_proxy for http://,
 * https_proxy or HTTPS_PROXY for https://, all_proxy or ALL_PROXY for both:
 * the variables libcurl honours, read once). The native client does not
 * speak to proxies: such an upstream is curl's. */
bool gw_http_proxy_for(bool tls);

/* Why |r| ended with |err| (after |done|), for a message: "TLS: <why>",
 * "<what>: <strerror>" or "<what>". */
void gw_http_req_describe(const gw_http_req *r, int err, char *out, size_t n);

/* How names are looked up: getaddrinfo, on a thread of its own per lookup
 * (the worker's loop never waits for DNS; requests for a name not known yet
 * wait for it, under their connect timeout, and a known name is looked up
 * again in the background every |dns_refresh_ms| and after a failed
 * connect). Tests replace it: 0 or an errno, the first address in |addr|.
 * Numeric addresses are never looked up. */
extern int (*gw_http_resolve_fn)(const char *name, int port, struct sockaddr_storage *addr,
                                 unsigned *addr_len);

/* Connections the client holds: idle in pools and busy. For tests. */
void gw_http_client_counts(const gw_http_client *c, int *idle, int *busy);

/* Monotonic milliseconds. */
int64_t gw_http_now_ms(void);

/* Per-worker clients, in a side table indexed by worker id, created
 * unless the process runs with UPSTREAM_CLIENT=curl. GW_OK, GW_ERR_NOMEM
 * or GW_ERR_INVALID (nothing is left allocated). */
int gw_http_clients_init(struct gw_worker *workers, int n);
/* The client of |w|; NULL when there is none (curl is in use). */
gw_http_client *gw_http_client_of(const struct gw_worker *w);
/* Frees every per-worker client (after the workers stopped, before their
 * bases are freed). No-op when none were made. */
void gw_http_clients_free(void);

#endif
