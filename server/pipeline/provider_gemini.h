/* The Google Gemini (API key, generativelanguage.googleapis.com) and Vertex
 * AI (service-account OAuth token) providers: a canonical chat call becomes
 * POST .../models/{model}:generateContent (or :streamGenerateContent?alt=sse)
 * with contents/parts, systemInstruction, inlineData images, tools as
 * functionDeclarations, functionCall/functionResponse parts and a
 * generationConfig; the GenerateContentResponse(s) come back as OpenAI chat
 * completions or chunks with usage; Google's error objects become OpenAI
 * ones. For Vertex the gateway signs an RS256 JWT with the service account's
 * key and trades it at the key's token_uri for an access token, cached per
 * backend until a minute before it expires. */
#ifndef GW_PIPELINE_PROVIDER_GEMINI_H
#define GW_PIPELINE_PROVIDER_GEMINI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "core/arena.h"
#include "core/buf.h"
#include "pipeline/call.h"
#include "transcoder/json_lite.h"

typedef struct gw_gemini_backend {
  char *name;
  char *model_base; /* ".../models/" or ".../publishers/google/models/" */
  char *key_header; /* gemini: "x-goog-api-key: K"; secret */
  bool vertex;
  /* Vertex: the service account, and the token cache (shared by workers). */
  char *sa_email, *sa_key_pem, *sa_key_id, *token_uri; /* pem: secret */
  pthread_mutex_t lock;
  char *token; /* "Authorization: Bearer ..."; secret */
  int64_t token_expires_ms;
  int64_t token_refresh_ms; /* from here a new token is fetched in the background */
  bool refreshing;          /* a background fetch runs (|refresher|) */
  bool refresher_made;      /* |refresher| is to be joined */
  pthread_t refresher;
  int timeout_ms;
} gw_gemini_backend;

extern const gw_provider_ops gw_provider_gemini;

/* provider "gemini" (|vertex| false) or "vertex" (reads credentials_file). */
gw_gemini_backend *gw_gemini_backend_new(const gw_backend_conf *bc, bool vertex);
void gw_gemini_backend_free(gw_gemini_backend *b);

/* ---- pure translation (public for the unit tests) ---- */

/* An OpenAI chat request (parsed with json_lite) as the JSON text of a
 * Gemini GenerateContentRequest appended to |out|; tool-call arguments are
 * parsed in |a|. GW_OK, GW_ERR_INVALID with |err| saying why, or the
 * buffer's error. */
int gw_gemini_request(const gw_jval *req, gw_arena *a, gw_buf *out, char *err, size_t errlen);

/* A GenerateContentResponse (parsed with json_lite) as the JSON text of a
 * chat.completion with |id|, |model| (unless the response names its own),
 * |created|, appended to |out|. GW_OK, GW_ERR_INVALID (not an object; a
 * functionCall without a name) or the buffer's error, and then nothing is
 * appended. */
int gw_gemini_response(const gw_jval *resp, const char *id, const char *model, long long created,
                       gw_buf *out);

typedef struct gw_gemini_stream {
  char id[128], model[128];
  long long created;
  bool include_usage, started, finished;
  int next_tool;
  int64_t prompt_tokens, completion_tokens;
} gw_gemini_stream;

void gw_gemini_stream_init(gw_gemini_stream *s, const char *id, const char *model,
                           long long created, bool include_usage);
/* One streamed GenerateContentResponse → the JSON text of at most one
 * chunk, appended to |chunk|. GW_OK, GW_ERR_INVALID (not an object; a
 * functionCall without a name) or the buffer's error, and then nothing is
 * appended. */
int gw_gemini_stream_event(gw_gemini_stream *s, const gw_jval *resp, gw_buf *chunk);
/* The usage chunk after the last event (when include_usage); may append
 * nothing. */
int gw_gemini_stream_end(gw_gemini_stream *s, gw_buf *chunk);

const char *gw_gemini_finish_reason(const char *reason, bool has_calls);

/* The JWT assertion for service account |email| with key |pem|: GW_OK and
 * the token appended to |out|. */
int gw_gemini_sa_assertion(const char *email, const char *key_id, const char *pem,
                           const char *token_uri, long long now, gw_buf *out);

#endif
