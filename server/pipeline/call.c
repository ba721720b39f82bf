/* The call object: stage stepping, response emission, the one end path. */
#include "pipeline/call.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "engine/worker.h"
#include "pipeline/pipeline.h"

int64_t gw_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *gw_call_state_to_str(gw_call_state s) {
  switch (s) {
  case GW_CALL_NEW: return "new";
  case GW_CALL_RUNNING: return "running";
  case GW_CALL_DONE: return "done";
  }
  return "?";
}

gw_call *gw_call_new(gw_arena *arena, struct gw_worker *worker, struct gw_pipeline *pipeline,
                     const gw_method_info *method) {
  gw_call *call = gw_arena_calloc(arena, sizeof(*call));
  if (!call) {
    gw_arena_free(arena);
    return NULL;
  }
  call->arena = arena;
  call->worker = worker;
  call->pipeline = pipeline;
  call->method = method;
  call->refs = 1;
  call->state = GW_CALL_NEW;
  call->started_ms = gw_now_ms();
  return call;
}

void gw_call_ref(gw_call *call) { call->refs++; }

void gw_call_unref(gw_call *call) {
  if (--call->refs > 0)
    return;
  if (call->deadline_ev)
    event_free(call->deadline_ev);
  gw_arena_free(call->arena);
}

static void end(gw_call *call, gw_status_code code, const char *message);

static void on_deadline(evutil_socket_t fd, short what, void *arg) {
  gw_call *call = arg;
  end(call, GW_STATUS_DEADLINE_EXCEEDED, "deadline exceeded"); /* no retry past the deadline */
}

static void run_stage(gw_call *call) {
  gw_pipeline *p = call->pipeline;
  if (call->stage >= p->n_stages) {
    gw_call_finish(call, GW_STATUS_INTERNAL, "no stage answered the call");
    return;
  }
  const gw_stage *st = &p->stages[call->stage];
  st->run(st, call);
}

void gw_call_start(gw_call *call) {
  call->state = GW_CALL_RUNNING;
  call->stage = 0;
  if (call->deadline_ms && call->worker) {
    int64_t left = call->deadline_ms - gw_now_ms();
    if (left <= 0) {
      gw_call_finish(call, GW_STATUS_DEADLINE_EXCEEDED,
                     "deadline exceeded before the call started");
      return;
    }
    call->deadline_ev = evtimer_new(call->worker->base, on_deadline, call);
    if (call->deadline_ev) {
      struct timeval tv = {(time_t)(left / 1000), (suseconds_t)((left % 1000) * 1000)};
      evtimer_add(call->deadline_ev, &tv);
    }
  }
  run_stage(call);
}

void gw_call_next(gw_call *call) {
  if (call->state != GW_CALL_RUNNING)
    return;
  call->stage++;
  run_stage(call);
}

int gw_call_emit(gw_call *call, const ProtobufCMessage *msg) {
  if (call->state != GW_CALL_RUNNING)
    return GW_ERR_STATE;
  gw_pipeline *p = call->pipeline;
  size_t last = call->stage < p->n_stages ? call->stage : p->n_stages - 1;
  for (size_t i = last + 1; i-- > 0;) {
    const gw_stage *st = &p->stages[i];
    if (st->on_message)
      st->on_message(st, call, msg);
  }
  call->messages_out++;
  return call->sink->message(call->sink_ctx, call, msg);
}

bool gw_call_sink_ready(const gw_call *call) {
  return call->state == GW_CALL_RUNNING && call->sink->ready(call->sink_ctx);
}

static void end(gw_call *call, gw_status_code code, const char *message) {
  if (call->state == GW_CALL_DONE)
    return;
  bool started = call->state == GW_CALL_RUNNING;
  call->state = GW_CALL_DONE;
  call->status = code;
  if (call->deadline_ev)
    evtimer_del(call->deadline_ev);
  /* Keep the call alive through the provider's cancel and the sink's finish,
   * either of which may drop the last other reference. */
  gw_call_ref(call);
  if (call->provider && call->provider_state && call->provider->cancel)
    call->provider->cancel(call);
  if (started) {
    gw_pipeline *p = call->pipeline;
    size_t last = call->stage < p->n_stages ? call->stage : p->n_stages - 1;
    for (size_t i = last + 1; i-- > 0;) {
      const gw_stage *st = &p->stages[i];
      if (st->on_finish)
        st->on_finish(st, call, code);
    }
  }
  if (code == GW_STATUS_OK)
    GW_LOGD("call", call->request_id, "%s finished OK", call->method->path);
  else
    GW_LOGI("call", call->request_id, "%s finished %s: %s", call->method->path,
            gw_status_code_name(code), message ? message : "");
  call->sink->finish(call->sink_ctx, call, code, message ? message : "");
  gw_call_unref(call);
}

/* The retry hook's turn (see call.h): true when it took the failure over. */
static bool retried(gw_call *call, gw_status_code code, const char *message) {
  if (!call->retry || code == GW_STATUS_OK || call->state != GW_CALL_RUNNING ||
      call->messages_out != 0)
    return false;
  return call->retry(call, code, message);
}

void gw_call_finish(gw_call *call, gw_status_code code, const char *message) {
  if (retried(call, code, message))
    return;
  end(call, code, message);
}

void gw_call_reset_provider(gw_call *call) {
  call->provider = NULL;
  call->provider_state = NULL;
  memset(&call->upstream_error, 0, sizeof(call->upstream_error));
}

void gw_call_finishf(gw_call *call, gw_status_code code, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (retried(call, code, msg))
    return;
  end(call, code, msg);
}

void gw_call_cancel(gw_call *call) { end(call, GW_STATUS_CANCELLED, "cancelled by the client"); }

void gw_call_sink_drained(gw_call *call) {
  if (call->state == GW_CALL_RUNNING && call->provider && call->provider_state &&
      call->provider->resume)
    call->provider->resume(call);
}
