/* The config file: JSON (jansson) or YAML (libyaml, converted to the same
 * jansson tree), validated once against the schema in docs/config.md into
 * gw_config's backends and models. Every error is one line
 * "<file>: <key path>: <what>" ("<file>:<line>:<col>: ..." for syntax);
 * secret values never appear in it. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <yaml.h>

#include "config/config_internal.h"
#include "core/alloc.h"
#include "core/status.h"

/* --- YAML to a jansson tree --------------------------------------------------- */

#define YAML_MAX_DEPTH 64

typedef struct yframe {
  json_t *node; /* borrowed: already attached to its parent (or the root) */
  char *key;    /* mapping frames: the key waiting for its value, or NULL */
} yframe;

static int yaml_fail(gw_buf *err, const char *name, const yaml_mark_t *m, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int yaml_fail(gw_buf *err, const char *name, const yaml_mark_t *m, const char *fmt, ...) {
  if (err && gw_buf_printf(err, "%s:%zu:%zu: ", name, m->line + 1, m->column + 1) == GW_OK) {
    va_list ap;
    va_start(ap, fmt);
    (void)gw_buf_vprintf(err, fmt, ap);
    va_end(ap);
  }
  return GW_ERR_INVALID;
}

static int all_digits(const char *s, size_t n) {
  if (!n)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9')
      return 0;
  return 1;
}

/* A YAML scalar as JSON: plain scalars resolve like YAML 1.2's core schema
 * (null, true/false, integers, floats); quoted ones and !!str are strings.
 * Returns GW_ERR_INVALID for an integer too large, GW_ERR_NOMEM. */
static int yaml_scalar(const yaml_event_t *ev, json_t **out) {
  const char *s = (const char *)ev->data.scalar.value;
  size_t n = ev->data.scalar.length;
  const char *tag = (const char *)ev->data.scalar.tag;
  int resolve =
      ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !(tag && strcmp(tag, YAML_STR_TAG) == 0);
  json_t *j = NULL;
  if (resolve) {
    if (n == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
        strcmp(s, "NULL") == 0) {
      j = json_null();
    } else if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0) {
      j = json_true();
    } else if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0) {
      j = json_false();
    } else if (all_digits(s + (s[0] == '-' || s[0] == '+'), n - (s[0] == '-' || s[0] == '+'))) {
      errno = 0;
      long long v = strtoll(s, NULL, 10);
      if (errno == ERANGE)
        return GW_ERR_INVALID;
      j = json_integer(v);
    } else if (strspn(s, "0123456789.eE+-") == n && strpbrk(s, "0123456789")) {
      char *end;
      double d = strtod(s, &end);
      if (end == s + n)
        j = json_real(d);
    }
  }
  if (!j)
    j = json_stringn_nocheck(s, n);
  if (!j)
    return GW_ERR_NOMEM;
  *out = j;
  return GW_OK;
}

/* Attaches |child| (taking it) where the parser is: to the mapping's pending
 * key, to the end of a sequence, or as the root. */
static int yaml_attach(yframe *st, size_t depth, json_t **root, json_t *child) {
  if (depth == 0) {
    *root = child;
    return GW_OK;
  }
  yframe *top = &st[depth - 1];
  int rc;
  if (json_is_array(top->node)) {
    rc = json_array_append_new(top->node, child);
  } else {
    rc = json_object_set_new_nocheck(top->node, top->key, child);
    gw_free(top->key);
    top->key = NULL;
  }
  return rc == 0 ? GW_OK : GW_ERR_NOMEM;
}

