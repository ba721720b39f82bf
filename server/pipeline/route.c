/* The route stage, the backends, and the built-in answers (models, admin). */
#include "pipeline/route.h"

#include <stdlib.h>
#include <string.h>

#include "aigateway/v1/admin.pb-c.h"
#include "aigateway/v1/inference.pb-c.h"
#include "core/alloc.h"
#include "core/log.h"
#include "pipeline/catalog.h"
#include "pipeline/providers.h"

#ifndef GW_VERSION
#define GW_VERSION "0.1.0"
#endif

int gw_router_new(const gw_config *config, gw_buf *err, gw_router **out) {
  gw_router *r = gw_calloc(1, sizeof(*r));
  if (!r)
    return GW_ERR_NOMEM;
  r->config = config;
  if (config->n_backends) {
    r->backends = gw_calloc(config->n_backends, sizeof(*r->backends));
    if (!r->backends) {
      gw_free(r);
      return GW_ERR_NOMEM;
    }
  }
  for (size_t i = 0; i < config->n_backends; i++) {
    const gw_backend_conf *bc = &config->backends[i];
    gw_backend *b = &r->backends[r->n_backends];
    b->conf = bc;
    b->kind = gw_provider_kind_find(bc->provider);
    if (!b->kind) {
      /* Known to the config, served by a provider that lands later: the
       * route answers UNIMPLEMENTED for it rather than refusing to start. */
      b->ops = NULL;
      r->n_backends++;
      continue;
    }
    b->ops = b->kind->ops;
    b->impl = b->kind->backend_new(bc);
    if (b->impl && b->kind->has_catalog)
      b->catalog = gw_catalog_new(bc);
    r->n_backends++; /* so that gw_router_free frees what was made */
    if (!b->impl || (b->kind->has_catalog && !b->catalog)) {
      gw_router_free(r);
      return GW_ERR_NOMEM;
    }
  }
  (void)err;
  *out = r;
  return GW_OK;
}

void gw_router_free(gw_router *r) {
  if (!r)
    return;
  gw_catalog_refresher_stop(r->refresher);
  for (size_t i = 0; i < r->n_backends; i++) {
    if (r->backends[i].kind && r->backends[i].impl)
      r->backends[i].kind->backend_free(r->backends[i].impl);
    gw_catalog_free(r->backends[i].catalog);
  }
  gw_free(r->backends);
  gw_free(r);
}

int gw_router_start_catalogs(gw_router *r) {
  if (r->refresher)
    return GW_OK;
  gw_catalog **cats = gw_calloc(r->n_backends + 1, sizeof(*cats));
  if (!cats)
    return GW_ERR_NOMEM;
  size_t n = 0;
  for (size_t i = 0; i < r->n_backends; i++)
    if (r->backends[i].catalog)
      cats[n++] = r->backends[i].catalog;
  int rc = n ? gw_catalog_refresher_start(cats, n, gw_catalog_refresh_interval(), &r->refresher)
             : GW_OK;
  gw_free(cats);
  return rc;
}

const char *gw_router_backend_state(const gw_router *r, size_t i) {
  const gw_backend *b = &r->backends[i];
  if (!b->kind)
    return "unknown";
  if (b->kind->state)
    return b->kind->state(b->impl);
  /* The last model listing says whether the upstream answers. */
  int h = b->catalog ? gw_catalog_health(b->catalog) : -1;
  return h > 0 ? "serving" : h == 0 ? "not_serving" : "unknown";
}

static const gw_backend *find_backend(const gw_router *r, const char *name) {
  for (size_t i = 0; i < r->n_backends; i++)
    if (strcmp(r->backends[i].conf->name, name) == 0)
      return &r->backends[i];
  return NULL;
}

/* Picks a deployment: the lowest priority value wins; among equals, a
 * weighted random choice. (Load balancing and health land later.) */
static const gw_deployment_conf *pick(const gw_model_conf *m) {
  int best = 0;
  long total = 0;
  for (size_t i = 0; i < m->n_deployments; i++)
    if (i == 0 || m->deployments[i].priority < best)
      best = m->deployments[i].priority;
  for (size_t i = 0; i < m->n_deployments; i++)
    if (m->deployments[i].priority == best)
      total += m->deployments[i].weight > 0 ? m->deployments[i].weight : 1;
  if (total <= 0)
    return NULL;
  long x = random() % total;
  for (size_t i = 0; i < m->n_deployments; i++) {
    const gw_deployment_conf *d = &m->deployments[i];
    if (d->priority != best)
      continue;
    x -= d->weight > 0 ? d->weight : 1;
    if (x < 0)
      return d;
  }
  return &m->deployments[0];
}

