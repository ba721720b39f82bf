/* Work for later in this loop turn, on one event for all of it.
 *
 * A proxied request leaves three things for after the callback that finished
 * it: its response to write out, its stream to free and its upstream exchange
 * to free. As three libevent events that is three activations, each ~300
 * instructions (activate, queue, dequeue, delete, dispatch) or ~3% of the
 * request. Queued here they cost one activation between them, and a link
 * each. Items run in the order they were queued; one queued while the list
 * runs runs in the same pass, as a libevent event activated from a callback
 * does. A worker's HTTP server and upstream client share one queue, and the
upstream client's read callback runs it before it returns (gw_later_hold),
so the usual request costs no event for it at all. */
#ifndef GW_CORE_LATER_H
#define GW_CORE_LATER_H

#include <stddef.h>

struct event_base;

/* The struct of type |type| whose |member| |ptr| points at. */
#define GW_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

typedef struct gw_later gw_later;
struct gw_later {
  void (*run)(gw_later *it); /* set by the owner before the first gw_later_add */
  gw_later *next;
  gw_later **pprev; /* NULL: not queued */
};

typedef struct gw_later_q gw_later_q;

/* A queue run by an event of |base|; NULL when out of memory. */
gw_later_q *gw_later_q_new(struct event_base *base);

/* Frees |q|; what is still queued does not run. */
void gw_later_q_free(gw_later_q *q);

/* Queues |it| unless it is already queued. */
void gw_later_add(gw_later_q *q, gw_later *it);

/* Takes |it| out of the queue if it is in it (its owner is going away). */
void gw_later_cancel(gw_later_q *q, gw_later *it);

/* Around a callback that queues work and has nothing left to do after it:
 * between the two, a queue with nothing in it yet is not activated, and the
 * release runs what was queued there and then, so that the work costs no
 * event at all. Holds nest; the outermost release runs the queue. Nothing
 * of the caller's may be used after the release: the queued work may free
 * it. */
void gw_later_hold(gw_later_q *q);
void gw_later_release(gw_later_q *q);

#endif