static int yaml_to_json(const char *name, const char *data, size_t len, json_t **out, gw_buf *err) {
  yaml_parser_t parser;
  yaml_event_t ev;
  yframe st[YAML_MAX_DEPTH];
  size_t depth = 0;
  json_t *root = NULL;
  int docs = 0, rc = GW_OK, done = 0;

  *out = NULL;
  if (!yaml_parser_initialize(&parser))
    return GW_ERR_NOMEM;
  yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);

  while (!done) {
    if (!yaml_parser_parse(&parser, &ev)) {
      if (parser.error == YAML_MEMORY_ERROR) {
        rc = GW_ERR_NOMEM;
      } else if (parser.error == YAML_READER_ERROR) {
        rc = GW_ERR_INVALID;
        if (err)
          (void)gw_buf_printf(err, "%s: YAML syntax error: %s at byte %zu", name,
                              parser.problem ? parser.problem : "unreadable input",
                              parser.problem_offset);
      } else {
        rc = yaml_fail(err, name, &parser.problem_mark, "YAML syntax error: %s%s%s%s",
                       parser.problem ? parser.problem : "invalid YAML", parser.context ? " (" : "",
                       parser.context ? parser.context : "", parser.context ? ")" : "");
      }
      goto out;
    }
    yframe *top = depth ? &st[depth - 1] : NULL;
    int is_key = top && json_is_object(top->node) && !top->key;
    json_t *node = NULL;
    switch (ev.type) {
    case YAML_STREAM_END_EVENT: done = 1; break;
    case YAML_DOCUMENT_START_EVENT:
      if (++docs > 1)
        rc = yaml_fail(err, name, &ev.start_mark, "only one YAML document is allowed");
      break;
    case YAML_ALIAS_EVENT:
      rc = yaml_fail(err, name, &ev.start_mark, "YAML aliases are not supported");
      break;
    case YAML_SCALAR_EVENT:
      if (memchr(ev.data.scalar.value, '\0', ev.data.scalar.length)) {
        rc = yaml_fail(err, name, &ev.start_mark, "NUL character in a value");
        break;
      }
      if (is_key) {
        const char *k = (const char *)ev.data.scalar.value;
        if (json_object_get(top->node, k)) {
          if (err && gw_buf_printf(err, "%s:%zu:%zu: duplicate key ", name, ev.start_mark.line + 1,
                                   ev.start_mark.column + 1) == GW_OK)
            (void)gw_config_append_quoted(err, k);
          rc = GW_ERR_INVALID;
        } else if (!(top->key = gw_strdup(k))) {
          rc = GW_ERR_NOMEM;
        }
        break;
      }
      rc = yaml_scalar(&ev, &node);
      if (rc == GW_ERR_INVALID)
        rc = yaml_fail(err, name, &ev.start_mark, "integer out of range");
      if (rc == GW_OK)
        rc = yaml_attach(st, depth, &root, node);
      break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
      if (is_key) {
        rc = yaml_fail(err, name, &ev.start_mark, "keys must be plain strings");
        break;
      }
      if (depth == YAML_MAX_DEPTH) {
        rc = yaml_fail(err, name, &ev.start_mark, "nested too deeply");
        break;
      }
      node = ev.type == YAML_SEQUENCE_START_EVENT ? json_array() : json_object();
      if (!node) {
        rc = GW_ERR_NOMEM;
        break;
      }
      if ((rc = yaml_attach(st, depth, &root, node)) != GW_OK)
        break;
      st[depth].node = node;
      st[depth].key = NULL;
      depth++;
      break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: depth--; break;
    default: break;
    }
    yaml_event_delete(&ev);
    if (rc != GW_OK)
      goto out;
  }

out:
  while (depth > 0)
    gw_free(st[--depth].key);
  yaml_parser_delete(&parser);
  if (rc != GW_OK) {
    json_decref(root);
    return rc;
  }
  *out = root; /* NULL for an empty stream */
  return GW_OK;
}

static int json_parse(const char *name, const char *data, size_t len, json_t **out, gw_buf *err) {
  json_error_t je;
  *out = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
  if (*out)
    return GW_OK;
  if (json_error_code(&je) == json_error_out_of_memory)
    return GW_ERR_NOMEM;
  /* jansson appends "near '<token>'": the token may be part of a secret. */
  char *near = strstr(je.text, " near ");
  if (near)
    *near = '\0';
  if (err) {
    if (je.line > 0 && je.column > 0)
      (void)gw_buf_printf(err, "%s:%d:%d: JSON syntax error: %s", name, je.line, je.column,
                          je.text);
    else if (je.line > 0)
      (void)gw_buf_printf(err, "%s:%d: JSON syntax error: %s", name, je.line, je.text);
    else
      (void)gw_buf_printf(err, "%s: JSON syntax error: %s", name, je.text);
  }
  return GW_ERR_INVALID;
}

/* --- validation ---------------------------------------------------------------- */

typedef struct vctx {
  const char *name;
  gw_buf *err;
  gw_getenv_fn getenv_fn;
  void *getenv_arg;
} vctx;

