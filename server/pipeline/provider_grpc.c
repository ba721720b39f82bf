/* gRPC-backend provider on gRPC core's client API. */
#include "pipeline/provider_grpc.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "engine/pool.h"
#include "engine/worker.h"

enum { PARK_POLL_MS = 10 }; /* how often a waiting call looks for a free slot */

/* One upstream exchange; lives in the call's arena. */
typedef struct upcall {
  gw_call *call;
  grpc_call *c;
  gw_tag start_tag, recv_tag, status_tag;
  int pending;    /* batches in flight */
  bool cancelled; /* cancel() was called */
  bool ended;     /* gw_call_finish was called by us, or the call ended */
  bool recv_done; /* end of stream seen */
  bool have_status;
  bool waiting; /* a message is ready to be read but the sink is full */
  grpc_metadata send_md[2];
  size_t n_send_md;
  grpc_metadata_array initial_md, trailing_md;
  grpc_byte_buffer *send_bb, *recv_bb;
  grpc_status_code status;
  grpc_slice details;
  const char *error_string;
  /* Pools only. */
  const gw_grpc_backend *b;
  gw_pool_member *member; /* the slot held, NULL when none */
  int64_t t0, t_taken;    /* call start, slot taken */
  struct event *park;     /* set while the call waits for a slot */
  bool got_message;
} upcall;

gw_grpc_backend *gw_grpc_backend_new(const char *target, int timeout_ms) {
  gw_grpc_backend *b = gw_calloc(1, sizeof(*b));
  if (!b)
    return NULL;
  b->target = gw_strdup(target);
  if (!b->target) {
    gw_free(b);
    return NULL;
  }
  grpc_arg args[] = {
      {.type = GRPC_ARG_INTEGER,
       .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
       .value.integer = 64 << 20},
      {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ENABLE_RETRIES, .value.integer = 0},
  };
  grpc_channel_args ch_args = {sizeof(args) / sizeof(args[0]), args};
  grpc_channel_credentials *creds = grpc_insecure_credentials_create();
  b->channel = grpc_channel_create(target, creds, &ch_args);
  grpc_channel_credentials_release(creds);
  b->timeout_ms = timeout_ms;
  return b;
}

gw_grpc_backend *gw_grpc_backend_from_conf(const gw_backend_conf *conf) {
  if (!conf->command || conf->n_command == 0)
    return gw_grpc_backend_new(conf->target, conf->timeout_ms);
  gw_grpc_backend *b = gw_calloc(1, sizeof(*b));
  if (!b)
    return NULL;
  b->timeout_ms = conf->timeout_ms;
  if (!(b->target = gw_strdup(conf->target)) || !(b->pool = gw_pool_acquire(conf))) {
    gw_free(b->target);
    gw_free(b);
    return NULL;
  }
  return b;
}

void gw_grpc_backend_free(gw_grpc_backend *b) {
  if (!b)
    return;
  gw_pool_release(b->pool);
  if (b->channel)
    grpc_channel_destroy(b->channel);
  gw_free(b->target);
  gw_free(b);
}

static gw_status_code map_status(grpc_status_code s) {
  return (s >= 0 && s <= 16) ? (gw_status_code)s : GW_STATUS_UNKNOWN;
}

/* Releases the upstream call once nothing is in flight and it has ended. */
/* Gives a pool slot back, once. */
static void release_slot(upcall *u) {
  if (!u->member)
    return;
  bool unreachable = u->status == GRPC_STATUS_UNAVAILABLE && !u->got_message;
  gw_pool_done(u->b->pool, u->member, gw_now_ms() - u->t_taken, unreachable);
  u->member = NULL;
}

static void maybe_release(upcall *u) {
  if (u->pending > 0 || !u->ended)
    return;
  release_slot(u);
  if (u->send_bb)
    grpc_byte_buffer_destroy(u->send_bb);
  if (u->recv_bb)
    grpc_byte_buffer_destroy(u->recv_bb);
  grpc_metadata_array_destroy(&u->initial_md);
  grpc_metadata_array_destroy(&u->trailing_md);
  grpc_slice_unref(u->details);
  if (u->error_string)
    gpr_free((void *)u->error_string);
  grpc_call_unref(u->c);
  u->c = NULL;
  gw_call_unref(u->call);
}

/* Ends the call with the upstream's status, unless it was cancelled. */
static void end_with_status(upcall *u) {
  if (u->ended)
    return;
  u->ended = true;
  gw_call *call = u->call;
  call->provider_state = NULL; /* finished: nothing left to cancel */
  if (u->cancelled)
    return;
  if (u->status == GRPC_STATUS_OK) {
    gw_call_finish(call, GW_STATUS_OK, NULL);
    return;
  }
  char *msg = grpc_slice_to_c_string(u->details);
  if (u->status == GRPC_STATUS_UNAVAILABLE && (!msg || !*msg))
    gw_call_finishf(call, GW_STATUS_UNAVAILABLE, "backend %s unavailable",
                    call->route.backend ? call->route.backend : "?");
  else
    gw_call_finish(call, map_status(u->status), msg);
  gpr_free(msg);
}

