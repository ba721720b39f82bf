/* The gRPC-backend provider: forwards a call, unary or server-streaming, to
 * any server implementing proto/ (python/ is the reference), on gRPC core's
 * client API bound to the call's worker completion queue. Propagates the
 * deadline and the request id; a cancel stops the upstream call at once; a
 * slow client stops further upstream reads (one message in flight). */
#ifndef GW_PIPELINE_PROVIDER_GRPC_H
#define GW_PIPELINE_PROVIDER_GRPC_H

#include <grpc/grpc.h>

#include "pipeline/call.h"

typedef struct gw_grpc_backend {
  grpc_channel *channel;
  char *target;
  int timeout_ms;
} gw_grpc_backend;

extern const gw_provider_ops gw_provider_grpc;

/* Opens a channel to |target| ("host:port"). NULL when out of memory. */
gw_grpc_backend *gw_grpc_backend_new(const char *target, int timeout_ms);
void gw_grpc_backend_free(gw_grpc_backend *b);

#endif
