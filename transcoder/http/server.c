/* The HTTP server: listener, per-IP connection cap, connection lifecycle
 * (protocol detection, timers, graceful close, reaping) and TLS reload. The
 * codecs (h1.c, h2.c) and the stream code (stream.c) do the rest. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/lazy_timer.h"
#include "core/log.h"
#include "core/numtext.h"
#include "core/status.h"
#include "transcoder/http/internal.h"

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

struct ipcap_entry {
  ipcap_entry *next;
  unsigned count;
  char ip[INET6_ADDRSTRLEN];
};

static const char *conn_state_to_str(conn_state st) {
  switch (st) {
  case CONN_DETECT: return "detect";
  case CONN_HANDSHAKE: return "handshake";
  case CONN_H1: return "h1";
  case CONN_H2: return "h2";
  case CONN_LINGER: return "linger";
  }
  return "?";
}

void gw_http_options_init(gw_http_options *o) {
  memset(o, 0, sizeof *o);
  o->port = 8080;
  o->listen_fd = -1;
  o->max_body_bytes = 1024 * 1024;
  o->max_header_bytes = 60 * 1024;
  o->max_headers = 100;
  o->header_timeout_ms = 60000;
  o->body_timeout_ms = 60000;
  o->keepalive_timeout_ms = 75000;
  o->h2_max_concurrent_streams = 128;
  o->max_conns_per_ip = 256;
  o->write_low_water = 64 * 1024;
  o->hsts_max_age = 31536000;
  o->gzip = 1;
  o->gzip_min_bytes = 1024;
  o->cors_max_age = 600;
}

/* --- per-IP cap ------------------------------------------------------------ */

static unsigned ip_hash(const char *ip) {
  unsigned h = 2166136261u;
  for (; *ip; ip++)
    h = (h ^ (unsigned char)*ip) * 16777619u;
  return h % GW_HTTP_IPCAP_BUCKETS;
}

/* Counts one more connection from |ip|: GW_OK, GW_ERR_TOOBIG over the cap. */
static int ipcap_acquire(gw_http_server *srv, const char *ip) {
  if (!srv->opts.max_conns_per_ip)
    return GW_OK;
  ipcap_entry **slot = &srv->ipcap[ip_hash(ip)], *e;
  for (e = *slot; e; e = e->next)
    if (strcmp(e->ip, ip) == 0)
      break;
  if (!e) {
    e = gw_calloc(1, sizeof *e);
    if (!e)
      return GW_ERR_NOMEM;
    snprintf(e->ip, sizeof e->ip, "%s", ip);
    e->next = *slot;
    *slot = e;
  }
  if (e->count >= srv->opts.max_conns_per_ip)
    return GW_ERR_TOOBIG;
  e->count++;
  return GW_OK;
}

static void ipcap_release(gw_http_server *srv, const char *ip) {
  if (!srv->opts.max_conns_per_ip)
    return;
  ipcap_entry **p = &srv->ipcap[ip_hash(ip)];
  for (; *p; p = &(*p)->next) {
    if (strcmp((*p)->ip, ip) == 0) {
      if (--(*p)->count == 0) {
        ipcap_entry *dead = *p;
        *p = dead->next;
        gw_free(dead);
      }
      return;
    }
  }
}

/* --- reaping --------------------------------------------------------------- */

static void reap_cb(gw_later *it) {
  gw_http_server *srv = GW_CONTAINER_OF(it, gw_http_server, reap);
  while (srv->reap_streams) {
    gw_http_stream *s = srv->reap_streams;
    srv->reap_streams = s->reap_next;
    gw_http_stream_free(s);
  }
  while (srv->reap_conns) {
    gw_http_conn *c = srv->reap_conns;
    srv->reap_conns = c->reap_next;
    gw_h2_free(c);
    bufferevent_free(c->bev);
    if (c->rev)
      event_free(c->rev);
    event_free(c->timer.ev);
    gw_free(c);
  }
}

/* Queues |s| for freeing after this loop iteration. */
void gw_http_reap_stream(gw_http_stream *s) {
  s->reap_queued = 1;
  s->reap_next = s->srv->reap_streams;
  s->srv->reap_streams = s;
  gw_later_add(s->srv->later, &s->srv->reap);
}

