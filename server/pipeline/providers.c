/* The table of provider kinds. */
#include "pipeline/providers.h"

#include <string.h>

#include "pipeline/provider_grpc.h"
#include "pipeline/provider_openai.h"

static void *grpc_new(const gw_backend_conf *c) { return gw_grpc_backend_new(c->target, c->timeout_ms); }
static void grpc_free(void *impl) { gw_grpc_backend_free(impl); }

static const char *grpc_state(const void *impl) {
  const gw_grpc_backend *g = impl;
  switch (grpc_channel_check_connectivity_state(g->channel, 0)) {
  case GRPC_CHANNEL_READY: return "serving";
  case GRPC_CHANNEL_TRANSIENT_FAILURE:
  case GRPC_CHANNEL_SHUTDOWN: return "not_serving";
  default: return "unknown";
  }
}

static void *openai_new(const gw_backend_conf *c) { return gw_openai_backend_new(c); }
static void openai_free(void *impl) { gw_openai_backend_free(impl); }

static const gw_provider_kind kinds[] = {
    {"grpc", &gw_provider_grpc, grpc_new, grpc_free, grpc_state, false},
    {"openai", &gw_provider_openai, openai_new, openai_free, NULL, true},
};

const gw_provider_kind *gw_provider_kind_find(const char *name) {
  for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
    if (strcmp(kinds[i].name, name) == 0)
      return &kinds[i];
  return NULL;
}
