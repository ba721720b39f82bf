/* The pipeline: an ordered list of stages every call runs through —
 * authenticate → limit → cache → route → provider — the same for both front
 * doors. A stage may end the call early (401, 429, a cache hit), or pass it
 * on and watch what comes back. Later features are new stages. */
#ifndef GW_PIPELINE_PIPELINE_H
#define GW_PIPELINE_PIPELINE_H

#include <stdatomic.h>
#include <stddef.h>

#include "core/shard.h"
#include "pipeline/call.h"

typedef struct gw_stage {
  const char *name;
  /* Must end with gw_call_next(call) or gw_call_finish(call, ...), now or
   * later on the same worker. */
  void (*run)(const struct gw_stage *stage, gw_call *call);
  /* Optional watchers, run for every response message and at the end, in
   * reverse stage order (the stage nearest the provider first). */
  void (*on_message)(const struct gw_stage *stage, gw_call *call, const ProtobufCMessage *msg);
  void (*on_finish)(const struct gw_stage *stage, gw_call *call, gw_status_code code);
  void *arg;
} gw_stage;

/* Counters every call updates (read by the Admin service). Each thread
 * adds to its own copy (core/shard.h); gw_pipeline_stats() adds them up. */
typedef struct gw_stats {
  _Atomic long long requests_total, requests_failed, in_flight, streams_total;
  _Atomic long long prompt_tokens, completion_tokens;
} gw_stats;
typedef struct gw_stats_shard {
  gw_stats s;
  char pad[GW_SHARD_STRIDE - sizeof(gw_stats)];
} gw_stats_shard;

/* The counters of every thread, added up. */
typedef struct gw_stats_sum {
  long long requests_total, requests_failed, in_flight, streams_total;
  long long prompt_tokens, completion_tokens;
} gw_stats_sum;

typedef struct gw_pipeline {
  gw_stage *stages;
  size_t n_stages, cap_stages;
  int64_t started_ms;
  void *router;   /* the route stage's state (see route.h) */
  char apart[64]; /* the fields above, read by every call, share no line with the counters */
  gw_stats_shard stats[GW_SHARDS];
} gw_pipeline;

void gw_pipeline_init(gw_pipeline *p);
void gw_pipeline_release(gw_pipeline *p);
/* Appends a stage (copied). GW_OK or GW_ERR_NOMEM. */
int gw_pipeline_add(gw_pipeline *p, const gw_stage *stage);
/* The counters, summed over the threads' shards. */
void gw_pipeline_stats(const gw_pipeline *p, gw_stats_sum *out);

/* The pass-through stages that later work fills: authenticate, limit,
 * cache. They are real stages in the chain (tests observe them run) that
 * pass every call on. */
extern const gw_stage gw_stage_auth;
extern const gw_stage gw_stage_limit;
extern const gw_stage gw_stage_cache;
/* Counts requests, failures, streams and tokens into p->stats. */
extern const gw_stage gw_stage_stats;

#endif
