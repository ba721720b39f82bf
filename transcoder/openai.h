/* OpenAI adapters on top of the generic codec: how requests are read
 * (string-or-array forms, unknown members kept, required parameters), how
 * responses are written so that every body and SSE event has the fields
 * OpenAI's schema requires whatever the upstream left out, and how gRPC
 * statuses become OpenAI error objects. */
#ifndef GW_TRANSCODER_OPENAI_H
#define GW_TRANSCODER_OPENAI_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/status.h"
#include "transcoder/json_pb.h"

/* What the writer needs to know about the call. */
typedef struct gw_openai_out {
  const char *model;      /* the model the client asked for (default "model") */
  const char *request_id; /* seeds a missing response id */
  int64_t created;        /* default `created`, Unix seconds */
  bool base64_embeddings; /* the client asked encoding_format=base64 */
  bool include_usage;     /* stream: the client asked stream_options.include_usage */
  bool stream;            /* rendering stream events (finish_reason may be null) */
} gw_openai_out;

/* Options the codec gets on OpenAI routes (read and write). */
extern const gw_json_opts gw_openai_read_opts;
extern const gw_json_opts gw_openai_write_opts;

/* Parses an OpenAI request body as |desc| into |arena| and checks the
 * parameters OpenAI requires for it (model and messages for chat, model and
 * prompt for completions, model and input for embeddings). GW_OK,
 * GW_ERR_INVALID with |err| naming the param, GW_ERR_NOMEM. An empty body is
 * an empty object. */
int gw_openai_parse_request(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                            gw_arena *arena, ProtobufCMessage **out, gw_json_error *err);

/* True when |desc| is one of the OpenAI response types this adapter shapes. */
bool gw_openai_is_response_type(const ProtobufCMessageDescriptor *desc);

/* Whether every default the writer fills in names a real field (a typo in
 * its table would silently never apply). */
bool gw_openai_rules_valid(void);

/* Appends |msg| as the JSON OpenAI clients expect. Returns GW_OK, 1 when
 * the message must not be sent at all (a usage-only stream chunk the client
 * did not ask for), GW_ERR_TOOBIG, GW_ERR_NOMEM, GW_ERR_INVALID. */
int gw_openai_render(const ProtobufCMessage *msg, const gw_openai_out *o, gw_buf *out);

/* The HTTP status for a gRPC status (REFERENCE.md's table). */
int gw_openai_http_status(gw_status_code code);

/* OpenAI's error `type` for an HTTP status. */
const char *gw_openai_error_type(int http_status);

/* Appends {"error":{"message","type","param","code"}}; NULL |param| and
 * |code| are JSON null, NULL |type| picks gw_openai_error_type(). */
int gw_openai_error_body(int http_status, const char *type, const char *code, const char *param,
                         const char *message, gw_buf *out);

#endif