static const char *request_model(const gw_call *call) {
  const ProtobufCFieldDescriptor *f =
      protobuf_c_message_descriptor_get_field_by_name(call->request->descriptor, "model");
  if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
    return NULL;
  return *(const char *const *)((const char *)call->request + f->offset);
}

/* ---- built-in: model listing -------------------------------------------- */

static bool listable(const char *name) { return strchr(name, '*') == NULL; }

static void fill_model(Aigateway__V1__Model *m, const char *id, int64_t created) {
  aigateway__v1__model__init(m);
  m->id = (char *)id;
  m->object = "model";
  m->created = created;
  m->owned_by = "ai-gateway";
}

/* Does wildcard entry |name| ("*" or a prefix one) cover |model|? */
static bool wildcard_covers(const char *name, const char *model) {
  size_t n = strlen(name);
  if (n == 0 || name[n - 1] != '*')
    return false;
  return strncmp(name, model, n - 1) == 0;
}

/* Looks |model| (reached through wildcard entry |mc|) up in the catalogs of
 * |mc|'s backends: 1 and |*found| set when one lists it, 0 when every loaded
 * catalog misses it, -1 when none has loaded (nothing is known). */
static int catalog_lookup(const gw_router *r, const gw_model_conf *mc, const char *model,
                          const gw_catalog_model **found) {
  int known = -1;
  for (size_t d = 0; d < mc->n_deployments; d++) {
    const gw_backend *b = find_backend(r, mc->deployments[d].backend);
    const gw_catalog_snapshot *s = b ? gw_catalog_get(b->catalog) : NULL;
    if (!s)
      continue;
    const char *up = mc->deployments[d].upstream_model && *mc->deployments[d].upstream_model
                         ? mc->deployments[d].upstream_model
                         : model;
    const gw_catalog_model *m = gw_catalog_find(s, up);
    if (m) {
      *found = m;
      return 1;
    }
    known = 0;
  }
  return known;
}

static void fill_catalog_model(Aigateway__V1__Model *m, const gw_catalog_model *cm,
                               int64_t created) {
  fill_model(m, cm->id, cm->created ? cm->created : created);
  if (cm->owned_by && *cm->owned_by)
    m->owned_by = (char *)cm->owned_by;
}

static bool listed(Aigateway__V1__Model **ptrs, size_t n, const char *id) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(ptrs[i]->id, id) == 0)
      return true;
  return false;
}

static int models_start(gw_call *call) {
  const gw_router *r = call->pipeline->router;
  const gw_config *c = r->config;
  int64_t created = 1735689600; /* fixed: the config has no creation dates */
  if (strcmp(call->method->name, "GetModel") == 0) {
    const Aigateway__V1__GetModelRequest *req = (const void *)call->request;
    const char *id = req->id ? req->id : "";
    const gw_model_conf *mc = *id ? gw_config_model(c, id) : NULL;
    const gw_catalog_model *cm = NULL;
    if (!mc || (!listable(mc->name) && catalog_lookup(r, mc, id, &cm) == 0)) {
      gw_call_finishf(call, GW_STATUS_NOT_FOUND, "The model '%s' does not exist", id);
      return GW_OK;
    }
    Aigateway__V1__Model m;
    fill_model(&m, id, created);
    if (cm && cm->owned_by && *cm->owned_by)
      m.owned_by = (char *)cm->owned_by;
    if (cm && cm->created)
      m.created = cm->created;
    gw_call_emit(call, &m.base);
    gw_call_finish(call, GW_STATUS_OK, NULL);
    return GW_OK;
  }
  Aigateway__V1__ListModelsResponse resp;
  aigateway__v1__list_models_response__init(&resp);
  resp.object = "list";
  /* Each backend's snapshot is taken once, so the count and the listing
   * agree even if a refresh swaps it meanwhile. */
  const gw_catalog_snapshot **snaps =
      gw_arena_calloc(call->arena, (r->n_backends + 1) * sizeof(*snaps));
  if (!snaps)
    return GW_ERR_NOMEM;
  for (size_t i = 0; i < r->n_backends; i++)
    snaps[i] = gw_catalog_get(r->backends[i].catalog);
  size_t cap = c->n_models + 1;
  for (size_t i = 0; i < c->n_models; i++) {
    if (listable(c->models[i].name))
      continue;
    for (size_t d = 0; d < c->models[i].n_deployments; d++) {
      const gw_backend *b = find_backend(r, c->models[i].deployments[d].backend);
      if (b && snaps[b - r->backends])
        cap += snaps[b - r->backends]->n;
    }
  }
  Aigateway__V1__Model *models = gw_arena_calloc(call->arena, cap * sizeof(*models));
  Aigateway__V1__Model **ptrs = gw_arena_calloc(call->arena, cap * sizeof(*ptrs));
  if (!models || !ptrs)
    return GW_ERR_NOMEM;
  for (size_t i = 0; i < c->n_models; i++) {
    if (!listable(c->models[i].name))
      continue;
    fill_model(&models[resp.n_data], c->models[i].name, created);
    ptrs[resp.n_data] = &models[resp.n_data];
    resp.n_data++;
  }
  /* Then every model a wildcard entry reaches by the client's own name. */
  for (size_t i = 0; i < c->n_models; i++) {
    const gw_model_conf *mc = &c->models[i];
    if (listable(mc->name))
      continue;
    for (size_t d = 0; d < mc->n_deployments; d++) {
      const gw_deployment_conf *dc = &mc->deployments[d];
      const gw_backend *b = find_backend(r, dc->backend);
      const gw_catalog_snapshot *s = b ? snaps[b - r->backends] : NULL;
      if (!s || (dc->upstream_model && *dc->upstream_model))
        continue;
      for (size_t k = 0; k < s->n; k++) {
        const gw_catalog_model *cm = &s->models[k];
        /* Listed only if this entry is the one that routes the name. */
        if (!wildcard_covers(mc->name, cm->id) || gw_config_model(c, cm->id) != mc ||
            listed(ptrs, resp.n_data, cm->id))
          continue;
        fill_catalog_model(&models[resp.n_data], cm, created);
        ptrs[resp.n_data] = &models[resp.n_data];
        resp.n_data++;
      }
    }
  }
  resp.data = ptrs;
  gw_call_emit(call, &resp.base);
  gw_call_finish(call, GW_STATUS_OK, NULL);
  return GW_OK;
}