/* Writes "<file>: <path>: <what>" (or "<file>: <what>" at the top). */
static int verr(vctx *v, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int verr(vctx *v, const char *path, const char *fmt, ...) {
  if (!v->err)
    return GW_ERR_INVALID;
  int rc = *path ? gw_buf_printf(v->err, "%s: %s: ", v->name, path)
                 : gw_buf_printf(v->err, "%s: ", v->name);
  if (rc == GW_OK) {
    va_list ap;
    va_start(ap, fmt);
    (void)gw_buf_vprintf(v->err, fmt, ap);
    va_end(ap);
  }
  return GW_ERR_INVALID;
}

/* verr() with a quoted user value between |before| and |after|. */
static int verr_value(vctx *v, const char *path, const char *before, const char *value,
                      const char *after) {
  if (v->err &&
      (*path ? gw_buf_printf(v->err, "%s: %s: %s", v->name, path, before)
             : gw_buf_printf(v->err, "%s: %s", v->name, before)) == GW_OK &&
      gw_config_append_quoted(v->err, value) == GW_OK)
    (void)gw_buf_appends(v->err, after);
  return GW_ERR_INVALID;
}

static int is_plain_key(const char *k) {
  size_t n = strlen(k);
  return n > 0 && n <= 64 &&
         strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

/* |obj| must be an object whose keys are all in |allowed| (NULL-terminated). */
static int check_object(vctx *v, const json_t *obj, const char *path, const char *const *allowed) {
  if (!json_is_object(obj))
    return verr(v, path, "must be an object");
  const char *key;
  json_t *val;
  json_object_foreach((json_t *)obj, key, val) {
    size_t i;
    for (i = 0; allowed[i]; i++)
      if (strcmp(key, allowed[i]) == 0)
        break;
    if (allowed[i])
      continue;
    if (is_plain_key(key)) {
      char p[160];
      snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", key);
      return verr(v, p, "unknown key");
    }
    return verr_value(v, path, "unknown key ", key, "");
  }
  return GW_OK;
}

static void join(char *dst, size_t n, const char *path, const char *key) {
  snprintf(dst, n, "%s%s%s", path, *path ? "." : "", key);
}

/* A string member |key| of |obj|: |*out| borrowed, NULL when absent (an error
 * when |required|). Empty strings are errors. */
static int get_string(vctx *v, const json_t *obj, const char *path, const char *key, int required,
                      const char **out) {
  char p[160];
  join(p, sizeof p, path, key);
  json_t *j = json_object_get(obj, key);
  *out = NULL;
  if (!j)
    return required ? verr(v, p, "is required") : GW_OK;
  if (!json_is_string(j))
    return verr(v, p, "must be a string");
  if (json_string_length(j) == 0)
    return verr(v, p, "must not be empty");
  if (strlen(json_string_value(j)) != json_string_length(j))
    return verr(v, p, "must not contain NUL characters");
  *out = json_string_value(j);
  return GW_OK;
}

/* An integer member in [|min|, |max|]; |*out| untouched when absent. */
static int get_int(vctx *v, const json_t *obj, const char *path, const char *key, int min, int max,
                   int *out) {
  char p[160];
  join(p, sizeof p, path, key);
  json_t *j = json_object_get(obj, key);
  if (!j)
    return GW_OK;
  if (!json_is_integer(j) || json_integer_value(j) < min || json_integer_value(j) > max) {
    if (max == INT_MAX)
      return verr(v, p, "must be an integer >= %d", min);
    return verr(v, p, "must be an integer in %d-%d", min, max);
  }
  *out = (int)json_integer_value(j);
  return GW_OK;
}

static int dup_string(const char *s, char **out) {
  if (!s)
    return GW_OK;
  return (*out = gw_strdup(s)) ? GW_OK : GW_ERR_NOMEM;
}

/* "host:port" or "[v6]:port", port 1-65535. */
static int is_host_port(const char *s) {
  const char *port;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (!close || close == s + 1 || close[1] != ':')
      return 0;
    port = close + 2;
  } else {
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || memchr(s, ':', (size_t)(colon - s)))
      return 0;
    for (const char *p = s; p < colon; p++)
      if ((unsigned char)*p <= 0x20 || *p == '/' || *p == 0x7f)
        return 0;
    port = colon + 1;
  }
  size_t n = strlen(port);
  if (!all_digits(port, n) || n > 5)
    return 0;
  long p = strtol(port, NULL, 10);
  return p >= 1 && p <= 65535;
}

static int is_env_name(const char *s) {
  if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
    return 0;
  return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == strlen(s);
}

