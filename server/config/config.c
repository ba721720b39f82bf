/* gw_config_load(): the environment (real variables over .env), then the
 * routes from CONFIG_FILE, TARGET_API_URL or the embedded default; plus the
 * lookups the rest of the gateway makes on a loaded config. */
#include "config/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config_internal.h"
#include "core/alloc.h"
#include "core/status.h"

/* --- helpers shared with dotenv.c and config_file.c ------------------------ */

int gw_config_read_file(const char *path, char **data, size_t *len, gw_buf *err) {
  *data = NULL;
  *len = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return GW_ERR_NOTFOUND;
    goto fail_errno;
  }
  struct stat st;
  if (fstat(fd, &st) != 0)
    goto fail_errno_fd;
  if (S_ISDIR(st.st_mode)) {
    errno = EISDIR;
    goto fail_errno_fd;
  }
  gw_buf b;
  gw_buf_init(&b, GW_CONFIG_MAX_FILE_BYTES);
  char chunk[8192];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      gw_buf_release(&b);
      goto fail_errno_fd;
    }
    if (n == 0)
      break;
    int rc = gw_buf_append(&b, chunk, (size_t)n);
    if (rc != GW_OK) {
      gw_buf_release(&b);
      close(fd);
      if (rc == GW_ERR_TOOBIG) {
        if (err)
          (void)gw_buf_printf(err, "%s: file too large (more than %u bytes)", path,
                              GW_CONFIG_MAX_FILE_BYTES);
        return GW_ERR_INVALID;
      }
      return rc;
    }
  }
  close(fd);
  if (!b.data && gw_buf_append(&b, "", 0) != GW_OK)
    return GW_ERR_NOMEM;
  *data = b.data;
  *len = b.len;
  return GW_OK;

fail_errno_fd : {
  int e = errno;
  close(fd);
  errno = e;
}
fail_errno:
  if (err)
    (void)gw_buf_printf(err, "%s: cannot read: %s", path, strerror(errno));
  return GW_ERR_INVALID;
}

int gw_config_append_quoted(gw_buf *b, const char *s) {
  enum { MAX_SHOWN = 64 };
  int rc = gw_buf_appendc(b, '"');
  size_t i;
  for (i = 0; rc == GW_OK && s[i] && i < MAX_SHOWN; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\')
      rc = gw_buf_printf(b, "\\%c", c);
    else if (c < 0x20 || c == 0x7f)
      rc = gw_buf_printf(b, "\\x%02x", c);
    else
      rc = gw_buf_appendc(b, (char)c);
  }
  if (rc == GW_OK && s[i])
    rc = gw_buf_appends(b, "...");
  if (rc == GW_OK)
    rc = gw_buf_appendc(b, '"');
  return rc;
}

/* --- the environment -------------------------------------------------------- */

/* Real environment first, then the .env table. */
typedef struct env_view {
  gw_getenv_fn fn;
  void *arg;
  const gw_dotenv *dotenv; /* may be NULL */
  const char *dotenv_name;
} env_view;

static const char *process_getenv(void *arg, const char *name) {
  (void)arg;
  return getenv(name);
}

static const char *view_get(void *arg, const char *name) {
  const env_view *v = arg;
  const char *s = v->fn(v->arg, name);
  if (!s && v->dotenv)
    s = gw_dotenv_get(v->dotenv, name);
  return s;
}

/* Where the value of |name| came from, for error lines. */
static const char *view_source(const env_view *v, const char *name) {
  if (!v->fn(v->arg, name) && v->dotenv && gw_dotenv_get(v->dotenv, name))
    return v->dotenv_name;
  return "environment";
}

enum env_kind {
  K_STRING,
  K_SECRET,
  K_URL,
  K_PORT,
  K_INT,
  K_SIZE,
  K_LOG_LEVEL,
  K_LOG_FORMAT,
  K_GRPC_SERVER
};

