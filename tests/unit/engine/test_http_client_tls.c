/* The native client over TLS (https://) against real OpenSSL servers in
 * this process, each connection served by a thread with blocking I/O:
 * exchanges and pooling, requests and answers of many records, a reader
 * that pauses after every piece, SNI, the certificate checks (an unknown
 * issuer, a name or address that does not match), a peer that does not
 * speak TLS, a server that closes after each answer (sessions resumed),
 * and TLS 1.3 session tickets arriving on a pooled connection.
 *
 * The certificates are made here, self-signed, and the client trusts them
 * through SSL_CERT_FILE, the variable OpenSSL (and so the gateway) reads for
 * its trust store. */
#include "support.h"

#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/status.h"
#include "engine/http_client.h"

/* ---- certificates ----------------------------------------------------------------- */

typedef struct cert {
  EVP_PKEY *key;
  X509 *x509;
} cert;

/* A self-signed P-256 certificate for |san| ("IP:127.0.0.1,DNS:localhost"). */
static void cert_make(cert *c, const char *cn, const char *san) {
  c->key = EVP_EC_gen("P-256");
  assert_non_null(c->key);
  X509 *x = X509_new();
  assert_non_null(x);
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(random() & 0x7fffffff));
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, c->key);
  X509_NAME *name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
  assert_non_null(ext);
  X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
  ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
  X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
  assert_true(X509_sign(x, c->key, EVP_sha256()) > 0);
  c->x509 = x;
}

static void cert_free(cert *c) {
  X509_free(c->x509);
  EVP_PKEY_free(c->key);
}

/* ---- the server ----------------------------------------------------------------------- */

#define MAX_CONNS 16

typedef struct tsrv {
  SSL_CTX *ctx;
  int lfd, port;
  pthread_t acceptor;
  pthread_t threads[MAX_CONNS];
  int fds[MAX_CONNS];
  atomic_int n_conns, accepts, requests, handshakes, resumed;
  const char *resp; /* the answer to every request */
  size_t resp_len;
  bool close_after;   /* close_notify and close after each answer */
  bool plain;         /* no TLS: |resp| to whatever comes (NULL: silent) */
  bool tickets_after; /* a session ticket and a key update after each answer */
  atomic_size_t last_body;
  char sni[64];
} tsrv;

typedef struct tconn {
  tsrv *s;
  int fd;
} tconn;

static int sni_cb(SSL *ssl, int *alert, void *arg) {
  tsrv *s = arg;
  (void)alert;
  const char *n = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  snprintf(s->sni, sizeof s->sni, "%s", n ? n : "");
  return SSL_TLSEXT_ERR_OK;
}

/* Reads requests (head, then Content-Length bytes) and answers each. */
static void *serve(void *arg) {
  tconn *t = arg;
  tsrv *s = t->s;
  SSL *ssl = NULL;
  size_t cap = 1 << 19;
  char *buf = malloc(cap);
  if (s->plain) { /* silent, or an HTTP server's answer to a ClientHello */
    char b[4096];
    while (read(t->fd, b, sizeof b) > 0)
      if (s->resp && write(t->fd, s->resp, s->resp_len) < 0)
        break;
    goto out;
  }
  ssl = SSL_new(s->ctx);
  SSL_set_fd(ssl, t->fd);
  if (SSL_accept(ssl) != 1)
    goto out;
  s->handshakes++;
  if (SSL_session_reused(ssl))
    s->resumed++;
  size_t len = 0;
  for (;;) {
    int n = SSL_read(ssl, buf + len, (int)(cap - len - 1));
    if (n <= 0)
      goto out;
    len += (size_t)n;
    buf[len] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    if (!end)
      continue;
    size_t head = (size_t)(end - buf) + 4, body = 0;
    const char *cl = strcasestr(buf, "content-length:");
    if (cl && cl < end)
      body = strtoul(cl + 15, NULL, 10);
    if (len < head + body)
      continue;
    s->requests++;
    s->last_body = body;
    memmove(buf, buf + head + body, len - head - body);
    len -= head + body;
    for (size_t off = 0; off < s->resp_len;) {
      int w = SSL_write(ssl, s->resp + off, (int)(s->resp_len - off));
      if (w <= 0)
        goto out;
      off += (size_t)w;
    }
    if (s->close_after) {
      SSL_shutdown(ssl);
      goto out;
    }
    if (s->tickets_after) { /* records with no data, after the answer */
      SSL_new_session_ticket(ssl);
      SSL_key_update(ssl, SSL_KEY_UPDATE_NOT_REQUESTED);
      SSL_do_handshake(ssl);
    }
  }
out:
  free(buf);
  SSL_free(ssl);
  shutdown(t->fd, SHUT_RDWR);
  free(t);
  return NULL;
}

