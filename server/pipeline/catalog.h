/* The model catalog of an OpenAI-compatible backend: the ids its
 * `GET {base}/models` lists, fetched at start and every MODELS_REFRESH_S
 * seconds (default 60) by one background thread. Each fetch builds an
 * immutable snapshot and swaps a pointer, so readers on any worker take the
 * current snapshot without a lock; a replaced snapshot is freed only after
 * a grace period (readers use one within a single callback) or when the
 * catalog is freed. */
#ifndef GW_PIPELINE_CATALOG_H
#define GW_PIPELINE_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

typedef struct gw_catalog_model {
  const char *id;
  const char *owned_by; /* NULL when the upstream gave none */
  int64_t created;      /* 0 when the upstream gave none */
} gw_catalog_model;

typedef struct gw_catalog_snapshot {
  const gw_catalog_model *models; /* sorted by id */
  size_t n;
  int64_t loaded_ms; /* gw_now_ms() when fetched */
} gw_catalog_snapshot;

typedef struct gw_catalog gw_catalog;

/* A catalog for backend |bc| (its target and key are copied); nothing is
 * fetched yet. NULL when out of memory. */
gw_catalog *gw_catalog_new(const gw_backend_conf *bc);
/* Frees |c| and every snapshot (no reader may still use one). */
void gw_catalog_free(gw_catalog *c);

/* The current snapshot, NULL until the first successful fetch. Any thread;
 * valid for the rest of the caller's callback. */
const gw_catalog_snapshot *gw_catalog_get(const gw_catalog *c);
/* The model |id| in |s|, NULL when it does not list it. */
const gw_catalog_model *gw_catalog_find(const gw_catalog_snapshot *s, const char *id);

/* How the last fetch went: 1 listed, 0 failed, -1 none finished yet. Any
 * thread. */
int gw_catalog_health(const gw_catalog *c);

/* Replaces the snapshot with the models of a ListModelsResponse JSON body
 * (|len| bytes at |json|). One writer at a time. GW_OK, GW_ERR_INVALID or
 * GW_ERR_NOMEM (the old snapshot stays). */
int gw_catalog_load_json(gw_catalog *c, const char *json, size_t len);

/* Fetches the list now (blocking, bounded by short timeouts) and swaps it
 * in. GW_OK, GW_ERR_IO (no answer, or not 200), GW_ERR_INVALID or
 * GW_ERR_NOMEM. */
int gw_catalog_refresh(gw_catalog *c);

/* The background refresher over |n| catalogs (borrowed: they must outlive
 * it): fetches each at once, then every |interval_s| seconds (sooner, every
 * 5 s, while one has never loaded). GW_OK, GW_ERR_NOMEM or GW_ERR_IO. */
typedef struct gw_catalog_refresher gw_catalog_refresher;
int gw_catalog_refresher_start(gw_catalog **cats, size_t n, int interval_s,
                               gw_catalog_refresher **out);
/* Stops the thread (aborting a fetch in progress) and frees |r|. NULL is a
 * no-op. */
void gw_catalog_refresher_stop(gw_catalog_refresher *r);

/* MODELS_REFRESH_S from the environment, 60 when unset or invalid. */
int gw_catalog_refresh_interval(void);

#endif