/* --- connections --------------------------------------------------------- */

/* Closes |c| now: no more I/O; streams the handler holds hear on_close; the
 * memory goes after this loop iteration. Safe inside |c|'s own callbacks. */
void gw_http_conn_close(gw_http_conn *c) {
  gw_http_server *srv = c->srv;
  if (c->dead)
    return;
  GW_LOGD("http", NULL, "closing %s connection from %s", conn_state_to_str(c->state), c->peer_ip);
  c->dead = 1;
  bufferevent_disable(c->bev, EV_READ | EV_WRITE);
  if (c->rev)
    event_del(c->rev);
  gw_lazy_timer_stop(&c->timer);
  gw_later_cancel(srv->later, &c->service);
  while (c->streams) {
    gw_http_stream *s = c->streams;
    c->streams = s->next;
    s->next = s->prev = NULL;
    s->conn = NULL;
    if (!s->peer_gone && s->proto_open) {
      s->peer_gone = 1;
      s->proto_open = 0;
      event_del(s->timer);
      if (s->app_owned && !s->resp_ended && s->on_close) {
        s->on_close(s, s->cb_arg);
        s->app_owned = 0;
      }
    }
    s->proto_open = 0;
    if (!s->app_owned && !s->reap_queued)
      gw_http_reap_stream(s);
  }
  c->h1_cur = NULL;
  c->n_open = 0;
  ipcap_release(srv, c->peer_ip);
  if (c->prev)
    c->prev->next = c->next;
  else
    srv->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  srv->n_conns--;
  c->reap_next = srv->reap_conns;
  srv->reap_conns = c;
  gw_later_add(srv->later, &srv->reap);
}

/* Runs the connection's deferred work on the next loop turn. */
void gw_http_conn_kick(gw_http_conn *c) {
  if (!c->dead) /* a response's head, data and end queue it once */
    gw_later_add(c->srv->later, &c->service);
}

void gw_http_conn_arm_timer(gw_http_conn *c, unsigned ms) { gw_lazy_timer_set(&c->timer, ms); }

void gw_http_conn_close_after_flush(gw_http_conn *c) {
  c->close_after_flush = 1;
  gw_http_conn_kick(c);
}

/* Unread input past which a cleartext HTTP/1.1 connection stops reading
 * (back-pressure on pipelined requests); HTTP/2 has flow control, and a
 * lingering connection discards what it reads. 0: no limit. */
static size_t read_high_water(const gw_http_conn *c) {
  if (c->state == CONN_H2 || c->state == CONN_LINGER)
    return 0;
  return c->srv->opts.max_header_bytes + 64 * 1024;
}

/* Arms or disarms a connection's reads to match its input: on cleartext its
 * read event; over TLS the bufferevent's EV_READ, off while the input is at
 * the high-water mark. libevent runs a bufferevent's read callback again and
 * again while its input stays at that mark with EV_READ on
 * (bufferevent_inbuf_wm_check, after each deferred read callback), and an
 * HTTP/1.1 connection that leaves its input there (answers unread by the
 * client, requests pipelined behind a slow one) spun its worker at 100% CPU
 * (bufferevent_openssl stops reading at the mark anyway). */
static void update_reading(gw_http_conn *c) {
  if (c->dead)
    return;
  size_t high = read_high_water(c);
  int want = !high || evbuffer_get_length(bufferevent_get_input(c->bev)) < high;
  if (c->tls) {
    if (c->state == CONN_HANDSHAKE)
      return;
    int on = (bufferevent_get_enabled(c->bev) & EV_READ) != 0;
    if (want && !on)
      bufferevent_enable(c->bev, EV_READ);
    else if (!want && on)
      bufferevent_disable(c->bev, EV_READ);
    return;
  }
  if (!c->rev)
    return;
  if (want && !c->reading)
    event_add(c->rev, NULL);
  else if (!want && c->reading)
    event_del(c->rev);
  c->reading = want;
}

/* A TLS connection's input drained below the high-water mark while SSL
 * still holds bytes read from the socket: read them (gw_http_tls_read_pending). */
static void tls_read_pending(gw_http_conn *c) {
  if (c->tls && !c->dead && c->state == CONN_H1 &&
      evbuffer_get_length(bufferevent_get_input(c->bev)) < read_high_water(c))
    gw_http_tls_read_pending(c->bev);
}

