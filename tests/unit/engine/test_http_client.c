/* The native HTTP/1.1 client against a tiny server in this process (same
 * event base): response framings (Content-Length, chunked, close
 * delimited, 1xx), bad answers, header cap, pool reuse and its caps, a
 * pool that follows the peak, the stale keep-alive retry, deadline, connect
 * failure, cancel (inside and outside callbacks), pause/resume, how much
 * one readable event reads, URL parsing and a fail-malloc sweep. */
#include "support.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/status.h"
#include "engine/http_client.h"

/* ---- the server ------------------------------------------------------------------ */

#define SRV_CONNS 512 /* test_idle_follows_peak opens 300 at once */

typedef struct srv_conn {
  int fd;
  struct event *ev;
  char buf[8192];
  size_t len;
  struct srv *s;
} srv_conn;

typedef struct srv {
  struct event_base *base;
  int lfd, port;
  struct event *lev;
  const char *resp; /* the answer to every request; NULL: never answer */
  size_t resp_len;
  bool close_after; /* close the connection after answering */
  int accepts, requests;
  char last_req[4096];
  srv_conn *conns; /* SRV_CONNS */
} srv;

static void srv_conn_close(srv_conn *c) {
  if (c->fd < 0)
    return;
  event_free(c->ev);
  close(c->fd);
  c->fd = -1;
}

static void srv_on_data(evutil_socket_t fd, short what, void *arg) {
  srv_conn *c = arg;
  ssize_t n = read(fd, c->buf + c->len, sizeof c->buf - c->len - 1);
  if (n <= 0) {
    srv_conn_close(c);
    return;
  }
  c->len += (size_t)n;
  c->buf[c->len] = '\0';
  for (;;) {
    char *end = strstr(c->buf, "\r\n\r\n");
    if (!end)
      return;
    size_t head = (size_t)(end - c->buf) + 4, body = 0;
    const char *cl = strcasestr(c->buf, "content-length:");
    if (cl && cl < end)
      body = strtoul(cl + 15, NULL, 10);
    if (c->len < head + body)
      return;
    srv *s = c->s;
    s->requests++;
    size_t k = head + body < sizeof s->last_req - 1 ? head + body : sizeof s->last_req - 1;
    memcpy(s->last_req, c->buf, k);
    s->last_req[k] = '\0';
    memmove(c->buf, c->buf + head + body, c->len - head - body);
    c->len -= head + body;
    c->buf[c->len] = '\0';
    if (!s->resp)
      continue;
    if (write(fd, s->resp, s->resp_len) != (ssize_t)s->resp_len)
      fail_msg("short server write");
    if (s->close_after) {
      srv_conn_close(c);
      return;
    }
  }
}

static void srv_on_accept(evutil_socket_t fd, short what, void *arg) {
  srv *s = arg;
  int cfd;
  while ((cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
    s->accepts++;
    srv_conn *c = NULL;
    for (int i = 0; i < SRV_CONNS && !c; i++)
      if (s->conns[i].fd < 0)
        c = &s->conns[i];
    if (!c) {
      close(cfd);
      continue;
    }
    c->fd = cfd;
    c->len = 0;
    c->s = s;
    c->ev = event_new(s->base, cfd, EV_READ | EV_PERSIST, srv_on_data, c);
    event_add(c->ev, NULL);
  }
}

static void srv_start(srv *s, struct event_base *base) {
  memset(s, 0, sizeof(*s));
  s->base = base;
  s->conns = calloc(SRV_CONNS, sizeof *s->conns);
  assert_non_null(s->conns);
  for (int i = 0; i < SRV_CONNS; i++)
    s->conns[i].fd = -1;
  s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(s->lfd, SRV_CONNS), 0);
  getsockname(s->lfd, (struct sockaddr *)&a, &len);
  s->port = ntohs(a.sin_port);
  s->lev = event_new(base, s->lfd, EV_READ | EV_PERSIST, srv_on_accept, s);
  event_add(s->lev, NULL);
}

static void srv_answer(srv *s, const char *resp, bool close_after) {
  s->resp = resp;
  s->resp_len = resp ? strlen(resp) : 0;
  s->close_after = close_after;
}

static void srv_drop_all(srv *s) {
  for (int i = 0; i < SRV_CONNS; i++)
    srv_conn_close(&s->conns[i]);
}

static void srv_stop(srv *s) {
  srv_drop_all(s);
  event_free(s->lev);
  close(s->lfd);
  free(s->conns);
}

/* ---- a request and its record ---------------------------------------------------- */

typedef struct rec {
  gw_http_req r;
  char body[8192];
  size_t body_len;
  char headers[1024]; /* "name=value;" */
  int done_err, done_calls, body_calls;
  bool cancel_in_body, pause_in_body;
  struct rec *cancel_in_done; /* another request, cancelled from this one's done */
} rec;

static int rec_header(gw_http_req *r, const char *n, size_t nl, const char *v, size_t vl) {
  rec *x = r->arg;
  size_t at = strlen(x->headers);
  snprintf(x->headers + at, sizeof x->headers - at, "%.*s=%.*s;", (int)nl, n, (int)vl, v);
  return 0;
}

static int rec_body(gw_http_req *r, const char *p, size_t n) {
  rec *x = r->arg;
  x->body_calls++;
  if (x->body_len + n < sizeof x->body) {
    memcpy(x->body + x->body_len, p, n);
    x->body_len += n;
  }
  if (x->cancel_in_body)
    gw_http_req_cancel(r);
  if (x->pause_in_body && x->body_calls == 1)
    gw_http_req_pause(r);
  return 0;
}

static void rec_done(gw_http_req *r, int err) {
  rec *x = r->arg;
  x->done_err = err;
  x->done_calls++;
  if (x->cancel_in_done) {
    rec *o = x->cancel_in_done;
    x->cancel_in_done = NULL;
    gw_http_req_cancel(&o->r);
  }
}