static const struct env_spec {
  const char *name;
  enum env_kind kind;
  size_t off;
  long long min, max; /* K_INT, K_SIZE */
} env_specs[] = {
    {"HOST", K_STRING, offsetof(gw_config, host), 0, 0},
    {"PORT", K_PORT, offsetof(gw_config, port), 0, 0},
    {"GRPC_PORT", K_PORT, offsetof(gw_config, grpc_port), 0, 0},
    {"TARGET_API_URL", K_URL, offsetof(gw_config, target_api_url), 0, 0},
    {"TARGET_API_KEY", K_SECRET, offsetof(gw_config, target_api_key), 0, 0},
    {"JWT_SECRET", K_SECRET, offsetof(gw_config, jwt_secret), 0, 0},
    {"LOG_LEVEL", K_LOG_LEVEL, offsetof(gw_config, log_level), 0, 0},
    {"LOG_FORMAT", K_LOG_FORMAT, offsetof(gw_config, log_format), 0, 0},
    {"CONFIG_FILE", K_STRING, offsetof(gw_config, config_file), 0, 0},
    {"WORKERS", K_INT, offsetof(gw_config, workers), 0, 1024},
    {"SHUTDOWN_GRACE_MS", K_INT, offsetof(gw_config, shutdown_grace_ms), 0, 3600000},
    {"MAX_BODY_BYTES", K_SIZE, offsetof(gw_config, max_body_bytes), 1, 1073741824},
    {"TLS_CERT_FILE", K_STRING, offsetof(gw_config, tls_cert_file), 0, 0},
    {"TLS_KEY_FILE", K_STRING, offsetof(gw_config, tls_key_file), 0, 0},
    {"LOCAL_MODEL_PORT", K_PORT, offsetof(gw_config, local_model_port), 0, 0},
    {"HTTP_HEADER_TIMEOUT_MS", K_INT, offsetof(gw_config, http_header_timeout_ms), 1, 3600000},
    {"HTTP_BODY_TIMEOUT_MS", K_INT, offsetof(gw_config, http_body_timeout_ms), 1, 3600000},
    {"MAX_CONNS_PER_IP", K_INT, offsetof(gw_config, max_conns_per_ip), 0, 1000000},
    {"BUSY_POLL_US", K_INT, offsetof(gw_config, busy_poll_us), 0, 1000000},
    {"GRPC_SERVER", K_GRPC_SERVER, offsetof(gw_config, grpc_server_core), 0, 0},
    {"CORS_ORIGINS", K_STRING, offsetof(gw_config, cors_origins), 0, 0},
    {"LOCAL_MODEL_WORKERS_MIN", K_INT, offsetof(gw_config, local_model_workers_min), 1, 64},
    {"LOCAL_MODEL_WORKERS_MAX", K_INT, offsetof(gw_config, local_model_workers_max), 1, 64},
};

/* Strict decimal: digits only, no sign, no blanks, no overflow past |max|. */
static int parse_uint(const char *s, long long min, long long max, long long *out) {
  long long v = 0;
  if (!*s)
    return GW_ERR_INVALID;
  for (; *s; s++) {
    if (*s < '0' || *s > '9')
      return GW_ERR_INVALID;
    if (v > (max - (*s - '0')) / 10)
      return GW_ERR_INVALID;
    v = v * 10 + (*s - '0');
  }
  if (v < min)
    return GW_ERR_INVALID;
  *out = v;
  return GW_OK;
}

int gw_config_is_http_url(const char *s) {
  size_t skip;
  if (strncasecmp(s, "http://", 7) == 0)
    skip = 7;
  else if (strncasecmp(s, "https://", 8) == 0)
    skip = 8;
  else
    return 0;
  if (!s[skip] || s[skip] == '/' || s[skip] == ':')
    return 0;
  for (const char *p = s; *p; p++)
    if ((unsigned char)*p <= 0x20 || *p == 0x7f)
      return 0;
  return 1;
}

/* Like gw_config_append_quoted, but a URL with userinfo ("user:key@host")
 * is not echoed at all: it may hold a secret. */
static int append_url(gw_buf *b, const char *s) {
  if (strchr(s, '@'))
    return gw_buf_appends(b, "\"<redacted: contains credentials>\"");
  return gw_config_append_quoted(b, s);
}

static int env_error(gw_buf *err, const char *source, const char *name, const char *value,
                     int redact_url, const char *what) {
  if (!err)
    return GW_ERR_INVALID;
  if (gw_buf_printf(err, "%s: %s: ", source, name) == GW_OK &&
      (redact_url ? append_url(err, value) : gw_config_append_quoted(err, value)) == GW_OK)
    (void)gw_buf_printf(err, " %s", what);
  return GW_ERR_INVALID;
}

