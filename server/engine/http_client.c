/* Native keep-alive HTTP/1.1 client for http:// and https:// upstreams (see
 * http_client.h): connection pool per scheme:host:port, writev'd requests
 * (one TLS record when they fit), http_parser responses, pause/resume,
 * cancel, deadlines. */
#include "engine/http_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/h1_head.h"
#include "core/lazy_timer.h"
#include "core/numtext.h"
#include "core/status.h"
#include "engine/worker.h"

#define READ_BUF 16384
#ifndef READS_PER_WAKE
#define READS_PER_WAKE 16 /* recv calls per readable event at most */
#endif

/* At most this much of a request goes into one SSL_write: one TLS record,
 * so a request that fits is one record and one write. */
#define TLS_CHUNK 16384

/* A connection's states. CONNECTING → (HANDSHAKE, for TLS) → SENDING →
 * RECEIVING → IDLE (pooled) → SENDING ...; any → CLOSED (then reaped). A
 * response may arrive while SENDING (an early error answer): reading runs
 * in both. */
typedef enum { HC_CONNECTING, HC_HANDSHAKE, HC_SENDING, HC_RECEIVING, HC_IDLE, HC_CLOSED } hc_state;

__attribute__((unused)) /* for debuggers and ad-hoc logs */
static const char *
hc_state_to_str(hc_state s) {
  switch (s) {
  case HC_CONNECTING: return "connecting";
  case HC_HANDSHAKE: return "handshake";
  case HC_SENDING: return "sending";
  case HC_RECEIVING: return "receiving";
  case HC_IDLE: return "idle";
  case HC_CLOSED: return "closed";
  }
  return "?";
}

typedef struct hc_host {
  struct hc_host *next;
  char *name;
  int port;
  bool tls;
  bool name_is_ip;      /* no SNI for an address; the certificate must name it */
  SSL_SESSION *session; /* the last TLS session the host gave: resumed by new connections */
  /* Name lookups (names only: an address is filled in at once). */
  bool resolving;      /* a lookup runs (since |resolve_started_ms|) */
  unsigned lookup_gen; /* the number of the newest lookup started */
  int64_t resolve_started_ms;
  int64_t resolved_ms;      /* when |addr| was looked up */
  int64_t lookup_failed_ms; /* when the last lookup failed; 0: it did not */
  gw_http_req *waiters;     /* requests waiting for the lookup, newest first */
  gw_http_req *delivering;  /* a finished lookup's waiters, on their way */
  struct event *wait_ev;    /* ends the waits that run out */
  struct sockaddr_storage addr;
  socklen_t addr_len;   /* 0: not resolved yet */
  struct hc_conn *idle; /* most recently used first */
  int n_idle;
} hc_host;

typedef struct hc_conn {
  gw_http_client *c;
  hc_host *host;
  struct hc_conn *prev, *next; /* the client's live connections */
  struct hc_conn *prev_idle, *next_idle, *next_dead;
  int fd;
  hc_state state;
  SSL *ssl; /* https only */
  /* OpenSSL asked for the other direction: a read that must write first
   * (the write event retries it), a write that must read first. */
  bool read_wants_write, write_wants_read;
  struct event *rev, *wev;
  /* What the events are set to (event_add and event_del cost ~100
   * instructions each even when they change nothing). */
  bool rev_on, wev_on;
  gw_lazy_timer timer; /* connect, deadline and idle timeouts (on_timer) */
  http_parser parser;
  gw_http_req *req;
  gw_buf head; /* the request line and headers being written */
  size_t sent; /* bytes of head + body written */
  gw_buf hdr;  /* the response header being read: name then value */
  size_t name_len, hdr_total;
  int cb_err; /* a parser callback failed with this GW_ERR_* */
  bool in_value, is_final, complete, keep_alive, got_bytes;
  bool fresh; /* no byte of the response parsed yet: the fast path may take it */
  /* The bytes being parsed: the client's shared read buffer during a read,
   * or |left|, what a pause left unparsed (kept per connection only then:
   * 10,000 open streams do not hold 10,000 read buffers). */
  const char *rbuf;
  char *left;
  size_t rpos, rlen;
} hc_conn;

struct gw_http_client {
  struct event_base *base;
  gw_http_client_opts o;
  hc_host *hosts;
  hc_conn *conns; /* live (not CLOSED) */
  hc_conn *dead;  /* CLOSED, freed by the reap event */
  gw_http_req *fails, *reaps;
  gw_later reap;     /* runs run_reaps */
  gw_later_q *later; /* o.later, or the client's own (own_later) */
  bool own_later;
  bool in_start;            /* |done| must wait for the reap event */
  char rbuf[READ_BUF];      /* every connection reads here, one at a time */
  char *wbuf;               /* TLS_CHUNK: a TLS request's head and body joined */
  struct hc_notify *notify; /* lookups report here (made with the first one) */
  struct event *notify_ev;
};

/* ---- proxies ---------------------------------------------------------------------- */

static bool proxy_http, proxy_https;

static bool env_set(const char *name) {
  const char *v = getenv(name);
  return v && *v;
}

/* The proxy variables libcurl honours (lower-case http_proxy only, as
 * curl does). */
static void proxy_check(void) {
  bool all = env_set("all_proxy") || env_set("ALL_PROXY");
  proxy_http = all || env_set("http_proxy");
  proxy_https = all || env_set("https_proxy") || env_set("HTTPS_PROXY");
}

/* ---- TLS ----------------------------------------------------------------------------- */

/* One client context for the process (SSL_CTX is safe to share between
 * threads): the trust store is loaded once, not once per worker. */
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static SSL_CTX *tls_ctx;

/* A session for the connection's host (on the worker's thread, inside an
 * SSL call of that connection): kept, the previous one dropped. */
static int tls_new_session(SSL *ssl, SSL_SESSION *sess) {
  hc_conn *k = SSL_get_app_data(ssl);
  if (!k || !SSL_SESSION_is_resumable(sess))
    return 0; /* (not kept: OpenSSL frees it) */
  SSL_SESSION_free(k->host->session);
  k->host->session = sess;
  return 1;
}

static void tls_init(void) {
  /* OpenSSL's error texts, for |reason| (a no-op when another library
   * loaded them first; without them tls_why falls back to its own words). */
  OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL);
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx)
    return;
  /* The system's trust store, or the bundle in SSL_CERT_FILE / the folder in
   * SSL_CERT_DIR (OpenSSL reads both names itself). */
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_default_verify_paths(ctx) != 1 ||
      SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x08http/1.1", 9) != 0) {
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return;
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  /* A peer that closes without close_notify reads as an end of stream, as
   * on plain TCP: http_parser then says whether the response was whole.
   * No renegotiation (a write never has to wait for a read). Buffers go
   * back to the heap while a connection is quiet: a pooled or a paused
   * streaming connection holds no 34 KiB of them. */
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  /* Each recv takes what the socket has, not one record: an answer's head
   * and body (two records from most servers) come in one read, and
   * SSL_has_pending says when records wait in OpenSSL's buffer. */
  SSL_CTX_set_read_ahead(ctx, 1);
  /* A new connection resumes the host's last session (a TLS 1.3 ticket, or
   * a 1.2 session): no certificate to verify again. A full handshake cost
   * the worker ~580 us; the pool opens many at once under a burst. */
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, tls_new_session);
  tls_ctx = ctx;
}

/* A TLS session on |k|'s socket for |h|. GW_OK or GW_ERR_NOMEM (or
 * GW_ERR_IO when the context could not be made). */
static int tls_attach(hc_conn *k, hc_host *h) {
  pthread_once(&tls_once, tls_init);
  if (!tls_ctx)
    return GW_ERR_IO;
  SSL *ssl = SSL_new(tls_ctx);
  if (!ssl)
    goto nomem;
  /* SSL_set1_host takes a name or an address (the certificate's DNS or IP
   * names must match it). */
  if (SSL_set_fd(ssl, k->fd) != 1 || SSL_set1_host(ssl, h->name) != 1 ||
      (!h->name_is_ip && SSL_set_tlsext_host_name(ssl, h->name) != 1) ||
      (h->session && SSL_SESSION_is_resumable(h->session) &&
       SSL_set_session(ssl, h->session) != 1)) {
    SSL_free(ssl);
    goto nomem;
  }
  SSL_set_app_data(ssl, k);
  SSL_set_connect_state(ssl);
  k->ssl = ssl;
  return GW_OK;
nomem:
  ERR_clear_error();
  return GW_ERR_NOMEM;
}

