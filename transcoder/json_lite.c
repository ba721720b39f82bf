/* The arena-DOM JSON parser (contract in json_lite.h): a recursive-descent
 * reader over a bounded byte range. Children of the container being read
 * collect on one scratch stack (heap, grown by doubling) and are copied into
 * the arena, exactly sized, when the container closes. */
#include "transcoder/json_lite.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/status.h"

/* Objects up to this many members are checked for duplicate keys pairwise;
 * bigger ones by sorting (O(n log n) whatever the keys). */
#define DUP_PAIRWISE_MAX 16
#define STACK_INLINE 64

struct slot {
  gw_jmember m;
  const unsigned char *at; /* where the key starts, for error positions */
};

struct parser {
  const unsigned char *start, *p, *end;
  gw_arena *arena;
  int max_depth;
  unsigned flags;
  struct slot *stack;
  size_t top, cap;
  const unsigned char *err_at;
  const char *err_text;
  struct slot inline_stack[STACK_INLINE];
};

static int syntax(struct parser *P, const unsigned char *at, const char *text) {
  P->err_at = at;
  P->err_text = text;
  return GW_ERR_INVALID;
}

static int nomem(struct parser *P) {
  P->err_at = P->p;
  P->err_text = "out of memory";
  return GW_ERR_NOMEM;
}

static void skip_ws(struct parser *P) {
  const unsigned char *p = P->p, *end = P->end;
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
    p++;
  P->p = p;
}

static int push(struct parser *P, const struct slot *s) {
  if (P->top == P->cap) {
    size_t ncap = P->cap * 2;
    struct slot *n;
    if (P->stack == P->inline_stack) {
      if (!(n = gw_malloc(ncap * sizeof *n)))
        return nomem(P);
      memcpy(n, P->stack, P->top * sizeof *n);
    } else if (!(n = gw_realloc(P->stack, ncap * sizeof *n))) {
      return nomem(P);
    }
    P->stack = n;
    P->cap = ncap;
  }
  P->stack[P->top++] = *s;
  return GW_OK;
}

/* ------------------------------------------------------------ strings */

/* A hex digit's value plus one; 0 for any other byte. */
static const unsigned char hex_value1[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16};

/* The four hex digits at |p| (a \uXXXX escape, one per character of text
 * that Python's json.dumps sent): four look-ups, no branch per digit. */
static inline __attribute__((always_inline)) int hex4(const unsigned char *p, uint32_t *out) {
  int a = hex_value1[p[0]] - 1, b = hex_value1[p[1]] - 1, c = hex_value1[p[2]] - 1,
      d = hex_value1[p[3]] - 1;
  if ((a | b | c | d) < 0)
    return -1;
  *out = (uint32_t)(a << 12 | b << 8 | c << 4 | d);
  return 0;
}

