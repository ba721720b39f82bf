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

/* How many processes serve a backend with a `command`, and when the gateway
 * starts or drains one (config key `pool`; see docs/config.md). Member i
 * listens on the target's port + i: the command's `--port` value is
 * rewritten for each. max 1 (the default) means one process, no scaling. */
typedef struct gw_pool_conf {
  int min, max;            /* processes, 1 <= min <= max <= 64 */
  int max_concurrency;     /* calls one process takes at once (its --max-concurrency) */
  int scale_up_inflight;   /* calls per process at which load is high; default max_concurrency */
  int scale_down_inflight; /* calls per remaining process at which load is low; default 1 */
  int scale_up_wait_ms;    /* queue-wait EWMA at which load is high; 0 = off; default 200 */
  int scale_up_latency_ms; /* latency EWMA at which load is high; 0 = off (default) */
  int up_after_ms;         /* high load lasts this long before a scale-up; default 2000 */
  int down_after_ms;       /* low load lasts this long before a scale-down; default 30000 */
  int up_cooldown_ms;      /* after a change, no scale-up for this long; default 5000 */
  int down_cooldown_ms;    /* after a change, no scale-down for this long; default 30000 */
  int queue_timeout_ms;    /* a call waits this long for a free process; default 10000 */
} gw_pool_conf;

/* A place requests can be sent to. */
typedef struct gw_backend_conf {
  char *name;     /* unique, referenced by models */
  char *provider; /* "grpc" (any server implementing proto/), "openai", "azure",
                   * "anthropic", "gemini", "vertex" or "bedrock" */
  char *target;   /* grpc: "host:port"; openai: base URL ("https://api.openai.com/v1") */
  char *api_key;  /* secret sent upstream (from api_key_env or api_key); may be NULL */
  int timeout_ms; /* per-request upstream timeout; 0 = only the client's deadline */
  /* openai: embeddings asked of the upstream as floats (embedding_encoding
   * "float") instead of base64 (the default), whatever the client asked */
  bool embeddings_float;
  /* Optional: argv of a local process the gateway starts and supervises to
   * serve this backend (the Python model server); NULL when not managed. */
  char **command;
  size_t n_command;
  gw_pool_conf pool; /* meaningful with a command */
  /* Vendor keys (docs/config.md, "Providers"); NULL when not set. */
  char *api_version;           /* azure: api-version; anthropic: anthropic-version */
  char *region;                /* bedrock: AWS region */
  char *aws_access_key_id;     /* bedrock: from access_key_id_env; secret */
  char *aws_secret_access_key; /* bedrock: from secret_access_key_env; secret */
  char *aws_session_token;     /* bedrock: from session_token_env; secret */
  char *project, *location;    /* vertex: GCP project and location */
  char *credentials_file;      /* vertex: service-account JSON key file */
} gw_backend_conf;

/* One deployment of a public model: which backend, under which name there. */
typedef struct gw_deployment_conf {
  char *backend;        /* a gw_backend_conf.name */
  char *upstream_model; /* model name sent to the backend (defaults to the public name);
                         * NULL for a wildcard entry ("*" or a prefix one) that
                         * names none: send the name the client asked for */
  int weight;           /* >= 1, default 1 */
  int priority;         /* lower is preferred, default 0 */
  int max_concurrency;  /* calls in flight at most (per gateway process); 0 = no cap */
} gw_deployment_conf;

typedef struct gw_model_conf {
  /* Public name. A name ending in "/" followed by "*" (written prefix/STAR
   * here only to keep this comment legal C) matches any model starting with
   * that prefix; "*" alone matches any model. */
  char *name;
  gw_deployment_conf *deployments;
  size_t n_deployments;
  /* Public model names tried in order when this model cannot answer (every
   * deployment failed or is ejected, or the prompt is over its context
   * length); NULL/0 when none. */
  char **fallbacks;
  size_t n_fallbacks;
} gw_model_conf;

/* How calls are spread, retried and ejected (config file key `routing`;
 * docs/config.md). The defaults hold without a config file. */
typedef enum {
  GW_CONF_BALANCE_WEIGHTED = 0, /* "weighted" (round robin by weight) */
  GW_CONF_BALANCE_LEAST_OUTSTANDING,
  GW_CONF_BALANCE_P2C_EWMA,
} gw_conf_balance;

typedef struct gw_routing_conf {
  gw_conf_balance balance;  /* strategy, default weighted */
  int max_retries;          /* extra attempts per call, default 2 */
  int retry_budget_percent; /* default 20 */
  int retry_budget_min;     /* default 10 */
  int retry_backoff_ms;     /* default 25 */
  int retry_backoff_max_ms; /* default 1000 */
  int max_retry_after_ms;   /* default 10000 */
  int eject_failures;       /* consecutive failures that eject, default 3 */
  int eject_base_ms;        /* default 1000, doubled per ejection */
  int eject_max_ms;         /* default 30000 */
  int probe_interval_ms;    /* active probes of ejected deployments; 0 = off (default) */
  int probe_timeout_ms;     /* default 2000 */
  int reload_poll_ms;       /* config file change polling, default 1000; 0 = SIGHUP only */
} gw_routing_conf;

typedef struct gw_config {
  /* From the environment (see .env.example for each one's meaning). */
  char *host;                  /* HOST, default "0.0.0.0" */
  int port;                    /* PORT, HTTP listener, default 8080 */
  int grpc_port;               /* GRPC_PORT, default 50051 */
  char *target_api_url;        /* TARGET_API_URL, may be NULL */
  char *target_api_key;        /* TARGET_API_KEY, secret, may be NULL */
  char *jwt_secret;            /* JWT_SECRET, secret, may be NULL */
  gw_log_level log_level;      /* LOG_LEVEL, default info */
  gw_log_format log_format;    /* LOG_FORMAT, default text */
  char *config_file;           /* CONFIG_FILE, may be NULL */
  int workers;                 /* WORKERS, default 0 = number of cores */
  int shutdown_grace_ms;       /* SHUTDOWN_GRACE_MS, default 10000 */
  size_t max_body_bytes;       /* MAX_BODY_BYTES, default 1 MiB */
  char *tls_cert_file;         /* TLS_CERT_FILE, may be NULL */
  char *tls_key_file;          /* TLS_KEY_FILE, may be NULL */
  int local_model_port;        /* LOCAL_MODEL_PORT, default 50061 */
  int http_header_timeout_ms;  /* HTTP_HEADER_TIMEOUT_MS, default 60000 (408 after) */
  int http_body_timeout_ms;    /* HTTP_BODY_TIMEOUT_MS, default 60000 (408 after) */
  int max_conns_per_ip;        /* MAX_CONNS_PER_IP, per worker, default 256, 0 = no cap */
  int busy_poll_us;            /* BUSY_POLL_US, default 0: workers poll this long before sleeping */
  int grpc_server_core;        /* GRPC_SERVER=core (1): gRPC core serves GRPC_PORT; native (0) */
  char *cors_origins;          /* CORS_ORIGINS: comma-separated, "*" any; NULL = CORS off */
  int local_model_workers_min; /* LOCAL_MODEL_WORKERS_MIN, default 1: pool.min of command backends
                                */
  int local_model_workers_max; /* LOCAL_MODEL_WORKERS_MAX, default 1: pool.max of command backends
                                */

  /* From the config file, or the embedded default when there is none. */
  gw_backend_conf *backends;
  size_t n_backends;
  gw_model_conf *models;
  size_t n_models;
  gw_routing_conf routing;
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
