/* The stage list and the built-in pass-through and statistics stages. */
#include "pipeline/pipeline.h"

#include <string.h>

#include "core/alloc.h"
#include "core/pbfield.h"

void gw_pipeline_init(gw_pipeline *p) {
  memset(p, 0, sizeof(*p));
  p->started_ms = gw_now_ms();
}

void gw_pipeline_release(gw_pipeline *p) {
  gw_free(p->stages);
  p->stages = NULL;
  p->n_stages = p->cap_stages = 0;
}

int gw_pipeline_add(gw_pipeline *p, const gw_stage *stage) {
  if (p->n_stages == p->cap_stages) {
    size_t cap = p->cap_stages ? p->cap_stages * 2 : 8;
    gw_stage *s = gw_realloc(p->stages, cap * sizeof(*s));
    if (!s)
      return GW_ERR_NOMEM;
    p->stages = s;
    p->cap_stages = cap;
  }
  p->stages[p->n_stages++] = *stage;
  return GW_OK;
}

/* Authentication is filled by the auth issue: every caller is anonymous. */
static void auth_run(const gw_stage *st, gw_call *call) {
  call->principal = "anonymous";
  gw_call_next(call);
}

static void pass_run(const gw_stage *st, gw_call *call) { gw_call_next(call); }

const gw_stage gw_stage_auth = {.name = "auth", .run = auth_run};
const gw_stage gw_stage_limit = {.name = "limit", .run = pass_run};
const gw_stage gw_stage_cache = {.name = "cache", .run = pass_run};

/* Message field |f| of |msg| (NULL when absent or not a message). */
static const ProtobufCMessage *sub_message(const ProtobufCMessage *msg,
                                           const ProtobufCFieldDescriptor *f) {
  if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED)
    return NULL;
  return *(const ProtobufCMessage *const *)((const char *)msg + f->offset);
}

static int32_t int32_field(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f) {
  if (!f || f->type != PROTOBUF_C_TYPE_INT32 || f->label == PROTOBUF_C_LABEL_REPEATED)
    return 0;
  return *(const int32_t *)((const char *)msg + f->offset);
}

/* Token usage, whatever the response type: any message with a `usage` field
 * holding prompt_tokens / completion_tokens (a stream reports it once). */
static void stats_message(const gw_stage *st, gw_call *call, const ProtobufCMessage *msg) {
  const ProtobufCMessage *usage = sub_message(msg, GW_PB_FIELD(msg->descriptor, "usage"));
  if (!usage)
    return;
  call->usage.prompt_tokens = int32_field(usage, GW_PB_FIELD(usage->descriptor, "prompt_tokens"));
  call->usage.completion_tokens =
      int32_field(usage, GW_PB_FIELD(usage->descriptor, "completion_tokens"));
}

static void stats_run(const gw_stage *st, gw_call *call) {
  gw_stats *s = &call->pipeline->stats[gw_shard()].s;
  s->requests_total++;
  s->in_flight++;
  if (call->method->server_streaming)
    s->streams_total++;
  gw_call_next(call);
}

static void stats_finish(const gw_stage *st, gw_call *call, gw_status_code code) {
  gw_stats *s = &call->pipeline->stats[gw_shard()].s;
  s->in_flight--; /* maybe another shard than took it: the sum is right */
  if (code != GW_STATUS_OK)
    s->requests_failed++;
  if (call->usage.prompt_tokens)
    s->prompt_tokens += call->usage.prompt_tokens;
  if (call->usage.completion_tokens)
    s->completion_tokens += call->usage.completion_tokens;
}

void gw_pipeline_stats(const gw_pipeline *p, gw_stats_sum *out) {
  memset(out, 0, sizeof(*out));
  for (size_t i = 0; i < GW_SHARDS; i++) {
    const gw_stats *s = &p->stats[i].s;
    out->requests_total += atomic_load(&s->requests_total);
    out->requests_failed += atomic_load(&s->requests_failed);
    out->in_flight += atomic_load(&s->in_flight);
    out->streams_total += atomic_load(&s->streams_total);
    out->prompt_tokens += atomic_load(&s->prompt_tokens);
    out->completion_tokens += atomic_load(&s->completion_tokens);
  }
}

const gw_stage gw_stage_stats = {
    .name = "stats", .run = stats_run, .on_message = stats_message, .on_finish = stats_finish};