static size_t put_utf8(unsigned char *d, uint32_t cp) {
  if (cp < 0x80) {
    d[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    d[0] = (unsigned char)(0xc0 | (cp >> 6));
    d[1] = (unsigned char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    d[0] = (unsigned char)(0xe0 | (cp >> 12));
    d[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    d[2] = (unsigned char)(0x80 | (cp & 0x3f));
    return 3;
  }
  d[0] = (unsigned char)(0xf0 | (cp >> 18));
  d[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
  d[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
  d[3] = (unsigned char)(0x80 | (cp & 0x3f));
  return 4;
}

/* Copies [s, e) to |*dp| up to the first backslash and returns where that
 * is (|e| when there is none), |*dp| moved past what was copied: the run
 * between two escapes, without a call for the search and one for the copy
 * (a markdown text has a "\n" every line). 16 bytes a step, each stored
 * whole: the output never runs ahead of the input (an escape is longer than
 * what it stands for) and has room for all of it, so a store of the 16
 * bytes just read stays in that room. */
static const unsigned char *copy_to_backslash(const unsigned char *s, const unsigned char *e,
                                              unsigned char **dp) {
  unsigned char *d = *dp;
#if defined(__SSE2__)
  const __m128i bslash = _mm_set1_epi8('\\');
  for (; e - s >= 16; s += 16, d += 16) {
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)s);
    _mm_storeu_si128((__m128i *)(void *)d, x);
    unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, bslash));
    if (m) {
      unsigned k = (unsigned)__builtin_ctz(m);
      *dp = d + k;
      return s + k;
    }
  }
#endif
  while (s < e && *s != '\\')
    *d++ = *s++;
  *dp = d;
  return s;
}

/* Decodes the escapes of the already-delimited string body [s, e) into |d|
 * (room for e - s bytes); returns the length written or -1 with the error
 * set. The body's raw bytes were validated by the caller. */
static long unescape(struct parser *P, const unsigned char *s, const unsigned char *e,
                     unsigned char *d, int is_key) {
  unsigned char *d0 = d, c;
  while (s < e) {
    s = copy_to_backslash(s, e, &d);
    if (s == e)
      break;
  escape:
    /* s at a backslash; the scan guaranteed one more byte before |e|. */
    c = s[1];
    switch (c) {
    case '"':
      *d++ = '"';
      s += 2;
      continue;
    case '\\':
      *d++ = '\\';
      s += 2;
      continue;
    case '/':
      *d++ = '/';
      s += 2;
      continue;
    case 'b':
      *d++ = '\b';
      s += 2;
      continue;
    case 'f':
      *d++ = '\f';
      s += 2;
      continue;
    case 'n':
      *d++ = '\n';
      s += 2;
      continue;
    case 'r':
      *d++ = '\r';
      s += 2;
      continue;
    case 't':
      *d++ = '\t';
      s += 2;
      continue;
    case 'u': break;
    default: syntax(P, s, "invalid escape"); return -1;
    }
    uint32_t cp, lo;
    if (e - s < 6 || hex4(s + 2, &cp) != 0) {
      syntax(P, s, "invalid \\u escape");
      return -1;
    }
    if (cp >= 0xdc00 && cp <= 0xdfff) {
      syntax(P, s, "invalid Unicode: lone low surrogate");
      return -1;
    }
    if (cp >= 0xd800 && cp <= 0xdbff) {
      if (e - s < 12 || s[6] != '\\' || s[7] != 'u' || hex4(s + 8, &lo) != 0 || lo < 0xdc00 ||
          lo > 0xdfff) {
        syntax(P, s, "invalid Unicode: unpaired high surrogate");
        return -1;
      }
      cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
      s += 12;
    } else {
      if (cp == 0 && (is_key || !(P->flags & GW_JSON_LITE_ALLOW_NUL))) {
        syntax(P, s, is_key ? "\\u0000 is not allowed in a key" : "\\u0000 is not allowed");
        return -1;
      }
      s += 6;
    }
    d += put_utf8(d, cp);
    if (s < e && *s == '\\')
      goto escape; /* \uXXXX after \uXXXX: no search for the backslash */
  }
  return (long)(d - d0);
}

/* Bytes that end a plain run inside a string: '"', '\\', controls, and
 * non-ASCII (validated as UTF-8 one sequence at a time). */
/* Reads the string at P->p (its opening quote) into the arena; an object
 * key (|is_key|) never holds U+0000, so keys are plain C strings. */
static int parse_string(struct parser *P, const char **out, size_t *out_len, int is_key) {
  const unsigned char *s = P->p + 1, *q = s, *end = P->end;
  int esc = 0;
  for (;;) {
    q = gw_json_skip_plain(q, end);
    if (q >= end)
      return syntax(P, end, "unexpected end of input in a string");
    unsigned char c = *q;
    if (c == '"')
      break;
    if (c == '\\') {
      if (end - q < 2)
        return syntax(P, end, "unexpected end of input in a string");
      esc = 1;
      q += 2;
      /* \uXXXX after \uXXXX (every character of a language other than
       * English, as Python's json.dumps writes them): on to the next
       * without going back to the scan, while the four bytes are ones the
       * scan would pass over (no quote, backslash or control); unescape
       * checks them */
      uint32_t w;
      while (q[-1] == 'u' && end - q >= 6 && q[4] == '\\' &&
             (memcpy(&w, q, 4), !(gw_json_special_bytes(w) & 0x80808080u)))
        q += 6;
    } else if (c < 0x20) {
      return syntax(P, q, "control character in a string");
    } else if (c >= 0x80) {
      /* text in a language other than English: checked 16 bytes a step
       * where the CPU can, else (or where that stops at once) a run of
       * non-ASCII characters one at a time, without the scan */
      const unsigned char *t = gw_json_skip_text(q, end);
      if (t != q) {
        q = t;
        continue;
      }
      do {
        size_t n = gw_json_utf8_seq(q, (size_t)(end - q));
        if (!n)
          return syntax(P, q, "invalid UTF-8");
        q += n;
      } while (q < end && *q >= 0x80);
    } else {
      q++;
    }
  }
  size_t span = (size_t)(q - s);
  unsigned char *d = gw_arena_alloc(P->arena, span + 1);
  if (!d)
    return nomem(P);
  size_t n = span;
  if (esc) {
    long r = unescape(P, s, q, d, is_key);
    if (r < 0)
      return GW_ERR_INVALID;
    n = (size_t)r;
  } else if (span >= 8 && span <= 16) { /* most keys and short values: no call */
    memcpy(d, s, 8);
    memcpy(d + span - 8, s + span - 8, 8);
  } else {
    memcpy(d, s, span);
  }
  d[n] = '\0';
  *out = (const char *)d;
  *out_len = n;
  P->p = q + 1;
  return GW_OK;
}

/* ------------------------------------------------------------ values */

static int parse_value(struct parser *P, gw_jval *v, int depth);

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* One digit into the significand: leading zeros do not count; past 19
 * significant digits (what a uint64_t holds) |sig| only grows (no fast
 * value). */
#define TAKE_DIGIT(c)                                                                              \
  do {                                                                                             \
    if (m || (c) != '0') {                                                                         \
      if (++sig <= 19)                                                                             \
        m = m * 10 + (uint64_t)((c) - '0');                                                        \
    }                                                                                              \
  } while (0)

/* Eight digit characters at |p| as their value, 8 bytes at a time (an
 * embedding's floats have 8-10 fraction digits): 0 if any of them is not a
 * digit. Bytes are in text order from the low end of the word. */
static int eight_digits(const unsigned char *p, uint32_t *value) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  uint64_t w;
  memcpy(&w, p, sizeof w);
  /* each byte 0x30..0x39: high nibble 3, and adding 6 keeps it 3 */
  if ((((w & 0xf0f0f0f0f0f0f0f0u) | (((w + 0x0606060606060606u) & 0xf0f0f0f0f0f0f0f0u) >> 4))) !=
      0x3333333333333333u)
    return 0;
  w &= 0x0f0f0f0f0f0f0f0fu;                                  /* eight digit values   */
  w = (w * (1 + (10 << 8))) >> 8;                            /* pairs: 10a + b       */
  w = ((w & 0x00ff00ff00ff00ffu) * (1 + (100 << 16))) >> 16; /* fours      */
  *value = (uint32_t)(((w & 0x0000ffff0000ffffu) * (1 + (10000ull << 32))) >> 32);
  return 1;
#else
  (void)p;
  (void)value;
  return 0;
#endif
}

