/* Capped growable buffer. */
#include "core/buf.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "core/status.h"

void gw_buf_init(gw_buf *b, size_t cap) {
  b->data = NULL;
  b->len = b->alloc = 0;
  b->cap = cap;
  b->arena = NULL;
}

void gw_buf_init_arena(gw_buf *b, size_t cap, struct gw_arena *a) {
  gw_buf_init(b, cap);
  b->arena = a;
}

void gw_buf_release(gw_buf *b) {
  if (!b->arena)
    gw_free(b->data);
  b->data = NULL;
  b->len = b->alloc = 0;
}

void gw_buf_reset(gw_buf *b) {
  b->len = 0;
  if (b->data)
    b->data[0] = '\0';
}

static int reserve(gw_buf *b, size_t extra) {
  if (extra > b->cap || b->len > b->cap - extra)
    return GW_ERR_TOOBIG;
  size_t need = b->len + extra + 1;
  if (need <= b->alloc)
    return GW_OK;
  size_t n = b->alloc ? b->alloc : 256;
  while (n < need)
    n *= 2;
  if (n > b->cap + 1)
    n = b->cap + 1;
  char *p;
  if (b->arena) {
    if (!(p = gw_arena_alloc(b->arena, n)))
      return GW_ERR_NOMEM;
    if (b->data)
      memcpy(p, b->data, b->len + 1);
  } else if (!(p = gw_realloc(b->data, n))) {
    return GW_ERR_NOMEM;
  }
  b->data = p;
  b->alloc = n;
  return GW_OK;
}

int gw_buf_reserve(gw_buf *b, size_t extra) {
  int rc = reserve(b, extra);
  if (rc == GW_OK && b->len == 0)
    b->data[0] = '\0';
  return rc;
}

int gw_buf_append_slow(gw_buf *b, const void *p, size_t n) {
  int rc = reserve(b, n);
  if (rc)
    return rc;
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return GW_OK;
}

int gw_buf_appends(gw_buf *b, const char *s) { return gw_buf_append(b, s, strlen(s)); }

int gw_buf_vprintf(gw_buf *b, const char *fmt, va_list ap) {
  va_list cp;
  va_copy(cp, ap);
  int n = vsnprintf(NULL, 0, fmt, cp);
  va_end(cp);
  if (n < 0)
    return GW_ERR_INVALID;
  int rc = reserve(b, (size_t)n);
  if (rc)
    return rc;
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
  return GW_OK;
}

int gw_buf_printf(gw_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = gw_buf_vprintf(b, fmt, ap);
  va_end(ap);
  return rc;
}

int gw_buf_append_json_chars(gw_buf *b, const char *s, size_t n) {
  size_t start = b->len, run = 0;
  int rc = GW_OK;
  for (size_t i = 0; rc == GW_OK && i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\')
      continue; /* copied with its run */
    if (i > run && (rc = gw_buf_append(b, s + run, i - run)) != GW_OK)
      break;
    run = i + 1;
    switch (c) {
    case '"': rc = gw_buf_append(b, "\\\"", 2); break;
    case '\\': rc = gw_buf_append(b, "\\\\", 2); break;
    case '\n': rc = gw_buf_append(b, "\\n", 2); break;
    case '\r': rc = gw_buf_append(b, "\\r", 2); break;
    case '\t': rc = gw_buf_append(b, "\\t", 2); break;
    default: rc = gw_buf_printf(b, "\\u%04x", c);
    }
  }
  if (rc == GW_OK && n > run)
    rc = gw_buf_append(b, s + run, n - run);
  if (rc != GW_OK && b->data) {
    b->len = start;
    b->data[start] = '\0';
  }
  return rc;
}

int gw_buf_append_json_string(gw_buf *b, const char *s, size_t n) {
  size_t start = b->len;
  int rc = gw_buf_appendc(b, '"');
  if (rc == GW_OK)
    rc = gw_buf_append_json_chars(b, s, n);
  if (rc == GW_OK)
    rc = gw_buf_appendc(b, '"');
  if (rc != GW_OK && b->data) {
    b->len = start;
    b->data[start] = '\0';
  }
  return rc;
}

void gw_buf_consume(gw_buf *b, size_t n) {
  if (n >= b->len) {
    gw_buf_reset(b);
    return;
  }
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
  b->data[b->len] = '\0';
}