static void read_cb(struct bufferevent *bev, void *arg);
static void conn_output(gw_http_conn *c);
static void event_cb(struct bufferevent *bev, short what, void *arg);

/* Cleartext reads. A socket bufferevent asks the kernel how much is readable
 * (ioctl FIONREAD) before every read and runs its callback deferred; this
 * reads at once and parses: one syscall less per request. It reads into one
 * buffer per thread and copies what came into the bufferevent's input:
 * reserving 16 KiB in the input itself made a 16 KiB chain per request,
 * malloc'd and freed past the allocator's per-thread cache (unlink_chunk and
 * friends were 7% of the gateway's time at 256 connections). The bufferevent
 * still owns the output. */
static _Thread_local char read_scratch[16384];

static void raw_read_cb(evutil_socket_t fd, short what, void *arg) {
  gw_http_conn *c = arg;
  (void)what;
  if (c->dead)
    return;
  struct evbuffer *in = bufferevent_get_input(c->bev);
  ssize_t n = recv(fd, read_scratch, sizeof read_scratch, 0);
  int err = errno;
  if (n > 0) {
    /* A whole request in an empty input is parsed in the scratch buffer;
     * what it leaves (pipelined bytes) goes into the input as ever. */
    long used = evbuffer_get_length(in) == 0 ? gw_h1_take(c, read_scratch, (size_t)n) : 0;
    if (used < 0) {
      conn_output(c);
      update_reading(c);
      return;
    }
    /* The socket bufferevent keeps its input's end frozen: only its own
     * reads add there, thawing it around them; so does this one. */
    int rc = 0;
    if ((size_t)used < (size_t)n) {
      evbuffer_unfreeze(in, 0);
      rc = evbuffer_add(in, read_scratch + used, (size_t)n - (size_t)used);
      evbuffer_freeze(in, 0);
    }
    if (rc != 0)
      event_cb(c->bev, BEV_EVENT_READING | BEV_EVENT_ERROR, c);
    else
      read_cb(c->bev, c);
  } else if (n == 0) {
    event_cb(c->bev, BEV_EVENT_READING | BEV_EVENT_EOF, c);
  } else if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
    event_cb(c->bev, BEV_EVENT_READING | BEV_EVENT_ERROR, c);
  }
  update_reading(c);
}

/* The output is written: close, lingering on cleartext so that the client
 * reads our error response before a reset can destroy it. */
static void finish_close(gw_http_conn *c) {
  if (c->tls || c->state == CONN_LINGER) {
    gw_http_conn_close(c);
    return;
  }
  c->state = CONN_LINGER;
  shutdown(c->fd, SHUT_WR);
  bufferevent_disable(c->bev, EV_WRITE);
  update_reading(c);
  gw_http_conn_arm_timer(c, GW_HTTP_LINGER_MS);
}

static int output_empty(gw_http_conn *c) {
  return evbuffer_get_length(bufferevent_get_output(c->bev)) == 0;
}

static void drain_streams(gw_http_conn *c) {
  for (gw_http_stream *s = c->streams, *next; s && !c->dead; s = next) {
    next = s->next;
    gw_http_stream_check_drain(s);
  }
}

/* Some output left the buffer: close if that was the last of it, else tell
 * the streams that went above the low-water mark. */
static void after_write(gw_http_conn *c) {
  if (c->dead)
    return;
  if (c->close_after_flush && c->state != CONN_LINGER) {
    if (output_empty(c))
      finish_close(c);
    return;
  }
  if (c->h1_held && c->state == CONN_H1 &&
      evbuffer_get_length(bufferevent_get_output(c->bev)) < c->srv->opts.write_low_water) {
    c->h1_held = 0;
    gw_http_conn_kick(c); /* the pipelined requests that waited */
  }
  drain_streams(c);
}