/* How many '0' characters the eight digits at |p| start with (not all '0'). */
static int leading_zeros(const unsigned char *p) {
  uint64_t w;
  memcpy(&w, p, sizeof w);
  return __builtin_ctzll(w & 0x0f0f0f0f0f0f0f0fu) / 8;
}

/* For a significand of 16 to 19 digits, the double parse_number makes of it
 * is two roundings off the decimal's value (of the significand to a double,
 * then of the product or quotient by an exact power of ten):
 * within 2.5 units in the last place of the correctly rounded double that
 * strtod finds, so (float)d is (float) of that double unless a point halfway
 * between two floats is that near. Between 1e-30 and 1e30 floats are normal
 * and such a point is a double whose low 29 bits are 1 followed by 28 zeros;
 * 8 units of margin either side. Floats printed with 17 digits (Python's
 * repr of a float32 widened to a double, as vLLM and other Python servers
 * write embeddings) sit next to a float, far from any halfway point, and
 * take this path. */
static int float_is_certain(double d) {
  uint64_t bits;
  memcpy(&bits, &d, sizeof bits);
  uint32_t low = (uint32_t)(bits & 0x1fffffffu);
  return d >= 1e-30 && d <= 1e30 && low - (0x10000000u - 8) > 16;
}

/* The float of the decimal m * 10^e10 (|sig| significant digits in |m|,
 * negative when |neg|) where it is found without strtod: Clinger's fast
 * path, with float_is_certain past 15 digits. 0 when it is not. */
static inline int float_of(uint64_t m, int sig, long e10, int neg, float *out) {
  if (sig > 19 || e10 < -22 || e10 > 22)
    return 0;
  double d = m == 0 ? 0.0 : e10 >= 0 ? (double)m * pow10_exact[e10] : (double)m / pow10_exact[-e10];
  if (sig > 15 && !float_is_certain(d))
    return 0;
  *out = (float)(neg ? -d : d);
  return 1;
}

/* Scans a number and, for one with a fraction or an exponent whose float
 * it can find without strtod (fast_double's range, or float_is_certain's),
 * computes it on the way (GW_JVAL_NUM_F32): an embedding's floats are then
 * read once. Integers are left to gw_json_lite_int64 and carry no float. */
static int parse_number(struct parser *P, gw_jval *v) {
  const unsigned char *p = P->p, *end = P->end, *start = p;
  unsigned flags = GW_JVAL_NUM_INT;
  if (*p == '-') {
    flags |= GW_JVAL_NUM_NEG;
    p++;
  }
  if (p >= end || *p < '0' || *p > '9')
    return syntax(P, p, "invalid number");
  const unsigned char *digits = p;
  if (*p == '0')
    p++;
  else
    while (p < end && *p >= '0' && *p <= '9')
      p++;
  if (p < end && (*p == '.' || *p == 'e' || *p == 'E')) {
    flags &= ~(unsigned)GW_JVAL_NUM_INT;
    uint64_t m = 0;
    int sig = 0;
    long e10 = 0;
    for (const unsigned char *q = digits; q < p; q++)
      TAKE_DIGIT(*q);
    if (*p == '.') {
      if (++p >= end || *p < '0' || *p > '9')
        return syntax(P, p, "invalid number");
      uint32_t eight;
      while (end - p >= 8 && eight_digits(p, &eight)) {
        if (m) {
          sig += 8;
          if (sig <= 19) /* past 19 |m| keeps its digits (and stays non-zero) */
            m = m * 100000000u + eight;
        } else if (eight) {
          sig = 8 - leading_zeros(p);
          m = eight;
        }
        e10 -= 8;
        p += 8;
      }
      for (; p < end && *p >= '0' && *p <= '9'; p++) {
        e10--;
        TAKE_DIGIT(*p);
      }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
      int eneg = 0;
      if (++p < end && (*p == '+' || *p == '-'))
        eneg = *p++ == '-';
      if (p >= end || *p < '0' || *p > '9')
        return syntax(P, p, "invalid number");
      long x = 0;
      for (; p < end && *p >= '0' && *p <= '9'; p++)
        if (x <= 100000)
          x = x * 10 + (*p - '0');
      e10 = x > 100000 ? 1000000 : e10 + (eneg ? -x : x); /* out of range: no fast value */
    }
    if (float_of(m, sig, e10, flags & GW_JVAL_NUM_NEG, &v->num_f))
      flags |= GW_JVAL_NUM_F32;
  }
  v->type = GW_JVAL_NUMBER;
  v->flags = (unsigned char)flags;
  v->len = (size_t)(p - start);
  v->u.str = (const char *)start;
  P->p = p;
  return GW_OK;
}

static int key_cmp(const void *a, const void *b) {
  const gw_jmember *x = *(const gw_jmember *const *)a, *y = *(const gw_jmember *const *)b;
  if (x->key_len != y->key_len)
    return x->key_len < y->key_len ? -1 : 1;
  int c = memcmp(x->key, y->key, x->key_len);
  if (c)
    return c;
  return x < y ? -1 : x > y; /* document order among equals */
}

static int same_key(const gw_jmember *a, const gw_jmember *b) {
  return a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0;
}

int gw_json_lite_find_dup(const gw_jmember *m, size_t n, size_t *dup) {
  *dup = n;
  if (n <= DUP_PAIRWISE_MAX) {
    for (size_t j = 1; j < n; j++)
      for (size_t i = 0; i < j; i++)
        if (same_key(&m[i], &m[j])) {
          *dup = j;
          return GW_OK;
        }
    return GW_OK;
  }
  const gw_jmember **idx = gw_malloc(n * sizeof *idx);
  if (!idx)
    return GW_ERR_NOMEM;
  for (size_t i = 0; i < n; i++)
    idx[i] = &m[i];
  qsort(idx, n, sizeof *idx, key_cmp);
  for (size_t i = 1; i < n; i++)
    if (same_key(idx[i - 1], idx[i]) && (size_t)(idx[i] - m) < *dup)
      *dup = (size_t)(idx[i] - m);
  gw_free(idx);
  return GW_OK;
}