static const char *const hdrs[] = {"User-Agent: t", "Content-Type: application/json"};

static void rec_init(rec *x, int port) {
  memset(x, 0, sizeof(*x));
  x->r.host = "127.0.0.1";
  x->r.port = port;
  x->r.method = "POST";
  x->r.path = "/v1/chat/completions";
  x->r.headers = hdrs;
  x->r.n_headers = 2;
  x->r.body = "{\"a\":1}";
  x->r.body_len = 7;
  x->r.timeout_ms = 5000;
  x->r.arg = x;
  x->r.on_header = rec_header;
  x->r.on_body = rec_body;
  x->r.done = rec_done;
}

/* Runs |base| until |x| is done (or 3 s pass). */
static void run_until_done(struct event_base *base, rec *x) {
  int64_t end = gw_http_now_ms() + 3000;
  while (!x->done_calls && gw_http_now_ms() < end)
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
}

static void run_for(struct event_base *base, int ms) {
  int64_t end = gw_http_now_ms() + ms;
  while (gw_http_now_ms() < end)
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
}

/* ---- response paths, table-driven -------------------------------------------------- */

typedef struct resp_case {
  const char *name;
  const char *resp;
  bool close_after;
  size_t max_header; /* 0: default */
  int want_err, want_status;
  const char *want_body;
  const char *want_headers; /* substring of the record, NULL: not checked */
  int want_idle;
} resp_case;

static const resp_case resp_cases[] = {
    {"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, 0, GW_OK, 200,
     "hello", "Content-Length=5;", 1},
    {"chunked",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
     false, 0, GW_OK, 200, "hello world", NULL, 1},
    {"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbye", true, 0, GW_OK, 200,
     "bye", "Connection=close;", 0},
    {"http/1.0 close delimited", "HTTP/1.0 200 OK\r\n\r\nold", true, 0, GW_OK, 200, "old", NULL, 0},
    {"1xx skipped",
     "HTTP/1.1 100 Continue\r\nX-Early: 1\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: "
     "2\r\n\r\nok",
     false, 0, GW_OK, 201, "ok", "Content-Length=2;", 1},
    {"error with retry-after",
     "HTTP/1.1 429 Too Many\r\nRetry-After: 7\r\nContent-Length: 4\r\n\r\nslow", false, 0, GW_OK,
     429, "slow", "Retry-After=7;", 1},
    {"empty 204", "HTTP/1.1 204 No Content\r\n\r\n", false, 0, GW_OK, 204, "", NULL, 1},
    {"not http", "SMTP ready\r\n\r\n", false, 0, GW_ERR_INVALID, 0, "", NULL, 0},
    {"headers over the cap",
     "HTTP/1.1 200 OK\r\nX-Big: 0123456789012345678901234567890123456789\r\n"
     "Content-Length: 0\r\n\r\n",
     false, 32, GW_ERR_TOOBIG, 0, "", NULL, 0},
    {"closed mid-body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", true, 0, GW_ERR_IO, 200,
     "abc", NULL, 0},
    {"closed before any byte", "", true, 0, GW_ERR_IO, 0, "", NULL, 0},
};

static void test_response_paths(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof resp_cases / sizeof resp_cases[0]; i++) {
    const resp_case *tc = &resp_cases[i];
    struct event_base *base = event_base_new();
    srv s;
    srv_start(&s, base);
    srv_answer(&s, tc->resp, tc->close_after);
    gw_http_client_opts o;
    gw_http_client_opts_init(&o);
    if (tc->max_header)
      o.max_header_bytes = tc->max_header;
    gw_http_client *c;
    assert_int_equal(gw_http_client_new(base, &o, &c), GW_OK);
    rec x;
    rec_init(&x, s.port);
    assert_int_equal(gw_http_req_start(c, &x.r), GW_OK);
    assert_int_equal(x.done_calls, 0); /* never inside start */
    run_until_done(base, &x);
    if (x.done_calls != 1 || x.done_err != tc->want_err || x.r.status != tc->want_status ||
        x.body_len != strlen(tc->want_body) || memcmp(x.body, tc->want_body, x.body_len) != 0)
      fail_msg("%s: done %d err %d status %d body '%.*s'", tc->name, x.done_calls, x.done_err,
               x.r.status, (int)x.body_len, x.body);
    if (tc->want_headers && !strstr(x.headers, tc->want_headers))
      fail_msg("%s: headers '%s'", tc->name, x.headers);
    if (strstr(x.headers, "X-Early"))
      fail_msg("%s: a 1xx header reached the caller", tc->name);
    run_for(base, 20);
    int idle, busy;
    gw_http_client_counts(c, &idle, &busy);
    if (idle != tc->want_idle || busy != 0)
      fail_msg("%s: idle %d busy %d", tc->name, idle, busy);
    /* The request went out as one well-formed message. */
    if (s.requests == 1 &&
        !strstr(s.last_req, "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:"))
      fail_msg("%s: request '%s'", tc->name, s.last_req);
    gw_http_client_free(c);
    srv_stop(&s);
    event_base_free(base);
  }
}