/* Empties this thread's OpenSSL error queue before a TLS call, as
 * SSL_get_error needs. Usually it is empty already: ERR_clear_error walks
 * all its slots (~400 instructions, 1.7K of a request's 48K over TLS),
 * ERR_peek_error only looks. */
static void tls_clear_errors(void) {
  if (ERR_peek_error())
    ERR_clear_error();
}

/* Why a TLS call failed, for |reason| (static text): the certificate check
 * when that is what failed, else OpenSSL's reason ("wrong version number":
 * the port speaks plain HTTP), else |what|. */
static const char *tls_why(hc_conn *k, const char *what) {
  long v = SSL_get_verify_result(k->ssl);
  const char *why = v != X509_V_OK ? X509_verify_cert_error_string(v)
                                   : ERR_reason_error_string(ERR_peek_last_error());
  ERR_clear_error();
  return why ? why : what;
}

int64_t gw_http_now_ms(void) { return gw_mono_ms(); }

void gw_http_client_opts_init(gw_http_client_opts *o) {
  /* No count cap: the pool holds what the busiest moment needed, and the
   * idle timeout closes the surplus (reuse is last-in first-out, so the
   * connections a quieter load leaves unused are the ones that age out). A
   * fixed cap below the peak closed and reopened a connection per request:
   * at 1,024 client connections a cap of 256 meant 22K connects in 4 s and
   * 30% fewer requests per second. */
  o->max_idle_per_host = 0;
  o->idle_timeout_ms = 30000;
  o->connect_timeout_ms = 10000;
  o->max_header_bytes = 64 << 10;
  o->max_request_head = 64 << 10;
  o->dns_refresh_ms = 30000;
  o->later = NULL;
}

static void reap_soon(gw_http_client *c) { gw_later_add(c->later, &c->reap); }

static void rev_set(hc_conn *k, bool on) {
  if (on != k->rev_on)
    (void)(on ? event_add(k->rev, NULL) : event_del(k->rev));
  k->rev_on = on;
}

static void wev_set(hc_conn *k, bool on) {
  if (on != k->wev_on)
    (void)(on ? event_add(k->wev, NULL) : event_del(k->wev));
  k->wev_on = on;
}

/* The |reason| of a failed write (|err| from send_some). */
static const char *write_why(hc_conn *k, int err) {
  return err == EPROTO && k->ssl ? tls_why(k, "TLS write failed") : "write";
}

/* ---- connections --------------------------------------------------------------- */

static void conn_free(hc_conn *k) {
  SSL_free(k->ssl);
  event_free(k->rev);
  event_free(k->wev);
  event_free(k->timer.ev);
  gw_buf_release(&k->head);
  gw_buf_release(&k->hdr);
  gw_free(k->left);
  gw_free(k);
}

/* Drops what a pause left unparsed. */
static void drop_left(hc_conn *k) {
  gw_free(k->left);
  k->left = NULL;
  k->rbuf = NULL;
  k->rpos = k->rlen = 0;
}

static void idle_unlink(hc_conn *k) {
  hc_host *h = k->host;
  if (k->prev_idle)
    k->prev_idle->next_idle = k->next_idle;
  else
    h->idle = k->next_idle;
  if (k->next_idle)
    k->next_idle->prev_idle = k->prev_idle;
  k->prev_idle = k->next_idle = NULL;
  h->n_idle--;
}

/* Closes |k| now (its socket and events); the struct is freed by the reap
 * event, never under a callback of its own. */
static void conn_close(hc_conn *k) {
  if (k->state == HC_CLOSED)
    return;
  /* A TLS connection that ends between exchanges says so (close_notify):
   * OpenSSL keeps its session resumable only then. One cut short (an
   * error, a cancel) leaves the session to be refused. */
  if (k->ssl && (k->state == HC_IDLE || (k->complete && !k->req))) {
    SSL_shutdown(k->ssl);
    ERR_clear_error();
  }
  if (k->state == HC_IDLE)
    idle_unlink(k);
  rev_set(k, false);
  wev_set(k, false);
  gw_lazy_timer_stop(&k->timer);
  close(k->fd);
  k->fd = -1;
  k->state = HC_CLOSED;
  gw_http_client *c = k->c;
  if (k->prev)
    k->prev->next = k->next;
  else
    c->conns = k->next;
  if (k->next)
    k->next->prev = k->prev;
  reap_soon(c);
  k->next_dead = c->dead;
  c->dead = k;
}

static void on_read(evutil_socket_t fd, short what, void *arg);
static void io_error(hc_conn *k, int err, const char *reason);
static void on_write(evutil_socket_t fd, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);
static bool tls_quiet(hc_conn *k);

/* A new connection to |h|, its connect started. GW_OK (|*out|, CONNECTING or
 * already SENDING or HANDSHAKE), GW_ERR_NOMEM, or GW_ERR_IO with |*err|
 * (socket, TLS context or an immediate connect failure). */
