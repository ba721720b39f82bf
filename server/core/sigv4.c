/* AWS Signature Version 4. */
/* SHA256_Init/Update/Final: OpenSSL 3 marks them deprecated in favour of
 * EVP, whose one-shot calls fetch and free an implementation every time
 * (HMAC() was ~21K instructions per call here, against ~2K for the same
 * work on the plain functions). They stay in every OpenSSL 3 release. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "core/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/status.h"

static void hex(const unsigned char *d, size_t n, char *out) {
  static const char x[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = x[d[i] >> 4];
    out[2 * i + 1] = x[d[i] & 15];
  }
  out[2 * n] = '\0';
}

static void sha256(const void *p, size_t n, unsigned char out[SHA256_DIGEST_LENGTH]) {
  SHA256_CTX c;
  SHA256_Init(&c);
  SHA256_Update(&c, p, n);
  SHA256_Final(out, &c);
}

void gw_sigv4_sha256_hex(const void *p, size_t n, char out[65]) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  sha256(p, n, d);
  hex(d, sizeof d, out);
}

void gw_sigv4_amz_date(long long t, char out[17]) {
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* HMAC-SHA256 (RFC 2104) of the string |msg| under |key|. */
static int hmac(const void *key, size_t klen, const char *msg, unsigned char out[32]) {
  unsigned char k[SHA256_CBLOCK] = {0}, pad[SHA256_CBLOCK], inner[SHA256_DIGEST_LENGTH];
  if (klen > sizeof k)
    sha256(key, klen, k);
  else
    memcpy(k, key, klen);
  SHA256_CTX c;
  for (size_t i = 0; i < sizeof k; i++)
    pad[i] = k[i] ^ 0x36;
  SHA256_Init(&c);
  SHA256_Update(&c, pad, sizeof pad);
  SHA256_Update(&c, msg, strlen(msg));
  SHA256_Final(inner, &c);
  for (size_t i = 0; i < sizeof k; i++)
    pad[i] = k[i] ^ 0x5c;
  SHA256_Init(&c);
  SHA256_Update(&c, pad, sizeof pad);
  SHA256_Update(&c, inner, sizeof inner);
  SHA256_Final(out, &c);
  OPENSSL_cleanse(k, sizeof k);
  OPENSSL_cleanse(pad, sizeof pad);
  OPENSSL_cleanse(inner, sizeof inner);
  OPENSSL_cleanse(&c, sizeof c);
  return GW_OK;
}

