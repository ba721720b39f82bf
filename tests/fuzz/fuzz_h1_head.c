/* libFuzzer target, differential: whenever the HTTP/1.1 request head fast
 * path (transcoder/http/h1_head.c) accepts the input, http_parser must read
 * the same request from it (tests/unit/transcoder/h1_ref.h); any difference
 * aborts. Inputs it declines are http_parser's alone and prove nothing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests/unit/transcoder/h1_ref.h"
#include "transcoder/http/h1_head.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  gw_h1_head h;
  char why[512];
  if (!gw_h1_parse_head((const char *)data, size, &h))
    return 0;
  if (!h1_ref_agrees((const char *)data, size, &h, why, sizeof why)) {
    fprintf(stderr, "fast path and http_parser differ: %s\n", why);
    abort();
  }
  return 0;
}
