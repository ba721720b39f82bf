/* gRPC server reflection (grpc.reflection.v1 and v1alpha
 * ServerReflection/ServerReflectionInfo): turns one request message of the
 * bidi stream into its response message. Pure: no gRPC I/O; the server
 * feeds each received message in and sends what comes out.
 *
 * v1 and v1alpha reflection.proto declare the same messages with the same
 * field numbers and types (only the package and a `deprecated` file option
 * differ), so their wire formats are identical and this one implementation,
 * written over the v1 generated types, answers both services. */
#ifndef GW_GRPC_REFLECTION_H
#define GW_GRPC_REFLECTION_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "proto/descriptors.h"

/* Decodes |req| (|req_len| bytes of a serialized ServerReflectionRequest)
 * and appends the serialized ServerReflectionResponse to |out|: list of
 * services, file_descriptor_response (the file first, then each transitive
 * dependency once), extension numbers, or error_response (NOT_FOUND for an
 * unknown file, symbol, type or extension; UNIMPLEMENTED for a request with
 * no kind set). valid_host and original_request echo the request.
 * Returns GW_OK, GW_ERR_INVALID for bytes that do not decode (answer
 * INVALID_ARGUMENT), GW_ERR_NOMEM, or GW_ERR_TOOBIG when |out|'s cap is too
 * small; on error |out| is unchanged. Thread-safe over a shared |d|. */
int gw_reflection_answer(const gw_descriptors *d, const uint8_t *req, size_t req_len, gw_buf *out);

#endif
