/* A bare gRPC-core echo server: the reference for the gateway's gRPC unary cost.
 *
 *   grpc_echo PORT [THREADS]
 *
 * Answers any unary method with the request message it received (status OK),
 * from SLOTS calls kept requested on one completion queue that THREADS
 * threads drain. No decoding, no pipeline: what gRPC core alone costs.
 *
 * It runs gRPC core as the gateway's release build does: abseil's lock-order
 * checking off (server/grpc/absl_tune.cc, linked in), so the two compare the
 * same library settings. */
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/absl_tune.h"

#define SLOTS 256

typedef struct slot {
  int state; /* 0 waiting for a call, 1 reading, 2 answering */
  grpc_call *call;
  grpc_call_details details;
  grpc_metadata_array md;
  grpc_byte_buffer *msg;
  int cancelled;
} slot;

static grpc_server *server;
static grpc_completion_queue *cq;
static slot slots[SLOTS];

static void request(slot *s) {
  memset(s, 0, sizeof *s);
  grpc_call_details_init(&s->details);
  grpc_metadata_array_init(&s->md);
  grpc_server_request_call(server, &s->call, &s->details, &s->md, cq, cq, s);
}

static void step(slot *s, int ok) {
  grpc_op ops[4];
  memset(ops, 0, sizeof ops);
  switch (s->state) {
  case 0:
    if (!ok)
      return; /* shutting down */
    s->state = 1;
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_MESSAGE;
    ops[1].data.recv_message.recv_message = &s->msg;
    if (grpc_call_start_batch(s->call, ops, 2, s, NULL) != GRPC_CALL_OK)
      abort();
    return;
  case 1: {
    s->state = 2;
    size_t n = 0;
    if (ok && s->msg) {
      ops[n].op = GRPC_OP_SEND_MESSAGE;
      ops[n++].data.send_message.send_message = s->msg;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = GRPC_STATUS_OK;
    ops[n++].data.send_status_from_server.trailing_metadata_count = 0;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &s->cancelled;
    if (grpc_call_start_batch(s->call, ops, n, s, NULL) != GRPC_CALL_OK)
      abort();
    return;
  }
  default:
    if (s->msg)
      grpc_byte_buffer_destroy(s->msg);
    grpc_call_unref(s->call);
    grpc_call_details_destroy(&s->details);
    grpc_metadata_array_destroy(&s->md);
    request(s);
  }
}

static void *drain(void *arg) {
  (void)arg;
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN)
      return NULL;
    if (ev.type == GRPC_OP_COMPLETE)
      step(ev.tag, ev.success);
  }
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: grpc_echo PORT [THREADS]\n");
    return 2;
  }
  int threads = argc > 2 ? atoi(argv[2]) : 1;
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%s", argv[1]);
  gw_absl_tune();
  grpc_init();
  cq = grpc_completion_queue_create_for_next(NULL);
  server = grpc_server_create(NULL, NULL);
  grpc_server_register_completion_queue(server, cq, NULL);
  grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
  if (!grpc_server_add_http2_port(server, addr, creds)) {
    fprintf(stderr, "grpc_echo: cannot bind %s\n", addr);
    return 1;
  }
  grpc_server_credentials_release(creds);
  grpc_server_start(server);
  for (int i = 0; i < SLOTS; i++)
    request(&slots[i]);
  pthread_t t;
  for (int i = 1; i < threads; i++)
    pthread_create(&t, NULL, drain, NULL);
  drain(NULL);
  return 0;
}