/* Writes the queued output of a cleartext connection now, the way nginx does:
 * the socket usually takes it all, and then no write event is ever armed (an
 * armed EV_WRITE costs two epoll_ctl and a loop turn per response). Only what
 * the socket refuses (EAGAIN, or an error the bufferevent then reports through
 * event_cb) goes to the bufferevent's write event, which write_cb turns off
 * again once the buffer is empty. TLS connections keep EV_WRITE on: the
 * bufferevent_openssl does its own writes. An HTTP/2 output at or above
 * GW_HTTP_H2_OUT_HIGH means nghttp2 stopped short: the write event's write_cb
 * then asks it for more. Called at the end of the connection's own read and
 * service callbacks, never from inside the handler's calls. */
static void conn_output(gw_http_conn *c) {
  struct evbuffer *out = bufferevent_get_output(c->bev);
  size_t len = evbuffer_get_length(out);
  if (c->dead || c->tls || c->state == CONN_LINGER || !len ||
      (bufferevent_get_enabled(c->bev) & EV_WRITE))
    return;
  if (c->state != CONN_H2 || len < GW_HTTP_H2_OUT_HIGH) {
    /* A socket bufferevent keeps its output's start frozen; its own write
     * callback thaws it around the write the same way. */
    evbuffer_unfreeze(out, 1);
    (void)evbuffer_write(out, c->fd);
    evbuffer_freeze(out, 1);
  }
  if (evbuffer_get_length(out) == 0)
    after_write(c);
  else
    bufferevent_enable(c->bev, EV_WRITE);
}

static void service_cb(gw_later *it) {
  gw_http_conn *c = GW_CONTAINER_OF(it, gw_http_conn, service);
  if (c->dead)
    return;
  if (c->state == CONN_H1)
    gw_h1_on_read(c);
  else if (c->state == CONN_H2)
    gw_h2_flush(c);
  conn_output(c);
  if (!c->dead && c->close_after_flush && c->state != CONN_LINGER && output_empty(c))
    finish_close(c);
  update_reading(c); /* the parser may have taken pipelined input */
  tls_read_pending(c);
}

static void start_protocol(gw_http_conn *c, int h2) {
  if (h2) {
    c->state = CONN_H2;
    if (gw_h2_start(c) != GW_OK) {
      gw_http_conn_close(c);
      return;
    }
    gw_h2_on_read(c);
  } else {
    c->state = CONN_H1;
    gw_h1_start(c);
    gw_h1_on_read(c);
  }
}

static void read_cb(struct bufferevent *bev, void *arg) {
  gw_http_conn *c = arg;
  struct evbuffer *in = bufferevent_get_input(bev);
  if (c->dead)
    return;
  switch (c->state) {
  case CONN_LINGER: evbuffer_drain(in, evbuffer_get_length(in)); return;
  case CONN_HANDSHAKE: return;
  case CONN_DETECT: {
    size_t n = evbuffer_get_length(in);
    size_t m = n < sizeof h2_preface - 1 ? n : sizeof h2_preface - 1;
    unsigned char *p = evbuffer_pullup(in, (ev_ssize_t)m);
    if (!p)
      return;
    if (memcmp(p, h2_preface, m) != 0)
      start_protocol(c, 0);
    else if (m == sizeof h2_preface - 1)
      start_protocol(c, 1);
    break; /* else a partial preface: wait for the rest */
  }
  case CONN_H1: gw_h1_on_read(c); break;
  case CONN_H2: gw_h2_on_read(c); break;
  }
  conn_output(c);
  if (c->tls) /* (raw_read_cb, which called this, does it on cleartext) */
    update_reading(c);
  tls_read_pending(c);
}