static void test_request_bytes(void **state) {
  (void)state;
  struct event_base *base = event_base_new();
  srv s;
  srv_start(&s, base);
  srv_answer(&s, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false);
  gw_http_client *c;
  assert_int_equal(gw_http_client_new(base, NULL, &c), GW_OK);
  rec x;
  rec_init(&x, s.port);
  assert_int_equal(gw_http_req_start(c, &x.r), GW_OK);
  run_until_done(base, &x);
  char want[256];
  snprintf(want, sizeof want,
           "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: t\r\n"
           "Content-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
           s.port);
  assert_string_equal(s.last_req, want);
  /* A Host line of the caller's replaces the one made from host and port
   * (a signed request names its own: Bedrock's SigV4). */
  rec_init(&x, s.port);
  static const char *const own_host[] = {"host: bedrock.example:8443", "X-A: 1"};
  x.r.headers = own_host;
  x.r.n_headers = 2;
  assert_int_equal(gw_http_req_start(c, &x.r), GW_OK);
  run_until_done(base, &x);
  assert_string_equal(s.last_req,
                      "POST /v1/chat/completions HTTP/1.1\r\nhost: bedrock.example:8443\r\n"
                      "X-A: 1\r\nContent-Length: 7\r\n\r\n{\"a\":1}");
  /* Bad input is refused at once, without |done|. */
  rec y;
  rec_init(&y, s.port);
  static const char *const bad[] = {"X-Evil: a\r\nInjected: b"};
  y.r.headers = bad;
  y.r.n_headers = 1;
  assert_int_equal(gw_http_req_start(c, &y.r), GW_ERR_INVALID);
  rec_init(&y, 0);
  assert_int_equal(gw_http_req_start(c, &y.r), GW_ERR_INVALID);
  gw_http_client_free(c);
  srv_stop(&s);
  event_base_free(base);
}

/* ---- the pool ------------------------------------------------------------------------ */

static void test_reuse_and_caps(void **state) {
  (void)state;
  struct event_base *base = event_base_new();
  srv s;
  srv_start(&s, base);
  srv_answer(&s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false);
  gw_http_client_opts o;
  gw_http_client_opts_init(&o);
  o.max_idle_per_host = 1;
  o.idle_timeout_ms = 150;
  gw_http_client *c;
  assert_int_equal(gw_http_client_new(base, &o, &c), GW_OK);
  rec a, b;
  rec_init(&a, s.port);
  assert_int_equal(gw_http_req_start(c, &a.r), GW_OK);
  run_until_done(base, &a);
  assert_false(a.r.reused);
  rec_init(&b, s.port);
  assert_int_equal(gw_http_req_start(c, &b.r), GW_OK);
  run_until_done(base, &b);
  assert_int_equal(b.done_err, GW_OK);
  assert_true(b.r.reused);
  assert_int_equal(s.accepts, 1);
  /* Two at once need two connections; only one stays pooled. */
  rec_init(&a, s.port);
  rec_init(&b, s.port);
  assert_int_equal(gw_http_req_start(c, &a.r), GW_OK);
  assert_int_equal(gw_http_req_start(c, &b.r), GW_OK);
  run_until_done(base, &a);
  run_until_done(base, &b);
  assert_int_equal(a.done_err + b.done_err, GW_OK);
  assert_int_equal(s.accepts, 2);
  int idle, busy;
  gw_http_client_counts(c, &idle, &busy);
  assert_int_equal(idle, 1);
  assert_int_equal(busy, 0);
  /* The idle timeout closes it. */
  run_for(base, 300);
  gw_http_client_counts(c, &idle, &busy);
  assert_int_equal(idle, 0);
  gw_http_client_free(c);
  srv_stop(&s);
  event_base_free(base);
}

/* With no cap (the default) the pool keeps what the busiest moment needed:
 * a second burst as large as the first reuses every connection (a cap below
 * the peak closed one per request and opened another). Reuse is last-in
 * first-out, so when the load falls to one request at a time the same
 * connection serves it and the idle timeout closes the rest. */
#define PEAK 300
static void test_idle_follows_peak(void **state) {
  (void)state;
  struct event_base *base = event_base_new();
  srv s;
  srv_start(&s, base);
  srv_answer(&s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false);
  gw_http_client_opts o;
  gw_http_client_opts_init(&o);
  assert_int_equal(o.max_idle_per_host, 0);
  o.idle_timeout_ms = 400;
  gw_http_client *c;
  assert_int_equal(gw_http_client_new(base, &o, &c), GW_OK);
  rec *x = calloc(PEAK, sizeof *x);
  assert_non_null(x);
  int idle, busy;
  for (int burst = 0; burst < 2; burst++) {
    for (int i = 0; i < PEAK; i++) {
      rec_init(&x[i], s.port);
      assert_int_equal(gw_http_req_start(c, &x[i].r), GW_OK);
    }
    for (int i = 0; i < PEAK; i++) {
      run_until_done(base, &x[i]);
      if (x[i].done_err != GW_OK || x[i].r.status != 200)
        fail_msg("burst %d request %d: err %d status %d", burst, i, x[i].done_err, x[i].r.status);
      if (burst == 1 && !x[i].r.reused)
        fail_msg("burst 2 request %d opened a connection", i);
    }
    gw_http_client_counts(c, &idle, &busy);
    assert_int_equal(idle, PEAK);
    assert_int_equal(busy, 0);
    assert_int_equal(s.accepts, PEAK);
  }
  /* One at a time for twice the idle timeout: the surplus ages out. */
  int64_t end = gw_http_now_ms() + 2 * o.idle_timeout_ms;
  while (gw_http_now_ms() < end) {
    rec_init(&x[0], s.port);
    assert_int_equal(gw_http_req_start(c, &x[0].r), GW_OK);
    run_until_done(base, &x[0]);
    assert_int_equal(x[0].done_err, GW_OK);
    assert_true(x[0].r.reused);
    run_for(base, 20);
  }
  gw_http_client_counts(c, &idle, &busy);
  assert_int_equal(idle, 1);
  assert_int_equal(s.accepts, PEAK);
  free(x);
  gw_http_client_free(c);
  srv_stop(&s);
  event_base_free(base);
}

/* The connection timer is lazy: a timer armed for an earlier state (the
 * last idle period, a shorter deadline) is left to fire and armed again for
 * what the present state has left. Neither an idle timer from before the
 * last request nor one armed while a request ran may end a pooled
 * connection or a request early, and both must still end them in time. */