static const gw_provider_ops models_provider = {.name = "models", .start = models_start};

/* ---- built-in: administration ------------------------------------------- */

static int admin_start(gw_call *call) {
  gw_router *r = call->pipeline->router;
  gw_stats *st = &call->pipeline->stats;
  int64_t uptime = (gw_now_ms() - call->pipeline->started_ms) / 1000;
  const char *name = call->method->name;
  if (strcmp(name, "GetHealth") == 0) {
    Aigateway__V1__HealthResponse h;
    aigateway__v1__health_response__init(&h);
    bool ready = !r->shutting_down;
    h.live = true;
    h.version = GW_VERSION;
    h.uptime_seconds = uptime;
    h.n_checks = r->n_backends;
    h.checks = gw_arena_calloc(call->arena, (r->n_backends + 1) * sizeof(*h.checks));
    Aigateway__V1__HealthResponse__ChecksEntry *e =
        gw_arena_calloc(call->arena, (r->n_backends + 1) * sizeof(*e));
    if (!h.checks || !e)
      return GW_ERR_NOMEM;
    for (size_t i = 0; i < r->n_backends; i++) {
      aigateway__v1__health_response__checks_entry__init(&e[i]);
      e[i].key = gw_arena_printf(call->arena, "backend:%s", r->backends[i].conf->name);
      e[i].value = (char *)gw_router_backend_state(r, i);
      h.checks[i] = &e[i];
    }
    h.ready = ready;
    h.status = ready ? "ok" : "degraded";
    gw_call_emit(call, &h.base);
  } else if (strcmp(name, "GetStats") == 0) {
    Aigateway__V1__StatsResponse s;
    aigateway__v1__stats_response__init(&s);
    s.uptime_seconds = uptime;
    s.requests_total = st->requests_total;
    s.requests_failed = st->requests_failed;
    s.in_flight = st->in_flight;
    s.streams_total = st->streams_total;
    s.prompt_tokens = st->prompt_tokens;
    s.completion_tokens = st->completion_tokens;
    gw_call_emit(call, &s.base);
  } else if (strcmp(name, "ListBackends") == 0) {
    Aigateway__V1__ListBackendsResponse lb;
    aigateway__v1__list_backends_response__init(&lb);
    Aigateway__V1__Backend *bs = gw_arena_calloc(call->arena, (r->n_backends + 1) * sizeof(*bs));
    Aigateway__V1__Backend **ptrs = gw_arena_calloc(call->arena, (r->n_backends + 1) * sizeof(*ptrs));
    if (!bs || !ptrs)
      return GW_ERR_NOMEM;
    const gw_config *c = r->config;
    for (size_t i = 0; i < r->n_backends; i++) {
      aigateway__v1__backend__init(&bs[i]);
      bs[i].name = r->backends[i].conf->name;
      bs[i].provider = r->backends[i].conf->provider;
      bs[i].target = r->backends[i].conf->target;
      bs[i].state = (char *)gw_router_backend_state(r, i);
      char **models = gw_arena_calloc(call->arena, (c->n_models + 1) * sizeof(char *));
      if (!models)
        return GW_ERR_NOMEM;
      for (size_t m = 0; m < c->n_models; m++)
        for (size_t d = 0; d < c->models[m].n_deployments; d++)
          if (strcmp(c->models[m].deployments[d].backend, bs[i].name) == 0) {
            models[bs[i].n_models++] = c->models[m].name;
            break;
          }
      bs[i].models = models;
      ptrs[i] = &bs[i];
    }
    lb.n_backends = r->n_backends;
    lb.backends = ptrs;
    gw_call_emit(call, &lb.base);
  } else {
    gw_call_finishf(call, GW_STATUS_UNIMPLEMENTED, "%s is not implemented", call->method->path);
    return GW_OK;
  }
  gw_call_finish(call, GW_STATUS_OK, NULL);
  return GW_OK;
}

