/* Tests for server/config/: environment variables, .env files, JSON and YAML
 * config files (every error line exactly), model matching, fail-malloc. */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "config/config_internal.h"
#include "core/alloc.h"
#include "core/status.h"

/* --- a hermetic environment ------------------------------------------------ */

#define MAX_VARS 16

typedef struct fake_env {
  const char *kv[2 * MAX_VARS + 1]; /* name, value, ..., NULL */
} fake_env;

static const char *fake_getenv(void *arg, const char *name) {
  const fake_env *e = arg;
  for (size_t i = 0; e && e->kv[i]; i += 2)
    if (strcmp(e->kv[i], name) == 0)
      return e->kv[i + 1];
  return NULL;
}

/* A .env path that never exists, so the working directory's .env (if any)
 * never leaks into a test. */
#define NO_DOTENV "/nonexistent/config-test/.env"

static int load(gw_config *c, const fake_env *env, const char *dotenv, gw_buf *err) {
  return gw_config_load(c, fake_getenv, (void *)env, dotenv ? dotenv : NO_DOTENV, err);
}

static char tmpdir[64];

static const char *write_tmp(const char *name, const char *text) {
  static char path[256];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fwrite(text, 1, strlen(text), f);
  fclose(f);
  return path;
}

static int setup(void **state) {
  (void)state;
  strcpy(tmpdir, "/tmp/gw-config-test-XXXXXX");
  assert_non_null(mkdtemp(tmpdir));
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

/* --- defaults and the environment ----------------------------------------- */

static void test_defaults(void **state) {
  (void)state;
  gw_config c;
  gw_buf err;
  gw_buf_init(&err, 1024);
  fake_env env = {{NULL}};
  assert_int_equal(load(&c, &env, NULL, &err), GW_OK);
  assert_string_equal(c.host, "0.0.0.0");
  assert_int_equal(c.port, 8080);
  assert_int_equal(c.grpc_port, 50051);
  assert_null(c.target_api_url);
  assert_null(c.target_api_key);
  assert_null(c.jwt_secret);
  assert_int_equal(c.log_level, GW_LOG_INFO);
  assert_int_equal(c.log_format, GW_LOG_TEXT);
  assert_null(c.config_file);
  assert_int_equal(c.workers, 0);
  assert_int_equal(c.shutdown_grace_ms, 10000);
  assert_int_equal(c.max_body_bytes, 1024 * 1024);
  assert_null(c.tls_cert_file);
  assert_null(c.tls_key_file);
  assert_int_equal(c.local_model_port, 50061);

  /* The embedded default: the local model server. */
  assert_int_equal(c.n_backends, 1);
  const gw_backend_conf *b = gw_config_backend(&c, "local");
  assert_non_null(b);
  assert_string_equal(b->provider, "grpc");
  assert_string_equal(b->target, "127.0.0.1:50061");
  assert_null(b->api_key);
  assert_int_equal(b->n_command, 7);
  static const char *const argv[] = {
      "/usr/bin/python3", "-m", "aigw_model_server", "--backend", "tiny-lm", "--port", "50061"};
  for (size_t i = 0; i < 7; i++)
    assert_string_equal(b->command[i], argv[i]);
  assert_int_equal(c.n_models, 1);
  const gw_model_conf *m = gw_config_model(&c, "tiny-lm");
  assert_non_null(m);
  assert_int_equal(m->n_deployments, 1);
  assert_string_equal(m->deployments[0].backend, "local");
  assert_string_equal(m->deployments[0].upstream_model, "tiny-lm");
  assert_int_equal(m->deployments[0].weight, 1);
  assert_int_equal(m->deployments[0].priority, 0);
  assert_null(gw_config_model(&c, "echo"));
  assert_null(gw_config_model(&c, "gpt-4o"));
  gw_config_release(&c);
  gw_buf_release(&err);
}

static void test_local_model_port_in_default(void **state) {
  (void)state;
  gw_config c;
  fake_env env = {{"LOCAL_MODEL_PORT", "6000", NULL}};
  assert_int_equal(load(&c, &env, NULL, NULL), GW_OK);
  assert_string_equal(c.backends[0].target, "127.0.0.1:6000");
  assert_string_equal(c.backends[0].command[6], "6000");
  gw_config_release(&c);
}

enum field { F_STR, F_INT, F_SIZE };

static const struct env_good {
  const char *name, *value;
  enum field kind;
  size_t off;
  long long n; /* F_INT, F_SIZE; F_STR compares with |value| */
} env_good[] = {
    {"HOST", "127.0.0.1", F_STR, offsetof(gw_config, host), 0},
    {"PORT", "1", F_INT, offsetof(gw_config, port), 1},
    {"PORT", "65535", F_INT, offsetof(gw_config, port), 65535},
    {"GRPC_PORT", "50052", F_INT, offsetof(gw_config, grpc_port), 50052},
    {"TARGET_API_URL", "https://api.openai.com/v1", F_STR, offsetof(gw_config, target_api_url), 0},
    {"TARGET_API_URL", "http://localhost:11434/v1", F_STR, offsetof(gw_config, target_api_url), 0},
    {"TARGET_API_KEY", "sk-test", F_STR, offsetof(gw_config, target_api_key), 0},
    {"JWT_SECRET", "s3cret", F_STR, offsetof(gw_config, jwt_secret), 0},
    {"LOG_LEVEL", "debug", F_INT, offsetof(gw_config, log_level), GW_LOG_DEBUG},
    {"LOG_LEVEL", "info", F_INT, offsetof(gw_config, log_level), GW_LOG_INFO},
    {"LOG_LEVEL", "warn", F_INT, offsetof(gw_config, log_level), GW_LOG_WARN},
    {"LOG_LEVEL", "ERROR", F_INT, offsetof(gw_config, log_level), GW_LOG_ERROR},
    {"LOG_FORMAT", "json", F_INT, offsetof(gw_config, log_format), GW_LOG_JSON},
    {"LOG_FORMAT", "text", F_INT, offsetof(gw_config, log_format), GW_LOG_TEXT},
    {"WORKERS", "4", F_INT, offsetof(gw_config, workers), 4},
    {"WORKERS", "0", F_INT, offsetof(gw_config, workers), 0},
    {"BUSY_POLL_US", "0", F_INT, offsetof(gw_config, busy_poll_us), 0},
    {"BUSY_POLL_US", "1000", F_INT, offsetof(gw_config, busy_poll_us), 1000},
    {"GRPC_SERVER", "core", F_INT, offsetof(gw_config, grpc_server_core), 1},
    {"GRPC_SERVER", "native", F_INT, offsetof(gw_config, grpc_server_core), 0},
    {"SHUTDOWN_GRACE_MS", "0", F_INT, offsetof(gw_config, shutdown_grace_ms), 0},
    {"SHUTDOWN_GRACE_MS", "30000", F_INT, offsetof(gw_config, shutdown_grace_ms), 30000},
    {"MAX_BODY_BYTES", "1", F_SIZE, offsetof(gw_config, max_body_bytes), 1},
    {"MAX_BODY_BYTES", "20971520", F_SIZE, offsetof(gw_config, max_body_bytes), 20971520},
    {"LOCAL_MODEL_PORT", "50062", F_INT, offsetof(gw_config, local_model_port), 50062},
    /* Empty means unset: the default stays. */
    {"PORT", "", F_INT, offsetof(gw_config, port), 8080},
};

static void test_pool_defaults_and_keys(void **state) {
  (void)state;
  gw_config c;
  gw_buf err;
  gw_buf_init(&err, 4096);
  /* The embedded default: one process unless the environment asks. */
  fake_env env0 = {{NULL}};
  assert_int_equal(load(&c, &env0, NULL, NULL), GW_OK);
  assert_int_equal(c.backends[0].pool.min, 1);
  assert_int_equal(c.backends[0].pool.max, 1);
  assert_int_equal(c.backends[0].pool.max_concurrency, 8);
  assert_int_equal(c.backends[0].pool.scale_up_inflight, 8);
  gw_config_release(&c);
  fake_env env = {{"LOCAL_MODEL_WORKERS_MIN", "2", "LOCAL_MODEL_WORKERS_MAX", "4", NULL}};
  assert_int_equal(load(&c, &env, NULL, NULL), GW_OK);
  assert_int_equal(c.backends[0].pool.min, 2);
  assert_int_equal(c.backends[0].pool.max, 4);
  gw_config_release(&c);
  fake_env bad = {{"LOCAL_MODEL_WORKERS_MIN", "3", "LOCAL_MODEL_WORKERS_MAX", "2", NULL}};
  assert_int_equal(load(&c, &bad, NULL, &err), GW_ERR_INVALID);
  assert_string_equal(
      err.data, "environment: LOCAL_MODEL_WORKERS_MIN (3) is above LOCAL_MODEL_WORKERS_MAX (2)");
  /* Config-file keys win; --max-concurrency sets the slots per process. */
  static const char yaml[] = "backends: [{name: l, provider: grpc, target: '127.0.0.1:7000',\n"
                             "  command: [py, --port, '7000', --max-concurrency, '3'],\n"
                             "  pool: {max: 3, up_after_ms: 100, down_cooldown_ms: 0}}]\n"
                             "models: [{name: m, backend: l}]\n";
  assert_int_equal(
      gw_config_load_buffer(&c, "g.yaml", yaml, sizeof yaml - 1, fake_getenv, &env0, &err), GW_OK);
  const gw_pool_conf *p = &c.backends[0].pool;
  assert_int_equal(p->min, 1);
  assert_int_equal(p->max, 3);
  assert_int_equal(p->max_concurrency, 3);
  assert_int_equal(p->scale_up_inflight, 3);
  assert_int_equal(p->scale_down_inflight, 1);
  assert_int_equal(p->up_after_ms, 100);
  assert_int_equal(p->down_cooldown_ms, 0);
  assert_int_equal(p->down_after_ms, 30000);
  assert_int_equal(p->queue_timeout_ms, 10000);
  gw_config_release(&c);
  gw_buf_release(&err);
}

static void test_env_good(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof env_good / sizeof env_good[0]; i++) {
    const struct env_good *t = &env_good[i];
    gw_config c;
    gw_buf err;
    gw_buf_init(&err, 1024);
    fake_env env = {{t->name, t->value, NULL}};
    int rc = load(&c, &env, NULL, &err);
    if (rc != GW_OK)
      fail_msg("%s=%s: %s", t->name, t->value, err.data);
    const char *f = (const char *)&c + t->off;
    switch (t->kind) {
    case F_STR: assert_string_equal(*(char *const *)f, t->value); break;
    case F_INT: assert_int_equal(*(const int *)f, t->n); break;
    case F_SIZE: assert_int_equal(*(const size_t *)f, t->n); break;
    }
    gw_config_release(&c);
    gw_buf_release(&err);
  }
}

