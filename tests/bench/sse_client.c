/* Streaming (SSE) load client for the benchmarks (plain epoll, one thread).
 *
 *   sse_client HOST PORT PATH CONNS SECONDS [ONCE]
 *   env SSE_PORTKEY_HOST: adds Portkey's routing headers for that upstream URL
 *       SSE_MODEL (gpt-4o-mini): the mock paces streams of model delay-<µs>
 *
 * Each of CONNS keep-alive connections POSTs a `"stream":true` chat request,
 * reads the SSE answer to `data: [DONE]` and the chunked terminator, and
 * starts the next one, for SECONDS (ONCE=1: one stream per connection, all
 * open at the same time, until every one ends or SECONDS pass: the
 * many-open-streams scenario). Measures:
 *   ttfb   request written -> first `data:` event read
 *   relay  event read - the CLOCK_MONOTONIC stamp the mock put in its id
 *          ("chatcmpl-<ns>"), i.e. the one-way delay of every event through
 *          whatever sits between the mock and this client
 * and prints one line: `streams= events= errors= dropped= ev_per_s= ttfb_p50_us=
 * ttfb_p99_us= relay_p50_us= relay_p99_us=`. It also prints `all-open` on stderr
 * once every connection of a ONCE run has its first event. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct conn {
  int fd;
  int state; /* 0 idle, 1 waiting first event, 2 streaming, 3 after [DONE], 4 finished */
  uint64_t sent_ns;
  size_t len;
  char buf[16384];
} conn;

typedef struct {
  uint64_t *v;
  size_t n, cap;
} samples;

static samples ttfb, relay;
static long n_streams, n_events, n_errors;
static char req[4096];
static size_t req_len;
static struct sockaddr_in addr;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void add(samples *s, uint64_t v) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 4096;
    s->v = realloc(s->v, s->cap * sizeof(*s->v));
  }
  s->v[s->n++] = v;
}

static int cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static double pct(samples *s, double p) {
  if (!s->n)
    return 0;
  size_t i = (size_t)(p * (double)(s->n - 1) + 0.5);
  return (double)s->v[i] / 1000.0;
}

static int open_conn(int ep, conn *c) {
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  if (c->fd < 0)
    return -1;
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    close(c->fd);
    c->fd = -1;
    return -1;
  }
  struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e);
  return 0;
}

static int send_req(conn *c) {
  c->sent_ns = now_ns();
  c->state = 1;
  c->len = 0;
  return write(c->fd, req, req_len) == (ssize_t)req_len ? 0 : -1;
}