static const gw_provider_ops admin_provider = {.name = "admin", .start = admin_start};

/* ---- the stage ------------------------------------------------------------ */

static void start_provider(gw_call *call, const gw_provider_ops *ops) {
  call->provider = ops;
  int rc = ops->start(call);
  if (rc != GW_OK && call->state != GW_CALL_DONE)
    gw_call_finishf(call, rc == GW_ERR_NOMEM ? GW_STATUS_RESOURCE_EXHAUSTED : GW_STATUS_UNAVAILABLE,
                    "provider %s could not start the call", ops->name);
}

static void route_run(const gw_stage *st, gw_call *call) {
  gw_router *r = st->arg;
  const gw_method_info *m = call->method;
  if (strcmp(m->service, "aigateway.v1.Admin") == 0) {
    start_provider(call, &admin_provider);
    return;
  }
  if (strcmp(m->service, "aigateway.v1.Inference") != 0) {
    gw_call_finishf(call, GW_STATUS_UNIMPLEMENTED,
                    "%s is not available on this gateway yet", m->path);
    return;
  }
  if (strcmp(m->name, "ListModels") == 0 || strcmp(m->name, "GetModel") == 0) {
    start_provider(call, &models_provider);
    return;
  }
  const char *model = request_model(call);
  if (!model || !*model) {
    gw_call_finish(call, GW_STATUS_INVALID_ARGUMENT, "model: you must provide a model parameter");
    return;
  }
  const gw_model_conf *mc = gw_config_model(r->config, model);
  if (call->backend_hint) {
    /* The /local/... routes: only the named backend serves them, under the
     * name a config entry gives the model there, else the name asked for. */
    const gw_backend *hb = find_backend(r, call->backend_hint);
    if (!hb || !hb->ops) {
      gw_call_finishf(call, GW_STATUS_UNAVAILABLE, "no backend named '%s' is configured",
                      call->backend_hint);
      return;
    }
    call->route.backend = hb->conf->name;
    call->route.backend_impl = hb->impl;
    call->route.upstream_model = model;
    for (size_t i = 0; mc && i < mc->n_deployments; i++)
      if (strcmp(mc->deployments[i].backend, hb->conf->name) == 0 &&
          mc->deployments[i].upstream_model && *mc->deployments[i].upstream_model)
        call->route.upstream_model = mc->deployments[i].upstream_model;
    start_provider(call, hb->ops);
    return;
  }
  if (!mc || mc->n_deployments == 0) {
    gw_call_finishf(call, GW_STATUS_NOT_FOUND, "The model '%s' does not exist", model);
    return;
  }
  const gw_deployment_conf *d = pick(mc);
  const gw_backend *b = d ? find_backend(r, d->backend) : NULL;
  if (!b) {
    gw_call_finishf(call, GW_STATUS_INTERNAL, "model '%s' routes to an unknown backend", model);
    return;
  }
  if (!b->ops) {
    gw_call_finishf(call, GW_STATUS_UNIMPLEMENTED, "backend %s: provider %s is not available yet",
                    b->conf->name, b->conf->provider);
    return;
  }
  call->route.backend = b->conf->name;
  call->route.backend_impl = b->impl;
  call->route.upstream_model = d->upstream_model && *d->upstream_model ? d->upstream_model : model;
  if (!listable(mc->name) && b->catalog) {
    /* A wildcard reaches only what the backend lists (once it has listed). */
    const gw_catalog_snapshot *s = gw_catalog_get(b->catalog);
    if (s && !gw_catalog_find(s, call->route.upstream_model)) {
      gw_call_finishf(call, GW_STATUS_NOT_FOUND, "The model '%s' does not exist", model);
      return;
    }
  }
  GW_LOGD("route", call->request_id, "%s model=%s -> backend=%s model=%s", m->path, model,
          b->conf->name, call->route.upstream_model);
  start_provider(call, b->ops);
}

gw_stage gw_router_stage(gw_router *r) {
  gw_stage s = {.name = "route", .run = route_run, .arg = r};
  return s;
}
