/* The gRPC front door: accepts, the gRPC sink, health and reflection. */
#include "grpc/front.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/numtext.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection.h"
#include "pipeline/call.h"

enum kind { K_PIPELINE, K_HEALTH_CHECK, K_HEALTH_WATCH, K_REFLECTION, K_UNKNOWN };

typedef struct acceptor {
  gw_tag tag;
  struct gw_grpc_front *front;
  gw_worker *w;
  const gw_method_info *m; /* NULL: the catch-all for unknown methods */
  int kind;
  void *handle;
  grpc_call *c;
  gpr_timespec deadline;
  grpc_metadata_array md;
  grpc_byte_buffer *payload;
  grpc_call_details details;
  bool live;
} acceptor;

typedef struct outmsg {
  struct outmsg *next;
  grpc_byte_buffer *bb;
} outmsg;

typedef struct scall {
  gw_tag close_tag, send_tag, recv_tag;
  struct gw_grpc_front *front;
  gw_worker *w;
  gw_arena *arena; /* owns this struct; the call's arena for K_PIPELINE */
  gw_call *call;   /* K_PIPELINE only */
  grpc_call *c;
  const gw_method_info *m;
  int kind;
  bool streaming;
  const char *request_id;
  char *path; /* K_UNKNOWN: the method asked for */
  grpc_metadata_array req_md;
  int pending;
  int cancelled_flag;
  bool client_gone, md_sent, sending, status_queued, status_in_flight, status_sent;
  bool finished, released, recv_stopped;
  /* |in_dispatch|: the call is being set up; its status waits for the end of
   * dispatch() so that a call answered at once goes out in one batch with
   * its close. |close_posted|: RECV_CLOSE_ON_SERVER is started (alone, or in
   * the status batch). */
  bool in_dispatch, close_posted;
  outmsg *q_head, *q_tail;
  grpc_byte_buffer *send_bb;
  gw_status_code status;
  grpc_slice status_details;
  grpc_metadata init_md[1];
  grpc_byte_buffer *recv_bb;
  struct scall *watch_next, *watch_prev;
} scall;

typedef struct wstate {
  struct gw_grpc_front *front;
  scall *watches;
  gw_tag end_tag; /* end_watches, run on the worker at shutdown */
} wstate;

struct gw_grpc_front {
  grpc_server *server;
  const gw_descriptors *desc;
  gw_pipeline *pipeline;
  gw_worker *workers;
  int n_workers;
  int port;
  acceptor *acceptors;
  size_t n_acceptors;
  wstate *ws;
  grpc_completion_queue *shutdown_cq;
  _Atomic int shutting_down;
};

static void post_accept(acceptor *a);
static void maybe_release(scall *sc);

/* ---- sending ---------------------------------------------------------------- */

static void on_send(gw_tag *tag, bool ok);
static void on_final(gw_tag *tag, bool ok);

static void drop_queue(scall *sc) {
  while (sc->q_head) {
    outmsg *o = sc->q_head;
    sc->q_head = o->next;
    grpc_byte_buffer_destroy(o->bb);
    gw_free(o);
  }
  sc->q_tail = NULL;
}

/* True when the call's last batch may complete on the completion-queue
 * thread: nothing else of it is in flight and nothing on the worker holds it
 * (the pipeline is done and only the front door's reference is left), so its
 * completion only frees. */
static bool releasable_off_worker(const scall *sc) {
  if (sc->pending != 0 || sc->kind == K_HEALTH_WATCH)
    return false;
  if (!sc->call)
    return true;
  return sc->finished && sc->call->state == GW_CALL_DONE && sc->call->refs == 1;
}

/* Starts the next send batch when none is in flight: initial metadata once,
 * one queued message, and the status once nothing else is queued. A unary
 * reply waits for its status so the whole answer goes in one batch; while
 * the call is in dispatch() the status waits for its end, where it goes out
 * with the RECV_CLOSE_ON_SERVER too.
 *
 * Returns true when it started the call's last batch to complete on the
 * completion-queue thread (on_final): |sc| may be gone already, the caller
 * must not touch it. */
