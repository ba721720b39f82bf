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

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "pipeline/call.h"

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

/* An OpenAI chat request as a Converse request body (the model goes in the
 * URL). GW_OK and |*out|, GW_ERR_INVALID with |err|, or GW_ERR_NOMEM. */
int gw_bedrock_request(const json_t *req, json_t **out, char *err, size_t errlen);

/* A Converse response as a chat.completion. */
int gw_bedrock_response(const json_t *resp, const char *id, const char *model, long long created,
                        json_t **out);

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
/* One ConverseStream event |type| with payload |ev| → chunks. */
int gw_bedrock_stream_event(gw_bedrock_stream *s, const char *type, const json_t *ev,
                            json_t *chunks);

/* The model id as a path segment: every byte outside [A-Za-z0-9-._~]
 * percent-encoded (":" in "anthropic.claude-3-haiku-20240307-v1:0" → %3A).
 * New string (gw_malloc), NULL when out of memory. */
char *gw_bedrock_model_path(const char *model);

#endif
