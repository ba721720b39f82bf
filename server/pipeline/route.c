/* The route stage, the routing tables and their reload, load balancing with
 * health, retries and fallbacks, and the built-in answers (models, admin). */
#include "pipeline/route.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aigateway/v1/admin.pb-c.h"
#include "aigateway/v1/inference.pb-c.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/pbfield.h"
#include "engine/worker.h"
#include "pipeline/balance.h"
#include "pipeline/catalog.h"
#include "pipeline/health.h"
#include "pipeline/providers.h"
#include "pipeline/retry.h"

#ifndef GW_VERSION
#define GW_VERSION "0.1.0"
#endif

/* ---- the routing table ------------------------------------------------------ */

/* A deployment's counters of one thread (core/shard.h). */
typedef struct gw_dep_shard {
  _Atomic long in_flight; /* when the deployment's own count is not exact */
  _Atomic uint64_t requests, failures;
  char pad[GW_SHARD_STRIDE - sizeof(long) - 2 * sizeof(uint64_t)];
} gw_dep_shard;

/* One deployment's live state. Calls in flight are counted in |stats| when
 * something reads that count at once (a max_concurrency cap, a balancer
 * that weighs load: |exact|), else in the thread's shard, like the request
 * and failure counts: a deployment every worker sends calls to does not
 * make every call take a line from another core. */
typedef struct gw_dep_rt {
  const gw_deployment_conf *conf;
  gw_backend *backend; /* NULL: the config names no such backend (cannot happen after validation) */
  const char *label;   /* "model/backend" for log lines */
  bool exact;
  char apart[64];     /* the fields above and |health| are read by every call */
  gw_dep_stats stats; /* in_flight written by every call when |exact| */
  char stats_pad[64];
  gw_health health;
  char health_pad[64];
  gw_dep_shard shards[GW_SHARDS];
} gw_dep_rt;

typedef struct gw_model_rt {
  const gw_model_conf *conf;
  gw_dep_rt *deps;
  gw_dep_stats **stats; /* &deps[i].stats, for the balancer */
  gw_balancer bal;
  bool bal_ready;
} gw_model_rt;

/* A table's policy, from config->routing. */
typedef struct gw_table_policy {
  gw_health_conf health;
  gw_retry_conf retry;
  gw_retry_budget budget;
  gw_balance_strategy strategy;
} gw_table_policy;

static gw_backend *find_backend(const gw_route_table *t, const char *name) {
  for (size_t i = 0; i < t->n_backends; i++)
    if (strcmp(t->backends[i].conf->name, name) == 0)
      return &t->backends[i];
  return NULL;
}

static gw_balance_strategy strategy_of(gw_conf_balance b) {
  switch (b) {
  case GW_CONF_BALANCE_LEAST_OUTSTANDING: return GW_BALANCE_LEAST_OUTSTANDING;
  case GW_CONF_BALANCE_P2C_EWMA: return GW_BALANCE_P2C_EWMA;
  case GW_CONF_BALANCE_WEIGHTED:
  default: return GW_BALANCE_WEIGHTED;
  }
}

static void table_free(gw_route_table *t) {
  if (!t)
    return;
  gw_catalog_refresher_stop(t->refresher);
  for (size_t i = 0; t->models && i < t->config->n_models; i++) {
    gw_model_rt *m = &t->models[i];
    if (m->bal_ready)
      gw_balancer_release(&m->bal);
    for (size_t d = 0; m->deps && d < m->conf->n_deployments; d++)
      gw_free((char *)m->deps[d].label);
    gw_free(m->deps);
    gw_free(m->stats);
  }
  gw_free(t->models);
  for (size_t i = 0; i < t->n_backends; i++) {
    if (t->backends[i].kind && t->backends[i].impl)
      t->backends[i].kind->backend_free(t->backends[i].impl);
    gw_catalog_free(t->backends[i].catalog);
  }
  gw_free(t->backends);
  gw_free(t->policy);
  if (t->owned_config) {
    gw_config_release(t->owned_config);
    gw_free(t->owned_config);
  }
  gw_free(t);
}

static int build_models(gw_route_table *t) {
  const gw_config *c = t->config;
  if (!c->n_models)
    return GW_OK;
  if (!(t->models = gw_calloc(c->n_models, sizeof(*t->models))))
    return GW_ERR_NOMEM;
  for (size_t i = 0; i < c->n_models; i++) {
    gw_model_rt *m = &t->models[i];
    m->conf = &c->models[i];
    size_t n = m->conf->n_deployments;
    if (n == 0)
      continue;
    if (n > GW_BALANCE_MAX_DEPLOYMENTS)
      return GW_ERR_UNSUPPORTED;
    m->deps = gw_calloc(n, sizeof(*m->deps));
    m->stats = gw_calloc(n, sizeof(*m->stats));
    int *weights = gw_calloc(n, sizeof(*weights));
    if (!m->deps || !m->stats || !weights) {
      gw_free(weights);
      return GW_ERR_NOMEM;
    }
    for (size_t d = 0; d < n; d++) {
      gw_dep_rt *dr = &m->deps[d];
      dr->conf = &m->conf->deployments[d];
      dr->backend = find_backend(t, dr->conf->backend);
      gw_health_init(&dr->health);
      dr->exact =
          dr->conf->max_concurrency > 0 || (n > 1 && t->policy->strategy != GW_BALANCE_WEIGHTED);
      m->stats[d] = &dr->stats;
      weights[d] = dr->conf->weight;
      size_t len = strlen(m->conf->name) + strlen(dr->conf->backend) + 2;
      char *label = gw_malloc(len);
      if (!label) {
        gw_free(weights);
        return GW_ERR_NOMEM;
      }
      snprintf(label, len, "%s/%s", m->conf->name, dr->conf->backend);
      dr->label = label;
    }
    int rc = gw_balancer_init(&m->bal, t->policy->strategy, weights, n);
    gw_free(weights);
    if (rc != GW_OK)
      return rc;
    m->bal_ready = true;
  }
  return GW_OK;
}

