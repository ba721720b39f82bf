/* TLS for the HTTP layer: the server SSL_CTX (TLS 1.2+, forward-secret AEAD
 * ciphers, ALPN h2 then http/1.1) and the ALPN outcome of a connection. */
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <string.h>

#include "core/log.h"
#include "core/status.h"
#include "transcoder/http/internal.h"

static const unsigned char alpn_h2[] = {2, 'h', '2'};
static const unsigned char alpn_protos[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

/* Picks h2 when offered, else http/1.1; a client offering neither gets no
 * ALPN (and HTTP/1.1), not a failed handshake. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg) {
  (void)ssl;
  (void)arg;
  unsigned char *sel = NULL;
  unsigned char sel_len = 0;
  if (SSL_select_next_proto(&sel, &sel_len, alpn_protos, sizeof alpn_protos, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = sel;
  *outlen = sel_len;
  return SSL_TLSEXT_ERR_OK;
}

/* Builds a server context from PEM |cert_file| (chain) and |key_file|.
 * GW_OK with |*out| set (the caller frees it), or GW_ERR_INVALID. */
int gw_http_tls_ctx_new(const char *cert_file, const char *key_file, SSL_CTX **out) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx)
    return GW_ERR_NOMEM;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1)
    goto fail;
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1)
    goto fail;
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1)
    goto fail;
  if (SSL_CTX_check_private_key(ctx) != 1)
    goto fail;
  SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
  *out = ctx;
  return GW_OK;
fail : {
  unsigned long e = ERR_get_error();
  char msg[256];
  ERR_error_string_n(e, msg, sizeof msg);
  GW_LOGE("http", NULL, "TLS context from %s / %s: %s", cert_file, key_file, msg);
  ERR_clear_error();
  SSL_CTX_free(ctx);
  return GW_ERR_INVALID;
}
}

int gw_http_tls_alpn_is_h2(struct bufferevent *bev) {
  SSL *ssl = bufferevent_openssl_get_ssl(bev);
  const unsigned char *p = NULL;
  unsigned int len = 0;
  if (!ssl)
    return 0;
  SSL_get0_alpn_selected(ssl, &p, &len);
  return len == 2 && memcmp(p, alpn_h2 + 1, 2) == 0;
}

/* libevent's OpenSSL bufferevent stops reading when its input reaches the
 * read high-water mark and, once the input is drained below it again, waits
 * for the socket to become readable. Bytes SSL has already taken from the
 * socket and not handed out (the rest of a record) never make it readable:
 * the connection stalls with requests unread (libevent issue #854; seen with
 * pipelined HTTP/1.1 over TLS held back while the client did not read). This
 * runs the bufferevent's read once more when SSL holds such bytes. */
void gw_http_tls_read_pending(struct bufferevent *bev) {
  SSL *ssl = bufferevent_openssl_get_ssl(bev);
  if (ssl && SSL_has_pending(ssl) && (bufferevent_get_enabled(bev) & EV_READ))
    event_active(&bev->ev_read, EV_READ, 1);
}
