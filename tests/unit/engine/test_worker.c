/* The worker's completion hand-off: every tag runs once, on the worker
 * (except those marked on_cq_thread), in order per producer, whether it came
 * through the lock-free queue or the worker took it from the completion queue
 * itself; the worker gives the polling back when idle; join drains. */
#include "support.h"

#include <arpa/inet.h>
#include <event2/thread.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/status.h"
#include "engine/worker.h"

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Waits up to 10 s for |*v| to reach |want|. */
static bool wait_for(_Atomic long *v, long want) {
  for (int i = 0; i < 10000 && atomic_load(v) < want; i++)
    sleep_ms(1);
  return atomic_load(v) >= want;
}

/* ---- hand-offs from several threads ------------------------------------------- */

#define PRODUCERS 4
#define PER_PRODUCER 20000

typedef struct item {
  gw_tag tag;
  int producer, seq;
} item;

static gw_worker hw;
static item items[PRODUCERS][PER_PRODUCER];
static int next_seq[PRODUCERS]; /* worker only */
static _Atomic long ran, misplaced, out_of_order, bad_ok;

static void on_item(gw_tag *tag, bool ok) {
  item *it = GW_CONTAINER_OF(tag, item, tag);
  if (gw_worker_current() != &hw)
    atomic_fetch_add(&misplaced, 1);
  if (it->seq != next_seq[it->producer])
    atomic_fetch_add(&out_of_order, 1);
  next_seq[it->producer] = it->seq + 1;
  if (ok != (it->seq % 3 != 0))
    atomic_fetch_add(&bad_ok, 1);
  atomic_fetch_add(&ran, 1);
}

static void *produce(void *arg) {
  int p = (int)(intptr_t)arg;
  for (int i = 0; i < PER_PRODUCER; i++) {
    item *it = &items[p][i];
    it->tag.cb = on_item;
    it->producer = p;
    it->seq = i;
    gw_worker_hand_off(&hw, &it->tag, i % 3 != 0);
    if (i % 1000 == 0)
      sched_yield();
  }
  return NULL;
}

static void test_hand_off_from_threads(void **state) {
  (void)state;
  assert_int_equal(gw_worker_init(&hw, 0), GW_OK);
  assert_int_equal(gw_worker_start(&hw), GW_OK);
  pthread_t t[PRODUCERS];
  for (int p = 0; p < PRODUCERS; p++)
    pthread_create(&t[p], NULL, produce, (void *)(intptr_t)p);
  for (int p = 0; p < PRODUCERS; p++)
    pthread_join(t[p], NULL);
  assert_true(wait_for(&ran, PRODUCERS * PER_PRODUCER));
  gw_worker_join(&hw);
  assert_int_equal(atomic_load(&ran), PRODUCERS * PER_PRODUCER);
  assert_int_equal(atomic_load(&misplaced), 0);
  assert_int_equal(atomic_load(&out_of_order), 0);
  assert_int_equal(atomic_load(&bad_ok), 0);
  gw_worker_release(&hw);
}

/* ---- real completions: client calls to a closed port ---------------------------- */

#define CALLS 200

typedef struct ccall {
  gw_tag tag;
  grpc_call *c;
  grpc_metadata_array md;
  grpc_status_code status;
  grpc_slice details;
} ccall;

static gw_worker cw;
static grpc_channel *channel;
static ccall calls[CALLS];
static _Atomic long done, done_off_worker, wrong_status;
static gw_tag cq_tag;
static _Atomic long cq_tag_ran;

static void on_call_done(gw_tag *tag, bool ok) {
  ccall *cc = GW_CONTAINER_OF(tag, ccall, tag);
  if (gw_worker_current() != &cw)
    atomic_fetch_add(&done_off_worker, 1);
  if (!ok || cc->status == GRPC_STATUS_OK)
    atomic_fetch_add(&wrong_status, 1);
  grpc_metadata_array_destroy(&cc->md);
  grpc_slice_unref(cc->details);
  grpc_call_unref(cc->c);
  atomic_fetch_add(&done, 1);
}