static const struct env_bad {
  const char *name, *value, *err;
} env_bad[] = {
    {"PORT", "80x", "environment: PORT: \"80x\" is not a port number (1-65535)"},
    {"PORT", "0", "environment: PORT: \"0\" is not a port number (1-65535)"},
    {"PORT", "65536", "environment: PORT: \"65536\" is not a port number (1-65535)"},
    {"PORT", "-1", "environment: PORT: \"-1\" is not a port number (1-65535)"},
    {"PORT", " 80", "environment: PORT: \" 80\" is not a port number (1-65535)"},
    {"PORT", "+80", "environment: PORT: \"+80\" is not a port number (1-65535)"},
    {"PORT", "99999999999999999999999",
     "environment: PORT: \"99999999999999999999999\" is not a port number (1-65535)"},
    {"GRPC_PORT", "abc", "environment: GRPC_PORT: \"abc\" is not a port number (1-65535)"},
    {"LOCAL_MODEL_PORT", "7e3",
     "environment: LOCAL_MODEL_PORT: \"7e3\" is not a port number (1-65535)"},
    {"TARGET_API_URL", "api.openai.com",
     "environment: TARGET_API_URL: \"api.openai.com\" is not an http(s) URL"},
    {"TARGET_API_URL", "https://",
     "environment: TARGET_API_URL: \"https://\" is not an http(s) URL"},
    {"LOG_LEVEL", "loud",
     "environment: LOG_LEVEL: \"loud\" must be one of debug, info, warn, error, off"},
    {"LOG_FORMAT", "xml", "environment: LOG_FORMAT: \"xml\" must be one of text, json"},
    {"WORKERS", "1025", "environment: WORKERS: \"1025\" is not an integer in 0-1024"},
    {"WORKERS", "four", "environment: WORKERS: \"four\" is not an integer in 0-1024"},
    {"BUSY_POLL_US", "-1", "environment: BUSY_POLL_US: \"-1\" is not an integer in 0-1000000"},
    {"GRPC_SERVER", "grpc", "environment: GRPC_SERVER: \"grpc\" must be one of native, core"},
    {"BUSY_POLL_US", "1000001",
     "environment: BUSY_POLL_US: \"1000001\" is not an integer in 0-1000000"},
    {"SHUTDOWN_GRACE_MS", "10s",
     "environment: SHUTDOWN_GRACE_MS: \"10s\" is not an integer in 0-3600000"},
    {"MAX_BODY_BYTES", "0", "environment: MAX_BODY_BYTES: \"0\" is not an integer in 1-1073741824"},
    {"MAX_BODY_BYTES", "18446744073709551616",
     "environment: MAX_BODY_BYTES: \"18446744073709551616\" is not an integer in 1-1073741824"},
    {"TLS_CERT_FILE", "/etc/cert.pem", "environment: TLS_CERT_FILE is set but TLS_KEY_FILE is not"},
    {"TLS_KEY_FILE", "/etc/key.pem", "environment: TLS_KEY_FILE is set but TLS_CERT_FILE is not"},
    {"GRPC_PORT", "8080", "environment: PORT and GRPC_PORT are both 8080"},
    {"PORT", "1\n2", "environment: PORT: \"1\\x0a2\" is not a port number (1-65535)"},
    {"CONFIG_FILE", "/nonexistent/gateway.yaml",
     "/nonexistent/gateway.yaml: cannot read: No such file or directory"},
};

