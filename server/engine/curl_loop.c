/* libcurl multi-socket ⇄ libevent glue, one loop per worker. */
#include "engine/curl_loop.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/status.h"
#include "engine/worker.h"

/* A socket curl asked us to watch. */
typedef struct sockinfo {
  gw_curl_loop *loop;
  curl_socket_t fd;
  struct event *ev;
  struct sockinfo *prev, *next;
} sockinfo;

struct gw_curl_loop {
  struct event_base *base;
  CURLM *multi;
  struct event *timer;
  struct event *reap_ev; /* runs |reaps| on the next loop iteration */
  gw_curl_xfer *reaps;
  sockinfo *socks;
  int depth;             /* > 0 while a curl call of ours runs */
  gw_curl_xfer *cancels; /* cancelled inside curl: removed after it returns */
  gw_curl_xfer **open;   /* every transfer added and not yet done */
  size_t n_open, cap_open;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void) { global_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

int gw_curl_global_init(void) {
  pthread_once(&global_once, global_init);
  return global_rc == CURLE_OK ? GW_OK : GW_ERR_IO;
}

void gw_curl_trust_env(CURL *e) {
  const char *file = getenv("SSL_CERT_FILE"), *dir = getenv("SSL_CERT_DIR");
  if (file && *file)
    curl_easy_setopt(e, CURLOPT_CAINFO, file);
  if (dir && *dir)
    curl_easy_setopt(e, CURLOPT_CAPATH, dir);
}

/* ---- the set of open transfers --------------------------------------------- */

static int open_add(gw_curl_loop *l, gw_curl_xfer *x) {
  if (l->n_open == l->cap_open) {
    size_t cap = l->cap_open ? l->cap_open * 2 : 16;
    gw_curl_xfer **p = gw_realloc(l->open, cap * sizeof(*p));
    if (!p)
      return GW_ERR_NOMEM;
    l->open = p;
    l->cap_open = cap;
  }
  l->open[l->n_open++] = x;
  return GW_OK;
}

static void open_del(gw_curl_loop *l, gw_curl_xfer *x) {
  for (size_t i = 0; i < l->n_open; i++)
    if (l->open[i] == x) {
      l->open[i] = l->open[--l->n_open];
      return;
    }
}

static void unlink_cancel(gw_curl_loop *l, gw_curl_xfer *x) {
  for (gw_curl_xfer **pp = &l->cancels; *pp; pp = &(*pp)->next_cancel)
    if (*pp == x) {
      *pp = x->next_cancel;
      x->next_cancel = NULL;
      return;
    }
}

/* Removes |x| from the multi and runs its |done|. Outside curl only. */
static void complete(gw_curl_loop *l, gw_curl_xfer *x, CURLcode result) {
  if (x->cancel_pending)
    unlink_cancel(l, x);
  x->cancel_pending = false;
  x->added = false;
  curl_multi_remove_handle(l->multi, x->easy);
  open_del(l, x);
  x->done(x, result); /* may free |x| */
}

/* Runs after every curl call of ours: finished transfers, then cancels that
 * were asked for while curl was running. */
static void after_curl(gw_curl_loop *l) {
  if (l->depth > 0)
    return;
  for (;;) {
    int left = 0;
    CURLMsg *m = curl_multi_info_read(l->multi, &left);
    if (!m)
      break;
    if (m->msg != CURLMSG_DONE)
      continue;
    CURL *easy = m->easy_handle;
    CURLcode result = m->data.result;
    gw_curl_xfer *x = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    if (x && x->added)
      complete(l, x, x->cancel_pending ? CURLE_ABORTED_BY_CALLBACK : result);
  }
  while (l->cancels) {
    gw_curl_xfer *x = l->cancels;
    complete(l, x, CURLE_ABORTED_BY_CALLBACK);
  }
}

/* ---- curl → libevent --------------------------------------------------------- */

static void on_socket_event(evutil_socket_t fd, short what, void *arg) {
  sockinfo *s = arg;
  gw_curl_loop *l = s->loop; /* |s| may be freed inside socket_action */
  int action =
      ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
  int running = 0;
  l->depth++;
  curl_multi_socket_action(l->multi, fd, action, &running);
  l->depth--;
  after_curl(l);
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
  gw_curl_loop *l = arg;
  int running = 0;
  l->depth++;
  curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  l->depth--;
  after_curl(l);
}

static void sock_free(gw_curl_loop *l, sockinfo *s) {
  if (s->prev)
    s->prev->next = s->next;
  else
    l->socks = s->next;
  if (s->next)
    s->next->prev = s->prev;
  event_free(s->ev);
  gw_free(s);
}

/* CURLMOPT_SOCKETFUNCTION: watch |fd| for |what|. */
static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
  gw_curl_loop *l = userp;
  sockinfo *s = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (s) {
      curl_multi_assign(l->multi, fd, NULL);
      sock_free(l, s);
    }
    return 0;
  }
  if (!s) {
    s = gw_calloc(1, sizeof(*s));
    if (!s)
      return -1;
    s->ev = event_new(l->base, -1, 0, NULL, NULL);
    if (!s->ev) {
      gw_free(s);
      return -1;
    }
    s->loop = l;
    s->fd = fd;
    s->next = l->socks;
    if (l->socks)
      l->socks->prev = s;
    l->socks = s;
    curl_multi_assign(l->multi, fd, s);
  } else {
    event_del(s->ev);
  }
  short kind =
      EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
  event_assign(s->ev, l->base, fd, kind, on_socket_event, s);
  if (event_add(s->ev, NULL) != 0)
    return -1;
  return 0;
}

