/* The AWS Bedrock provider (Converse / ConverseStream): a canonical chat
 * call becomes POST {target}/model/{modelId}/converse (or /converse-stream)
 * signed with SigV4 (service "bedrock", the backend's region and
 * credentials; x-amz-security-token with a session token); system prompt,
 * text and image content blocks, toolUse / toolResult blocks, toolConfig and
 * inferenceConfig translated; the answer (or the application/
 * vnd.amazon.eventstream frames of a stream: messageStart,
 * contentBlockStart/Delta/Stop, messageStop, metadata, and exceptions)
 * comes back as OpenAI chat completions or chunks with usage; Bedrock's
 * errors become OpenAI ones. */
#ifndef GW_PIPELINE_PROVIDER_BEDROCK_H
#define GW_PIPELINE_PROVIDER_BEDROCK_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "core/arena.h"
#include "core/buf.h"
#include "pipeline/call.h"
#include "transcoder/json_lite.h"

typedef struct gw_bedrock_backend {
  char *name;
  char *base;   /* target without a trailing "/" */
  char *host;   /* the Host header value signed (from the target) */
  char *region; /* signing region */
  char *access_key_id, *secret_access_key, *session_token; /* secrets */
  int timeout_ms;
} gw_bedrock_backend;

extern const gw_provider_ops gw_provider_bedrock;

gw_bedrock_backend *gw_bedrock_backend_new(const gw_backend_conf *bc);
void gw_bedrock_backend_free(gw_bedrock_backend *b);

/* ---- pure translation (public for the unit tests) ---- */

/* An OpenAI chat request (parsed with json_lite) as the JSON text of a
 * Converse request body (the model goes in the URL), appended to |out|;
 * tool-call arguments are parsed in |a|. GW_OK, GW_ERR_INVALID with |err|
 * saying why, or the buffer's error. */
int gw_bedrock_request(const gw_jval *req, gw_arena *a, gw_buf *out, char *err, size_t errlen);

/* A Converse response (parsed with json_lite) as the JSON text of a
 * chat.completion, appended to |out|. GW_OK, GW_ERR_INVALID (no
 * output.message.content list; a toolUse without id or name) or the
 * buffer's error, and then nothing is appended. */
int gw_bedrock_response(const gw_jval *resp, const char *id, const char *model, long long created,
                        gw_buf *out);

const char *gw_bedrock_finish_reason(const char *stop_reason);

typedef struct gw_bedrock_stream {
  char id[160], model[160];
  long long created;
  bool include_usage, finished;
  int next_tool;
  int block_tool[64]; /* contentBlockIndex -> tool call index + 1 */
  int64_t input_tokens, output_tokens;
} gw_bedrock_stream;

void gw_bedrock_stream_init(gw_bedrock_stream *s, const char *id, const char *model,
                            long long created, bool include_usage);
/* One ConverseStream event |type| with payload |ev| (parsed with json_lite)
 * → the JSON text of at most one chunk, appended to |chunk|. GW_OK,
 * GW_ERR_INVALID (not an object; a tool use without id or name, a tool
 * delta whose input is not a string: nothing appended) or the buffer's
 * error. */
int gw_bedrock_stream_event(gw_bedrock_stream *s, const char *type, const gw_jval *ev,
                            gw_buf *chunk);

/* The model id as a path segment: every byte outside [A-Za-z0-9-._~]
 * percent-encoded (":" in "anthropic.claude-3-haiku-20240307-v1:0" → %3A).
 * New string (gw_malloc), NULL when out of memory. */
char *gw_bedrock_model_path(const char *model);

#endif
