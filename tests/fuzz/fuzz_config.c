/* libFuzzer target for server/config/: the input is fed as a YAML config file,
 * as a JSON config file and as a .env file. A config that loads must be
 * consistent (every deployment names a backend, every model finds itself);
 * one that does not must say why in exactly one line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_internal.h"
#include "core/status.h"

static const char *fuzz_getenv(void *arg, const char *name) {
  (void)arg;
  if (strcmp(name, "OPENAI_API_KEY") == 0 || strcmp(name, "K") == 0)
    return "sk-fuzz";
  return NULL;
}

static void check_error(int rc, const gw_buf *err) {
  if (rc == GW_ERR_NOMEM)
    return;
  if (rc != GW_ERR_INVALID || !err->data || !err->len || memchr(err->data, '\n', err->len))
    abort();
}

static void check_config(const gw_config *c) {
  for (size_t i = 0; i < c->n_models; i++) {
    const gw_model_conf *m = &c->models[i];
    if (m->n_deployments == 0)
      abort();
    for (size_t j = 0; j < m->n_deployments; j++) {
      if (!gw_config_backend(c, m->deployments[j].backend) || m->deployments[j].weight < 1)
        abort();
    }
    /* A non-wildcard name is its own exact match. */
    if (!strchr(m->name, '*') && gw_config_model(c, m->name) != m)
      abort();
  }
}

static void run_config(const char *name, const uint8_t *data, size_t size) {
  gw_config c;
  gw_buf err;
  gw_buf_init(&err, 4096);
  int rc = gw_config_load_buffer(&c, name, (const char *)data, size, fuzz_getenv, NULL, &err);
  if (rc == GW_OK) {
    check_config(&c);
    gw_config_release(&c);
  } else {
    check_error(rc, &err);
  }
  gw_buf_release(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  run_config("fuzz.yaml", data, size);
  run_config("fuzz.json", data, size);

  gw_dotenv d;
  memset(&d, 0, sizeof d);
  gw_buf err;
  gw_buf_init(&err, 4096);
  int rc = gw_dotenv_parse(&d, (const char *)data, size, ".env", &err);
  if (rc == GW_OK)
    gw_dotenv_release(&d);
  else
    check_error(rc, &err);
  gw_buf_release(&err);
  return 0;
}
