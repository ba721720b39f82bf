/* Worker threads and the completion-queue bridge. */
#include "engine/worker.h"

#include <errno.h>
#include <event2/thread.h>
#include <sched.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "core/log.h"
#include "core/status.h"

/* Completions one wake-up runs before the worker lets its other events in. */
#define DRAIN_MAX 256
/* Completions the completion-queue thread gathers before waking the worker,
 * and that the worker takes from the queue itself in one turn. */
#define BURST_MAX 64

static _Thread_local gw_worker *current_worker;

gw_worker *gw_worker_current(void) { return current_worker; }

/* ---- the hand-off queue (Vyukov's intrusive MPSC) ----------------------------- */

static void q_init(gw_worker *w) {
  atomic_store_explicit(&w->q_stub.next, NULL, memory_order_relaxed);
  atomic_store_explicit(&w->q_head, &w->q_stub, memory_order_relaxed);
  w->q_tail = &w->q_stub;
}

/* Any thread. Lock-free: one exchange and one store. */
static void q_push(gw_worker *w, gw_tag *t) {
  atomic_store_explicit(&t->next, NULL, memory_order_relaxed);
  gw_tag *prev = atomic_exchange_explicit(&w->q_head, t, memory_order_acq_rel);
  atomic_store_explicit(&prev->next, t, memory_order_release);
}

/* The worker only. NULL when empty, or when a producer is between its two
 * steps: that producer then still arms the wake-up (see wake()), so the
 * worker comes back for it. */
static gw_tag *q_pop(gw_worker *w) {
  gw_tag *tail = w->q_tail;
  gw_tag *next = atomic_load_explicit(&tail->next, memory_order_acquire);
  if (tail == &w->q_stub) {
    if (!next)
      return NULL;
    w->q_tail = next;
    tail = next;
    next = atomic_load_explicit(&tail->next, memory_order_acquire);
  }
  if (next) {
    w->q_tail = next;
    return tail;
  }
  if (tail != atomic_load_explicit(&w->q_head, memory_order_acquire))
    return NULL;
  q_push(w, &w->q_stub);
  next = atomic_load_explicit(&tail->next, memory_order_acquire);
  if (next) {
    w->q_tail = next;
    return tail;
  }
  return NULL;
}

/* From another thread: makes the worker's eventfd readable. */
static void ring(gw_worker *w) {
  uint64_t one = 1;
  while (write(w->wake_fd, &one, sizeof one) < 0 && errno == EINTR)
    ; /* EAGAIN: the counter is full, so it is readable anyway */
}

/* After pushing: wakes the worker unless a wake-up is already on its way. */
static void wake(gw_worker *w) {
  if (!atomic_exchange(&w->wake_armed, true))
    ring(w);
}

void gw_worker_hand_off(gw_worker *w, gw_tag *tag, bool ok) {
  tag->ok = ok;
  q_push(w, tag);
  wake(w);
}

void gw_worker_run(gw_worker *w, gw_tag *tag) {
  tag->on_cq_thread = false;
  gw_worker_hand_off(w, tag, true);
}

/* Comes back to on_wake after the loop's other events (libevent runs active
 * events after a non-blocking look at its descriptors). On the worker's own
 * thread, so no eventfd: EV_TIMEOUT tells on_wake there is nothing to read. */
static void come_back(gw_worker *w) {
  atomic_store(&w->wake_armed, true);
  event_active(w->wake, EV_TIMEOUT, 0);
}

/* The worker holds the polling: takes up to BURST_MAX completions from the
 * queue without blocking. True when it found any (the worker keeps the
 * polling and comes back); false when it has given the polling back. */
static bool poll_cq(gw_worker *w) {
  int n = 0;
  for (; n < BURST_MAX; n++) {
    grpc_event ev = grpc_completion_queue_next(w->cq, gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL);
    if (ev.type != GRPC_OP_COMPLETE)
      break; /* nothing ready, or shut down: the thread sees that too */
    gw_tag *t = ev.tag;
    t->cb(t, ev.success != 0);
  }
  if (n > 0)
    return true;
  atomic_store(&w->worker_polls, false);
  sem_post(&w->park);
  return false;
}

/* Runs on the worker: fires the tags handed over, up to DRAIN_MAX at a time,
 * then, while it holds the polling, what the completion queue has ready. */
