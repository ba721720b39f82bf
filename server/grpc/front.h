/* The gRPC front door on gRPC core: every RPC of the embedded descriptor set
 * registered, aigateway.v1.* calls decoded and run through the pipeline,
 * grpc.health.v1.Health and server reflection (v1 and v1alpha) answered here,
 * unknown methods answered UNIMPLEMENTED. Each worker posts its own accepts
 * on its own completion queue, so a call lives on the worker that accepted
 * it. */
#ifndef GW_GRPC_FRONT_H
#define GW_GRPC_FRONT_H

#include "engine/worker.h"
#include "pipeline/pipeline.h"
#include "proto/descriptors.h"

typedef struct gw_grpc_front gw_grpc_front;

typedef struct gw_grpc_front_options {
  const char *host;       /* "0.0.0.0" */
  int port;               /* 0 picks a free port (see gw_grpc_front_port) */
  int accepts_per_method; /* accepts kept posted per method and worker; 0 = 4 */
  int max_message_bytes;  /* largest request accepted; 0 = 4 MiB */
} gw_grpc_front_options;

/* Creates the server, registers every method, binds the port, starts it and
 * posts the accepts on every worker's queue. Workers must be initialised
 * (their threads may start before or after). GW_OK, GW_ERR_IO (port not
 * bound; logged), GW_ERR_NOMEM. */
int gw_grpc_front_start(const gw_grpc_front_options *opts, const gw_descriptors *desc,
                        gw_pipeline *pipeline, gw_worker *workers, int n_workers,
                        gw_grpc_front **out);

/* The bound port. */
int gw_grpc_front_port(const gw_grpc_front *f);

/* Graceful shutdown: health turns NOT_SERVING, health watches end, no new
 * calls are accepted, in-flight calls get |grace_ms| to finish, then the rest
 * are cancelled. Blocks until the server is gone. The workers must still be
 * running. */
void gw_grpc_front_shutdown(gw_grpc_front *f, int grace_ms);

/* Frees the front after gw_grpc_front_shutdown and after the workers'
 * completion queues are drained (gw_worker_join). */
void gw_grpc_front_free(gw_grpc_front *f);

#endif
