/* The provider kinds a backend's `provider` config key may name, and how to
 * build each one's per-backend state. Adding a provider is one entry in the
 * table of providers.c plus its own file; the router never names one. */
#ifndef GW_PIPELINE_PROVIDERS_H
#define GW_PIPELINE_PROVIDERS_H

#include <stdbool.h>

#include "config/config.h"
#include "pipeline/call.h"

/* One process of a pooled backend, for the admin answers. */
typedef struct gw_backend_member {
  const char *target; /* "host:port", valid while the backend lives */
  const char *state;  /* "starting", "serving", "not_serving", "draining", ... */
  long in_flight;
  int pid; /* 0 when it runs no process */
} gw_backend_member;

typedef struct gw_provider_kind {
  const char *name; /* the config's `provider` value: "grpc", "openai", ... */
  const gw_provider_ops *ops;
  /* Builds the per-backend state from |conf| (borrowed; outlives the
   * state). NULL when out of memory. */
  void *(*backend_new)(const gw_backend_conf *conf);
  void (*backend_free)(void *impl);
  /* "serving", "not_serving" or "unknown"; NULL: ask the catalog. */
  const char *(*state)(const void *impl);
  /* The router keeps a catalog of the upstream's models (GET {target}/models). */
  bool has_catalog;
  /* Backends served by several local processes (a pool): fills up to |cap|
   * of |out| with the members, returns how many there are. NULL: none. */
  size_t (*members)(const void *impl, struct gw_backend_member *out, size_t cap);
} gw_provider_kind;

/* The kind named |name|, NULL if this build has none. */
const gw_provider_kind *gw_provider_kind_find(const char *name);

#endif