static void on_wake(evutil_socket_t fd, short what, void *arg) {
  gw_worker *w = arg;
  if (what & EV_READ) { /* rung: empty the counter, or epoll keeps reporting it */
    uint64_t n;
    while (read(w->wake_fd, &n, sizeof n) < 0 && errno == EINTR)
      ;
  }
  /* Disarm first: whatever is pushed from now on wakes the worker again. */
  atomic_store(&w->wake_armed, false);
  for (int n = 0; n < DRAIN_MAX; n++) {
    gw_tag *t = q_pop(w);
    if (!t) {
      if (atomic_load(&w->cq_done)) {
        /* Every push happened before |cq_done| was set: nothing is half
         * linked any more, so this drains all that is left. */
        while ((t = q_pop(w)))
          t->cb(t, t->ok);
        event_base_loopbreak(w->base);
        return;
      }
      if (atomic_load(&w->worker_polls) && poll_cq(w))
        come_back(w);
      return;
    }
    t->cb(t, t->ok);
  }
  come_back(w); /* more left */
}

/* The completion-queue thread: blocks for one completion, gathers what else is
 * ready without blocking, runs the tags marked |on_cq_thread| and hands the
 * others to the worker with one wake-up for the lot, and the polling with
 * them: it then waits until the worker has run out of work. */
static void *cq_main(void *arg) {
  gw_worker *w = arg;
  bool shutdown = false;
  while (!shutdown) {
    gpr_timespec until = gpr_inf_future(GPR_CLOCK_MONOTONIC);
    bool pushed = false;
    for (int n = 0; n < BURST_MAX; n++) {
      grpc_event ev = grpc_completion_queue_next(w->cq, until, NULL);
      if (ev.type == GRPC_QUEUE_SHUTDOWN) {
        shutdown = true;
        break;
      }
      if (ev.type == GRPC_QUEUE_TIMEOUT)
        break;
      until = gpr_inf_past(GPR_CLOCK_MONOTONIC);
      gw_tag *t = ev.tag;
      if (t->on_cq_thread) {
        t->cb(t, ev.success != 0);
        continue;
      }
      t->ok = ev.success != 0;
      q_push(w, t);
      pushed = true;
    }
    if (pushed && !shutdown) {
      atomic_store(&w->worker_polls, true);
      wake(w);
      while (sem_wait(&w->park) != 0)
        ; /* EINTR */
    } else if (pushed) {
      wake(w);
    }
  }
  atomic_store(&w->cq_done, true);
  atomic_store(&w->wake_armed, true);
  ring(w);
  return NULL;
}

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Busy polling (BUSY_POLL_US): sleep until something happens, then keep
 * looking without sleeping for |busy_poll_ns|. A worker that sleeps is woken
 * by the kernel when a packet comes, which on a virtual machine costs a
 * cross-CPU interrupt and a vCPU exit per hop; one that polls sees the packet
 * at its next epoll_wait(0). It trades a core's idle time for that latency,
 * so it is off unless asked for. */
static void loop_polling(gw_worker *w) {
  for (;;) {
    event_base_loop(w->base, EVLOOP_ONCE | EVLOOP_NO_EXIT_ON_EMPTY);
    if (event_base_got_break(w->base))
      return;
    int64_t until = mono_ns() + w->busy_poll_ns;
    do {
      event_base_loop(w->base, EVLOOP_NONBLOCK | EVLOOP_NO_EXIT_ON_EMPTY);
      if (event_base_got_break(w->base))
        return;
    } while (mono_ns() < until);
  }
}

static void *worker_main(void *arg) {
  gw_worker *w = arg;
  current_worker = w;
#ifndef __SANITIZE_ADDRESS__
  /* Not under AddressSanitizer: an arena (a request's stream lives in one)
   * used after its free must land in freed memory, not in a cached one. */
  gw_arena_cache_enable();
#endif
  if (w->busy_poll_ns > 0)
    loop_polling(w);
  else
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
  gw_arena_cache_drain();
  return NULL;
}

int gw_worker_init(gw_worker *w, int id) {
  memset(w, 0, sizeof(*w));
  w->id = id;
  w->wake_fd = -1;
  q_init(w);
  if (sem_init(&w->park, 0, 0) != 0)
    return GW_ERR_NOMEM;
  w->park_ready = true;
  /* Without locks: only this worker's thread uses its base (other threads go
   * through the queue and |wake_fd|). libevent's locks cost ~24 lock/unlock
   * pairs a proxied request (event_add/del/active and the loop). */
  struct event_config *cfg = event_config_new();
  if (!cfg)
    goto fail;
  event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
  w->base = event_base_new_with_config(cfg);
  event_config_free(cfg);
  if (!w->base)
    goto fail;
  w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (w->wake_fd < 0)
    goto fail;
  w->wake = event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST, on_wake, w);
  if (!w->wake || event_add(w->wake, NULL) != 0)
    goto fail;
  w->later = gw_later_q_new(w->base);
  if (!w->later)
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
  gw_later_q_free(w->later);
  if (w->wake_fd >= 0)
    close(w->wake_fd);
  if (w->base)
    event_base_free(w->base);
  if (w->park_ready)
    sem_destroy(&w->park);
  memset(w, 0, sizeof(*w));
}
