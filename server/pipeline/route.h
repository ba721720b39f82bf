/* The route stage and the backends it routes to: it resolves what serves a
 * call (a configured backend for inference calls by model name, or a
 * built-in for model listing and administration) and starts that provider. */
#ifndef GW_PIPELINE_ROUTE_H
#define GW_PIPELINE_ROUTE_H

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

typedef struct gw_router {
  const gw_config *config;
  gw_backend *backends;
  size_t n_backends;
  _Atomic int shutting_down;
  struct gw_catalog_refresher *refresher; /* NULL until gw_router_start_catalogs */
} gw_router;

/* Builds a router over |config| (borrowed: must outlive the router); opens a
 * channel per gRPC backend, sets up each OpenAI-compatible backend and its
 * (empty) model catalog. GW_OK, GW_ERR_NOMEM or GW_ERR_UNSUPPORTED (a
 * backend provider this build cannot serve yet; |err| names it). */
int gw_router_new(const gw_config *config, gw_buf *err, gw_router **out);
/* Stops the catalog refresher if it runs, then frees everything. */
void gw_router_free(gw_router *r);

/* Starts the background thread that fetches the openai backends' model
 * lists now and every MODELS_REFRESH_S seconds. No-op without such
 * backends. GW_OK, GW_ERR_NOMEM or GW_ERR_IO. */
int gw_router_start_catalogs(gw_router *r);

/* The route stage bound to |r| (stage.arg = r). */
gw_stage gw_router_stage(gw_router *r);

/* State of backend |i| for health and monitoring: "serving", "not_serving"
 * or "unknown". */
const char *gw_router_backend_state(const gw_router *r, size_t i);

#endif