static void test_env_bad(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof env_bad / sizeof env_bad[0]; i++) {
    const struct env_bad *t = &env_bad[i];
    gw_config c;
    gw_buf err;
    gw_buf_init(&err, 1024);
    fake_env env = {{t->name, t->value, NULL}};
    assert_int_equal(load(&c, &env, NULL, &err), GW_ERR_INVALID);
    assert_non_null(err.data);
    assert_string_equal(err.data, t->err);
    assert_null(c.host); /* nothing to release */
    gw_buf_release(&err);
  }
}

static void test_tls_pair(void **state) {
  (void)state;
  gw_config c;
  fake_env env = {{"TLS_CERT_FILE", "/c.pem", "TLS_KEY_FILE", "/k.pem", NULL}};
  assert_int_equal(load(&c, &env, NULL, NULL), GW_OK);
  assert_string_equal(c.tls_cert_file, "/c.pem");
  assert_string_equal(c.tls_key_file, "/k.pem");
  gw_config_release(&c);
}

static void test_target_api_url(void **state) {
  (void)state;
  gw_config c;
  fake_env env = {{"TARGET_API_URL", "https://api.openai.com/v1", "TARGET_API_KEY", "sk-x", NULL}};
  assert_int_equal(load(&c, &env, NULL, NULL), GW_OK);
  assert_int_equal(c.n_backends, 1);
  assert_string_equal(c.backends[0].name, "upstream");
  assert_string_equal(c.backends[0].provider, "openai");
  assert_string_equal(c.backends[0].target, "https://api.openai.com/v1");
  assert_string_equal(c.backends[0].api_key, "sk-x");
  assert_null(c.backends[0].command);
  assert_int_equal(c.n_models, 1);
  const gw_model_conf *m = gw_config_model(&c, "anything/at-all");
  assert_non_null(m);
  assert_string_equal(m->name, "*");
  assert_string_equal(m->deployments[0].backend, "upstream");
  assert_null(m->deployments[0].upstream_model); /* the client's name goes through */
  gw_config_release(&c);
}

/* --- .env ---------------------------------------------------------------------- */

static const struct dotenv_good {
  const char *text, *key, *value; /* value NULL: |key| is not set */
} dotenv_good[] = {
    {"A=1", "A", "1"},
    {"A=1\n", "A", "1"},
    {"A=1\r\n", "A", "1"},
    {"  A  =  spaced value  \n", "A", "spaced value"},
    {"export A=1\n", "A", "1"},
    {"export\tA=1\n", "A", "1"},
    {"export=1\n", "export", "1"},
    {"# comment\n\n   \nA=1\n# A=2\n", "A", "1"},
    {"A=1 # comment\n", "A", "1"},
    {"A=a#b\n", "A", "a#b"},
    {"A=\n", "A", ""},
    {"A=1\nA=2\n", "A", "2"},
    {"A=\"quoted # not a comment\"\n", "A", "quoted # not a comment"},
    {"A=\"a\\nb\\tc\\\"d\\\\e\\$f\"\n", "A", "a\nb\tc\"d\\e\\$f"},
    {"A='single \\n $HOME'\n", "A", "single \\n $HOME"},
    {"A=$HOME\n", "A", "$HOME"},
    {"A=\"multi\nline\"\nB=2\n", "A", "multi\nline"},
    {"A=\"multi\nline\"\nB=2\n", "B", "2"},
    {"A=\"x\"   # comment\n", "A", "x"},
    {"_a1=ok", "_a1", "ok"},
    {"", "A", NULL},
};

static void test_dotenv_good(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof dotenv_good / sizeof dotenv_good[0]; i++) {
    const struct dotenv_good *t = &dotenv_good[i];
    gw_dotenv d;
    memset(&d, 0, sizeof d);
    gw_buf err;
    gw_buf_init(&err, 1024);
    int rc = gw_dotenv_parse(&d, t->text, strlen(t->text), ".env", &err);
    if (rc != GW_OK)
      fail_msg("case %zu: %s", i, err.data);
    const char *v = gw_dotenv_get(&d, t->key);
    if (t->value) {
      assert_non_null(v);
      assert_string_equal(v, t->value);
    } else {
      assert_null(v);
    }
    gw_dotenv_release(&d);
    gw_buf_release(&err);
  }
}

static const struct dotenv_bad {
  const char *text, *err;
} dotenv_bad[] = {
    {"A=1\nnot a line\n", ".env:2: expected KEY=VALUE"},
    {"\n\n\n\n\n\nexport\n", ".env:7: expected KEY=VALUE"},
    {"1A=1\n", ".env:1: expected KEY=VALUE"},
    {"A-B=1\n", ".env:1: expected KEY=VALUE"},
    {"=1\n", ".env:1: expected KEY=VALUE"},
    {"A=\"unterminated\nB=2\n", ".env:1: unterminated quoted value"},
    {"A='it''s'\n", ".env:1: unexpected text after quoted value"},
    {"A=\"x\" y\n", ".env:1: unexpected text after quoted value"},
    {"A=1\nB=\"two\nlines\" z\n", ".env:3: unexpected text after quoted value"},
};

static void test_dotenv_bad(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof dotenv_bad / sizeof dotenv_bad[0]; i++) {
    const struct dotenv_bad *t = &dotenv_bad[i];
    gw_dotenv d;
    memset(&d, 0, sizeof d);
    gw_buf err;
    gw_buf_init(&err, 1024);
    assert_int_equal(gw_dotenv_parse(&d, t->text, strlen(t->text), ".env", &err), GW_ERR_INVALID);
    assert_string_equal(err.data, t->err);
    assert_int_equal(d.n, 0);
    gw_buf_release(&err);
  }
  /* A NUL byte names its line. */
  gw_dotenv d;
  memset(&d, 0, sizeof d);
  gw_buf err;
  gw_buf_init(&err, 1024);
  assert_int_equal(gw_dotenv_parse(&d, "A=1\nB=\0\n", 8, ".env", &err), GW_ERR_INVALID);
  assert_string_equal(err.data, ".env:2: NUL byte in file");
  gw_buf_release(&err);
}

