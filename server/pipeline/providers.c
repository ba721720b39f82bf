/* The table of provider kinds. */
#include "pipeline/providers.h"

#include <string.h>

#include "engine/pool.h"
#include "pipeline/provider_anthropic.h"
#include "pipeline/provider_azure.h"
#include "pipeline/provider_bedrock.h"
#include "pipeline/provider_gemini.h"
#include "pipeline/provider_grpc.h"
#include "pipeline/provider_openai.h"

static void *grpc_new(const gw_backend_conf *c) { return gw_grpc_backend_from_conf(c); }
static void grpc_free(void *impl) { gw_grpc_backend_free(impl); }

static const char *grpc_state(const void *impl) {
  const gw_grpc_backend *g = impl;
  if (g->pool) /* serving while one member serves */
    return gw_pool_any_ready(g->pool) ? "serving" : "not_serving";
  switch (grpc_channel_check_connectivity_state(g->channel, 0)) {
  case GRPC_CHANNEL_READY: return "serving";
  case GRPC_CHANNEL_TRANSIENT_FAILURE:
  case GRPC_CHANNEL_SHUTDOWN: return "not_serving";
  default: return "unknown";
  }
}

static size_t grpc_members(const void *impl, gw_backend_member *out, size_t cap) {
  const gw_grpc_backend *g = impl;
  if (!g->pool)
    return 0;
  gw_pool *p = g->pool;
  size_t n = 0;
  for (int i = 0; i < p->n; i++) {
    gw_pool_member *m = &p->members[i];
    gw_member_state st = (gw_member_state)atomic_load(&m->state);
    if (st == GW_MEMBER_OFF)
      continue;
    if (n < cap)
      out[n] = (gw_backend_member){m->target, gw_member_state_to_str(st), atomic_load(&m->inflight),
                                   atomic_load(&m->pid)};
    n++;
  }
  return n;
}

static void *openai_new(const gw_backend_conf *c) { return gw_openai_backend_new(c); }
static void openai_free(void *impl) { gw_openai_backend_free(impl); }

static void *anthropic_new(const gw_backend_conf *c) { return gw_anthropic_backend_new(c); }
static void anthropic_free(void *impl) { gw_anthropic_backend_free(impl); }

static void *azure_new(const gw_backend_conf *c) { return gw_azure_backend_new(c); }
static void azure_free(void *impl) { gw_azure_backend_free(impl); }

static void *gemini_new(const gw_backend_conf *c) { return gw_gemini_backend_new(c, false); }
static void *vertex_new(const gw_backend_conf *c) { return gw_gemini_backend_new(c, true); }
static void gemini_free(void *impl) { gw_gemini_backend_free(impl); }

static void *bedrock_new(const gw_backend_conf *c) { return gw_bedrock_backend_new(c); }
static void bedrock_free(void *impl) { gw_bedrock_backend_free(impl); }

static const gw_provider_kind kinds[] = {
    {"grpc", &gw_provider_grpc, grpc_new, grpc_free, grpc_state, false, grpc_members},
    {"openai", &gw_provider_openai, openai_new, openai_free, NULL, true},
    {"anthropic", &gw_provider_anthropic, anthropic_new, anthropic_free, NULL, false},
    {"azure", &gw_provider_azure, azure_new, azure_free, NULL, false},
    {"gemini", &gw_provider_gemini, gemini_new, gemini_free, NULL, false},
    {"vertex", &gw_provider_gemini, vertex_new, gemini_free, NULL, false},
    {"bedrock", &gw_provider_bedrock, bedrock_new, bedrock_free, NULL, false},
};

const gw_provider_kind *gw_provider_kind_find(const char *name) {
  for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
    if (strcmp(kinds[i].name, name) == 0)
      return &kinds[i];
  return NULL;
}
