/* The deferred-work queue (core/later.c) on a real libevent base. */
#include "support.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "core/later.h"

typedef struct item {
  gw_later l;
  char name;
  struct ctx *ctx;
  int requeue;          /* times it queues itself again from its run */
  struct item *also;    /* queued from this one's run */
  struct item *cancels; /* taken out of the queue from this one's run */
} item;

typedef struct ctx {
  gw_later_q *q;
  char log[64];
  size_t n;
} ctx;

static void run_item(gw_later *l) {
  item *it = GW_CONTAINER_OF(l, item, l);
  ctx *c = it->ctx;
  c->log[c->n++] = it->name;
  c->log[c->n] = '\0';
  if (it->requeue > 0) {
    it->requeue--;
    gw_later_add(c->q, &it->l);
  }
  if (it->also)
    gw_later_add(c->q, &it->also->l);
  if (it->cancels)
    gw_later_cancel(c->q, &it->cancels->l);
}

/* Starts a new log: the next assertion sees only what runs from here. */
static void clear_log(ctx *c) {
  c->n = 0;
  c->log[0] = '\0';
}

static void init_item(item *it, ctx *c, char name) {
  memset(it, 0, sizeof *it);
  it->l.run = run_item;
  it->ctx = c;
  it->name = name;
}

/* A base, its queue and four items a, b, d, e that log their names. */
typedef struct fixture {
  struct event_base *base;
  ctx c;
  item a, b, d, e;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (!f)
    return -1;
  *state = f;
  f->base = event_base_new();
  f->c.q = f->base ? gw_later_q_new(f->base) : NULL;
  init_item(&f->a, &f->c, 'a');
  init_item(&f->b, &f->c, 'b');
  init_item(&f->d, &f->c, 'd');
  init_item(&f->e, &f->c, 'e');
  return f->c.q ? 0 : -1;
}

static int teardown(void **state) {
  fixture *f = *state;
  gw_later_q_free(f->c.q);
  if (f->base)
    event_base_free(f->base);
  free(f);
  return 0;
}

/* One non-blocking pass of the loop: what is active runs, nothing waits. */
static void pass(struct event_base *base) {
  assert_int_equal(event_base_loop(base, EVLOOP_NONBLOCK | EVLOOP_NO_EXIT_ON_EMPTY), 0);
}

static void test_order_once_and_cancel(void **state) {
  fixture *f = *state;
  struct event_base *base = f->base;
  ctx *c = &f->c;
  item *a = &f->a, *b = &f->b, *d = &f->d, *e = &f->e;

  pass(base); /* an empty queue runs nothing */
  assert_string_equal(c->log, "");

  gw_later_add(c->q, &a->l);
  gw_later_add(c->q, &b->l);
  gw_later_add(c->q, &a->l); /* queued already: stays where it is */
  gw_later_add(c->q, &d->l);
  assert_string_equal(c->log, ""); /* nothing runs before the loop does */
  pass(base);
  assert_string_equal(c->log, "abd");
  pass(base);
  assert_string_equal(c->log, "abd"); /* each ran once */

  /* Out of the middle, the end and the front; the tail stays right. */
  clear_log(c);
  gw_later_add(c->q, &a->l);
  gw_later_add(c->q, &b->l);
  gw_later_add(c->q, &d->l);
  gw_later_cancel(c->q, &b->l);
  gw_later_cancel(c->q, &d->l);
  gw_later_cancel(c->q, &d->l); /* not queued: nothing happens */
  gw_later_add(c->q, &e->l);
  gw_later_cancel(c->q, &a->l);
  gw_later_add(c->q, &b->l);
  pass(base);
  assert_string_equal(c->log, "eb");

  /* Everything cancelled: the activated event finds nothing. */
  clear_log(c);
  gw_later_add(c->q, &a->l);
  gw_later_cancel(c->q, &a->l);
  pass(base);
  assert_string_equal(c->log, "");
  gw_later_add(c->q, &a->l); /* and the queue still works after */
  pass(base);
  assert_string_equal(c->log, "a");
}

static void test_queued_while_running(void **state) {
  fixture *f = *state;
  struct event_base *base = f->base;
  ctx *c = &f->c;
  item *a = &f->a, *b = &f->b, *d = &f->d;
  a->requeue = 2; /* runs three times in the same pass */
  a->also = d;    /* and queues d each time */
  b->cancels = d; /* which b takes out again once */
  gw_later_add(c->q, &a->l);
  gw_later_add(c->q, &b->l);
  pass(base);
  /* [a b] -> a: [b a d] -> b: [a] -> a: [a d] -> a: [d] (queued already)
   * -> d: []. Everything queued meanwhile ran in the same pass, in order. */
  assert_string_equal(c->log, "abaad");
  pass(base);
  assert_string_equal(c->log, "abaad");
}

static void test_hold_runs_at_release(void **state) {
  fixture *f = *state;
  struct event_base *base = f->base;
  ctx *c = &f->c;
  item *a = &f->a, *b = &f->b;

  gw_later_hold(c->q);
  gw_later_hold(c->q); /* nested */
  gw_later_add(c->q, &a->l);
  pass(base); /* held: the queue's event was not activated */
  assert_string_equal(c->log, "");
  gw_later_release(c->q);
  assert_string_equal(c->log, ""); /* only the outermost release runs it */
  gw_later_add(c->q, &b->l);
  gw_later_release(c->q);
  assert_string_equal(c->log, "ab");
  pass(base);
  assert_string_equal(c->log, "ab");

  /* Queued before the hold: the event is active, and the release runs the
   * items first; the event then finds nothing. */
  clear_log(c);
  gw_later_add(c->q, &a->l);
  gw_later_hold(c->q);
  gw_later_add(c->q, &b->l);
  gw_later_release(c->q);
  assert_string_equal(c->log, "ab");
  pass(base);
  assert_string_equal(c->log, "ab");

  /* A release with nothing queued runs nothing; the queue works after. */
  clear_log(c);
  gw_later_hold(c->q);
  gw_later_release(c->q);
  assert_string_equal(c->log, "");
  gw_later_add(c->q, &a->l);
  pass(base);
  assert_string_equal(c->log, "a");
}

static void test_free_drops_queued(void **state) {
  fixture *f = *state;
  struct event_base *base = f->base;
  ctx *c = &f->c;
  item *a = &f->a;
  gw_later_add(c->q, &a->l);
  gw_later_q_free(c->q); /* its event goes with it */
  c->q = NULL;
  pass(base);
  assert_string_equal(c->log, "");
  assert_null(a->l.pprev); /* unlinked: its owner may queue it elsewhere */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_order_once_and_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_queued_while_running, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hold_runs_at_release, setup, teardown),
      cmocka_unit_test_setup_teardown(test_free_drops_queued, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
