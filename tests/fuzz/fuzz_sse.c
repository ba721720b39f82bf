/* libFuzzer target for the SSE reader: the events read from an input fed in
 * one piece must equal the events read when the same bytes arrive split at
 * the points the first input byte selects (every chunking of a stream is
 * legal on the wire). Caps and errors must agree too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "pipeline/sse.h"

#define CAP 4096

/* Appends every event's "name\x1fdata\x1e" to |out|; returns the first
 * error, or 0. */
static int drain(gw_sse_reader *r, char *out, size_t *n, size_t max) {
  gw_sse_event ev;
  int rc;
  while ((rc = gw_sse_reader_next(r, &ev)) == 1) {
    size_t el = strlen(ev.event);
    if (*n + el + ev.len + 2 > max)
      abort(); /* more output than input could make */
    memcpy(out + *n, ev.event, el);
    *n += el;
    out[(*n)++] = 0x1f;
    memcpy(out + *n, ev.data, ev.len);
    *n += ev.len;
    out[(*n)++] = ev.done ? 0x1d : 0x1e;
  }
  return rc;
}

static int run(const uint8_t *data, size_t size, unsigned step, char *out, size_t *n, size_t max) {
  gw_sse_reader r;
  gw_sse_reader_init(&r, CAP);
  int rc = 0;
  size_t off = 0;
  while (off < size && rc == 0) {
    size_t k = step ? step : size;
    if (k > size - off)
      k = size - off;
    rc = gw_sse_reader_feed(&r, (const char *)data + off, k);
    off += k;
    if (rc == 0)
      rc = drain(&r, out, n, max);
  }
  gw_sse_reader_release(&r);
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 65536)
    return 0;
  unsigned step = (unsigned)(data[0] % 16) + 1;
  data++, size--;
  size_t max = 2 * size + 64;
  char *a = malloc(max), *b = malloc(max);
  size_t na = 0, nb = 0;
  int ra = run(data, size, 0, a, &na, max);
  int rb = run(data, size, step, b, &nb, max);
  /* Over-cap input may be noticed at different points; otherwise the two
   * readings must agree exactly. */
  if (ra == GW_OK && rb == GW_OK && (na != nb || memcmp(a, b, na) != 0))
    abort();
  if ((ra == GW_ERR_TOOBIG) != (rb == GW_ERR_TOOBIG) && size < CAP)
    abort();
  free(a);
  free(b);
  return 0;
}
