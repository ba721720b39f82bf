/* AWS Signature Version 4 (HMAC-SHA256 on OpenSSL) for one HTTP request:
 * the canonical request, the string to sign, the derived key and the
 * Authorization header value, as AWS documents them ("Create a signed AWS
 * API request"). Paths are canonicalised the way every service but S3 does:
 * the path as sent is URI-encoded once more, segment by segment. */
#ifndef GW_CORE_SIGV4_H
#define GW_CORE_SIGV4_H

#include <stddef.h>

#include "core/buf.h"

typedef struct gw_sigv4_header {
  const char *name, *value; /* any case; values are trimmed when signed */
} gw_sigv4_header;

typedef struct gw_sigv4_request {
  const char *method;
  const char *path;  /* as sent on the wire (already percent-encoded), "/" when empty */
  const char *query; /* as sent, without "?"; NULL or "" for none */
  const gw_sigv4_header *headers; /* every header to sign; host and x-amz-date included */
  size_t n_headers;
  const void *payload;
  size_t payload_len;
} gw_sigv4_request;

typedef struct gw_sigv4_credentials {
  const char *access_key_id, *secret_access_key; /* secrets */
  const char *region, *service;
} gw_sigv4_credentials;

/* Appends the Authorization header value ("AWS4-HMAC-SHA256 Credential=...,
 * SignedHeaders=..., Signature=...") for |req| signed at |amz_date|
 * ("YYYYMMDDTHHMMSSZ") to |out|. When |canonical| is not NULL the canonical
 * request is appended to it (for tests). GW_OK, GW_ERR_INVALID (a bad date)
 * or GW_ERR_NOMEM/GW_ERR_TOOBIG. */
int gw_sigv4_authorization(const gw_sigv4_request *req, const gw_sigv4_credentials *cred,
                           const char *amz_date, gw_buf *out, gw_buf *canonical);

/* Lower-case hex SHA-256 of |n| bytes into |hex| (65 bytes). */
void gw_sigv4_sha256_hex(const void *p, size_t n, char hex[65]);

/* "YYYYMMDDTHHMMSSZ" for |unix_time| (UTC) into |out| (17 bytes). */
void gw_sigv4_amz_date(long long unix_time, char out[17]);

#endif