static void *acceptor(void *arg) {
  tsrv *s = arg;
  for (;;) {
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
      return NULL; /* the listener was shut down */
    int i = s->n_conns;
    if (i >= MAX_CONNS) {
      close(fd);
      continue;
    }
    s->accepts++;
    s->fds[i] = fd;
    tconn *t = malloc(sizeof *t);
    t->s = s;
    t->fd = fd;
    pthread_create(&s->threads[i], NULL, serve, t);
    s->n_conns = i + 1;
  }
}

static void tsrv_start(tsrv *s, const cert *c, const char *resp) {
  memset(s, 0, sizeof(*s));
  s->resp = resp;
  s->resp_len = resp ? strlen(resp) : 0;
  if (c) {
    s->ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(s->ctx);
    assert_int_equal(SSL_CTX_use_certificate(s->ctx, c->x509), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(s->ctx, c->key), 1);
    SSL_CTX_set_tlsext_servername_callback(s->ctx, sni_cb);
    SSL_CTX_set_tlsext_servername_arg(s->ctx, s);
  } else {
    s->plain = true;
  }
  s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(s->lfd, 64), 0);
  getsockname(s->lfd, (struct sockaddr *)&a, &len);
  s->port = ntohs(a.sin_port);
  pthread_create(&s->acceptor, NULL, acceptor, s);
}

/* Stops the server after the client is gone (its connections closed). */
static void tsrv_stop(tsrv *s) {
  shutdown(s->lfd, SHUT_RDWR);
  pthread_join(s->acceptor, NULL);
  close(s->lfd);
  for (int i = 0; i < s->n_conns; i++) {
    shutdown(s->fds[i], SHUT_RDWR);
    pthread_join(s->threads[i], NULL);
    close(s->fds[i]);
  }
  SSL_CTX_free(s->ctx);
}

/* ---- a request and its record ---------------------------------------------------- */

typedef struct rec {
  gw_http_req r;
  size_t body_len;
  char body[64];
  int done_err, done_calls;
  /* Pause after every piece and resume from a timer 1 ms later, checking
   * the bytes against the pattern of pattern_body(). */
  struct event *resume_ev;
  int pauses;
  bool out_of_order;
} rec;

/* 'a' to 'z' over and over: a body whose every byte says where it belongs. */
static char pattern_at(size_t i) { return (char)('a' + i % 26); }

static int rec_body(gw_http_req *r, const char *p, size_t n) {
  rec *x = r->arg;
  if (x->resume_ev) {
    for (size_t i = 0; i < n; i++)
      if (p[i] != pattern_at(x->body_len + i))
        x->out_of_order = true;
    x->pauses++;
    gw_http_req_pause(r);
    struct timeval tv = {0, 1000};
    evtimer_add(x->resume_ev, &tv);
  }
  size_t k = x->body_len < sizeof x->body - 1 ? sizeof x->body - 1 - x->body_len : 0;
  memcpy(x->body + x->body_len, p, n < k ? n : k);
  x->body_len += n;
  x->body[x->body_len < sizeof x->body ? x->body_len : sizeof x->body - 1] = '\0';
  return 0;
}

static void rec_done(gw_http_req *r, int err) {
  rec *x = r->arg;
  x->done_err = err;
  x->done_calls++;
}

static const char *const hdrs[] = {"Content-Type: application/json"};

