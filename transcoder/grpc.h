/* gRPC on the gateway's own HTTP/2 server, without gRPC core: a request with
 * Content-Type application/grpc over HTTP/2 (h2c or TLS with ALPN h2) is
 * served on the worker's loop. The length-prefixed request message is
 * decoded with protobuf-c, a pipeline call runs through the same stages as
 * every other, and the answer goes back as length-prefixed messages and
 * grpc-status / grpc-message (percent-encoded) trailers, or Trailers-Only.
 *
 * Served: the pipeline's unary and server-streaming methods (grpc-timeout is
 * the call's deadline, RST_STREAM cancels it), grpc.health.v1.Health Check
 * and Watch, and server reflection v1 and v1alpha (bidirectional: its body
 * is read as it comes, gw_grpc_h2_at_head). Anything else is UNIMPLEMENTED.
 * Request messages: identity, or gzip (grpc-encoding), inflated up to 4 MiB;
 * another encoding is UNIMPLEMENTED with grpc-accept-encoding. Answers are
 * not compressed. A request is capped by the server's max_body_bytes.
 *
 * Used on the HTTP port beside the OpenAI API (gw_http_front_handle hands
 * gRPC requests here) and, with GRPC_SERVER=native, on the gRPC port
 * (gw_grpc_port_handle). */
#ifndef GW_TRANSCODER_GRPC_H
#define GW_TRANSCODER_GRPC_H

#include <stdbool.h>

#include "transcoder/front.h"

/* True when |req| asks for gRPC (its Content-Type is application/grpc or
 * application/grpc+proto, with or without parameters). */
bool gw_grpc_h2_wanted(const gw_http_request *req);

/* Serves |req| as a gRPC call (see above); answers every request, errors
 * included, the gRPC way (HTTP/1.x: a 415 error object). */
void gw_grpc_h2_handle(gw_http_stream *s, const gw_http_request *req, gw_http_front *front);

/* For gw_http_options.dispatch_at_head: nonzero for the calls whose request
 * body must be read as it comes (reflection). */
int gw_grpc_h2_at_head(const gw_http_request *req, void *arg);

/* A gw_http_handler for a port that speaks only gRPC (|arg|: the
 * gw_http_front): other requests get a 415 error object. */
void gw_grpc_port_handle(gw_http_stream *s, const gw_http_request *req, void *arg);

/* The server stops: health checks say NOT_SERVING from now on, and each
 * health Watch gets NOT_SERVING and ends with UNAVAILABLE. On |front|'s
 * worker. */
void gw_grpc_h2_stop(gw_http_front *front);

#endif