static int conn_open(gw_http_client *c, hc_host *h, hc_conn **out, int *err) {
  hc_conn *k = gw_calloc(1, sizeof(*k));
  if (!k)
    return GW_ERR_NOMEM;
  k->c = c;
  k->host = h;
  gw_buf_init(&k->head, c->o.max_request_head);
  gw_buf_init(&k->hdr, c->o.max_header_bytes);
  k->fd = socket(h->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (k->fd < 0) {
    *err = errno;
    gw_free(k);
    return GW_ERR_IO;
  }
  int one = 1;
  setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(k->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  k->rev = event_new(c->base, k->fd, EV_READ | EV_PERSIST, on_read, k);
  k->wev = event_new(c->base, k->fd, EV_WRITE | EV_PERSIST, on_write, k);
  k->timer.ev = evtimer_new(c->base, on_timer, k);
  if (!k->rev || !k->wev || !k->timer.ev) {
    close(k->fd);
    if (k->rev)
      event_free(k->rev);
    if (k->wev)
      event_free(k->wev);
    if (k->timer.ev)
      event_free(k->timer.ev);
    gw_free(k);
    return GW_ERR_NOMEM;
  }
  int rc = GW_OK;
  if (h->tls && !c->wbuf && !(c->wbuf = gw_malloc(TLS_CHUNK)))
    rc = GW_ERR_NOMEM;
  if (rc == GW_OK && h->tls)
    rc = tls_attach(k, h);
  if (rc != GW_OK) {
    close(k->fd);
    event_free(k->rev);
    event_free(k->wev);
    event_free(k->timer.ev);
    gw_free(k);
    *err = EPROTO;
    return rc;
  }
  k->next = c->conns;
  if (c->conns)
    c->conns->prev = k;
  c->conns = k;
  if (connect(k->fd, (struct sockaddr *)&h->addr, h->addr_len) == 0) {
    /* (a TLS handshake starts from the write event: see attach) */
    k->state = k->ssl ? HC_HANDSHAKE : HC_SENDING;
  } else if (errno == EINPROGRESS) {
    k->state = HC_CONNECTING;
    wev_set(k, true);
  } else {
    *err = errno;
    k->state = HC_CONNECTING;
    conn_close(k);
    return GW_ERR_IO;
  }
  *out = k;
  return GW_OK;
}

/* Parks |k| in its host's pool, or closes it when the pool is full. */
static void conn_to_idle(hc_conn *k) {
  hc_host *h = k->host;
  int cap = k->c->o.max_idle_per_host;
  if ((cap > 0 && h->n_idle >= cap) || k->c->o.idle_timeout_ms <= 0) {
    conn_close(k);
    return;
  }
  k->state = HC_IDLE;
  k->prev_idle = NULL;
  k->next_idle = h->idle;
  if (h->idle)
    h->idle->prev_idle = k;
  h->idle = k;
  h->n_idle++;
  wev_set(k, false);
  /* Readable while idle: the upstream closed it (or talks out of turn);
   * the timer is the idle timeout now. */
  rev_set(k, true);
  gw_lazy_timer_set(&k->timer, k->c->o.idle_timeout_ms);
}

/* ---- hosts ------------------------------------------------------------------------- */

static hc_host *host_get(gw_http_client *c, const char *name, int port, bool tls) {
  for (hc_host *h = c->hosts; h; h = h->next)
    if (h->port == port && h->tls == tls && strcmp(h->name, name) == 0)
      return h;
  hc_host *h = gw_calloc(1, sizeof(*h));
  if (!h)
    return NULL;
  h->name = gw_strdup(name);
  if (!h->name) {
    gw_free(h);
    return NULL;
  }
  h->port = port;
  h->tls = tls;
  unsigned char a[sizeof(struct in6_addr)];
  h->name_is_ip = inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1;
  h->next = c->hosts;
  c->hosts = h;
  return h;
}

/* getaddrinfo's first TCP address for |name| (|numeric|: an address, no
 * lookup). 0 or an errno. */
static int lookup(const char *name, int port, bool numeric, struct sockaddr_storage *addr,
                  socklen_t *addr_len) {
  struct addrinfo hints = {0}, *res = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (numeric ? AI_NUMERICHOST : 0);
  char p[8];
  snprintf(p, sizeof p, "%d", port);
  if (getaddrinfo(name, p, &hints, &res) != 0 || !res)
    return EHOSTUNREACH;
  memcpy(addr, res->ai_addr, res->ai_addrlen);
  *addr_len = (socklen_t)res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

static int default_resolve(const char *name, int port, struct sockaddr_storage *addr,
                           unsigned *addr_len) {
  socklen_t n = 0;
  int rc = lookup(name, port, false, addr, &n);
  *addr_len = (unsigned)n;
  return rc;
}

int (*gw_http_resolve_fn)(const char *name, int port, struct sockaddr_storage *addr,
                          unsigned *addr_len) = default_resolve;

/* ---- name lookups, off the loop ------------------------------------------------------
 *
 * getaddrinfo blocks (a slow or dead DNS server: seconds), so a name is
 * looked up on a short-lived thread of its own, which hands the result
 * back through a pipe the client's loop reads. The pipe's owner, |hc_notify|,
 * outlives the client while lookups run: a lookup that ends after the
 * client is gone frees its own result. */

/* A lookup with no result after this is taken for lost (getaddrinfo's own
 * retries end well before). */
#define LOOKUP_LOST_MS 60000
/* After a failed lookup, the background refresh of a name that still has
 * an address waits this long (or dns_refresh_ms, when shorter) before the
 * next try: not a lookup per new connection while DNS is down. */
#define LOOKUP_RETRY_MS 5000

typedef struct hc_notify {
  pthread_mutex_t mu; /* |closed| and the writes */
  int fds[2];         /* [0] read by the client's loop, [1] written by lookups */
  bool closed;        /* the client is gone */
  atomic_int refs;    /* the client and each running lookup */
} hc_notify;

typedef struct hc_lookup {
  hc_notify *n;
  hc_host *host; /* touched on the client's thread only */
  unsigned gen;  /* host->lookup_gen when it started */
  char *name;
  int port, err;
  struct sockaddr_storage addr;
  unsigned addr_len;
} hc_lookup;

static void notify_unref(hc_notify *n) {
  if (atomic_fetch_sub(&n->refs, 1) != 1)
    return;
  close(n->fds[0]);
  close(n->fds[1]);
  pthread_mutex_destroy(&n->mu);
  gw_free(n);
}

static void lookup_free(hc_lookup *L) {
  gw_free(L->name);
  gw_free(L);
}

static void *lookup_thread(void *arg) {
  hc_lookup *L = arg;
  hc_notify *n = L->n;
  L->err = gw_http_resolve_fn(L->name, L->port, &L->addr, &L->addr_len);
  if (!L->err && (L->addr_len == 0 || L->addr_len > sizeof L->addr))
    L->err = EHOSTUNREACH;
  bool sent = false;
  pthread_mutex_lock(&n->mu);
  if (!n->closed) /* (non-blocking: a full pipe drops it; the waits run out) */
    sent = write(n->fds[1], &L, sizeof L) == (ssize_t)sizeof L;
  pthread_mutex_unlock(&n->mu);
  if (!sent)
    lookup_free(L);
  notify_unref(n);
  return NULL;
}

static void on_lookup(evutil_socket_t fd, short what, void *arg);

/* Starts a lookup of |h|'s name. GW_OK, or an error (nothing started). */
static int lookup_start(gw_http_client *c, hc_host *h) {
  if (!c->notify) {
    hc_notify *n = gw_calloc(1, sizeof(*n));
    if (!n)
      return GW_ERR_NOMEM;
    if (pipe2(n->fds, O_CLOEXEC) != 0) {
      gw_free(n);
      return GW_ERR_IO;
    }
    fcntl(n->fds[0], F_SETFL, O_NONBLOCK);
    fcntl(n->fds[1], F_SETFL, O_NONBLOCK);
    pthread_mutex_init(&n->mu, NULL);
    atomic_init(&n->refs, 1);
    c->notify_ev = event_new(c->base, n->fds[0], EV_READ | EV_PERSIST, on_lookup, c);
    if (!c->notify_ev || event_add(c->notify_ev, NULL) != 0) {
      if (c->notify_ev)
        event_free(c->notify_ev);
      c->notify_ev = NULL;
      notify_unref(n);
      return GW_ERR_NOMEM;
    }
    c->notify = n;
  }
  hc_lookup *L = gw_calloc(1, sizeof(*L));
  if (!L)
    return GW_ERR_NOMEM;
  L->n = c->notify;
  L->host = h;
  L->gen = h->lookup_gen + 1;
  L->port = h->port;
  L->name = gw_strdup(h->name);
  if (!L->name) {
    gw_free(L);
    return GW_ERR_NOMEM;
  }
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  pthread_t t;
  atomic_fetch_add(&c->notify->refs, 1);
  int rc = pthread_create(&t, &at, lookup_thread, L);
  pthread_attr_destroy(&at);
  if (rc != 0) {
    atomic_fetch_sub(&c->notify->refs, 1); /* (the client still holds one) */
    lookup_free(L);
    return GW_ERR_NOMEM;
  }
  h->lookup_gen++;
  h->resolving = true;
  h->resolve_started_ms = gw_http_now_ms();
  return GW_OK;
}

/* Arms |h|'s wait timer for its first waiter to run out. */
static void waiters_arm(hc_host *h) {
  int64_t first = 0;
  for (gw_http_req *r = h->waiters; r; r = r->next_wait)
    if (!first || r->wait_until < first)
      first = r->wait_until;
  if (!first) {
    evtimer_del(h->wait_ev);
    return;
  }
  int64_t ms = first - gw_http_now_ms();
  if (ms < 1)
    ms = 1;
  struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
  evtimer_add(h->wait_ev, &tv);
}

static bool unlink_from(gw_http_req **head, gw_http_req *r) {
  for (gw_http_req **p = head; *p; p = &(*p)->next_wait)
    if (*p == r) {
      *p = r->next_wait;
      return true;
    }
  return false;
}

/* Takes |r| off its host's waiters, or off those a lookup is delivering. */
static void waiter_unlink(gw_http_req *r) {
  hc_host *h = r->wait_host;
  if (!unlink_from(&h->waiters, r))
    unlink_from(&h->delivering, r);
  r->wait_host = NULL;
  r->next_wait = NULL;
}

static void fail_req(gw_http_req *r, int err, int sys_errno, const char *reason);
static void dispatch(gw_http_client *c, gw_http_req *r, hc_host *h, bool fresh);

static void on_wait_timer(evutil_socket_t fd, short what, void *arg) {
  hc_host *h = arg;
  (void)fd;
  (void)what;
  int64_t now = gw_http_now_ms();
  /* From the head each time: a failed request's done may cancel others. */
  for (;;) {
    gw_http_req *r = h->waiters;
    while (r && r->wait_until > now)
      r = r->next_wait;
    if (!r)
      break;
    waiter_unlink(r);
    fail_req(r, GW_ERR_IO, ETIMEDOUT, "resolve timed out");
  }
  waiters_arm(h);
}

/* A lookup's result, on the client's thread: the host's address, then its
 * waiters on their way (or failed, when there is no address at all). */
static void lookup_done(gw_http_client *c, hc_lookup *L) {
  hc_host *h = L->host;
  if (L->gen != h->lookup_gen) { /* taken for lost, and a newer one runs */
    lookup_free(L);
    return;
  }
  h->resolving = false;
  if (!L->err) {
    memcpy(&h->addr, &L->addr, L->addr_len);
    h->addr_len = (socklen_t)L->addr_len;
    h->resolved_ms = gw_http_now_ms();
    h->lookup_failed_ms = 0;
  } else {
    h->lookup_failed_ms = gw_http_now_ms();
  }
  /* The waiters go one at a time from |delivering|: a done that cancels
   * another of them takes it off there (waiter_unlink), and requests that
   * start waiting meanwhile wait in |waiters| for the next lookup. */
  h->delivering = h->waiters;
  h->waiters = NULL;
  if (h->wait_ev)
    evtimer_del(h->wait_ev);
  gw_http_req *r;
  while ((r = h->delivering)) {
    h->delivering = r->next_wait;
    r->wait_host = NULL;
    r->next_wait = NULL;
    if (!h->addr_len)
      fail_req(r, GW_ERR_IO, L->err, "resolve");
    else
      dispatch(c, r, h, false);
  }
  lookup_free(L);
}

static void on_lookup(evutil_socket_t fd, short what, void *arg) {
  gw_http_client *c = arg;
  hc_lookup *L;
  (void)what;
  while (read(fd, &L, sizeof L) == (ssize_t)sizeof L)
    lookup_done(c, L);
}

/* Whether |h| has an address for a new connection of |r|: 0 (yes), 1 (|r|
 * now waits for a lookup: dispatch() takes it on), or an errno. A known
 * name past its refresh time is looked up again, the old address used
 * meanwhile. */
static int need_address(gw_http_client *c, gw_http_req *r, hc_host *h) {
  if (h->name_is_ip) {
    return h->addr_len ? 0 : lookup(h->name, h->port, true, &h->addr, &h->addr_len);
  }
  int64_t now = gw_http_now_ms();
  if (h->resolving && now - h->resolve_started_ms > LOOKUP_LOST_MS)
    h->resolving = false; /* its result was dropped (a full pipe): another may start */
  if (h->addr_len) {
    int64_t retry = c->o.dns_refresh_ms > 0 && c->o.dns_refresh_ms < LOOKUP_RETRY_MS
                        ? c->o.dns_refresh_ms
                        : LOOKUP_RETRY_MS;
    if (!h->resolving && !(h->lookup_failed_ms && now - h->lookup_failed_ms < retry) &&
        (h->resolved_ms == 0 || /* (a connect failed) */
         (c->o.dns_refresh_ms > 0 && now - h->resolved_ms >= c->o.dns_refresh_ms)))
      (void)lookup_start(c, h); /* (if it cannot start, the old address serves) */
    return 0;
  }
  if (!h->wait_ev && !(h->wait_ev = evtimer_new(c->base, on_wait_timer, h)))
    return ENOMEM;
  if (!h->resolving && lookup_start(c, h) != GW_OK) {
    /* No thread to look it up on: here, as before (the loop waits). */
    socklen_t n = 0;
    unsigned un = 0;
    int err = gw_http_resolve_fn(h->name, h->port, &h->addr, &un);
    n = (socklen_t)un;
    if (err)
      return err;
    h->addr_len = n;
    h->resolved_ms = now;
    return 0;
  }
  int64_t cto = r->connect_timeout_ms > 0 ? r->connect_timeout_ms : c->o.connect_timeout_ms;
  r->wait_until = now + (cto > 0 ? cto : 10000);
  if (r->deadline && r->deadline < r->wait_until)
    r->wait_until = r->deadline;
  r->wait_host = h;
  r->next_wait = h->waiters;
  h->waiters = r;
  waiters_arm(h);
  return 1;
}

/* ---- request lifecycle ------------------------------------------------------------ */

/* The one place |done| runs. |r| is detached from any connection first. */
static void finish(gw_http_req *r, int err) {
  r->finished = true;
  if (r->conn) {
    r->conn->req = NULL;
    r->conn = NULL;
  }
  r->done(r, err);
}

static void fail_later(gw_http_req *r, int err, int sys_errno, const char *reason);

/* Ends |r| with |err|: its connection is closed, |done| runs now (from the
 * reap event while gw_http_req_start runs). */
static void fail_req(gw_http_req *r, int err, int sys_errno, const char *reason) {
  if (r->client->in_start) {
    fail_later(r, err, sys_errno, reason);
    return;
  }
  r->sys_errno = sys_errno;
  r->reason = reason;
  if (r->conn)
    conn_close(r->conn);
  finish(r, err);
}

/* Like fail_req, with |done| from the reap event (|r| was just started or
 * retried by a caller that must not see |done| yet). */
static void fail_later(gw_http_req *r, int err, int sys_errno, const char *reason) {
  gw_http_client *c = r->client;
  r->sys_errno = sys_errno;
  r->reason = reason;
  r->fail_err = err;
  if (r->conn) {
    conn_close(r->conn);
    r->conn->req = NULL;
    r->conn = NULL;
  }
  reap_soon(c);
  r->next_fail = c->fails;
  c->fails = r;
}

static void arm_timer(hc_conn *k) {
  gw_http_req *r = k->req;
  int64_t ms = 0;
  if (r->deadline) {
    ms = r->deadline - gw_http_now_ms();
    if (ms < 1)
      ms = 1;
  }
  if (k->state == HC_CONNECTING || k->state == HC_HANDSHAKE) { /* as curl: TLS included */
    int64_t cto = r->connect_timeout_ms > 0 ? r->connect_timeout_ms : k->c->o.connect_timeout_ms;
    if (cto > 0 && (ms == 0 || cto < ms))
      ms = cto;
  }
  gw_lazy_timer_set(&k->timer, ms);
}

static int sent_all(hc_conn *k) {
  wev_set(k, false);
  if (k->state == HC_SENDING)
    k->state = HC_RECEIVING;
  return 0;
}

/* send_some over TLS: records of up to TLS_CHUNK bytes, the head's rest
 * and the body's start joined in the client's |wbuf| (a chat request is one
 * record and one write). Each chunk is a function of |k->sent| alone, so a
 * write retried after WANT_WRITE offers the same bytes, as OpenSSL wants. */
static int tls_send_some(hc_conn *k) {
  gw_http_req *r = k->req;
  size_t total = k->head.len + r->body_len;
  while (k->sent < total) {
    const char *p;
    size_t n;
    if (k->sent < k->head.len) {
      size_t hn = k->head.len - k->sent;
      if (hn >= TLS_CHUNK) {
        p = k->head.data + k->sent;
        n = TLS_CHUNK;
      } else {
        size_t bn = r->body_len < TLS_CHUNK - hn ? r->body_len : TLS_CHUNK - hn;
        memcpy(k->c->wbuf, k->head.data + k->sent, hn);
        if (bn)
          memcpy(k->c->wbuf + hn, r->body, bn);
        p = k->c->wbuf;
        n = hn + bn;
      }
    } else {
      size_t off = k->sent - k->head.len;
      p = r->body + off;
      n = r->body_len - off < TLS_CHUNK ? r->body_len - off : TLS_CHUNK;
    }
    tls_clear_errors();
    errno = 0; /* (SSL_ERROR_SYSCALL leaves the failed call's errno) */
    int w = SSL_write(k->ssl, p, (int)n);
    if (w > 0) {
      k->sent += (size_t)w;
      continue;
    }
    switch (SSL_get_error(k->ssl, w)) {
    case SSL_ERROR_WANT_WRITE: wev_set(k, true); return 1;
    case SSL_ERROR_WANT_READ: /* the read event retries it */
      k->write_wants_read = true;
      wev_set(k, false);
      return 1;
    case SSL_ERROR_SYSCALL:
      if (errno)
        return errno;
      /* fall through */
    default: return EPROTO;
    }
  }
  return sent_all(k);
}

/* Writes what is left of the head and the body. 0: all written; 1: the
 * socket is full (the write event is on); or an errno. */
static int send_some(hc_conn *k) {
  if (k->ssl)
    return tls_send_some(k);
  gw_http_req *r = k->req;
  size_t total = k->head.len + r->body_len;
  while (k->sent < total) {
    struct iovec iov[2];
    int n = 0;
    if (k->sent < k->head.len) {
      iov[n].iov_base = k->head.data + k->sent;
      iov[n++].iov_len = k->head.len - k->sent;
      if (r->body_len) {
        iov[n].iov_base = (void *)r->body;
        iov[n++].iov_len = r->body_len;
      }
    } else {
      size_t off = k->sent - k->head.len;
      iov[n].iov_base = (void *)(r->body + off);
      iov[n++].iov_len = r->body_len - off;
    }
    /* sendmsg is writev with MSG_NOSIGNAL: a closed upstream is EPIPE,
     * never SIGPIPE. */
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    ssize_t w = sendmsg(k->fd, &m, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        wev_set(k, true);
        return 1;
      }
      return errno;
    }
    k->sent += (size_t)w;
  }
  return sent_all(k);
}

/* Builds |r|'s head into |k|. GW_OK, GW_ERR_NOMEM or GW_ERR_TOOBIG. */
static int build_head(hc_conn *k, gw_http_req *r) {
  gw_buf *b = &k->head;
  gw_buf_reset(b);
  int rc;
  bool v6 = strchr(r->host, ':') != NULL;                /* an IPv6 literal goes in brackets */
  bool own_host = false;                                 /* the caller's Host line replaces ours */
  for (size_t i = 0; i < r->n_headers && !own_host; i++) /* the first letter spares most calls */
    own_host = (r->headers[i][0] | 0x20) == 'h' && strncasecmp(r->headers[i], "Host:", 5) == 0;
  char num[GW_NUMTEXT_MAX];
  /* Appends, not printf: vsnprintf was ~6K instructions a request. */
  rc = gw_buf_appends(b, r->method);
  if (rc == GW_OK)
    rc = gw_buf_appendc(b, ' ');
  if (rc == GW_OK)
    rc = gw_buf_appends(b, r->path);
  if (rc == GW_OK)
    rc = gw_buf_appends(b, own_host ? " HTTP/1.1"
                           : v6     ? " HTTP/1.1\r\nHost: ["
                                    : " HTTP/1.1\r\nHost: ");
  if (rc == GW_OK && !own_host)
    rc = gw_buf_appends(b, r->host);
  if (rc == GW_OK && v6 && !own_host)
    rc = gw_buf_appendc(b, ']');
  if (rc == GW_OK && !own_host && r->port != (r->tls ? 443 : 80)) {
    rc = gw_buf_appendc(b, ':');
    if (rc == GW_OK)
      rc = gw_buf_append(b, num, gw_numtext_i64(r->port, num));
  }
  if (rc == GW_OK)
    rc = gw_buf_append(b, "\r\n", 2);
  for (size_t i = 0; rc == GW_OK && i < r->n_headers; i++) {
    rc = gw_buf_appends(b, r->headers[i]);
    if (rc == GW_OK)
      rc = gw_buf_append(b, "\r\n", 2);
  }
  if (rc == GW_OK &&
      (r->body_len || strcmp(r->method, "POST") == 0 || strcmp(r->method, "PUT") == 0)) {
    rc = gw_buf_appends(b, "Content-Length: ");
    if (rc == GW_OK)
      rc = gw_buf_append(b, num, gw_numtext_u64(r->body_len, num));
    if (rc == GW_OK)
      rc = gw_buf_append(b, "\r\n", 2);
  }
  if (rc == GW_OK)
    rc = gw_buf_append(b, "\r\n", 2);
  return rc;
}

/* Puts |r| on |k| and starts writing. GW_OK, or an error for the caller
 * (GW_ERR_NOMEM/TOOBIG from the head; GW_ERR_IO with |*err| from a write on
 * a connected socket). */
static int attach(hc_conn *k, gw_http_req *r, int *err) {
  int rc = build_head(k, r);
  if (rc != GW_OK)
    return rc;
  k->req = r;
  r->conn = k;
  http_parser_init(&k->parser, HTTP_RESPONSE);
  k->parser.data = k;
  drop_left(k);
  k->sent = 0;
  k->cb_err = GW_OK;
  k->got_bytes = k->complete = k->keep_alive = false;
  k->fresh = true;
  if (k->state == HC_IDLE) {
    idle_unlink(k);
    k->state = HC_SENDING;
  }
  arm_timer(k);
  if (k->state == HC_CONNECTING)
    return GW_OK;                 /* the write event finishes the connect */
  if (k->state == HC_HANDSHAKE) { /* connected at once: the write event starts it */
    wev_set(k, true);
    return GW_OK;
  }
  if (!r->paused)
    rev_set(k, true); /* a pooled one has it on already */
  int w = send_some(k);
  if (w > 1) {
    *err = w;
    return GW_ERR_IO;
  }
  return GW_OK;
}

/* A connection for |r|: a pooled one unless |fresh|. On failure |r| gets
 * |done| later (never now). */
static void dispatch(gw_http_client *c, gw_http_req *r, hc_host *h, bool fresh) {
  hc_conn *k = NULL;
  int err = 0, rc;
  if (!fresh && h->idle) {
    k = h->idle;
    r->reused = true;
  } else {
    if ((err = need_address(c, r, h)) != 0) {
      if (err != 1)
        fail_later(r, GW_ERR_IO, err, "resolve");
      return;
    }
    rc = conn_open(c, h, &k, &err);
    if (rc != GW_OK) {
      if (rc == GW_ERR_IO)
        h->resolved_ms = 0; /* look the name up again (in the background) */
      fail_later(r, rc, err, "connect");
      return;
    }
  }
  rc = attach(k, r, &err);
  if (rc == GW_OK)
    return;
  if (rc == GW_ERR_IO) {
    io_error(k, err, write_why(k, err));
    return;
  }
  /* The head did not build: |k| is untouched, |r| not on it. */
  if (k->state != HC_IDLE)
    conn_close(k);
  fail_later(r, rc, 0, "request head");
}

/* A transport failure of |k|'s request: retried once on a fresh connection
 * when a pooled one broke before any response byte; else |done|. */
static void io_error(hc_conn *k, int err, const char *reason) {
  gw_http_req *r = k->req;
  if (!r) {
    conn_close(k);
    return;
  }
  if (r->reused && !r->retried && !k->got_bytes && !r->paused) {
    r->retried = true;
    conn_close(k);
    k->req = NULL;
    r->conn = NULL;
    dispatch(k->c, r, k->host, true);
    return;
  }
  fail_req(r, GW_ERR_IO, err, reason);
}

/* The final response of |k| ended: the connection goes back to the pool
 * when the exchange left it clean, and |done| runs. */
static void complete(hc_conn *k) {
  gw_http_req *r = k->req;
  bool keep = k->keep_alive && k->rpos == k->rlen && k->sent == k->head.len + r->body_len &&
              (!k->ssl || !SSL_has_pending(k->ssl) || tls_quiet(k));
  k->req = NULL;
  r->conn = NULL;
  gw_lazy_timer_set(&k->timer, 0);
  if (keep)
    conn_to_idle(k);
  else
    conn_close(k);
  finish(r, GW_OK);
}

/* ---- response parsing -------------------------------------------------------------- */

static int emit_header(http_parser *p) {
  hc_conn *k = p->data;
  gw_http_req *r = k->req;
  if (!k->in_value)
    return 0;
  k->in_value = false;
  if (p->status_code >= 200 && r->on_header) {
    r->in_cb = true;
    int rc = r->on_header(r, k->hdr.data, k->name_len, k->hdr.data + k->name_len,
                          k->hdr.len - k->name_len);
    r->in_cb = false;
    if (rc) {
      k->cb_err = GW_ERR_STATE;
      return 1;
    }
  }
  gw_buf_reset(&k->hdr);
  k->name_len = 0;
  return 0;
}

static int hdr_add(hc_conn *k, const char *at, size_t n) {
  k->hdr_total += n;
  int rc = k->hdr_total > k->c->o.max_header_bytes ? GW_ERR_TOOBIG : gw_buf_append(&k->hdr, at, n);
  if (rc != GW_OK) {
    k->cb_err = rc;
    return 1;
  }
  return 0;
}

static int on_message_begin(http_parser *p) {
  hc_conn *k = p->data;
  gw_buf_reset(&k->hdr);
  k->name_len = k->hdr_total = 0;
  k->in_value = k->is_final = false;
  return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n) {
  hc_conn *k = p->data;
  if (k->in_value && emit_header(p))
    return 1;
  if (hdr_add(k, at, n))
    return 1;
  k->name_len = k->hdr.len;
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n) {
  hc_conn *k = p->data;
  k->in_value = true;
  return hdr_add(k, at, n);
}

static int on_headers_complete(http_parser *p) {
  hc_conn *k = p->data;
  k->is_final = p->status_code >= 200;
  if (emit_header(p))
    return -1;
  if (k->is_final)
    k->req->status = p->status_code;
  if (k->req->cancel_pending)
    http_parser_pause(p, 1);
  return strcmp(k->req->method, "HEAD") == 0 ? 1 : 0;
}

static int on_body(http_parser *p, const char *at, size_t n) {
  hc_conn *k = p->data;
  gw_http_req *r = k->req;
  if (!k->is_final)
    return 0;
  r->in_cb = true;
  int rc = r->on_body(r, at, n);
  r->in_cb = false;
  if (rc) {
    k->cb_err = GW_ERR_STATE;
    return 1;
  }
  if (r->cancel_pending || r->paused)
    http_parser_pause(p, 1);
  return 0;
}

static int on_message_complete(http_parser *p) {
  hc_conn *k = p->data;
  if (!k->is_final)
    return 0; /* a 1xx: the real answer follows */
  k->complete = true;
  k->keep_alive = http_should_keep_alive(p);
  http_parser_pause(p, 1); /* nothing after it belongs to us */
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* A whole response in the first bytes read, with a plain head and a
 * Content-Length body (core/h1_head.h): read in one pass, with the steps of
 * the callbacks above. true when it took the response (complete, or a
 * callback failed), false when http_parser must read it (nothing consumed,
 * no callback run). */
static bool fast_response(hc_conn *k) {
  gw_http_req *r = k->req;
  gw_h1_head h;
  const char *p = k->rbuf + k->rpos;
  size_t n = k->rlen - k->rpos;
  if (r->paused || r->cancel_pending || !gw_h1_parse_response(p, n, &h) ||
      h.head_len > k->c->o.max_header_bytes || (uint64_t)h.content_length > n - h.head_len ||
      strcmp(r->method, "HEAD") == 0)
    return false;
  k->is_final = true;
  for (size_t i = 0; i < h.n_fields && r->on_header; i++) {
    const gw_h1_field *f = &h.fields[i];
    r->in_cb = true;
    int rc = r->on_header(r, f->name, f->nlen, f->value, f->vlen);
    r->in_cb = false;
    if (rc) {
      k->cb_err = GW_ERR_STATE;
      return true;
    }
  }
  r->status = h.status;
  if (r->cancel_pending)
    return true;
  if (h.content_length > 0) {
    r->in_cb = true;
    int rc = r->on_body(r, p + h.head_len, (size_t)h.content_length);
    r->in_cb = false;
    if (rc) {
      k->cb_err = GW_ERR_STATE;
      return true;
    }
  }
  /* The whole body was handed over: a pause asked for in on_body does not
   * hold back the end (http_parser would report it on the next read). */
  k->rpos += h.head_len + (size_t)h.content_length;
  k->complete = true;
  k->keep_alive = h.keepalive;
  return true;
}

/* Parses the bytes waiting in |k| (|eof|: the upstream closed). Returns
 * true while |k|'s request goes on; false when it ended (|done| ran) or
 * waits paused. */
static bool parse(hc_conn *k, bool eof) {
  gw_http_req *r = k->req;
  enum http_errno e = HPE_OK;
  if (eof || !k->fresh || !fast_response(k)) {
    k->fresh = false;
    size_t n = eof ? 0 : k->rlen - k->rpos;
    size_t got = http_parser_execute(&k->parser, &settings, eof ? NULL : k->rbuf + k->rpos, n);
    if (!eof)
      k->rpos += got > n ? n : got;
    e = HTTP_PARSER_ERRNO(&k->parser);
  }
  k->fresh = false;
  if (r->cancel_pending) {
    fail_req(r, GW_ERR_STATE, 0, "cancelled");
    return false;
  }
  if (k->cb_err != GW_OK) {
    fail_req(r, k->cb_err, 0,
             k->cb_err == GW_ERR_TOOBIG ? "response headers over the cap"
                                        : "aborted by the caller");
    return false;
  }
  if (k->complete) {
    complete(k);
    return false;
  }
  if (eof) { /* whatever the parser thinks of it: cut short */
    io_error(k, ECONNRESET, "upstream closed the connection before the response ended");
    return false;
  }
  if (e == HPE_PAUSED) {
    http_parser_pause(&k->parser, 0);
    return !r->paused;
  }
  if (e != HPE_OK) {
    fail_req(r, GW_ERR_INVALID, 0, http_errno_description(e));
    return false;
  }
  return true;
}

/* The TLS handshake of |k|, from its events: on to SENDING once done. */
static void tls_handshake(hc_conn *k) {
  tls_clear_errors();
  errno = 0;
  int rc = SSL_do_handshake(k->ssl);
  if (rc == 1) {
    k->state = HC_SENDING;
    arm_timer(k); /* from the connect timeout to the request's deadline */
    rev_set(k, !k->req->paused);
    int w = send_some(k);
    if (w > 1)
      io_error(k, w, write_why(k, w));
    return;
  }
  switch (SSL_get_error(k->ssl, rc)) {
  case SSL_ERROR_WANT_READ:
    wev_set(k, false);
    rev_set(k, true);
    return;
  case SSL_ERROR_WANT_WRITE: wev_set(k, true); return;
  case SSL_ERROR_SYSCALL: { /* reset, or closed with no TLS answer */
    int e = errno;
    ERR_clear_error();
    io_error(k, e ? e : EPROTO, e ? "TLS handshake" : "closed during the TLS handshake");
    return;
  }
  default: io_error(k, EPROTO, tls_why(k, "TLS handshake failed"));
  }
}

/* recv for a TLS connection: > 0 bytes, 0 at the end (close_notify, or a
 * plain close), or -1 with errno (EAGAIN: nothing yet; EPROTO: TLS). */
static ssize_t tls_recv(hc_conn *k, char *buf, size_t n) {
  tls_clear_errors();
  errno = 0;
  int got = SSL_read(k->ssl, buf, (int)n);
  if (got > 0)
    return got;
  switch (SSL_get_error(k->ssl, got)) {
  case SSL_ERROR_ZERO_RETURN: return 0;
  case SSL_ERROR_WANT_READ: errno = EAGAIN; return -1;
  case SSL_ERROR_WANT_WRITE: /* the write event retries it */
    k->read_wants_write = true;
    wev_set(k, true);
    errno = EAGAIN;
    return -1;
  case SSL_ERROR_SYSCALL:
    if (errno)
      return -1;
    /* fall through */
  default: errno = EPROTO; return -1;
  }
}

/* Between exchanges: reads the records that reached |k| and says whether
 * they carried no data (a TLS 1.3 session ticket, a key update), so the
 * connection stays reusable; bytes of data, an end or an error: it does
 * not. */
static bool tls_quiet(hc_conn *k) {
  return tls_recv(k, k->c->rbuf, READ_BUF) < 0 && errno == EAGAIN && !k->read_wants_write;
}

static void read_some(evutil_socket_t fd, hc_conn *k) {
  if (k->state == HC_IDLE) {
    /* Closed by the upstream, unexpected bytes, or idle too long; for TLS,
     * records with no data leave it pooled. */
    if (k->ssl && tls_quiet(k))
      return;
    conn_close(k);
    return;
  }
  gw_http_req *r = k->req;
  if (!r || k->state == HC_CLOSED)
    return;
  if (k->state == HC_HANDSHAKE) {
    tls_handshake(k);
    return;
  }
  if (k->write_wants_read) { /* a TLS write that waited for a read */
    k->write_wants_read = false;
    int w = send_some(k);
    if (w > 1) {
      io_error(k, w, write_why(k, w));
      return;
    }
  }
  /* Reads while a read fills the buffer (up to READS_PER_WAKE reads). A
   * short read took all the socket had, so the next one would almost always
   * fail with EAGAIN: on a streamed answer paced by the model that was 0.85
   * of the 3.7 syscalls per relayed event, made before the event's write.
   * What arrives later the loop reports again (level-triggered), as nginx
   * does after a short recv. */
  for (int i = 0; i < READS_PER_WAKE; i++) {
    if (k->rpos < k->rlen) { /* bytes left from before a pause */
      if (!parse(k, false))
        goto paused_or_done;
      drop_left(k);
      continue;
    }
    if (r->paused)
      goto paused_or_done;
    ssize_t got = k->ssl ? tls_recv(k, k->c->rbuf, READ_BUF) : recv(fd, k->c->rbuf, READ_BUF, 0);
    if (got > 0) {
      k->rbuf = k->c->rbuf;
      k->rpos = 0;
      k->rlen = (size_t)got;
      k->got_bytes = true;
      if (!parse(k, false))
        goto paused_or_done;
      if ((size_t)got < READ_BUF && k->rpos >= k->rlen && !(k->ssl && SSL_has_pending(k->ssl)))
        return; /* (bytes a parser pause left go round the loop first) */
      continue;
    }
    if (got == 0) {
      drop_left(k);
      parse(k, true);
      return;
    }
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return;
    io_error(k, errno, errno == EPROTO && k->ssl ? tls_why(k, "TLS read failed") : "read");
    return;
  }
  /* More may wait: the next loop iteration reads it. Records OpenSSL
   * already took off the socket wake no epoll: the event is made active. */
  if (k->ssl && k->state != HC_CLOSED && SSL_has_pending(k->ssl))
    event_active(k->rev, EV_READ, 0);
  return;
paused_or_done:
  /* |k| may be closed and |r| finished; only a paused live one is left
   * to quiet, keeping what it has not parsed out of the shared buffer. */
  if (k->state != HC_CLOSED && k->req == r && r->paused) {
    rev_set(k, false);
    if (k->rpos < k->rlen && k->rbuf == k->c->rbuf) {
      size_t n = k->rlen - k->rpos;
      char *left = gw_malloc(n);
      if (!left) {
        fail_req(r, GW_ERR_NOMEM, 0, "out of memory");
        return;
      }
      memcpy(left, k->rbuf + k->rpos, n);
      k->left = left;
      k->rbuf = left;
      k->rpos = 0;
      k->rlen = n;
    }
  }
}

/* The response's end usually comes here, and with it the client's answer
 * to write, its stream and this exchange to free: run at the end of this
 * callback, not as events of their own (see later.h). */
static void on_read(evutil_socket_t fd, short what, void *arg) {
  hc_conn *k = arg;
  gw_http_client *c = k->c;
  (void)what;
  gw_later_hold(c->later);
  read_some(fd, k);
  gw_later_release(c->later); /* |k| may be gone */
}

static void on_write(evutil_socket_t fd, short what, void *arg) {
  hc_conn *k = arg;
  if (!k->req || k->state == HC_CLOSED) {
    wev_set(k, false);
    return;
  }
  if (k->state == HC_CONNECTING) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
      err = errno;
    if (err) {
      k->host->resolved_ms = 0;
      io_error(k, err, "connect");
      return;
    }
    if (k->ssl) {
      k->state = HC_HANDSHAKE;
      tls_handshake(k);
      return;
    }
    k->state = HC_SENDING;
    arm_timer(k); /* from the connect timeout to the request's deadline */
    if (!k->req->paused)
      rev_set(k, true);
  }
  if (k->state == HC_HANDSHAKE) {
    tls_handshake(k);
    return;
  }
  if (k->read_wants_write) { /* a TLS read that waited for a write */
    k->read_wants_write = false;
    if (k->state != HC_SENDING)
      wev_set(k, false);
    on_read(fd, EV_READ, k);
    return;
  }
  int w = send_some(k);
  if (w > 1)
    io_error(k, w, write_why(k, w));
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
  hc_conn *k = arg;
  gw_http_req *r = k->req;
  (void)fd;
  (void)what;
  if (!gw_lazy_timer_fired(&k->timer))
    return;
  if (k->state == HC_IDLE) {
    conn_close(k); /* idle too long */
    return;
  }
  if (!r)
    return;
  fail_req(r, GW_ERR_IO, ETIMEDOUT,
           k->state == HC_CONNECTING  ? "connect timed out"
           : k->state == HC_HANDSHAKE ? "TLS handshake timed out"
                                      : "timed out");
}

/* ---- the reap event ---------------------------------------------------------------- */

static void run_reaps(gw_http_client *c) {
  while (c->fails || c->dead || c->reaps) {
    while (c->fails) {
      gw_http_req *r = c->fails;
      c->fails = r->next_fail;
      finish(r, r->fail_err);
    }
    while (c->dead) {
      hc_conn *k = c->dead;
      c->dead = k->next_dead;
      conn_free(k);
    }
    while (c->reaps) {
      gw_http_req *r = c->reaps;
      c->reaps = r->next_reap;
      r->reap(r); /* may free |r| */
    }
  }
}

static void on_reap(gw_later *it) { run_reaps(GW_CONTAINER_OF(it, gw_http_client, reap)); }

/* ---- public API --------------------------------------------------------------------- */

int gw_http_client_new(struct event_base *base, const gw_http_client_opts *opts,
                       gw_http_client **out) {
  gw_http_client *c = gw_calloc(1, sizeof(*c));
  if (!c)
    return GW_ERR_NOMEM;
  c->base = base;
  if (opts)
    c->o = *opts;
  else
    gw_http_client_opts_init(&c->o);
  c->reap.run = on_reap;
  c->later = c->o.later;
  if (!c->later) {
    c->later = gw_later_q_new(base);
    c->own_later = true;
  }
  if (!c->later) {
    gw_free(c);
    return GW_ERR_NOMEM;
  }
  *out = c;
  return GW_OK;
}

void gw_http_client_free(gw_http_client *c) {
  if (!c)
    return;
  for (;;) {
    hc_conn *k = c->conns;
    while (k && !k->req)
      k = k->next;
    if (!k)
      break;
    fail_req(k->req, GW_ERR_STATE, 0, "client closed");
  }
  for (hc_host *h = c->hosts; h; h = h->next)
    while (h->waiters) {
      gw_http_req *r = h->waiters;
      waiter_unlink(r);
      fail_req(r, GW_ERR_STATE, 0, "client closed");
    }
  for (gw_http_req *r = c->fails; r; r = r->next_fail)
    r->fail_err = GW_ERR_STATE;
  while (c->conns)
    conn_close(c->conns);
  run_reaps(c);
  if (c->notify) { /* lookups still running free their own results */
    hc_notify *n = c->notify;
    pthread_mutex_lock(&n->mu);
    n->closed = true;
    hc_lookup *L;
    while (read(n->fds[0], &L, sizeof L) == (ssize_t)sizeof L)
      lookup_free(L);
    pthread_mutex_unlock(&n->mu);
    event_free(c->notify_ev);
    notify_unref(n);
  }
  while (c->hosts) {
    hc_host *h = c->hosts;
    c->hosts = h->next;
    gw_free(h->name);
    SSL_SESSION_free(h->session);
    if (h->wait_ev)
      event_free(h->wait_ev);
    gw_free(h);
  }
  gw_later_cancel(c->later, &c->reap);
  if (c->own_later)
    gw_later_q_free(c->later);
  gw_free(c->wbuf);
  gw_free(c);
}

static int start_on(gw_http_client *c, gw_http_req *r, hc_host *h);

int gw_http_req_start(gw_http_client *c, gw_http_req *r) {
  if (!r->host || !*r->host || !r->method || !r->path || !r->done || !r->on_body || r->port < 1 ||
      r->port > 65535 || strpbrk(r->path, "\r\n ") || strpbrk(r->host, "\r\n /"))
    return GW_ERR_INVALID;
  for (size_t i = 0; i < r->n_headers; i++)
    if (!r->headers[i] || strpbrk(r->headers[i], "\r\n"))
      return GW_ERR_INVALID;
  hc_host *h = host_get(c, r->host, r->port, r->tls);
  if (!h)
    return GW_ERR_NOMEM;
  r->client = c;
  r->conn = NULL;
  r->wait_host = NULL;
  r->next_wait = NULL;
  r->next_fail = r->next_reap = NULL;
  r->status = r->sys_errno = r->fail_err = 0;
  r->reason = NULL;
  r->reused = r->retried = r->finished = r->paused = r->in_cb = r->cancel_pending = false;
  r->deadline = r->timeout_ms > 0 ? gw_http_now_ms() + r->timeout_ms : 0;

  c->in_start = true;
  int rc = start_on(c, r, h);
  c->in_start = false;
  return rc;
}

/* gw_http_req_start past its checks; |done| cannot run in here. */
static int start_on(gw_http_client *c, gw_http_req *r, hc_host *h) {
  hc_conn *k = NULL;
  int err = 0, rc;
  if (h->idle) {
    k = h->idle;
    r->reused = true;
  } else {
    r->started = true; /* (from here on |done| will run) */
    if ((err = need_address(c, r, h)) != 0) {
      if (err != 1)
        fail_later(r, GW_ERR_IO, err, "resolve");
      return GW_OK;
    }
    r->started = false;
    rc = conn_open(c, h, &k, &err);
    if (rc == GW_ERR_NOMEM)
      return rc;
    if (rc != GW_OK) {
      h->resolved_ms = 0;
      r->started = true;
      fail_later(r, rc, err, "connect");
      return GW_OK;
    }
  }
  rc = attach(k, r, &err);
  if (rc == GW_ERR_NOMEM || rc == GW_ERR_TOOBIG) {
    /* Nothing was sent: a pooled connection stays pooled, a new one goes. */
    if (k->state != HC_IDLE)
      conn_close(k);
    r->conn = NULL;
    return rc;
  }
  r->started = true;
  if (rc == GW_ERR_IO)
    io_error(k, err, write_why(k, err)); /* a retry, or |done| later */
  return GW_OK;
}

void gw_http_req_cancel(gw_http_req *r) {
  if (!r->started || r->finished || r->cancel_pending)
    return;
  gw_http_client *c = r->client;
  if (r->wait_host) { /* waiting for a lookup */
    hc_host *h = r->wait_host;
    waiter_unlink(r);
    waiters_arm(h);
    r->reason = "cancelled";
    finish(r, GW_ERR_STATE);
    return;
  }
  for (gw_http_req **p = &c->fails; *p; p = &(*p)->next_fail)
    if (*p == r) {
      *p = r->next_fail;
      r->reason = "cancelled";
      finish(r, GW_ERR_STATE);
      return;
    }
  if (r->in_cb) {
    r->cancel_pending = true;
    if (r->conn)
      http_parser_pause(&r->conn->parser, 1);
    return;
  }
  fail_req(r, GW_ERR_STATE, 0, "cancelled");
}

void gw_http_req_pause(gw_http_req *r) {
  if (!r->started || r->finished || r->paused)
    return;
  r->paused = true;
  hc_conn *k = r->conn;
  if (!k)
    return;
  if (r->in_cb)
    http_parser_pause(&k->parser, 1);
  else if (k->state != HC_CONNECTING && k->state != HC_HANDSHAKE) /* (a handshake reads) */
    rev_set(k, false);
}

void gw_http_req_resume(gw_http_req *r) {
  if (!r->started || r->finished || !r->paused)
    return;
  r->paused = false;
  hc_conn *k = r->conn;
  if (!k || k->state == HC_CONNECTING || k->state == HC_HANDSHAKE || k->state == HC_CLOSED)
    return; /* (the handshake's end turns reading on) */
  rev_set(k, true);
  event_active(k->rev, EV_READ, 0); /* what waits in the buffer goes first */
}

void gw_http_req_reap_later(gw_http_req *r, void (*fn)(gw_http_req *r)) {
  gw_http_client *c = r->client;
  reap_soon(c);
  r->reap = fn;
  r->next_reap = c->reaps;
  c->reaps = r;
}

void gw_http_client_counts(const gw_http_client *c, int *idle, int *busy) {
  int i = 0, b = 0;
  for (const hc_conn *k = c->conns; k; k = k->next)
    if (k->state == HC_IDLE)
      i++;
    else
      b++;
  *idle = i;
  *busy = b;
}

bool gw_http_proxy_for(bool tls) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, proxy_check);
  return tls ? proxy_https : proxy_http;
}

