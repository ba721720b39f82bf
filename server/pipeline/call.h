/* The call: one request moving through the pipeline, whichever front door
 * (gRPC or HTTP) it came from. A front door creates it, fills the request
 * and the sink, and starts the pipeline; stages and the provider work on it;
 * responses go back through the stages' watchers to the sink. A call lives on
 * one worker thread for its whole life: nothing here is locked.
 *
 * Lifetime: a reference count. The front door holds one reference from
 * gw_call_new() until it has nothing more to do with the call; a provider
 * holds one while its upstream exchange is open. The last gw_call_unref()
 * disposes of the call: its arena and everything allocated from it. */
#ifndef GW_PIPELINE_CALL_H
#define GW_PIPELINE_CALL_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/status.h"
#include "proto/descriptors.h"

struct gw_worker;
struct gw_pipeline;
struct event;
typedef struct gw_call gw_call;

/* The front door's writer. All three run on the call's worker. */
typedef struct gw_sink_ops {
  /* One response message (a unary reply or one stream chunk). The sink
   * serializes or copies it before returning; the caller keeps ownership.
   * Returns GW_OK or a GW_ERR_* code when the message cannot be delivered. */
  int (*message)(void *ctx, gw_call *call, const ProtobufCMessage *msg);
  /* The end of the call: |code| and a message for the client. Called once. */
  void (*finish)(void *ctx, gw_call *call, gw_status_code code, const char *message);
  /* False while the sink holds more than its low-water mark of unsent bytes.
   * When it turns true again the front door calls gw_call_sink_drained(). */
  bool (*ready)(void *ctx);
} gw_sink_ops;

/* An upstream exchange. The provider owns |call->provider_state|. */
typedef struct gw_provider_ops {
  const char *name;
  /* Starts the exchange. It emits messages with gw_call_emit() and ends with
   * gw_call_finish(). Returns GW_OK, or an error after which the pipeline
   * finishes the call with UNAVAILABLE. It takes a reference (gw_call_ref) for
   * as long as it has upstream work open. */
  int (*start)(gw_call *call);
  /* Stops the exchange at once (client gone, deadline, shutdown). The
   * provider still drops its reference when its upstream work has ended. */
  void (*cancel)(gw_call *call);
  /* The sink drained: read more from upstream. May be NULL. */
  void (*resume)(gw_call *call);
} gw_provider_ops;

typedef enum {
  GW_CALL_NEW = 0,
  GW_CALL_RUNNING, /* in the stages or at the provider */
  GW_CALL_DONE,    /* finished: status handed to the sink */
} gw_call_state;

const char *gw_call_state_to_str(gw_call_state s);

typedef struct gw_usage {
  int64_t prompt_tokens, completion_tokens;
} gw_usage;

/* Where the route stage sent the call. */
typedef struct gw_route {
  const char *backend;        /* config backend name, NULL for built-ins */
  const char *upstream_model; /* model name the backend knows, may be NULL */
  const void *backend_impl;   /* the provider's per-backend object */
} gw_route;

struct gw_call {
  gw_arena *arena;
  struct gw_worker *worker;
  struct gw_pipeline *pipeline;
  const gw_method_info *method;
  ProtobufCMessage *request; /* in |arena| */
  /* The request's size as it came (the JSON body, the protobuf message): a
   * hint for the room of what is written from it (0 when unknown). */
  size_t request_bytes;

  /* Request metadata (in |arena|; NULL when absent). */
  const char *request_id;
  const char *authorization; /* secret: never logged */
  const char *traceparent;
  const char *front; /* "grpc" or "http" */

  /* Absolute deadline on the monotonic clock in ms; 0 means none. */
  int64_t deadline_ms;
  int64_t started_ms;

  const char *principal; /* who is calling, set by the auth stage */
  /* A backend the call must be served by (the /local/... HTTP routes), NULL
   * for whichever the model routes to. */
  const char *backend_hint;
  /* What an HTTP upstream said when it failed, for the HTTP front door to pass
   * through (status 0 when there is none). Strings in |arena|. */
  struct {
    int http_status;
    const char *type, *code, *param;
    const char *retry_after; /* Retry-After to pass on, NULL when none */
  } upstream_error;
  gw_route route;
  gw_usage usage;
  /* The route stage's per-call state (attempts, the config snapshot held). */
  void *route_state;
  /* The retry hook (see gw_call_finish): set by the route stage while a
   * provider attempt runs, NULL otherwise. */
  bool (*retry)(gw_call *call, gw_status_code code, const char *message);

  const gw_sink_ops *sink;
  void *sink_ctx;
  const gw_provider_ops *provider;
  void *provider_state;

  gw_call_state state;
  size_t stage; /* index of the stage running now */
  int refs;
  int messages_out;
  gw_status_code status;
  struct event *deadline_ev;
};

/* Creates a call owning |arena| (taken: freed when the call is disposed of,
 * also when this fails). Returns NULL when out of memory. */
gw_call *gw_call_new(gw_arena *arena, struct gw_worker *worker, struct gw_pipeline *pipeline,
                     const gw_method_info *method);

void gw_call_ref(gw_call *call);
/* Drops a reference; the last one disposes of the call. */
void gw_call_unref(gw_call *call);

/* Runs the stages from the first. The deadline timer starts here. */
void gw_call_start(gw_call *call);

/* From a stage: pass the call to the next stage (or the provider). */
void gw_call_next(gw_call *call);

/* Sends |msg| through the stages' watchers to the sink. The caller keeps
 * |msg|. Returns GW_OK, or an error when the call is already done. */
int gw_call_emit(gw_call *call, const ProtobufCMessage *msg);

/* True when the sink can take another message without growing its buffers. */
bool gw_call_sink_ready(const gw_call *call);

/* Ends the call with |code| and |message| (copied), once: later calls are
 * ignored. Cancels a provider that is still working.
 *
 * Retries: when the call is running, |code| is not OK, no message has been
 * emitted yet (|messages_out| == 0: nothing reached the client, so the
 * request may be sent again) and |call->retry| is set, the hook runs first.
 * If it returns true it has taken the failure over: the call stays running,
 * nothing reaches the stages' watchers or the sink, and the hook will start
 * another attempt later (from a timer on the call's worker, after
 * gw_call_reset_provider()) or end the call itself. The provider that
 * called gw_call_finish() must treat its exchange as over either way — it
 * releases its upstream work exactly as after a real finish — and must not
 * touch |call->provider_state| afterwards (the next attempt owns it).
 * The deadline timer and gw_call_cancel() never go through the hook. */
void gw_call_finish(gw_call *call, gw_status_code code, const char *message);
void gw_call_finishf(gw_call *call, gw_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Forgets the last attempt's provider (provider, provider_state and
 * upstream_error cleared) so that another provider can start the call. For
 * the retry hook, on the call's worker, while the call is running. */
void gw_call_reset_provider(gw_call *call);

/* The client went away: ends the call with CANCELLED without writing to the
 * sink (its finish still runs so the front door can clean up). */
void gw_call_cancel(gw_call *call);

/* From the front door: the sink's buffers fell below the low-water mark. */
void gw_call_sink_drained(gw_call *call);

/* Milliseconds on the monotonic clock. */
int64_t gw_now_ms(void);

#endif