static void test_dotenv_file_and_precedence(void **state) {
  (void)state;
  gw_config c;
  gw_buf err;
  gw_buf_init(&err, 1024);
  const char *dotenv = gw_test_source_path("tests/unit/config/data/sample.env");
  /* The real environment wins over .env. */
  fake_env env = {{"PORT", "7070", NULL}};
  assert_int_equal(load(&c, &env, dotenv, &err), GW_OK);
  assert_int_equal(c.port, 7070);
  assert_int_equal(c.grpc_port, 50052);
  assert_string_equal(c.host, "127.0.0.1");
  assert_string_equal(c.jwt_secret, "line1\nline2");
  assert_int_equal(c.log_level, GW_LOG_DEBUG);
  gw_config_release(&c);

  /* An error in a value from .env names the .env file. */
  char path[300];
  snprintf(path, sizeof path, "%s", write_tmp("bad.env", "PORT=80x\n"));
  assert_int_equal(load(&c, NULL, path, &err), GW_ERR_INVALID);
  char want[400];
  snprintf(want, sizeof want, "%s: PORT: \"80x\" is not a port number (1-65535)", path);
  assert_string_equal(err.data, want);
  /* ...unless the real environment overrides it. */
  fake_env env2 = {{"PORT", "81", NULL}};
  assert_int_equal(load(&c, &env2, path, &err), GW_OK);
  assert_int_equal(c.port, 81);
  gw_config_release(&c);

  /* Syntax errors name the file and line. */
  snprintf(path, sizeof path, "%s", write_tmp("syntax.env", "A=1\n\nB\n"));
  assert_int_equal(load(&c, NULL, path, &err), GW_ERR_INVALID);
  snprintf(want, sizeof want, "%s:3: expected KEY=VALUE", path);
  assert_string_equal(err.data, want);

  /* A .env that is a directory cannot be read. */
  assert_int_equal(load(&c, NULL, tmpdir, &err), GW_ERR_INVALID);
  snprintf(want, sizeof want, "%s: cannot read: Is a directory", tmpdir);
  assert_string_equal(err.data, want);
  gw_buf_release(&err);
}

/* --- config files ---------------------------------------------------------------- */

static void check_example(const gw_config *c) {
  assert_int_equal(c->n_backends, 2);
  const gw_backend_conf *local = gw_config_backend(c, "local");
  assert_non_null(local);
  assert_string_equal(local->provider, "grpc");
  assert_string_equal(local->target, "127.0.0.1:50061");
  assert_int_equal(local->timeout_ms, 30000);
  assert_int_equal(local->n_command, 5);
  assert_string_equal(local->command[2], "aigw_model_server");
  assert_null(local->api_key);
  const gw_backend_conf *openai = gw_config_backend(c, "openai");
  assert_non_null(openai);
  assert_string_equal(openai->provider, "openai");
  assert_string_equal(openai->target, "https://api.openai.com/v1");
  assert_string_equal(openai->api_key, "sk-from-env");
  assert_int_equal(openai->timeout_ms, 0);
  assert_null(openai->command);
  assert_null(gw_config_backend(c, "nope"));

  assert_int_equal(c->n_models, 4);
  const gw_model_conf *m = gw_config_model(c, "tiny-lm");
  assert_non_null(m);
  assert_string_equal(m->deployments[0].upstream_model, "tiny-lm");
  m = gw_config_model(c, "echo");
  assert_string_equal(m->deployments[0].upstream_model, "echo-v1");
  m = gw_config_model(c, "gpt-4o");
  assert_int_equal(m->n_deployments, 2);
  assert_string_equal(m->deployments[0].backend, "openai");
  assert_int_equal(m->deployments[0].weight, 2);
  assert_int_equal(m->deployments[0].priority, 0);
  assert_string_equal(m->deployments[1].backend, "local");
  assert_string_equal(m->deployments[1].upstream_model, "tiny-lm");
  assert_int_equal(m->deployments[1].weight, 1);
  assert_int_equal(m->deployments[1].priority, 1);
  m = gw_config_model(c, "openai/gpt-4.1");
  assert_non_null(m);
  assert_string_equal(m->name, "openai/*");
  assert_null(m->deployments[0].upstream_model);
  assert_null(gw_config_model(c, "other"));
}

static void test_config_files(void **state) {
  (void)state;
  static const char *const files[] = {"tests/unit/config/data/gateway.yaml",
                                      "tests/unit/config/data/gateway.json"};
  for (size_t i = 0; i < 2; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s", gw_test_source_path(files[i]));
    gw_config c;
    gw_buf err;
    gw_buf_init(&err, 1024);
    fake_env env = {{"CONFIG_FILE", path, "OPENAI_API_KEY", "sk-from-env",
                     /* TARGET_API_URL does not matter once there is a file */
                     "TARGET_API_URL", "https://example.com", NULL}};
    int rc = load(&c, &env, NULL, &err);
    if (rc != GW_OK)
      fail_msg("%s: %s", files[i], err.data);
    assert_string_equal(c.config_file, path);
    check_example(&c);
    gw_config_release(&c);
    gw_buf_release(&err);
  }
}

static void test_config_file_key_from_dotenv(void **state) {
  (void)state;
  char path[1024];
  snprintf(path, sizeof path, "%s", gw_test_source_path("tests/unit/config/data/gateway.yaml"));
  char dotenv[1024];
  snprintf(dotenv, sizeof dotenv, "%s", gw_test_source_path("tests/unit/config/data/sample.env"));
  gw_config c;
  fake_env env = {{"CONFIG_FILE", path, NULL}};
  assert_int_equal(load(&c, &env, dotenv, NULL), GW_OK);
  assert_string_equal(gw_config_backend(&c, "openai")->api_key, "sk-from-dotenv");
  gw_config_release(&c);
}

static void test_config_file_syntax_from_file(void **state) {
  (void)state;
  char path[1024];
  snprintf(path, sizeof path, "%s", gw_test_source_path("tests/unit/config/data/bad_syntax.yaml"));
  gw_config c;
  gw_buf err;
  gw_buf_init(&err, 1024);
  fake_env env = {{"CONFIG_FILE", path, NULL}};
  assert_int_equal(load(&c, &env, NULL, &err), GW_ERR_INVALID);
  char want[1200];
  snprintf(want, sizeof want,
           "%s:4:4: YAML syntax error: did not find expected '-' indicator (while parsing a "
           "block collection)",
           path);
  assert_string_equal(err.data, want);
  gw_buf_release(&err);
}

#define B_LOCAL "{name: local, provider: grpc, target: \"127.0.0.1:50061\"}"
#define J_LOCAL "{\"name\": \"local\", \"provider\": \"grpc\", \"target\": \"127.0.0.1:50061\"}"

