/* RS256 JWT signing: base64url vectors (RFC 4648 §10), a token signed with a
 * key made here and verified with OpenSSL, a bad key, a fail-malloc sweep. */
#include "support.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <string.h>

#include "core/jwt_sign.h"
#include "core/status.h"

static void test_base64url(void **state) {
  (void)state;
  static const struct {
    const char *in, *out;
  } v[] = {{"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
           {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}, {"\xfb\xff", "-_8"}};
  for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
    gw_buf b;
    gw_buf_init(&b, 64);
    assert_int_equal(gw_base64url_encode(v[i].in, strlen(v[i].in), &b), GW_OK);
    assert_string_equal(b.data ? b.data : "", v[i].out);
    gw_buf_release(&b);
  }
}

static char *pem_of(EVP_PKEY *k) {
  BIO *bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL);
  char *p;
  long n = BIO_get_mem_data(bio, &p);
  char *s = strndup(p, (size_t)n);
  BIO_free(bio);
  return s;
}

static size_t b64url_decode(const char *s, size_t n, unsigned char *out) {
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    const char *t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    acc = acc << 6 | (uint32_t)(strchr(t, s[i]) - t);
    if ((bits += 6) >= 8)
      out[o++] = (unsigned char)(acc >> (bits -= 8));
  }
  return o;
}

static EVP_PKEY *key;
static char *pem;

static void test_sign_verify(void **state) {
  (void)state;
  gw_buf b;
  gw_buf_init(&b, 1 << 16);
  const char *h = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", *c = "{\"iss\":\"a@b\",\"iat\":1}";
  assert_int_equal(gw_jwt_sign_rs256(pem, strlen(pem), h, c, &b), GW_OK);
  assert_memory_equal(b.data, "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.", 37);
  const char *dot2 = strrchr(b.data, '.');
  unsigned char sig[1024];
  size_t siglen = b64url_decode(dot2 + 1, strlen(dot2 + 1), sig);
  assert_int_equal(siglen, 256);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key), 1);
  assert_int_equal(
      EVP_DigestVerify(md, sig, siglen, (const unsigned char *)b.data, (size_t)(dot2 - b.data)), 1);
  EVP_MD_CTX_free(md);
  gw_buf_release(&b);

  /* Not a key: nothing appended. */
  gw_buf_init(&b, 1 << 16);
  gw_buf_appends(&b, "x");
  assert_int_equal(gw_jwt_sign_rs256("nope", 4, h, c, &b), GW_ERR_INVALID);
  assert_string_equal(b.data, "x");
  gw_buf_release(&b);
}

static int workload(void *arg) {
  (void)arg;
  gw_buf b;
  gw_buf_init(&b, 1 << 16);
  int rc = gw_jwt_sign_rs256(pem, strlen(pem), "{}", "{}", &b);
  gw_buf_release(&b);
  return rc == GW_OK ? 0 : 1;
}

static void test_failmalloc(void **state) {
  (void)state;
  assert_true(gw_test_failmalloc_sweep(workload, NULL) > 0);
}

static int setup(void **state) {
  (void)state;
  key = EVP_RSA_gen(2048);
  pem = key ? pem_of(key) : NULL;
  return pem ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  free(pem);
  EVP_PKEY_free(key);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_base64url),
      cmocka_unit_test(test_sign_verify),
      cmocka_unit_test(test_failmalloc),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
