/* The Azure OpenAI provider: OpenAI's wire format at Azure's deployment
 * URLs. A canonical call (chat, completions, embeddings; unary or
 * streaming) goes to
 *   {target}/openai/deployments/{deployment}/{chat/completions|completions|embeddings}?api-version=V
 * where the deployment is the route's upstream model name, with the
 * `api-key` header (or `Authorization: Bearer` when the configured key is
 * written "Bearer <token>", for Entra ID tokens). Answers are OpenAI JSON or
 * SSE already; Azure's prompt-filter-only chunks are dropped; errors are
 * OpenAI error objects. */
#ifndef GW_PIPELINE_PROVIDER_AZURE_H
#define GW_PIPELINE_PROVIDER_AZURE_H

#include "config/config.h"
#include "pipeline/call.h"

#define GW_AZURE_DEFAULT_API_VERSION "2024-10-21"

typedef struct gw_azure_backend {
  char *name;
  char *base;        /* target without a trailing "/" */
  char *api_version; /* already URL-safe (checked) */
  char *auth_header; /* "api-key: K" or "Authorization: Bearer T"; secret */
  int timeout_ms;
} gw_azure_backend;

extern const gw_provider_ops gw_provider_azure;

gw_azure_backend *gw_azure_backend_new(const gw_backend_conf *bc);
void gw_azure_backend_free(gw_azure_backend *b);

/* The URL for |deployment| and the method's |path_tail| ("chat/completions"),
 * the deployment percent-encoded. Newly made with gw_malloc; NULL when out of
 * memory. */
char *gw_azure_url(const gw_azure_backend *b, const char *deployment, const char *path_tail);

#endif