static void test_lazy_timers(void **state) {
  (void)state;
  struct event_base *base = event_base_new();
  srv s;
  srv_start(&s, base);
  srv_answer(&s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false);
  gw_http_client_opts o;
  gw_http_client_opts_init(&o);
  o.idle_timeout_ms = 200;
  gw_http_client *c;
  assert_int_equal(gw_http_client_new(base, &o, &c), GW_OK);
  rec a;
  rec_init(&a, s.port);
  assert_int_equal(gw_http_req_start(c, &a.r), GW_OK);
  run_until_done(base, &a); /* idle: the timer falls 200 ms from here */
  run_for(base, 120);
  rec_init(&a, s.port);
  assert_int_equal(gw_http_req_start(c, &a.r), GW_OK);
  run_until_done(base, &a); /* idle again: 200 ms from here, not 80 */
  assert_true(a.r.reused);
  run_for(base, 130); /* past the first idle period's end */
  int idle, busy;
  gw_http_client_counts(c, &idle, &busy);
  assert_int_equal(idle, 1);
  rec_init(&a, s.port);
  assert_int_equal(gw_http_req_start(c, &a.r), GW_OK);
  run_until_done(base, &a);
  assert_int_equal(a.done_err, GW_OK);
  assert_true(a.r.reused);
  assert_int_equal(s.accepts, 1);
  run_for(base, 350); /* the idle timeout still closes it */
  gw_http_client_counts(c, &idle, &busy);
  assert_int_equal(idle, 0);
  /* A request on a pooled connection whose idle timer falls first: its own
   * deadline ends it, at its time. */
  rec_init(&a, s.port);
  assert_int_equal(gw_http_req_start(c, &a.r), GW_OK);
  run_until_done(base, &a);
  srv_answer(&s, NULL, false); /* never answers */
  rec_init(&a, s.port);
  a.r.timeout_ms = 450;
  int64_t t0 = gw_http_now_ms();
  assert_int_equal(gw_http_req_start(c, &a.r), GW_OK);
  run_until_done(base, &a);
  int64_t took = gw_http_now_ms() - t0;
  assert_true(a.r.reused);
  assert_int_equal(a.done_err, GW_ERR_IO);
  assert_int_equal(a.r.sys_errno, ETIMEDOUT);
  assert_true(took >= 440 && took < 2000);
  /* With no deadline, the stale idle timer ends nothing. */
  srv_answer(&s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false);
  rec_init(&a, s.port);
  assert_int_equal(gw_http_req_start(c, &a.r), GW_OK);
  run_until_done(base, &a);
  srv_answer(&s, NULL, false);
  rec_init(&a, s.port);
  a.r.timeout_ms = 0;
  assert_int_equal(gw_http_req_start(c, &a.r), GW_OK);
  run_for(base, 400);
  assert_true(a.r.reused);
  assert_int_equal(a.done_calls, 0);
  gw_http_req_cancel(&a.r);
  run_until_done(base, &a);
  assert_int_equal(a.done_calls, 1);
  gw_http_client_free(c);
  srv_stop(&s);
  event_base_free(base);
}

/* The upstream dropped a pooled connection the client has not noticed yet:
 * the request is sent again once, on a fresh connection. */
static void test_stale_connection_is_retried(void **state) {
  (void)state;
  struct event_base *base = event_base_new();
  srv s;
  srv_start(&s, base);
  srv_answer(&s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false);
  gw_http_client *c;
  assert_int_equal(gw_http_client_new(base, NULL, &c), GW_OK);
  rec a, b;
  rec_init(&a, s.port);
  assert_int_equal(gw_http_req_start(c, &a.r), GW_OK);
  run_until_done(base, &a);
  srv_drop_all(&s); /* FIN on the pooled connection, unread by the client */
  rec_init(&b, s.port);
  assert_int_equal(gw_http_req_start(c, &b.r), GW_OK);
  run_until_done(base, &b);
  assert_int_equal(b.done_err, GW_OK);
  assert_true(b.r.reused);
  assert_true(b.r.retried);
  assert_int_equal(s.accepts, 2);
  assert_memory_equal(b.body, "ok", 2);
  gw_http_client_free(c);
  srv_stop(&s);
  event_base_free(base);
}

static void test_deadline_and_connect_failure(void **state) {
  (void)state;
  struct event_base *base = event_base_new();
  srv s;
  srv_start(&s, base);
  srv_answer(&s, NULL, false); /* never answers */
  gw_http_client *c;
  assert_int_equal(gw_http_client_new(base, NULL, &c), GW_OK);
  rec x;
  rec_init(&x, s.port);
  x.r.timeout_ms = 100;
  int64_t t0 = gw_http_now_ms();
  assert_int_equal(gw_http_req_start(c, &x.r), GW_OK);
  run_until_done(base, &x);
  assert_int_equal(x.done_err, GW_ERR_IO);
  assert_int_equal(x.r.sys_errno, ETIMEDOUT);
  assert_true(gw_http_now_ms() - t0 < 1000);
  int port = s.port;
  srv_stop(&s); /* nothing listens there now */
  rec_init(&x, port);
  assert_int_equal(gw_http_req_start(c, &x.r), GW_OK);
  assert_int_equal(x.done_calls, 0);
  run_until_done(base, &x);
  assert_int_equal(x.done_calls, 1);
  assert_int_equal(x.done_err, GW_ERR_IO);
  assert_int_equal(x.r.sys_errno, ECONNREFUSED);
  /* An unknown name fails through |done| too. */
  rec_init(&x, 80);
  x.r.host = "no-such-host.invalid";
  assert_int_equal(gw_http_req_start(c, &x.r), GW_OK);
  run_until_done(base, &x);
  assert_int_equal(x.done_err, GW_ERR_IO);
  gw_http_client_free(c);
  event_base_free(base);
}