static int load_env(gw_config *c, const env_view *v, gw_buf *err) {
  c->port = 8080;
  c->grpc_port = 50051;
  c->log_level = GW_LOG_INFO;
  c->log_format = GW_LOG_TEXT;
  c->workers = 0;
  c->shutdown_grace_ms = 10000;
  c->max_body_bytes = 1024 * 1024;
  c->local_model_port = 50061;
  c->http_header_timeout_ms = 60000;
  c->http_body_timeout_ms = 60000;
  c->max_conns_per_ip = 256;
  c->local_model_workers_min = 1;
  c->local_model_workers_max = 1;

  for (size_t i = 0; i < sizeof env_specs / sizeof env_specs[0]; i++) {
    const struct env_spec *e = &env_specs[i];
    const char *s = view_get((void *)v, e->name);
    if (!s || !*s) /* empty means unset */
      continue;
    const char *src = view_source(v, e->name);
    char *field = (char *)c + e->off;
    long long n;
    char what[96];
    switch (e->kind) {
    case K_URL:
      if (!gw_config_is_http_url(s))
        return env_error(err, src, e->name, s, 1, "is not an http(s) URL");
      /* fallthrough */
    case K_STRING:
    case K_SECRET: {
      char *d = gw_strdup(s);
      if (!d)
        return GW_ERR_NOMEM;
      *(char **)field = d;
      break;
    }
    case K_PORT:
      if (parse_uint(s, 1, 65535, &n) != GW_OK)
        return env_error(err, src, e->name, s, 0, "is not a port number (1-65535)");
      *(int *)field = (int)n;
      break;
    case K_INT:
    case K_SIZE:
      if (parse_uint(s, e->min, e->max, &n) != GW_OK) {
        snprintf(what, sizeof what, "is not an integer in %lld-%lld", e->min, e->max);
        return env_error(err, src, e->name, s, 0, what);
      }
      if (e->kind == K_INT)
        *(int *)field = (int)n;
      else
        *(size_t *)field = (size_t)n;
      break;
    case K_LOG_LEVEL:
      if (gw_log_level_parse(s, &c->log_level) != GW_OK)
        return env_error(err, src, e->name, s, 0, "must be one of debug, info, warn, error, off");
      break;
    case K_LOG_FORMAT:
      if (gw_log_format_parse(s, &c->log_format) != GW_OK)
        return env_error(err, src, e->name, s, 0, "must be one of text, json");
      break;
    case K_GRPC_SERVER:
      if (strcmp(s, "native") != 0 && strcmp(s, "core") != 0)
        return env_error(err, src, e->name, s, 0, "must be one of native, core");
      *(int *)field = strcmp(s, "core") == 0;
      break;
    }
  }
  if (!c->host && !(c->host = gw_strdup("0.0.0.0")))
    return GW_ERR_NOMEM;
  if (!c->tls_cert_file != !c->tls_key_file) {
    const char *set = c->tls_cert_file ? "TLS_CERT_FILE" : "TLS_KEY_FILE";
    const char *unset = c->tls_cert_file ? "TLS_KEY_FILE" : "TLS_CERT_FILE";
    if (err)
      (void)gw_buf_printf(err, "%s: %s is set but %s is not", view_source(v, set), set, unset);
    return GW_ERR_INVALID;
  }
  if (c->local_model_workers_min > c->local_model_workers_max) {
    if (err)
      (void)gw_buf_printf(err,
                          "%s: LOCAL_MODEL_WORKERS_MIN (%d) is above LOCAL_MODEL_WORKERS_MAX (%d)",
                          view_source(v, "LOCAL_MODEL_WORKERS_MIN"), c->local_model_workers_min,
                          c->local_model_workers_max);
    return GW_ERR_INVALID;
  }
  if (c->port == c->grpc_port) {
    if (err)
      (void)gw_buf_printf(err, "environment: PORT and GRPC_PORT are both %d", c->port);
    return GW_ERR_INVALID;
  }
  return GW_OK;
}

/* --- routes without a config file ------------------------------------------ */

static int add_single_model(gw_config *c, const char *name, const char *backend,
                            const char *upstream) {
  gw_model_conf *m = &c->models[c->n_models++];
  if (!(m->name = gw_strdup(name)))
    return GW_ERR_NOMEM;
  if (!(m->deployments = gw_calloc(1, sizeof *m->deployments)))
    return GW_ERR_NOMEM;
  m->n_deployments = 1;
  m->deployments[0].weight = 1;
  if (!(m->deployments[0].backend = gw_strdup(backend)))
    return GW_ERR_NOMEM;
  if (upstream && !(m->deployments[0].upstream_model = gw_strdup(upstream)))
    return GW_ERR_NOMEM;
  return GW_OK;
}