static bool pump(scall *sc) {
  if (sc->sending || sc->client_gone || sc->status_in_flight || sc->status_sent)
    return false;
  if (!sc->streaming && (!sc->status_queued || sc->in_dispatch))
    return false;
  grpc_op ops[4];
  memset(ops, 0, sizeof ops);
  size_t n = 0;
  if (!sc->md_sent) {
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].data.send_initial_metadata.count = sc->request_id ? 1 : 0;
    ops[n++].data.send_initial_metadata.metadata = sc->init_md;
    sc->md_sent = true;
  }
  outmsg *o = sc->q_head;
  if (o) {
    sc->q_head = o->next;
    if (!sc->q_head)
      sc->q_tail = NULL;
    sc->send_bb = o->bb;
    gw_free(o);
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = sc->send_bb;
  }
  bool last = false;
  if (sc->status_queued && !sc->q_head && !sc->in_dispatch) {
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = (grpc_status_code)sc->status;
    ops[n++].data.send_status_from_server.status_details = &sc->status_details;
    sc->status_in_flight = true;
    if (!sc->close_posted) {
      ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
      ops[n++].data.recv_close_on_server.cancelled = &sc->cancelled_flag;
      sc->close_posted = true;
      last = releasable_off_worker(sc);
    }
  }
  if (n == 0)
    return false;
  sc->sending = true;
  sc->pending++;
  sc->send_tag.cb = last ? on_final : on_send;
  sc->send_tag.on_cq_thread = last;
  if (grpc_call_start_batch(sc->c, ops, n, &sc->send_tag, NULL) != GRPC_CALL_OK) {
    sc->pending--;
    sc->sending = false;
    sc->client_gone = true;
    if (sc->send_bb) {
      grpc_byte_buffer_destroy(sc->send_bb);
      sc->send_bb = NULL;
    }
    drop_queue(sc);
    return false;
  }
  return last;
}

static void on_send(gw_tag *tag, bool ok) {
  scall *sc = GW_CONTAINER_OF(tag, scall, send_tag);
  sc->pending--;
  sc->sending = false;
  if (sc->send_bb) {
    grpc_byte_buffer_destroy(sc->send_bb);
    sc->send_bb = NULL;
  }
  if (sc->status_in_flight) {
    sc->status_in_flight = false;
    sc->status_sent = true;
  }
  if (!ok && !sc->status_sent) {
    sc->client_gone = true;
    drop_queue(sc);
    if (sc->call)
      gw_call_cancel(sc->call);
  } else {
    pump(sc);
    if (sc->call && !sc->q_head && !sc->finished)
      gw_call_sink_drained(sc->call);
  }
  maybe_release(sc);
}

/* The completion of a call's last batch (status and close together) started
 * by pump() when nothing on the worker holds the call any more: runs on the
 * completion-queue thread, without a hand-off, and only frees. Whatever the
 * outcome, the call is over. */
static void on_final(gw_tag *tag, bool ok) {
  (void)ok;
  scall *sc = GW_CONTAINER_OF(tag, scall, send_tag);
  sc->pending--;
  sc->sending = false;
  if (sc->send_bb) {
    grpc_byte_buffer_destroy(sc->send_bb);
    sc->send_bb = NULL;
  }
  sc->status_in_flight = false;
  sc->status_sent = true;
  maybe_release(sc);
}

/* Queues |len| bytes produced by |pack| as one message. */
static int queue_message(scall *sc, const ProtobufCMessage *msg) {
  if (sc->client_gone || sc->status_queued)
    return GW_ERR_STATE;
  outmsg *o = gw_malloc(sizeof(*o));
  if (!o)
    return GW_ERR_NOMEM;
  size_t len = protobuf_c_message_get_packed_size(msg);
  grpc_slice s = grpc_slice_malloc(len);
  protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
  o->bb = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
  o->next = NULL;
  if (sc->q_tail)
    sc->q_tail->next = o;
  else
    sc->q_head = o;
  sc->q_tail = o;
  pump(sc);
  return GW_OK;
}