/* Processes the complete lines in c->buf; returns 1 when the response ended. */
static int lines(conn *c) {
  char *p = c->buf, *end = c->buf + c->len;
  int ended = 0;
  for (;;) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl)
      break;
    size_t n = (size_t)(nl - p);
    if (n >= 5 && memcmp(p, "data:", 5) == 0) {
      uint64_t t = now_ns();
      if (c->state == 1) {
        add(&ttfb, t - c->sent_ns);
        c->state = 2;
      }
      if (memmem(p, n, "[DONE]", 6)) {
        c->state = 3;
      } else {
        char *id = memmem(p, n, "chatcmpl-", 9);
        if (id) {
          uint64_t stamp = strtoull(id + 9, NULL, 10);
          if (stamp && stamp <= t)
            add(&relay, t - stamp);
        }
        n_events++;
      }
    } else if (c->state == 3 && n <= 2 && p[0] == '0') {
      c->state = 5; /* the last chunk; its blank line follows */
    } else if (c->state == 5 && (n == 0 || (n == 1 && p[0] == '\r'))) {
      ended = 1;
      p = nl + 1;
      break;
    } else if (n >= 12 && memcmp(p, "HTTP/1.1 ", 9) == 0 && memcmp(p + 9, "200", 3) != 0) {
      n_errors++;
    }
    p = nl + 1;
  }
  size_t left = (size_t)(end - p);
  memmove(c->buf, p, left);
  c->len = left;
  return ended;
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: sse_client HOST PORT PATH CONNS SECONDS [ONCE]\n");
    return 2;
  }
  int conns = atoi(argv[4]);
  double secs = atof(argv[5]);
  int once = argc > 6 && atoi(argv[6]);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)atoi(argv[2]));
  inet_pton(AF_INET, argv[1], &addr.sin_addr);
  const char *model = getenv("SSE_MODEL") ? getenv("SSE_MODEL") : "gpt-4o-mini";
  char body[1024];
  snprintf(body, sizeof body,
           "{\"model\":\"%s\",\"messages\":[{\"role\":\"system\",\"content\":"
           "\"You are a helpful assistant.\"},{\"role\":\"user\",\"content\":\"Say "
           "hello in one short sentence.\"}],\"max_tokens\":64,\"stream\":true}",
           model);
  const char *pk = getenv("SSE_PORTKEY_HOST");
  char extra[512] = "";
  if (pk && *pk)
    snprintf(extra, sizeof extra, "x-portkey-provider: openai\r\nx-portkey-custom-host: %s\r\n",
             pk);
  req_len = (size_t)snprintf(req, sizeof req,
                             "POST %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: "
                             "application/json\r\nAuthorization: Bearer sk-mock\r\n%s"
                             "Content-Length: %zu\r\n\r\n%s",
                             argv[3], argv[1], argv[2], extra, strlen(body), body);
  int ep = epoll_create1(0);
  conn *cs = calloc((size_t)conns, sizeof *cs);
  long dropped = 0;
  int open_n = 0;
  for (int i = 0; i < conns; i++) {
    if (open_conn(ep, &cs[i]) != 0 || send_req(&cs[i]) != 0) {
      n_errors++;
      cs[i].state = 4;
      continue;
    }
    open_n++;
  }
  uint64_t t0 = now_ns(), stop = t0 + (uint64_t)(secs * 1e9);
  int active = open_n, announced = 0;
  struct epoll_event evs[512];
  while (active > 0) {
    uint64_t t = now_ns();
    if (t >= stop)
      break;
    int n = epoll_wait(ep, evs, 512, (int)((stop - t) / 1000000) + 1);
    for (int i = 0; i < n; i++) {
      conn *c = evs[i].data.ptr;
      if (c->state == 4)
        continue;
      ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len - 1);
      if (r <= 0) {
        if (r < 0 && errno == EINTR)
          continue;
        n_errors++;
        c->state = 4;
        active--;
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        continue;
      }
      c->len += (size_t)r;
      if (lines(c)) {
        n_streams++;
        if (once || now_ns() >= stop) {
          c->state = 4;
          active--;
        } else if (send_req(c) != 0) {
          n_errors++;
          c->state = 4;
          active--;
        }
      } else if (c->len == sizeof c->buf - 1) {
        c->len = 0; /* an over-long line: drop it */
      }
    }
    if (once && !announced && (long)ttfb.n >= open_n) {
      announced = 1;
      fprintf(stderr, "all-open %.3f s\n", (double)(now_ns() - t0) / 1e9);
    }
  }
  double el = (double)(now_ns() - t0) / 1e9;
  for (int i = 0; i < conns; i++) {
    if (cs[i].fd > 0)
      close(cs[i].fd);
  }
  if (once)
    dropped = conns - n_streams;
  qsort(ttfb.v, ttfb.n, sizeof(uint64_t), cmp);
  qsort(relay.v, relay.n, sizeof(uint64_t), cmp);
  printf("streams=%ld events=%ld errors=%ld dropped=%ld ev_per_s=%.0f ttfb_p50_us=%.1f "
         "ttfb_p99_us=%.1f relay_p50_us=%.1f relay_p99_us=%.1f\n",
         n_streams, n_events, n_errors, dropped, (double)n_events / el, pct(&ttfb, 0.5),
         pct(&ttfb, 0.99), pct(&relay, 0.5), pct(&relay, 0.99));
  return 0;
}
