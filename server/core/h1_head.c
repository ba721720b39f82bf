/* The HTTP/1.1 head fast paths (see h1_head.h). Its contract is to
 * agree with http_parser on every head it accepts: tests/unit/transcoder/
 * test_h1_head.c and tests/fuzz/fuzz_h1_head.c parse the same bytes both ways
 * and compare. */
#include "core/h1_head.h"

#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* RFC 9110 tchar: the bytes of a header name. */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
    ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
    ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

/* Skips the bytes in [lo, 0x7e], eight at a time (lo <= 0x21), and returns
 * where a byte outside that range is, or the eight-byte block holding it:
 * the byte loops after it finish. Any byte under lo sets its high bit in
 * x - lo (the borrow test of "haszero"), any from 0x7f up in x | (x + 1). */
static const unsigned char *skip_printable(const unsigned char *p, const unsigned char *end,
                                           unsigned lo) {
  const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  while (end - p >= 8) {
    uint64_t x;
    memcpy(&x, p, 8);
    if ((((x - ones * lo) & ~x) | x | (x + ones)) & highs)
      break;
    p += 8;
  }
  return p;
}

#if defined(__SSE2__)
/* Where the first byte of |p| that is not a letter, a digit or '-' is, 16
 * bytes at a time while 16 remain; the tchar loop after it finishes. Header
 * names are almost always made of those bytes alone. */
static const unsigned char *skip_name(const unsigned char *p, const unsigned char *end) {
  const __m128i fold = _mm_set1_epi8(0x20), dash = _mm_set1_epi8('-');
  const __m128i to_a = _mm_set1_epi8((char)(0x80 - 'a')), to_0 = _mm_set1_epi8((char)(0x80 - '0'));
  const __m128i n26 = _mm_set1_epi8((char)(-128 + 26)), n10 = _mm_set1_epi8((char)(-128 + 10));
  while (end - p >= 16) {
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
    /* in-range tests as signed compares: the range moved to start at -128 */
    __m128i alpha = _mm_cmplt_epi8(_mm_add_epi8(_mm_or_si128(x, fold), to_a), n26);
    __m128i digit = _mm_cmplt_epi8(_mm_add_epi8(x, to_0), n10);
    __m128i ok = _mm_or_si128(_mm_or_si128(alpha, digit), _mm_cmpeq_epi8(x, dash));
    unsigned bad = ~(unsigned)_mm_movemask_epi8(ok) & 0xffffu;
    if (bad)
      return p + __builtin_ctz(bad);
    p += 16;
  }
  return p;
}

/* Where the first byte of |p| outside [0x20, 0x7e] is (a tab too, which the
 * byte loop after it takes), 16 bytes at a time while 16 remain. */
static const unsigned char *skip_value(const unsigned char *p, const unsigned char *end) {
  const __m128i sp = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f);
  while (end - p >= 16) {
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
    /* signed: bytes from 0x80 up are negative, so under 0x20 too */
    __m128i bad = _mm_or_si128(_mm_cmplt_epi8(x, sp), _mm_cmpeq_epi8(x, del));
    unsigned m = (unsigned)_mm_movemask_epi8(bad);
    if (m)
      return p + __builtin_ctz(m);
    p += 16;
  }
  return p;
}
#else
static const unsigned char *skip_name(const unsigned char *p, const unsigned char *end) {
  (void)end;
  return p;
}

static const unsigned char *skip_value(const unsigned char *p, const unsigned char *end) {
  return skip_printable(p, end, 0x20);
}
#endif

/* Compares |n| bytes of |s| with |lit|, ASCII case folded. |lit| holds only
 * lower-case letters, digits and '-'; |s| only the bytes of a header name
 * (tchar) or value (a tab, 0x20-0x7e). For those, c | 0x20 equals such a
 * literal byte exactly when c is that byte or its upper case: the other byte
 * that folds onto '-' or a digit is a control byte (0x0d, 0x10-0x19), which
 * neither holds. So eight bytes compare at a time. */
static int eq_nocase(const unsigned char *s, const char *lit, size_t n) {
  const uint64_t fold = 0x2020202020202020ull;
  uint64_t a, b;
  if (n >= 8) {
    for (size_t i = 0; i + 8 <= n; i += 8) {
      memcpy(&a, s + i, 8);
      memcpy(&b, lit + i, 8);
      if ((a | fold) != b)
        return 0;
    }
    memcpy(&a, s + n - 8, 8); /* the last eight, overlapping */
    memcpy(&b, lit + n - 8, 8);
    return (a | fold) == b;
  }
  for (size_t i = 0; i < n; i++)
    if ((s[i] | 0x20) != (unsigned char)lit[i])
      return 0;
  return 1;
}

#define LIT_IS(s, n, lit) ((n) == sizeof(lit) - 1 && eq_nocase((s), (lit), sizeof(lit) - 1))

