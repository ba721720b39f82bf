/* The route stage and the backends it routes to: it resolves what serves a
 * call (a configured backend for inference calls by model name, or a
 * built-in for model listing and administration) and starts that provider. */
#ifndef GW_PIPELINE_ROUTE_H
#define GW_PIPELINE_ROUTE_H

#include <pthread.h>
#include <stdatomic.h>

#include "config/config.h"
#include "pipeline/call.h"
#include "pipeline/pipeline.h"

struct gw_catalog;
struct gw_catalog_refresher;

struct gw_provider_kind;

typedef struct gw_backend {
  const gw_backend_conf *conf;
  const struct gw_provider_kind *kind; /* NULL: no such provider in this build */
  const gw_provider_ops *ops;
  void *impl; /* provider's own state: a gRPC channel, ... */
  /* Models the backend lists (openai backends), NULL otherwise. A wildcard
   * entry routes a model to it only when the catalog lists the model (once
   * loaded at least once). */
  struct gw_catalog *catalog;
} gw_backend;

struct gw_route_table;

/* A table's reference count and the router's |acquiring| are sums over
 * per-thread shards (core/shard.h); only the collector (gw_router_collect)
 * adds them up. */
typedef struct gw_route_shard {
  _Atomic long n;
  char pad[64 - sizeof(long)]; /* counters 64 bytes apart share no line, however aligned */
} gw_route_shard;

/* The router: the route stage's long-lived state. It holds the current
 * routing table (config + backends + per-deployment health and balancing),
 * swapped atomically by gw_router_reload(); a call holds the table it was
 * routed with (a reference from the route stage until the call is disposed
 * of), so a reload never changes a call in flight. */
typedef struct gw_router {
  _Atomic(struct gw_route_table *) current; /* read by every call: kept off the counters' lines */
  char current_pad[64];
  gw_route_shard acquiring[GW_SHARDS]; /* calls between loading |current| and taking a ref */
  _Atomic int shutting_down;
  bool catalogs;                  /* gw_router_start_catalogs ran: new tables start theirs */
  struct gw_route_table *retired; /* replaced tables waiting for their last call (main thread) */
  unsigned generation;
  /* The active prober (gw_router_start_probes). */
  bool probing, probe_stop;
  pthread_t prober;
  pthread_mutex_t probe_mu;
  pthread_cond_t probe_cv;
} gw_router;

/* One routing table. Immutable after it is built, except for the atomics
 * of its deployments' live state. */
typedef struct gw_route_table {
  gw_route_shard refs[GW_SHARDS]; /* the router's (while current) + one per call routed */
  unsigned generation;
  const gw_config *config;
  gw_config *owned_config; /* a reloaded config, freed with the table; NULL for the first */
  gw_backend *backends;
  size_t n_backends;
  struct gw_model_rt *models; /* parallel to config->models */
  struct gw_catalog_refresher *refresher;
  struct gw_table_policy *policy;
  struct gw_route_table *next_retired;
} gw_route_table;

/* Builds a router over |config| (borrowed: must outlive the router, or until
 * a reload replaces it); opens a channel per gRPC backend, sets up each
 * OpenAI-compatible backend and its (empty) model catalog, and the
 * per-deployment balancing and health state. GW_OK, GW_ERR_NOMEM or
 * GW_ERR_UNSUPPORTED (|err| says why). */
int gw_router_new(const gw_config *config, gw_buf *err, gw_router **out);
/* Frees the router and its tables (no call may still be running). */
void gw_router_free(gw_router *r);

/* Builds a table from |config| (taken, on success and on failure; gw_malloc'd
 * and released with gw_config_release + gw_free) and makes it current; the
 * replaced table is retired and freed by gw_router_collect() once no call
 * holds it. Any thread, one reload at a time. GW_OK, GW_ERR_NOMEM,
 * GW_ERR_UNSUPPORTED. */
int gw_router_reload(gw_router *r, gw_config *config, gw_buf *err);

/* Frees retired tables that no call holds any more. Returns how many are
 * still waiting. Same thread as gw_router_reload. */
size_t gw_router_collect(gw_router *r);

/* The current table with a reference taken (any thread); give it back with
 * gw_route_table_release(). */
gw_route_table *gw_router_acquire(gw_router *r);
void gw_route_table_release(gw_route_table *t);

/* Starts the background thread that fetches the openai backends' model
 * lists now and every MODELS_REFRESH_S seconds (and does so for every table
 * a reload brings). No-op without such backends. GW_OK, GW_ERR_NOMEM or
 * GW_ERR_IO. */
int gw_router_start_catalogs(gw_router *r);

/* Starts the thread that actively probes ejected deployments every
 * routing.probe_interval_ms of the current table (it idles while that is 0):
 * a probe that answers readmits the deployment before a call has to try it.
 * GW_OK or GW_ERR_IO. Stopped by gw_router_free. */
int gw_router_start_probes(gw_router *r);

/* The route stage bound to |r| (stage.arg = r). */
gw_stage gw_router_stage(gw_router *r);

/* State of backend |i| of |t| for health and monitoring: "serving",
 * "not_serving", "ejected" (every deployment on it is ejected) or "unknown". */
const char *gw_route_table_backend_state(const gw_route_table *t, size_t i);

#endif