static void test_cancel(void **state) {
  (void)state;
  struct event_base *base = event_base_new();
  srv s;
  srv_start(&s, base);
  srv_answer(&s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n3\r\ntwo\r\n",
             false);
  gw_http_client *c;
  assert_int_equal(gw_http_client_new(base, NULL, &c), GW_OK);
  /* Inside on_body: |done| after the callback returns, once. */
  rec x;
  rec_init(&x, s.port);
  x.cancel_in_body = true;
  assert_int_equal(gw_http_req_start(c, &x.r), GW_OK);
  run_until_done(base, &x);
  assert_int_equal(x.done_err, GW_ERR_STATE);
  assert_int_equal(x.body_calls, 1);
  /* Outside: |done| right away; the connection is not pooled. */
  rec_init(&x, s.port);
  assert_int_equal(gw_http_req_start(c, &x.r), GW_OK);
  gw_http_req_cancel(&x.r);
  assert_int_equal(x.done_calls, 1);
  assert_int_equal(x.done_err, GW_ERR_STATE);
  gw_http_req_cancel(&x.r); /* no-op */
  assert_int_equal(x.done_calls, 1);
  run_for(base, 20);
  int idle, busy;
  gw_http_client_counts(c, &idle, &busy);
  assert_int_equal(idle + busy, 0);
  /* An open request when the client goes: |done| with GW_ERR_STATE. */
  rec_init(&x, s.port);
  assert_int_equal(gw_http_req_start(c, &x.r), GW_OK);
  run_for(base, 20);
  gw_http_client_free(c);
  assert_int_equal(x.done_calls, 1);
  assert_int_equal(x.done_err, GW_ERR_STATE);
  srv_stop(&s);
  event_base_free(base);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg) {
  rec *x = arg;
  assert_int_equal(x->body_calls, 1); /* nothing came while paused */
  gw_http_req_resume(&x->r);
}

static void test_pause_resume(void **state) {
  (void)state;
  struct event_base *base = event_base_new();
  srv s;
  srv_start(&s, base);
  srv_answer(&s,
             "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
             "3\r\none\r\n3\r\ntwo\r\n5\r\nthree\r\n0\r\n\r\n",
             false);
  gw_http_client *c;
  assert_int_equal(gw_http_client_new(base, NULL, &c), GW_OK);
  rec x;
  rec_init(&x, s.port);
  x.pause_in_body = true;
  assert_int_equal(gw_http_req_start(c, &x.r), GW_OK);
  struct event *t = evtimer_new(base, resume_cb, &x);
  struct timeval tv = {0, 100000};
  evtimer_add(t, &tv);
  run_until_done(base, &x);
  assert_int_equal(x.done_err, GW_OK);
  assert_int_equal(x.body_len, 11);
  assert_memory_equal(x.body, "onetwothree", 11);
  event_free(t);
  gw_http_client_free(c);
  srv_stop(&s);
  event_base_free(base);
}

/* Connections read into one shared buffer; what a pause leaves unparsed must
 * be its own. Here another connection's answer is read (into that buffer)
 * while the first waits paused with "two" and "three" unparsed. */
static void test_paused_bytes_survive_other_reads(void **state) {
  (void)state;
  struct event_base *base = event_base_new();
  srv s1, s2;
  srv_start(&s1, base);
  srv_start(&s2, base);
  srv_answer(&s1,
             "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
             "3\r\none\r\n3\r\ntwo\r\n5\r\nthree\r\n0\r\n\r\n",
             false);
  srv_answer(&s2,
             "HTTP/1.1 200 OK\r\nContent-Length: 64\r\n\r\n"
             "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
             false);
  gw_http_client *c;
  assert_int_equal(gw_http_client_new(base, NULL, &c), GW_OK);
  rec x1, x2;
  rec_init(&x1, s1.port);
  x1.pause_in_body = true;
  rec_init(&x2, s2.port);
  assert_int_equal(gw_http_req_start(c, &x1.r), GW_OK);
  int64_t end = gw_http_now_ms() + 3000;
  while (x1.body_calls == 0 && gw_http_now_ms() < end)
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
  assert_int_equal(x1.body_calls, 1); /* paused after "one" */
  assert_int_equal(gw_http_req_start(c, &x2.r), GW_OK);
  run_until_done(base, &x2);
  assert_int_equal(x2.done_err, GW_OK);
  assert_int_equal(x2.body_len, 64);
  gw_http_req_resume(&x1.r);
  run_until_done(base, &x1);
  assert_int_equal(x1.done_err, GW_OK);
  assert_int_equal(x1.body_len, 11);
  assert_memory_equal(x1.body, "onetwothree", 11);
  gw_http_client_free(c);
  srv_stop(&s1);
  srv_stop(&s2);
  event_base_free(base);
}

/* ---- how much one readable event reads ------------------------------------------ */

/* A read that fills the buffer is followed by another in the same readable
 * event, so an answer already waiting whole reaches the caller at once; a
 * short read took all the socket had and ends the event (the next read would
 * fail with EAGAIN: one syscall of four per relayed SSE event). |marker| is
 * made active from the first on_body and records how far the answer had got
 * when the loop came round to it. */
typedef struct dry {
  rec x;
  srv *s;
  struct event *marker;
  bool write_rest; /* the server sends dry_rest from the first on_body */
  size_t total, total_at_marker;
  int done_at_marker, marker_runs;
} dry;

static const char dry_rest[] = "3\r\ntwo\r\n5\r\nthree\r\n0\r\n\r\n";

static int dry_body(gw_http_req *r, const char *p, size_t n) {
  dry *d = r->arg;
  d->total += n;
  rec_body(r, p, n);
  if (d->x.body_calls == 1) {
    for (int i = 0; d->write_rest && i < SRV_CONNS; i++)
      if (d->s->conns[i].fd >= 0 &&
          write(d->s->conns[i].fd, dry_rest, sizeof dry_rest - 1) != (ssize_t)(sizeof dry_rest - 1))
        fail_msg("short server write");
    event_active(d->marker, EV_TIMEOUT, 0);
  }
  return 0;
}

static void dry_done(gw_http_req *r, int err) {
  dry *d = r->arg;
  d->x.done_err = err;
  d->x.done_calls++;
}

static void dry_marker(evutil_socket_t fd, short what, void *arg) {
  dry *d = arg;
  d->marker_runs++;
  d->total_at_marker = d->total;
  d->done_at_marker = d->x.done_calls;
}

