/* The route stage and the backends it routes to: it resolves what serves a
 * call (a configured backend for inference calls by model name, or a
 * built-in for model listing and administration) and starts that provider. */
#ifndef GW_PIPELINE_ROUTE_H
#define GW_PIPELINE_ROUTE_H

#include "config/config.h"
#include "pipeline/call.h"
#include "pipeline/pipeline.h"

typedef struct gw_backend {
  const gw_backend_conf *conf;
  const gw_provider_ops *ops;
  void *impl; /* provider's own state: a gRPC channel, ... */
} gw_backend;

typedef struct gw_router {
  const gw_config *config;
  gw_backend *backends;
  size_t n_backends;
  _Atomic int shutting_down;
} gw_router;

/* Builds a router over |config| (borrowed: must outlive the router); opens a
 * channel per gRPC backend. GW_OK, GW_ERR_NOMEM or GW_ERR_UNSUPPORTED (a
 * backend provider this build cannot serve yet; |err| names it). */
int gw_router_new(const gw_config *config, gw_buf *err, gw_router **out);
void gw_router_free(gw_router *r);

/* The route stage bound to |r| (stage.arg = r). */
gw_stage gw_router_stage(gw_router *r);

/* State of backend |i| for health and monitoring: "serving", "not_serving"
 * or "unknown". */
const char *gw_router_backend_state(const gw_router *r, size_t i);

#endif
