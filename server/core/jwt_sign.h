/* Signing JSON Web Tokens with RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC
 * 7515/7518) on OpenSSL, for service-account assertions (Google's OAuth
 * jwt-bearer grant), and base64url without padding. */
#ifndef GW_CORE_JWT_SIGN_H
#define GW_CORE_JWT_SIGN_H

#include <stddef.h>

#include "core/buf.h"

/* Appends base64url (no padding) of |n| bytes at |p| to |out|. GW_OK,
 * GW_ERR_NOMEM or GW_ERR_TOOBIG. */
int gw_base64url_encode(const void *p, size_t n, gw_buf *out);

/* Appends "<b64url(header)>.<b64url(claims)>.<b64url(signature)>" to |out|,
 * signed with the RSA private key |pem| (PKCS#8 or PKCS#1 PEM, |pem_len|
 * bytes). |header_json| and |claims_json| are used verbatim. GW_OK,
 * GW_ERR_INVALID (the key does not load or is not RSA), GW_ERR_NOMEM or
 * GW_ERR_TOOBIG. */
int gw_jwt_sign_rs256(const char *pem, size_t pem_len, const char *header_json,
                      const char *claims_json, gw_buf *out);

#endif