static int parse_object(struct parser *P, gw_jval *v, int depth) {
  size_t base = P->top;
  P->p++; /* '{' */
  skip_ws(P);
  if (P->p < P->end && *P->p == '}') {
    P->p++;
    goto done;
  }
  for (;;) {
    struct slot s;
    if (P->p >= P->end)
      return syntax(P, P->end, "unexpected end of input in an object");
    if (*P->p != '"')
      return syntax(P, P->p, "string or '}' expected");
    s.at = P->p;
    int rc = parse_string(P, &s.m.key, &s.m.key_len, 1);
    if (rc != GW_OK)
      return rc;
    skip_ws(P);
    if (P->p >= P->end)
      return syntax(P, P->end, "unexpected end of input in an object");
    if (*P->p != ':')
      return syntax(P, P->p, "':' expected");
    P->p++;
    if ((rc = parse_value(P, &s.m.value, depth + 1)) != GW_OK)
      return rc;
    if ((rc = push(P, &s)) != GW_OK)
      return rc;
    skip_ws(P);
    if (P->p >= P->end)
      return syntax(P, P->end, "unexpected end of input in an object");
    if (*P->p == '}') {
      P->p++;
      break;
    }
    if (*P->p != ',')
      return syntax(P, P->p, "',' or '}' expected");
    P->p++;
    skip_ws(P);
  }
done:;
  size_t n = P->top - base;
  gw_jmember *members = NULL;
  if (n > 0) {
    if (!(members = gw_arena_alloc(P->arena, n * sizeof *members)))
      return nomem(P);
    for (size_t i = 0; i < n; i++)
      members[i] = P->stack[base + i].m;
    size_t dup;
    if (gw_json_lite_find_dup(members, n, &dup) != GW_OK)
      return nomem(P);
    if (dup < n)
      return syntax(P, P->stack[base + dup].at, "duplicate object key");
  }
  P->top = base;
  v->type = GW_JVAL_OBJECT;
  v->flags = 0;
  v->len = n;
  v->u.members = members;
  return GW_OK;
}

static int parse_array(struct parser *P, gw_jval *v, int depth) {
  size_t base = P->top;
  P->p++; /* '[' */
  skip_ws(P);
  if (P->p < P->end && *P->p == ']') {
    P->p++;
    goto done;
  }
  for (;;) {
    struct slot s;
    int rc = parse_value(P, &s.m.value, depth + 1);
    if (rc != GW_OK)
      return rc;
    if ((rc = push(P, &s)) != GW_OK)
      return rc;
    skip_ws(P);
    if (P->p >= P->end)
      return syntax(P, P->end, "unexpected end of input in an array");
    if (*P->p == ']') {
      P->p++;
      break;
    }
    if (*P->p != ',')
      return syntax(P, P->p, "',' or ']' expected");
    P->p++;
  }
done:;
  size_t n = P->top - base;
  gw_jval *elems = NULL;
  if (n > 0) {
    if (!(elems = gw_arena_alloc(P->arena, n * sizeof *elems)))
      return nomem(P);
    for (size_t i = 0; i < n; i++)
      elems[i] = P->stack[base + i].m.value;
  }
  P->top = base;
  v->type = GW_JVAL_ARRAY;
  v->flags = 0;
  v->len = n;
  v->u.elems = elems;
  return GW_OK;
}

static int literal(struct parser *P, const char *word, size_t n, unsigned char type, gw_jval *v) {
  if ((size_t)(P->end - P->p) < n || memcmp(P->p, word, n) != 0)
    return syntax(P, P->p, "invalid token");
  P->p += n;
  v->type = type;
  v->flags = 0;
  v->len = 0;
  v->u.str = NULL;
  return GW_OK;
}

/* Reads one value (leading whitespace allowed) at nesting |depth|. */
static int parse_value(struct parser *P, gw_jval *v, int depth) {
  skip_ws(P);
  if (P->p >= P->end)
    return syntax(P, P->end, "unexpected end of input");
  if (depth > P->max_depth)
    return syntax(P, P->p, "maximum nesting depth reached");
  switch (*P->p) {
  case '{': return parse_object(P, v, depth);
  case '[': return parse_array(P, v, depth);
  case '"':
    v->type = GW_JVAL_STRING;
    v->flags = 0;
    return parse_string(P, &v->u.str, &v->len, 0);
  case 't': return literal(P, "true", 4, GW_JVAL_TRUE, v);
  case 'f': return literal(P, "false", 5, GW_JVAL_FALSE, v);
  case 'n': return literal(P, "null", 4, GW_JVAL_NULL, v);
  case '-':
  case '0':
  case '1':
  case '2':
  case '3':
  case '4':
  case '5':
  case '6':
  case '7':
  case '8':
  case '9': return parse_number(P, v);
  default: return syntax(P, P->p, "invalid token");
  }
}

/* Line and column (characters) of |at|, both from 1. */
static void locate(const unsigned char *start, const unsigned char *at, const unsigned char *end,
                   gw_json_lite_error *err) {
  int line = 1, col = 0;
  const unsigned char *stop = at < end ? at + 1 : end;
  for (const unsigned char *p = start; p < stop; p++) {
    if (*p == '\n') {
      line++;
      col = 0;
    } else if ((*p & 0xc0) != 0x80) {
      col++;
    }
  }
  err->line = line;
  err->column = col;
  err->offset = (size_t)(at - start);
}