static const struct file_case {
  const char *name, *text, *err; /* err NULL: loads */
} file_cases[] = {
    /* valid corners */
    {"gateway.yaml", "backends: [" B_LOCAL "]\nmodels: [{name: a, backend: local}]\n", NULL},
    {"gateway.yml", "backends: [" B_LOCAL "]\nmodels: [{name: '*', backend: local}]\n", NULL},
    {"gateway.conf",
     "{\"backends\": [" J_LOCAL "], \"models\": [{\"name\": \"a\", \"backend\": \"local\"}]}",
     NULL},
    {"gateway.conf", "backends: [" B_LOCAL "]\nmodels: [{name: a, backend: local}]\n", NULL},
    {"gateway.yaml",
     "backends: [{name: v6, provider: grpc, target: \"[::1]:50061\"}]\nmodels: [{name: a, backend: "
     "v6}]\n",
     NULL},
    {"gateway.yaml", "---\nbackends: [" B_LOCAL "]\nmodels: [{name: a, backend: local}]\n...\n",
     NULL},

    /* syntax */
    {"gateway.yaml", "backends: [\n",
     "gateway.yaml:2:1: YAML syntax error: did not find expected node content (while parsing a "
     "flow node)"},
    {"gateway.yaml", "a: b\n- c\n",
     "gateway.yaml:2:1: YAML syntax error: did not find expected key (while parsing a block "
     "mapping)"},
    {"gateway.yaml", "a: b\n---\nc: d\n", "gateway.yaml:2:1: only one YAML document is allowed"},
    {"gateway.yaml", "a: &x b\nc: *x\n", "gateway.yaml:2:4: YAML aliases are not supported"},
    {"gateway.yaml", "backends: []\nbackends: []\n",
     "gateway.yaml:2:1: duplicate key \"backends\""},
    {"gateway.yaml", "? [a]\n: b\n", "gateway.yaml:1:3: keys must be plain strings"},
    {"gateway.yaml", "a: 99999999999999999999\n", "gateway.yaml:1:4: integer out of range"},
    {"gateway.yaml", "a: \"\\0\"\n", "gateway.yaml:1:4: NUL character in a value"},
    {"gateway.json", "{\"backends\": [}", "gateway.json:1:15: JSON syntax error: unexpected token"},
    {"gateway.json", "{\"models\": [], \"models\": []}",
     "gateway.json:1:23: JSON syntax error: duplicate object key"},
    {"gateway.json", "", "gateway.json:1: JSON syntax error: '[' or '{' expected"},

    /* shape */
    {"gateway.yaml", "", "gateway.yaml: is empty"},
    {"gateway.yaml", "[]\n", "gateway.yaml: must be an object"},
    {"gateway.yaml", "backend: []\n", "gateway.yaml: backend: unknown key"},
    {"gateway.yaml", "\"bad key\\n\": 1\n", "gateway.yaml: unknown key \"bad key\\x0a\""},
    {"gateway.yaml", "models: []\n", "gateway.yaml: backends: is required"},
    {"gateway.yaml", "backends: {}\n", "gateway.yaml: backends: must be a list"},
    {"gateway.yaml", "backends: []\n", "gateway.yaml: backends: must not be empty"},
    {"gateway.yaml", "backends: [" B_LOCAL "]\n", "gateway.yaml: models: is required"},
    {"gateway.yaml", "backends: [" B_LOCAL "]\nmodels: 3\n",
     "gateway.yaml: models: must be a list"},
    {"gateway.yaml", "backends: [" B_LOCAL "]\nmodels: []\n",
     "gateway.yaml: models: must not be empty"},

    /* backends */
    {"gateway.yaml", "backends: [x]\nmodels: [x]\n",
     "gateway.yaml: backends[0]: must be an object"},
    {"gateway.yaml",
     "backends: [{name: a, provider: grpc, target: 'h:1', tiemout_ms: 5}]\nmodels: [x]\n",
     "gateway.yaml: backends[0].tiemout_ms: unknown key"},
    {"gateway.yaml", "backends: [{provider: grpc, target: 'h:1'}]\nmodels: [x]\n",
     "gateway.yaml: backends[0].name: is required"},
    {"gateway.yaml", "backends: [{name: 5, provider: grpc, target: 'h:1'}]\nmodels: [x]\n",
     "gateway.yaml: backends[0].name: must be a string"},
    {"gateway.yaml", "backends: [{name: '', provider: grpc, target: 'h:1'}]\nmodels: [x]\n",
     "gateway.yaml: backends[0].name: must not be empty"},
    {"gateway.yaml", "backends: [" B_LOCAL ", " B_LOCAL "]\nmodels: [x]\n",
     "gateway.yaml: backends[1].name: duplicate backend \"local\""},
    {"gateway.json",
     "{\"backends\": [{\"name\": \"a\", \"provider\": \"http\", \"target\": \"h:1\"}], \"models\": "
     "[1]}",
     "gateway.json: backends[0].provider: must be one of grpc, openai, azure, anthropic, gemini, "
     "vertex, bedrock"},
    {"gateway.yaml", "backends: [{name: a, provider: grpc}]\nmodels: [x]\n",
     "gateway.yaml: backends[0].target: is required"},
    {"gateway.yaml", "backends: [{name: a, provider: grpc, target: localhost}]\nmodels: [x]\n",
     "gateway.yaml: backends[0].target: \"localhost\" is not host:port (port 1-65535)"},
    {"gateway.yaml", "backends: [{name: a, provider: grpc, target: 'h:0'}]\nmodels: [x]\n",
     "gateway.yaml: backends[0].target: \"h:0\" is not host:port (port 1-65535)"},
    {"gateway.yaml", "backends: [{name: a, provider: grpc, target: 'http://h:80'}]\nmodels: [x]\n",
     "gateway.yaml: backends[0].target: \"http://h:80\" is not host:port (port 1-65535)"},
    {"gateway.yaml", "backends: [{name: a, provider: openai, target: 'h:80'}]\nmodels: [x]\n",
     "gateway.yaml: backends[0].target: \"h:80\" is not an http(s) URL"},
    {"gateway.yaml",
     "backends: [{name: a, provider: openai, target: 'https://h', api_key: k, api_key_env: "
     "K}]\nmodels: [x]\n",
     "gateway.yaml: backends[0]: api_key and api_key_env are mutually exclusive"},
    {"gateway.yaml",
     "backends: [{name: a, provider: openai, target: 'https://h', api_key_env: "
     "UNSET_KEY}]\nmodels: [x]\n",
     "gateway.yaml: backends[0].api_key_env: environment variable UNSET_KEY is not set"},
    {"gateway.yaml",
     "backends: [{name: a, provider: openai, target: 'https://h', api_key_env: 'A B'}]\nmodels: "
     "[x]\n",
     "gateway.yaml: backends[0].api_key_env: \"A B\" is not an environment variable name"},
    {"gateway.yaml",
     "backends: [{name: a, provider: openai, target: 'https://h', api_key: 12}]\nmodels: [x]\n",
     "gateway.yaml: backends[0].api_key: must be a string"},
    {"gateway.yaml",
     "backends: [{name: a, provider: grpc, target: 'h:1', timeout_ms: -1}]\nmodels: [x]\n",
     "gateway.yaml: backends[0].timeout_ms: must be an integer >= 0"},
    {"gateway.yaml",
     "backends: [{name: a, provider: grpc, target: 'h:1', timeout_ms: '5'}]\nmodels: [x]\n",
     "gateway.yaml: backends[0].timeout_ms: must be an integer >= 0"},
    {"gateway.yaml",
     "backends: [{name: a, provider: grpc, target: 'h:1', timeout_ms: 1.5}]\nmodels: [x]\n",
     "gateway.yaml: backends[0].timeout_ms: must be an integer >= 0"},
    {"gateway.yaml",
     "backends: [{name: a, provider: openai, target: 'https://h', embedding_encoding: utf8}]\n"
     "models: [x]\n",
     "gateway.yaml: backends[0].embedding_encoding: \"utf8\" is not base64 or float"},
    {"gateway.yaml",
     "backends: [{name: a, provider: grpc, target: 'h:1', embedding_encoding: float}]\n"
     "models: [x]\n",
     "gateway.yaml: backends[0].embedding_encoding: applies to provider openai only"},
    {"gateway.yaml",
     "backends: [{name: a, provider: grpc, target: 'h:1', command: python}]\nmodels: [x]\n",
     "gateway.yaml: backends[0].command: must be a list of strings"},
    {"gateway.yaml",
     "backends: [{name: a, provider: grpc, target: 'h:1', command: []}]\nmodels: [x]\n",
     "gateway.yaml: backends[0].command: must not be empty"},
    {"gateway.yaml",
     "backends: [{name: a, provider: grpc, target: 'h:1', command: [a, 1]}]\nmodels: [x]\n",
     "gateway.yaml: backends[0].command[1]: must be a string"},
    {"gateway.yaml",
     "backends: [{name: a, provider: grpc, target: 'h:1', pool: {max: 2}}]\nmodels: [x]\n",
     "gateway.yaml: backends[0].pool: only allowed with command"},
    {"gateway.yaml",
     "backends: [{name: a, provider: grpc, target: 'h:1', command: [s, --port, '1'], pool: {min: "
     "3, max: 2}}]\nmodels: [x]\n",
     "gateway.yaml: backends[0].pool: min is above max"},
    {"gateway.yaml",
     "backends: [{name: a, provider: grpc, target: 'h:1', command: [s], pool: {max: 2}}]\nmodels: "
     "[x]\n",
     "gateway.yaml: backends[0].pool: a pool of more than one process needs --port in its command"},
    {"gateway.yaml",
     "backends: [{name: a, provider: grpc, target: 'h:65535', command: [s, --port, '65535'], pool: "
     "{max: 2}}]\nmodels: [x]\n",
     "gateway.yaml: backends[0].pool: the member ports (target port + max - 1) go past 65535"},
    {"gateway.yaml",
     "backends: [{name: a, provider: grpc, target: 'h:1', command: [s], pool: {max: 0}}]\nmodels: "
     "[x]\n",
     "gateway.yaml: backends[0].pool.max: must be an integer in 1-64"},
    {"gateway.yaml",
     "backends: [{name: a, provider: grpc, target: 'h:1', command: [s], pool: {cooldown: "
     "1}}]\nmodels: [x]\n",
     "gateway.yaml: backends[0].pool.cooldown: unknown key"},

    /* models */
    {"gateway.yaml", "backends: [" B_LOCAL "]\nmodels: [x]\n",
     "gateway.yaml: models[0]: must be an object"},
    {"gateway.yaml", "backends: [" B_LOCAL "]\nmodels: [{name: a, backend: local, weight: 2}]\n",
     "gateway.yaml: models[0].weight: unknown key"},
    {"gateway.yaml", "backends: [" B_LOCAL "]\nmodels: [{backend: local}]\n",
     "gateway.yaml: models[0].name: is required"},
    {"gateway.yaml",
     "backends: [" B_LOCAL "]\nmodels: [{name: a, backend: local}, {name: b, backend: foo}]\n",
     "gateway.yaml: models[1].backend: unknown backend \"foo\""},
    {"gateway.yaml",
     "backends: [" B_LOCAL "]\nmodels: [{name: a, backend: local}, {name: a, backend: local}]\n",
     "gateway.yaml: models[1].name: duplicate model \"a\""},
    {"gateway.yaml", "backends: [" B_LOCAL "]\nmodels: [{name: 'gpt-*', backend: local}]\n",
     "gateway.yaml: models[0].name: \"gpt-*\" is not a model name (\"*\" only alone or at the end "
     "of \"prefix/*\")"},
    {"gateway.yaml", "backends: [" B_LOCAL "]\nmodels: [{name: a}]\n",
     "gateway.yaml: models[0]: needs backend or deployments"},
    {"gateway.yaml",
     "backends: [" B_LOCAL "]\nmodels: [{name: a, backend: local, deployments: []}]\n",
     "gateway.yaml: models[0]: backend and deployments are mutually exclusive"},
    {"gateway.yaml",
     "backends: [" B_LOCAL
     "]\nmodels: [{name: a, upstream_model: b, deployments: [{backend: local}]}]\n",
     "gateway.yaml: models[0].upstream_model: only allowed with backend (set it in each "
     "deployment)"},
    {"gateway.yaml",
     "backends: [" B_LOCAL "]\nmodels: [{name: a, deployments: {backend: local}}]\n",
     "gateway.yaml: models[0].deployments: must be a list"},
    {"gateway.yaml", "backends: [" B_LOCAL "]\nmodels: [{name: a, deployments: []}]\n",
     "gateway.yaml: models[0].deployments: must not be empty"},
    {"gateway.yaml",
     "backends: [" B_LOCAL "]\nmodels: [{name: a, deployments: [{backend: local, wieght: 1}]}]\n",
     "gateway.yaml: models[0].deployments[0].wieght: unknown key"},
    {"gateway.yaml",
     "backends: [" B_LOCAL "]\nmodels: [{name: a, deployments: [{upstream_model: x}]}]\n",
     "gateway.yaml: models[0].deployments[0].backend: is required"},
    {"gateway.yaml",
     "backends: [" B_LOCAL
     "]\nmodels: [{name: a, deployments: [{backend: local}, {backend: nope}]}]\n",
     "gateway.yaml: models[0].deployments[1].backend: unknown backend \"nope\""},
    {"gateway.yaml",
     "backends: [" B_LOCAL "]\nmodels: [{name: a, deployments: [{backend: local, weight: 0}]}]\n",
     "gateway.yaml: models[0].deployments[0].weight: must be an integer >= 1"},
    {"gateway.yaml",
     "backends: [" B_LOCAL
     "]\nmodels: [{name: a, deployments: [{backend: local, priority: -1}]}]\n",
     "gateway.yaml: models[0].deployments[0].priority: must be an integer >= 0"},
    {"gateway.yaml",
     "backends: [" B_LOCAL
     "]\nmodels: [{name: a, deployments: [{backend: local, weight: 4294967297}]}]\n",
     "gateway.yaml: models[0].deployments[0].weight: must be an integer >= 1"},
};