static void write_cb(struct bufferevent *bev, void *arg) {
  gw_http_conn *c = arg;
  (void)bev;
  if (c->dead)
    return;
  if (c->state == CONN_H2)
    gw_h2_flush(c);
  if (c->dead)
    return;
  if (!c->tls && output_empty(c))
    bufferevent_disable(c->bev, EV_WRITE); /* written: conn_output writes the next */
  after_write(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg) {
  gw_http_conn *c = arg;
  if (c->dead)
    return;
  if (what & BEV_EVENT_CONNECTED) {
    /* TLS handshake done: ALPN decides the protocol. */
    if (c->state == CONN_HANDSHAKE)
      start_protocol(c, gw_http_tls_alpn_is_h2(bev));
    return;
  }
  if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
    gw_http_conn_close(c);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg) {
  gw_http_conn *c = arg;
  (void)fd;
  (void)what;
  if (c->dead || !gw_lazy_timer_fired(&c->timer))
    return;
  if (c->state == CONN_H2 && !c->close_after_flush) {
    gw_h2_stop(c); /* idle: GOAWAY, then close when flushed */
    gw_http_conn_close_after_flush(c);
    gw_http_conn_arm_timer(c, GW_HTTP_LINGER_MS);
    return;
  }
  gw_http_conn_close(c);
}

/* Sends a fixed 503 on a connection over the per-IP cap and closes it. */
static void reject_over_cap(gw_http_server *srv, int fd) {
  static const char resp[] =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
      "Connection: close\r\nContent-Length: 131\r\n\r\n"
      "{\"error\":{\"message\":\"Too many connections from this address.\","
      "\"type\":\"server_error\",\"param\":null,\"code\":\"too_many_connections\"}}";
  if (!srv->ssl_ctx) {
    ssize_t w = send(fd, resp, sizeof resp - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w;
    shutdown(fd, SHUT_WR);
  }
  close(fd);
}

int gw_http_server_adopt(gw_http_server *srv, int fd, const struct sockaddr *peer,
                         socklen_t peer_len) {
  gw_http_conn *c;
  int one = 1, rc;
  char ip[INET6_ADDRSTRLEN] = "unix";

  if (srv->stopping) {
    close(fd);
    return GW_ERR_STATE;
  }
  if (peer && peer->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, ip, sizeof ip);
  else if (peer && peer->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)peer)->sin6_addr, ip, sizeof ip);
  rc = ipcap_acquire(srv, ip);
  if (rc != GW_OK) {
    GW_LOGW("http", NULL, "connection from %s over the per-IP cap (%u)", ip,
            srv->opts.max_conns_per_ip);
    reject_over_cap(srv, fd);
    return rc;
  }
  evutil_make_socket_nonblocking(fd);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  c = gw_calloc(1, sizeof *c);
  if (!c) {
    rc = GW_ERR_NOMEM;
    goto fail_conn;
  }
  c->srv = srv;
  c->fd = fd;
  snprintf(c->peer_ip, sizeof c->peer_ip, "%s", ip);
  if (peer && peer_len <= sizeof c->peer)
    memcpy(&c->peer, peer, peer_len);
  c->timer.ev = evtimer_new(srv->base, conn_timer_cb, c);
  if (!c->timer.ev) {
    rc = GW_ERR_NOMEM;
    goto fail_timer;
  }
  c->service.run = service_cb;
  if (srv->ssl_ctx) {
    SSL *ssl = SSL_new(srv->ssl_ctx);
    if (!ssl) {
      rc = GW_ERR_NOMEM;
      goto fail_bev;
    }
    c->tls = 1;
    c->state = CONN_HANDSHAKE;
    c->bev = bufferevent_openssl_socket_new(srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                            BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!c->bev) {
      SSL_free(ssl);
      rc = GW_ERR_NOMEM;
      goto fail_bev;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
  } else {
    c->state = CONN_DETECT;
    c->rev = event_new(srv->base, fd, EV_READ | EV_PERSIST, raw_read_cb, c);
    c->bev = c->rev ? bufferevent_socket_new(srv->base, fd,
                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS)
                    : NULL;
    if (!c->bev) {
      if (c->rev)
        event_free(c->rev);
      rc = GW_ERR_NOMEM;
      goto fail_bev;
    }
  }
  bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
  bufferevent_setwatermark(c->bev, EV_WRITE, srv->opts.write_low_water, 0);
  /* Unread pipelined input stops the reads (back-pressure) past this. */
  bufferevent_setwatermark(c->bev, EV_READ, 0, srv->opts.max_header_bytes + 64 * 1024);
  /* Cleartext output is written by conn_output; EV_WRITE (on by default in a
   * new bufferevent) only while the socket refuses some. */
  if (c->tls) {
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
  } else {
    bufferevent_disable(c->bev, EV_READ | EV_WRITE); /* raw_read_cb reads */
    update_reading(c);
  }
  gw_http_conn_arm_timer(c, srv->opts.header_timeout_ms);
  c->next = srv->conns;
  if (srv->conns)
    srv->conns->prev = c;
  srv->conns = c;
  srv->n_conns++;
  return GW_OK;

fail_bev:
  event_free(c->timer.ev);
fail_timer:
  gw_free(c);
fail_conn:
  ipcap_release(srv, ip);
  close(fd);
  return rc;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg) {
  (void)l;
  gw_http_server_adopt(arg, fd, sa, (socklen_t)socklen);
}

static void accept_error_cb(struct evconnlistener *l, void *arg) {
  (void)l;
  (void)arg;
  GW_LOGW("http", NULL, "accept: %s", strerror(errno));
}

/* --- server -------------------------------------------------------------- */

/* Binds and listens on |host|:|port| with SO_REUSEPORT; the fd or -1. */
static int bind_listener(const char *host, uint16_t port) {
  struct addrinfo hints, *res = NULL, *ai;
  char portstr[8];
  int fd = -1, one = 1;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  snprintf(portstr, sizeof portstr, "%u", port);
  if (getaddrinfo(host && *host ? host : NULL, portstr, &hints, &res) != 0)
    return -1;
  for (ai = res; ai; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
      continue;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0)
      break;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  return fd;
}

static void free_strings(gw_http_server *srv) {
  gw_free((void *)srv->opts.host);
  gw_free((void *)srv->opts.cors_allow_headers);
  gw_free((void *)srv->opts.cors_allow_methods);
  if (srv->cors_origins)
    for (size_t i = 0; i < srv->opts.n_cors_origins; i++)
      gw_free((void *)srv->cors_origins[i]);
  gw_free(srv->cors_origins);
  gw_free(srv->cert_file);
  gw_free(srv->key_file);
}

/* Copies the option strings so that |srv| owns them. */
static int copy_options(gw_http_server *srv, const gw_http_options *o) {
  srv->opts = *o;
  srv->opts.host = NULL;
  srv->opts.cors_allow_headers = NULL;
  srv->opts.cors_allow_methods = NULL;
  srv->opts.cors_origins = NULL;
  srv->opts.tls_cert_file = srv->opts.tls_key_file = NULL;
  size_t n = o->n_cors_origins;
  srv->opts.n_cors_origins = 0;
  if ((o->host && !(srv->opts.host = gw_strdup(o->host))) ||
      (o->cors_allow_headers &&
       !(srv->opts.cors_allow_headers = gw_strdup(o->cors_allow_headers))) ||
      (o->cors_allow_methods && !(srv->opts.cors_allow_methods = gw_strdup(o->cors_allow_methods))))
    return GW_ERR_NOMEM;
  if (n) {
    srv->cors_origins = gw_calloc(n, sizeof *srv->cors_origins);
    if (!srv->cors_origins)
      return GW_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
      if (!(srv->cors_origins[i] = gw_strdup(o->cors_origins[i])))
        return GW_ERR_NOMEM;
      srv->opts.n_cors_origins = i + 1;
    }
    srv->opts.cors_origins = srv->cors_origins;
  }
  if (o->tls_cert_file && o->tls_key_file) {
    if (!(srv->cert_file = gw_strdup(o->tls_cert_file)) ||
        !(srv->key_file = gw_strdup(o->tls_key_file)))
      return GW_ERR_NOMEM;
    srv->opts.tls_cert_file = srv->cert_file;
    srv->opts.tls_key_file = srv->key_file;
  }
  if (!srv->opts.max_header_bytes || !srv->opts.max_headers || !srv->opts.write_low_water)
    return GW_ERR_INVALID;
  return GW_OK;
}