void gw_http_req_describe(const gw_http_req *r, int err, char *out, size_t n) {
  if (err == GW_ERR_IO && r->sys_errno == EPROTO) /* TLS: the reason says it */
    snprintf(out, n, "TLS: %s", r->reason ? r->reason : "failed");
  else if (err == GW_ERR_IO && r->sys_errno)
    snprintf(out, n, "%s: %s", r->reason ? r->reason : "io", strerror(r->sys_errno));
  else
    snprintf(out, n, "%s", r->reason ? r->reason : "transfer failed");
}

int gw_http_parse_url(const char *url, bool *tls, char *host, size_t host_n, int *port,
                      const char **prefix) {
  const char *h;
  if (strncasecmp(url, "http://", 7) == 0) {
    *tls = false;
    h = url + 7;
  } else if (strncasecmp(url, "https://", 8) == 0) {
    *tls = true;
    h = url + 8;
  } else {
    return GW_ERR_UNSUPPORTED;
  }
  const char *end = h + strcspn(h, "/?#");
  const char *hend = end, *colon = NULL;
  if (*h == '[') { /* [v6]:port */
    const char *rb = memchr(h, ']', (size_t)(end - h));
    if (!rb)
      return GW_ERR_INVALID;
    hend = rb + 1;
    colon = hend < end && *hend == ':' ? hend : NULL;
    if (!colon && hend != end)
      return GW_ERR_INVALID;
  } else {
    colon = memchr(h, ':', (size_t)(end - h));
    if (colon)
      hend = colon;
  }
  if (memchr(h, '@', (size_t)(end - h)))
    return GW_ERR_UNSUPPORTED; /* credentials in the URL: curl's business */
  const char *hs = h, *he = colon ? colon : hend;
  if (*hs == '[') {
    hs++;
    he--;
  }
  if (he <= hs || (size_t)(he - hs) >= host_n)
    return GW_ERR_INVALID;
  memcpy(host, hs, (size_t)(he - hs));
  host[he - hs] = '\0';
  int p = *tls ? 443 : 80;
  if (colon) {
    p = 0;
    const char *d = colon + 1;
    if (d == end)
      return GW_ERR_INVALID;
    for (; d < end; d++) {
      if (*d < '0' || *d > '9' || p > 65535)
        return GW_ERR_INVALID;
      p = p * 10 + (*d - '0');
    }
    if (p < 1 || p > 65535)
      return GW_ERR_INVALID;
  }
  if (*end == '?' || *end == '#')
    return GW_ERR_UNSUPPORTED;
  *port = p;
  *prefix = end;
  return GW_OK;
}

