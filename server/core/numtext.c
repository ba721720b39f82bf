/* Numbers as text without printf (contract in numtext.h).
 *
 * The fast path for "%.*g": scale the value by an exact power of ten so that
 * p digits sit before the point, round once, and check the digits by reading
 * them back with one correctly rounded division or multiplication (Clinger's
 * fast path: both operands are exact doubles). Whenever one rounding could
 * have gone the other way (a fraction near one half, a value read back on a
 * float's rounding midpoint) it gives up and the printf loop decides. */
#include "core/numtext.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "numtext.c stores digits as little-endian 64-bit words"
#endif

static const double exact_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* "00" to "99": two digits per division (an embedding prints ~1,500
 * numbers of 6-9 digits). */
static const char digit_pairs[201] = "00010203040506070809101112131415161718192021222324"
                                     "25262728293031323334353637383940414243444546474849"
                                     "50515253545556575859606162636465666768697071727374"
                                     "75767778798081828384858687888990919293949596979899";

static size_t count_digits(uint64_t v) {
  size_t n = 1;
  for (;;) {
    if (v < 10)
      return n;
    if (v < 100)
      return n + 1;
    if (v < 1000)
      return n + 2;
    if (v < 10000)
      return n + 3;
    v /= 10000;
    n += 4;
  }
}

size_t gw_numtext_u64(uint64_t v, char *out) {
  size_t n = count_digits(v);
  char *p = out + n;
  *p = '\0';
  while (v >= 100) {
    unsigned r = (unsigned)(v % 100);
    v /= 100;
    p -= 2;
    memcpy(p, digit_pairs + 2 * r, 2);
  }
  if (v >= 10)
    memcpy(p - 2, digit_pairs + 2 * v, 2);
  else
    p[-1] = (char)('0' + v);
  return n;
}

size_t gw_numtext_i64(int64_t v, char *out) {
  if (v >= 0)
    return gw_numtext_u64((uint64_t)v, out);
  out[0] = '-';
  return 1 + gw_numtext_u64(0 - (uint64_t)v, out + 1);
}

size_t gw_numtext_hex(uint64_t v, int width, char *out) {
  static const char x[] = "0123456789abcdef";
  int n = v ? (67 - __builtin_clzll(v)) / 4 : 1; /* digits without padding */
  int len = n > width ? n : width;
  for (int i = len - 1; i >= 0; i--, v >>= 4) /* past the digits v is 0: the padding */
    out[i] = x[v & 15];
  out[len] = '\0';
  return (size_t)len;
}

/* |digits| (|nd| of them, no trailing zero; a buffer of at least 16 bytes)
 * with decimal exponent |x|, laid out as "%.*g" with precision |p| lays them
 * out. */
static size_t layout_g(int neg, const char *digits, int nd, int x, int p, char *out) {
  char *o = out;
  if (neg)
    *o++ = '-';
  if (x < -4 || x >= p) {
    *o++ = digits[0];
    if (nd > 1) {
      *o++ = '.';
      memcpy(o, digits + 1, (size_t)nd - 1);
      o += nd - 1;
    }
    *o++ = 'e';
    *o++ = x < 0 ? '-' : '+';
    int ax = x < 0 ? -x : x;
    if (ax >= 100) {
      *o++ = (char)('0' + ax / 100);
      ax %= 100;
    }
    *o++ = (char)('0' + ax / 10);
    *o++ = (char)('0' + ax % 10);
  } else if (x >= 0) {
    if (nd <= x + 1) {
      memcpy(o, digits, (size_t)nd);
      o += nd;
      for (int i = nd; i <= x; i++)
        *o++ = '0';
    } else {
      memcpy(o, digits, (size_t)x + 1);
      o += x + 1;
      *o++ = '.';
      memcpy(o, digits + x + 1, (size_t)(nd - x - 1));
      o += nd - x - 1;
    }
  } else {
    /* x >= -4: at most three zeros after the point. The copies are of a
     * fixed size (inline moves, no call); |digits| has 16 bytes and |out|
     * GW_NUMTEXT_MAX, so 1 + 5 + 16 fit. */
    memcpy(o, "0.000", 5);
    o += 2 + (-x - 1);
    if (nd <= 16)
      memcpy(o, digits, 16);
    else
      memcpy(o, digits, (size_t)nd);
    o += nd;
  }
  *o = '\0';
  return (size_t)(o - out);
}

/* |d| > 0 rounded to |p| significant digits: *n in [10^(p-1), 10^p) and *x
 * the decimal exponent of its first digit. *k is the exponent of |d| itself
 * (comes in as a guess, leaves exact for the next precision; it differs from
 * *x when rounding carries into a new digit, 9.9999996 -> 10.00000). 0 when
 * the one rounding cannot be trusted or the scale is past the exact powers. */
