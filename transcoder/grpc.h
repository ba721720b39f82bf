/* gRPC on the HTTP port: a request with Content-Type application/grpc that
 * comes over HTTP/2 (h2c or TLS with ALPN h2) is served as a gRPC call on the
 * worker's own HTTP/2 server, without gRPC core: the 5-byte-framed request
 * message is decoded with protobuf-c, the call runs through the same pipeline
 * as every other, and the answer goes back as framed messages and
 * grpc-status trailers (a Trailers-Only response when nothing was sent).
 *
 * It serves the pipeline's unary and server-streaming methods (the
 * aigateway.v1 services); health and reflection, and client streaming, stay
 * on the gRPC port, and a method it does not serve is UNIMPLEMENTED. Message
 * compression: identity, or gzip (grpc-encoding) on requests; answers are
 * not compressed. Requests are capped by the HTTP server's body limit
 * (MAX_BODY_BYTES). */
#ifndef GW_TRANSCODER_GRPC_H
#define GW_TRANSCODER_GRPC_H

#include <stdbool.h>

#include "transcoder/front.h"

/* True when |req| asks for gRPC (its Content-Type is application/grpc or
 * application/grpc+proto, with or without parameters). */
bool gw_grpc_h2_wanted(const gw_http_request *req);

/* Serves |req| as a gRPC call (see above); answers every request, errors
 * included, the gRPC way. */
void gw_grpc_h2_handle(gw_http_stream *s, const gw_http_request *req, gw_http_front *front);

#endif