static void test_config_file_cases(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof file_cases / sizeof file_cases[0]; i++) {
    const struct file_case *t = &file_cases[i];
    gw_config c;
    gw_buf err;
    gw_buf_init(&err, 1024);
    fake_env env = {{"K", "sk-k", NULL}};
    int rc = gw_config_load_buffer(&c, t->name, t->text, strlen(t->text), fake_getenv, &env, &err);
    if (!t->err) {
      if (rc != GW_OK)
        fail_msg("case %zu: %s", i, err.data);
      gw_config_release(&c);
    } else {
      if (rc != GW_ERR_INVALID)
        fail_msg("case %zu: rc %d, want an error", i, rc);
      if (!err.data || strcmp(err.data, t->err) != 0)
        fail_msg("case %zu:\n got: %s\nwant: %s", i, err.data ? err.data : "(none)", t->err);
      assert_null(c.backends);
      assert_null(c.host);
    }
    gw_buf_release(&err);
  }
}

/* --- vendor providers' keys ---------------------------------------------------- */

static const struct file_case vendor_cases[] = {
    {"gateway.yaml",
     "backends: [{name: a, provider: bedrock, region: eu-west-1, "
     "access_key_id_env: K, secret_access_key_env: K, api_version: x}]\nmodels: [x]\n",
     "gateway.yaml: backends[0].api_version: is not used by provider bedrock"},
    {"gateway.yaml", "backends: [{name: a, provider: anthropic, region: eu}]\nmodels: [x]\n",
     "gateway.yaml: backends[0].region: is not used by provider anthropic"},
    {"gateway.yaml", "backends: [{name: a, provider: azure}]\nmodels: [x]\n",
     "gateway.yaml: backends[0].target: is required"},
    {"gateway.yaml", "backends: [{name: a, provider: vertex, project: p}]\nmodels: [x]\n",
     "gateway.yaml: backends[0]: vertex needs project and credentials_file"},
    {"gateway.yaml",
     "backends: [{name: a, provider: bedrock, region: r, access_key_id_env: K}]\n"
     "models: [x]\n",
     "gateway.yaml: backends[0]: bedrock needs access_key_id_env and secret_access_key_env"},
    {"gateway.yaml",
     "backends: [{name: a, provider: bedrock, region: r, access_key_id_env: K, "
     "secret_access_key_env: NOPE}]\nmodels: [x]\n",
     "gateway.yaml: backends[0].secret_access_key_env: environment variable NOPE is not set"},
};

