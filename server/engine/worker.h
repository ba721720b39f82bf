/* Worker threads: each owns one libevent event_base and one gRPC completion
 * queue. A dedicated thread blocks on the completion queue and hands every
 * completion to the worker's loop (queue + event_active), so a call — and all
 * of its gRPC server and client operations — belongs to exactly one worker
 * for its whole life and its state needs no locks. */
#ifndef GW_ENGINE_WORKER_H
#define GW_ENGINE_WORKER_H

#include <event2/event.h>
#include <grpc/grpc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* A completion target. Embed it in the object that started the operation and
 * pass its address as the gRPC tag; |cb| runs on the owning worker's thread
 * with |ok| as gRPC reported it. */
typedef struct gw_tag {
  void (*cb)(struct gw_tag *tag, bool ok);
} gw_tag;

#define GW_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

struct gw_completion {
  gw_tag *tag;
  bool ok;
};

typedef struct gw_worker {
  int id;
  struct event_base *base;
  grpc_completion_queue *cq;
  pthread_t thread, cq_thread;
  bool thread_started, cq_thread_started;

  /* Hand-off from the completion-queue thread; guarded by |mu|. */
  pthread_mutex_t mu;
  struct gw_completion *pending;
  size_t n_pending, cap_pending;
  bool cq_done;
  struct event *wake;

  /* Owned by the front doors; opaque here. */
  void *grpc_front;
  /* Calls in flight on this worker (for graceful shutdown and stats). */
  _Atomic long in_flight;
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

#endif
