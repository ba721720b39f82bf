/* Worker threads: each owns one libevent event_base and one gRPC completion
 * queue. While the worker sleeps, a dedicated thread blocks on the completion
 * queue; when completions come it hands them to the worker's loop (a
 * lock-free queue and one event_active per burst) together with the polling:
 * the worker then drains the completion queue itself, without blocking,
 * between its other events, for as long as it finds work, and gives the
 * polling back before it sleeps. So a busy worker takes its gRPC completions
 * with no thread hop at all, a call — and all of its gRPC server and client
 * operations — belongs to exactly one worker for its whole life and its state
 * needs no locks. The one exception is a tag marked |on_cq_thread| (see
 * gw_tag). */
#ifndef GW_ENGINE_WORKER_H
#define GW_ENGINE_WORKER_H

#include <event2/event.h>
#include <grpc/grpc.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/later.h"

/* A completion target. Embed it in the object that started the operation and
 * pass its address as the gRPC tag; |cb| runs on the owning worker's thread
 * with |ok| as gRPC reported it. A tag is handed over once per operation: do
 * not reuse it for a new operation before its |cb| ran.
 *
 * |on_cq_thread|: set it before starting the operation when |cb| touches no
 * state of the worker (no event base, no other call, nothing but what the
 * operation's owner handed over with it for good): |cb| then runs on
 * whichever thread takes the completion — the completion-queue thread, with
 * no hand-off and no wake-up, or the worker when it holds the polling. Used
 * for the last batch of a call, whose completion only frees it. Zero (the
 * default of a zeroed struct) means "on the worker". */
typedef struct gw_tag {
  void (*cb)(struct gw_tag *tag, bool ok);
  bool on_cq_thread;
  /* The hand-off's own fields: written by the completion-queue thread. */
  bool ok;
  struct gw_tag *_Atomic next;
} gw_tag;

typedef struct gw_worker {
  int id;
  struct event_base *base;
  grpc_completion_queue *cq;
  pthread_t thread, cq_thread;
  bool thread_started, cq_thread_started;

  /* Hand-off from the completion-queue thread: an intrusive multi-producer
   * single-consumer queue of tags (Vyukov's), lock-free. Producers push at
   * |q_head|; the worker pops at |q_tail|. |wake_armed| is true from the
   * moment a producer decided to wake the worker until the worker starts
   * draining, so one burst of completions costs one write to |wake_fd|.
   * The worker's base has no locks (EVENT_BASE_FLAG_NOLOCK): no other
   * thread touches it; they push tags here and write to |wake_fd|. */
  gw_tag *_Atomic q_head;
  gw_tag *q_tail;
  gw_tag q_stub;
  atomic_bool wake_armed;
  atomic_bool cq_done;
  struct event *wake; /* |wake_fd| readable, or activated by the worker itself */
  int wake_fd;        /* an eventfd */
  /* Who polls the completion queue: false, the completion-queue thread
   * (blocking); true, the worker (never blocking; its wake-up event stays
   * active meanwhile). The thread waits on |park| while the worker polls. */
  atomic_bool worker_polls;
  sem_t park;
  bool park_ready;

  /* Owned by the front doors; opaque here. */
  void *grpc_front;
  /* Calls in flight on this worker (for graceful shutdown and stats). */
  _Atomic long in_flight;
  /* BUSY_POLL_US in ns, set before gw_worker_start: after each wake-up the
   * loop keeps looking at its descriptors without sleeping for this long.
   * 0 (the default) sleeps as soon as there is nothing to do. */
  int64_t busy_poll_ns;
  /* Work for later in this loop turn: the worker's HTTP server and upstream
   * client queue theirs here, so that it costs one event activation. */
  gw_later_q *later;
} gw_worker;

/* Creates the event base and completion queue. GW_OK or GW_ERR_NOMEM.
 * evthread_use_pthreads() must have been called before. */
int gw_worker_init(gw_worker *w, int id);

/* Starts the worker thread (running the event loop until gw_worker_join) and
 * its completion-queue thread. */
int gw_worker_start(gw_worker *w);

/* Shuts the completion queue down; the worker drains every completion still
 * due, then its loop exits. Blocks until both threads have ended. */
void gw_worker_join(gw_worker *w);

/* Frees what gw_worker_init made. Only after gw_worker_join (or if never
 * started). */
void gw_worker_release(gw_worker *w);

/* The worker running the calling thread, NULL on other threads. */
gw_worker *gw_worker_current(void);

/* UNITTEST escape hatch: hands |tag| to |w| as the completion-queue thread
 * does (one completion; wakes the worker unless a wake-up is pending). */
void gw_worker_hand_off(gw_worker *w, gw_tag *tag, bool ok);

/* Runs |tag->cb(tag, true)| on |w|'s thread, soon: how another thread gets
 * work done on a worker (the worker's event base is not thread-safe). */
void gw_worker_run(gw_worker *w, gw_tag *tag);

#endif