/* Decodes |bb| as the method's output and emits it. Returns GW_OK or an
 * error after which the call was finished. */
static int emit_buffer(upcall *u, grpc_byte_buffer *bb) {
  gw_call *call = u->call;
  u->got_message = true;
  grpc_byte_buffer_reader reader;
  if (!grpc_byte_buffer_reader_init(&reader, bb)) {
    u->ended = true;
    call->provider_state = NULL;
    gw_call_finish(call, GW_STATUS_INTERNAL, "cannot read the backend's message");
    return GW_ERR_INVALID;
  }
  grpc_slice s = grpc_byte_buffer_reader_readall(&reader);
  grpc_byte_buffer_reader_destroy(&reader);
  ProtobufCMessage *msg = protobuf_c_message_unpack(call->method->output, NULL,
                                                    GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
  grpc_slice_unref(s);
  if (!msg) {
    u->ended = true;
    call->provider_state = NULL;
    grpc_call_cancel(u->c, NULL);
    gw_call_finishf(call, GW_STATUS_INTERNAL, "backend %s sent an undecodable %s",
                    call->route.backend ? call->route.backend : "?", call->method->output_type);
    return GW_ERR_INVALID;
  }
  gw_call_emit(call, msg);
  protobuf_c_message_free_unpacked(msg, NULL);
  return GW_OK;
}

static void post_recv(upcall *u);

/* Unary: the one batch carried everything. */
static void on_unary_done(gw_tag *tag, bool ok) {
  upcall *u = GW_CONTAINER_OF(tag, upcall, start_tag);
  u->pending--;
  if (!u->cancelled && !u->ended) {
    if (u->status == GRPC_STATUS_OK && u->recv_bb) {
      if (emit_buffer(u, u->recv_bb) == GW_OK)
        end_with_status(u);
    } else if (u->status == GRPC_STATUS_OK) {
      u->status = GRPC_STATUS_INTERNAL;
      u->details = grpc_slice_from_static_string("backend sent no message");
      end_with_status(u);
    } else {
      end_with_status(u);
    }
  }
  u->ended = true;
  maybe_release(u);
}

static void on_stream_started(gw_tag *tag, bool ok) {
  upcall *u = GW_CONTAINER_OF(tag, upcall, start_tag);
  u->pending--;
  maybe_release(u);
}

static void on_status(gw_tag *tag, bool ok) {
  upcall *u = GW_CONTAINER_OF(tag, upcall, status_tag);
  u->pending--;
  u->have_status = true;
  /* Messages still due are read first, unless the stream failed. */
  if (u->recv_done || u->status != GRPC_STATUS_OK || u->cancelled) {
    if (u->status != GRPC_STATUS_OK && !u->recv_done && !u->ended && !u->cancelled)
      grpc_call_cancel(u->c, NULL);
    end_with_status(u);
  }
  maybe_release(u);
}

static void on_recv(gw_tag *tag, bool ok) {
  upcall *u = GW_CONTAINER_OF(tag, upcall, recv_tag);
  u->pending--;
  grpc_byte_buffer *bb = u->recv_bb;
  u->recv_bb = NULL;
  if (!bb || !ok) {
    u->recv_done = true;
    if (bb)
      grpc_byte_buffer_destroy(bb);
    if (u->have_status)
      end_with_status(u);
  } else if (u->cancelled || u->ended) {
    grpc_byte_buffer_destroy(bb);
  } else {
    int rc = emit_buffer(u, bb);
    grpc_byte_buffer_destroy(bb);
    if (rc == GW_OK && !u->ended && !u->cancelled) {
      if (gw_call_sink_ready(u->call))
        post_recv(u);
      else
        u->waiting = true;
    }
  }
  maybe_release(u);
}

static void post_recv(upcall *u) {
  grpc_op op = {.op = GRPC_OP_RECV_MESSAGE};
  op.data.recv_message.recv_message = &u->recv_bb;
  u->recv_tag.cb = on_recv;
  u->pending++;
  if (grpc_call_start_batch(u->c, &op, 1, &u->recv_tag, NULL) != GRPC_CALL_OK) {
    u->pending--;
    u->recv_done = true;
  }
}

static gpr_timespec call_deadline(const gw_call *call, int timeout_ms) {
  int64_t now = gw_now_ms();
  int64_t deadline = call->deadline_ms;
  if (timeout_ms > 0 && (deadline == 0 || now + timeout_ms < deadline))
    deadline = now + timeout_ms;
  if (deadline == 0)
    return gpr_inf_future(GPR_CLOCK_MONOTONIC);
  int64_t left = deadline - now;
  if (left < 0)
    left = 0;
  return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(left, GPR_TIMESPAN));
}