static int queue_bytes(scall *sc, const void *data, size_t len) {
  if (sc->client_gone || sc->status_queued)
    return GW_ERR_STATE;
  outmsg *o = gw_malloc(sizeof(*o));
  if (!o)
    return GW_ERR_NOMEM;
  grpc_slice s = grpc_slice_from_copied_buffer(data, len);
  o->bb = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
  o->next = NULL;
  if (sc->q_tail)
    sc->q_tail->next = o;
  else
    sc->q_head = o;
  sc->q_tail = o;
  pump(sc);
  return GW_OK;
}

static void queue_status(scall *sc, gw_status_code code, const char *message) {
  if (sc->status_queued)
    return;
  sc->status_queued = true;
  sc->status = code;
  grpc_slice_unref(sc->status_details);
  sc->status_details = grpc_slice_from_copied_string(message ? message : "");
  if (code != GW_STATUS_OK && !sc->streaming)
    drop_queue(sc); /* a failed unary call carries no message */
  pump(sc);
}

/* ---- the sink the pipeline writes to ------------------------------------------ */

static int sink_message(void *ctx, gw_call *call, const ProtobufCMessage *msg) {
  return queue_message(ctx, msg);
}

static void sink_finish(void *ctx, gw_call *call, gw_status_code code, const char *message) {
  scall *sc = ctx;
  sc->finished = true;
  if (!sc->client_gone)
    queue_status(sc, code, message);
  maybe_release(sc);
}

static bool sink_ready(void *ctx) {
  scall *sc = ctx;
  return !sc->q_head && !sc->client_gone;
}

static const gw_sink_ops grpc_sink = {
    .message = sink_message, .finish = sink_finish, .ready = sink_ready};

/* ---- lifetime ------------------------------------------------------------------ */

static void watch_unlink(scall *sc) {
  if (sc->kind != K_HEALTH_WATCH ||
      (!sc->watch_prev && !sc->watch_next && sc->front->ws[sc->w->id].watches != sc))
    return;
  if (sc->watch_prev)
    sc->watch_prev->watch_next = sc->watch_next;
  else
    sc->front->ws[sc->w->id].watches = sc->watch_next;
  if (sc->watch_next)
    sc->watch_next->watch_prev = sc->watch_prev;
  sc->watch_next = sc->watch_prev = NULL;
}

/* Frees the server call once no batch is in flight and it has ended (status
 * sent or client gone) and, for pipeline calls, the pipeline finished it. */
static void maybe_release(scall *sc) {
  if (sc->released || sc->pending > 0)
    return;
  if (!sc->status_sent && !sc->client_gone)
    return;
  if (sc->call && !sc->finished)
    return;
  sc->released = true;
  watch_unlink(sc);
  drop_queue(sc);
  if (sc->recv_bb)
    grpc_byte_buffer_destroy(sc->recv_bb);
  grpc_metadata_array_destroy(&sc->req_md);
  grpc_slice_unref(sc->status_details);
  grpc_call_unref(sc->c);
  sc->w->in_flight--;
  if (sc->call)
    gw_call_unref(sc->call); /* the front door's reference; may free |sc| */
  else
    gw_arena_free(sc->arena);
}

static void on_close(gw_tag *tag, bool ok) {
  scall *sc = GW_CONTAINER_OF(tag, scall, close_tag);
  sc->pending--;
  if (sc->cancelled_flag && !sc->status_sent) {
    sc->client_gone = true;
    drop_queue(sc);
    watch_unlink(sc);
    /* The cancel may release the call (and |sc|, which lives in its arena)
     * unless a hold is kept across it. */
    sc->pending++;
    if (sc->call)
      gw_call_cancel(sc->call);
    else
      sc->finished = true;
    sc->pending--;
  }
  maybe_release(sc);
}

static void post_close(scall *sc) {
  grpc_op op = {.op = GRPC_OP_RECV_CLOSE_ON_SERVER};
  op.data.recv_close_on_server.cancelled = &sc->cancelled_flag;
  sc->close_tag.cb = on_close;
  sc->close_posted = true;
  sc->pending++;
  if (grpc_call_start_batch(sc->c, &op, 1, &sc->close_tag, NULL) != GRPC_CALL_OK) {
    sc->pending--;
    sc->client_gone = true;
  }
}

