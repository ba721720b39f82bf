/* The gateway's configuration: environment variables (with a .env file loaded
 * when present; real environment variables win over .env), plus an optional
 * config file (CONFIG_FILE, JSON or YAML) mapping public model names to
 * backends. Built once, read-only afterwards; a reload builds a new one. */
#ifndef GW_CONFIG_CONFIG_H
#define GW_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/log.h"

/* A place requests can be sent to. */
typedef struct gw_backend_conf {
  char *name;     /* unique, referenced by models */
  char *provider; /* "grpc" (any server implementing proto/) or "openai" */
  char *target;   /* grpc: "host:port"; openai: base URL ("https://api.openai.com/v1") */
  char *api_key;  /* secret sent upstream (from api_key_env or api_key); may be NULL */
  int timeout_ms; /* per-request upstream timeout; 0 = only the client's deadline */
  /* Optional: argv of a local process the gateway starts and supervises to
   * serve this backend (the Python model server); NULL when not managed. */
  char **command;
  size_t n_command;
} gw_backend_conf;

/* One deployment of a public model: which backend, under which name there. */
typedef struct gw_deployment_conf {
  char *backend;        /* a gw_backend_conf.name */
  char *upstream_model; /* model name sent to the backend (defaults to the public name);
                         * NULL for a wildcard entry ("*" or a prefix one) that
                         * names none: send the name the client asked for */
  int weight;           /* >= 1, default 1 */
  int priority;         /* lower is preferred, default 0 */
} gw_deployment_conf;

typedef struct gw_model_conf {
  /* Public name. A name ending in "/" followed by "*" (written prefix/STAR
   * here only to keep this comment legal C) matches any model starting with
   * that prefix; "*" alone matches any model. */
  char *name;
  gw_deployment_conf *deployments;
  size_t n_deployments;
} gw_model_conf;

typedef struct gw_config {
  /* From the environment (see .env.example for each one's meaning). */
  char *host;               /* HOST, default "0.0.0.0" */
  int port;                 /* PORT, HTTP listener, default 8080 */
  int grpc_port;            /* GRPC_PORT, default 50051 */
  char *target_api_url;     /* TARGET_API_URL, may be NULL */
  char *target_api_key;     /* TARGET_API_KEY, secret, may be NULL */
  char *jwt_secret;         /* JWT_SECRET, secret, may be NULL */
  gw_log_level log_level;   /* LOG_LEVEL, default info */
  gw_log_format log_format; /* LOG_FORMAT, default text */
  char *config_file;        /* CONFIG_FILE, may be NULL */
  int workers;              /* WORKERS, default 0 = number of cores */
  int shutdown_grace_ms;    /* SHUTDOWN_GRACE_MS, default 10000 */
  size_t max_body_bytes;    /* MAX_BODY_BYTES, default 1 MiB */
  char *tls_cert_file;      /* TLS_CERT_FILE, may be NULL */
  char *tls_key_file;       /* TLS_KEY_FILE, may be NULL */
  int local_model_port;     /* LOCAL_MODEL_PORT, default 50061 */
  int http_header_timeout_ms; /* HTTP_HEADER_TIMEOUT_MS, default 60000 (408 after) */
  int http_body_timeout_ms;   /* HTTP_BODY_TIMEOUT_MS, default 60000 (408 after) */
  int max_conns_per_ip;       /* MAX_CONNS_PER_IP, per worker, default 256, 0 = no cap */
  char *cors_origins;         /* CORS_ORIGINS: comma-separated, "*" any; NULL = CORS off */

  /* From the config file, or the embedded default when there is none. */
  gw_backend_conf *backends;
  size_t n_backends;
  gw_model_conf *models;
  size_t n_models;
} gw_config;

/* Looks up an environment variable; returns NULL when unset. */
typedef const char *(*gw_getenv_fn)(void *arg, const char *name);

/* Builds |out| from the environment seen through |getenv_fn| (NULL: the
 * process environment), after loading |dotenv_path| if that file exists
 * (NULL: ".env" in the working directory; values already in the environment
 * win), and from CONFIG_FILE or the embedded default.
 * Returns GW_OK, or GW_ERR_INVALID with |err| holding one human-readable line
 * naming the file, the key and what is wrong
 * ("gateway.yaml: models[1].backend: unknown backend \"foo\""), or
 * GW_ERR_NOMEM. On error |out| holds nothing that needs releasing. */
int gw_config_load(gw_config *out, gw_getenv_fn getenv_fn, void *getenv_arg,
                   const char *dotenv_path, gw_buf *err);

/* Like gw_config_load(), without a .env file and with the config file given
 * in memory: |len| bytes at |data| (need not be NUL-terminated), named |name|
 * (its extension .json / .yaml / .yml picks the format, else the content does;
 * it starts every error line and becomes |out->config_file|). CONFIG_FILE
 * and TARGET_API_URL do not choose the routes here. For tests, fuzzing and
 * configs that do not come from a file. */
int gw_config_load_buffer(gw_config *out, const char *name, const char *data, size_t len,
                          gw_getenv_fn getenv_fn, void *getenv_arg, gw_buf *err);

/* Frees everything |c| holds. */
void gw_config_release(gw_config *c);

/* The backend named |name|, NULL if none. */
const gw_backend_conf *gw_config_backend(const gw_config *c, const char *name);

/* The model entry serving public name |model|: an exact name wins over the
 * longest matching prefix/STAR entry, which wins over a "*" entry (any
 * model). NULL if none. */
const gw_model_conf *gw_config_model(const gw_config *c, const char *model);

#endif
