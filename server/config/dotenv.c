/* .env files: KEY=VALUE lines read into a table; nothing is exported to the
 * process environment (tests stay hermetic; the config sees it through
 * gw_config_load's lookup). Syntax, kept to what every dotenv tool agrees on:
 *   # comment            blank lines           export KEY=value
 *   KEY=value # comment  KEY='literal'         KEY="with \n \t \" \\ escapes"
 * Quoted values may span lines. No shell expansion: "$HOME" stays "$HOME". */
#include <string.h>

#include "config/config_internal.h"
#include "core/alloc.h"
#include "core/status.h"

static int is_blank(char c) { return c == ' ' || c == '\t'; }
static int is_key_start(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
static int is_key_char(char c) { return is_key_start(c) || (c >= '0' && c <= '9'); }

/* Stores |key| = |*value|, taking |*value| (it is NULL afterwards). */
static int dotenv_set(gw_dotenv *d, const char *key, size_t klen, char **value) {
  for (size_t i = 0; i < d->n; i++)
    if (strlen(d->keys[i]) == klen && memcmp(d->keys[i], key, klen) == 0) {
      gw_free(d->values[i]);
      d->values[i] = *value;
      *value = NULL;
      return GW_OK;
    }
  if (d->n == d->alloc) {
    size_t na = d->alloc ? d->alloc * 2 : 16;
    char **k = gw_realloc(d->keys, na * sizeof *k);
    if (!k)
      return GW_ERR_NOMEM;
    d->keys = k;
    char **v = gw_realloc(d->values, na * sizeof *v);
    if (!v)
      return GW_ERR_NOMEM;
    d->values = v;
    d->alloc = na;
  }
  char *k = gw_strndup(key, klen);
  if (!k)
    return GW_ERR_NOMEM;
  d->keys[d->n] = k;
  d->values[d->n] = *value;
  d->n++;
  *value = NULL;
  return GW_OK;
}

/* Length of the line ending at |p| ("\n", "\r\n" or end of input), 0 when
 * |p| is not at a line end. */
static size_t eol_len(const char *p, const char *end) {
  if (p < end && *p == '\n')
    return 1;
  if (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
    return 2;
  return 0;
}

static int syntax(gw_buf *err, const char *name, unsigned line, const char *what) {
  if (err)
    (void)gw_buf_printf(err, "%s:%u: %s", name, line, what);
  return GW_ERR_INVALID;
}

int gw_dotenv_parse(gw_dotenv *out, const char *data, size_t len, const char *name, gw_buf *err) {
  const char *p = data, *end = data + len;
  unsigned line = 1;
  int rc = GW_OK;
  gw_buf v;
  gw_buf_init(&v, GW_CONFIG_MAX_FILE_BYTES);

  const char *nul = memchr(data, '\0', len);
  if (nul) {
    for (const char *q = data; q < nul; q++)
      line += *q == '\n';
    rc = syntax(err, name, line, "NUL byte in file");
    goto fail;
  }

  while (p < end) {
    while (p < end && is_blank(*p))
      p++;
    size_t e = eol_len(p, end);
    if (e) {
      p += e;
      line++;
      continue;
    }
    if (p == end)
      break;
    if (*p == '#') {
      while (p < end && *p != '\n')
        p++;
      continue;
    }
    if (end - p > 7 && memcmp(p, "export", 6) == 0 && is_blank(p[6])) {
      p += 6;
      while (p < end && is_blank(*p))
        p++;
    }
    const char *key = p;
    if (p == end || !is_key_start(*p)) {
      rc = syntax(err, name, line, "expected KEY=VALUE");
      goto fail;
    }
    while (p < end && is_key_char(*p))
      p++;
    size_t klen = (size_t)(p - key);
    while (p < end && is_blank(*p))
      p++;
    if (p == end || *p != '=') {
      rc = syntax(err, name, line, "expected KEY=VALUE");
      goto fail;
    }
    p++;
    while (p < end && is_blank(*p))
      p++;

    unsigned start_line = line;
    gw_buf_reset(&v);
    if ((rc = gw_buf_append(&v, "", 0)) != GW_OK) /* v.data is never NULL below */
      goto fail;
    if (p < end && (*p == '"' || *p == '\'')) {
      char q = *p++;
      for (;;) {
        if (p == end) {
          rc = syntax(err, name, start_line, "unterminated quoted value");
          goto fail;
        }
        char c = *p;
        if (c == q) {
          p++;
          break;
        }
        if (q == '"' && c == '\\' && end - p >= 2) {
          char r;
          switch (p[1]) {
          case 'n': r = '\n'; break;
          case 't': r = '\t'; break;
          case 'r': r = '\r'; break;
          case '"': r = '"'; break;
          case '\\': r = '\\'; break;
          default: r = 0; break;
          }
          if (r) {
            rc = gw_buf_appendc(&v, r);
            p += 2;
          } else {
            rc = gw_buf_appendc(&v, c); /* unknown escape: kept as written */
            p++;
          }
        } else {
          line += c == '\n';
          rc = gw_buf_appendc(&v, c);
          p++;
        }
        if (rc != GW_OK)
          goto fail;
      }
      while (p < end && is_blank(*p))
        p++;
      if (p < end && *p == '#')
        while (p < end && *p != '\n')
          p++;
      if (p < end && !eol_len(p, end)) {
        rc = syntax(err, name, line, "unexpected text after quoted value");
        goto fail;
      }
    } else {
      const char *vs = p;
      while (p < end && *p != '\n')
        p++;
      const char *ve = p;
      if (ve > vs && ve[-1] == '\r')
        ve--;
      /* " #" starts a comment; a '#' inside a word ("a#b") does not. */
      for (const char *q = vs; q < ve; q++)
        if (*q == '#' && (q == vs || is_blank(q[-1]))) {
          ve = q;
          break;
        }
      while (ve > vs && is_blank(ve[-1]))
        ve--;
      if ((rc = gw_buf_append(&v, vs, (size_t)(ve - vs))) != GW_OK)
        goto fail;
    }
    char *value = gw_strndup(v.data, v.len);
    if (!value) {
      rc = GW_ERR_NOMEM;
      goto fail;
    }
    rc = dotenv_set(out, key, klen, &value);
    gw_free(value);
    if (rc != GW_OK)
      goto fail;
  }
  gw_buf_release(&v);
  return GW_OK;

fail:
  gw_buf_release(&v);
  gw_dotenv_release(out);
  if (rc == GW_ERR_TOOBIG)
    rc = syntax(err, name, line, "value too long");
  return rc;
}

int gw_dotenv_load(gw_dotenv *out, const char *path, gw_buf *err) {
  char *data;
  size_t len;
  int rc = gw_config_read_file(path, &data, &len, err);
  if (rc == GW_ERR_NOTFOUND)
    return GW_OK;
  if (rc != GW_OK)
    return rc;
  rc = gw_dotenv_parse(out, data, len, path, err);
  gw_free(data);
  return rc;
}

const char *gw_dotenv_get(const gw_dotenv *d, const char *key) {
  for (size_t i = 0; i < d->n; i++)
    if (strcmp(d->keys[i], key) == 0)
      return d->values[i];
  return NULL;
}

void gw_dotenv_release(gw_dotenv *d) {
  for (size_t i = 0; i < d->n; i++) {
    gw_free(d->keys[i]);
    gw_free(d->values[i]);
  }
  gw_free(d->keys);
  gw_free(d->values);
  memset(d, 0, sizeof *d);
}
