/* The HTTP/1.1 head fast paths (core/h1_head.c), requests and responses:
 * what they take must read exactly as http_parser reads it (h1_ref.h), and
 * what is unusual they must leave to http_parser. */
#include "support.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h1_ref.h"
#include "core/h1_head.h"

/* The fast path takes |buf| (a request, or a response when |resp|) and reads
 * it as http_parser does. */
static void assert_takes(int resp, const char *buf, size_t len) {
  gw_h1_head h;
  char why[512] = "";
  if (!(resp ? gw_h1_parse_response(buf, len, &h) : gw_h1_parse_head(buf, len, &h)))
    fail_msg("fast path declined: %.*s", (int)len, buf);
  if (!h1_ref_agrees_as(resp ? HTTP_RESPONSE : HTTP_REQUEST, buf, len, &h, why, sizeof why))
    fail_msg("%s in: %.*s", why, (int)len, buf);
}

/* The fast path declines each of |n| inputs (requests, or responses when
 * |resp|): http_parser alone reads them. */
static void assert_declines(int resp, const char *const *in, size_t n) {
  for (size_t i = 0; i < n; i++) {
    gw_h1_head h;
    size_t len = strlen(in[i]);
    if (resp ? gw_h1_parse_response(in[i], len, &h) : gw_h1_parse_head(in[i], len, &h))
      fail_msg("fast path took: %s", in[i]);
  }
}

#define AGREES(lit) assert_takes(0, (lit), sizeof(lit) - 1)
#define RESP_AGREES(lit) assert_takes(1, (lit), sizeof(lit) - 1)
#define assert_agrees(buf, len) assert_takes(0, (buf), (len))

static void responses(void **state) {
  (void)state;
  /* the bench mock's, an OpenAI-like one, errors, a close, an empty reason */
  RESP_AGREES("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
  RESP_AGREES("HTTP/1.1 200 OK\r\nDate: Thu, 26 Nov 2026 14:00:00 GMT\r\nContent-Type: "
              "application/json\r\nContent-Length: 0\r\nConnection: keep-alive\r\n"
              "openai-processing-ms: 312\r\nx-request-id: req_abc\r\n"
              "strict-transport-security: max-age=31536000; includeSubDomains\r\n\r\n");
  RESP_AGREES("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 3\r\n"
              "Connection: close\r\n\r\nabc");
  RESP_AGREES("HTTP/1.1 503 \r\nContent-Length: 0\r\n\r\n");
  RESP_AGREES("HTTP/1.1 200 Fine\tthanks\r\nX-A:  b \r\nContent-Length: 07\r\n\r\n");
  static const char *const declined[] = {
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n", /* to the close */
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 304 Not Modified\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n",
      "HTTP/1.1 600 X\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 20 X\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
      "HTTP/1.1 200 OK\r\nConnection: keep-alive, Upgrade\r\nContent-Length: 0\r\n\r\n",
  };
  assert_declines(1, declined, sizeof declined / sizeof declined[0]);
  /* a request is no response, and a response no request */
  gw_h1_head h;
  assert_int_equal(gw_h1_parse_response("GET / HTTP/1.1\r\n\r\n", 18, &h), 0);
  assert_int_equal(gw_h1_parse_head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 38, &h), 0);
}

static void common_heads(void **state) {
  (void)state;
  /* curl, the openai SDK, wrk; a body after the head; a pipelined second request */
  AGREES("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\n"
         "Accept: */*\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n"
         "{\"model\":\"echo\"}");
  AGREES("POST /v1/chat/completions HTTP/1.1\r\naccept: application/json\r\n"
         "content-type: application/json\r\nuser-agent: OpenAI/JS 4.104.0\r\n"
         "x-stainless-lang: js\r\nauthorization: Bearer sk-test\r\ncontent-length: 2\r\n"
         "Connection: keep-alive\r\nHost: localhost\r\n\r\n{}");
  AGREES("GET /v1/models?limit=2&after=x#frag HTTP/1.1\r\nHost: a\r\n\r\n");
  AGREES("GET /healthz HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n");
  AGREES("DELETE /v1/files/f HTTP/1.1\r\nConnection: close\r\n\r\n");
  AGREES("OPTIONS /v1/chat/completions HTTP/1.1\r\nOrigin: http://x\r\n"
         "Access-Control-Request-Method: POST\r\n\r\n");
  /* blanks around values, empty values, tabs inside, odd but valid names */
  AGREES("PUT /x HTTP/1.1\r\nX-A:   spaced   \r\nX-B:\r\nX-C:\ta\tb\t\r\n!#$%&'*+-.^_`|~9: v\r\n"
         "Content-Length: 0007\r\n\r\n");
  AGREES("HEAD / HTTP/1.1\r\nCONNECTION: Close\r\nContent-Length: 0\r\n\r\n");
  AGREES("PATCH /p HTTP/1.1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n\r\n");
}