int gw_json_lite_parse(const char *json, size_t len, gw_arena *arena, int max_depth, unsigned flags,
                       const gw_jval **out, gw_json_lite_error *err) {
  /* Field by field: an initializer would also zero the inline stack
   * (STACK_INLINE slots, ~400 instructions a parse). */
  struct parser P;
  P.start = P.p = (const unsigned char *)json;
  P.end = (const unsigned char *)json + len;
  P.arena = arena;
  P.max_depth = max_depth > 0 ? max_depth : GW_JSON_LITE_MAX_DEPTH;
  P.flags = flags;
  P.stack = P.inline_stack;
  P.top = 0;
  P.cap = STACK_INLINE;
  P.err_at = NULL;
  P.err_text = NULL;
  if (!json)
    P.end = P.p = (const unsigned char *)"";
  gw_jval *root = gw_arena_alloc(arena, sizeof *root);
  int rc = root ? parse_value(&P, root, 1) : nomem(&P);
  if (rc == GW_OK) {
    skip_ws(&P);
    if (P.p != P.end)
      rc = syntax(&P, P.p, "end of input expected");
  }
  if (P.stack != P.inline_stack)
    gw_free(P.stack);
  if (rc == GW_OK) {
    *out = root;
    return GW_OK;
  }
  if (err) {
    locate(P.start, P.err_at ? P.err_at : P.p, P.end, err);
    snprintf(err->text, sizeof err->text, "%s", P.err_text ? P.err_text : "invalid JSON");
  }
  return rc;
}

/* ------------------------------------------------------------ the reader */

/* A parser over what is left of |r|: set up field by field (the inline
 * stack is not touched until a container needs it). */
static void reader_parser(struct parser *P, const gw_json_lite_reader *r) {
  P->start = P->p = (const unsigned char *)r->p;
  P->end = (const unsigned char *)r->end;
  P->arena = r->arena;
  P->max_depth = GW_JSON_LITE_MAX_DEPTH;
  P->flags = 0;
  P->stack = P->inline_stack;
  P->top = 0;
  P->cap = STACK_INLINE;
  P->err_at = NULL;
  P->err_text = NULL;
}

int gw_json_lite_read_string(gw_json_lite_reader *r, int is_key, const char **s, size_t *n) {
  struct parser P;
  if (gw_json_lite_peek(r) != '"')
    return GW_ERR_INVALID;
  reader_parser(&P, r);
  int rc = parse_string(&P, s, n, is_key);
  r->p = (const char *)P.p;
  return rc;
}

int gw_json_lite_read_scalar(gw_json_lite_reader *r, gw_jval *v) {
  int c = gw_json_lite_peek(r);
  if (c == '{' || c == '[' || c < 0)
    return GW_ERR_INVALID;
  struct parser P;
  reader_parser(&P, r);
  int rc = parse_value(&P, v, 1);
  r->p = (const char *)P.p;
  return rc;
}

int gw_json_lite_read_value(gw_json_lite_reader *r, int depth, gw_jval *v) {
  struct parser P;
  reader_parser(&P, r);
  int rc = parse_value(&P, v, depth);
  if (P.stack != P.inline_stack)
    gw_free(P.stack);
  r->p = (const char *)P.p;
  return rc;
}

#if defined(__SSE2__) && defined(__x86_64__)
#define FLOAT_TEXT_SSE41 1
/* The pshufb mask that moves |len| digits (0-16) from the start of a
 * register to its end, zeros before (0x80 writes a zero): the 16 bytes at
 * slide_digits + len. */
static const unsigned char slide_digits[32] = {
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    0,    1,    2,    3,    4,    5,    6,    7,    8,    9,    10,   11,   12,   13,   14,   15};

/* The float of an embedding's number in its usual form, "-0.0123456789"
 * (a sign, one digit, a point, 1-19 digits, no exponent), computed exactly
 * as parse_number computes it (the same significand, digit count and
 * exponent, then the same float_of): the fraction's first
 * sixteen digits are found and valued in one register. 0 for anything else,
 * which parse_number then reads (and judges). Needs 16 bytes after the
 * point inside the text. */
__attribute__((target("sse4.1"))) static int float_text_fast(const unsigned char *p,
                                                             const unsigned char *end, float *out,
                                                             const unsigned char **next) {
  int neg = *p == '-';
  p += neg;
  if (end - p < 2 + 16 || p[1] != '.' || (unsigned)(p[0] - '0') > 9)
    return 0;
  unsigned d0 = p[0] - '0';
  p += 2;
  __m128i t = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)(const void *)p), _mm_set1_epi8('0'));
  unsigned digit = (unsigned)_mm_movemask_epi8(
      _mm_cmpeq_epi8(_mm_min_epu8(t, _mm_set1_epi8(9)), t)); /* bytes 0-9 */
  unsigned len = (unsigned)__builtin_ctz(~digit);            /* 0-16: bit 16 is clear */
  if (len == 0)
    return 0;
  unsigned zero = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(t, _mm_setzero_si128()));
  unsigned lz = (unsigned)__builtin_ctz(~zero | (1u << len)); /* leading '0's, len if all */
  /* the digits' value: pairs, fours, eights (pshufb puts the last digit last) */
  t = _mm_shuffle_epi8(t, _mm_loadu_si128((const __m128i *)(const void *)(slide_digits + len)));
  t = _mm_maddubs_epi16(t, _mm_setr_epi8(10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1));
  t = _mm_madd_epi16(t, _mm_setr_epi16(100, 1, 100, 1, 100, 1, 100, 1));
  t = _mm_packus_epi32(t, t);
  t = _mm_madd_epi16(t, _mm_setr_epi16(10000, 1, 10000, 1, 10000, 1, 10000, 1));
  uint64_t m =
      (uint64_t)(uint32_t)_mm_cvtsi128_si32(t) * 100000000u + (uint32_t)_mm_extract_epi32(t, 1);
  int sig = d0 ? (int)(1 + len) : (int)(len - lz);
  p += len;
  if (len == 16) /* more digits: up to 19 significant in all, as parse_number takes them */
    for (; p < end && (unsigned)(*p - '0') <= 9; p++, len++) {
      if (d0 || m || *p != '0') /* after a first digit that is not 0, every one counts */
        sig++;
      if (sig > 19 || len == 19)
        return 0;
      m = m * 10 + (uint64_t)(*p - '0');
    }
  if (p < end && (*p == 'e' || *p == 'E'))
    return 0;
  if (d0) { /* exact: sig <= 19 means len <= 18, and the sum is under 10^19 */
    if (sig > 19)
      return 0;
    m += d0 * (uint64_t)pow10_exact[len];
  }
  if (!float_of(m, sig, -(long)len, neg, out))
    return 0;
  *next = p;
  return 1;
}
#endif