static int table_new(const gw_config *config, gw_buf *err, gw_route_table **out) {
  gw_route_table *t = gw_calloc(1, sizeof(*t));
  if (!t)
    return GW_ERR_NOMEM;
  t->config = config;
  atomic_store(&t->refs[0].n, 1);
  int rc = GW_ERR_NOMEM;
  if (!(t->policy = gw_calloc(1, sizeof(*t->policy))))
    goto fail;
  const gw_routing_conf *rc_ = &config->routing;
  gw_table_policy *p = t->policy;
  p->strategy = strategy_of(rc_->balance);
  p->health.failures_to_eject = rc_->eject_failures > 0 ? rc_->eject_failures : 3;
  p->health.eject_base_ms = rc_->eject_base_ms > 0 ? rc_->eject_base_ms : 1000;
  p->health.eject_max_ms = rc_->eject_max_ms > 0 ? rc_->eject_max_ms : 30000;
  p->retry.max_retries = rc_->max_retries;
  p->retry.budget_percent = rc_->retry_budget_percent;
  p->retry.budget_min = rc_->retry_budget_min;
  p->retry.backoff_base_ms = rc_->retry_backoff_ms;
  p->retry.backoff_max_ms = rc_->retry_backoff_max_ms;
  p->retry.max_retry_after_ms = rc_->max_retry_after_ms;
  gw_retry_budget_init(&p->budget, &p->retry);
  if (config->n_backends && !(t->backends = gw_calloc(config->n_backends, sizeof(*t->backends))))
    goto fail;
  for (size_t i = 0; i < config->n_backends; i++) {
    const gw_backend_conf *bc = &config->backends[i];
    gw_backend *b = &t->backends[t->n_backends];
    b->conf = bc;
    b->kind = gw_provider_kind_find(bc->provider);
    t->n_backends++; /* so that table_free frees what was made */
    if (!b->kind) {
      /* Known to the config, served by a provider that lands later: the
       * route answers UNIMPLEMENTED for it rather than refusing to start. */
      b->ops = NULL;
      continue;
    }
    b->ops = b->kind->ops;
    b->impl = b->kind->backend_new(bc);
    if (b->impl && b->kind->has_catalog)
      b->catalog = gw_catalog_new(bc);
    if (!b->impl || (b->kind->has_catalog && !b->catalog))
      goto fail;
  }
  if ((rc = build_models(t)) != GW_OK) {
    if (rc == GW_ERR_UNSUPPORTED && err)
      (void)gw_buf_printf(err, "a model has more than %d deployments", GW_BALANCE_MAX_DEPLOYMENTS);
    goto fail;
  }
  *out = t;
  return GW_OK;
fail:
  table_free(t);
  return rc == GW_OK ? GW_ERR_NOMEM : rc;
}

static int table_start_catalogs(gw_route_table *t) {
  if (t->refresher)
    return GW_OK;
  gw_catalog **cats = gw_calloc(t->n_backends + 1, sizeof(*cats));
  if (!cats)
    return GW_ERR_NOMEM;
  size_t n = 0;
  for (size_t i = 0; i < t->n_backends; i++)
    if (t->backends[i].catalog)
      cats[n++] = t->backends[i].catalog;
  int rc =
      n ? gw_catalog_refresher_start(cats, n, gw_catalog_refresh_interval(), &t->refresher) : GW_OK;
  gw_free(cats);
  return rc;
}

gw_route_table *gw_router_acquire(gw_router *r) {
  /* |acquiring| tells gw_router_collect() that someone may hold a pointer
   * to a table it has not counted yet (the load and the increment are two
   * steps); a retired table is freed only after it saw zero once. Both
   * counters are the thread's own shard: a thread's acquiring goes up and
   * down on one shard, so each shard of it is >= 0. */
  unsigned s = gw_shard();
  atomic_fetch_add(&r->acquiring[s].n, 1);
  gw_route_table *t = atomic_load(&r->current);
  atomic_fetch_add(&t->refs[s].n, 1);
  atomic_fetch_sub(&r->acquiring[s].n, 1);
  return t;
}

void gw_route_table_release(gw_route_table *t) {
  /* Never frees: the router's collector does, on its own thread (a table's
   * catalog refresher is joined there, not on a worker). A reference may be
   * dropped on another thread than took it: one shard goes below zero, and
   * the sum is still the number held. */
  if (t)
    atomic_fetch_sub(&t->refs[gw_shard()].n, 1);
}

/* The references held on retired table |t|. Once retired, no shard grows
 * (no call can acquire it any more: |acquiring| was zero), so each shard read
 * is at least its value when the last is read, and a sum of zero is final. */
static long table_refs(gw_route_table *t) {
  long sum = 0;
  for (size_t i = 0; i < GW_SHARDS; i++)
    sum += atomic_load(&t->refs[i].n);
  return sum;
}

static bool anyone_acquiring(gw_router *r) {
  for (size_t i = 0; i < GW_SHARDS; i++)
    if (atomic_load(&r->acquiring[i].n) != 0)
      return true;
  return false;
}