/* Runs one request against |answer|; fills |d|. */
static void dry_run(dry *d, const char *answer, bool write_rest) {
  struct event_base *base = event_base_new();
  srv s;
  srv_start(&s, base);
  srv_answer(&s, answer, false);
  gw_http_client *c;
  assert_int_equal(gw_http_client_new(base, NULL, &c), GW_OK);
  memset(d, 0, sizeof *d);
  rec_init(&d->x, s.port);
  d->x.r.arg = d;
  d->x.r.on_body = dry_body;
  d->x.r.done = dry_done;
  d->s = &s;
  d->write_rest = write_rest;
  d->marker = event_new(base, -1, 0, dry_marker, d);
  assert_int_equal(gw_http_req_start(c, &d->x.r), GW_OK);
  run_until_done(base, &d->x);
  run_for(base, 10);
  assert_int_equal(d->x.done_err, GW_OK);
  assert_int_equal(d->marker_runs, 1);
  int idle, busy;
  gw_http_client_counts(c, &idle, &busy);
  assert_int_equal(idle, 1); /* the connection went back clean */
  event_free(d->marker);
  gw_http_client_free(c);
  srv_stop(&s);
  event_base_free(base);
}

static void test_reads_per_event(void **state) {
  (void)state;
  dry d;
  /* A short read ends the event: what the server sends meanwhile comes on
   * the next one, and the answer is whole. */
  dry_run(&d, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n", true);
  assert_int_equal(d.x.body_len, 11);
  assert_memory_equal(d.x.body, "onetwothree", 11);
  if (d.total_at_marker != 3 || d.done_at_marker != 0)
    fail_msg("a short read was followed by another: %zu body bytes, done %d at the marker",
             d.total_at_marker, d.done_at_marker);
  /* An answer over the read buffer (16 KiB) waiting whole is read in one
   * event: full reads go on. */
  enum { BIG = 40000 };
  static char big[BIG + 64];
  int hl = snprintf(big, sizeof big, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", BIG);
  memset(big + hl, 'x', BIG);
  big[hl + BIG] = '\0';
  dry_run(&d, big, false);
  assert_int_equal(d.total, BIG);
  if (d.total_at_marker != BIG || d.done_at_marker != 1)
    fail_msg("full reads stopped early: %zu of %d body bytes, done %d at the marker",
             d.total_at_marker, BIG, d.done_at_marker);
}

/* ---- URLs ---------------------------------------------------------------------------- */

static const struct {
  const char *url;
  int rc;
  const char *host;
  int port;
  const char *prefix;
  bool tls;
} url_cases[] = {
    {"http://127.0.0.1:9000/v1", GW_OK, "127.0.0.1", 9000, "/v1", false},
    {"http://localhost/v1/", GW_OK, "localhost", 80, "/v1/", false},
    {"HTTP://example.com", GW_OK, "example.com", 80, "", false},
    {"http://[::1]:8080/x", GW_OK, "::1", 8080, "/x", false},
    {"https://api.openai.com/v1", GW_OK, "api.openai.com", 443, "/v1", true},
    {"HTTPS://[::1]:8443", GW_OK, "::1", 8443, "", true},
    {"ftp://host/v1", GW_ERR_UNSUPPORTED, NULL, 0, NULL, false},
    {"https://host?x=1", GW_ERR_UNSUPPORTED, NULL, 0, NULL, false},
    {"http://user:pw@host/v1", GW_ERR_UNSUPPORTED, NULL, 0, NULL, false},
    {"https://user:pw@host/v1", GW_ERR_UNSUPPORTED, NULL, 0, NULL, false},
    {"http://host:0/", GW_ERR_INVALID, NULL, 0, NULL, false},
    {"http://host:99999/", GW_ERR_INVALID, NULL, 0, NULL, false},
    {"http://host:/", GW_ERR_INVALID, NULL, 0, NULL, false},
    {"http:///v1", GW_ERR_INVALID, NULL, 0, NULL, false},
    {"https://[::1/", GW_ERR_INVALID, NULL, 0, NULL, false},
};

static void test_parse_url(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof url_cases / sizeof url_cases[0]; i++) {
    char host[64];
    int port = -1;
    const char *prefix = NULL;
    bool tls = !url_cases[i].tls;
    int rc = gw_http_parse_url(url_cases[i].url, &tls, host, sizeof host, &port, &prefix);
    if (rc != url_cases[i].rc)
      fail_msg("%s: rc %d", url_cases[i].url, rc);
    if (rc == GW_OK && (tls != url_cases[i].tls || strcmp(host, url_cases[i].host) != 0 ||
                        port != url_cases[i].port || strcmp(prefix, url_cases[i].prefix) != 0))
      fail_msg("%s: %s %d %s", url_cases[i].url, host, port, prefix);
  }
}

/* ---- name lookups ------------------------------------------------------------------ */

/* A resolver for the tests: "slow.test" is 127.0.0.1 after |lookup_delay_ms|,
 * anything else is unknown; counts its calls. */
static atomic_int lookups;
static atomic_int lookup_delay_ms;
static atomic_bool dns_down; /* every lookup fails */

static int test_resolve(const char *name, int port, struct sockaddr_storage *addr,
                        unsigned *addr_len) {
  lookups++;
  usleep((useconds_t)lookup_delay_ms * 1000);
  if (strcmp(name, "slow.test") != 0 || dns_down)
    return EHOSTUNREACH;
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  memcpy(addr, &a, sizeof a);
  *addr_len = sizeof a;
  return 0;
}

typedef struct alive {
  rec *x;
  int ticks_while_waiting;
} alive;

static void alive_cb(evutil_socket_t fd, short what, void *arg) {
  alive *a = arg;
  if (!a->x->done_calls)
    a->ticks_while_waiting++;
}

static void start_named(gw_http_client *c, rec *x, const char *host, int port) {
  rec_init(x, port);
  x->r.host = host;
  assert_int_equal(gw_http_req_start(c, &x->r), GW_OK);
}

/* Names are looked up off the loop: while a lookup takes 200 ms the loop
 * runs other events, three requests for the name share one lookup, a
 * known name does not wait when it is looked up again in the background
 * (after the refresh time, after a failed connect), an unknown one fails, a lookup slower than the
 * connect timeout ends the wait, a waiting request can be cancelled, and a client freed while a
 * lookup runs leaves nothing behind. */
static void test_lookups_off_the_loop(void **state) {
  (void)state;
  int (*saved)(const char *, int, struct sockaddr_storage *, unsigned *) = gw_http_resolve_fn;
  gw_http_resolve_fn = test_resolve;
  struct event_base *base = event_base_new();
  srv s;
  srv_start(&s, base);
  srv_answer(&s, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false);
  gw_http_client_opts o;
  gw_http_client_opts_init(&o);
  o.dns_refresh_ms = 300;
  gw_http_client *c;
  assert_int_equal(gw_http_client_new(base, &o, &c), GW_OK);

  lookups = 0;
  lookup_delay_ms = 200;
  rec x[3];
  for (int i = 0; i < 3; i++)
    start_named(c, &x[i], "slow.test", s.port);
  alive a = {&x[0], 0};
  struct event *tick = event_new(base, -1, EV_PERSIST, alive_cb, &a);
  struct timeval tv = {0, 20000};
  event_add(tick, &tv);
  for (int i = 0; i < 3; i++)
    run_until_done(base, &x[i]);
  event_free(tick);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(x[i].done_err, GW_OK);
    assert_string_equal(x[i].body, "hello");
  }
  assert_true(a.ticks_while_waiting >= 5); /* the loop ran while the name was looked up */
  assert_int_equal(lookups, 1);
  assert_non_null(strstr(s.last_req, "Host: slow.test:"));

  /* Past the refresh time a new connection looks the name up again, in the
   * background: it does not wait for it. */
  run_for(base, 350);
  srv_drop_all(&s); /* the pooled connections go */
  run_for(base, 20);
  lookup_delay_ms = 600;
  int64_t t0 = gw_http_now_ms();
  start_named(c, &x[0], "slow.test", s.port);
  run_until_done(base, &x[0]);
  assert_int_equal(x[0].done_err, GW_OK);
  assert_true(gw_http_now_ms() - t0 < 400); /* (not the lookup's 600 ms) */
  run_for(base, 800);                       /* the background lookup ends */
  assert_int_equal(lookups, 2);

  /* The upstream goes: a failed connect has the name looked up again, in
   * the background (the next request fails at once, on its connect). A
   * client with no periodic refresh, so that only the failure counts. */
  srv_stop(&s);
  o.dns_refresh_ms = 0;
  gw_http_client *c2;
  assert_int_equal(gw_http_client_new(base, &o, &c2), GW_OK);
  lookups = 0;
  lookup_delay_ms = 500;
  start_named(c2, &x[0], "slow.test", s.port);
  run_until_done(base, &x[0]);
  assert_int_equal(x[0].done_err, GW_ERR_IO);
  assert_int_equal(lookups, 1);
  t0 = gw_http_now_ms();
  start_named(c2, &x[0], "slow.test", s.port);
  run_until_done(base, &x[0]);
  assert_int_equal(x[0].done_err, GW_ERR_IO);
  assert_string_equal(x[0].r.reason, "connect");
  assert_true(gw_http_now_ms() - t0 < 300); /* (not the lookup's 500 ms) */
  run_for(base, 700);
  assert_int_equal(lookups, 2);
  gw_http_client_free(c2);

  /* An unknown name. */
  lookup_delay_ms = 0;
  start_named(c, &x[0], "unknown.test", s.port);
  run_until_done(base, &x[0]);
  assert_int_equal(x[0].done_err, GW_ERR_IO);
  assert_int_equal(x[0].r.sys_errno, EHOSTUNREACH);
  assert_string_equal(x[0].r.reason, "resolve");

  /* A lookup slower than the connect timeout; then a waiting request
   * cancelled. */
  lookup_delay_ms = 400;
  rec_init(&x[0], s.port);
  x[0].r.host = "slow2.test";
  x[0].r.connect_timeout_ms = 50;
  t0 = gw_http_now_ms();
  assert_int_equal(gw_http_req_start(c, &x[0].r), GW_OK);
  run_until_done(base, &x[0]);
  assert_int_equal(x[0].done_err, GW_ERR_IO);
  assert_int_equal(x[0].r.sys_errno, ETIMEDOUT);
  assert_string_equal(x[0].r.reason, "resolve timed out");
  assert_true(gw_http_now_ms() - t0 < 300);
  start_named(c, &x[1], "slow2.test", s.port);
  gw_http_req_cancel(&x[1].r);
  assert_int_equal(x[1].done_calls, 1);
  assert_int_equal(x[1].done_err, GW_ERR_STATE);

  /* Freed while a lookup runs: the waiting request ends, the lookup's
   * result is dropped by its thread. */
  start_named(c, &x[2], "slow3.test", s.port);
  gw_http_client_free(c);
  assert_int_equal(x[2].done_calls, 1);
  assert_int_equal(x[2].done_err, GW_ERR_STATE);
  usleep(600 * 1000); /* (the lookups end before the process does) */

  event_base_free(base);
  gw_http_resolve_fn = saved;
}