static void test_vendor_backends(void **state) {
  (void)state;
  const char *text =
      "backends:\n"
      "  - {name: an, provider: anthropic, api_key_env: K}\n"
      "  - {name: az, provider: azure, target: 'https://r.openai.azure.com', api_key_env: K}\n"
      "  - {name: ge, provider: gemini, api_key_env: K, api_version: v}\n"
      "  - {name: vx, provider: vertex, project: p, location: europe-west4, credentials_file: "
      "/sa.json}\n"
      "  - {name: br, provider: bedrock, region: us-east-1, access_key_id_env: AK, "
      "secret_access_key_env: SK, session_token_env: ST}\n"
      "models: [{name: a, backend: an}]\n";
  fake_env env = {{"K", "sk-k", "AK", "AKIDEXAMPLE", "SK", "secret", "ST", "tok", NULL}};
  gw_config c;
  gw_buf err;
  gw_buf_init(&err, 1024);
  /* api_version is azure's and anthropic's only */
  assert_int_equal(gw_config_load_buffer(&c, "g.yaml", text, strlen(text), fake_getenv, &env, &err),
                   GW_ERR_INVALID);
  assert_string_equal(err.data, "g.yaml: backends[2].api_version: is not used by provider gemini");
  gw_buf_reset(&err);
  char *fixed = strdup(text);
  char *v = strstr(fixed, ", api_version: v");
  memmove(v, v + strlen(", api_version: v"), strlen(v + strlen(", api_version: v")) + 1);
  if (gw_config_load_buffer(&c, "g.yaml", fixed, strlen(fixed), fake_getenv, &env, &err) != GW_OK)
    fail_msg("%s", err.data);
  free(fixed);
  assert_string_equal(c.backends[0].target, "https://api.anthropic.com");
  assert_null(c.backends[0].api_version);
  assert_string_equal(c.backends[1].api_version, "2024-10-21");
  assert_string_equal(c.backends[2].target, "https://generativelanguage.googleapis.com/v1beta");
  assert_string_equal(c.backends[3].target, "https://europe-west4-aiplatform.googleapis.com/v1");
  assert_string_equal(c.backends[3].project, "p");
  assert_string_equal(c.backends[3].credentials_file, "/sa.json");
  assert_string_equal(c.backends[4].target, "https://bedrock-runtime.us-east-1.amazonaws.com");
  assert_string_equal(c.backends[4].aws_access_key_id, "AKIDEXAMPLE");
  assert_string_equal(c.backends[4].aws_secret_access_key, "secret");
  assert_string_equal(c.backends[4].aws_session_token, "tok");
  gw_config_release(&c);

  for (size_t i = 0; i < sizeof vendor_cases / sizeof vendor_cases[0]; i++) {
    const struct file_case *t = &vendor_cases[i];
    gw_buf_reset(&err);
    int rc = gw_config_load_buffer(&c, t->name, t->text, strlen(t->text), fake_getenv, &env, &err);
    if (rc != GW_ERR_INVALID)
      fail_msg("vendor case %zu: rc %d, want an error", i, rc);
    if (!err.data || strcmp(err.data, t->err) != 0)
      fail_msg("vendor case %zu:\n got: %s\nwant: %s", i, err.data ? err.data : "(none)", t->err);
  }
  gw_buf_release(&err);
}

/* --- secrets never show ---------------------------------------------------------- */

#define SECRET "sk-TOPSECRET-0123456789"

