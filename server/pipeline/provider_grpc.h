/* The gRPC-backend provider: forwards a call, unary or server-streaming, to
 * any server implementing proto/ (python/ is the reference), on gRPC core's
 * client API bound to the call's worker completion queue. Propagates the
 * deadline and the request id; a cancel stops the upstream call at once; a
 * slow client stops further upstream reads (one message in flight). */
#ifndef GW_PIPELINE_PROVIDER_GRPC_H
#define GW_PIPELINE_PROVIDER_GRPC_H

#include <grpc/grpc.h>

#include "config/config.h"
#include "pipeline/call.h"

struct gw_pool;

typedef struct gw_grpc_backend {
  grpc_channel *channel; /* NULL for a pool */
  char *target;
  int timeout_ms;
  /* A backend with a command is served by a pool of processes
   * (engine/pool.h): each call takes a slot at the ready member with the
   * fewest calls; when every member is busy (or none serves yet) the call
   * waits, up to pool.queue_timeout_ms and its deadline, then fails with
   * RESOURCE_EXHAUSTED (busy) or UNAVAILABLE (none serving). */
  struct gw_pool *pool;
} gw_grpc_backend;

extern const gw_provider_ops gw_provider_grpc;

/* Opens a channel to |target| ("host:port"). NULL when out of memory. */
gw_grpc_backend *gw_grpc_backend_new(const char *target, int timeout_ms);
/* The backend for |conf| (borrowed): a pool when it has a command, else one
 * channel to its target. NULL when out of memory. */
gw_grpc_backend *gw_grpc_backend_from_conf(const gw_backend_conf *conf);
void gw_grpc_backend_free(gw_grpc_backend *b);

#endif
