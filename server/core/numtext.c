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
  char tmp[16];
  int n = 0;
  do {
    tmp[n++] = x[v & 15];
    v >>= 4;
  } while (v);
  int len = n > width ? n : width;
  for (int i = 0; i < len; i++)
    out[i] = i < len - n ? '0' : tmp[len - 1 - i];
  out[len] = '\0';
  return (size_t)len;
}

/* |digits| (|nd| of them, no trailing zero) with decimal exponent |x|, laid
 * out as "%.*g" with precision |p| lays them out. */
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
    *o++ = '0';
    *o++ = '.';
    for (int i = 0; i < -x - 1; i++)
      *o++ = '0';
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

size_t gw_numtext_float(float v, char *out) {
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
    uint64_t bits;
    memcpy(&bits, &back, sizeof bits);
    uint32_t low = (uint32_t)(bits & 0x1fffffffu);
    if (low - 0x0fffffffu <= 2u)
      break; /* on a midpoint between two floats: double rounding may lie */
    if ((float)back == (float)d)
      return emit(v < 0, n, x, p, out);
  }
  return printf_g(v, 6, 9, 1, out);
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
