/* AWS event-stream framing decoder. */
#include "core/eventstream.h"

#include <string.h>
#include <zlib.h>

#include "core/status.h"

#define PRELUDE 12
#define TRAILER 4

uint32_t gw_eventstream_crc32(uint32_t crc, const void *p, size_t n) {
  const unsigned char *b = p;
  uLong c = crc;
  while (n > 0) { /* zlib takes uInt lengths */
    uInt k = n > 0x40000000u ? 0x40000000u : (uInt)n;
    c = crc32(c, b, k);
    b += k;
    n -= k;
  }
  return (uint32_t)c;
}

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

void gw_eventstream_init(gw_eventstream_decoder *d, size_t cap) {
  memset(d, 0, sizeof(*d));
  d->cap = cap;
  /* One message plus what curl delivers at once beyond it. */
  gw_buf_init(&d->in, 2 * cap + (64 << 10));
}

void gw_eventstream_release(gw_eventstream_decoder *d) { gw_buf_release(&d->in); }

int gw_eventstream_feed(gw_eventstream_decoder *d, const void *p, size_t n) {
  if (d->pos) {
    gw_buf_consume(&d->in, d->pos);
    d->pos = 0;
  }
  return gw_buf_append(&d->in, p, n);
}

bool gw_eventstream_pending(const gw_eventstream_decoder *d) { return d->in.len > d->pos; }

static void copy_str(char *dst, size_t cap, const unsigned char *v, size_t n) {
  size_t k = n < cap - 1 ? n : cap - 1;
  memcpy(dst, v, k);
  dst[k] = '\0';
}

/* Walks the header section |h| (|n| bytes) into |m|. GW_OK or GW_ERR_INVALID. */
static int parse_headers(const unsigned char *h, size_t n, gw_eventstream_message *m) {
  static const struct {
    const char *name;
    size_t off, cap;
  } known[] = {
      {":message-type", offsetof(gw_eventstream_message, message_type), 32},
      {":event-type", offsetof(gw_eventstream_message, event_type), 64},
      {":exception-type", offsetof(gw_eventstream_message, exception_type), 64},
      {":content-type", offsetof(gw_eventstream_message, content_type), 64},
      {":error-code", offsetof(gw_eventstream_message, error_code), 64},
      {":error-message", offsetof(gw_eventstream_message, error_message), 256},
  };
  size_t i = 0;
  while (i < n) {
    size_t nl = h[i++];
    if (nl == 0 || i + nl + 1 > n)
      return GW_ERR_INVALID;
    const unsigned char *name = h + i;
    i += nl;
    unsigned type = h[i++];
    size_t vlen;
    const unsigned char *v = h + i;
    switch (type) {
    case GW_ES_BOOL_TRUE:
    case GW_ES_BOOL_FALSE: vlen = 0; break;
    case GW_ES_BYTE: vlen = 1; break;
    case GW_ES_SHORT: vlen = 2; break;
    case GW_ES_INT: vlen = 4; break;
    case GW_ES_LONG:
    case GW_ES_TIMESTAMP: vlen = 8; break;
    case GW_ES_UUID: vlen = 16; break;
    case GW_ES_BYTES:
    case GW_ES_STRING:
      if (i + 2 > n)
        return GW_ERR_INVALID;
      vlen = (size_t)h[i] << 8 | h[i + 1];
      i += 2;
      v = h + i;
      break;
    default: return GW_ERR_INVALID;
    }
    if (i + vlen > n)
      return GW_ERR_INVALID;
    i += vlen;
    m->n_headers++;
    if (type != GW_ES_STRING)
      continue;
    for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
      if (strlen(known[k].name) == nl && memcmp(known[k].name, name, nl) == 0)
        copy_str((char *)m + known[k].off, known[k].cap, v, vlen);
  }
  return GW_OK;
}

int gw_eventstream_next(gw_eventstream_decoder *d, gw_eventstream_message *m) {
  size_t left = d->in.len - d->pos;
  if (left < PRELUDE)
    return 0;
  const unsigned char *p = (const unsigned char *)d->in.data + d->pos;
  uint32_t total = be32(p), hlen = be32(p + 4);
  if (gw_eventstream_crc32(0, p, 8) != be32(p + 8))
    return GW_ERR_INVALID;
  if (total < PRELUDE + TRAILER || hlen > total - PRELUDE - TRAILER)
    return GW_ERR_INVALID;
  if (total > d->cap)
    return GW_ERR_TOOBIG;
  if (left < total)
    return 0;
  if (gw_eventstream_crc32(0, p, total - TRAILER) != be32(p + total - TRAILER))
    return GW_ERR_INVALID;
  memset(m, 0, sizeof(*m));
  int rc = parse_headers(p + PRELUDE, hlen, m);
  if (rc != GW_OK)
    return rc;
  m->payload = (const char *)p + PRELUDE + hlen;
  m->payload_len = total - PRELUDE - hlen - TRAILER;
  d->pos += total;
  return 1;
}