/* ---- request helpers ------------------------------------------------------------ */

static bool sane_request_id(const char *s, size_t n) {
  if (n == 0 || n > 128)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_' || c == '.'))
      return false;
  }
  return true;
}

static _Thread_local uint64_t rng_state;

static uint64_t next_random(void) {
  if (!rng_state) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    rng_state = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&ts;
    if (!rng_state)
      rng_state = 0x9e3779b97f4a7c15ULL;
  }
  uint64_t x = rng_state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  rng_state = x;
  return x;
}

/* "req_" and 24 hex digits (no printf: one per call). */
static char *new_request_id(gw_arena *a) {
  char *id = gw_arena_alloc(a, 4 + 24 + 1);
  if (!id)
    return NULL;
  memcpy(id, "req_", 4);
  gw_numtext_hex(next_random(), 16, id + 4);
  gw_numtext_hex(next_random() & 0xffffffffu, 8, id + 20);
  return id;
}

static const char *md_value(gw_arena *a, const grpc_metadata_array *md, const char *key) {
  size_t klen = strlen(key);
  for (size_t i = 0; i < md->count; i++) {
    const grpc_slice *k = &md->metadata[i].key;
    if (GRPC_SLICE_LENGTH(*k) == klen && memcmp(GRPC_SLICE_START_PTR(*k), key, klen) == 0) {
      const grpc_slice *v = &md->metadata[i].value;
      return gw_arena_strndup(a, (const char *)GRPC_SLICE_START_PTR(*v), GRPC_SLICE_LENGTH(*v));
    }
  }
  return NULL;
}

/* Reads |bb| into |out| (a slice the caller unrefs). False when unreadable. */
static bool read_all(grpc_byte_buffer *bb, grpc_slice *out) {
  grpc_byte_buffer_reader r;
  if (!bb || !grpc_byte_buffer_reader_init(&r, bb))
    return false;
  *out = grpc_byte_buffer_reader_readall(&r);
  grpc_byte_buffer_reader_destroy(&r);
  return true;
}

static int64_t deadline_to_ms(gpr_timespec deadline) {
  if (gpr_time_cmp(deadline, gpr_inf_future(deadline.clock_type)) == 0)
    return 0;
  gpr_timespec mono = gpr_convert_clock_type(deadline, GPR_CLOCK_MONOTONIC);
  gpr_timespec left = gpr_time_sub(mono, gpr_now(GPR_CLOCK_MONOTONIC));
  int64_t ms = gpr_time_to_millis(left);
  return gw_now_ms() + (ms > 0 ? ms : 0);
}

/* ---- health ------------------------------------------------------------------ */

/* The health service's names: "" (the server as a whole) or a service of ours. */
static bool known_service(const gw_descriptors *d, const char *name) {
  return !*name || gw_descriptors_has_service(d, name);
}

static int health_status(struct gw_grpc_front *f, const char *service) {
  if (!known_service(f->desc, service))
    return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
  return f->shutting_down ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
                          : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
}

static void send_health(scall *sc, int status) {
  Grpc__Health__V1__HealthCheckResponse resp;
  grpc__health__v1__health_check_response__init(&resp);
  resp.status = status;
  queue_message(sc, &resp.base);
}

