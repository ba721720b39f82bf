/* Capped growable buffer. */
#include "core/buf.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
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
#if defined(__SSE2__)
static inline unsigned special16(__m128i x) {
  const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
                space = _mm_set1_epi8(0x20), minus1 = _mm_set1_epi8(-1);
  /* 0 <= x < 0x20 as signed bytes: the controls, not the bytes >= 0x80 */
  __m128i ctl = _mm_and_si128(_mm_cmplt_epi8(x, space), _mm_cmpgt_epi8(x, minus1));
  __m128i hit =
      _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)), ctl);
  return (unsigned)_mm_movemask_epi8(hit);
}
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#define BUF_RUN_AVX2 1
/* The same 32 bytes a step (CPUs with AVX2, asked at run time): where a
 * long run (a prompt) stops, from |s| with at least 32 bytes left. */
__attribute__((target("avx2"))) static size_t plain_run_avx2(const unsigned char *s, size_t n) {
  const __m256i quote = _mm256_set1_epi8('"'), bslash = _mm256_set1_epi8('\\'),
                space = _mm256_set1_epi8(0x20), minus1 = _mm256_set1_epi8(-1);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(s + i));
    __m256i lt = _mm256_and_si256(_mm256_cmpgt_epi8(space, x), _mm256_cmpgt_epi8(x, minus1));
    __m256i hit = _mm256_or_si256(
        _mm256_or_si256(_mm256_cmpeq_epi8(x, quote), _mm256_cmpeq_epi8(x, bslash)), lt);
    unsigned m = (unsigned)_mm256_movemask_epi8(hit);
    if (m)
      return i + (size_t)__builtin_ctz(m);
  }
  return i;
}
#endif

static size_t plain_run(const unsigned char *s, size_t n) {
  size_t i = 0;
#if defined(BUF_RUN_AVX2)
  if (n >= 128 && __builtin_cpu_supports("avx2")) {
    i = plain_run_avx2(s, n);
    if (i + 32 <= n) /* it stopped at a byte to escape */
      return i;
  }
#endif
#if defined(__SSE2__)
  for (; i + 16 <= n; i += 16) {
    unsigned m = special16(_mm_loadu_si128((const __m128i *)(const void *)(s + i)));
    if (m)
      return i + (size_t)__builtin_ctz(m);
  }
#endif
  while (i < n && s[i] >= 0x20 && s[i] != '"' && s[i] != '\\')
    i++;
  return i;
}

size_t gw_json_put_escape(char *o, unsigned char ch) {
  static const char hexd[] = "0123456789abcdef";
  o[0] = '\\';
  switch (ch) {
  case '"': o[1] = '"'; return 2;
  case '\\': o[1] = '\\'; return 2;
  case '\n': o[1] = 'n'; return 2;
  case '\r': o[1] = 'r'; return 2;
  case '\t': o[1] = 't'; return 2;
  }
  if (ch >= 0x80) {
    memcpy(o + 1, "ufffd", 5);
  } else {
    memcpy(o + 1, "u00", 3);
    o[4] = hexd[ch >> 4];
    o[5] = hexd[ch & 15];
  }
  return 6;
}

/* Room for the text as it is is made once; plain runs are copied straight
 * into it and escapes written in place, each first making sure of room for
 * itself and the rest of the text as it is (exactly: a cap that holds the
 * output is enough). A 100 KB prompt to a translated provider used to go
 * through a call per run and per escape and grow the buffer by doubling. */
int gw_buf_append_json_chars(gw_buf *b, const char *s, size_t n) {
  size_t start = b->len;
  int rc = reserve(b, n);
  if (rc != GW_OK)
    return rc;
  const unsigned char *u = (const unsigned char *)s, *end = u + n;
  char *o = b->data + b->len;
  for (;;) {
    size_t run = plain_run(u, (size_t)(end - u));
    memcpy(o, u, run);
    o += run;
    u += run;
    if (u == end)
      break;
    char e[6];
    size_t elen = gw_json_put_escape(e, *u++);
    size_t used = (size_t)(o - b->data);
    if (b->alloc - 1 - used < (size_t)(end - u) + elen) {
      b->len = used;
      if ((rc = reserve(b, (size_t)(end - u) + elen)) != GW_OK) {
        b->len = start;
        b->data[start] = '\0';
        return rc;
      }
      o = b->data + b->len;
    }
    memcpy(o, e, elen);
    o += elen;
  }
  b->len = (size_t)(o - b->data);
  b->data[b->len] = '\0';
  return GW_OK;
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
