/* A small, fast JSON parser (RFC 8259) producing a read-only DOM allocated
 * from a gw_arena: no malloc per node, no hashing, objects as arrays of
 * members in document order. It is the codec's reader (json_pb.c); anything
 * else that parses request-sized JSON on a hot path may use it too.
 *
 * What it accepts is what jansson accepts with JSON_REJECT_DUPLICATES |
 * JSON_DECODE_ANY (tests/fuzz/fuzz_json_lite.c checks that), with one
 * difference: numbers are kept as their source text, so integers past
 * int64 and reals past DBL_MAX are not a syntax error; the accessors below
 * say GW_ERR_INVALID when asked for a value that does not fit.
 *
 * - Strings are unescaped into the arena, NUL-terminated, with their byte
 *   length; the input must be valid UTF-8 (no overlong forms, surrogates or
 *   code points past U+10FFFF) and \u escapes must pair surrogates.
 *   "\u0000" is refused unless GW_JSON_LITE_ALLOW_NUL is given, and always
 *   in keys (as jansson does): keys are plain C strings.
 * - Numbers point at their text inside the input (not copied, not
 *   NUL-terminated): the input must outlive any use of a number's text or
 *   of the accessors. GW_JVAL_NUM_INT marks text with neither fraction nor
 *   exponent, GW_JVAL_NUM_NEG a leading '-'.
 * - A member key appearing twice in one object is a syntax error.
 * - Nesting: a value deeper than |max_depth| (the top-level value is at
 *   depth 1) is a syntax error; 0 picks GW_JSON_LITE_MAX_DEPTH (jansson's).
 */
#ifndef GW_TRANSCODER_JSON_LITE_H
#define GW_TRANSCODER_JSON_LITE_H

#include <stddef.h>
#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <string.h>

#include "core/arena.h"

#define GW_JSON_LITE_MAX_DEPTH 2048

/* gw_json_lite_parse |flags|. */
#define GW_JSON_LITE_ALLOW_NUL 0x1 /* accept "\u0000" inside string values */

enum gw_jval_type {
  GW_JVAL_NULL,
  GW_JVAL_FALSE,
  GW_JVAL_TRUE,
  GW_JVAL_NUMBER,
  GW_JVAL_STRING,
  GW_JVAL_ARRAY,
  GW_JVAL_OBJECT,
};

/* gw_jval.flags of a number. */
#define GW_JVAL_NUM_INT 0x1 /* no '.', no exponent */
#define GW_JVAL_NUM_NEG 0x2 /* starts with '-' */
/* |num_f| holds (float) of the number's gw_json_lite_double value, found
 * while parsing: a power of ten up to 22 away and up to 15 significant
 * digits (where one multiplication or division is exact-rounded), or up to
 * 19 where the float that value rounds to is certain (json_lite.c). */
#define GW_JVAL_NUM_F32 0x4

typedef struct gw_jmember gw_jmember;

typedef struct gw_jval {
  unsigned char type;  /* enum gw_jval_type */
  unsigned char flags; /* numbers: GW_JVAL_NUM_* */
  float num_f;         /* numbers with GW_JVAL_NUM_F32 (fits the padding) */
  /* string: bytes (NUL excluded); number: text bytes; array: elements;
   * object: members; 0 otherwise. */
  size_t len;
  union {
    const char *str;             /* string (NUL-terminated) or number text */
    const struct gw_jval *elems; /* array: |len| values */
    const gw_jmember *members;   /* object: |len| members, document order */
  } u;
} gw_jval;

struct gw_jmember {
  const char *key; /* unescaped, NUL-terminated */
  size_t key_len;
  gw_jval value;
};

/* Where and why the input is not JSON. |line| and |column| count from 1;
 * the column counts characters (UTF-8 sequences), not bytes, like
 * jansson's. |text| is a short reason ("unexpected end of input"). */
typedef struct gw_json_lite_error {
  int line, column;
  size_t offset; /* byte offset of the error */
  char text[96];
} gw_json_lite_error;

/* Parses |len| bytes at |json| as one JSON value, allocating the DOM from
 * |arena|. |max_depth| 0 means GW_JSON_LITE_MAX_DEPTH; |flags| are
 * GW_JSON_LITE_*. Returns GW_OK and sets |*out| (it lives as long as the
 * arena; numbers also need |json|, see above); GW_ERR_INVALID with |err|
 * filled (when not NULL); GW_ERR_NOMEM when the arena (or its cap) or the
 * parser's scratch stack ran out. On error |*out| is untouched and what was
 * allocated stays in |arena|. */