static void start_health(scall *sc, grpc_byte_buffer *payload) {
  grpc_slice s;
  Grpc__Health__V1__HealthCheckRequest *req = NULL;
  ProtobufCAllocator alloc;
  gw_arena_pb_allocator(sc->arena, &alloc);
  if (read_all(payload, &s)) {
    req = grpc__health__v1__health_check_request__unpack(&alloc, GRPC_SLICE_LENGTH(s),
                                                         GRPC_SLICE_START_PTR(s));
    grpc_slice_unref(s);
  }
  if (!req) {
    queue_status(sc, GW_STATUS_INVALID_ARGUMENT,
                 "request is not a grpc.health.v1.HealthCheckRequest");
    return;
  }
  const char *service = req->service ? req->service : "";
  int st = health_status(sc->front, service);
  if (sc->kind == K_HEALTH_CHECK) {
    if (st == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN) {
      char msg[300];
      snprintf(msg, sizeof msg, "unknown service %.256s", service);
      queue_status(sc, GW_STATUS_NOT_FOUND, msg);
      return;
    }
    send_health(sc, st);
    queue_status(sc, GW_STATUS_OK, NULL);
    return;
  }
  /* Watch: the current status now; the stream stays open until the client
   * leaves or the server shuts down (then NOT_SERVING is sent). */
  send_health(sc, st);
  wstate *ws = &sc->front->ws[sc->w->id];
  sc->watch_next = ws->watches;
  if (ws->watches)
    ws->watches->watch_prev = sc;
  ws->watches = sc;
}

/* Runs on each worker at shutdown: ends every health watch. */
static void end_watches(gw_tag *tag, bool ok) {
  wstate *ws = GW_CONTAINER_OF(tag, wstate, end_tag);
  (void)ok;
  while (ws->watches) {
    scall *sc = ws->watches;
    watch_unlink(sc);
    if (!sc->client_gone) {
      send_health(sc, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING);
      queue_status(sc, GW_STATUS_UNAVAILABLE, "server shutting down");
    }
    sc->finished = true;
    maybe_release(sc);
  }
}

/* ---- reflection ------------------------------------------------------------- */

static void post_recv(scall *sc);

static void on_reflection_recv(gw_tag *tag, bool ok) {
  scall *sc = GW_CONTAINER_OF(tag, scall, recv_tag);
  sc->pending--;
  grpc_byte_buffer *bb = sc->recv_bb;
  sc->recv_bb = NULL;
  if (!ok || sc->client_gone) {
    if (bb)
      grpc_byte_buffer_destroy(bb);
    maybe_release(sc);
    return;
  }
  if (!bb) { /* the client half-closed: done */
    queue_status(sc, GW_STATUS_OK, NULL);
    maybe_release(sc);
    return;
  }
  grpc_slice s;
  bool readable = read_all(bb, &s);
  grpc_byte_buffer_destroy(bb);
  gw_buf out;
  gw_buf_init(&out, 64 << 20);
  int rc = readable ? gw_reflection_answer(sc->front->desc, GRPC_SLICE_START_PTR(s),
                                           GRPC_SLICE_LENGTH(s), &out)
                    : GW_ERR_INVALID;
  if (readable)
    grpc_slice_unref(s);
  if (rc == GW_OK) {
    queue_bytes(sc, out.data ? out.data : "", out.len);
    post_recv(sc);
  } else {
    queue_status(sc, rc == GW_ERR_INVALID ? GW_STATUS_INVALID_ARGUMENT : GW_STATUS_INTERNAL,
                 rc == GW_ERR_INVALID ? "request is not a ServerReflectionRequest"
                                      : "reflection failed");
  }
  gw_buf_release(&out);
  maybe_release(sc);
}

static void post_recv(scall *sc) {
  grpc_op op = {.op = GRPC_OP_RECV_MESSAGE};
  op.data.recv_message.recv_message = &sc->recv_bb;
  sc->recv_tag.cb = on_reflection_recv;
  sc->pending++;
  if (grpc_call_start_batch(sc->c, &op, 1, &sc->recv_tag, NULL) != GRPC_CALL_OK) {
    sc->pending--;
    queue_status(sc, GW_STATUS_INTERNAL, "cannot read from the stream");
  }
}

/* ---- accepting ----------------------------------------------------------------- */