/* CURLMOPT_TIMERFUNCTION: one timer per multi; -1 deletes it. */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp) {
  gw_curl_loop *l = userp;
  if (timeout_ms < 0) {
    evtimer_del(l->timer);
    return 0;
  }
  struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  return evtimer_add(l->timer, &tv) == 0 ? 0 : -1;
}

/* ---- deferred reaping ------------------------------------------------------------ */

static void run_reaps(gw_curl_loop *l) {
  while (l->reaps) {
    gw_curl_xfer *x = l->reaps;
    l->reaps = x->next_reap;
    x->next_reap = NULL;
    x->reap(x); /* may free |x| */
  }
}

static void on_reap(evutil_socket_t fd, short what, void *arg) { run_reaps(arg); }

void gw_curl_loop_reap_later(gw_curl_xfer *x, void (*fn)(gw_curl_xfer *x)) {
  gw_curl_loop *l = x->loop;
  x->reap = fn;
  x->next_reap = l->reaps;
  if (!l->reaps)
    event_active(l->reap_ev, EV_TIMEOUT, 0);
  l->reaps = x;
}

/* ---- the loop ------------------------------------------------------------------ */

int gw_curl_loop_new(struct event_base *base, gw_curl_loop **out) {
  if (gw_curl_global_init() != GW_OK)
    return GW_ERR_IO;
  gw_curl_loop *l = gw_calloc(1, sizeof(*l));
  if (!l)
    return GW_ERR_NOMEM;
  l->base = base;
  l->timer = evtimer_new(base, on_timer, l);
  if (!l->timer)
    goto fail_timer;
  l->reap_ev = event_new(base, -1, 0, on_reap, l);
  if (!l->reap_ev)
    goto fail_reap;
  l->multi = curl_multi_init();
  if (!l->multi)
    goto fail_multi;
  curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
  curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
  curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
  curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
  /* Keep-alive pool per worker; HTTP/2 streams multiplexed on one
   * connection where the upstream offers it; more than this many
   * connections to one host queue instead of opening without end. */
  curl_multi_setopt(l->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  /* No cap on connections per upstream host: an HTTP/1.1 stream holds its
   * connection for its whole life, and a cap here made the calls past it
   * wait in curl's queue until their connect timeout (10,000 open streams
   * failed with 256). Per-deployment concurrency caps belong to routing. */
  curl_multi_setopt(l->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
  /* Idle keep-alive connections kept per worker: no count cap (0: curl
   * prunes its cache only above a positive limit), so the cache holds what
   * the busiest moment opened. A fixed 512 closed a connection and opened
   * another for most requests once more than 512 ran at once (at 1,024
   * client connections: 16K connects in 3 s); against an https upstream
   * each is a TLS handshake. A cached connection unused for
   * CURLOPT_MAXAGE_CONN (118 s) is closed when curl next prunes its cache
   * (at most once a second, as transfers start). */
  curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, 0L);
  *out = l;
  return GW_OK;

fail_multi:
  event_free(l->reap_ev);
fail_reap:
  event_free(l->timer);
fail_timer:
  gw_free(l);
  return GW_ERR_NOMEM;
}

void gw_curl_loop_free(gw_curl_loop *l) {
  if (!l)
    return;
  while (l->n_open > 0)
    complete(l, l->open[l->n_open - 1], CURLE_ABORTED_BY_CALLBACK);
  run_reaps(l);
  /* The pooled connections close in cleanup; our socket records go with
   * them, without more callbacks. */
  curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, NULL);
  curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, NULL);
  curl_multi_cleanup(l->multi);
  while (l->socks)
    sock_free(l, l->socks);
  event_free(l->timer);
  event_free(l->reap_ev);
  gw_free(l->open);
  gw_free(l);
}