int gw_http_server_new(struct event_base *base, const gw_http_options *opts,
                       gw_http_handler handler, void *arg, gw_http_server **out) {
  gw_http_server *srv;
  int rc, fd = -1;

  *out = NULL;
  srv = gw_calloc(1, sizeof *srv);
  if (!srv) {
    if (opts->listen_fd >= 0)
      close(opts->listen_fd);
    return GW_ERR_NOMEM;
  }
  srv->base = base;
  srv->handler = handler;
  srv->handler_arg = arg;
  if (getrandom(&srv->rid_prefix, sizeof srv->rid_prefix, 0) != sizeof srv->rid_prefix)
    srv->rid_prefix = (uint64_t)getpid() * 2654435761u ^ (uint64_t)(uintptr_t)srv;
  gw_numtext_hex(srv->rid_prefix, 16, srv->rid_prefix_hex);
  rc = copy_options(srv, opts);
  if (rc != GW_OK)
    goto fail_opts;
  if (srv->cert_file) {
    rc = gw_http_tls_ctx_new(srv->cert_file, srv->key_file, &srv->ssl_ctx);
    if (rc != GW_OK)
      goto fail_opts;
  }
  srv->reap.run = reap_cb;
  srv->later = opts->later;
  if (!srv->later) {
    srv->later = gw_later_q_new(base);
    srv->own_later = 1;
  }
  if (!srv->later) {
    rc = GW_ERR_NOMEM;
    goto fail_reap;
  }
  fd = opts->listen_fd >= 0 ? opts->listen_fd : bind_listener(srv->opts.host, opts->port);
  if (fd < 0) {
    GW_LOGE("http", NULL, "cannot listen on %s:%u: %s", opts->host ? opts->host : "*", opts->port,
            strerror(errno));
    rc = GW_ERR_IO;
    goto fail_bind;
  }
  evutil_make_socket_nonblocking(fd);
  srv->listener = evconnlistener_new(base, accept_cb, srv, LEV_OPT_CLOSE_ON_FREE, -1, fd);
  if (!srv->listener) {
    close(fd);
    rc = GW_ERR_NOMEM;
    goto fail_bind;
  }
  evconnlistener_set_error_cb(srv->listener, accept_error_cb);
  {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
      srv->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
  }
  *out = srv;
  return GW_OK;

fail_bind:
  if (srv->own_later)
    gw_later_q_free(srv->later);
fail_reap:
  if (srv->ssl_ctx)
    SSL_CTX_free(srv->ssl_ctx);
fail_opts:
  if (opts->listen_fd >= 0 && fd < 0)
    close(opts->listen_fd);
  free_strings(srv);
  gw_free(srv);
  return rc;
}