/* TARGET_API_URL set and no CONFIG_FILE: every model ("*") goes to the
 * OpenAI-compatible upstream, under the name the client asked for. Several
 * base URLs separated by commas are deployments of the same upstream
 * ("upstream-1", "upstream-2", ...), load-balanced with failover. */
static int routes_from_target(gw_config *c, gw_buf *err) {
  size_t n = 1;
  for (const char *p = c->target_api_url; *p; p++)
    n += *p == ',';
  if (!(c->backends = gw_calloc(n, sizeof *c->backends)))
    return GW_ERR_NOMEM;
  if (!(c->models = gw_calloc(1, sizeof *c->models)))
    return GW_ERR_NOMEM;
  gw_model_conf *m = &c->models[0];
  c->n_models = 1;
  if (!(m->name = gw_strdup("*")) || !(m->deployments = gw_calloc(n, sizeof *m->deployments)))
    return GW_ERR_NOMEM;
  const char *p = c->target_api_url;
  for (size_t i = 0; i < n; i++) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    gw_backend_conf *b = &c->backends[c->n_backends++];
    char name[32];
    if (n == 1)
      snprintf(name, sizeof name, "upstream");
    else
      snprintf(name, sizeof name, "upstream-%zu", i + 1);
    if (!(b->name = gw_strdup(name)) || !(b->provider = gw_strdup("openai")) ||
        !(b->target = gw_strndup(p, len)))
      return GW_ERR_NOMEM;
    if (!gw_config_is_http_url(b->target)) {
      if (err) {
        (void)gw_buf_printf(err, "environment: TARGET_API_URL: item %zu ", i + 1);
        (void)gw_config_append_quoted(err, b->target);
        (void)gw_buf_appends(err, " is not an http(s) URL");
      }
      return GW_ERR_INVALID;
    }
    if (c->target_api_key && !(b->api_key = gw_strdup(c->target_api_key)))
      return GW_ERR_NOMEM;
    gw_deployment_conf *d = &m->deployments[m->n_deployments++];
    d->weight = 1;
    if (!(d->backend = gw_strdup(name)))
      return GW_ERR_NOMEM;
    p = comma ? comma + 1 : p + len;
  }
  return GW_OK;
}

void gw_config_routing_defaults(gw_routing_conf *r) {
  r->balance = GW_CONF_BALANCE_WEIGHTED;
  r->max_retries = 2;
  r->retry_budget_percent = 20;
  r->retry_budget_min = 10;
  r->retry_backoff_ms = 25;
  r->retry_backoff_max_ms = 1000;
  r->max_retry_after_ms = 10000;
  r->eject_failures = 3;
  r->eject_base_ms = 1000;
  r->eject_max_ms = 30000;
  r->probe_interval_ms = 0;
  r->probe_timeout_ms = 2000;
  r->reload_poll_ms = 1000;
}

/* Neither: the local Python model server, started by the gateway, serving
 * its trained language model "tiny-lm". */
static int routes_default(gw_config *c, gw_buf *err) {
  char port[16];
  snprintf(port, sizeof port, "%d", c->local_model_port);
  if (!(c->backends = gw_calloc(1, sizeof *c->backends)))
    return GW_ERR_NOMEM;
  c->n_backends = 1;
  gw_backend_conf *b = &c->backends[0];
  if (!(b->name = gw_strdup("local")) || !(b->provider = gw_strdup("grpc")))
    return GW_ERR_NOMEM;
  char target[32];
  snprintf(target, sizeof target, "127.0.0.1:%s", port);
  if (!(b->target = gw_strdup(target)))
    return GW_ERR_NOMEM;
  static const char *const argv[] = {"/usr/bin/python3", "-m",      "aigw_model_server",
                                     "--backend",        "tiny-lm", "--port"};
  const size_t n = sizeof argv / sizeof argv[0];
  if (!(b->command = gw_calloc(n + 1, sizeof *b->command)))
    return GW_ERR_NOMEM;
  b->n_command = n + 1;
  for (size_t i = 0; i < n; i++)
    if (!(b->command[i] = gw_strdup(argv[i])))
      return GW_ERR_NOMEM;
  if (!(b->command[n] = gw_strdup(port)))
    return GW_ERR_NOMEM;
  gw_config_pool_defaults(c, b);
  const char *fault = gw_config_pool_finish(b);
  if (fault) { /* only the member ports can fail: LOCAL_MODEL_PORT + max - 1 */
    if (err)
      (void)gw_buf_printf(err, "environment: LOCAL_MODEL_PORT / LOCAL_MODEL_WORKERS_MAX: %s",
                          fault);
    return GW_ERR_INVALID;
  }
  if (!(c->models = gw_calloc(1, sizeof *c->models)))
    return GW_ERR_NOMEM;
  return add_single_model(c, "tiny-lm", "local", "tiny-lm");
}

