/* Model catalogs of OpenAI-compatible backends and their refresher thread. */
#include "pipeline/catalog.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/status.h"
#include "engine/curl_loop.h"
#include "pipeline/call.h"

#define LIST_CAP ((size_t)16 << 20)
#define GRACE_MS 10000 /* a replaced snapshot lives at least this long */
#define RETRY_S 5

/* A snapshot and the arena holding it (the public part comes first). */
typedef struct snap {
  gw_catalog_snapshot pub;
  gw_arena *arena;
  int64_t retired_ms;
  struct snap *next_retired;
} snap;

struct gw_catalog {
  char *name;
  char *url;         /* {base}/models */
  char *auth_header; /* secret */
  _Atomic(snap *) current;
  _Atomic int health; /* see gw_catalog_health */
  snap *retired;      /* writer side only */
};

int gw_catalog_health(const gw_catalog *c) {
  return c ? atomic_load(&((gw_catalog *)c)->health) : -1;
}

gw_catalog *gw_catalog_new(const gw_backend_conf *bc) {
  gw_catalog *c = gw_calloc(1, sizeof(*c));
  if (!c)
    return NULL;
  const char *t = bc->target ? bc->target : "";
  size_t n = strlen(t);
  while (n > 0 && t[n - 1] == '/')
    n--;
  c->name = gw_strdup(bc->name ? bc->name : "openai");
  c->url = gw_malloc(n + sizeof("/models"));
  if (!c->name || !c->url)
    goto fail;
  memcpy(c->url, t, n);
  memcpy(c->url + n, "/models", sizeof("/models"));
  if (bc->api_key && *bc->api_key) {
    size_t len = strlen("Authorization: Bearer ") + strlen(bc->api_key) + 1;
    if (!(c->auth_header = gw_malloc(len)))
      goto fail;
    snprintf(c->auth_header, len, "Authorization: Bearer %s", bc->api_key);
  }
  atomic_init(&c->current, NULL);
  atomic_init(&c->health, -1);
  return c;
fail:
  gw_catalog_free(c);
  return NULL;
}

static void snap_free(snap *s) {
  if (s)
    gw_arena_free(s->arena); /* |s| lives in it */
}

void gw_catalog_free(gw_catalog *c) {
  if (!c)
    return;
  snap_free(atomic_load(&c->current));
  while (c->retired) {
    snap *s = c->retired;
    c->retired = s->next_retired;
    snap_free(s);
  }
  if (c->auth_header) {
    volatile char *p = c->auth_header;
    while (*p)
      *p++ = 0;
    gw_free(c->auth_header);
  }
  gw_free(c->name);
  gw_free(c->url);
  gw_free(c);
}

const gw_catalog_snapshot *gw_catalog_get(const gw_catalog *c) {
  if (!c)
    return NULL;
  snap *s = atomic_load_explicit(&((gw_catalog *)c)->current, memory_order_acquire);
  return s ? &s->pub : NULL;
}

static int cmp_model(const void *a, const void *b) {
  return strcmp(((const gw_catalog_model *)a)->id, ((const gw_catalog_model *)b)->id);
}

const gw_catalog_model *gw_catalog_find(const gw_catalog_snapshot *s, const char *id) {
  if (!s || !id || s->n == 0)
    return NULL;
  gw_catalog_model key = {.id = id};
  return bsearch(&key, s->models, s->n, sizeof(key), cmp_model);
}

/* Swaps |s| in; frees replaced snapshots older than the grace period. */
static void publish(gw_catalog *c, snap *s) {
  int64_t now = gw_now_ms();
  snap *old = atomic_exchange_explicit(&c->current, s, memory_order_acq_rel);
  if (old) {
    old->retired_ms = now;
    old->next_retired = c->retired;
    c->retired = old;
  }
  for (snap **pp = &c->retired; *pp;) {
    snap *r = *pp;
    if (now - r->retired_ms >= GRACE_MS) {
      *pp = r->next_retired;
      snap_free(r);
    } else {
      pp = &r->next_retired;
    }
  }
}

int gw_catalog_load_json(gw_catalog *c, const char *json, size_t len) {
  json_t *root = json_loadb(json, len, 0, NULL);
  json_t *data = root ? json_object_get(root, "data") : NULL;
  if (!json_is_array(data)) {
    json_decref(root);
    return GW_ERR_INVALID;
  }
  int rc = GW_ERR_NOMEM;
  gw_arena *a = gw_arena_new(0, 0);
  if (!a)
    goto out;
  snap *s = gw_arena_calloc(a, sizeof(*s));
  size_t n = json_array_size(data);
  gw_catalog_model *models = gw_arena_calloc(a, (n + 1) * sizeof(*models));
  if (!s || !models)
    goto fail;
  s->arena = a;
  size_t k = 0, i;
  json_t *m;
  json_array_foreach(data, i, m) {
    json_t *id = json_object_get(m, "id");
    if (!json_is_string(id) || json_string_length(id) == 0)
      continue;
    gw_catalog_model *dst = &models[k];
    dst->id = gw_arena_strndup(a, json_string_value(id), json_string_length(id));
    json_t *ob = json_object_get(m, "owned_by");
    if (json_is_string(ob))
      dst->owned_by = gw_arena_strndup(a, json_string_value(ob), json_string_length(ob));
    json_t *cr = json_object_get(m, "created");
    if (json_is_integer(cr))
      dst->created = json_integer_value(cr);
    if (!dst->id || (json_is_string(ob) && !dst->owned_by))
      goto fail;
    k++;
  }
  qsort(models, k, sizeof(*models), cmp_model);
  /* Drop duplicate ids so lookups and listings see each once. */
  size_t w = 0;
  for (size_t r = 0; r < k; r++)
    if (w == 0 || strcmp(models[w - 1].id, models[r].id) != 0)
      models[w++] = models[r];
  s->pub.models = models;
  s->pub.n = w;
  s->pub.loaded_ms = gw_now_ms();
  publish(c, s);
  json_decref(root);
  return GW_OK;
fail:
  gw_arena_free(a);
out:
  json_decref(root);
  return rc;
}