static int round_digits(double d, int p, int *k, int *x, uint64_t *n) {
  for (int tries = 0; tries < 4; tries++) {
    int s = p - 1 - *k;
    if (s > 22 || s < -22)
      return 0;
    double sc = s >= 0 ? d * exact_pow10[s] : d / exact_pow10[-s];
    /* Off by the product's one rounding only where the exact value is within
     * 2^-53 of a power of ten, and then p digits carry to the same text. */
    if (sc >= exact_pow10[p]) {
      (*k)++;
      continue;
    }
    if (sc < exact_pow10[p - 1]) {
      (*k)--;
      continue;
    }
    double whole = (double)(uint64_t)sc; /* floor: 0 <= sc < 10^p <= 2^63 */
    double frac = sc - whole;            /* exact: sc < 2^53 */
    if (fabs(frac - 0.5) <= sc * 0x1p-51)
      return 0; /* too near a tie to know which way the exact value rounds */
    double r = frac > 0.5 ? whole + 1 : whole;
    *x = *k;
    if (r >= exact_pow10[p]) { /* the carry */
      if (s - 1 < -22)
        return 0;
      r = exact_pow10[p - 1];
      (*x)++;
    }
    *n = (uint64_t)r;
    return 1;
  }
  return 0;
}

/* n * 10^(x - p + 1), correctly rounded to a double (n < 2^53, exact power). */
static double read_back(uint64_t n, int x, int p) {
  int s = p - 1 - x;
  return s >= 0 ? (double)n / exact_pow10[s] : (double)n * exact_pow10[-s];
}

static size_t emit(int neg, uint64_t n, int x, int p, char *out) {
  char digits[24];
  int nd = (int)gw_numtext_u64(n, digits);
  while (nd > 1 && digits[nd - 1] == '0')
    nd--;
  return layout_g(neg, digits, nd, x, p, out);
}

/* The reference: what the fast path must equal. */
static size_t printf_g(double v, int lo, int hi, int is_float, char *out) {
  for (int p = lo; p <= hi; p++) {
    snprintf(out, GW_NUMTEXT_MAX, "%.*g", p, v);
    if (is_float ? strtof(out, NULL) == (float)v : strtod(out, NULL) == v)
      break;
  }
  return strlen(out);
}

/* floor(log10(d)) or one below, for a normal |d| > 0: from its binary
 * exponent, read off the bits (frexp was a libm call per number). */
static int exponent_guess(double d) {
  uint64_t bits;
  memcpy(&bits, &d, sizeof bits);
  int e2 = (int)((bits >> 52) & 0x7ff) - 1023; /* d in [2^e2, 2^(e2+1)) */
  return (e2 * 78913) >> 18;                   /* floor(e2 * log10(2)) for |e2| < 1650 */
}

/* ------------------------------------------------------- floats, exactly
 *
 * A float is m * 2^e with m < 2^24, so for 10^-8 <= |v| < 10^9 the value
 * scaled to nine digits before the point, v * 10^s = m * 5^s * 2^(e+s), is a
 * 64-bit integer over a power of two: exact, with no rounding to reason
 * about. The midpoints to its two neighbours scale the same way, so whether
 * a p-digit rounding reads back to v (strtof: nearest, ties to even) is an
 * integer comparison. This is the range of embeddings, probabilities and
 * sampling parameters; the rest take the double path below. */

static const uint64_t pow5[17] = {
    1u,         5u,          25u,           125u,           625u,           3125u,
    15625u,     78125u,      390625u,       1953125u,       9765625u,       48828125u,
    244140625u, 1220703125u, 6103515625ull, 30517578125ull, 152587890625ull};

/* v scaled to nine digits: |whole| in [10^8, 10^9), the |q| bits below the
 * point in |frac|; and the whole numbers that read back to v: from |lo| to
 * |lo| + |span| (the midpoints to the neighbours, taken or left by strtof's
 * ties-to-even, rounded inwards when they have a fraction). */
struct scaled {
  uint32_t whole;
  uint64_t frac, half; /* half: 2^(q-1), 0 when q = 0 */
  uint64_t lo, span;
};

/* 1 when |r| (a rounding scaled back to nine digits) reads back to v: one
 * compare for both ends. */
static inline __attribute__((always_inline)) uint32_t reads_back(const struct scaled *x,
                                                                 uint32_t r) {
  return r - x->lo <= x->span;
}

