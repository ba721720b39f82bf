/* Incremental, capped server-sent-events reader. */
#include "pipeline/sse.h"

#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/status.h"

/* The unparsed input may hold a partial event plus what curl delivered
 * while the sink was full (one write at a time). */
static size_t in_cap(size_t cap) { return 2 * cap + (64 << 10); }

void gw_sse_reader_init(gw_sse_reader *r, size_t cap) {
  memset(r, 0, sizeof(*r));
  r->cap = cap;
  gw_buf_init(&r->in, in_cap(cap));
  gw_buf_init(&r->data, cap);
}

void gw_sse_reader_release(gw_sse_reader *r) {
  gw_buf_release(&r->in);
  gw_buf_release(&r->data);
}

int gw_sse_reader_feed(gw_sse_reader *r, const char *p, size_t n) {
  if (r->pos) {
    gw_buf_consume(&r->in, r->pos);
    r->pos = 0;
  }
  return gw_buf_append(&r->in, p, n);
}

/* Bytes before the first CR or LF of |p| (|n| when none): eight at a time.
 * In ((x - ones) & ~x & highs) a borrow only runs upwards from a zero byte,
 * so on little-endian hosts the lowest flagged byte is a real line end. */
static size_t line_len(const char *p, size_t n) {
  size_t i = 0;
#if defined(__SSE2__)
  /* 16 at a time: an event's data line is a whole JSON chunk */
  const __m128i lf16 = _mm_set1_epi8('\n'), cr16 = _mm_set1_epi8('\r');
  for (; n - i >= 16; i += 16) {
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
    unsigned m =
        (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(x, lf16), _mm_cmpeq_epi8(x, cr16)));
    if (m)
      return i + (unsigned)__builtin_ctz(m);
  }
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  for (; n - i >= 8; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    uint64_t lf = w ^ (ones * '\n'), cr = w ^ (ones * '\r');
    uint64_t m = (((lf - ones) & ~lf) | ((cr - ones) & ~cr)) & highs;
    if (m)
      return i + ((size_t)__builtin_ctzll(m) >> 3);
  }
#endif
  while (i < n && p[i] != '\n' && p[i] != '\r')
    i++;
  return i;
}

static void reset_event(gw_sse_reader *r) {
  gw_buf_reset(&r->data);
  r->event[0] = '\0';
  r->has_data = false;
}

int gw_sse_reader_next(gw_sse_reader *r, gw_sse_event *ev) {
  if (r->returned) {
    reset_event(r);
    r->returned = false;
  }
  for (;;) {
    size_t left = r->in.len - r->pos;
    if (left == 0)
      return 0;
    const char *p = r->in.data + r->pos;
    if (r->skip_lf) {
      r->skip_lf = false;
      if (p[0] == '\n') {
        r->pos++;
        continue;
      }
    }
    size_t i = line_len(p, left);
    if (i == left) /* no line end yet */
      return left > r->cap ? GW_ERR_TOOBIG : 0;
    size_t eol = 1;
    if (p[i] == '\r') {
      if (i + 1 < left) {
        if (p[i + 1] == '\n')
          eol = 2;
      } else {
        r->skip_lf = true; /* its LF may come with the next bytes */
      }
    }
    r->pos += i + eol;

    if (i == 0) { /* blank line: the event ends */
      if (!r->has_data) {
        reset_event(r);
        continue;
      }
      if (r->data.len && r->data.data[r->data.len - 1] == '\n')
        r->data.data[--r->data.len] = '\0';
      ev->event = r->event;
      ev->data = r->data.data ? r->data.data : "";
      ev->len = r->data.len;
      ev->done = ev->len == 6 && memcmp(ev->data, "[DONE]", 6) == 0;
      r->returned = true;
      return 1;
    }
    if (p[0] == ':') /* comment */
      continue;
    const char *colon = memchr(p, ':', i);
    size_t name_len = colon ? (size_t)(colon - p) : i;
    const char *v = colon ? colon + 1 : p + i;
    if (v < p + i && *v == ' ')
      v++;
    size_t vlen = (size_t)(p + i - v);
    if (name_len == 4 && memcmp(p, "data", 4) == 0) {
      if (r->data.len + vlen + 1 > r->cap)
        return GW_ERR_TOOBIG;
      int rc = gw_buf_append(&r->data, v, vlen);
      if (rc == GW_OK)
        rc = gw_buf_appendc(&r->data, '\n');
      if (rc != GW_OK)
        return rc;
      r->has_data = true;
    } else if (name_len == 5 && memcmp(p, "event", 5) == 0) {
      size_t k = vlen < sizeof(r->event) - 1 ? vlen : sizeof(r->event) - 1;
      memcpy(r->event, v, k);
      r->event[k] = '\0';
    } /* id, retry and unknown fields: ignored */
  }
}

/* memmem's general search was ~480 instructions for each streamed event; here
 * a quote, an 'e' after it and a quote six bytes on are tested 16 positions
 * at a time, and only such a candidate is compared whole. */
bool gw_sse_names_error(const char *p, size_t n) {
  static const char needle[] = "\"error\"";
  size_t i = 0;
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"'), e = _mm_set1_epi8('e');
  for (; i + 6 + 16 <= n; i += 16) {
    __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
    __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(p + i + 1));
    __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(p + i + 6));
    unsigned m = (unsigned)_mm_movemask_epi8(_mm_and_si128(
        _mm_and_si128(_mm_cmpeq_epi8(a, quote), _mm_cmpeq_epi8(b, e)), _mm_cmpeq_epi8(c, quote)));
    for (; m; m &= m - 1)
      if (memcmp(p + i + (unsigned)__builtin_ctz(m), needle, 7) == 0)
        return true;
  }
#endif
  for (; i + 7 <= n; i++)
    if (p[i] == '"' && memcmp(p + i, needle, 7) == 0)
      return true;
  return false;
}