static void declined(void **state) {
  (void)state;
  static const char *const heads[] = {
      "POST /v1 HTTP/1.1\r\nHost: a\r\n",                        /* incomplete */
      "POST /v1 HTTP/1.1\r\nHost: a\r\n\r",                      /* incomplete */
      "POST /v1 HTTP/1.0\r\nHost: a\r\n\r\n",                    /* HTTP/1.0 */
      "POST /v1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", /* chunked */
      "POST /v1 HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
      "POST /v1 HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
      "POST /v1 HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
      "POST /v1 HTTP/1.1\r\nContent-Length: 1234567890123456\r\n\r\n",
      "GET / HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n",
      "GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
      "GET / HTTP/1.1\r\nConnection: close, te\r\n\r\n",
      "GET / HTTP/1.1\r\nProxy-Connection: close\r\n\r\n",
      "GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n",     /* obs-fold */
      "GET / HTTP/1.1\r\nX-A : a\r\n\r\n",          /* blank before ':' */
      "GET / HTTP/1.1\r\nX-A: a\n\r\n",             /* bare LF */
      "GET / HTTP/1.1\r\nX-A: caf\xc3\xa9\r\n\r\n", /* non-ASCII */
      "GET / HTTP/1.1\r\nX-A: a\x7f\r\n\r\n",
      "GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n",
      "GET * HTTP/1.1\r\n\r\n", /* not origin-form */
      "GET http://a/ HTTP/1.1\r\n\r\n",
      "CONNECT a:443 HTTP/1.1\r\n\r\n", /* other methods */
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
      "get / HTTP/1.1\r\n\r\n",
      "\r\nGET / HTTP/1.1\r\n\r\n",
      "GET  / HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1 \r\n\r\n",
      "GET / HTTP/1.1\r\n: empty name\r\n\r\n",
  };
  assert_declines(0, heads, sizeof heads / sizeof heads[0]);
  /* one field more than the fast path holds */
  char buf[2048];
  size_t n = (size_t)snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\n");
  for (int i = 0; i <= GW_H1_FAST_FIELDS; i++)
    n += (size_t)snprintf(buf + n, sizeof buf - n, "X-%d: v\r\n", i);
  n += (size_t)snprintf(buf + n, sizeof buf - n, "\r\n");
  gw_h1_head h;
  assert_int_equal(gw_h1_parse_head(buf, n, &h), 0);
  /* and with one fewer it takes the head */
  n = (size_t)snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\n");
  for (int i = 0; i < GW_H1_FAST_FIELDS; i++)
    n += (size_t)snprintf(buf + n, sizeof buf - n, "X-%d: v\r\n", i);
  n += (size_t)snprintf(buf + n, sizeof buf - n, "\r\n");
  assert_agrees(buf, n);
}

/* Names and values scanned 16 bytes at a time and compared with the special
 * names 8 at a time: every byte kind on each side of the 8- and 16-byte
 * boundaries, both ways. */
static void long_names_and_values(void **state) {
  (void)state;
  AGREES("POST /v1 HTTP/1.1\r\nX-Fifteen-Bytes: a\r\nX-Sixteen-Bytes1: b\r\n"
         "X-Seventeen-Bytes: c\r\nX-Thirty-One-Bytes-Of-Name-Her: d\r\n"
         "X-Name-With_Underscore-After.16: e\r\nX-0123456789ABCDEF!#$%&'*+^_`|~: f\r\n"
         "CONTENT-LENGTH: 3\r\n\r\nabc");
  AGREES("GET / HTTP/1.1\r\nX-A: 0123456789abcdef\tghij\r\n"
         "X-B: 0123456789abcde\t\r\nX-C: 0123456789abcdef0123456789abcdef~\r\n"
         "Connection: KEEP-ALIVE\r\ncOnTeNt-LeNgTh: 0\r\n\r\n");
  AGREES("GET / HTTP/1.1\r\nContent-Lengtx: 1\r\nConnection-: close\r\n"
         "Xontent-Length: 2\r\nTransfer-Encodinx: chunked\r\n\r\n");
  RESP_AGREES("HTTP/1.1 200 OK\r\nX-Long-Response-Header-Name: 0123456789abcdef0123\r\n"
              "CONTENT-length: 2\r\nCONNECTION: close\r\n\r\nok");
  static const char *const heads[] = {
      "GET / HTTP/1.1\r\nX-0123456789abcde(: a\r\n\r\n",  /* not a tchar at 17 */
      "GET / HTTP/1.1\r\nX-0123456789abcdef : a\r\n\r\n", /* a blank at 18 */
      "GET / HTTP/1.1\r\nX-0123456789abcdef\x80: a\r\n\r\n",
      "GET / HTTP/1.1\r\nX-A: 0123456789abcdef\x7f\r\n\r\n",
      "GET / HTTP/1.1\r\nX-A: 0123456789abcdefgh\xff\r\n\r\n",
      "GET / HTTP/1.1\r\nX-A: 0123456789abcdef\x01\r\n\r\n",
      "GET / HTTP/1.1\r\nX-A: 0123456789abcdefghijklmnopq\n\r\n",
      "GET / HTTP/1.1\r\nTRANSFER-ENCODING: chunked\r\n\r\n",
      "GET / HTTP/1.1\r\nPROXY-CONNECTION: close\r\n\r\n",
      "GET / HTTP/1.1\r\nCONTENT-LENGTH: 1\r\ncontent-length: 1\r\n\r\nx",
  };
  assert_declines(0, heads, sizeof heads / sizeof heads[0]);
}