/* --- process pools ------------------------------------------------------------ */

void gw_config_pool_defaults(const gw_config *c, gw_backend_conf *b) {
  gw_pool_conf *p = &b->pool;
  memset(p, 0, sizeof *p);
  p->min = c->local_model_workers_min > 0 ? c->local_model_workers_min : 1;
  p->max = c->local_model_workers_max > 0 ? c->local_model_workers_max : 1;
  if (p->max < p->min)
    p->max = p->min;
  p->max_concurrency = 8; /* the model server's own default */
  for (size_t i = 0; i + 1 < b->n_command; i++)
    if (strcmp(b->command[i], "--max-concurrency") == 0) {
      long long n;
      if (parse_uint(b->command[i + 1], 1, 100000, &n) == GW_OK)
        p->max_concurrency = (int)n;
    }
  for (size_t i = 0; i < b->n_command; i++)
    if (strncmp(b->command[i], "--max-concurrency=", 18) == 0) {
      long long n;
      if (parse_uint(b->command[i] + 18, 1, 100000, &n) == GW_OK)
        p->max_concurrency = (int)n;
    }
  p->scale_down_inflight = 1;
  p->scale_up_wait_ms = 200;
  p->up_after_ms = 2000;
  p->down_after_ms = 30000;
  p->up_cooldown_ms = 5000;
  p->down_cooldown_ms = 30000;
  p->queue_timeout_ms = 10000;
}

const char *gw_config_pool_finish(gw_backend_conf *b) {
  gw_pool_conf *p = &b->pool;
  if (p->scale_up_inflight <= 0)
    p->scale_up_inflight = p->max_concurrency;
  if (p->min > p->max)
    return "min is above max";
  const char *colon = b->target ? strrchr(b->target, ':') : NULL;
  long port = colon ? strtol(colon + 1, NULL, 10) : 0;
  if (port + p->max - 1 > 65535)
    return "the member ports (target port + max - 1) go past 65535";
  if (p->max > 1) {
    bool has_port = false;
    for (size_t i = 0; i < b->n_command; i++)
      if ((strcmp(b->command[i], "--port") == 0 && i + 1 < b->n_command) ||
          strncmp(b->command[i], "--port=", 7) == 0)
        has_port = true;
    if (!has_port)
      return "a pool of more than one process needs --port in its command";
  }
  return NULL;
}

/* --- load / release ---------------------------------------------------------- */

static void release_backend(gw_backend_conf *b) {
  gw_free(b->name);
  gw_free(b->provider);
  gw_free(b->target);
  if (b->api_key) {
    /* Secrets do not linger in freed heap. */
    explicit_bzero(b->api_key, strlen(b->api_key));
    gw_free(b->api_key);
  }
  for (size_t i = 0; i < b->n_command; i++)
    gw_free(b->command[i]);
  gw_free(b->command);
  char **secrets[] = {&b->aws_access_key_id, &b->aws_secret_access_key, &b->aws_session_token};
  for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
    if (*secrets[i]) {
      explicit_bzero(*secrets[i], strlen(*secrets[i]));
      gw_free(*secrets[i]);
    }
  gw_free(b->api_version);
  gw_free(b->region);
  gw_free(b->project);
  gw_free(b->location);
  gw_free(b->credentials_file);
}

void gw_config_release_routes(gw_config *c) {
  for (size_t i = 0; i < c->n_backends; i++)
    release_backend(&c->backends[i]);
  gw_free(c->backends);
  c->backends = NULL;
  c->n_backends = 0;
  for (size_t i = 0; i < c->n_models; i++) {
    gw_model_conf *m = &c->models[i];
    gw_free(m->name);
    for (size_t j = 0; j < m->n_deployments; j++) {
      gw_free(m->deployments[j].backend);
      gw_free(m->deployments[j].upstream_model);
    }
    gw_free(m->deployments);
    for (size_t j = 0; j < m->n_fallbacks; j++)
      gw_free(m->fallbacks[j]);
    gw_free(m->fallbacks);
  }
  gw_free(c->models);
  c->models = NULL;
  c->n_models = 0;
}