/* The float of the number at P->p (P->p moves past it), from
 * float_text_fast where it can (|fast|: the CPU has SSE4.1, and this is
 * inlined into a function built for it) or parse_number; 0 when it is not a
 * number with a float of its own (GW_JVAL_NUM_F32). */
static inline __attribute__((always_inline)) int next_float(struct parser *P, int fast, float *f) {
#ifdef FLOAT_TEXT_SSE41
  const unsigned char *after;
  if (fast && P->p < P->end && float_text_fast(P->p, P->end, f, &after)) {
    P->p = after;
    return 1;
  }
#else
  (void)fast;
#endif
  gw_jval v;
  if (P->p >= P->end || (*P->p != '-' && (*P->p < '0' || *P->p > '9')) ||
      parse_number(P, &v) != GW_OK || !(v.flags & GW_JVAL_NUM_F32))
    return 0;
  *f = v.num_f;
  return 1;
}

/* gw_json_lite_read_floats after its '[' and a first value's start. */
static inline __attribute__((always_inline)) int read_floats(struct parser *P, int fast,
                                                             float **out, size_t *n) {
  size_t k = 0, cap = 256;
  float *a = gw_arena_alloc(P->arena, cap * sizeof *a);
  if (!a)
    return 1;
  for (;;) { /* parse_array's steps, with parse_number for parse_value */
    float f;
    if (!next_float(P, fast, &f))
      return 1;
    if (k == cap) {
      float *grown = gw_arena_alloc(P->arena, 2 * cap * sizeof *a);
      if (!grown)
        return 1;
      memcpy(grown, a, k * sizeof *a);
      a = grown;
      cap *= 2;
    }
    a[k++] = f;
    if (P->p < P->end && *P->p <= ' ') /* no call when there is no space */
      skip_ws(P);
    if (P->p >= P->end)
      return 1;
    if (*P->p == ']') {
      P->p++;
      break;
    }
    if (*P->p != ',')
      return 1;
    P->p++;
    if (P->p < P->end && *P->p <= ' ')
      skip_ws(P);
  }
  *out = a;
  *n = k;
  return GW_OK;
}

#ifdef FLOAT_TEXT_SSE41
__attribute__((target("sse4.1"))) static int read_floats_sse41(struct parser *P, float **out,
                                                               size_t *n) {
  return read_floats(P, 1, out, n);
}
#endif

int gw_json_lite_read_floats(gw_json_lite_reader *r, float **out, size_t *n) {
  struct parser P;
  reader_parser(&P, r);
  if (P.p >= P.end || *P.p != '[')
    return 1;
  P.p++;
  skip_ws(&P);
  if (P.p < P.end && *P.p == ']') {
    P.p++;
    *out = NULL;
    *n = 0;
  } else {
    int rc;
#ifdef FLOAT_TEXT_SSE41
    if (__builtin_cpu_supports("sse4.1"))
      rc = read_floats_sse41(&P, out, n);
    else
#endif
      rc = read_floats(&P, 0, out, n);
    if (rc != GW_OK)
      return rc;
  }
  r->p = (const char *)P.p;
  return GW_OK;
}

/* ------------------------------------------------------------ numbers */

/* The magnitude of the integer text |s| (|n| digits) in |*mag|; -1 past
 * UINT64_MAX. */
static int magnitude(const char *s, size_t n, uint64_t *mag) {
  uint64_t m = 0;
  if (n <= 19) { /* under 10^19 < 2^64: no overflow to check */
    for (size_t i = 0; i < n; i++)
      m = m * 10 + (uint64_t)(s[i] - '0');
    *mag = m;
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned d = (unsigned)(s[i] - '0');
    if (m > (UINT64_MAX - d) / 10)
      return -1;
    m = m * 10 + d;
  }
  *mag = m;
  return 0;
}

int gw_json_lite_int64(const gw_jval *v, int64_t *out) {
  uint64_t m;
  if (v->type != GW_JVAL_NUMBER || !(v->flags & GW_JVAL_NUM_INT))
    return GW_ERR_INVALID;
  int neg = (v->flags & GW_JVAL_NUM_NEG) != 0;
  if (magnitude(v->u.str + neg, v->len - (size_t)neg, &m) != 0)
    return GW_ERR_INVALID;
  if (neg) {
    if (m > (uint64_t)INT64_MAX + 1)
      return GW_ERR_INVALID;
    *out = m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m;
  } else {
    if (m > (uint64_t)INT64_MAX)
      return GW_ERR_INVALID;
    *out = (int64_t)m;
  }
  return GW_OK;
}