static void start_pipeline(scall *sc, grpc_byte_buffer *payload, gpr_timespec deadline) {
  gw_call *call = sc->call;
  call->request_id = sc->request_id;
  call->authorization = md_value(sc->arena, &sc->req_md, "authorization");
  call->traceparent = md_value(sc->arena, &sc->req_md, "traceparent");
  call->front = "grpc";
  call->sink = &grpc_sink;
  call->sink_ctx = sc;
  call->deadline_ms = deadline_to_ms(deadline);

  grpc_slice s;
  ProtobufCAllocator alloc;
  gw_arena_pb_allocator(sc->arena, &alloc);
  if (!read_all(payload, &s)) {
    gw_call_finish(call, GW_STATUS_INVALID_ARGUMENT, "request message missing");
    return;
  }
  call->request = protobuf_c_message_unpack(sc->m->input, &alloc, GRPC_SLICE_LENGTH(s),
                                            GRPC_SLICE_START_PTR(s));
  call->request_bytes = GRPC_SLICE_LENGTH(s);
  grpc_slice_unref(s);
  if (!call->request) {
    gw_call_finishf(call, GW_STATUS_INVALID_ARGUMENT, "request is not a valid %s",
                    sc->m->input_type);
    return;
  }
  GW_LOGD("grpc", call->request_id, "%s started", sc->m->path);
  gw_call_start(call);
}

