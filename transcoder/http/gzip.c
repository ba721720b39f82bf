/* gzip for the HTTP layer: inflating request bodies under a size cap and
 * compressing whole response bodies, plus the small header tests around them. */
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "core/alloc.h"
#include "core/status.h"
#include "transcoder/http/internal.h"

/* zlib allocates through gw_malloc so the fail-malloc sweeps see it. */
static voidpf zalloc(voidpf opaque, uInt items, uInt size) {
  (void)opaque;
  return gw_calloc(items, size);
}

static void zfree(voidpf opaque, voidpf p) {
  (void)opaque;
  gw_free(p);
}

/* Inflates the gzip stream |in|/|n| into |out| (appended). More than |cap|
 * inflated bytes is GW_ERR_TOOBIG: a bomb stops at the cap, never beyond.
 * GW_ERR_INVALID for a corrupt or truncated stream, GW_ERR_NOMEM. */
int gw_http_gunzip(const void *in, size_t n, size_t cap, gw_buf *out) {
  z_stream z;
  unsigned char chunk[16384];
  int rc = GW_OK, zr;
  size_t total = 0;

  memset(&z, 0, sizeof z);
  z.zalloc = zalloc;
  z.zfree = zfree;
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
    return GW_ERR_NOMEM;
  z.next_in = (Bytef *)in;
  z.avail_in = (uInt)n;
  do {
    z.next_out = chunk;
    z.avail_out = sizeof chunk;
    zr = inflate(&z, Z_NO_FLUSH);
    if (zr == Z_MEM_ERROR) {
      rc = GW_ERR_NOMEM;
      goto done;
    }
    if (zr != Z_OK && zr != Z_STREAM_END) {
      rc = GW_ERR_INVALID;
      goto done;
    }
    size_t got = sizeof chunk - z.avail_out;
    total += got;
    if (total > cap) {
      rc = GW_ERR_TOOBIG;
      goto done;
    }
    rc = gw_buf_append(out, chunk, got);
    if (rc != GW_OK)
      goto done;
    if (zr == Z_OK && z.avail_in == 0 && got == 0) {
      rc = GW_ERR_INVALID; /* truncated */
      goto done;
    }
  } while (zr != Z_STREAM_END);
done:
  inflateEnd(&z);
  return rc;
}

/* Compresses |in|/|n| as one gzip member appended to |out|. */
int gw_http_gzip(const void *in, size_t n, gw_buf *out) {
  z_stream z;
  unsigned char chunk[16384];
  int rc = GW_OK, zr;

  memset(&z, 0, sizeof z);
  z.zalloc = zalloc;
  z.zfree = zfree;
  if (deflateInit2(&z, 5, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return GW_ERR_NOMEM;
  z.next_in = (Bytef *)in;
  z.avail_in = (uInt)n;
  do {
    z.next_out = chunk;
    z.avail_out = sizeof chunk;
    zr = deflate(&z, Z_FINISH);
    if (zr == Z_STREAM_ERROR) {
      rc = GW_ERR_INVALID;
      goto done;
    }
    rc = gw_buf_append(out, chunk, sizeof chunk - z.avail_out);
    if (rc != GW_OK)
      goto done;
  } while (zr != Z_STREAM_END);
done:
  deflateEnd(&z);
  return rc;
}

/* 1 when a body of |content_type| is worth compressing. Never event streams:
 * they must reach the client event by event. */
int gw_http_gzip_compressible(const char *content_type) {
  if (!content_type)
    return 0;
  if (strncasecmp(content_type, "text/event-stream", 17) == 0)
    return 0;
  if (strncasecmp(content_type, "text/", 5) == 0)
    return 1;
  static const char *const types[] = {"application/json", "application/javascript",
                                      "application/xml", "application/x-ndjson"};
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
    if (strncasecmp(content_type, types[i], strlen(types[i])) == 0)
      return 1;
  const char *semi = strchr(content_type, ';');
  size_t len = semi ? (size_t)(semi - content_type) : strlen(content_type);
  return len >= 5 && strncasecmp(content_type + len - 5, "+json", 5) == 0;
}

/* 1 when the Accept-Encoding value lists gzip (or *) with a nonzero q. */
int gw_http_accepts_gzip(const char *ae) {
  if (!ae)
    return 0;
  const char *p = ae;
  while (*p) {
    while (*p == ' ' || *p == '\t' || *p == ',')
      p++;
    const char *tok = p;
    while (*p && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
      p++;
    size_t tlen = (size_t)(p - tok);
    int match = (tlen == 4 && strncasecmp(tok, "gzip", 4) == 0) ||
                (tlen == 6 && strncasecmp(tok, "x-gzip", 6) == 0) || (tlen == 1 && *tok == '*');
    int q_zero = 0;
    while (*p && *p != ',') {
      if (*p == ';') {
        p++;
        while (*p == ' ' || *p == '\t')
          p++;
        if ((p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
          const char *v = p + 2;
          q_zero = v[0] == '0';
          for (v++; q_zero && *v && *v != ',' && *v != ';'; v++)
            if (*v != '.' && *v != '0' && *v != ' ')
              q_zero = 0;
        }
        continue;
      }
      p++;
    }
    if (match && !q_zero)
      return 1;
  }
  return 0;
}