static const struct secret_case {
  const char *name, *text;
} secret_cases[] = {
    {"gateway.json", "{\"backends\": [{\"api_key\": \"" SECRET "}"},
    {"gateway.json", "{\"backends\": [{\"api_key\": \"" SECRET "\" \"x\"}]}"},
    {"gateway.json",
     "{\"backends\": [{\"name\": \"a\", \"provider\": \"openai\", \"target\": \"https://h\", "
     "\"api_key\": \"" SECRET "\", \"api_key_env\": \"K\"}], \"models\": [1]}"},
    {"gateway.json",
     "{\"backends\": [{\"name\": \"a\", \"provider\": \"openai\", \"target\": \"ftp://u:" SECRET
     "@h\"}], \"models\": [1]}"},
    {"gateway.yaml", "backends:\n  - api_key: \"" SECRET "\n"},
    {"gateway.yaml", "backends:\n  - api_key: " SECRET "\n    - x\n"},
    {"gateway.yaml",
     "backends:\n  - {name: a, provider: openai, target: 'https://h', api_key: [" SECRET
     "]}\nmodels: [x]\n"},
    {"gateway.yaml",
     "backends:\n  - {name: a, provider: openai, target: 'https://h', api_key: " SECRET
     ", extra: 1}\nmodels: [x]\n"},
};

static void test_secrets_not_in_errors(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof secret_cases / sizeof secret_cases[0]; i++) {
    const struct secret_case *t = &secret_cases[i];
    gw_config c;
    gw_buf err;
    gw_buf_init(&err, 1024);
    fake_env env = {{"K", SECRET, NULL}};
    assert_int_equal(
        gw_config_load_buffer(&c, t->name, t->text, strlen(t->text), fake_getenv, &env, &err),
        GW_ERR_INVALID);
    assert_non_null(err.data);
    if (strstr(err.data, "TOPSECRET"))
      fail_msg("case %zu leaks the secret: %s", i, err.data);
    gw_buf_release(&err);
  }
  /* Environment: a URL with credentials, and .env syntax around a secret. */
  gw_config c;
  gw_buf err;
  gw_buf_init(&err, 1024);
  fake_env env = {{"TARGET_API_URL", "ftp://u:" SECRET "@h", NULL}};
  assert_int_equal(load(&c, &env, NULL, &err), GW_ERR_INVALID);
  assert_null(strstr(err.data, "TOPSECRET"));
  assert_non_null(strstr(err.data, "TARGET_API_URL"));
  const char *path = write_tmp("secret.env", "JWT_SECRET=\"" SECRET "\n");
  assert_int_equal(load(&c, NULL, path, &err), GW_ERR_INVALID);
  assert_null(strstr(err.data, "TOPSECRET"));
  path = write_tmp("secret2.env", "JWT_SECRET " SECRET "\n");
  assert_int_equal(load(&c, NULL, path, &err), GW_ERR_INVALID);
  assert_null(strstr(err.data, "TOPSECRET"));
  gw_buf_release(&err);
}

/* --- model matching ---------------------------------------------------------------- */

static void test_model_matching(void **state) {
  (void)state;
  static const char yaml[] = "backends: [" B_LOCAL "]\n"
                             "models:\n"
                             "  - {name: '*', backend: local}\n"
                             "  - {name: 'a/*', backend: local}\n"
                             "  - {name: 'a/b/*', backend: local}\n"
                             "  - {name: 'a/b/exact', backend: local}\n"
                             "  - {name: 'x', backend: local}\n";
  static const struct {
    const char *model, *want;
  } t[] = {
      {"x", "x"},         {"a/b/exact", "a/b/exact"},
      {"a/b/c", "a/b/*"}, {"a/b/", "a/*"},
      {"a/c", "a/*"},     {"a/", "*"},
      {"a", "*"},         {"ab/c", "*"},
      {"", "*"},          {"y", "*"},
  };
  gw_config c;
  assert_int_equal(gw_config_load_buffer(&c, "m.yaml", yaml, strlen(yaml), fake_getenv, NULL, NULL),
                   GW_OK);
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    const gw_model_conf *m = gw_config_model(&c, t[i].model);
    assert_non_null(m);
    if (strcmp(m->name, t[i].want) != 0)
      fail_msg("%s: got %s, want %s", t[i].model, m->name, t[i].want);
  }
  gw_config_release(&c);

  /* Without "*", an unmatched name has no entry. */
  static const char yaml2[] = "backends: [" B_LOCAL "]\nmodels: [{name: 'a/*', backend: local}]\n";
  assert_int_equal(
      gw_config_load_buffer(&c, "m.yaml", yaml2, strlen(yaml2), fake_getenv, NULL, NULL), GW_OK);
  assert_null(gw_config_model(&c, "b"));
  assert_null(gw_config_model(&c, "a/"));
  assert_non_null(gw_config_model(&c, "a/x"));
  gw_config_release(&c);
}

/* --- fail-malloc ----------------------------------------------------------------------- */

struct sweep_arg {
  const char *dotenv;
  fake_env env;
};

static int sweep_load(void *arg) {
  struct sweep_arg *a = arg;
  gw_config c;
  gw_buf err;
  gw_buf_init(&err, 1024);
  int rc = gw_config_load(&c, fake_getenv, &a->env, a->dotenv, &err);
  if (rc == GW_OK)
    gw_config_release(&c);
  else
    assert_true(rc == GW_ERR_NOMEM || rc == GW_ERR_INVALID);
  gw_buf_release(&err);
  return rc;
}

static void test_failmalloc(void **state) {
  (void)state;
  static const char *const files[] = {"tests/unit/config/data/gateway.yaml",
                                      "tests/unit/config/data/gateway.json"};
  char dotenv[1024], path[1024];
  snprintf(dotenv, sizeof dotenv, "%s", gw_test_source_path("tests/unit/config/data/sample.env"));
  for (size_t i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s", gw_test_source_path(files[i]));
    struct sweep_arg a = {dotenv, {{"CONFIG_FILE", path, NULL}}};
    assert_true(gw_test_failmalloc_sweep(sweep_load, &a) > 20);
  }
  /* The embedded default and the TARGET_API_URL routes. */
  struct sweep_arg d = {NO_DOTENV, {{NULL}}};
  assert_true(gw_test_failmalloc_sweep(sweep_load, &d) > 5);
  struct sweep_arg t = {NO_DOTENV,
                        {{"TARGET_API_URL", "https://h/v1", "TARGET_API_KEY", "k", NULL}}};
  assert_true(gw_test_failmalloc_sweep(sweep_load, &t) > 5);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_local_model_port_in_default),
      cmocka_unit_test(test_pool_defaults_and_keys),
      cmocka_unit_test(test_env_good),
      cmocka_unit_test(test_env_bad),
      cmocka_unit_test(test_tls_pair),
      cmocka_unit_test(test_target_api_url),
      cmocka_unit_test(test_dotenv_good),
      cmocka_unit_test(test_dotenv_bad),
      cmocka_unit_test(test_dotenv_file_and_precedence),
      cmocka_unit_test(test_config_files),
      cmocka_unit_test(test_vendor_backends),
      cmocka_unit_test(test_config_file_key_from_dotenv),
      cmocka_unit_test(test_config_file_syntax_from_file),
      cmocka_unit_test(test_config_file_cases),
      cmocka_unit_test(test_secrets_not_in_errors),
      cmocka_unit_test(test_model_matching),
      cmocka_unit_test(test_failmalloc),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
