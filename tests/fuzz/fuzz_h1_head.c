/* libFuzzer target, differential: whenever an HTTP/1.1 head fast path
 * (core/h1_head.c, requests and responses) accepts the input, http_parser must
 * read the same head from it (tests/unit/core/h1_ref.h); any difference
 * aborts. Inputs it declines are http_parser's alone and prove nothing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests/unit/core/h1_ref.h"
#include "core/h1_head.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  gw_h1_head h;
  char why[512];
  if (gw_h1_parse_head((const char *)data, size, &h) &&
      !h1_ref_agrees_as(HTTP_REQUEST, (const char *)data, size, &h, why, sizeof why)) {
    fprintf(stderr, "request: fast path and http_parser differ: %s\n", why);
    abort();
  }
  if (gw_h1_parse_response((const char *)data, size, &h) &&
      !h1_ref_agrees_as(HTTP_RESPONSE, (const char *)data, size, &h, why, sizeof why)) {
    fprintf(stderr, "response: fast path and http_parser differ: %s\n", why);
    abort();
  }
  return 0;
}
