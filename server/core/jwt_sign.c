/* RS256 JWT signing on OpenSSL. */
#include "core/jwt_sign.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/status.h"

int gw_base64url_encode(const void *p, size_t n, gw_buf *out) {
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const unsigned char *b = p;
  char q[4];
  size_t i = 0;
  int rc = GW_OK;
  for (; i + 3 <= n && rc == GW_OK; i += 3) {
    uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];
    q[0] = tab[v >> 18], q[1] = tab[(v >> 12) & 63], q[2] = tab[(v >> 6) & 63], q[3] = tab[v & 63];
    rc = gw_buf_append(out, q, 4);
  }
  if (rc == GW_OK && n - i == 1) {
    uint32_t v = (uint32_t)b[i] << 16;
    q[0] = tab[v >> 18], q[1] = tab[(v >> 12) & 63];
    rc = gw_buf_append(out, q, 2);
  } else if (rc == GW_OK && n - i == 2) {
    uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8;
    q[0] = tab[v >> 18], q[1] = tab[(v >> 12) & 63], q[2] = tab[(v >> 6) & 63];
    rc = gw_buf_append(out, q, 3);
  }
  return rc;
}

int gw_jwt_sign_rs256(const char *pem, size_t pem_len, const char *header_json,
                      const char *claims_json, gw_buf *out) {
  int rc = GW_ERR_INVALID;
  EVP_PKEY *key = NULL;
  EVP_MD_CTX *md = NULL;
  unsigned char *sig = NULL;
  size_t start = out->len;
  BIO *bio = BIO_new_mem_buf(pem, (int)pem_len);
  if (!bio)
    return GW_ERR_NOMEM;
  key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
  BIO_free(bio);
  if (!key || EVP_PKEY_base_id(key) != EVP_PKEY_RSA)
    goto done;
  if ((rc = gw_base64url_encode(header_json, strlen(header_json), out)) != GW_OK ||
      (rc = gw_buf_appendc(out, '.')) != GW_OK ||
      (rc = gw_base64url_encode(claims_json, strlen(claims_json), out)) != GW_OK)
    goto done;
  rc = GW_ERR_NOMEM;
  if (!(md = EVP_MD_CTX_new()))
    goto done;
  size_t siglen = 0;
  const unsigned char *input = (const unsigned char *)out->data + start;
  size_t input_len = out->len - start;
  if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
      EVP_DigestSign(md, NULL, &siglen, input, input_len) != 1)
    goto done;
  if (!(sig = gw_malloc(siglen)))
    goto done;
  if (EVP_DigestSign(md, sig, &siglen, input, input_len) != 1)
    goto done;
  if ((rc = gw_buf_appendc(out, '.')) != GW_OK)
    goto done;
  rc = gw_base64url_encode(sig, siglen, out);
done:
  if (rc != GW_OK) { /* leave |out| as it was */
    out->len = start;
    if (out->data)
      out->data[start] = '\0';
  }
  if (sig) {
    OPENSSL_cleanse(sig, siglen);
    gw_free(sig);
  }
  EVP_MD_CTX_free(md);
  EVP_PKEY_free(key);
  return rc;
}