/* A target and a value longer than 8 KB (a long query string, a large
 * cookie): the fast path takes them and reads them as http_parser does. (The
 * reference's room was 8 KB, and the fuzzer's 11 KB request read the same on
 * both sides was called a difference.) */
static void heads_over_8k(void **state) {
  (void)state;
  size_t big = 9000, cap = 2 * big + 200;
  char *buf = malloc(cap), *t = malloc(big + 1), *v = malloc(big + 1);
  for (size_t i = 0; i < big; i++)
    t[i] = (char)('a' + i % 26), v[i] = (char)('A' + i % 26);
  t[big] = v[big] = '\0';
  int n = snprintf(buf, cap, "GET /%s HTTP/1.1\r\nCookie: %s\r\nHost: x\r\n\r\n", t, v);
  assert_agrees(buf, (size_t)n);
  n = snprintf(buf, cap, "HTTP/1.1 200 OK\r\nSet-Cookie: %s\r\nContent-Length: 0\r\n\r\n", v);
  assert_takes(1, buf, (size_t)n);
  free(buf);
  free(t);
  free(v);
}

/* Random edits of real heads: whenever the fast path takes the result,
 * http_parser must read the same request. */
static void mutations_agree(void **state) {
  (void)state;
  static const char *const seeds[] = {
      "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
      "application/json\r\nContent-Length: 12\r\nConnection: keep-alive\r\nX-Y:  z \r\n\r\n",
      "GET /v1/models HTTP/1.1\r\nAuthorization: Bearer k\r\nConnection: close\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n"
      "Connection: keep-alive\r\nX-Y:  z \r\n\r\n",
      "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
  };
  static const char alphabet[] = " \t\r\n:,-/?#%0123456789AaZz\x7f\x80\xff\"<>\\{}";
  uint64_t x = 0x9e3779b97f4a7c15ull;
  unsigned taken = 0, runs = 0;
  char buf[512];
  for (int seed = 0; seed < 4; seed++) {
    int resp = seed >= 2;
    for (int iter = 0; iter < 40000; iter++, runs++) {
      size_t n = strlen(seeds[seed]);
      memcpy(buf, seeds[seed], n);
      int edits = 1 + (int)(iter % 3);
      for (int e = 0; e < edits; e++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t at = (size_t)(x % n);
        char c = alphabet[(x >> 32) % (sizeof alphabet - 1)];
        switch ((x >> 48) % 3) {
        case 0: buf[at] = c; break;
        case 1: /* insert */
          if (n + 1 < sizeof buf) {
            memmove(buf + at + 1, buf + at, n - at);
            buf[at] = c;
            n++;
          }
          break;
        default: /* delete */ memmove(buf + at, buf + at + 1, n - at - 1); n--;
        }
      }
      gw_h1_head h;
      char why[512];
      if (!(resp ? gw_h1_parse_response(buf, n, &h) : gw_h1_parse_head(buf, n, &h)))
        continue;
      taken++;
      if (!h1_ref_agrees_as(resp ? HTTP_RESPONSE : HTTP_REQUEST, buf, n, &h, why, sizeof why))
        fail_msg("%s in: %.*s", why, (int)n, buf);
    }
  }
  /* edits that keep the head valid (values, targets) are common */
  assert_true(taken > runs / 10);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(common_heads),  cmocka_unit_test(declined),
      cmocka_unit_test(responses),     cmocka_unit_test(long_names_and_values),
      cmocka_unit_test(heads_over_8k), cmocka_unit_test(mutations_agree),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