/* The p-digit rounding of |x| (ties to even, on the exact value), scaled
 * back to nine digits, in |*r| when it reads back to v; |unit| = 10^(9-p),
 * a constant at each call. */
static inline __attribute__((always_inline)) int rounds_back(const struct scaled *x, uint32_t unit,
                                                             uint32_t *r) {
  uint32_t d = x->whole / unit, rem = x->whole - d * unit;
  int up;
  if (unit == 1)
    up = x->frac > x->half || (x->half && x->frac == x->half && (d & 1));
  else
    up = rem > unit / 2 || (rem == unit / 2 && (x->frac != 0 || (d & 1)));
  uint32_t back = (d + (uint32_t)up) * unit; /* at most 10^9 */
  if (!reads_back(x, back))
    return 0;
  *r = back;
  return 1;
}

/* The p-digit rounding of |x| scaled back to nine digits, |unit| = 10^(9-p)
 * >= 10, when |x| has a fraction: the exact value is then never on a
 * midpoint, and half a unit or more rounds up (rounds_back with no branch
 * and no tie to look at). */
static inline __attribute__((always_inline)) uint32_t round_frac(const struct scaled *x,
                                                                 uint32_t unit) {
  return (x->whole + unit / 2) / unit * unit; /* under 2^32: whole < 10^9 */
}

/* |ok| ? |a| : |b| for |ok| 0 or 1, as arithmetic (a conditional move). */
static inline __attribute__((always_inline)) uint32_t pick(uint32_t ok, uint32_t a, uint32_t b) {
  uint32_t m = 0u - ok;
  return (a & m) | (b & ~m);
}

/* The eight decimal digits of |d| < 10^8 as byte values 0-9, the first
 * digit in the low byte (text order on a little-endian machine): the two
 * halves of four digits split into pairs, the pairs into digits, each step
 * one multiplication for all lanes (x / 100 = x * 10486 >> 20 for x < 10^4,
 * x / 10 = x * 103 >> 10 for x < 100). */
static inline __attribute__((always_inline)) uint64_t eight_digit_values(uint32_t d) {
  uint64_t w = (uint64_t)(d / 10000) | ((uint64_t)(d % 10000) << 32);
  uint64_t hundreds = ((w * 10486) >> 20) & 0x0000007f0000007fu;
  w = hundreds | ((w - hundreds * 100) << 16);
  uint64_t tens = ((w * 103) >> 10) & 0x000f000f000f000fu;
  return tens | ((w - tens * 10) << 8);
}

/* The nine digits of |r| (10^8 <= r < 10^9) at |out| (9 bytes written);
 * returns how many are left without the trailing zeros: a rounding to p
 * digits, scaled back to nine, is its p digits and 9 - p zeros. */
static inline __attribute__((always_inline)) int write_nine(uint32_t r, char *out) {
  uint32_t first = r / 100000000u;
  uint64_t w = eight_digit_values(r - first * 100000000u);
  uint64_t text = w + 0x3030303030303030u;
  out[0] = (char)('0' + first);
  memcpy(out + 1, &text, 8);
  return 9 - __builtin_clzll(w | 1) / 8 - (w == 0); /* w | 1: the same highest byte */
}

/* The text of a float (sign bit |neg|) from |r|, its p-digit rounding
 * scaled to nine digits (10^8 <= r <= 10^9), and |k|, floor(log10 |v|). */
static inline __attribute__((always_inline)) size_t put_nine(uint32_t neg, uint32_t r, int k, int p,
                                                             char *out) {
  if (r == 1000000000u) { /* 9.9999996 -> 10.00000 */
    r = 100000000u;
    k++;
  }
  if (k < 0 && k >= -4) { /* 0.0123: the digits go straight to their place */
    char *o = out;
    *o = '-';
    o += neg;
    memcpy(o, "0.000", 5);
    o += 1 - k;
    o += write_nine(r, o); /* 9 bytes: 16 of GW_NUMTEXT_MAX at most */
    *o = '\0';
    return (size_t)(o - out);
  }
  char digits[16];
  int nd = write_nine(r, digits);
  return layout_g((int)neg, digits, nd, k, p, out);
}

/* The smallest float at or above 10^j for j = -8..9, as bits: a positive
 * float is at least 10^j exactly when its bits are at least these (positive
 * floats order as their bits). Found with exact rationals; from 10^0 on they
 * are the powers themselves. */
static const uint32_t pow10_float_bits[18] = {
    0x322bcc78u, 0x33d6bf95u, 0x358637beu, 0x3727c5adu, 0x38d1b718u, 0x3a83126fu,
    0x3c23d70bu, 0x3dcccccdu, 0x3f800000u, 0x41200000u, 0x42c80000u, 0x447a0000u,
    0x461c4000u, 0x47c35000u, 0x49742400u, 0x4b189680u, 0x4cbebc20u, 0x4e6e6b28u};

