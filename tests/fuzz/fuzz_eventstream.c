/* libFuzzer target for server/core/eventstream.c: the input is fed to the
 * AWS event-stream decoder whole and split at a point the first byte picks.
 * Every message it returns must lie inside what was fed, and both ways of
 * feeding must decode the same number of messages before the same result. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/eventstream.h"
#include "core/status.h"

static int run(const uint8_t *data, size_t size, size_t split, int *count) {
  gw_eventstream_decoder d;
  gw_eventstream_init(&d, 1 << 16);
  int rc = GW_OK;
  *count = 0;
  size_t parts[2][2] = {{0, split}, {split, size}};
  for (int k = 0; k < 2 && rc >= 0; k++) {
    rc = gw_eventstream_feed(&d, data + parts[k][0], parts[k][1] - parts[k][0]);
    if (rc != GW_OK)
      break;
    gw_eventstream_message m;
    while ((rc = gw_eventstream_next(&d, &m)) == 1) {
      if (m.payload_len > size)
        abort();
      if (strlen(m.event_type) >= sizeof m.event_type ||
          strlen(m.error_message) >= sizeof m.error_message)
        abort();
      (*count)++;
    }
  }
  gw_eventstream_release(&d);
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int n1, n2;
  if (size > 65536) /* stay under the decoder's input cap both ways */
    return 0;
  int r1 = run(data, size, size, &n1);
  int r2 = run(data, size, size ? data[0] % (size + 1) : 0, &n2);
  if (n1 != n2 || (r1 < 0) != (r2 < 0))
    abort();
  return 0;
}
