/* Capped growable buffer. */
#include "core/buf.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

/* The length of the run at |s| that JSON takes as it is: no quote,
 * backslash or control byte (bytes from 0x80 up pass: UTF-8 is copied). */
static size_t plain_run(const unsigned char *s, size_t n) {
  size_t i = 0;
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
                space = _mm_set1_epi8(0x20), minus1 = _mm_set1_epi8(-1);
  for (; i + 16 <= n; i += 16) {
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
    /* 0 <= x < 0x20 as signed bytes: the controls, not the bytes >= 0x80 */
    __m128i ctl = _mm_and_si128(_mm_cmplt_epi8(x, space), _mm_cmpgt_epi8(x, minus1));
    __m128i hit =
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)), ctl);
    unsigned m = (unsigned)_mm_movemask_epi8(hit);
    if (m)
      return i + (size_t)__builtin_ctz(m);
  }
#endif
  while (i < n && s[i] >= 0x20 && s[i] != '"' && s[i] != '\\')
    i++;
  return i;
}

int gw_buf_append_json_chars(gw_buf *b, const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  size_t start = b->len, i = 0;
  int rc = GW_OK;
  while (rc == GW_OK && i < n) {
    size_t run = plain_run(u + i, n - i);
    if (run) { /* copied in one go */
      rc = gw_buf_append(b, s + i, run);
      i += run;
      continue;
    }
    switch (u[i]) {
    case '"': rc = gw_buf_append(b, "\\\"", 2); break;
    case '\\': rc = gw_buf_append(b, "\\\\", 2); break;
    case '\n': rc = gw_buf_append(b, "\\n", 2); break;
    case '\r': rc = gw_buf_append(b, "\\r", 2); break;
    case '\t': rc = gw_buf_append(b, "\\t", 2); break;
    default: {
      static const char hexd[] = "0123456789abcdef";
      char e[6] = {'\\', 'u', '0', '0', hexd[u[i] >> 4], hexd[u[i] & 15]};
      rc = gw_buf_append(b, e, sizeof e);
    }
    }
    i++;
  }
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