/* The "%.*g" text of the first precision in [6, 9] that reads back, for the
 * float whose bits are |bits|; 0 when |v| is outside the range above. */
static inline __attribute__((always_inline)) size_t float_exact(uint32_t bits, char *out) {
  uint32_t abits = bits & 0x7fffffffu;
  int be = (int)(abits >> 23);
  uint32_t m = (abits & 0x7fffffu) | 0x800000u;
  int k = ((be - 127) * 78913) >> 18; /* floor(log10 |v|), or one less */
  if ((unsigned)(k + 9) > 17)         /* |v| under 10^-9 or from 10^9 on: not here */
    return 0;
  k += abits >= pow10_float_bits[k + 9];           /* now exactly floor(log10 |v|) */
  int s = 8 - k, t = be - 152 + s;                 /* v * 10^s = vq * 5^s * 2^t */
  if ((unsigned)s > 16 || (unsigned)(t + 63) > 71) /* s in [0, 16], t in [-63, 8] */
    return 0;
  /* v and its midpoints in units of 2^(be - 152), a quarter of its spacing:
   * 4m and 4m +- 2; the gap below is half as wide at a power of two, 4m - 1.
   * A midpoint reads back to v when m is even. */
  int lopsided = m == 0x800000u && be > 1;
  uint64_t p5 = pow5[s];
  uint64_t nv = ((uint64_t)m << 2) * p5; /* < 2^64 */
  uint64_t nl = nv - (lopsided ? p5 : 2 * p5), nh = nv + 2 * p5;
  int q = 0;
  if (t >= 0) {
    nv <<= t; /* exact: the result is under 10^10 */
    nl <<= t;
    nh <<= t;
  } else {
    q = -t;
  }
  uint64_t whole = nv >> q, mask = ((uint64_t)1 << q) - 1; /* q <= 63 */
  if (whole - 100000000u >= 900000000u)
    return 0; /* not nine digits: the table above would be wrong */
  /* A midpoint with a fraction: the first whole number inside is the one
   * above (below for |hi|); one without: itself when m is even, else the
   * next one in. */
  int inclusive = (m & 1) == 0;
  uint64_t lo = (nl >> q) + ((nl & mask) != 0 || !inclusive);
  uint64_t hi = (nh >> q) - ((nh & mask) == 0 && !inclusive);
  struct scaled x = {.whole = (uint32_t)whole,
                     .frac = nv & mask,
                     .half = ((uint64_t)1 << q) >> 1, /* 0 when q = 0 */
                     .lo = lo,
                     .span = hi - lo};
  uint32_t r;
  int p;
  if (lopsided) { /* the argument below needs even gaps: in order */
    if (rounds_back(&x, 1000, &r))
      p = 6;
    else if (rounds_back(&x, 100, &r))
      p = 7;
    else if (rounds_back(&x, 10, &r))
      p = 8;
    else if (rounds_back(&x, 1, &r))
      p = 9;
    else
      return 0; /* nine digits always read back: not reached */
  } else if (x.frac != 0) {
    /* With gaps as wide on both sides, a precision that reads back is
     * followed by ones that do: p + 1 digits round at least as near to v,
     * and a tie lands on the mirror point, inside as the first was. So the
     * first precision is 8 less the number of shorter ones that read back
     * when 8 digits do (99 numbers in 100), worked out and picked from
     * without a branch: which of 6, 7 or 8 a number needs is a coin toss a
     * branch would mispredict. */
    uint32_t r8 = round_frac(&x, 10), r7 = round_frac(&x, 100), r6 = round_frac(&x, 1000);
    uint32_t ok7 = reads_back(&x, r7), ok6 = reads_back(&x, r6);
    if (__builtin_expect(reads_back(&x, r8), 1)) {
      r = pick(ok7, r7, r8);
      r = pick(ok6, r6, r);
      p = 8 - (int)(ok6 + ok7);
    } else if (rounds_back(&x, 1, &r)) {
      p = 9;
    } else {
      return 0; /* nine digits always read back: not reached */
    }
  } else if (rounds_back(&x, 100, &r)) { /* the same, with ties to even */
    uint32_t r6;
    p = 7;
    if (rounds_back(&x, 1000, &r6)) {
      p = 6;
      r = r6;
    }
  } else if (rounds_back(&x, 10, &r)) {
    p = 8;
  } else if (rounds_back(&x, 1, &r)) {
    p = 9;
  } else {
    return 0;
  }
  return put_nine(bits >> 31, r, k, p, out);
}

