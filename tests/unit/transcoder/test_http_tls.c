/* gw_http_tls_read_pending (transcoder/http/tls.c), deterministically.
 *
 * libevent's OpenSSL bufferevent stops reading at its input's high-water
 * mark; once the input drains below it, it waits for the socket to become
 * readable. When its last read ended inside a TLS record (it reads into the
 * space of the input's chains, which ends where the chains end), the rest of
 * that record is already out of the socket, decrypted inside SSL: nothing
 * makes the socket readable again and those bytes are never delivered
 * (libevent issue #854). Over real connections this depends on where records
 * and chains end (tests/integration/test_http_front.py and test_http_server.c
 * reproduce it only sometimes); here one 16,000-byte record meets a
 * 1,000-byte mark over a socketpair, every time: the first test shows the
 * stall, the others that the helper ends it, and only when reading is on. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "transcoder/http/internal.h"

enum { HIGH = 1000, RECORD = 16000 };

typedef struct {
  struct event_base *base;
  SSL_CTX *sctx, *cctx;
  struct bufferevent *srv, *cli;
  int fd; /* the server's end of the socketpair */
  int connected;
  size_t at_mark;                      /* the server's input when it stopped reading */
  int pending_at_mark, socket_at_mark; /* SSL_pending, FIONREAD then */
} pair;

/* A self-signed P-256 certificate, made in memory. */
static SSL_CTX *server_ctx(void) {
  EVP_PKEY *key = EVP_EC_gen("P-256");
  X509 *crt = X509_new();
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!key || !crt || !ctx)
    return NULL;
  ASN1_INTEGER_set(X509_get_serialNumber(crt), 1);
  X509_gmtime_adj(X509_getm_notBefore(crt), 0);
  X509_gmtime_adj(X509_getm_notAfter(crt), 3600);
  X509_set_pubkey(crt, key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(crt), "CN", MBSTRING_ASC,
                             (const unsigned char *)"localhost", -1, -1, 0);
  X509_set_issuer_name(crt, X509_get_subject_name(crt));
  int ok = X509_sign(crt, key, EVP_sha256()) > 0 && SSL_CTX_use_certificate(ctx, crt) == 1 &&
           SSL_CTX_use_PrivateKey(ctx, key) == 1;
  X509_free(crt);
  EVP_PKEY_free(key);
  if (!ok) {
    SSL_CTX_free(ctx);
    return NULL;
  }
  return ctx;
}

static void on_event(struct bufferevent *bev, short what, void *arg) {
  (void)bev;
  if (what & BEV_EVENT_CONNECTED)
    ((pair *)arg)->connected++;
}

static void spin(pair *p, int ms) {
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  event_base_loopexit(p->base, &tv);
  event_base_dispatch(p->base);
}

static size_t input_len(pair *p) { return evbuffer_get_length(bufferevent_get_input(p->srv)); }

static int socket_unread(pair *p) {
  int n = -1;
  ioctl(p->fd, FIONREAD, &n);
  return n;
}

/* A TLS session over a socketpair (the server's bufferevent set up as the
 * gateway's, server.c, but with no read callback: nothing takes its input);
 * one record of RECORD bytes from the client, read by the server up to the
 * mark; then all of its input taken, as a parser would, and the loop run. */
