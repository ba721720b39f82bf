/* Worker threads and the completion-queue bridge. */
#include "engine/worker.h"

#include <event2/thread.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/status.h"

static _Thread_local gw_worker *current_worker;

gw_worker *gw_worker_current(void) { return current_worker; }

/* Runs on the worker: takes the whole hand-off queue and fires each tag. */
static void on_wake(evutil_socket_t fd, short what, void *arg) {
  gw_worker *w = arg;
  for (;;) {
    pthread_mutex_lock(&w->mu);
    struct gw_completion *batch = w->pending;
    size_t n = w->n_pending;
    bool done = w->cq_done;
    w->pending = NULL;
    w->n_pending = w->cap_pending = 0;
    pthread_mutex_unlock(&w->mu);
    for (size_t i = 0; i < n; i++)
      batch[i].tag->cb(batch[i].tag, batch[i].ok);
    gw_free(batch);
    if (n == 0) {
      if (done)
        event_base_loopbreak(w->base);
      return;
    }
  }
}

static int push(gw_worker *w, gw_tag *tag, bool ok) {
  pthread_mutex_lock(&w->mu);
  if (w->n_pending == w->cap_pending) {
    size_t cap = w->cap_pending ? w->cap_pending * 2 : 64;
    struct gw_completion *p = gw_realloc(w->pending, cap * sizeof(*p));
    if (!p) {
      pthread_mutex_unlock(&w->mu);
      return GW_ERR_NOMEM;
    }
    w->pending = p;
    w->cap_pending = cap;
  }
  bool was_empty = w->n_pending == 0;
  w->pending[w->n_pending++] = (struct gw_completion){tag, ok};
  pthread_mutex_unlock(&w->mu);
  if (was_empty)
    event_active(w->wake, EV_READ, 0);
  return GW_OK;
}

static void *cq_main(void *arg) {
  gw_worker *w = arg;
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN)
      break;
    if (ev.type != GRPC_OP_COMPLETE)
      continue;
    /* Out of memory here would lose a completion and leak its call: retry
     * until the worker frees something. */
    while (push(w, ev.tag, ev.success != 0) != GW_OK)
      sched_yield();
  }
  pthread_mutex_lock(&w->mu);
  w->cq_done = true;
  pthread_mutex_unlock(&w->mu);
  event_active(w->wake, EV_READ, 0);
  return NULL;
}

static void *worker_main(void *arg) {
  gw_worker *w = arg;
  current_worker = w;
  event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
  return NULL;
}

int gw_worker_init(gw_worker *w, int id) {
  memset(w, 0, sizeof(*w));
  w->id = id;
  pthread_mutex_init(&w->mu, NULL);
  w->base = event_base_new();
  if (!w->base)
    goto fail;
  w->wake = event_new(w->base, -1, 0, on_wake, w);
  if (!w->wake)
    goto fail;
  w->cq = grpc_completion_queue_create_for_next(NULL);
  if (!w->cq)
    goto fail;
  return GW_OK;
fail:
  gw_worker_release(w);
  return GW_ERR_NOMEM;
}

int gw_worker_start(gw_worker *w) {
  if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
    return GW_ERR_IO;
  w->thread_started = true;
  if (pthread_create(&w->cq_thread, NULL, cq_main, w) != 0)
    return GW_ERR_IO;
  w->cq_thread_started = true;
  return GW_OK;
}

void gw_worker_join(gw_worker *w) {
  if (w->cq)
    grpc_completion_queue_shutdown(w->cq);
  if (w->cq_thread_started)
    pthread_join(w->cq_thread, NULL);
  w->cq_thread_started = false;
  if (w->thread_started)
    pthread_join(w->thread, NULL);
  w->thread_started = false;
}

void gw_worker_release(gw_worker *w) {
  if (w->cq)
    grpc_completion_queue_destroy(w->cq);
  if (w->wake)
    event_free(w->wake);
  if (w->base)
    event_base_free(w->base);
  gw_free(w->pending);
  pthread_mutex_destroy(&w->mu);
  memset(w, 0, sizeof(*w));
}