/* Sets the request's `model` to the name the backend knows. */
static void rewrite_model(gw_call *call) {
  const char *m = call->route.upstream_model;
  if (!m)
    return;
  const ProtobufCFieldDescriptor *f =
      protobuf_c_message_descriptor_get_field_by_name(call->request->descriptor, "model");
  if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
    return;
  *(const char **)((char *)call->request + f->offset) = m;
}

static int launch(upcall *u, grpc_channel *channel);
static int park(upcall *u);

static int start(gw_call *call) {
  const gw_grpc_backend *b = call->route.backend_impl;
  upcall *u = gw_arena_calloc(call->arena, sizeof(*u));
  if (!u)
    return GW_ERR_NOMEM;
  u->call = call;
  u->details = grpc_empty_slice();
  grpc_metadata_array_init(&u->initial_md);
  grpc_metadata_array_init(&u->trailing_md);

  rewrite_model(call);
  size_t len = protobuf_c_message_get_packed_size(call->request);
  uint8_t *bytes = gw_arena_alloc(call->arena, len ? len : 1);
  if (!bytes)
    goto nomem;
  protobuf_c_message_pack(call->request, bytes);
  grpc_slice s = grpc_slice_from_copied_buffer((const char *)bytes, len);
  u->send_bb = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
  u->b = b;
  if (!b->pool)
    return launch(u, b->channel);

  u->t0 = gw_now_ms();
  u->member = gw_pool_take(b->pool, 0);
  if (!u->member)
    return park(u);
  u->t_taken = u->t0;
  int rc = launch(u, u->member->channel);
  if (rc != GW_OK)
    release_slot(u); /* the call never owned it */
  return rc;

nomem:
  if (u->send_bb)
    grpc_byte_buffer_destroy(u->send_bb);
  grpc_metadata_array_destroy(&u->initial_md);
  grpc_metadata_array_destroy(&u->trailing_md);
  return GW_ERR_NOMEM;
}

/* Starts the upstream call on |channel|. On error nothing was started and
 * |u|'s buffers are released; a pool slot is still held by |u|. */
static int launch(upcall *u, grpc_channel *channel) {
  gw_call *call = u->call;
  const gw_grpc_backend *b = u->b;
  grpc_slice method = grpc_slice_from_static_string(call->method->path);
  u->c = grpc_channel_create_call(channel, NULL, GRPC_PROPAGATE_DEFAULTS, call->worker->cq, method,
                                  NULL, call_deadline(call, b->timeout_ms), NULL);
  if (!u->c)
    goto nomem;

  if (call->request_id) {
    u->send_md[u->n_send_md].key = grpc_slice_from_static_string("x-request-id");
    u->send_md[u->n_send_md++].value = grpc_slice_from_static_string(call->request_id);
  }
  if (call->traceparent) {
    u->send_md[u->n_send_md].key = grpc_slice_from_static_string("traceparent");
    u->send_md[u->n_send_md++].value = grpc_slice_from_static_string(call->traceparent);
  }

  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  size_t n = 0;
  ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[n].data.send_initial_metadata.count = u->n_send_md;
  ops[n++].data.send_initial_metadata.metadata = u->send_md;
  ops[n].op = GRPC_OP_SEND_MESSAGE;
  ops[n++].data.send_message.send_message = u->send_bb;
  ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[n++].data.recv_initial_metadata.recv_initial_metadata = &u->initial_md;

  gw_call_ref(call);
  call->provider_state = u;
  if (!call->method->server_streaming) {
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &u->recv_bb;
    ops[n].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[n].data.recv_status_on_client.trailing_metadata = &u->trailing_md;
    ops[n].data.recv_status_on_client.status = &u->status;
    ops[n].data.recv_status_on_client.status_details = &u->details;
    ops[n++].data.recv_status_on_client.error_string = &u->error_string;
    u->start_tag.cb = on_unary_done;
    u->pending++;
    if (grpc_call_start_batch(u->c, ops, n, &u->start_tag, NULL) != GRPC_CALL_OK)
      goto batch_failed;
    return GW_OK;
  }

  u->start_tag.cb = on_stream_started;
  u->pending++;
  if (grpc_call_start_batch(u->c, ops, n, &u->start_tag, NULL) != GRPC_CALL_OK)
    goto batch_failed;
  grpc_op st = {.op = GRPC_OP_RECV_STATUS_ON_CLIENT};
  st.data.recv_status_on_client.trailing_metadata = &u->trailing_md;
  st.data.recv_status_on_client.status = &u->status;
  st.data.recv_status_on_client.status_details = &u->details;
  st.data.recv_status_on_client.error_string = &u->error_string;
  u->status_tag.cb = on_status;
  u->pending++;
  if (grpc_call_start_batch(u->c, &st, 1, &u->status_tag, NULL) != GRPC_CALL_OK) {
    u->pending--;
    grpc_call_cancel(u->c, NULL);
    u->status = GRPC_STATUS_INTERNAL;
    end_with_status(u);
    return GW_OK;
  }
  post_recv(u);
  return GW_OK;

batch_failed:
  u->pending--;
  u->ended = true;
  call->provider_state = NULL;
  maybe_release(u); /* drops the reference taken above */
  return GW_ERR_STATE;
nomem:
  grpc_byte_buffer_destroy(u->send_bb);
  u->send_bb = NULL;
  grpc_metadata_array_destroy(&u->initial_md);
  grpc_metadata_array_destroy(&u->trailing_md);
  return GW_ERR_NOMEM;
}