int gw_json_lite_parse(const char *json, size_t len, gw_arena *arena, int max_depth, unsigned flags,
                       const gw_jval **out, gw_json_lite_error *err);

/* A cursor over JSON text, for a reader that builds its own values instead
 * of a DOM (the protobuf codec's direct path): the same scanner and the
 * same rules as gw_json_lite_parse with flags 0 and the default depth. Each
 * call skips whitespace first. Errors are only GW_ERR_INVALID or
 * GW_ERR_NOMEM, without a position: a reader that meets one parses the
 * whole text again with gw_json_lite_parse to report it. */
typedef struct gw_json_lite_reader {
  const char *p, *end;
  gw_arena *arena;
} gw_json_lite_reader;

/* The next byte that is not whitespace (|r->p| moves to it), or -1 at the end. */
static inline int gw_json_lite_peek(gw_json_lite_reader *r) {
  const char *p = r->p;
  while (p < r->end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
    p++;
  r->p = p;
  return p < r->end ? (unsigned char)*p : -1;
}
/* The string at |r->p| as a key (no U+0000) or a value: unescaped, copied
 * into the arena, NUL-terminated. */
int gw_json_lite_read_string(gw_json_lite_reader *r, int is_key, const char **s, size_t *n);
/* The string, number, true, false or null at |r->p| into |*v|. */
int gw_json_lite_read_scalar(gw_json_lite_reader *r, gw_jval *v);
/* Any value at |r->p| as a DOM; |depth| is its nesting as gw_json_lite_parse
 * counts it (the top-level value is 1). */
int gw_json_lite_read_value(gw_json_lite_reader *r, int depth, gw_jval *v);
/* The array at |r->p| (an embedding) when each element is a number with a
 * float value (GW_JVAL_NUM_F32): those floats in an arena array, GW_OK. 1
 * (|r| not moved) for any other array or value. */
int gw_json_lite_read_floats(gw_json_lite_reader *r, float **out, size_t *n);

/* Sets |*dup| to the index of the first of the |n| members at |m| (in
 * document order) whose key an earlier one has, or to |n| when the keys are
 * all different: the parser's own check, for a DOM built another way
 * (json_pb.h, gw_pb_to_jval). Pairwise for a few members, by sorting
 * (O(n log n)) for more. GW_OK, or GW_ERR_NOMEM. */
int gw_json_lite_find_dup(const gw_jmember *m, size_t n, size_t *dup);

/* The number |v| as an int64 / uint64, exactly. GW_ERR_INVALID when |v| is
 * not a number with GW_JVAL_NUM_INT or does not fit ("-0" is 0). */
int gw_json_lite_int64(const gw_jval *v, int64_t *out);
int gw_json_lite_uint64(const gw_jval *v, uint64_t *out);

/* The number |v| as the nearest double (strtod's result; an integer that
 * fits int64 converts as (double) of it, so "-0" is +0.0 as in jansson).
 * GW_ERR_INVALID when |v| is not a number or its magnitude is past
 * DBL_MAX; GW_ERR_NOMEM when a very long number's text cannot be copied. */
int gw_json_lite_double(const gw_jval *v, double *out);

/* The value of the member |key| (|key_len| bytes) of object |obj|, or NULL
 * (also when |obj| is not an object). A linear scan; inline, so that a key
 * known at compile time (the translators' GW_JT_GET) is compared without a
 * call: the lengths first, then the bytes as a few loads. */
static inline const gw_jval *gw_json_lite_get(const gw_jval *obj, const char *key, size_t key_len) {
  if (obj->type != GW_JVAL_OBJECT)
    return NULL;
  /* by index: an empty object has no members array (NULL), and NULL + 0 is
   * undefined behaviour in C */
  for (size_t i = 0; i < obj->len; i++) {
    const gw_jmember *m = &obj->u.members[i];
    if (m->key_len == key_len && memcmp(m->key, key, key_len) == 0)
      return &m->value;
  }
  return NULL;
}

/* Length of the well-formed UTF-8 sequence at |p| (|n| bytes left, p[0] >=
 * 0x80), 0 if it is not one (overlong, a surrogate, past U+10FFFF, cut
 * short): the parser's check, and the writer's for strings from the wire. */
static inline size_t gw_json_utf8_seq(const unsigned char *p, size_t n) {
  unsigned char c = p[0];
  if (c >= 0xc2 && c <= 0xdf)
    return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
      return 0;
    if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0)) /* overlong, surrogate */
      return 0;
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
      return 0;
    if ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90)) /* overlong, > U+10FFFF */
      return 0;
    return 4;
  }
  return 0;
}