static int setup(void **state) {
  pair *p = calloc(1, sizeof *p);
  int sv[2];
  if (!p)
    return -1;
  *state = p;
  signal(SIGPIPE, SIG_IGN);
  p->base = event_base_new();
  p->sctx = server_ctx();
  p->cctx = SSL_CTX_new(TLS_client_method());
  if (!p->base || !p->sctx || !p->cctx || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
    return -1;
  p->fd = sv[0];
  evutil_make_socket_nonblocking(sv[0]);
  evutil_make_socket_nonblocking(sv[1]);
  p->srv =
      bufferevent_openssl_socket_new(p->base, sv[0], SSL_new(p->sctx), BUFFEREVENT_SSL_ACCEPTING,
                                     BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
  p->cli = bufferevent_openssl_socket_new(p->base, sv[1], SSL_new(p->cctx),
                                          BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
  if (!p->srv || !p->cli)
    return -1;
  bufferevent_setcb(p->srv, NULL, NULL, on_event, p);
  bufferevent_setcb(p->cli, NULL, NULL, on_event, p);
  bufferevent_setwatermark(p->srv, EV_READ, 0, HIGH);
  bufferevent_enable(p->srv, EV_READ | EV_WRITE);
  bufferevent_enable(p->cli, EV_READ | EV_WRITE);
  for (int i = 0; i < 50 && p->connected < 2; i++)
    spin(p, 100);
  if (p->connected < 2)
    return -1;

  char record[RECORD];
  memset(record, 'x', sizeof record);
  bufferevent_write(p->cli, record, sizeof record); /* one SSL_write: one record */
  for (int i = 0; i < 50 && input_len(p) < HIGH; i++)
    spin(p, 20);
  spin(p, 50);
  p->at_mark = input_len(p);
  p->pending_at_mark = SSL_pending(bufferevent_openssl_get_ssl(p->srv));
  p->socket_at_mark = socket_unread(p);
  evbuffer_drain(bufferevent_get_input(p->srv), p->at_mark); /* a parser took it all */
  spin(p, 300);
  return 0;
}

static int teardown(void **state) {
  pair *p = *state;
  if (p->srv)
    bufferevent_free(p->srv);
  if (p->cli)
    bufferevent_free(p->cli);
  SSL_CTX_free(p->sctx);
  SSL_CTX_free(p->cctx);
  if (p->base)
    event_base_free(p->base);
  free(p);
  return 0;
}

/* Where the mark left things: the server stopped reading at (or a chain's
 * length past) the mark, the rest of the record in SSL, the socket empty. */
static void assert_read_to_the_mark(const pair *p) {
  assert_true(p->at_mark >= HIGH && p->at_mark < RECORD);
  assert_int_equal(p->pending_at_mark, RECORD - (int)p->at_mark);
  assert_int_equal(p->socket_at_mark, 0);
}

/* The stall itself: drained below the mark, libevent reads nothing more. (If
 * a libevent release reads SSL's pending bytes on its own, this fails: the
 * next test would then prove nothing, and the helper may go.) */
static void test_stalls_without_the_helper(void **state) {
  pair *p = *state;
  assert_read_to_the_mark(p);
  assert_int_equal(input_len(p), 0);
  spin(p, 300);
  assert_int_equal(input_len(p), 0);
  assert_int_equal(SSL_pending(bufferevent_openssl_get_ssl(p->srv)), p->pending_at_mark);
}

/* The helper runs the read once more, up to the mark again; a parser that
 * takes the input and calls it each time (as server.c does after each read
 * and service callback) gets the whole record. With nothing pending in
 * SSL it does nothing. */
static void test_helper_reads_what_ssl_holds(void **state) {
  pair *p = *state;
  SSL *ssl = bufferevent_openssl_get_ssl(p->srv);
  size_t got = p->at_mark;
  assert_read_to_the_mark(p);
  for (int i = 0; i < 100 && SSL_pending(ssl) > 0; i++) {
    gw_http_tls_read_pending(p->srv);
    spin(p, 20);
    size_t n = input_len(p);
    assert_true(n > 0); /* each call reads */
    got += n;
    evbuffer_drain(bufferevent_get_input(p->srv), n);
  }
  assert_int_equal(got, RECORD);
  assert_int_equal(SSL_pending(ssl), 0);

  gw_http_tls_read_pending(p->srv);
  spin(p, 50);
  assert_int_equal(input_len(p), 0);
}

/* Reading disabled (the connection is closing, or its parser paused it):
 * the helper leaves SSL's bytes where they are. */
static void test_helper_leaves_a_disabled_read(void **state) {
  pair *p = *state;
  assert_read_to_the_mark(p);
  bufferevent_disable(p->srv, EV_READ);
  gw_http_tls_read_pending(p->srv);
  spin(p, 100);
  assert_int_equal(input_len(p), 0);
  assert_int_equal(SSL_pending(bufferevent_openssl_get_ssl(p->srv)), p->pending_at_mark);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_stalls_without_the_helper, setup, teardown),
      cmocka_unit_test_setup_teardown(test_helper_reads_what_ssl_holds, setup, teardown),
      cmocka_unit_test_setup_teardown(test_helper_leaves_a_disabled_read, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
