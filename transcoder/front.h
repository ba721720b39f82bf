/* The HTTP front door: OpenAI's HTTP/JSON API (and every other RPC with a
 * google.api.http annotation) transcoded onto the canonical API and run
 * through the same pipeline as gRPC calls, in-process. One per worker, on
 * the worker's HTTP server (transcoder/http/server.h). */
#ifndef GW_TRANSCODER_FRONT_H
#define GW_TRANSCODER_FRONT_H

#include <stdatomic.h>
#include <stdbool.h>

#include "engine/worker.h"
#include "pipeline/pipeline.h"
#include "transcoder/http/server.h"
#include "transcoder/routes.h"

struct gcall;

typedef struct gw_http_front {
  gw_worker *worker;
  const gw_routes *routes;
  const gw_descriptors *desc; /* for gRPC on this port (transcoder/grpc.h) */
  struct gcall *grpc_watches; /* open health Watch calls (transcoder/grpc.c) */
  bool grpc_stopping;         /* gw_grpc_h2_stop ran */
  gw_pipeline *pipeline;
  gw_http_server *server;
  /* The fronts are an array, one per worker: |in_flight|, written by every
   * call, shares no cache line with the fields above or another front. */
  char apart[64];
  /* HTTP calls in flight on this worker (read by the main thread at
   * shutdown). */
  _Atomic long in_flight;
  char apart_after[64];
} gw_http_front;

/* The handler to give gw_http_server_new, with a gw_http_front as |arg|. */
void gw_http_front_handle(gw_http_stream *s, const gw_http_request *req, void *arg);

#endif