int gw_json_lite_uint64(const gw_jval *v, uint64_t *out) {
  uint64_t m;
  if (v->type != GW_JVAL_NUMBER || !(v->flags & GW_JVAL_NUM_INT))
    return GW_ERR_INVALID;
  int neg = (v->flags & GW_JVAL_NUM_NEG) != 0;
  if (magnitude(v->u.str + neg, v->len - (size_t)neg, &m) != 0 || (neg && m != 0))
    return GW_ERR_INVALID;
  *out = m;
  return GW_OK;
}

/* Clinger's fast path: a decimal with at most 15 significant digits and a
 * power of ten up to 22 either way is one correctly rounded IEEE operation
 * on two exact doubles. Returns 0 and sets |*out|, or -1 (use strtod). */
static int fast_double(const char *s, size_t n, double *out) {
  size_t i = 0;
  int neg = s[0] == '-', sig = 0;
  long e10 = 0;
  uint64_t m = 0;
  i += (size_t)neg;
  for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
    if (m || s[i] != '0') {
      if (++sig > 15)
        return -1;
      m = m * 10 + (uint64_t)(s[i] - '0');
    }
  }
  if (i < n && s[i] == '.') {
    for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
      e10--;
      if (m || s[i] != '0') {
        if (++sig > 15)
          return -1;
        m = m * 10 + (uint64_t)(s[i] - '0');
      }
    }
  }
  if (i < n) { /* exponent */
    i++;
    int eneg = s[i] == '-';
    if (s[i] == '-' || s[i] == '+')
      i++;
    long x = 0;
    for (; i < n; i++) {
      if (x > 100000)
        return -1;
      x = x * 10 + (s[i] - '0');
    }
    e10 += eneg ? -x : x;
  }
  double d;
  if (m == 0)
    d = 0.0;
  else if (e10 >= 0 && e10 <= 22)
    d = (double)m * pow10_exact[e10];
  else if (e10 < 0 && e10 >= -22)
    d = (double)m / pow10_exact[-e10];
  else
    return -1;
  *out = neg ? -d : d;
  return 0;
}

int gw_json_lite_double(const gw_jval *v, double *out) {
  int64_t i;
  if (v->type != GW_JVAL_NUMBER)
    return GW_ERR_INVALID;
  if ((v->flags & GW_JVAL_NUM_INT) && gw_json_lite_int64(v, &i) == GW_OK) {
    *out = (double)i;
    return GW_OK;
  }
  if (fast_double(v->u.str, v->len, out) == 0)
    return GW_OK;
  /* strtod needs a terminated copy; the number's text is not. */
  char small[64], *buf = small;
  if (v->len >= sizeof small && !(buf = gw_malloc(v->len + 1)))
    return GW_ERR_NOMEM;
  memcpy(buf, v->u.str, v->len);
  buf[v->len] = '\0';
  double d = strtod(buf, NULL);
  if (buf != small)
    gw_free(buf);
  if (isinf(d))
    return GW_ERR_INVALID;
  *out = d;
  return GW_OK;
}

#if defined(GW_JSON_SKIP_AVX2)
__attribute__((target("avx2"))) const unsigned char *
gw_json_skip_plain_avx2(const unsigned char *q, const unsigned char *end) {
  for (; end - q >= 32; q += 32) {
    unsigned m = gw_json_special_mask32(_mm256_loadu_si256((const __m256i *)(const void *)q));
    if (m)
      return q + __builtin_ctz(m);
  }
  return gw_json_skip_plain(q, end); /* under 32 bytes left: no way back here */
}

/* UTF-8 checked 16 bytes a step with SSSE3, by Keiser and Lemire's method
 * ("Validating UTF-8 in less than one instruction per byte", Software:
 * Practice and Experience, 2021). Every error shows in a pair of bytes, and
 * three 16-entry look-ups (the first byte's high and low nibble, the
 * second's high nibble) give a bit for each kind of bad pair; the one error
 * no pair shows, a third or fourth byte of a character that is not a
 * continuation (or a continuation that is no such byte), comes from the
 * bytes two and three places back. */
#define U8_TOO_SHORT 0x01  /* a lead byte, then ASCII or another lead   */
#define U8_TOO_LONG 0x02   /* ASCII, then a continuation                */
#define U8_OVERLONG_3 0x04 /* e0 80..9f                                 */
#define U8_TOO_LARGE 0x08  /* f4 90..bf, f5..ff 90..bf: past U+10FFFF   */
#define U8_SURROGATE 0x10  /* ed a0..bf                                 */
#define U8_OVERLONG_2 0x20 /* c0, c1 then a continuation                */
#define U8_OVER_4 0x40     /* f0 80..8f (overlong), f5..ff 80..8f       */
#define U8_TWO_CONTS 0x80  /* a continuation, then another              */
#define U8_CARRY (U8_TOO_SHORT | U8_TOO_LONG | U8_TWO_CONTS) /* the high nibble's alone */

/* The look-ups: by the first byte's high nibble, its low nibble, and the
 * second byte's high nibble. */
static const unsigned char utf8_first_high[16] = {
    U8_TOO_LONG,
    U8_TOO_LONG,
    U8_TOO_LONG,
    U8_TOO_LONG,
    U8_TOO_LONG,
    U8_TOO_LONG,
    U8_TOO_LONG,
    U8_TOO_LONG, /* 0_______: ASCII */
    U8_TWO_CONTS,
    U8_TWO_CONTS,
    U8_TWO_CONTS,
    U8_TWO_CONTS,                                /* 10______: a continuation */
    U8_TOO_SHORT | U8_OVERLONG_2,                /* 1100____ */
    U8_TOO_SHORT,                                /* 1101____ */
    U8_TOO_SHORT | U8_OVERLONG_3 | U8_SURROGATE, /* 1110____ */
    U8_TOO_SHORT | U8_TOO_LARGE | U8_OVER_4};    /* 1111____ */