/* ---- fetching ---------------------------------------------------------------- */

static size_t collect(char *p, size_t size, size_t nmemb, void *arg) {
  size_t n = size * nmemb;
  return gw_buf_append(arg, p, n) == GW_OK ? n : 0;
}

static int progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
  const _Atomic int *stop = arg;
  return stop && atomic_load(stop) ? 1 : 0;
}

static int fetch(gw_catalog *c, const _Atomic int *stop) {
  if (gw_curl_global_init() != GW_OK)
    return GW_ERR_IO;
  int rc = GW_ERR_NOMEM;
  gw_buf body;
  gw_buf_init(&body, LIST_CAP);
  struct curl_slist *h = NULL, *t;
  CURL *e = curl_easy_init();
  if (!e)
    goto out;
  if (c->auth_header) {
    if (!(t = curl_slist_append(h, c->auth_header)))
      goto out;
    h = t;
  }
  if (!(t = curl_slist_append(h, "Accept: application/json")))
    goto out;
  h = t;
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(e, CURLOPT_URL, c->url);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  gw_curl_trust_env(e);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 15000L);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "ai-gateway");
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, progress);
  curl_easy_setopt(e, CURLOPT_XFERINFODATA, (void *)stop);
  CURLcode cr = curl_easy_perform(e);
  long st = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &st);
  if (cr != CURLE_OK) {
    if (!(stop && atomic_load(stop)))
      GW_LOGW("catalog", NULL, "backend %s: listing models failed: %s", c->name,
              errbuf[0] ? errbuf : curl_easy_strerror(cr));
    rc = GW_ERR_IO;
    goto out;
  }
  if (st != 200) {
    GW_LOGW("catalog", NULL, "backend %s: listing models answered HTTP %ld", c->name, st);
    rc = GW_ERR_IO;
    goto out;
  }
  bool first = gw_catalog_get(c) == NULL;
  rc = gw_catalog_load_json(c, body.data ? body.data : "", body.len);
  if (rc == GW_ERR_INVALID)
    GW_LOGW("catalog", NULL, "backend %s: the model list is not a ListModelsResponse", c->name);
  else if (rc == GW_OK && first)
    GW_LOGI("catalog", NULL, "backend %s: %zu models", c->name, gw_catalog_get(c)->n);
out:
  if (!(stop && atomic_load(stop)))
    atomic_store(&c->health, rc == GW_OK ? 1 : 0);
  curl_slist_free_all(h);
  if (e)
    curl_easy_cleanup(e);
  gw_buf_release(&body);
  return rc;
}

int gw_catalog_refresh(gw_catalog *c) { return fetch(c, NULL); }

int gw_catalog_refresh_interval(void) {
  const char *v = getenv("MODELS_REFRESH_S");
  if (!v || !*v)
    return 60;
  char *end;
  long s = strtol(v, &end, 10);
  if (*end || s < 1 || s > 86400)
    return 60;
  return (int)s;
}

/* ---- the refresher thread ------------------------------------------------------ */

struct gw_catalog_refresher {
  gw_catalog **cats;
  size_t n;
  int interval_s;
  _Atomic int stop;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t thread;
};

static void *refresher_main(void *arg) {
  gw_catalog_refresher *r = arg;
  while (!atomic_load(&r->stop)) {
    bool missing = false;
    for (size_t i = 0; i < r->n && !atomic_load(&r->stop); i++) {
      fetch(r->cats[i], &r->stop);
      if (!gw_catalog_get(r->cats[i]))
        missing = true;
    }
    int wait_s = missing && r->interval_s > RETRY_S ? RETRY_S : r->interval_s;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += wait_s;
    pthread_mutex_lock(&r->mu);
    while (!atomic_load(&r->stop))
      if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) == ETIMEDOUT)
        break;
    pthread_mutex_unlock(&r->mu);
  }
  return NULL;
}

int gw_catalog_refresher_start(gw_catalog **cats, size_t n, int interval_s,
                               gw_catalog_refresher **out) {
  if (gw_curl_global_init() != GW_OK)
    return GW_ERR_IO;
  gw_catalog_refresher *r = gw_calloc(1, sizeof(*r));
  if (!r)
    return GW_ERR_NOMEM;
  r->cats = gw_calloc(n ? n : 1, sizeof(*r->cats));
  if (!r->cats) {
    gw_free(r);
    return GW_ERR_NOMEM;
  }
  memcpy(r->cats, cats, n * sizeof(*cats));
  r->n = n;
  r->interval_s = interval_s > 0 ? interval_s : 60;
  atomic_init(&r->stop, 0);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&r->cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&r->mu, NULL);
  if (pthread_create(&r->thread, NULL, refresher_main, r) != 0) {
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    gw_free(r->cats);
    gw_free(r);
    return GW_ERR_IO;
  }
  *out = r;
  return GW_OK;
}

void gw_catalog_refresher_stop(gw_catalog_refresher *r) {
  if (!r)
    return;
  pthread_mutex_lock(&r->mu);
  atomic_store(&r->stop, 1);
  pthread_cond_signal(&r->cv);
  pthread_mutex_unlock(&r->mu);
  pthread_join(r->thread, NULL);
  pthread_cond_destroy(&r->cv);
  pthread_mutex_destroy(&r->mu);
  gw_free(r->cats);
  gw_free(r);
}