/* Any finite float but -0 (JSON's caller writes that), by its bits. */
static inline __attribute__((always_inline)) size_t float_text(uint32_t bits, char *out) {
  if (bits == 0) { /* a common value, and printf's case below */
    memcpy(out, "0", 2);
    return 1;
  }
  size_t len = float_exact(bits, out);
  if (len)
    return len;
  float v;
  memcpy(&v, &bits, sizeof v);
  double d = fabs((double)v);
  /* Normal floats only: there the low 29 bits of a double place it between
   * two floats, and a midpoint is exactly bit 28. */
  if (!(d >= 1e-30 && d <= 1e30))
    return printf_g(v, 6, 9, 1, out);
  int k = exponent_guess(d), x;
  for (int p = 6; p <= 9; p++) {
    uint64_t n;
    if (!round_digits(d, p, &k, &x, &n))
      break;
    double back = read_back(n, x, p);
    uint64_t dbits;
    memcpy(&dbits, &back, sizeof dbits);
    uint32_t low = (uint32_t)(dbits & 0x1fffffffu);
    if (low - 0x0fffffffu <= 2u)
      break; /* on a midpoint between two floats: double rounding may lie */
    if ((float)back == (float)d)
      return emit(v < 0, n, x, p, out);
  }
  return printf_g(v, 6, 9, 1, out);
}