static void rec_init(rec *x, const char *host, int port) {
  memset(x, 0, sizeof(*x));
  x->r.host = host;
  x->r.port = port;
  x->r.tls = true;
  x->r.method = "POST";
  x->r.path = "/v1/chat/completions";
  x->r.headers = hdrs;
  x->r.n_headers = 1;
  x->r.body = "{}";
  x->r.body_len = 2;
  x->r.timeout_ms = 5000;
  x->r.arg = x;
  x->r.on_body = rec_body;
  x->r.done = rec_done;
  x->done_err = -1;
}

static void run(struct event_base *base, gw_http_client *c, rec *x) {
  assert_int_equal(gw_http_req_start(c, &x->r), GW_OK);
  for (int i = 0; i < 10000 && !x->done_calls; i++)
    event_base_loop(base, EVLOOP_ONCE);
  assert_int_equal(x->done_calls, 1);
}

static void run_for(struct event_base *base, int ms) {
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  event_base_loopexit(base, &tv);
  event_base_dispatch(base);
}

/* ---- fixtures ---------------------------------------------------------------------- */

static cert ip_cert;        /* trusted, for 127.0.0.1 and localhost */
static cert name_cert;      /* trusted, for localhost only */
static cert untrusted_cert; /* for 127.0.0.1, but in no trust store */
static char bundle[64];

static int setup(void **state) {
  (void)state;
  signal(SIGPIPE, SIG_IGN); /* as the gateway: OpenSSL writes with write(2) */
  cert_make(&ip_cert, "test ip", "IP:127.0.0.1,DNS:localhost");
  cert_make(&name_cert, "test name", "DNS:localhost");
  cert_make(&untrusted_cert, "test untrusted", "IP:127.0.0.1");
  snprintf(bundle, sizeof bundle, "/tmp/aigw-tls-bundle.%d.pem", (int)getpid());
  FILE *f = fopen(bundle, "w");
  assert_non_null(f);
  PEM_write_X509(f, ip_cert.x509);
  PEM_write_X509(f, name_cert.x509);
  fclose(f);
  /* Before the client's first TLS connection: the trust store is read once. */
  setenv("SSL_CERT_FILE", bundle, 1);
  setenv("SSL_CERT_DIR", "/nonexistent", 1); /* nothing from the system's */
  return 0;
}

static int teardown(void **state) {
  (void)state;
  unlink(bundle);
  cert_free(&ip_cert);
  cert_free(&name_cert);
  cert_free(&untrusted_cert);
  return 0;
}

