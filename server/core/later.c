/* Work for later in this loop turn (see later.h). */
#include "core/later.h"

#include <event2/event.h>

#include "core/alloc.h"

struct gw_later_q {
  struct event *ev;
  gw_later *head;
  gw_later **tail; /* &head when empty */
  int hold;        /* > 0: an add into an empty queue does not activate |ev| */
};

/* Runs the queue to its end, what the items queue meanwhile included. */
static void run_list(gw_later_q *q) {
  gw_later *it;
  q->hold++;
  while ((it = q->head)) {
    gw_later_cancel(q, it); /* unlinked first: |run| may queue it again, or free it */
    it->run(it);
  }
  q->hold--;
}

static void run_all(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  run_list(arg);
}

gw_later_q *gw_later_q_new(struct event_base *base) {
  gw_later_q *q = gw_calloc(1, sizeof *q);
  if (!q)
    return NULL;
  q->tail = &q->head;
  q->ev = event_new(base, -1, 0, run_all, q);
  if (!q->ev) {
    gw_free(q);
    return NULL;
  }
  return q;
}

void gw_later_q_free(gw_later_q *q) {
  if (!q)
    return;
  while (q->head)
    gw_later_cancel(q, q->head);
  event_free(q->ev);
  gw_free(q);
}

void gw_later_add(gw_later_q *q, gw_later *it) {
  if (it->pprev)
    return;
  if (!q->head && !q->hold)
    event_active(q->ev, EV_TIMEOUT, 0); /* the first since the last pass */
  it->next = NULL;
  it->pprev = q->tail;
  *q->tail = it;
  q->tail = &it->next;
}

void gw_later_cancel(gw_later_q *q, gw_later *it) {
  if (!it->pprev)
    return;
  *it->pprev = it->next;
  if (it->next)
    it->next->pprev = it->pprev;
  else
    q->tail = it->pprev;
  it->next = NULL;
  it->pprev = NULL;
}

void gw_later_hold(gw_later_q *q) { q->hold++; }

void gw_later_release(gw_later_q *q) {
  if (--q->hold == 0 && q->head)
    run_list(q);
}