int gw_curl_loop_add(gw_curl_loop *l, gw_curl_xfer *x) {
  if (open_add(l, x) != GW_OK)
    return GW_ERR_NOMEM;
  x->loop = l;
  x->next_cancel = NULL;
  x->cancel_pending = false;
  curl_easy_setopt(x->easy, CURLOPT_PRIVATE, (char *)x);
  if (curl_multi_add_handle(l->multi, x->easy) != CURLM_OK) {
    open_del(l, x);
    return GW_ERR_IO;
  }
  x->added = true;
  return GW_OK;
}

void gw_curl_loop_cancel(gw_curl_xfer *x) {
  gw_curl_loop *l = x->loop;
  if (!x->added || x->cancel_pending)
    return;
  if (l->depth > 0) {
    x->cancel_pending = true;
    x->next_cancel = l->cancels;
    l->cancels = x;
    return;
  }
  complete(l, x, CURLE_ABORTED_BY_CALLBACK);
}

void gw_curl_loop_unpause(gw_curl_xfer *x) {
  gw_curl_loop *l = x->loop;
  if (!x->added || x->cancel_pending)
    return;
  l->depth++;
  curl_easy_pause(x->easy, CURLPAUSE_CONT);
  l->depth--;
  after_curl(l);
}

/* ---- per-worker side table --------------------------------------------------- */

static gw_curl_loop **loops;
static int n_loops;

int gw_curl_loops_init(gw_worker *workers, int n) {
  loops = gw_calloc((size_t)(n > 0 ? n : 1), sizeof(*loops));
  if (!loops)
    return GW_ERR_NOMEM;
  n_loops = n;
  for (int i = 0; i < n; i++) {
    int id = workers[i].id;
    if (id < 0 || id >= n || loops[id]) {
      gw_curl_loops_free();
      return GW_ERR_INVALID;
    }
    int rc = gw_curl_loop_new(workers[i].base, &loops[id]);
    if (rc != GW_OK) {
      gw_curl_loops_free();
      return rc;
    }
  }
  return GW_OK;
}

gw_curl_loop *gw_curl_loop_of(const gw_worker *w) {
  if (!w || !loops || w->id < 0 || w->id >= n_loops)
    return NULL;
  return loops[w->id];
}

void gw_curl_loops_free(void) {
  if (!loops)
    return;
  for (int i = 0; i < n_loops; i++)
    gw_curl_loop_free(loops[i]);
  gw_free(loops);
  loops = NULL;
  n_loops = 0;
}