void gw_http_server_free(gw_http_server *srv) {
  if (!srv)
    return;
  if (srv->listener)
    evconnlistener_free(srv->listener);
  srv->listener = NULL;
  while (srv->conns)
    gw_http_conn_close(srv->conns);
  reap_cb(&srv->reap);
  /* A worker's queue outlives the server: nothing of it may stay queued. */
  gw_later_cancel(srv->later, &srv->reap);
  if (srv->own_later)
    gw_later_q_free(srv->later);
  for (size_t i = 0; i < GW_HTTP_IPCAP_BUCKETS; i++)
    while (srv->ipcap[i]) {
      ipcap_entry *e = srv->ipcap[i];
      srv->ipcap[i] = e->next;
      gw_free(e);
    }
  if (srv->ssl_ctx)
    SSL_CTX_free(srv->ssl_ctx);
  free_strings(srv);
  gw_free(srv);
}

uint16_t gw_http_server_port(const gw_http_server *srv) { return srv->port; }

size_t gw_http_server_connections(const gw_http_server *srv) { return srv->n_conns; }

void gw_http_server_stop_accepting(gw_http_server *srv) {
  if (srv->stopping)
    return;
  srv->stopping = 1;
  if (srv->listener)
    evconnlistener_free(srv->listener);
  srv->listener = NULL;
  for (gw_http_conn *c = srv->conns, *next; c; c = next) {
    next = c->next;
    c->stopping = 1;
    if (c->state == CONN_H2) {
      gw_h2_stop(c);
      gw_http_conn_kick(c);
    } else if (c->state == CONN_H1) {
      gw_h1_stop(c);
    } else if (c->state == CONN_DETECT) {
      gw_http_conn_close(c);
    }
  }
}

int gw_http_server_reload_tls(gw_http_server *srv, const char *cert_file, const char *key_file) {
  SSL_CTX *ctx;
  if (!srv->ssl_ctx)
    return GW_ERR_STATE;
  int rc = gw_http_tls_ctx_new(cert_file ? cert_file : srv->cert_file,
                               key_file ? key_file : srv->key_file, &ctx);
  if (rc != GW_OK)
    return rc;
  /* Live connections hold their own reference to the old context. */
  SSL_CTX_free(srv->ssl_ctx);
  srv->ssl_ctx = ctx;
  GW_LOGI("http", NULL, "TLS certificate reloaded");
  return GW_OK;
}