int gw_router_new(const gw_config *config, gw_buf *err, gw_router **out) {
  gw_router *r = gw_calloc(1, sizeof(*r));
  if (!r)
    return GW_ERR_NOMEM;
  gw_route_table *t;
  int rc = table_new(config, err, &t);
  if (rc != GW_OK) {
    gw_free(r);
    return rc;
  }
  atomic_store(&r->current, t);
  *out = r;
  return GW_OK;
}

static void stop_probes(gw_router *r);

void gw_router_free(gw_router *r) {
  if (!r)
    return;
  stop_probes(r);
  while (r->retired) {
    gw_route_table *t = r->retired;
    r->retired = t->next_retired;
    table_free(t);
  }
  table_free(atomic_load(&r->current));
  gw_free(r);
}

int gw_router_start_catalogs(gw_router *r) {
  r->catalogs = true;
  return table_start_catalogs(atomic_load(&r->current));
}

/* A deployment that survives a reload (same model, backend name and
 * target) keeps its health and latency: an ejected upstream stays ejected. */
static void carry_state(const gw_route_table *old, gw_route_table *t) {
  for (size_t i = 0; t->models && i < t->config->n_models; i++) {
    gw_model_rt *m = &t->models[i];
    const gw_model_rt *om = NULL;
    for (size_t k = 0; old->models && k < old->config->n_models; k++)
      if (strcmp(old->models[k].conf->name, m->conf->name) == 0)
        om = &old->models[k];
    for (size_t d = 0; om && d < m->conf->n_deployments; d++) {
      gw_dep_rt *nd = &m->deps[d];
      for (size_t k = 0; k < om->conf->n_deployments; k++) {
        const gw_dep_rt *od = &om->deps[k];
        if (!nd->backend || !od->backend || strcmp(od->conf->backend, nd->conf->backend) != 0 ||
            strcmp(od->backend->conf->target, nd->backend->conf->target) != 0)
          continue;
        int st = atomic_load(&od->health.state);
        /* A trial in flight belongs to the old table: here the next call may be one. */
        atomic_store(&nd->health.state, st == GW_CIRCUIT_HALF_OPEN ? GW_CIRCUIT_OPEN : st);
        atomic_store(&nd->health.failures, atomic_load(&od->health.failures));
        atomic_store(&nd->health.ejections, atomic_load(&od->health.ejections));
        atomic_store(&nd->health.until_ms, atomic_load(&od->health.until_ms));
        atomic_store(&nd->stats.ewma_us, atomic_load(&od->stats.ewma_us));
        break;
      }
    }
  }
}

int gw_router_reload(gw_router *r, gw_config *config, gw_buf *err) {
  gw_route_table *t;
  int rc = table_new(config, err, &t);
  if (rc != GW_OK) {
    gw_config_release(config);
    gw_free(config);
    return rc;
  }
  t->owned_config = config;
  t->generation = ++r->generation;
  carry_state(atomic_load(&r->current), t);
  if (r->catalogs && table_start_catalogs(t) != GW_OK)
    GW_LOGW("route", NULL, "reload: model catalogs not refreshed for the new config");
  gw_route_table *old = atomic_exchange(&r->current, t);
  old->next_retired = r->retired;
  r->retired = old;
  gw_route_table_release(old); /* the router's reference */
  GW_LOGI("route", NULL, "config generation %u in use: %zu backends, %zu models", t->generation,
          t->n_backends, config->n_models);
  return GW_OK;
}

size_t gw_router_collect(gw_router *r) {
  if (!r->retired || anyone_acquiring(r))
    return r->retired ? 1 : 0;
  size_t left = 0;
  for (gw_route_table **pp = &r->retired; *pp;) {
    gw_route_table *t = *pp;
    if (table_refs(t) == 0) {
      *pp = t->next_retired;
      GW_LOGI("route", NULL, "config generation %u released: no call uses it any more",
              t->generation);
      table_free(t);
    } else {
      left++;
      pp = &t->next_retired;
    }
  }
  return left;
}

const char *gw_route_table_backend_state(const gw_route_table *t, size_t i) {
  const gw_backend *b = &t->backends[i];
  if (!b->kind)
    return "unknown";
  /* Ejected when every deployment routed to it is ejected. */
  size_t n = 0, out = 0;
  for (size_t m = 0; t->models && m < t->config->n_models; m++)
    for (size_t d = 0; d < t->models[m].conf->n_deployments; d++)
      if (t->models[m].deps[d].backend == b) {
        n++;
        const gw_health *h = &t->models[m].deps[d].health;
        if (atomic_load(&h->state) != GW_CIRCUIT_CLOSED)
          out++;
      }
  if (n && out == n)
    return "ejected";
  if (b->kind->state)
    return b->kind->state(b->impl);
  /* The last model listing says whether the upstream answers. */
  int h = b->catalog ? gw_catalog_health(b->catalog) : -1;
  return h > 0 ? "serving" : h == 0 ? "not_serving" : "unknown";
}

static long dep_in_flight(const gw_dep_rt *d) {
  long n = atomic_load(&d->stats.in_flight);
  for (size_t i = 0; i < GW_SHARDS; i++)
    n += atomic_load(&d->shards[i].in_flight);
  return n;
}

static long backend_in_flight(const gw_route_table *t, const gw_backend *b) {
  long n = 0;
  for (size_t m = 0; t->models && m < t->config->n_models; m++)
    for (size_t d = 0; d < t->models[m].conf->n_deployments; d++)
      if (t->models[m].deps[d].backend == b)
        n += dep_in_flight(&t->models[m].deps[d]);
  return n;
}