/* The method and its space; NULL for any other (left to http_parser). */
static const char *method_of(const unsigned char *p, size_t len, size_t *skip) {
  static const struct {
    const char *name;
    size_t len;
  } m[] = {{"POST ", 5},   {"GET ", 4},     {"HEAD ", 5}, {"PUT ", 4},
           {"DELETE ", 7}, {"OPTIONS ", 8}, {"PATCH ", 6}};
  static const char *const names[] = {"POST", "GET", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"};
  for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
    if (len >= m[i].len && memcmp(p, m[i].name, m[i].len) == 0) {
      *skip = m[i].len;
      return names[i];
    }
  return NULL;
}

/* The header lines from |*pp| through the blank line into |h|; 1, or 0 to
 * decline. */
static int parse_fields(const unsigned char **pp, const unsigned char *end, gw_h1_head *h) {
  const unsigned char *p = *pp;
  h->n_fields = 0;
  h->content_length = -1;
  h->keepalive = 1;
  for (;;) {
    if (p >= end)
      return 0; /* incomplete */
    if (*p == '\r') {
      if (end - p < 2 || p[1] != '\n')
        return 0;
      *pp = p + 2;
      return 1;
    }
    if (h->n_fields == GW_H1_FAST_FIELDS)
      return 0;
    const unsigned char *n = p;
    p = skip_name(p, end);
    while (p < end && tchar[*p])
      p++;
    if (p == n || p >= end || *p != ':')
      return 0; /* empty name, a blank before ':', obs-fold, bare LF... */
    size_t nlen = (size_t)(p - n);
    p++;
    while (p < end && (*p == ' ' || *p == '\t'))
      p++;
    const unsigned char *v = p;
    p = skip_value(p, end);
    while (p < end && ((*p >= 0x20 && *p < 0x7f) || *p == '\t'))
      p++;
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
      return 0;
    size_t vlen = (size_t)(p - v); /* trailing blanks kept, as http_parser keeps them */
    p += 2;
    switch (nlen) {
    case 7:
      if (LIT_IS(n, nlen, "upgrade"))
        return 0;
      break;
    case 10:
      if (LIT_IS(n, nlen, "connection")) {
        if (LIT_IS(v, vlen, "close"))
          h->keepalive = 0;
        else if (!LIT_IS(v, vlen, "keep-alive"))
          return 0; /* token lists, "upgrade": http_parser's */
      }
      break;
    case 14:
      if (LIT_IS(n, nlen, "content-length")) {
        if (h->content_length >= 0 || vlen == 0 || vlen > 15)
          return 0;
        int64_t cl = 0;
        for (size_t i = 0; i < vlen; i++) {
          if (v[i] < '0' || v[i] > '9')
            return 0;
          cl = cl * 10 + (v[i] - '0');
        }
        h->content_length = cl;
      }
      break;
    case 16:
      if (LIT_IS(n, nlen, "proxy-connection"))
        return 0;
      break;
    case 17:
      if (LIT_IS(n, nlen, "transfer-encoding"))
        return 0;
      break;
    default: break;
    }
    gw_h1_field *f = &h->fields[h->n_fields++];
    f->name = (const char *)n;
    f->nlen = nlen;
    f->value = (const char *)v;
    f->vlen = vlen;
  }
}

int gw_h1_parse_head(const char *in, size_t len, gw_h1_head *h) {
  const unsigned char *start = (const unsigned char *)in, *p = start, *end = start + len;
  size_t skip;
  if (!(h->method = method_of(p, len, &skip)))
    return 0;
  p += skip;
  /* origin-form target: printable ASCII up to the space */
  const unsigned char *t = p;
  if (p >= end || *p != '/')
    return 0;
  p = skip_printable(p, end, 0x21);
  while (p < end && (*p > 0x20 && *p < 0x7f))
    p++;
  if (p >= end || *p != ' ')
    return 0;
  h->target = (const char *)t;
  h->target_len = (size_t)(p - t);
  p++;
  if (end - p < 10 || memcmp(p, "HTTP/1.1\r\n", 10) != 0)
    return 0;
  p += 10;
  h->status = 0;
  if (!parse_fields(&p, end, h))
    return 0;
  h->head_len = (size_t)(p - start);
  return 1;
}

int gw_h1_parse_response(const char *in, size_t len, gw_h1_head *h) {
  const unsigned char *start = (const unsigned char *)in, *p = start, *end = start + len;
  /* "HTTP/1.1 DDD reason\r\n": a final status with a body of known length */
  if (len < 14 || memcmp(p, "HTTP/1.1 ", 9) != 0 || p[9] < '2' || p[9] > '5' || p[10] < '0' ||
      p[10] > '9' || p[11] < '0' || p[11] > '9' || p[12] != ' ')
    return 0;
  h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
  if (h->status == 204 || h->status == 304)
    return 0;
  p += 13;
  while (p < end && ((*p >= 0x20 && *p < 0x7f) || *p == '\t'))
    p++;
  if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
    return 0;
  p += 2;
  h->method = NULL;
  h->target = NULL;
  h->target_len = 0;
  if (!parse_fields(&p, end, h) || h->content_length < 0)
    return 0; /* read to the close: http_parser's */
  h->head_len = (size_t)(p - start);
  return 1;
}