static const unsigned char utf8_first_low[16] = {
    U8_CARRY | U8_OVERLONG_3 | U8_OVERLONG_2 | U8_OVER_4, /* ____0000 */
    U8_CARRY | U8_OVERLONG_2,                             /* ____0001 */
    U8_CARRY,
    U8_CARRY,                /* ____001_ */
    U8_CARRY | U8_TOO_LARGE, /* ____0100 */
    U8_CARRY | U8_TOO_LARGE | U8_OVER_4,
    U8_CARRY | U8_TOO_LARGE | U8_OVER_4,
    U8_CARRY | U8_TOO_LARGE | U8_OVER_4,
    U8_CARRY | U8_TOO_LARGE | U8_OVER_4,
    U8_CARRY | U8_TOO_LARGE | U8_OVER_4,
    U8_CARRY | U8_TOO_LARGE | U8_OVER_4,
    U8_CARRY | U8_TOO_LARGE | U8_OVER_4,
    U8_CARRY | U8_TOO_LARGE | U8_OVER_4,
    U8_CARRY | U8_TOO_LARGE | U8_OVER_4 | U8_SURROGATE, /* ____1101 */
    U8_CARRY | U8_TOO_LARGE | U8_OVER_4,
    U8_CARRY | U8_TOO_LARGE | U8_OVER_4};
static const unsigned char utf8_second_high[16] = {
    U8_TOO_SHORT,
    U8_TOO_SHORT,
    U8_TOO_SHORT,
    U8_TOO_SHORT,
    U8_TOO_SHORT,
    U8_TOO_SHORT,
    U8_TOO_SHORT,
    U8_TOO_SHORT,                                                              /* ASCII */
    U8_TOO_LONG | U8_OVERLONG_2 | U8_TWO_CONTS | U8_OVERLONG_3 | U8_OVER_4,    /* 1000____ */
    U8_TOO_LONG | U8_OVERLONG_2 | U8_TWO_CONTS | U8_OVERLONG_3 | U8_TOO_LARGE, /* 1001____ */
    U8_TOO_LONG | U8_OVERLONG_2 | U8_TWO_CONTS | U8_SURROGATE | U8_TOO_LARGE,  /* 101_____ */
    U8_TOO_LONG | U8_OVERLONG_2 | U8_TWO_CONTS | U8_SURROGATE | U8_TOO_LARGE,
    U8_TOO_SHORT,
    U8_TOO_SHORT,
    U8_TOO_SHORT,
    U8_TOO_SHORT}; /* 11______: a lead */

__attribute__((target("ssse3"))) static __m128i utf8_errors(__m128i x, __m128i prev) {
  const __m128i first_high = _mm_loadu_si128((const __m128i *)(const void *)utf8_first_high),
                first_low = _mm_loadu_si128((const __m128i *)(const void *)utf8_first_low),
                second_high = _mm_loadu_si128((const __m128i *)(const void *)utf8_second_high);
  const __m128i nibble = _mm_set1_epi8(0x0f);
  __m128i prev1 = _mm_alignr_epi8(x, prev, 15);
  __m128i pairs = _mm_and_si128(
      _mm_and_si128(_mm_shuffle_epi8(first_high, _mm_and_si128(_mm_srli_epi16(prev1, 4), nibble)),
                    _mm_shuffle_epi8(first_low, _mm_and_si128(prev1, nibble))),
      _mm_shuffle_epi8(second_high, _mm_and_si128(_mm_srli_epi16(x, 4), nibble)));
  /* a third byte (two after a lead e0..ff) or a fourth (three after f0..ff) */
  __m128i third = _mm_subs_epu8(_mm_alignr_epi8(x, prev, 14), _mm_set1_epi8(0xe0 - 0x80));
  __m128i fourth = _mm_subs_epu8(_mm_alignr_epi8(x, prev, 13), _mm_set1_epi8(0xf0 - 0x80));
  __m128i must_cont = _mm_and_si128(_mm_or_si128(third, fourth), _mm_set1_epi8((char)0x80));
  return _mm_xor_si128(must_cont, pairs); /* such a byte must be a continuation after one */
}

__attribute__((target("ssse3"))) const unsigned char *
gw_json_skip_text_ssse3(const unsigned char *q, const unsigned char *end) {
  const unsigned char *start = q;
  const __m128i zero = _mm_setzero_si128();
  __m128i prev = zero; /* |start| begins a character: as if ASCII came before */
  for (; end - q >= 16; q += 16) {
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)q);
    __m128i stop = _mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')), _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))),
        _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1f)), x)); /* controls: x <= 0x1f */
    unsigned m = (unsigned)_mm_movemask_epi8(stop);
    unsigned bad =
        ~(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(utf8_errors(x, prev), zero)) & 0xffff;
    /* A stop byte with no error up to it: all before it is well-formed (a
     * character cut short by it shows at it) and it starts a character. */
    if (m && (!bad || __builtin_ctz(bad) > __builtin_ctz(m)))
      return q + __builtin_ctz(m);
    if (bad)
      break;
    prev = x;
  }
  /* The block at |q| was not taken, or is the tail. The last character
   * before it may need bytes from there (or be a byte that starts nothing,
   * which only the byte after shows): back to its first byte, for the
   * caller to look at; every character before that one is whole and
   * well-formed. */
  if (q > start && q[-1] >= 0x80) {
    q--;
    while (q > start && (*q & 0xc0) == 0x80)
      q--;
  }
  return q;
}
#endif
