/* Numbers as JSON text without printf: integers, and the shortest "%.*g"
 * text that reads back to the same float or double.
 *
 * printf("%.*g") goes through glibc's multi-precision code and strtod/strtof
 * to check each try; for an embedding of 1,536 floats that was most of the
 * cost of writing the answer. These produce the same text as
 *
 *   for (p = lo; p <= hi; p++) { snprintf(t, n, "%.*g", p, v); if (read(t) == v) break; }
 *
 * (lo, hi = 6, 9 for a float and 15, 17 for a double) for every finite value:
 * the common cases from one exact multiplication, checked by one correctly
 * rounded division; anything the fast path cannot prove falls back to that
 * loop itself. */
#ifndef GW_CORE_NUMTEXT_H
#define GW_CORE_NUMTEXT_H

#include <stddef.h>
#include <stdint.h>

/* Room for any text these write, with the NUL. */
#define GW_NUMTEXT_MAX 32

/* Decimal text of |v| into |out| (GW_NUMTEXT_MAX bytes); returns its length. */
size_t gw_numtext_u64(uint64_t v, char *out);
size_t gw_numtext_i64(int64_t v, char *out);
/* Lower-case hex of |v|, left-padded with zeros to |width| digits (0: as
 * few as it takes); returns the length. */
size_t gw_numtext_hex(uint64_t v, int width, char *out);

/* The shortest round-tripping "%g" text of a finite |v| (see above). NaN,
 * infinities and -0 are the caller's: JSON has no words for them. */
size_t gw_numtext_float(float v, char *out);
size_t gw_numtext_double(double v, char *out);

/* The floats of |v| as gw_numtext_float writes them, comma-separated, up to
 * the first that is not finite or is -0 (JSON's caller writes those); how
 * many were written goes to |*done|. |out| needs n * (GW_NUMTEXT_MAX + 1)
 * bytes; the text is NUL-terminated when |*done| > 0. Returns its length.
 * One call for an embedding's vector: no call, no register saves per number. */
size_t gw_numtext_floats(const float *v, size_t n, char *out, size_t *done);

#endif
