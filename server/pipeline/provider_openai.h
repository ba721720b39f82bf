/* The OpenAI-compatible provider: forwards a canonical call (chat,
 * completions, embeddings; unary or server-streaming) to any upstream that
 * speaks OpenAI's HTTP API (OpenAI, vLLM, Ollama, another gateway), on the
 * call's worker curl loop. The request body is the canonical message written
 * as OpenAI JSON (extra_fields merged back), with the backend's model name
 * and key; a stream's SSE events are decoded one by one and emitted as they
 * arrive, the transfer paused while the client is slow; upstream HTTP errors
 * become gRPC statuses carrying the upstream's message. */
#ifndef GW_PIPELINE_PROVIDER_OPENAI_H
#define GW_PIPELINE_PROVIDER_OPENAI_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "core/buf.h"
#include "pipeline/call.h"
#include "pipeline/sse.h"

/* One configured backend (provider "openai"). */
typedef struct gw_openai_backend {
  char *name;
  char *base;        /* base URL without a trailing "/" ("https://api.openai.com/v1") */
  char *auth_header; /* "Authorization: Bearer <key>" or NULL; secret, never logged */
  int timeout_ms;
  bool embeddings_float; /* ask the upstream for float embeddings, not base64 */
  /* |base| as the gateway's own client takes it, read once: native is false
   * when it is neither http:// nor https:// (curl serves it then). */
  bool native, tls;
  int port;
  char *host;
  char *paths[3]; /* the URL's path + /chat/completions, /completions, /embeddings */
} gw_openai_backend;

extern const gw_provider_ops gw_provider_openai;

/* A backend for |bc| (copied). NULL when out of memory. */
gw_openai_backend *gw_openai_backend_new(const gw_backend_conf *bc);
void gw_openai_backend_free(gw_openai_backend *b);

/* What the upstream said when it failed a call, for the HTTP front door (it
 * answers with the upstream's own status and error object). Strings live in
 * the call's arena; NULL when the upstream did not give them. */
typedef struct gw_openai_error {
  long http_status;  /* 0: no HTTP answer (connect failure, timeout) */
  const char *type;  /* error.type */
  const char *code;  /* error.code (numbers written as text) */
  const char *param; /* error.param */
  const char *message;
  const char *retry_after; /* Retry-After header */
} gw_openai_error;

/* The upstream error of |call| when the openai provider served it and the
 * upstream failed it (an HTTP error status or an error event in a stream);
 * NULL otherwise. Valid while the call lives. */
const gw_openai_error *gw_openai_error_of(const gw_call *call);

/* The gRPC status for an upstream HTTP status (400 → INVALID_ARGUMENT,
 * 429 → RESOURCE_EXHAUSTED, 5xx → UNAVAILABLE, 500 → INTERNAL, ...). */
gw_status_code gw_openai_status_from_http(long http_status);

#endif