/* ---- active probes ---------------------------------------------------------------- */

static void log_change(const gw_call *call, const gw_dep_rt *d, gw_health_change ch,
                       int64_t eject_ms);

static size_t discard(char *p, size_t size, size_t nmemb, void *arg) {
  (void)p;
  (void)arg;
  return size * nmemb;
}

/* Is the upstream of |b| answering? 1 yes, 0 no, -1 cannot tell (no probe
 * for this provider). openai: GET {target}/models answered below 500; grpc:
 * the channel is READY. Blocking, at most |timeout_ms|; prober thread only. */
static int probe_backend(const gw_backend *b, int timeout_ms) {
  if (!b->kind)
    return -1;
  if (strcmp(b->conf->provider, "openai") == 0) {
    CURL *e = curl_easy_init();
    if (!e)
      return -1;
    char url[1024];
    snprintf(url, sizeof url, "%s/models", b->conf->target);
    size_t n = strlen(b->conf->target);
    if (n && b->conf->target[n - 1] == '/')
      snprintf(url, sizeof url, "%.*smodels", (int)n, b->conf->target);
    struct curl_slist *h = NULL;
    char auth[512];
    if (b->conf->api_key && *b->conf->api_key &&
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", b->conf->api_key) <
            (int)sizeof auth)
      h = curl_slist_append(NULL, auth);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(e);
    long st = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &st);
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    explicit_bzero(auth, sizeof auth);
    return rc == CURLE_OK && st > 0 && st < 500;
  }
  if (b->kind->state) {
    const char *st = b->kind->state(b->impl);
    return strcmp(st, "serving") == 0 ? 1 : strcmp(st, "not_serving") == 0 ? 0 : -1;
  }
  return -1;
}

/* One round: every ejected deployment whose back-off is over gets a probe
 * as its circuit's trial; success readmits it, failure re-ejects it. */
static void probe_round(gw_route_table *t) {
  int timeout =
      t->config->routing.probe_timeout_ms > 0 ? t->config->routing.probe_timeout_ms : 2000;
  for (size_t i = 0; t->models && i < t->config->n_models; i++) {
    gw_model_rt *m = &t->models[i];
    for (size_t d = 0; d < m->conf->n_deployments; d++) {
      gw_dep_rt *dr = &m->deps[d];
      if (!dr->backend || atomic_load(&dr->health.state) != GW_CIRCUIT_OPEN)
        continue;
      bool trial = false;
      if (!gw_health_admit(&dr->health, gw_now_ms(), &trial) || !trial)
        continue;
      int ok = probe_backend(dr->backend, timeout);
      if (ok < 0) {
        gw_health_abandon(&dr->health); /* no probe for it: the next call is the trial */
        continue;
      }
      int64_t ms = 0;
      gw_health_change ch =
          gw_health_report(&dr->health, &t->policy->health, gw_now_ms(), ok == 1, true, &ms);
      GW_LOGI("health", NULL, "active probe of %s (%s): %s", dr->label, dr->backend->conf->target,
              ok ? "answered" : "failed");
      log_change(NULL, dr, ch, ms);
    }
  }
}

static void *prober_main(void *arg) {
  gw_router *r = arg;
  pthread_mutex_lock(&r->probe_mu);
  while (!r->probe_stop) {
    gw_route_table *t = gw_router_acquire(r);
    int every = t->config->routing.probe_interval_ms;
    pthread_mutex_unlock(&r->probe_mu);
    if (every > 0)
      probe_round(t);
    gw_route_table_release(t);
    pthread_mutex_lock(&r->probe_mu);
    if (r->probe_stop)
      break;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    int64_t ns = (int64_t)(every > 0 ? every : 1000) * 1000000 + until.tv_nsec;
    until.tv_sec += (time_t)(ns / 1000000000);
    until.tv_nsec = (long)(ns % 1000000000);
    pthread_cond_timedwait(&r->probe_cv, &r->probe_mu, &until);
  }
  pthread_mutex_unlock(&r->probe_mu);
  return NULL;
}

int gw_router_start_probes(gw_router *r) {
  if (r->probing)
    return GW_OK;
  if (pthread_mutex_init(&r->probe_mu, NULL) != 0)
    return GW_ERR_IO;
  if (pthread_cond_init(&r->probe_cv, NULL) != 0) {
    pthread_mutex_destroy(&r->probe_mu);
    return GW_ERR_IO;
  }
  r->probe_stop = false;
  if (pthread_create(&r->prober, NULL, prober_main, r) != 0) {
    pthread_cond_destroy(&r->probe_cv);
    pthread_mutex_destroy(&r->probe_mu);
    return GW_ERR_IO;
  }
  r->probing = true;
  return GW_OK;
}

static void stop_probes(gw_router *r) {
  if (!r->probing)
    return;
  pthread_mutex_lock(&r->probe_mu);
  r->probe_stop = true;
  pthread_cond_signal(&r->probe_cv);
  pthread_mutex_unlock(&r->probe_mu);
  pthread_join(r->prober, NULL);
  pthread_cond_destroy(&r->probe_cv);
  pthread_mutex_destroy(&r->probe_mu);
  r->probing = false;
}

/* ---- per call ------------------------------------------------------------------ */

/* The last failure, kept to answer with when no attempt is left. */
typedef struct last_failure {
  gw_status_code code;
  const char *message;
  int http_status;
  const char *type, *code_s, *param, *retry_after;
} last_failure;

