/* The Anthropic Messages provider: a canonical chat call (unary or
 * streaming) becomes POST {target}/v1/messages with x-api-key and
 * anthropic-version; system prompt, content blocks, images, tool use and
 * tool results, max_tokens translated; the answer (or the message_start /
 * content_block_* / message_delta / message_stop events of a stream) comes
 * back as OpenAI chat completions or chunks with usage; Anthropic's error
 * objects become OpenAI ones. */
#ifndef GW_PIPELINE_PROVIDER_ANTHROPIC_H
#define GW_PIPELINE_PROVIDER_ANTHROPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/buf.h"
#include "pipeline/call.h"
#include "transcoder/json_lite.h"

#define GW_ANTHROPIC_DEFAULT_URL "https://api.anthropic.com"
#define GW_ANTHROPIC_DEFAULT_VERSION "2023-06-01"
#define GW_ANTHROPIC_DEFAULT_MAX_TOKENS 4096

typedef struct gw_anthropic_backend {
  char *name;
  char *url;            /* {target}/v1/messages */
  char *key_header;     /* "x-api-key: <key>" or NULL; secret, never logged */
  char *version_header; /* "anthropic-version: ..." */
  int timeout_ms;
} gw_anthropic_backend;

extern const gw_provider_ops gw_provider_anthropic;

gw_anthropic_backend *gw_anthropic_backend_new(const gw_backend_conf *bc);
void gw_anthropic_backend_free(gw_anthropic_backend *b);

/* ---- pure translation (public for the unit tests) ---- */

/* An OpenAI chat request |req| (parsed with json_lite) as the JSON text of
 * an Anthropic Messages request for |model| (NULL: req's model), |stream|
 * set as given, appended to |out|; tool-call arguments are parsed in |a|.
 * GW_OK, GW_ERR_INVALID with |err| saying why (a 400 for the client), or
 * the buffer's error. */
int gw_anthropic_request(const gw_jval *req, const char *model, bool stream, gw_arena *a,
                         gw_buf *out, char *err, size_t errlen);

/* An Anthropic message |msg| (parsed with json_lite) as an OpenAI
 * chat.completion created at |created|, appended to |out| as JSON text.
 * GW_OK, GW_ERR_INVALID (not a message: no content array, id or model; a
 * tool_use block without id or name) or the buffer's error. */
int gw_anthropic_response(const gw_jval *msg, long long created, gw_buf *out);

/* OpenAI's finish_reason for an Anthropic stop_reason. */
const char *gw_anthropic_finish_reason(const char *stop_reason);

/* The stream translator: one Anthropic event in, zero or one OpenAI
 * chat.completion.chunk out. */
typedef struct gw_anthropic_stream {
  char id[128], model[128];
  long long created;
  bool include_usage;
  int64_t input_tokens, output_tokens, cache_read;
  int next_tool;      /* index of the next tool call */
  int block_tool[64]; /* content block index -> tool call index + 1 (0: not a tool) */
  bool finished;      /* message_stop seen */
} gw_anthropic_stream;

void gw_anthropic_stream_init(gw_anthropic_stream *s, long long created, bool include_usage);

/* Translates event |ev| (the data of one SSE event parsed with json_lite;
 * its "type" names it) into the JSON text of at most one chunk, appended to
 * |chunk| (nothing appended: the event makes none). GW_OK; GW_ERR_INVALID
 * for an event without a type or missing what its type needs; the
 * buffer's error. An "error" event appends nothing and returns
 * GW_ERR_STATE (the caller reads ev.error). */
int gw_anthropic_stream_event(gw_anthropic_stream *s, const gw_jval *ev, gw_buf *chunk);

/* The HTTP status Anthropic uses for an error |type| (overloaded_error 529). */
int gw_anthropic_http_status(const char *type);

#endif