/* String scanning shared by the parser and the codec's writer. High bit set
 * in each byte of |w| that is '"', '\\', a control or non-ASCII (and maybe in
 * bytes above the first such one). */
static inline uint64_t gw_json_special_bytes(uint64_t w) {
  const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
  uint64_t t = ((q - ones) & ~q) | ((b - ones) & ~b) | (w - ones * 0x20) | w;
  return t & highs;
}

#if defined(__SSE2__) && defined(__x86_64__)
#include <immintrin.h>
#define GW_JSON_SKIP_AVX2 1
/* A bit for each of the 16 bytes of |x| that is '"', '\\', a control or
 * non-ASCII: a signed compare below 0x20 flags the controls and every byte
 * >= 0x80 (negative) at once. */
static inline unsigned gw_json_special_mask16(__m128i x) {
  __m128i hit = _mm_or_si128(
      _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')), _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))),
      _mm_cmplt_epi8(x, _mm_set1_epi8(0x20)));
  return (unsigned)_mm_movemask_epi8(hit);
}
/* A bit for each of the 32 bytes of |x| that is '"', '\\', a control or
 * non-ASCII: a signed compare below 0x20 flags the controls and every byte
 * >= 0x80 (negative) at once. For functions built for AVX2 only. */
__attribute__((target("avx2"))) static inline unsigned gw_json_special_mask32(__m256i x) {
  __m256i hit = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(x, _mm256_set1_epi8('"')),
                                                _mm256_cmpeq_epi8(x, _mm256_set1_epi8('\\'))),
                                _mm256_cmpgt_epi8(_mm256_set1_epi8(0x20), x));
  return (unsigned)_mm256_movemask_epi8(hit);
}
/* gw_json_skip_plain for a long run, 32 bytes a step: only where the CPU
 * has AVX2 (json_lite.c; gw_json_skip_plain asks). */
const unsigned char *gw_json_skip_plain_avx2(const unsigned char *q, const unsigned char *end);
/* gw_json_skip_text's vector loop (SSSE3: json_lite.c). */
const unsigned char *gw_json_skip_text_ssse3(const unsigned char *q, const unsigned char *end);
#endif

/* Skips the bytes of a string that need no look: not '"', '\\', a control
 * or a non-ASCII byte. The lowest flagged byte of a word is always a real
 * one (the subtractions only borrow upwards), so on little-endian hosts the
 * scan jumps straight to it. */
static inline const unsigned char *gw_json_skip_plain(const unsigned char *q,
                                                      const unsigned char *end) {
#if defined(GW_JSON_SKIP_AVX2)
  /* a prompt's text: kilobytes without a quote (short strings do not pay
   * for the CPU check, one compare) */
  if (end - q >= 128 && __builtin_cpu_supports("avx2"))
    return gw_json_skip_plain_avx2(q, end);
#endif
#if defined(GW_JSON_SKIP_AVX2)
  while (end - q >= 16) { /* 16 bytes at a time */
    unsigned m = gw_json_special_mask16(_mm_loadu_si128((const __m128i *)(const void *)q));
    if (m)
      return q + __builtin_ctz(m);
    q += 16;
  }
#endif
  while (end - q >= 8) {
    uint64_t w;
    memcpy(&w, q, 8);
    uint64_t m = gw_json_special_bytes(w);
    if (!m)
      q += 8;
    else {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
      return q + (__builtin_ctzll(m) >> 3);
#else
      break;
#endif
    }
  }
  while (q < end && *q >= 0x20 && *q < 0x80 && *q != '"' && *q != '\\')
    q++;
  return q;
}

/* Skips text from |q|, which starts a character: plain bytes and well-formed
 * UTF-8 alike (a language other than English). Stops at or before the first
 * '"', '\\' or control byte and the first byte of a character that is not
 * UTF-8, always at the start of a character, maybe at |q| itself: the caller
 * looks at what is there. Where the CPU has SSSE3, 16 bytes a step. */
static inline const unsigned char *gw_json_skip_text(const unsigned char *q,
                                                     const unsigned char *end) {
#if defined(GW_JSON_SKIP_AVX2)
  if (end - q >= 32 && __builtin_cpu_supports("ssse3"))
    return gw_json_skip_text_ssse3(q, end);
#endif
  (void)end;
  return q;
}

#endif