/* A request's done may cancel another request waiting for the same name
 * (the API allows it outside that one's callbacks): when both waits run
 * out in one pass of the wait timer, and when a failed lookup delivers its
 * waiters. Each request ends exactly once, none is left waiting. */
static void test_lookup_waiters_reentrant(void **state) {
  (void)state;
  int (*saved)(const char *, int, struct sockaddr_storage *, unsigned *) = gw_http_resolve_fn;
  gw_http_resolve_fn = test_resolve;
  struct event_base *base = event_base_new();
  gw_http_client *c;
  assert_int_equal(gw_http_client_new(base, NULL, &c), GW_OK);

  /* Both waits end in the same pass: the newest waiter fails first and
   * cancels the other. */
  lookup_delay_ms = 400;
  rec a, b;
  rec_init(&a, 9);
  a.r.host = "slow4.test";
  a.r.connect_timeout_ms = 50;
  assert_int_equal(gw_http_req_start(c, &a.r), GW_OK);
  rec_init(&b, 9);
  b.r.host = "slow4.test";
  b.r.connect_timeout_ms = 50;
  b.cancel_in_done = &a;
  assert_int_equal(gw_http_req_start(c, &b.r), GW_OK);
  usleep(100 * 1000); /* both past their wait when the loop first looks */
  run_for(base, 100);
  assert_int_equal(b.done_calls, 1);
  assert_int_equal(b.done_err, GW_ERR_IO);
  assert_int_equal(a.done_calls, 1);
  assert_int_equal(a.done_err, GW_ERR_STATE);

  /* A failed lookup with three waiters (newest first: x2, x1, x0); x2's
   * done cancels x1. */
  lookup_delay_ms = 100;
  rec x[3];
  for (int i = 0; i < 3; i++)
    start_named(c, &x[i], "bad.test", 9);
  x[2].cancel_in_done = &x[1];
  run_for(base, 400);
  int want[3] = {GW_ERR_IO, GW_ERR_STATE, GW_ERR_IO};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(x[i].done_calls, 1);
    assert_int_equal(x[i].done_err, want[i]);
  }
  gw_http_client_free(c);
  for (int i = 0; i < 3; i++)
    assert_int_equal(x[i].done_calls, 1);
  usleep(500 * 1000); /* (the lookups end before the process does) */
  event_base_free(base);
  gw_http_resolve_fn = saved;
}