/* ---- per-worker side table --------------------------------------------------------- */

static gw_http_client **clients;
static int n_clients;

int gw_http_clients_init(gw_worker *workers, int n) {
  clients = gw_calloc((size_t)(n > 0 ? n : 1), sizeof(*clients));
  if (!clients)
    return GW_ERR_NOMEM;
  n_clients = n;
  for (int i = 0; i < n; i++) {
    int id = workers[i].id;
    if (id < 0 || id >= n || clients[id]) {
      gw_http_clients_free();
      return GW_ERR_INVALID;
    }
    gw_http_client_opts o;
    gw_http_client_opts_init(&o);
    o.later = workers[i].later;
    int rc = gw_http_client_new(workers[i].base, &o, &clients[id]);
    if (rc != GW_OK) {
      gw_http_clients_free();
      return rc;
    }
  }
  return GW_OK;
}

gw_http_client *gw_http_client_of(const gw_worker *w) {
  if (!w || !clients || w->id < 0 || w->id >= n_clients)
    return NULL;
  return clients[w->id];
}

void gw_http_clients_free(void) {
  if (!clients)
    return;
  for (int i = 0; i < n_clients; i++)
    gw_http_client_free(clients[i]);
  gw_free(clients);
  clients = NULL;
  n_clients = 0;
}