/* The optional `pool` object of a backend with a command (see gw_pool_conf). */
static int parse_pool(vctx *v, const json_t *j, const char *path, const gw_config *c,
                      gw_backend_conf *b) {
  static const char *const keys[] = {"min",
                                     "max",
                                     "max_concurrency",
                                     "scale_up_inflight",
                                     "scale_down_inflight",
                                     "scale_up_wait_ms",
                                     "scale_up_latency_ms",
                                     "up_after_ms",
                                     "down_after_ms",
                                     "up_cooldown_ms",
                                     "down_cooldown_ms",
                                     "queue_timeout_ms",
                                     NULL};
  const json_t *pj = json_object_get(j, "pool");
  char p[160];
  int rc;
  join(p, sizeof p, path, "pool");
  if (pj && !b->command)
    return verr(v, p, "only allowed with command");
  if (!b->command)
    return GW_OK;
  gw_config_pool_defaults(c, b);
  if (pj) {
    gw_pool_conf *q = &b->pool;
    if ((rc = check_object(v, pj, p, keys)) != GW_OK)
      return rc;
    const struct {
      const char *key;
      int *field, min, max;
    } ints[] = {
        {"min", &q->min, 1, 64},
        {"max", &q->max, 1, 64},
        {"max_concurrency", &q->max_concurrency, 1, 100000},
        {"scale_up_inflight", &q->scale_up_inflight, 1, 100000},
        {"scale_down_inflight", &q->scale_down_inflight, 0, 100000},
        {"scale_up_wait_ms", &q->scale_up_wait_ms, 0, 3600000},
        {"scale_up_latency_ms", &q->scale_up_latency_ms, 0, 3600000},
        {"up_after_ms", &q->up_after_ms, 0, 3600000},
        {"down_after_ms", &q->down_after_ms, 0, 3600000},
        {"up_cooldown_ms", &q->up_cooldown_ms, 0, 3600000},
        {"down_cooldown_ms", &q->down_cooldown_ms, 0, 3600000},
        {"queue_timeout_ms", &q->queue_timeout_ms, 0, 3600000},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
      if ((rc = get_int(v, pj, p, ints[i].key, ints[i].min, ints[i].max, ints[i].field)) != GW_OK)
        return rc;
    /* One bound given alone moves the other when the environment's
     * default would contradict it. */
    if (json_object_get(pj, "max") && !json_object_get(pj, "min") && q->min > q->max)
      q->min = q->max;
    if (json_object_get(pj, "min") && !json_object_get(pj, "max") && q->max < q->min)
      q->max = q->min;
  }
  const char *fault = gw_config_pool_finish(b);
  if (fault)
    return verr(v, p, "%s", fault);
  return GW_OK;
}

static int is_vendor(const char *provider) {
  static const char *const names[] = {"openai", "azure",  "anthropic",
                                      "gemini", "vertex", "bedrock"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (strcmp(provider, names[i]) == 0)
      return 1;
  return 0;
}

/* A secret named by an *_env key: |*out| copied from the environment;
 * untouched when the key is absent. */
static int get_env_secret(vctx *v, const json_t *j, const char *path, const char *key, char **out) {
  const char *name, *val;
  char p[160];
  int rc = get_string(v, j, path, key, 0, &name);
  if (rc != GW_OK || !name)
    return rc;
  join(p, sizeof p, path, key);
  if (!is_env_name(name))
    return verr_value(v, p, "", name, " is not an environment variable name");
  val = v->getenv_fn(v->getenv_arg, name);
  if (!val || !*val)
    return verr(v, p, "environment variable %s is not set", name);
  return dup_string(val, out);
}

/* The vendor keys of a backend (see docs/config.md, "Providers"): each is
 * accepted only by the providers that use it; a missing target becomes the
 * vendor's endpoint. */
static int parse_vendor(vctx *v, const json_t *j, const char *path, const char *provider,
                        const char *target, gw_backend_conf *b) {
  static const struct {
    const char *key, *providers; /* providers: space-separated */
  } allowed[] = {
      {"api_version", " azure anthropic "},
      {"region", " bedrock "},
      {"access_key_id_env", " bedrock "},
      {"secret_access_key_env", " bedrock "},
      {"session_token_env", " bedrock "},
      {"project", " vertex "},
      {"location", " vertex "},
      {"credentials_file", " vertex "},
  };
  char p[160], pad[32];
  int rc;
  snprintf(pad, sizeof pad, " %s ", provider);
  for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
    if (json_object_get(j, allowed[i].key) && !strstr(allowed[i].providers, pad)) {
      join(p, sizeof p, path, allowed[i].key);
      return verr(v, p, "is not used by provider %s", provider);
    }
  const char *api_version = NULL, *region = NULL, *project = NULL, *location = NULL, *creds = NULL;
  if ((rc = get_string(v, j, path, "api_version", 0, &api_version)) != GW_OK ||
      (rc = get_string(v, j, path, "region", 0, &region)) != GW_OK ||
      (rc = get_string(v, j, path, "project", 0, &project)) != GW_OK ||
      (rc = get_string(v, j, path, "location", 0, &location)) != GW_OK ||
      (rc = get_string(v, j, path, "credentials_file", 0, &creds)) != GW_OK)
    return rc;
  const char *dflt = NULL;
  char buf[256];
  if (strcmp(provider, "bedrock") == 0) {
    if (!region && !(region = v->getenv_fn(v->getenv_arg, "AWS_REGION")))
      return verr(v, path, "bedrock needs region (or AWS_REGION)");
    if (!json_object_get(j, "access_key_id_env") || !json_object_get(j, "secret_access_key_env"))
      return verr(v, path, "bedrock needs access_key_id_env and secret_access_key_env");
    if ((rc = get_env_secret(v, j, path, "access_key_id_env", &b->aws_access_key_id)) != GW_OK ||
        (rc = get_env_secret(v, j, path, "secret_access_key_env", &b->aws_secret_access_key)) !=
            GW_OK ||
        (rc = get_env_secret(v, j, path, "session_token_env", &b->aws_session_token)) != GW_OK)
      return rc;
    snprintf(buf, sizeof buf, "https://bedrock-runtime.%s.amazonaws.com", region);
    dflt = buf;
  } else if (strcmp(provider, "vertex") == 0) {
    if (!project || !creds)
      return verr(v, path, "vertex needs project and credentials_file");
    if (!location)
      location = "us-central1";
    snprintf(buf, sizeof buf, "https://%s-aiplatform.googleapis.com/v1", location);
    dflt = buf;
  } else if (strcmp(provider, "anthropic") == 0) {
    dflt = "https://api.anthropic.com";
  } else if (strcmp(provider, "gemini") == 0) {
    dflt = "https://generativelanguage.googleapis.com/v1beta";
  } else if (strcmp(provider, "azure") == 0 && !api_version) {
    api_version = "2024-10-21";
  }
  if (!target && dflt && (rc = dup_string(dflt, &b->target)) != GW_OK)
    return rc;
  if ((rc = dup_string(api_version, &b->api_version)) != GW_OK ||
      (rc = dup_string(region, &b->region)) != GW_OK ||
      (rc = dup_string(project, &b->project)) != GW_OK ||
      (rc = dup_string(location, &b->location)) != GW_OK ||
      (rc = dup_string(creds, &b->credentials_file)) != GW_OK)
    return rc;
  return GW_OK;
}

static int parse_backend(vctx *v, const json_t *j, const char *path, gw_config *c, size_t idx) {
  static const char *const keys[] = {"name", "provider", "target", "api_key_env", "api_key",
                                     "timeout_ms", "command", "pool", "embedding_encoding",
                                     /* vendor keys: parse_vendor() */
                                     "api_version", "region", "access_key_id_env",
                                     "secret_access_key_env", "session_token_env", "project",
                                     "location", "credentials_file", NULL};
  gw_backend_conf *b = &c->backends[idx];
  char p[160];
  int rc;
  if ((rc = check_object(v, j, path, keys)) != GW_OK)
    return rc;

  const char *name, *provider, *target, *key_env, *key;
  if ((rc = get_string(v, j, path, "name", 1, &name)) != GW_OK)
    return rc;
  for (size_t i = 0; i < idx; i++)
    if (strcmp(c->backends[i].name, name) == 0) {
      join(p, sizeof p, path, "name");
      return verr_value(v, p, "duplicate backend ", name, "");
    }
  if ((rc = get_string(v, j, path, "provider", 1, &provider)) != GW_OK)
    return rc;
  int grpc = strcmp(provider, "grpc") == 0;
  if (!grpc && !is_vendor(provider)) {
    join(p, sizeof p, path, "provider");
    return verr(v, p, "must be one of grpc, openai, azure, anthropic, gemini, vertex, bedrock");
  }
  /* The vendors with one well-known endpoint need no target. */
  int target_required = grpc || strcmp(provider, "openai") == 0 || strcmp(provider, "azure") == 0;
  if ((rc = get_string(v, j, path, "target", target_required, &target)) != GW_OK)
    return rc;
  join(p, sizeof p, path, "target");
  if (!target)
    ; /* parse_vendor() sets the default */
  else if (grpc && !is_host_port(target))
    return verr_value(v, p, "", target, " is not host:port (port 1-65535)");
  if (target && !grpc && !gw_config_is_http_url(target)) {
    if (strchr(target, '@')) /* userinfo may hold a secret */
      return verr(v, p, "is not an http(s) URL");
    return verr_value(v, p, "", target, " is not an http(s) URL");
  }
  if ((rc = get_string(v, j, path, "api_key_env", 0, &key_env)) != GW_OK)
    return rc;
  if ((rc = get_string(v, j, path, "api_key", 0, &key)) != GW_OK)
    return rc;
  if (key_env && key)
    return verr(v, path, "api_key and api_key_env are mutually exclusive");
  if (key_env) {
    join(p, sizeof p, path, "api_key_env");
    if (!is_env_name(key_env))
      return verr_value(v, p, "", key_env, " is not an environment variable name");
    key = v->getenv_fn(v->getenv_arg, key_env);
    if (!key || !*key)
      return verr(v, p, "environment variable %s is not set", key_env);
  }
  int timeout = 0;
  if ((rc = get_int(v, j, path, "timeout_ms", 0, INT_MAX, &timeout)) != GW_OK)
    return rc;
  const char *emb;
  if ((rc = get_string(v, j, path, "embedding_encoding", 0, &emb)) != GW_OK)
    return rc;
  if (emb) {
    join(p, sizeof p, path, "embedding_encoding");
    if (strcmp(provider, "openai") != 0)
      return verr(v, p, "applies to provider openai only");
    if (strcmp(emb, "base64") != 0 && strcmp(emb, "float") != 0)
      return verr_value(v, p, "", emb, " is not base64 or float");
    b->embeddings_float = strcmp(emb, "float") == 0;
  }
  if ((rc = parse_vendor(v, j, path, provider, target, b)) != GW_OK)
    return rc;

  const json_t *cmd = json_object_get(j, "command");
  join(p, sizeof p, path, "command");
  if (cmd && !json_is_array(cmd))
    return verr(v, p, "must be a list of strings");
  if (cmd && json_array_size(cmd) == 0)
    return verr(v, p, "must not be empty");
  for (size_t i = 0; cmd && i < json_array_size(cmd); i++) {
    const json_t *a = json_array_get(cmd, i);
    if (!json_is_string(a) || strlen(json_string_value(a)) != json_string_length(a)) {
      char pi[200];
      snprintf(pi, sizeof pi, "%s[%zu]", p, i);
      return verr(v, pi, "must be a string");
    }
  }

  b->timeout_ms = timeout;
  if ((rc = dup_string(name, &b->name)) != GW_OK || (rc = dup_string(provider, &b->provider)) ||
      (rc = dup_string(target, &b->target)) || (rc = dup_string(key, &b->api_key)))
    return rc;
  if (cmd) {
    size_t n = json_array_size(cmd);
    if (!(b->command = gw_calloc(n, sizeof *b->command)))
      return GW_ERR_NOMEM;
    b->n_command = n;
    for (size_t i = 0; i < n; i++)
      if ((rc = dup_string(json_string_value(json_array_get(cmd, i)), &b->command[i])) != GW_OK)
        return rc;
  }
  return parse_pool(v, j, path, c, b);
}

/* "*", prefix/STAR (a prefix ending in '/' and then '*') or a name without '*'. */
static int is_model_name(const char *s) {
  const char *star = strchr(s, '*');
  if (!star)
    return 1;
  size_t n = strlen(s);
  if (n == 1)
    return 1;
  return star == s + n - 1 && n >= 3 && s[n - 2] == '/';
}

static int parse_deployment(vctx *v, const json_t *j, const char *path, const gw_config *c,
                            const char *model, gw_deployment_conf *d, int shorthand) {
  static const char *const dkeys[] = {"backend",  "upstream_model",  "weight",
                                      "priority", "max_concurrency", NULL};
  int rc;
  if (!shorthand && (rc = check_object(v, j, path, dkeys)) != GW_OK)
    return rc;
  const char *backend, *upstream;
  if ((rc = get_string(v, j, path, "backend", 1, &backend)) != GW_OK)
    return rc;
  if (!gw_config_backend(c, backend)) {
    char p[160];
    join(p, sizeof p, path, "backend");
    return verr_value(v, p, "unknown backend ", backend, "");
  }
  if ((rc = get_string(v, j, path, "upstream_model", 0, &upstream)) != GW_OK)
    return rc;
  d->weight = 1;
  d->priority = 0;
  if (!shorthand) {
    if ((rc = get_int(v, j, path, "weight", 1, INT_MAX, &d->weight)) != GW_OK ||
        (rc = get_int(v, j, path, "priority", 0, INT_MAX, &d->priority)) != GW_OK ||
        (rc = get_int(v, j, path, "max_concurrency", 0, INT_MAX, &d->max_concurrency)) != GW_OK)
      return rc;
  }
  if (!upstream && !strchr(model, '*'))
    upstream = model;
  if ((rc = dup_string(backend, &d->backend)) != GW_OK)
    return rc;
  return dup_string(upstream, &d->upstream_model);
}

static int parse_model(vctx *v, const json_t *j, const char *path, gw_config *c, size_t idx) {
  static const char *const keys[] = {"name",        "backend",   "upstream_model",
                                     "deployments", "fallbacks", NULL};
  gw_model_conf *m = &c->models[idx];
  char p[160];
  int rc;
  if ((rc = check_object(v, j, path, keys)) != GW_OK)
    return rc;
  const char *name;
  if ((rc = get_string(v, j, path, "name", 1, &name)) != GW_OK)
    return rc;
  join(p, sizeof p, path, "name");
  if (!is_model_name(name))
    return verr_value(v, p, "", name,
                      " is not a model name (\"*\" only alone or at the end of \"prefix/*\")");
  for (size_t i = 0; i < idx; i++)
    if (strcmp(c->models[i].name, name) == 0)
      return verr_value(v, p, "duplicate model ", name, "");

  const json_t *deps = json_object_get(j, "deployments");
  int has_backend = json_object_get(j, "backend") != NULL;
  if (deps && has_backend)
    return verr(v, path, "backend and deployments are mutually exclusive");
  if (!deps && !has_backend)
    return verr(v, path, "needs backend or deployments");
  if (deps && json_object_get(j, "upstream_model")) {
    join(p, sizeof p, path, "upstream_model");
    return verr(v, p, "only allowed with backend (set it in each deployment)");
  }
  join(p, sizeof p, path, "deployments");
  if (deps && !json_is_array(deps))
    return verr(v, p, "must be a list");
  if (deps && json_array_size(deps) == 0)
    return verr(v, p, "must not be empty");

  const json_t *fb = json_object_get(j, "fallbacks");
  char pf[160];
  join(pf, sizeof pf, path, "fallbacks");
  if (fb && !json_is_array(fb))
    return verr(v, pf, "must be a list of model names");
  for (size_t i = 0; fb && i < json_array_size(fb); i++) {
    const json_t *a = json_array_get(fb, i);
    char pi[200];
    snprintf(pi, sizeof pi, "%s[%zu]", pf, i);
    if (!json_is_string(a) || json_string_length(a) == 0 ||
        strlen(json_string_value(a)) != json_string_length(a) || strchr(json_string_value(a), '*'))
      return verr(v, pi, "must be a model name");
    if (strcmp(json_string_value(a), name) == 0)
      return verr(v, pi, "a model cannot fall back to itself");
  }
  if (fb && json_array_size(fb)) {
    size_t nf = json_array_size(fb);
    if (!(m->fallbacks = gw_calloc(nf, sizeof *m->fallbacks)))
      return GW_ERR_NOMEM;
    m->n_fallbacks = nf;
    for (size_t i = 0; i < nf; i++)
      if ((rc = dup_string(json_string_value(json_array_get(fb, i)), &m->fallbacks[i])) != GW_OK)
        return rc;
  }

  size_t n = deps ? json_array_size(deps) : 1;
  if (!(m->name = gw_strdup(name)))
    return GW_ERR_NOMEM;
  if (!(m->deployments = gw_calloc(n, sizeof *m->deployments)))
    return GW_ERR_NOMEM;
  m->n_deployments = n;
  if (!deps)
    return parse_deployment(v, j, path, c, name, &m->deployments[0], 1);
  for (size_t i = 0; i < n; i++) {
    char pi[200];
    snprintf(pi, sizeof pi, "%s[%zu]", p, i);
    if ((rc = parse_deployment(v, json_array_get(deps, i), pi, c, name, &m->deployments[i], 0)) !=
        GW_OK)
      return rc;
  }
  return GW_OK;
}

/* The optional top-level `routing` object. */
static int parse_routing(vctx *v, const json_t *j, gw_routing_conf *r) {
  static const char *const keys[] = {"balance",
                                     "max_retries",
                                     "retry_budget_percent",
                                     "retry_budget_min",
                                     "retry_backoff_ms",
                                     "retry_backoff_max_ms",
                                     "max_retry_after_ms",
                                     "eject_failures",
                                     "eject_base_ms",
                                     "eject_max_ms",
                                     "probe_interval_ms",
                                     "probe_timeout_ms",
                                     "reload_poll_ms",
                                     NULL};
  static const struct {
    const char *name;
    gw_conf_balance b;
  } balances[] = {{"weighted", GW_CONF_BALANCE_WEIGHTED},
                  {"round_robin", GW_CONF_BALANCE_WEIGHTED},
                  {"least_outstanding", GW_CONF_BALANCE_LEAST_OUTSTANDING},
                  {"p2c_ewma", GW_CONF_BALANCE_P2C_EWMA},
                  {"p2c", GW_CONF_BALANCE_P2C_EWMA}};
  int rc;
  if ((rc = check_object(v, j, "routing", keys)) != GW_OK)
    return rc;
  const char *bal;
  if ((rc = get_string(v, j, "routing", "balance", 0, &bal)) != GW_OK)
    return rc;
  if (bal) {
    size_t i, nb = sizeof balances / sizeof balances[0];
    for (i = 0; i < nb && strcmp(bal, balances[i].name) != 0; i++)
      ;
    if (i == nb)
      return verr_value(v, "routing.balance", "", bal,
                        " is not one of weighted, round_robin, least_outstanding, p2c_ewma, p2c");
    r->balance = balances[i].b;
  }
  const struct {
    const char *key;
    int min, max;
    int *field;
  } ints[] = {
      {"max_retries", 0, 10, &r->max_retries},
      {"retry_budget_percent", 0, 100, &r->retry_budget_percent},
      {"retry_budget_min", 0, 100000, &r->retry_budget_min},
      {"retry_backoff_ms", 0, 60000, &r->retry_backoff_ms},
      {"retry_backoff_max_ms", 0, 600000, &r->retry_backoff_max_ms},
      {"max_retry_after_ms", 0, 3600000, &r->max_retry_after_ms},
      {"eject_failures", 1, 1000, &r->eject_failures},
      {"eject_base_ms", 1, 3600000, &r->eject_base_ms},
      {"eject_max_ms", 1, 86400000, &r->eject_max_ms},
      {"probe_interval_ms", 0, 3600000, &r->probe_interval_ms},
      {"probe_timeout_ms", 1, 600000, &r->probe_timeout_ms},
      {"reload_poll_ms", 0, 3600000, &r->reload_poll_ms},
  };
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
    if ((rc = get_int(v, j, "routing", ints[i].key, ints[i].min, ints[i].max, ints[i].field)) !=
        GW_OK)
      return rc;
  if (r->eject_max_ms < r->eject_base_ms)
    return verr(v, "routing.eject_max_ms", "must be >= eject_base_ms");
  return GW_OK;
}

/* Every fallback names a model this file routes, by an exact entry. */
static int check_fallbacks(vctx *v, const gw_config *c) {
  for (size_t i = 0; i < c->n_models; i++)
    for (size_t k = 0; k < c->models[i].n_fallbacks; k++) {
      const char *f = c->models[i].fallbacks[k];
      size_t m;
      for (m = 0; m < c->n_models && strcmp(c->models[m].name, f) != 0; m++)
        ;
      if (m == c->n_models) {
        char p[200];
        snprintf(p, sizeof p, "models[%zu].fallbacks[%zu]", i, k);
        return verr_value(v, p, "unknown model ", f, "");
      }
    }
  return GW_OK;
}

static int validate(vctx *v, const json_t *root, gw_config *c) {
  static const char *const keys[] = {"backends", "models", "routing", NULL};
  int rc;
  if (!root)
    return verr(v, "", "is empty");
  if ((rc = check_object(v, root, "", keys)) != GW_OK)
    return rc;

  const json_t *backends = json_object_get(root, "backends");
  const json_t *models = json_object_get(root, "models");
  if (!backends)
    return verr(v, "backends", "is required");
  if (!json_is_array(backends))
    return verr(v, "backends", "must be a list");
  if (json_array_size(backends) == 0)
    return verr(v, "backends", "must not be empty");
  if (!models)
    return verr(v, "models", "is required");
  if (!json_is_array(models))
    return verr(v, "models", "must be a list");
  if (json_array_size(models) == 0)
    return verr(v, "models", "must not be empty");

  size_t nb = json_array_size(backends);
  if (!(c->backends = gw_calloc(nb, sizeof *c->backends)))
    return GW_ERR_NOMEM;
  for (size_t i = 0; i < nb; i++) {
    char p[32];
    snprintf(p, sizeof p, "backends[%zu]", i);
    /* Counted before it is filled so that a failure releases what it holds. */
    c->n_backends = i + 1;
    if ((rc = parse_backend(v, json_array_get(backends, i), p, c, i)) != GW_OK)
      return rc;
  }
  size_t nm = json_array_size(models);
  if (!(c->models = gw_calloc(nm, sizeof *c->models)))
    return GW_ERR_NOMEM;
  for (size_t i = 0; i < nm; i++) {
    char p[32];
    snprintf(p, sizeof p, "models[%zu]", i);
    c->n_models = i + 1;
    if ((rc = parse_model(v, json_array_get(models, i), p, c, i)) != GW_OK)
      return rc;
  }
  if ((rc = check_fallbacks(v, c)) != GW_OK)
    return rc;
  const json_t *routing = json_object_get(root, "routing");
  return routing ? parse_routing(v, routing, &c->routing) : GW_OK;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

int gw_config_file_parse(gw_config *c, const char *name, const char *data, size_t len,
                         gw_getenv_fn getenv_fn, void *getenv_arg, gw_buf *err) {
  int yaml;
  if (ends_with(name, ".yaml") || ends_with(name, ".yml")) {
    yaml = 1;
  } else if (ends_with(name, ".json")) {
    yaml = 0;
  } else {
    size_t i = 0;
    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r'))
      i++;
    yaml = !(i < len && data[i] == '{');
  }
  json_t *root;
  int rc =
      yaml ? yaml_to_json(name, data, len, &root, err) : json_parse(name, data, len, &root, err);
  if (rc != GW_OK)
    return rc;
  vctx v = {name, err, getenv_fn, getenv_arg};
  gw_config_routing_defaults(&c->routing);
  rc = validate(&v, root, c);
  json_decref(root);
  if (rc != GW_OK)
    gw_config_release_routes(c);
  return rc;
}