/* The route stage's state for one call (in its arena). */
typedef struct route_call {
  gw_call *call;
  gw_route_table *t;         /* held until the call is disposed of */
  const char *model;         /* the name the client asked for */
  const gw_model_rt *origin; /* the model entry it routed to first */
  const gw_model_rt *m;      /* the one being tried now (origin or a fallback) */
  size_t next_fallback;      /* next index into origin's fallbacks */
  bool *tried;               /* per deployment of |m| */
  gw_dep_rt *cur;            /* the attempt in flight, NULL between attempts */
  bool trial;                /* |cur| was admitted as its circuit's trial */
  bool first_out;            /* |cur| produced output (latency recorded) */
  int64_t attempt_ms;
  int retries;
  struct event *timer; /* the back-off before the next attempt */
  last_failure last;
  bool has_last;
} route_call;

static const gw_route_table *table_of(const gw_call *call) {
  const route_call *rc = call->route_state;
  return rc->t;
}

static const char *request_model(const gw_call *call) {
  const ProtobufCFieldDescriptor *f = GW_PB_FIELD(call->request->descriptor, "model");
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
static int catalog_lookup(const gw_route_table *r, const gw_model_conf *mc, const char *model,
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
  const gw_route_table *r = table_of(call);
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
  const gw_route_table *r = table_of(call);
  const gw_router *router = call->pipeline->router;
  gw_stats_sum st_sum;
  gw_pipeline_stats(call->pipeline, &st_sum);
  const gw_stats_sum *st = &st_sum;
  int64_t uptime = (gw_now_ms() - call->pipeline->started_ms) / 1000;
  const char *name = call->method->name;
  if (strcmp(name, "GetHealth") == 0) {
    Aigateway__V1__HealthResponse h;
    aigateway__v1__health_response__init(&h);
    bool ready = !router->shutting_down;
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
      e[i].value = (char *)gw_route_table_backend_state(r, i);
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
    Aigateway__V1__Backend **ptrs =
        gw_arena_calloc(call->arena, (r->n_backends + 1) * sizeof(*ptrs));
    if (!bs || !ptrs)
      return GW_ERR_NOMEM;
    const gw_config *c = r->config;
    for (size_t i = 0; i < r->n_backends; i++) {
      aigateway__v1__backend__init(&bs[i]);
      bs[i].name = r->backends[i].conf->name;
      bs[i].provider = r->backends[i].conf->provider;
      bs[i].target = r->backends[i].conf->target;
      bs[i].state = (char *)gw_route_table_backend_state(r, i);
      bs[i].in_flight = backend_in_flight(r, &r->backends[i]);
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
    /* A pooled backend's processes follow, named "<backend>[<i>]". */
    for (size_t i = 0; i < r->n_backends; i++) {
      const gw_backend *be = &r->backends[i];
      gw_backend_member mem[64];
      size_t nm = be->kind && be->kind->members ? be->kind->members(be->impl, mem, 64) : 0;
      nm = nm > 64 ? 64 : nm;
      Aigateway__V1__Backend *ms = nm ? gw_arena_calloc(call->arena, nm * sizeof(*ms)) : NULL;
      Aigateway__V1__Backend **grown =
          nm ? gw_arena_calloc(call->arena, (lb.n_backends + nm) * sizeof(*grown)) : NULL;
      if (nm && (!ms || !grown))
        return GW_ERR_NOMEM;
      for (size_t k = 0; k < nm; k++) {
        aigateway__v1__backend__init(&ms[k]);
        ms[k].name = gw_arena_printf(call->arena, "%s[%zu]", be->conf->name, k);
        ms[k].provider = be->conf->provider;
        ms[k].target = (char *)mem[k].target;
        ms[k].state = (char *)mem[k].state;
        ms[k].in_flight = mem[k].in_flight;
        grown[lb.n_backends + k] = &ms[k];
      }
      if (nm) {
        memcpy(grown, lb.backends, lb.n_backends * sizeof(*grown));
        lb.backends = grown;
        lb.n_backends += nm;
      }
    }
    gw_call_emit(call, &lb.base);
  } else {
    gw_call_finishf(call, GW_STATUS_UNIMPLEMENTED, "%s is not implemented", call->method->path);
    return GW_OK;
  }
  gw_call_finish(call, GW_STATUS_OK, NULL);
  return GW_OK;
}

static const gw_provider_ops admin_provider = {.name = "admin", .start = admin_start};

/* ---- the stage: attempts, retries, fallbacks ------------------------------- */

static void start_provider(gw_call *call, const gw_provider_ops *ops) {
  call->provider = ops;
  int rc = ops->start(call);
  if (rc != GW_OK && call->state != GW_CALL_DONE)
    gw_call_finishf(call, rc == GW_ERR_NOMEM ? GW_STATUS_RESOURCE_EXHAUSTED : GW_STATUS_UNAVAILABLE,
                    "provider %s could not start the call", ops->name);
}

static void log_change(const gw_call *call, const gw_dep_rt *d, gw_health_change ch,
                       int64_t eject_ms) {
  const char *rid = call ? call->request_id : NULL;
  switch (ch) {
  case GW_HEALTH_EJECTED:
    GW_LOGW("health", rid, "deployment %s (%s) ejected for %lld ms: circuit closed -> open",
            d->label, d->backend ? d->backend->conf->target : "?", (long long)eject_ms);
    break;
  case GW_HEALTH_REEJECTED:
    GW_LOGW("health", rid,
            "deployment %s (%s) failed its trial: circuit half_open -> open for %lld ms", d->label,
            d->backend ? d->backend->conf->target : "?", (long long)eject_ms);
    break;
  case GW_HEALTH_READMITTED:
    GW_LOGI("health", rid, "deployment %s (%s) readmitted: circuit half_open -> closed", d->label,
            d->backend ? d->backend->conf->target : "?");
    break;
  case GW_HEALTH_NO_CHANGE: break;
  }
}

/* A call's place among |d|'s calls in flight: false when the cap is
 * reached (another worker may have taken the last slot since under_cap). A
 * slot may be given back on another thread than took it: shards are summed. */
static bool take_slot(gw_dep_rt *d) {
  if (!d->exact) {
    atomic_fetch_add(&d->shards[gw_shard()].in_flight, 1);
    return true;
  }
  int cap = d->conf->max_concurrency;
  if (atomic_fetch_add(&d->stats.in_flight, 1) >= cap && cap > 0) {
    atomic_fetch_sub(&d->stats.in_flight, 1);
    return false;
  }
  return true;
}

static void give_slot(gw_dep_rt *d, gw_dep_shard *sh) {
  if (d->exact)
    atomic_fetch_sub(&d->stats.in_flight, 1);
  else
    atomic_fetch_sub(&sh->in_flight, 1);
}

/* The end of the attempt in flight: counters and health. |abandon|: no
 * outcome to report (the client went away, its deadline passed). */
static void end_attempt(route_call *rc, bool failure, bool abandon) {
  gw_dep_rt *d = rc->cur;
  if (!d)
    return;
  rc->cur = NULL;
  gw_dep_shard *sh = &d->shards[gw_shard()];
  give_slot(d, sh);
  atomic_fetch_add(&sh->requests, 1);
  if (abandon) {
    if (rc->trial)
      gw_health_abandon(&d->health);
    return;
  }
  if (failure)
    atomic_fetch_add(&sh->failures, 1);
  int64_t eject_ms = 0;
  gw_health_change ch = gw_health_report(&d->health, &rc->t->policy->health, gw_now_ms(), !failure,
                                         rc->trial, &eject_ms);
  log_change(rc->call, d, ch, eject_ms);
}

static gw_attempt_outcome outcome_of(const gw_call *call, gw_status_code code, const char *msg) {
  gw_attempt_outcome o = {0};
  o.code = code;
  o.http_status = call->upstream_error.http_status;
  o.error_code = call->upstream_error.code;
  o.message = msg;
  o.any_output = call->messages_out > 0;
  bool client_deadline = call->deadline_ms && gw_now_ms() >= call->deadline_ms;
  o.upstream = code != GW_STATUS_CANCELLED && !client_deadline;
  return o;
}

/* The deployments of |m| a call may go to now: in |mask|, the best
 * priority among those |ok| allows. Returns how many. */
static size_t best_tier(const gw_model_rt *m, bool *mask) {
  size_t n = m->conf->n_deployments, count = 0;
  int best = 0;
  bool any = false;
  for (size_t i = 0; i < n; i++)
    if (mask[i] && (!any || m->deps[i].conf->priority < best)) {
      best = m->deps[i].conf->priority;
      any = true;
    }
  for (size_t i = 0; i < n; i++) {
    if (mask[i] && m->deps[i].conf->priority != best)
      mask[i] = false;
    count += mask[i];
  }
  return count;
}

static bool under_cap(gw_dep_rt *d) {
  int cap = d->conf->max_concurrency;
  return cap <= 0 || atomic_load(&d->stats.in_flight) < cap; /* a cap makes it |exact| */
}

/* Picks the deployment for the next attempt and takes its slot (in flight
 * counted, health admitted). Passes: untried and healthy; healthy; then,
 * when every deployment is ejected, any that is not cooling down after a
 * Retry-After (a gateway that refuses everything helps no one). NULL when
 * none: |*wait_ms| is then how long until a cooling one is back, or -1. */
static gw_dep_rt *choose(route_call *rc, int64_t now, int64_t *wait_ms) {
  const gw_model_rt *m = rc->m;
  size_t n = m->conf->n_deployments;
  bool mask[GW_BALANCE_MAX_DEPLOYMENTS];
  *wait_ms = -1;
  for (int pass = 0; pass < 3; pass++) {
    for (size_t i = 0; i < n; i++) {
      gw_dep_rt *d = &m->deps[i];
      if (pass == 2) {
        int st = atomic_load(&d->health.state);
        bool cooling = st == GW_CIRCUIT_CLOSED && now < atomic_load(&d->health.until_ms);
        mask[i] = st != GW_CIRCUIT_HALF_OPEN && !cooling && under_cap(d);
      } else {
        mask[i] =
            (pass == 1 || !rc->tried[i]) && gw_health_available(&d->health, now) && under_cap(d);
      }
    }
    while (best_tier(m, mask) > 0) {
      int i = gw_balancer_pick((gw_balancer *)&m->bal, m->stats, mask);
      if (i < 0)
        break;
      gw_dep_rt *d = &m->deps[i];
      mask[i] = false;
      if (!take_slot(d))
        continue; /* lost the last slot to another worker */
      bool trial = false;
      if (pass < 2 && !gw_health_admit(&d->health, now, &trial)) {
        give_slot(d, &d->shards[gw_shard()]);
        continue;
      }
      rc->trial = trial;
      rc->tried[i] = true;
      return d;
    }
    if (pass == 1) {
      /* Only ejected or cooling deployments left: is one cooling? */
      bool any_open = false;
      for (size_t i = 0; i < n; i++) {
        int st = atomic_load(&m->deps[i].health.state);
        int64_t until = atomic_load(&m->deps[i].health.until_ms);
        if (st != GW_CIRCUIT_CLOSED)
          any_open = true;
        else if (until > now && (*wait_ms < 0 || until - now < *wait_ms))
          *wait_ms = until - now;
      }
      if (!any_open)
        return NULL; /* only cooling ones: wait for them rather than panic */
    }
  }
  return NULL;
}

static void on_backoff(evutil_socket_t fd, short what, void *arg);

static void free_timer(void *arg) {
  route_call *rc = arg;
  if (rc->timer)
    event_free(rc->timer);
  rc->timer = NULL;
}

/* Arms the back-off timer: the next attempt in |ms|. GW_OK or an error
 * (no worker loop, out of memory). */
static int schedule(route_call *rc, int64_t ms) {
  gw_call *call = rc->call;
  if (!call->worker)
    return GW_ERR_STATE;
  if (!rc->timer) {
    rc->timer = evtimer_new(call->worker->base, on_backoff, rc);
    if (!rc->timer)
      return GW_ERR_NOMEM;
    if (gw_arena_defer(call->arena, free_timer, rc) != GW_OK) {
      event_free(rc->timer);
      rc->timer = NULL;
      return GW_ERR_NOMEM;
    }
  }
  struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
  return evtimer_add(rc->timer, &tv) == 0 ? GW_OK : GW_ERR_IO;
}

/* Moves on to the next model of the fallback chain; false when none is left. */
static bool next_fallback(route_call *rc, const char *why) {
  const gw_model_conf *oc = rc->origin->conf;
  const gw_config *c = rc->t->config;
  while (rc->next_fallback < oc->n_fallbacks) {
    const char *name = oc->fallbacks[rc->next_fallback++];
    const gw_model_conf *fc = gw_config_model(c, name);
    if (!fc || fc->n_deployments == 0)
      continue;
    bool *tried = gw_arena_calloc(rc->call->arena, fc->n_deployments * sizeof(*tried));
    if (!tried)
      return false;
    GW_LOGI("route", rc->call->request_id, "model %s: falling back to %s (%s)", rc->m->conf->name,
            fc->name, why);
    rc->m = &rc->t->models[fc - c->models];
    rc->tried = tried;
    return true;
  }
  return false;
}

static bool on_retry(gw_call *call, gw_status_code code, const char *message);

/* Starts the provider of |d| (its slot already taken). */
static void start_attempt(route_call *rc, gw_dep_rt *d) {
  gw_call *call = rc->call;
  const gw_backend *b = d->backend;
  rc->cur = d;
  rc->first_out = false;
  rc->attempt_ms = gw_now_ms();
  if (!b || !b->ops) {
    end_attempt(rc, false, true);
    if (!b)
      gw_call_finishf(call, GW_STATUS_INTERNAL, "model '%s' routes to an unknown backend",
                      rc->model);
    else
      gw_call_finishf(call, GW_STATUS_UNIMPLEMENTED, "backend %s: provider %s is not available yet",
                      b->conf->name, b->conf->provider);
    return;
  }
  const gw_deployment_conf *dc = d->conf;
  call->route.backend = b->conf->name;
  call->route.backend_impl = b->impl;
  call->route.upstream_model =
      dc->upstream_model && *dc->upstream_model ? dc->upstream_model : rc->model;
  if (!listable(rc->m->conf->name) && b->catalog) {
    /* A wildcard reaches only what the backend lists (once it has listed). */
    const gw_catalog_snapshot *s = gw_catalog_get(b->catalog);
    if (s && !gw_catalog_find(s, call->route.upstream_model)) {
      end_attempt(rc, false, true);
      gw_call_finishf(call, GW_STATUS_NOT_FOUND, "The model '%s' does not exist", rc->model);
      return;
    }
  }
  GW_LOGD("route", call->request_id, "%s model=%s -> backend=%s model=%s (attempt %d)",
          call->method->path, rc->model, b->conf->name, call->route.upstream_model,
          rc->retries + 1);
  call->retry = on_retry;
  start_provider(call, b->ops);
}

static void attempt(route_call *rc);

static void on_backoff(evutil_socket_t fd, short what, void *arg) {
  route_call *rc = arg;
  if (rc->call->state == GW_CALL_RUNNING)
    attempt(rc);
}

/* No attempt is left: the call ends with the last failure (the upstream's
 * own error, passed through), or UNAVAILABLE when none was tried. */
static void finish_exhausted(route_call *rc) {
  gw_call *call = rc->call;
  call->retry = NULL;
  if (!rc->has_last) {
    gw_call_finishf(call, GW_STATUS_UNAVAILABLE, "model '%s': no deployment is available",
                    rc->model);
    return;
  }
  const last_failure *lf = &rc->last;
  call->upstream_error.http_status = lf->http_status;
  call->upstream_error.type = lf->type;
  call->upstream_error.code = lf->code_s;
  call->upstream_error.param = lf->param;
  call->upstream_error.retry_after = lf->retry_after;
  gw_call_finish(call, lf->code, lf->message);
}

/* Starts the next attempt, or ends the call when none can run. */
static void attempt(route_call *rc) {
  gw_call *call = rc->call;
  const gw_table_policy *p = rc->t->policy;
  for (;;) {
    int64_t now = gw_now_ms();
    int64_t wait_ms;
    gw_dep_rt *d = choose(rc, now, &wait_ms);
    if (d) {
      start_attempt(rc, d);
      return;
    }
    if (wait_ms >= 0 && wait_ms <= p->retry.max_retry_after_ms &&
        (!call->deadline_ms || now + wait_ms < call->deadline_ms) && schedule(rc, wait_ms) == GW_OK)
      return;
    if (next_fallback(rc, "no deployment available"))
      continue;
    finish_exhausted(rc);
    return;
  }
}

/* The retry hook (call.h): a provider attempt failed before any output. */
static bool on_retry(gw_call *call, gw_status_code code, const char *message) {
  route_call *rc = call->route_state;
  const gw_table_policy *p = rc->t->policy;
  gw_dep_rt *d = rc->cur;
  int64_t now = gw_now_ms();
  gw_attempt_outcome o = outcome_of(call, code, message);
  call->retry = NULL;
  end_attempt(rc, gw_retry_health_failure(&o), !o.upstream);
  int64_t ra = gw_retry_after_ms(call->upstream_error.retry_after, (int64_t)time(NULL));
  if (d && ra > 0 && (o.http_status == 429 || o.http_status == 503))
    gw_health_cool_down(&d->health, now, ra);
  int64_t delay = 0;
  if (gw_retry_context_length(&o)) {
    if (!next_fallback(rc, "context length exceeded"))
      return false;
  } else if (!gw_retry_retryable(&o)) {
    return false;
  } else if (rc->retries >= p->retry.max_retries) {
    if (!next_fallback(rc, "retries exhausted"))
      return false;
  } else {
    if (!gw_retry_budget_withdraw((gw_retry_budget *)&p->budget)) {
      GW_LOGW("route", call->request_id, "retry budget exhausted: not retrying %s",
              gw_status_code_name(code));
      return false;
    }
    rc->retries++;
    delay = gw_retry_backoff_ms(&p->retry, rc->retries, (uint64_t)random());
  }
  if (call->deadline_ms && now + delay >= call->deadline_ms)
    return false;
  /* Keep what the upstream said, to answer with if nothing else works. */
  last_failure *lf = &rc->last;
  gw_arena *a = call->arena;
  lf->code = code;
  lf->message = message ? gw_arena_strdup(a, message) : NULL;
  lf->http_status = call->upstream_error.http_status;
  lf->type = call->upstream_error.type;
  lf->code_s = call->upstream_error.code;
  lf->param = call->upstream_error.param;
  lf->retry_after = call->upstream_error.retry_after;
  rc->has_last = true;
  if (schedule(rc, delay) != GW_OK)
    return false;
  GW_LOGI("route", call->request_id, "%s failed on %s (%s%s%s): attempt %d in %lld ms", rc->model,
          d ? d->label : "?", gw_status_code_name(code), message ? ": " : "",
          message ? message : "", rc->retries + 1, (long long)delay);
  gw_call_reset_provider(call);
  return true;
}

/* Watchers: the first output times the attempt; the end reports it. */
static void route_message(const gw_stage *st, gw_call *call, const ProtobufCMessage *msg) {
  route_call *rc = call->route_state;
  if (!rc || !rc->cur || rc->first_out)
    return;
  rc->first_out = true;
  gw_dep_stats_observe(&rc->cur->stats, (gw_now_ms() - rc->attempt_ms) * 1000);
}

static void route_finish(const gw_stage *st, gw_call *call, gw_status_code code) {
  route_call *rc = call->route_state;
  call->retry = NULL;
  if (!rc || !rc->cur)
    return;
  gw_attempt_outcome o = outcome_of(call, code, NULL);
  if (code == GW_STATUS_OK && !rc->first_out)
    gw_dep_stats_observe(&rc->cur->stats, (gw_now_ms() - rc->attempt_ms) * 1000);
  end_attempt(rc, gw_retry_health_failure(&o), !o.upstream);
}

static void release_table(void *arg) { gw_route_table_release(arg); }

static void route_run(const gw_stage *st, gw_call *call) {
  gw_router *r = st->arg;
  const gw_method_info *m = call->method;
  route_call *rc = gw_arena_calloc(call->arena, sizeof(*rc));
  if (!rc) {
    gw_call_finish(call, GW_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  rc->call = call;
  rc->t = gw_router_acquire(r);
  if (gw_arena_defer(call->arena, release_table, rc->t) != GW_OK) {
    gw_route_table_release(rc->t);
    gw_call_finish(call, GW_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  call->route_state = rc;
  const gw_route_table *t = rc->t;
  if (strcmp(m->service, "aigateway.v1.Admin") == 0) {
    start_provider(call, &admin_provider);
    return;
  }
  if (strcmp(m->service, "aigateway.v1.Inference") != 0) {
    gw_call_finishf(call, GW_STATUS_UNIMPLEMENTED, "%s is not available on this gateway yet",
                    m->path);
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
  /* The provider rewrites the request's model per attempt: keep the
   * client's own name. */
  rc->model = gw_arena_strdup(call->arena, model);
  if (!rc->model) {
    gw_call_finish(call, GW_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  model = rc->model;
  const gw_model_conf *mc = gw_config_model(t->config, model);
  if (call->backend_hint) {
    /* The /local/... routes: only the named backend serves them, under the
     * name a config entry gives the model there, else the name asked for. */
    const gw_backend *hb = find_backend(t, call->backend_hint);
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
  rc->origin = rc->m = &t->models[mc - t->config->models];
  rc->tried = gw_arena_calloc(call->arena, mc->n_deployments * sizeof(*rc->tried));
  if (!rc->tried) {
    gw_call_finish(call, GW_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  gw_retry_budget_deposit(&t->policy->budget);
  attempt(rc);
}

gw_stage gw_router_stage(gw_router *r) {
  gw_stage s = {.name = "route",
                .run = route_run,
                .on_message = route_message,
                .on_finish = route_finish,
                .arg = r};
  return s;
}
