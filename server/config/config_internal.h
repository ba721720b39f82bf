/* Internal to server/config/: the pieces gw_config_load() is built from
 * (.env parsing, the config-file reader and validator, error helpers).
 * Nothing outside server/config/ and its tests/fuzzer includes this. */
#ifndef GW_CONFIG_CONFIG_INTERNAL_H
#define GW_CONFIG_CONFIG_INTERNAL_H

#include <stddef.h>

#include "config/config.h"
#include "core/buf.h"

/* Largest .env or config file we read: a config is small; anything bigger is a
 * mistake (a log file named by CONFIG_FILE), not something to slurp. */
#define GW_CONFIG_MAX_FILE_BYTES (4u * 1024 * 1024)

/* --- .env (dotenv.c) ------------------------------------------------------ */

typedef struct gw_dotenv {
  char **keys;
  char **values;
  size_t n, alloc;
} gw_dotenv;

/* Parses |len| bytes of .env text into |out| (which must be zeroed). |name|
 * names the file in error lines ("<name>:<line>: <what>"). A later
 * assignment of the same key replaces the earlier one. Returns GW_OK,
 * GW_ERR_INVALID (|err| says why; values are never echoed) or GW_ERR_NOMEM.
 * On error |out| is released. */
int gw_dotenv_parse(gw_dotenv *out, const char *data, size_t len, const char *name, gw_buf *err);

/* Reads and parses the file at |path|; a missing file is an empty .env. */
int gw_dotenv_load(gw_dotenv *out, const char *path, gw_buf *err);

/* The value of |key|, NULL when the file does not set it. */
const char *gw_dotenv_get(const gw_dotenv *d, const char *key);

void gw_dotenv_release(gw_dotenv *d);

/* --- config file (config_file.c) ------------------------------------------ */

/* Parses a config file's contents (|len| bytes at |data|, JSON or YAML: the
 * extension of |name| decides, else the first non-blank byte: '{' is JSON),
 * validates it and stores the backends and models into |c| (whose
 * backends/models must be empty). |name| starts every error line. Secrets
 * named by api_key_env are looked up through |getenv_fn|. Returns GW_OK,
 * GW_ERR_INVALID or GW_ERR_NOMEM; on error |c| holds no backends or models. */
int gw_config_file_parse(gw_config *c, const char *name, const char *data, size_t len,
                         gw_getenv_fn getenv_fn, void *getenv_arg, gw_buf *err);

/* --- helpers (config.c) ---------------------------------------------------- */

/* Reads the whole file at |path| into a NUL-terminated gw_malloc'd buffer
 * (the caller frees |*data|). GW_ERR_NOTFOUND when it does not exist (no
 * message), GW_ERR_INVALID with "<path>: cannot read: <strerror>" or
 * "<path>: file too large" in |err|, GW_ERR_NOMEM. */
int gw_config_read_file(const char *path, char **data, size_t *len, gw_buf *err);

/* Appends |s| to |b| in double quotes, control bytes escaped and cut after a
 * few dozen characters, so a user's value always prints on one short line. */
int gw_config_append_quoted(gw_buf *b, const char *s);

/* Whether |s| is "http://host..." or "https://host..." with no blank or
 * control character anywhere. */
int gw_config_is_http_url(const char *s);

/* Sets the `routing` defaults (docs/config.md). */
void gw_config_routing_defaults(gw_routing_conf *r);

/* Frees the backends and models of |c| and clears their counts. */
void gw_config_release_routes(gw_config *c);

/* Fills |b->pool| with the defaults for a backend whose command is already
 * set: min/max from LOCAL_MODEL_WORKERS_MIN/MAX, max_concurrency from the
 * command's --max-concurrency (else 8), the rest from config.h's defaults.
 * Call gw_config_pool_finish() after the config file's keys. */
void gw_config_pool_defaults(const gw_config *c, gw_backend_conf *b);

/* Derives what was left unset (scale_up_inflight) and checks the pool:
 * min <= max, the member ports fit, a pool of more than one process has a
 * --port in its command. Returns NULL or a static description of the fault
 * (the caller adds the file and key). */
const char *gw_config_pool_finish(gw_backend_conf *b);

#endif