void gw_config_release(gw_config *c) {
  if (!c)
    return;
  gw_config_release_routes(c);
  gw_free(c->host);
  gw_free(c->target_api_url);
  gw_free_secret(c->target_api_key);
  gw_free_secret(c->jwt_secret);
  gw_free(c->config_file);
  gw_free(c->tls_cert_file);
  gw_free(c->tls_key_file);
  gw_free(c->cors_origins);
  memset(c, 0, sizeof *c);
}

static int load_routes(gw_config *c, const env_view *v, gw_buf *err) {
  gw_config_routing_defaults(&c->routing);
  if (c->config_file) {
    char *data;
    size_t len;
    int rc = gw_config_read_file(c->config_file, &data, &len, err);
    if (rc == GW_ERR_NOTFOUND) {
      if (err)
        (void)gw_buf_printf(err, "%s: cannot read: %s", c->config_file, strerror(ENOENT));
      return GW_ERR_INVALID;
    }
    if (rc != GW_OK)
      return rc;
    rc = gw_config_file_parse(c, c->config_file, data, len, view_get, (void *)v, err);
    gw_free(data);
    return rc;
  }
  int rc = c->target_api_url ? routes_from_target(c, err) : routes_default(c, err);
  if (rc != GW_OK)
    gw_config_release_routes(c);
  return rc;
}

int gw_config_load(gw_config *out, gw_getenv_fn getenv_fn, void *getenv_arg,
                   const char *dotenv_path, gw_buf *err) {
  gw_config c;
  gw_dotenv d;
  memset(&c, 0, sizeof c);
  memset(&d, 0, sizeof d);
  memset(out, 0, sizeof *out);
  if (err)
    gw_buf_reset(err);
  const char *dotenv_name = dotenv_path ? dotenv_path : ".env";
  int rc = gw_dotenv_load(&d, dotenv_name, err);
  if (rc != GW_OK)
    return rc;
  env_view v = {getenv_fn ? getenv_fn : process_getenv, getenv_arg, &d, dotenv_name};
  if ((rc = load_env(&c, &v, err)) != GW_OK)
    goto fail;
  if ((rc = load_routes(&c, &v, err)) != GW_OK)
    goto fail;
  gw_dotenv_release(&d);
  *out = c;
  return GW_OK;

fail:
  gw_config_release(&c);
  gw_dotenv_release(&d);
  return rc;
}

int gw_config_load_buffer(gw_config *out, const char *name, const char *data, size_t len,
                          gw_getenv_fn getenv_fn, void *getenv_arg, gw_buf *err) {
  gw_config c;
  memset(&c, 0, sizeof c);
  memset(out, 0, sizeof *out);
  if (err)
    gw_buf_reset(err);
  env_view v = {getenv_fn ? getenv_fn : process_getenv, getenv_arg, NULL, NULL};
  int rc = load_env(&c, &v, err);
  if (rc != GW_OK)
    goto fail;
  gw_free(c.config_file);
  if (!(c.config_file = gw_strdup(name))) {
    rc = GW_ERR_NOMEM;
    goto fail;
  }
  if ((rc = gw_config_file_parse(&c, name, data, len, view_get, &v, err)) != GW_OK)
    goto fail;
  *out = c;
  return GW_OK;

fail:
  gw_config_release(&c);
  return rc;
}

/* --- lookups ------------------------------------------------------------------ */

const gw_backend_conf *gw_config_backend(const gw_config *c, const char *name) {
  for (size_t i = 0; i < c->n_backends; i++)
    if (strcmp(c->backends[i].name, name) == 0)
      return &c->backends[i];
  return NULL;
}

const gw_model_conf *gw_config_model(const gw_config *c, const char *model) {
  const gw_model_conf *best = NULL, *any = NULL;
  size_t best_len = 0;
  for (size_t i = 0; i < c->n_models; i++) {
    const gw_model_conf *m = &c->models[i];
    if (strcmp(m->name, model) == 0)
      return m;
    size_t n = strlen(m->name);
    if (n == 1 && m->name[0] == '*') {
      if (!any)
        any = m;
    } else if (n >= 2 && m->name[n - 1] == '*' && m->name[n - 2] == '/' &&
               strncmp(model, m->name, n - 1) == 0 && model[n - 1] != '\0' && n > best_len) {
      best = m;
      best_len = n;
    }
  }
  return best ? best : any;
}