static void dispatch(acceptor *a, grpc_call *c, grpc_metadata_array md, grpc_byte_buffer *payload,
                     gpr_timespec deadline, char *unknown_path) {
  struct gw_grpc_front *f = a->front;
  gw_arena *arena = gw_arena_new(8192, 0);
  gw_call *call = NULL;
  scall *sc = NULL;
  if (arena && a->kind == K_PIPELINE) {
    call = gw_call_new(arena, a->w, f->pipeline, a->m);
    if (!call)
      arena = NULL; /* freed by gw_call_new */
  }
  if (arena)
    sc = gw_arena_calloc(arena, sizeof(*sc));
  if (!sc) {
    /* Out of memory: refuse the call without touching it further. */
    if (call)
      gw_call_unref(call);
    else
      gw_arena_free(arena);
    grpc_call_cancel_with_status(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
    grpc_call_unref(c);
    grpc_metadata_array_destroy(&md);
    if (payload)
      grpc_byte_buffer_destroy(payload);
    gw_free(unknown_path);
    return;
  }
  sc->front = f;
  sc->w = a->w;
  sc->arena = arena;
  sc->call = call;
  sc->c = c;
  sc->m = a->m;
  sc->kind = a->kind;
  sc->req_md = md;
  sc->status_details = grpc_empty_slice();
  sc->streaming = a->m && a->m->server_streaming;
  a->w->in_flight++;

  const char *rid = NULL;
  for (size_t i = 0; i < md.count; i++) {
    const grpc_slice *k = &md.metadata[i].key;
    if (GRPC_SLICE_LENGTH(*k) == 12 && memcmp(GRPC_SLICE_START_PTR(*k), "x-request-id", 12) == 0 &&
        sane_request_id((const char *)GRPC_SLICE_START_PTR(md.metadata[i].value),
                        GRPC_SLICE_LENGTH(md.metadata[i].value)))
      rid = gw_arena_strndup(arena, (const char *)GRPC_SLICE_START_PTR(md.metadata[i].value),
                             GRPC_SLICE_LENGTH(md.metadata[i].value));
  }
  sc->request_id = rid ? rid : new_request_id(arena);
  if (sc->request_id) {
    sc->init_md[0].key = grpc_slice_from_static_string("x-request-id");
    sc->init_md[0].value = grpc_slice_from_static_string(sc->request_id);
  }

  /* The close is posted at the end: a call answered right here sends its
   * status and takes its close in one batch. */
  sc->in_dispatch = true;
  switch (sc->kind) {
  case K_PIPELINE: start_pipeline(sc, payload, deadline); break;
  case K_HEALTH_CHECK:
  case K_HEALTH_WATCH: start_health(sc, payload); break;
  case K_REFLECTION:
    sc->streaming = true;
    post_recv(sc);
    break;
  default: {
    char msg[512];
    snprintf(msg, sizeof msg, "unknown method %.400s", unknown_path ? unknown_path : "?");
    GW_LOGD("grpc", sc->request_id, "%s", msg);
    sc->finished = true;
    queue_status(sc, GW_STATUS_UNIMPLEMENTED, msg);
  }
  }
  if (payload)
    grpc_byte_buffer_destroy(payload);
  gw_free(unknown_path);
  sc->in_dispatch = false;
  if (pump(sc))
    return; /* the last batch is out and owns |sc| */
  if (!sc->close_posted && !sc->client_gone)
    post_close(sc);
  maybe_release(sc);
}

static void on_accept(gw_tag *tag, bool ok) {
  acceptor *a = GW_CONTAINER_OF(tag, acceptor, tag);
  if (!ok) {
    a->live = false; /* the server is shutting down */
    return;
  }
  grpc_call *c = a->c;
  grpc_metadata_array md = a->md;
  grpc_byte_buffer *payload = a->payload;
  gpr_timespec deadline = a->m ? a->deadline : a->details.deadline;
  char *path = NULL;
  if (!a->m) {
    path = gw_strndup((const char *)GRPC_SLICE_START_PTR(a->details.method),
                      GRPC_SLICE_LENGTH(a->details.method));
    grpc_call_details_destroy(&a->details);
  }
  a->c = NULL;
  a->payload = NULL;
  grpc_metadata_array_init(&a->md);
  post_accept(a);
  dispatch(a, c, md, payload, deadline, path);
}

static void post_accept(acceptor *a) {
  struct gw_grpc_front *f = a->front;
  if (f->shutting_down) {
    a->live = false;
    return;
  }
  grpc_call_error err;
  a->tag.cb = on_accept;
  if (a->m) {
    err = grpc_server_request_registered_call(f->server, a->handle, &a->c, &a->deadline, &a->md,
                                              a->m->client_streaming ? NULL : &a->payload, a->w->cq,
                                              a->w->cq, &a->tag);
  } else {
    grpc_call_details_init(&a->details);
    err = grpc_server_request_call(f->server, &a->c, &a->details, &a->md, a->w->cq, a->w->cq,
                                   &a->tag);
  }
  a->live = err == GRPC_CALL_OK;
  if (!a->live && !a->m)
    grpc_call_details_destroy(&a->details);
}

static int method_kind(const gw_method_info *m) {
  if (strcmp(m->service, "grpc.health.v1.Health") == 0)
    return strcmp(m->name, "Watch") == 0 ? K_HEALTH_WATCH : K_HEALTH_CHECK;
  if (strcmp(m->service, "grpc.reflection.v1.ServerReflection") == 0 ||
      strcmp(m->service, "grpc.reflection.v1alpha.ServerReflection") == 0)
    return K_REFLECTION;
  if (m->input && m->output && !m->client_streaming)
    return K_PIPELINE;
  return -1;
}

int gw_grpc_front_start(const gw_grpc_front_options *opts, const gw_descriptors *desc,
                        gw_pipeline *pipeline, gw_worker *workers, int n_workers,
                        gw_grpc_front **out) {
  struct gw_grpc_front *f = gw_calloc(1, sizeof(*f));
  if (!f)
    return GW_ERR_NOMEM;
  f->desc = desc;
  f->pipeline = pipeline;
  f->workers = workers;
  f->n_workers = n_workers;
  int per = opts->accepts_per_method > 0 ? opts->accepts_per_method : 4;
  size_t n_methods = gw_descriptors_method_count(desc);
  f->acceptors = gw_calloc((n_methods * (size_t)per + 1) * (size_t)n_workers, sizeof(acceptor));
  f->ws = gw_calloc((size_t)n_workers, sizeof(wstate));
  f->shutdown_cq = grpc_completion_queue_create_for_pluck(NULL);
  if (!f->acceptors || !f->ws || !f->shutdown_cq) {
    gw_grpc_front_free(f);
    return GW_ERR_NOMEM;
  }
  for (int i = 0; i < n_workers; i++)
    f->ws[i].front = f;

  grpc_arg args[] = {
      {.type = GRPC_ARG_INTEGER,
       .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
       .value.integer = opts->max_message_bytes > 0 ? opts->max_message_bytes : 4 << 20},
  };
  grpc_channel_args ch_args = {1, args};
  f->server = grpc_server_create(&ch_args, NULL);
  for (int i = 0; i < n_workers; i++)
    grpc_server_register_completion_queue(f->server, workers[i].cq, NULL);

  void **handles = gw_calloc(n_methods + 1, sizeof(void *));
  if (!handles) {
    gw_grpc_front_free(f);
    return GW_ERR_NOMEM;
  }
  for (size_t i = 0; i < n_methods; i++) {
    const gw_method_info *m = gw_descriptors_method(desc, i);
    if (method_kind(m) < 0)
      continue;
    handles[i] = grpc_server_register_method(
        f->server, m->path, NULL,
        m->client_streaming ? GRPC_SRM_PAYLOAD_NONE : GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
  }

  char addr[300];
  snprintf(addr, sizeof addr, "%s:%d", opts->host ? opts->host : "0.0.0.0", opts->port);
  grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
  f->port = grpc_server_add_http2_port(f->server, addr, creds);
  grpc_server_credentials_release(creds);
  if (f->port == 0) {
    GW_LOGE("grpc", NULL, "cannot listen on %s", addr);
    gw_free(handles);
    grpc_server_destroy(f->server);
    f->server = NULL;
    gw_grpc_front_free(f);
    return GW_ERR_IO;
  }
  grpc_server_start(f->server);

  for (int wi = 0; wi < n_workers; wi++) {
    workers[wi].grpc_front = f;
    for (size_t i = 0; i < n_methods; i++) {
      if (!handles[i])
        continue;
      const gw_method_info *m = gw_descriptors_method(desc, i);
      for (int k = 0; k < per; k++) {
        acceptor *a = &f->acceptors[f->n_acceptors++];
        a->front = f;
        a->w = &workers[wi];
        a->m = m;
        a->kind = method_kind(m);
        a->handle = handles[i];
        grpc_metadata_array_init(&a->md);
        post_accept(a);
      }
    }
    acceptor *a = &f->acceptors[f->n_acceptors++];
    a->front = f;
    a->w = &workers[wi];
    a->kind = K_UNKNOWN;
    grpc_metadata_array_init(&a->md);
    post_accept(a);
  }
  gw_free(handles);
  GW_LOGI("grpc", NULL, "gRPC front door listening on %s (port %d)", addr, f->port);
  *out = f;
  return GW_OK;
}

int gw_grpc_front_port(const gw_grpc_front *f) { return f->port; }

void gw_grpc_front_shutdown(gw_grpc_front *f, int grace_ms) {
  if (!f->server)
    return;
  f->shutting_down = 1;
  for (int i = 0; i < f->n_workers; i++) {
    f->ws[i].end_tag.cb = end_watches;
    gw_worker_run(&f->workers[i], &f->ws[i].end_tag);
  }
  static int shutdown_tag;
  grpc_server_shutdown_and_notify(f->server, f->shutdown_cq, &shutdown_tag);
  gpr_timespec until =
      gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(grace_ms, GPR_TIMESPAN));
  grpc_event ev = grpc_completion_queue_pluck(f->shutdown_cq, &shutdown_tag, until, NULL);
  if (ev.type == GRPC_QUEUE_TIMEOUT) {
    GW_LOGW("grpc", NULL, "grace period of %d ms over: cancelling the calls still open", grace_ms);
    grpc_server_cancel_all_calls(f->server);
    grpc_completion_queue_pluck(f->shutdown_cq, &shutdown_tag, gpr_inf_future(GPR_CLOCK_MONOTONIC),
                                NULL);
  }
  grpc_server_destroy(f->server);
  f->server = NULL;
}

void gw_grpc_front_free(gw_grpc_front *f) {
  if (!f)
    return;
  if (f->server) {
    grpc_server_destroy(f->server);
  }
  for (size_t i = 0; i < f->n_acceptors; i++)
    grpc_metadata_array_destroy(&f->acceptors[i].md);
  if (f->shutdown_cq) {
    grpc_completion_queue_shutdown(f->shutdown_cq);
    grpc_completion_queue_destroy(f->shutdown_cq);
  }
  gw_free(f->acceptors);
  gw_free(f->ws);
  gw_free(f);
}