/* DNS goes down while a name has an address: the old address keeps
 * serving, and the background refresh that failed is not tried again for
 * every new connection: 20 connections in a row make one lookup, and one
 * more per retry interval (here dns_refresh_ms, 100 ms) they took, not 20. */
static void test_failed_refresh_backs_off(void **state) {
  (void)state;
  int (*saved)(const char *, int, struct sockaddr_storage *, unsigned *) = gw_http_resolve_fn;
  gw_http_resolve_fn = test_resolve;
  struct event_base *base = event_base_new();
  srv s;
  srv_start(&s, base);
  srv_answer(&s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true); /* no reuse */
  gw_http_client_opts o;
  gw_http_client_opts_init(&o);
  o.dns_refresh_ms = 100;
  gw_http_client *c;
  assert_int_equal(gw_http_client_new(base, &o, &c), GW_OK);
  lookup_delay_ms = 0;
  dns_down = false;
  rec x;
  start_named(c, &x, "slow.test", s.port);
  run_until_done(base, &x);
  assert_int_equal(x.done_err, GW_OK);
  dns_down = true;
  run_for(base, 150); /* past the refresh time */
  lookups = 0;
  int64_t t0 = gw_http_now_ms();
  for (int i = 0; i < 20; i++) {
    start_named(c, &x, "slow.test", s.port);
    run_until_done(base, &x);
    assert_int_equal(x.done_err, GW_OK);
    assert_string_equal(x.body, "ok");
  }
  int64_t took = gw_http_now_ms() - t0;
  run_for(base, 100); /* (a lookup counts when its thread runs) */
  if (lookups < 1 || lookups > 1 + took / 100 + 1)
    fail_msg("%d lookups for 20 connections in %lld ms", (int)lookups, (long long)took);
  dns_down = false;
  gw_http_client_free(c);
  srv_stop(&s);
  usleep(100 * 1000);
  event_base_free(base);
  gw_http_resolve_fn = saved;
}

/* ---- fail-malloc sweep ------------------------------------------------------------------ */

static srv sweep_srv;
static struct event_base *sweep_base;

/* Two exchanges (a new connection, then a pooled one) and a free. */
static int sweep_once(void *arg) {
  (void)arg;
  gw_http_client *c;
  if (gw_http_client_new(sweep_base, NULL, &c) != GW_OK)
    return 1;
  int bad = 0;
  for (int i = 0; i < 2 && !bad; i++) {
    rec x;
    rec_init(&x, sweep_srv.port);
    if (gw_http_req_start(c, &x.r) != GW_OK) {
      bad = 1;
      break;
    }
    run_until_done(sweep_base, &x);
    if (x.done_err != GW_OK || x.body_len != 5)
      bad = 1;
  }
  gw_http_client_free(c);
  srv_drop_all(&sweep_srv);
  return bad;
}

static void test_failmalloc(void **state) {
  (void)state;
  sweep_base = event_base_new();
  srv_start(&sweep_srv, sweep_base);
  srv_answer(&sweep_srv, "HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 5\r\n\r\nhello", false);
  long n = gw_test_failmalloc_sweep(sweep_once, NULL);
  assert_true(n > 0);
  srv_stop(&sweep_srv);
  event_base_free(sweep_base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_response_paths),
      cmocka_unit_test(test_request_bytes),
      cmocka_unit_test(test_reuse_and_caps),
      cmocka_unit_test(test_idle_follows_peak),
      cmocka_unit_test(test_stale_connection_is_retried),
      cmocka_unit_test(test_deadline_and_connect_failure),
      cmocka_unit_test(test_lazy_timers),
      cmocka_unit_test(test_cancel),
      cmocka_unit_test(test_pause_resume),
      cmocka_unit_test(test_paused_bytes_survive_other_reads),
      cmocka_unit_test(test_reads_per_event),
      cmocka_unit_test(test_parse_url),
      cmocka_unit_test(test_lookups_off_the_loop),
      cmocka_unit_test(test_lookup_waiters_reentrant),
      cmocka_unit_test(test_failed_refresh_backs_off),
      cmocka_unit_test(test_failmalloc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