static void on_cq_tag(gw_tag *tag, bool ok) {
  (void)tag;
  (void)ok;
  atomic_fetch_add(&cq_tag_ran, 1);
}

/* Runs on the worker: starts every call (each fails: nothing listens). */
static void start_calls(gw_tag *tag, bool ok) {
  (void)tag;
  (void)ok;
  grpc_slice method = grpc_slice_from_static_string("/test.Svc/M");
  gpr_timespec deadline =
      gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_seconds(5, GPR_TIMESPAN));
  for (int i = 0; i < CALLS; i++) {
    ccall *cc = &calls[i];
    cc->c = grpc_channel_create_call(channel, NULL, GRPC_PROPAGATE_DEFAULTS, cw.cq, method, NULL,
                                     deadline, NULL);
    grpc_metadata_array_init(&cc->md);
    grpc_op ops[3];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[2].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[2].data.recv_status_on_client.trailing_metadata = &cc->md;
    ops[2].data.recv_status_on_client.status = &cc->status;
    ops[2].data.recv_status_on_client.status_details = &cc->details;
    cc->tag.cb = on_call_done;
    assert_int_equal(grpc_call_start_batch(cc->c, ops, 3, &cc->tag, NULL), GRPC_CALL_OK);
  }
  /* A tag that may complete on either thread: a call cancelled at once. */
  cq_tag.cb = on_cq_tag;
  cq_tag.on_cq_thread = true;
  grpc_call *c = grpc_channel_create_call(channel, NULL, GRPC_PROPAGATE_DEFAULTS, cw.cq, method,
                                          NULL, deadline, NULL);
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_SEND_INITIAL_METADATA;
  grpc_call_cancel(c, NULL);
  grpc_call_start_batch(c, &op, 1, &cq_tag, NULL);
  grpc_call_unref(c);
}

static int closed_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  bind(fd, (struct sockaddr *)&a, sizeof a);
  getsockname(fd, (struct sockaddr *)&a, &len);
  close(fd);
  return ntohs(a.sin_port);
}

static void test_client_completions_run_on_the_worker(void **state) {
  (void)state;
  char target[64];
  snprintf(target, sizeof target, "127.0.0.1:%d", closed_port());
  grpc_channel_credentials *creds = grpc_insecure_credentials_create();
  channel = grpc_channel_create(target, creds, NULL);
  grpc_channel_credentials_release(creds);
  assert_int_equal(gw_worker_init(&cw, 1), GW_OK);
  assert_int_equal(gw_worker_start(&cw), GW_OK);
  for (int round = 0; round < 3; round++) {
    atomic_store(&done, 0);
    atomic_store(&cq_tag_ran, 0);
    /* gw_worker_run: the worker's base has no locks, other threads never
     * touch it (event_base_once from here would be a data race). */
    static gw_tag start_tag = {.cb = start_calls};
    gw_worker_run(&cw, &start_tag);
    assert_true(wait_for(&done, CALLS));
    assert_true(wait_for(&cq_tag_ran, 1));
    assert_int_equal(atomic_load(&done_off_worker), 0);
    assert_int_equal(atomic_load(&wrong_status), 0);
    /* Idle again: the worker has given the polling back to the blocking
     * thread (it never sleeps while it holds it). */
    for (int i = 0; i < 2000 && atomic_load(&cw.worker_polls); i++)
      sleep_ms(1);
    assert_false(atomic_load(&cw.worker_polls));
  }
  sleep_ms(20);
  assert_int_equal(atomic_load(&cq_tag_ran), 1);
  gw_worker_join(&cw);
  grpc_channel_destroy(channel);
  gw_worker_release(&cw);
}

static int setup(void **state) {
  (void)state;
  evthread_use_pthreads();
  grpc_init();
  return 0;
}

static int teardown(void **state) {
  (void)state;
  grpc_shutdown();
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hand_off_from_threads),
      cmocka_unit_test(test_client_completions_run_on_the_worker),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