/* --- waiting for a pool slot ------------------------------------------------ */

/* Stops waiting: the timer, the queue count and the wait's reference. */
static void unpark(upcall *u) {
  event_free(u->park);
  u->park = NULL;
  atomic_fetch_sub(&u->b->pool->queued, 1);
  u->call->provider_state = NULL;
}

static void release_unsent(upcall *u) {
  if (u->send_bb)
    grpc_byte_buffer_destroy(u->send_bb);
  u->send_bb = NULL;
  grpc_metadata_array_destroy(&u->initial_md);
  grpc_metadata_array_destroy(&u->trailing_md);
}

static void on_park_timer(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  upcall *u = arg;
  gw_call *call = u->call;
  gw_pool *pool = u->b->pool;
  int64_t now = gw_now_ms();
  u->member = gw_pool_take(pool, now - u->t0);
  if (u->member) {
    u->t_taken = now;
    unpark(u);
    int rc = launch(u, u->member->channel);
    if (rc != GW_OK)
      release_slot(u);
    if (rc != GW_OK)
      gw_call_finishf(call,
                      rc == GW_ERR_NOMEM ? GW_STATUS_RESOURCE_EXHAUSTED : GW_STATUS_UNAVAILABLE,
                      "backend %s: the call could not start", pool->name);
    gw_call_unref(call);
    return;
  }
  bool late = now - u->t0 >= pool->conf.queue_timeout_ms ||
              (call->deadline_ms && now + PARK_POLL_MS >= call->deadline_ms);
  if (!late) {
    struct timeval tv = {0, PARK_POLL_MS * 1000};
    evtimer_add(u->park, &tv);
    return;
  }
  unpark(u);
  release_unsent(u);
  if (call->deadline_ms && now + PARK_POLL_MS >= call->deadline_ms)
    gw_call_finishf(call, GW_STATUS_DEADLINE_EXCEEDED,
                    "backend %s: no process was free before the deadline", pool->name);
  else if (gw_pool_any_ready(pool))
    gw_call_finishf(call, GW_STATUS_RESOURCE_EXHAUSTED,
                    "backend %s: all %d processes busy for %d ms", pool->name,
                    atomic_load(&pool->active), pool->conf.queue_timeout_ms);
  else
    gw_call_finishf(call, GW_STATUS_UNAVAILABLE,
                    "backend %s: no process serving yet (waited %d ms)", pool->name,
                    pool->conf.queue_timeout_ms);
  gw_call_unref(call);
}

/* Waits for a slot: polls every PARK_POLL_MS on the call's worker. */
static int park(upcall *u) {
  gw_call *call = u->call;
  u->park = event_new(call->worker->base, -1, 0, on_park_timer, u);
  if (!u->park) {
    release_unsent(u);
    return GW_ERR_NOMEM;
  }
  gw_call_ref(call);
  call->provider_state = u;
  atomic_fetch_add(&u->b->pool->queued, 1);
  struct timeval tv = {0, PARK_POLL_MS * 1000};
  evtimer_add(u->park, &tv);
  return GW_OK;
}

static void cancel(gw_call *call) {
  upcall *u = call->provider_state;
  if (!u)
    return;
  if (u->park) {
    unpark(u);
    release_unsent(u);
    gw_call_unref(call);
    return;
  }
  call->provider_state = NULL;
  u->cancelled = true;
  u->ended = true;
  grpc_call_cancel(u->c, NULL);
  maybe_release(u);
}

static void resume(gw_call *call) {
  upcall *u = call->provider_state;
  if (!u || !u->waiting || u->ended)
    return;
  u->waiting = false;
  post_recv(u);
}

const gw_provider_ops gw_provider_grpc = {
    .name = "grpc", .start = start, .cancel = cancel, .resume = resume};