static const char hello[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

/* ---- tests --------------------------------------------------------------------------- */

/* Two exchanges on one TLS connection (the second pooled), SNI absent for
 * an address and sent for a name. */
static void test_exchange_and_pool(void **state) {
  (void)state;
  struct event_base *base = event_base_new();
  gw_http_client *c;
  assert_int_equal(gw_http_client_new(base, NULL, &c), GW_OK);
  tsrv s;
  tsrv_start(&s, &ip_cert, hello);
  for (int i = 0; i < 2; i++) {
    rec x;
    rec_init(&x, "127.0.0.1", s.port);
    run(base, c, &x);
    assert_int_equal(x.done_err, GW_OK);
    assert_int_equal(x.r.status, 200);
    assert_string_equal(x.body, "hello");
    assert_int_equal(x.r.reused, i == 1);
  }
  assert_int_equal(s.accepts, 1);
  assert_int_equal(s.requests, 2);
  assert_string_equal(s.sni, ""); /* no SNI for an address */
  rec x;
  rec_init(&x, "localhost", s.port); /* another host key: a new connection */
  run(base, c, &x);
  assert_int_equal(x.done_err, GW_OK);
  assert_string_equal(s.sni, "localhost");
  assert_int_equal(s.accepts, 2);
  int idle, busy;
  gw_http_client_counts(c, &idle, &busy);
  assert_int_equal(idle, 2);
  assert_int_equal(busy, 0);
  gw_http_client_free(c);
  tsrv_stop(&s);
  event_base_free(base);
}

/* A 300 KB request (19 records, written as the socket takes them) and a
 * 2 MB answer (128 records: more than one readable event reads, so the
 * records OpenSSL has taken off the socket must wake the next one). */
static void test_large_bodies(void **state) {
  (void)state;
  struct event_base *base = event_base_new();
  gw_http_client *c;
  assert_int_equal(gw_http_client_new(base, NULL, &c), GW_OK);
  size_t big = 2000000;
  char *resp = malloc(big + 100);
  int h = snprintf(resp, 100, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", big);
  memset(resp + h, 'a', big);
  resp[h + big] = '\0';
  tsrv s;
  tsrv_start(&s, &ip_cert, resp);
  size_t req_len = 300000;
  char *body = malloc(req_len);
  memset(body, 'b', req_len);
  for (int i = 0; i < 2; i++) {
    rec x;
    rec_init(&x, "127.0.0.1", s.port);
    x.r.body = body;
    x.r.body_len = i == 0 ? req_len : 100; /* then a small one on the same connection */
    run(base, c, &x);
    assert_int_equal(x.done_err, GW_OK);
    assert_int_equal(x.body_len, big);
    assert_int_equal(s.last_body, x.r.body_len);
  }
  assert_int_equal(s.accepts, 1);
  gw_http_client_free(c);
  tsrv_stop(&s);
  free(body);
  free(resp);
  event_base_free(base);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  gw_http_req_resume(arg);
}

/* A slow reader (an SSE client that cannot keep up pauses the upstream): a
 * 2 MB answer read with a pause after every piece. What OpenSSL already
 * decrypted or buffered while paused comes first on resume, nothing is
 * lost or reordered. */
static void test_pause_resume(void **state) {
  (void)state;
  struct event_base *base = event_base_new();
  gw_http_client *c;
  assert_int_equal(gw_http_client_new(base, NULL, &c), GW_OK);
  size_t big = 2000000;
  char *resp = malloc(big + 100);
  int h = snprintf(resp, 100, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", big);
  for (size_t i = 0; i < big; i++)
    resp[h + i] = pattern_at(i);
  resp[h + big] = '\0';
  tsrv s;
  tsrv_start(&s, &ip_cert, resp);
  rec x;
  rec_init(&x, "127.0.0.1", s.port);
  x.resume_ev = evtimer_new(base, resume_cb, &x.r);
  run(base, c, &x);
  assert_int_equal(x.done_err, GW_OK);
  assert_int_equal(x.body_len, big);
  assert_false(x.out_of_order);
  assert_true(x.pauses >= 100); /* (16 KiB records: about 122 pieces) */
  event_free(x.resume_ev);
  gw_http_client_free(c);
  tsrv_stop(&s);
  free(resp);
  event_base_free(base);
}

/* The certificate checks: each failure is GW_ERR_IO, EPROTO, with
 * OpenSSL's words for what was wrong, and the server answered nothing. */
static void test_certificate_checks(void **state) {
  (void)state;
  static const struct {
    cert *cert;
    const char *host;
    const char *why;
  } cases[] = {
      {&untrusted_cert, "127.0.0.1", "self-signed certificate"},
      {&name_cert, "127.0.0.1", "IP address mismatch"},
  };
  struct event_base *base = event_base_new();
  gw_http_client *c;
  assert_int_equal(gw_http_client_new(base, NULL, &c), GW_OK);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tsrv s;
    tsrv_start(&s, cases[i].cert, hello);
    rec x;
    rec_init(&x, cases[i].host, s.port);
    run(base, c, &x);
    if (x.done_err != GW_ERR_IO || x.r.sys_errno != EPROTO || !x.r.reason ||
        strcmp(x.r.reason, cases[i].why) != 0)
      fail_msg("case %zu: err %d errno %d reason %s", i, x.done_err, x.r.sys_errno,
               x.r.reason ? x.r.reason : "(none)");
    assert_int_equal(s.requests, 0);
    gw_http_client_free(c);
    tsrv_stop(&s);
    assert_int_equal(gw_http_client_new(base, NULL, &c), GW_OK);
  }
  /* The name the certificate does carry passes. */
  tsrv s;
  tsrv_start(&s, &name_cert, hello);
  rec x;
  rec_init(&x, "localhost", s.port);
  run(base, c, &x);
  assert_int_equal(x.done_err, GW_OK);
  gw_http_client_free(c);
  tsrv_stop(&s);
  event_base_free(base);
}

/* A peer that does not speak TLS. A plain HTTP server answers the
 * ClientHello with no TLS record, and the reason says so; a silent one is
 * ended by the connect timeout, which covers the handshake as curl's does. */
static void test_peer_without_tls(void **state) {
  (void)state;
  static const struct {
    const char *resp;
    int sys_errno;
    const char *why;
  } cases[] = {
      {"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", EPROTO, "wrong version number"},
      {NULL, ETIMEDOUT, "TLS handshake timed out"},
  };
  struct event_base *base = event_base_new();
  gw_http_client *c;
  assert_int_equal(gw_http_client_new(base, NULL, &c), GW_OK);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tsrv s;
    tsrv_start(&s, NULL, cases[i].resp);
    rec x;
    rec_init(&x, "127.0.0.1", s.port);
    x.r.connect_timeout_ms = 200;
    run(base, c, &x);
    assert_int_equal(x.done_err, GW_ERR_IO);
    assert_int_equal(x.r.sys_errno, cases[i].sys_errno);
    assert_string_equal(x.r.reason, cases[i].why);
    gw_http_client_free(c);
    tsrv_stop(&s);
    assert_int_equal(gw_http_client_new(base, NULL, &c), GW_OK);
  }
  gw_http_client_free(c);
  event_base_free(base);
}

/* A server that closes after each answer: the pooled connection is seen
 * closed (close_notify) and dropped, and the next request connects again,
 * resuming the TLS session.
 * One that keeps it but sends a TLS 1.3 session ticket and a key update
 * after its answer (records with no data, which reach the pooled
 * connection): they must not close it. */
static void test_pooled_connection_closed_or_kept(void **state) {
  (void)state;
  struct event_base *base = event_base_new();
  gw_http_client *c;
  assert_int_equal(gw_http_client_new(base, NULL, &c), GW_OK);
  tsrv s;
  tsrv_start(&s, &ip_cert, hello);
  s.close_after = true;
  for (int i = 0; i < 3; i++) {
    rec x;
    rec_init(&x, "127.0.0.1", s.port);
    run(base, c, &x);
    assert_int_equal(x.done_err, GW_OK);
    assert_false(x.r.reused);
    run_for(base, 50);
    int idle, busy;
    gw_http_client_counts(c, &idle, &busy);
    assert_int_equal(idle + busy, 0);
  }
  assert_int_equal(s.accepts, 3);
  /* The later connections resumed the session the first one got: no
   * certificate exchanged and verified again. */
  assert_int_equal(s.handshakes, 3);
  assert_int_equal(s.resumed, 2);
  gw_http_client_free(c);
  tsrv_stop(&s);

  assert_int_equal(gw_http_client_new(base, NULL, &c), GW_OK);
  tsrv_start(&s, &ip_cert, hello);
  s.tickets_after = true;
  rec x;
  rec_init(&x, "127.0.0.1", s.port);
  run(base, c, &x);
  assert_int_equal(x.done_err, GW_OK);
  run_for(base, 100); /* anything still in flight reaches the pooled connection */
  int idle, busy;
  gw_http_client_counts(c, &idle, &busy);
  assert_int_equal(idle, 1);
  rec_init(&x, "127.0.0.1", s.port);
  run(base, c, &x);
  assert_int_equal(x.done_err, GW_OK);
  assert_true(x.r.reused);
  assert_int_equal(s.accepts, 1);
  gw_http_client_free(c);
  tsrv_stop(&s);
  event_base_free(base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exchange_and_pool),
      cmocka_unit_test(test_large_bodies),
      cmocka_unit_test(test_pause_resume),
      cmocka_unit_test(test_certificate_checks),
      cmocka_unit_test(test_peer_without_tls),
      cmocka_unit_test(test_pooled_connection_closed_or_kept),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