/* Appends the |n| strings of |parts|, in order. */
static int append_all(gw_buf *b, const char *const *parts, size_t n) {
  int rc = GW_OK;
  for (size_t i = 0; i < n && rc == GW_OK; i++)
    rc = gw_buf_appends(b, parts[i]);
  return rc;
}
#define APPEND_ALL(b, ...)                                                                         \
  append_all((b), (const char *const[]){__VA_ARGS__},                                              \
             sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

static int unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

/* Each path segment URI-encoded (the '/' kept). */
static int canonical_path(const char *path, gw_buf *out) {
  if (!path || !*path)
    return gw_buf_appendc(out, '/');
  int rc = GW_OK;
  for (const unsigned char *p = (const unsigned char *)path; *p && rc == GW_OK; p++)
    rc = *p == '/' || unreserved(*p) ? gw_buf_appendc(out, (char)*p)
                                     : gw_buf_printf(out, "%%%02X", *p);
  return rc;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The query's parameters (already encoded as sent) sorted; "k" becomes "k=". */
static int canonical_query(const char *q, gw_buf *out) {
  if (!q || !*q)
    return GW_OK;
  char *copy = gw_strdup(q);
  size_t n = 1;
  for (const char *p = q; *p; p++)
    n += *p == '&';
  char **parts = gw_calloc(n, sizeof *parts);
  int rc = GW_ERR_NOMEM;
  if (!copy || !parts)
    goto done;
  size_t k = 0;
  for (char *save = NULL, *t = strtok_r(copy, "&", &save); t; t = strtok_r(NULL, "&", &save))
    parts[k++] = t;
  qsort(parts, k, sizeof *parts, cmp_str);
  rc = GW_OK;
  for (size_t i = 0; i < k && rc == GW_OK; i++) {
    if (i)
      rc = gw_buf_appendc(out, '&');
    if (rc == GW_OK)
      rc = gw_buf_appends(out, parts[i]);
    if (rc == GW_OK && !strchr(parts[i], '='))
      rc = gw_buf_appendc(out, '=');
  }
done:
  gw_free(parts);
  gw_free(copy);
  return rc;
}

typedef struct {
  char *name;
  const char *value;
} hdr;

static int cmp_hdr(const void *a, const void *b) {
  return strcmp(((const hdr *)a)->name, ((const hdr *)b)->name);
}

/* Appends "name:value\n" for each header (sorted, names lower-cased, values
 * trimmed and inner runs of spaces folded) to |canon| and "a;b" to |signed_h|. */
static int canonical_headers(const gw_sigv4_header *h, size_t n, gw_buf *canon, gw_buf *signed_h) {
  hdr *v = gw_calloc(n ? n : 1, sizeof *v);
  int rc = v ? GW_OK : GW_ERR_NOMEM;
  for (size_t i = 0; i < n && rc == GW_OK; i++) {
    if (!(v[i].name = gw_strdup(h[i].name))) {
      rc = GW_ERR_NOMEM;
      break;
    }
    for (char *p = v[i].name; *p; p++)
      if (*p >= 'A' && *p <= 'Z')
        *p = (char)(*p - 'A' + 'a');
    v[i].value = h[i].value ? h[i].value : "";
  }
  if (rc == GW_OK)
    qsort(v, n, sizeof *v, cmp_hdr);
  for (size_t i = 0; i < n && rc == GW_OK; i++) {
    rc = gw_buf_appends(canon, v[i].name);
    if (rc == GW_OK)
      rc = gw_buf_appendc(canon, ':');
    const char *s = v[i].value;
    while (*s == ' ' || *s == '\t')
      s++;
    const char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
      e--;
    bool space = false;
    for (const char *p = s; p < e && rc == GW_OK; p++) {
      if (*p == ' ' || *p == '\t') {
        space = true;
        continue;
      }
      if (space)
        rc = gw_buf_appendc(canon, ' ');
      space = false;
      if (rc == GW_OK)
        rc = gw_buf_appendc(canon, *p);
    }
    if (rc == GW_OK)
      rc = gw_buf_appendc(canon, '\n');
    if (rc == GW_OK)
      rc = i ? gw_buf_appendc(signed_h, ';') : GW_OK;
    if (rc == GW_OK)
      rc = gw_buf_appends(signed_h, v[i].name);
  }
  for (size_t i = 0; v && i < n; i++)
    gw_free(v[i].name);
  gw_free(v);
  return rc;
}

int gw_sigv4_authorization(const gw_sigv4_request *req, const gw_sigv4_credentials *cred,
                           const char *amz_date, gw_buf *out, gw_buf *canonical_out) {
  if (!amz_date || strlen(amz_date) != 16 || amz_date[8] != 'T' || amz_date[15] != 'Z')
    return GW_ERR_INVALID;
  char date[9];
  memcpy(date, amz_date, 8);
  date[8] = '\0';
  gw_buf canon, signed_h, sts;
  gw_buf_init(&canon, (size_t)1 << 20);
  gw_buf_init(&signed_h, 8192);
  gw_buf_init(&sts, 8192);
  char payload_hash[65], canon_hash[65];
  gw_sigv4_sha256_hex(req->payload ? req->payload : "", req->payload_len, payload_hash);
  int rc = gw_buf_appends(&canon, req->method);
  if (rc == GW_OK)
    rc = gw_buf_appendc(&canon, '\n');
  if (rc == GW_OK)
    rc = canonical_path(req->path, &canon);
  if (rc == GW_OK)
    rc = gw_buf_appendc(&canon, '\n');
  if (rc == GW_OK)
    rc = canonical_query(req->query, &canon);
  if (rc == GW_OK)
    rc = gw_buf_appendc(&canon, '\n');
  if (rc == GW_OK)
    rc = canonical_headers(req->headers, req->n_headers, &canon, &signed_h);
  if (rc == GW_OK)
    rc = APPEND_ALL(&canon, "\n", signed_h.data ? signed_h.data : "", "\n", payload_hash);
  if (rc != GW_OK)
    goto done;
  gw_sigv4_sha256_hex(canon.data, canon.len, canon_hash);
  rc = APPEND_ALL(&sts, "AWS4-HMAC-SHA256\n", amz_date, "\n", date, "/", cred->region, "/",
                  cred->service, "/aws4_request\n", canon_hash);
  if (rc != GW_OK)
    goto done;
  /* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request") */
  unsigned char k[32];
  size_t slen = strlen(cred->secret_access_key);
  char *k0 = gw_malloc(slen + 5);
  if (!k0) {
    rc = GW_ERR_NOMEM;
    goto done;
  }
  memcpy(k0, "AWS4", 4);
  memcpy(k0 + 4, cred->secret_access_key, slen + 1);
  rc = hmac(k0, slen + 4, date, k);
  OPENSSL_cleanse(k0, slen + 4);
  gw_free(k0);
  if (rc == GW_OK)
    rc = hmac(k, 32, cred->region, k);
  if (rc == GW_OK)
    rc = hmac(k, 32, cred->service, k);
  if (rc == GW_OK)
    rc = hmac(k, 32, "aws4_request", k);
  unsigned char sig[32];
  if (rc == GW_OK)
    rc = hmac(k, 32, sts.data, sig);
  OPENSSL_cleanse(k, sizeof k);
  if (rc != GW_OK)
    goto done;
  char sighex[65];
  hex(sig, 32, sighex);
  rc = APPEND_ALL(out, "AWS4-HMAC-SHA256 Credential=", cred->access_key_id, "/", date, "/",
                  cred->region, "/", cred->service,
                  "/aws4_request, SignedHeaders=", signed_h.data ? signed_h.data : "",
                  ", Signature=", sighex);
  if (rc == GW_OK && canonical_out)
    rc = gw_buf_append(canonical_out, canon.data, canon.len);
done:
  gw_buf_release(&canon);
  gw_buf_release(&signed_h);
  gw_buf_release(&sts);
  return rc;
}