size_t gw_numtext_float(float v, char *out) {
  uint32_t bits;
  memcpy(&bits, &v, sizeof bits);
  return float_text(bits, out);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define NUMTEXT_AVX2 1

/* ------------------------------------------------- eight floats at a time
 *
 * Where the CPU has AVX2, a vector's floats take the exact path above eight
 * at a time, in doubles: for 10^-4 <= |v| < 10^9 the scale s = 8 - k is
 * 0..12, and m * 5^s < 2^24 * 5^12 < 2^53, so v * 10^s, half the spacing
 * to the neighbours times 10^s (the gap), and the difference between a
 * rounding and v * 10^s (under 10^3, on the same grid of 2^-27 or coarser)
 * are all exact doubles: the same integer arithmetic, four lanes per
 * instruction, for the case float_exact picks without a branch (v * 10^s
 * with a fraction, gaps as wide on both sides).
 * - The roundings divide a whole number x below 2^30 by 10, 100 or 1000
 *   with one multiplication by the inverse, and the doubles nearest 0.1,
 *   0.01 and 0.001 are all above them: the product is never below the
 *   true quotient and is under it + 2^-25, while a true quotient is whole
 *   or at least 0.001 below the next whole number, so its floor is the
 *   true one.
 * - A rounding reads back when it is less than the gap from v * 10^s,
 *   never on it: the midpoints are odd multiples of 5^s * 2^(be-151+s), and
 *   with v * 10^s not whole (be - 150 + s < 0) no midpoint is whole.
 * A lane outside (smaller or larger values, an exact value, which can tie)
 * is printed by float_text. Powers of two, whose gap below is half as wide,
 * are among the exact ones here: 2^x * 10^s for x >= -13 is whole or ends
 * in one half (x + s >= -1). Every float of the range prints the same text
 * either way (tests/bench/numtext_check.sh). */

/* Four 32-bit lanes sign-extended to four doubles' lanes: a mask of int
 * lanes as a mask of double lanes. */
__attribute__((target("avx2"))) static inline __m256d wide_mask(__m128i lane) {
  return _mm256_castsi256_pd(_mm256_cvtepi32_epi64(lane));
}

/* |x| rounded to a multiple of |unit| (10, 100, 1000; |inv| is 1/unit),
 * half a unit up: |x| is a whole number below 2^30. */
__attribute__((target("avx2"))) static inline __m256d round_unit(__m256d x, double unit,
                                                                 double inv) {
  __m256d q = _mm256_mul_pd(_mm256_add_pd(x, _mm256_set1_pd(unit / 2)), _mm256_set1_pd(inv));
  return _mm256_mul_pd(_mm256_floor_pd(q), _mm256_set1_pd(unit));
}

/* All ones where |r| reads back: less than |gap| from |sc|. */
__attribute__((target("avx2"))) static inline __m256d in_gap(__m256d r, __m256d sc, __m256d gap) {
  __m256d dist = _mm256_andnot_pd(_mm256_set1_pd(-0.0), _mm256_sub_pd(r, sc));
  return _mm256_cmp_pd(dist, gap, _CMP_LT_OQ);
}

/* What four_exact leaves for four lanes, in registers: the nine digits of
 * each as text, and bytes (lane j in bits 8j..8j+7) for the rest. */
struct four {
  __m128i text01, text23; /* the eight digits after the first, lanes 0-1 and 2-3 */
  uint32_t first;         /* the first digit, as text */
  uint32_t k;             /* floor(log10 |v|) after a carry, as a signed byte */
  uint32_t p;             /* the precision */
  uint32_t nonzero;       /* a bit per digit of text01/text23 that is not '0' */
  unsigned fast;          /* a bit per lane this path covers */
};

/* A whole |x| divided by 10^4 or 10^8 and rounded down, |inv| the double
 * nearest 10^-4 or 10^-8: as for the roundings, both doubles are above the
 * true inverse, and |x| is under 10^5 or 10^9 times it (the quotient's
 * error, under 10^-11, is far from the 10^-4 or 10^-8 that its fraction
 * keeps from the next whole number). */
__attribute__((target("avx2"))) static inline __m256d div_down(__m256d x, double inv) {
  return _mm256_floor_pd(_mm256_mul_pd(x, _mm256_set1_pd(inv)));
}

/* Four int lanes of small values as bytes: lane j in bits 8j..8j+7. */
__attribute__((target("avx2"))) static inline uint32_t lane_bytes(__m128i x) {
  return (uint32_t)_mm_cvtsi128_si32(_mm_packs_epi16(_mm_packs_epi32(x, x), x));
}

/* The eight digits of four numbers below 10^8, given as their halves of
 * four digits (below 10^4), as digit values: two registers of two numbers
 * each, the first digit lowest. In 16-bit lanes: x / 100 = x * 5243 >> 19
 * for x < 10^4, y / 10 = y * 6554 >> 16 for y < 100. */
__attribute__((target("avx2"))) static inline void eight_digits4(__m128i hi4, __m128i lo4,
                                                                 __m128i *d01, __m128i *d23) {
  __m128i x = _mm_or_si128(hi4, _mm_slli_epi32(lo4, 16)); /* 16-bit lanes: hi, lo, hi, lo... */
  __m128i a = _mm_srli_epi16(_mm_mulhi_epu16(x, _mm_set1_epi16(5243)), 3);
  __m128i b = _mm_sub_epi16(x, _mm_mullo_epi16(a, _mm_set1_epi16(100)));
  __m128i y[2] = {_mm_unpacklo_epi16(a, b), _mm_unpackhi_epi16(a, b)}; /* pairs in order */
  for (int h = 0; h < 2; h++) {
    __m128i t = _mm_mulhi_epu16(y[h], _mm_set1_epi16(6554));
    __m128i u = _mm_sub_epi16(y[h], _mm_mullo_epi16(t, _mm_set1_epi16(10)));
    y[h] = _mm_or_si128(t, _mm_slli_epi16(u, 8));
  }
  *d01 = y[0];
  *d23 = y[1];
}

/* Four lanes: |ab| the floats' magnitudes, |s| their scales, |k| their
 * decimal exponents, |dom| the lanes in range. */
__attribute__((target("avx2"))) static inline __attribute__((always_inline)) struct four
four_exact(__m128 ab, __m128i s, __m128i k, __m128i dom) {
  struct four f;
  __m256d p10 = _mm256_i32gather_pd(exact_pow10, s, 8);
  __m256d d = _mm256_cvtps_pd(ab);
  /* half the spacing: the exponent bits alone are 2^(be-127), the spacing
   * 2^(be-150) */
  __m128 hu = _mm_mul_ps(_mm_and_ps(ab, _mm_castsi128_ps(_mm_set1_epi32(0x7f800000))),
                         _mm_set1_ps(0x1p-24f));
  __m256d gap = _mm256_mul_pd(_mm256_cvtps_pd(hu), p10);
  __m256d sc = _mm256_mul_pd(d, p10);
  __m256d whole = _mm256_floor_pd(sc), frac = _mm256_sub_pd(sc, whole);
  __m256d r8 = round_unit(whole, 10, 0.1), r7 = round_unit(whole, 100, 0.01),
          r6 = round_unit(whole, 1000, 0.001);
  __m256d m8 = in_gap(r8, sc, gap), m7 = in_gap(r7, sc, gap), m6 = in_gap(r6, sc, gap);
  __m256d one = _mm256_set1_pd(1), half = _mm256_set1_pd(0.5);
  /* nine digits: always read back (the gap is at least 2.9); a fraction
   * of one half would tie, and is left out below */
  __m256d r9 = _mm256_add_pd(whole, _mm256_and_pd(_mm256_cmp_pd(frac, half, _CMP_GT_OQ), one));
  __m256d rr = _mm256_blendv_pd(r8, r7, m7); /* as float_exact picks */
  rr = _mm256_blendv_pd(rr, r6, m6);
  rr = _mm256_blendv_pd(r9, rr, m8);
  /* as float_exact: 8 digits less the shorter ones that read back when 8
   * do, else 9 */
  __m256d shorter = _mm256_add_pd(_mm256_and_pd(m7, one), _mm256_and_pd(m6, one));
  __m256d pp = _mm256_sub_pd(_mm256_set1_pd(9), _mm256_and_pd(m8, _mm256_add_pd(one, shorter)));
  f.p = lane_bytes(_mm256_cvttpd_epi32(pp));
  /* 9.9999996 -> 10.00000: ten digits become the nine of the next power */
  __m256d carry = _mm256_cmp_pd(rr, _mm256_set1_pd(1e9), _CMP_EQ_OQ);
  rr = _mm256_blendv_pd(rr, _mm256_set1_pd(1e8), carry);
  f.k = lane_bytes(_mm_sub_epi32(k, _mm256_cvttpd_epi32(_mm256_and_pd(carry, _mm256_set1_pd(-1)))));
  __m256d first = div_down(rr, 1e-8);
  __m256d rest = _mm256_sub_pd(rr, _mm256_mul_pd(first, _mm256_set1_pd(1e8)));
  __m256d hi = div_down(rest, 1e-4);
  __m256d lo = _mm256_sub_pd(rest, _mm256_mul_pd(hi, _mm256_set1_pd(1e4)));
  f.first = lane_bytes(_mm256_cvttpd_epi32(first)) + 0x30303030u;
  __m128i d01, d23, z = _mm_setzero_si128();
  eight_digits4(_mm256_cvttpd_epi32(hi), _mm256_cvttpd_epi32(lo), &d01, &d23);
  f.nonzero = ~((uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(d01, z)) |
                (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(d23, z)) << 16);
  f.text01 = _mm_add_epi8(d01, _mm_set1_epi8('0'));
  f.text23 = _mm_add_epi8(d23, _mm_set1_epi8('0'));
  __m256d exact = _mm256_or_pd(_mm256_cmp_pd(frac, _mm256_setzero_pd(), _CMP_EQ_OQ),
                               _mm256_cmp_pd(frac, half, _CMP_EQ_OQ));
  f.fast = (unsigned)_mm256_movemask_pd(_mm256_andnot_pd(exact, wide_mask(dom)));
  return f;
}

/* A lane four_exact does not cover: the one-number path, out of line (one
 * copy, not eight). */
__attribute__((noinline)) static size_t float_text_slow(uint32_t bits, char *out) {
  return float_text(bits, out);
}

/* Lane |j| of |f| as put_nine writes it (|rest|: its eight digits after the
 * first), and a comma after it. */
__attribute__((target("avx2"))) static inline __attribute__((always_inline)) char *
lane_out(const struct four *f, int j, uint64_t rest, uint32_t bits, char *o) {
  if (!(f->fast >> j & 1)) {
    o += float_text_slow(bits, o);
  } else {
    int k = (int8_t)(f->k >> 8 * j);
    /* 1 + the place of the last digit that is not 0 */
    int nd = 32 - __builtin_clz((f->nonzero >> 8 * j & 0xffu) << 1 | 1);
    char first = (char)(f->first >> 8 * j);
    if (k < 0) { /* k is -4..-1 here */
      *o = '-';
      o += bits >> 31;
      memcpy(o, "0.000", 5);
      o += 1 - k;
      *o = first;
      memcpy(o + 1, &rest, 8);
      o += nd;
    } else {
      char digits[16];
      digits[0] = first;
      memcpy(digits + 1, &rest, 8);
      o += layout_g((int)(bits >> 31), digits, nd, k, (int)(f->p >> 8 * j & 0xffu), o);
    }
  }
  *o = ',';
  return o + 1;
}

/* gw_numtext_floats's loop, eight at a time; stops before a group with a
 * float it does not write (not finite, -0) or fewer than eight left.
 * Returns the index reached; |*o| moves on. */
__attribute__((target("avx2"))) static size_t floats_avx2(const float *v, size_t n, char **op) {
  const __m256i expo = _mm256_set1_epi32(0x7f800000), negzero = _mm256_set1_epi32(INT32_MIN);
  const __m256i low = _mm256_set1_epi32((int)pow10_float_bits[4]), /* 10^-4 */
      high = _mm256_set1_epi32((int)pow10_float_bits[17]),         /* 10^9 */
      one = _mm256_set1_epi32(1), zero = _mm256_setzero_si256();
  char *o = *op;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i b = _mm256_loadu_si256((const __m256i *)(v + i));
    __m256i stop = _mm256_or_si256(_mm256_cmpeq_epi32(_mm256_and_si256(b, expo), expo),
                                   _mm256_cmpeq_epi32(b, negzero));
    if (!_mm256_testz_si256(stop, stop))
      break;
    __m256i ab = _mm256_and_si256(b, _mm256_set1_epi32(0x7fffffff));
    /* 10^-4 <= |v| < 10^9 */
    __m256i dom = _mm256_andnot_si256(_mm256_cmpgt_epi32(low, ab), _mm256_cmpgt_epi32(high, ab));
    /* k = floor(log10 |v|) as float_exact finds it; lanes outside the
     * range get clamped indexes and are not used */
    __m256i be = _mm256_srli_epi32(ab, 23);
    __m256i k = _mm256_srai_epi32(
        _mm256_mullo_epi32(_mm256_sub_epi32(be, _mm256_set1_epi32(127)), _mm256_set1_epi32(78913)),
        18);
    __m256i at = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(9)), zero),
                                  _mm256_set1_epi32(17));
    __m256i th = _mm256_i32gather_epi32((const int *)pow10_float_bits, at, 4);
    k = _mm256_sub_epi32(k, _mm256_cmpgt_epi32(ab, _mm256_sub_epi32(th, one)));
    __m256i s = _mm256_min_epi32(_mm256_max_epi32(_mm256_sub_epi32(_mm256_set1_epi32(8), k), zero),
                                 _mm256_set1_epi32(22));
    __m256 af = _mm256_castsi256_ps(ab);
    uint32_t u[8];
    memcpy(u, v + i, sizeof u);
    struct four f = four_exact(_mm256_castps256_ps128(af), _mm256_castsi256_si128(s),
                               _mm256_castsi256_si128(k), _mm256_castsi256_si128(dom));
    o = lane_out(&f, 0, (uint64_t)_mm_cvtsi128_si64(f.text01), u[0], o);
    o = lane_out(&f, 1, (uint64_t)_mm_extract_epi64(f.text01, 1), u[1], o);
    o = lane_out(&f, 2, (uint64_t)_mm_cvtsi128_si64(f.text23), u[2], o);
    o = lane_out(&f, 3, (uint64_t)_mm_extract_epi64(f.text23, 1), u[3], o);
    f = four_exact(_mm256_extractf128_ps(af, 1), _mm256_extracti128_si256(s, 1),
                   _mm256_extracti128_si256(k, 1), _mm256_extracti128_si256(dom, 1));
    o = lane_out(&f, 0, (uint64_t)_mm_cvtsi128_si64(f.text01), u[4], o);
    o = lane_out(&f, 1, (uint64_t)_mm_extract_epi64(f.text01, 1), u[5], o);
    o = lane_out(&f, 2, (uint64_t)_mm_cvtsi128_si64(f.text23), u[6], o);
    o = lane_out(&f, 3, (uint64_t)_mm_extract_epi64(f.text23, 1), u[7], o);
  }
  if (i) { /* the last comma goes: the caller's loop puts one before */
    o--;
    *o = '\0';
  }
  *op = o;
  return i;
}
#endif

size_t gw_numtext_floats(const float *v, size_t n, char *out, size_t *done) {
  char *o = out;
  size_t i = 0;
#ifdef NUMTEXT_AVX2
  if (n >= 8 && __builtin_cpu_supports("avx2"))
    i = floats_avx2(v, n, &o);
#endif
  for (; i < n; i++) {
    uint32_t bits;
    memcpy(&bits, &v[i], sizeof bits);
    /* infinities and NaN (all exponent bits set), and -0 */
    if ((bits & 0x7f800000u) == 0x7f800000u || bits == 0x80000000u)
      break;
    *o = ',';
    o += i != 0;
    o += float_text(bits, o);
  }
  *done = i;
  return (size_t)(o - out);
}

size_t gw_numtext_double(double v, char *out) {
  double d = fabs(v);
  if (!(d >= 1e-300 && d <= 1e300))
    return printf_g(v, 15, 17, 0, out);
  int k = exponent_guess(d), x;
  uint64_t n; /* 15 digits stay under 2^53: the read-back is exact-rounded */
  if (round_digits(d, 15, &k, &x, &n) && read_back(n, x, 15) == d)
    return emit(v < 0, n, x, 15, out);
  return printf_g(v, 15, 17, 0, out);
}
