/* libFuzzer target for the JSON -> protobuf-c codec (transcoder/json_pb.c):
 * the input is parsed as an OpenAI chat request and as the codec's test
 * message; whatever parses is printed, parsed again and printed again, and
 * the two printouts must be identical (the codec's output is a fixed point). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aigateway/v1/inference.pb-c.h"
#include "codec_test.pb-c.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/status.h"
#include "transcoder/json_pb.h"

static void round_trip(const ProtobufCMessageDescriptor *desc, const gw_json_opts *opts,
                       const uint8_t *data, size_t size) {
  gw_arena *arena = gw_arena_new(0, 16 << 20);
  if (!arena)
    return;
  ProtobufCMessage *m = NULL, *m2 = NULL;
  gw_json_error err;
  gw_buf first, second;
  gw_buf_init(&first, 64 << 20);
  gw_buf_init(&second, 64 << 20);
  int rc = gw_json_to_pb(desc, (const char *)data, size, arena, opts, &m, &err);
  if (rc != GW_OK)
    goto done;
  if (!protobuf_c_message_check(m))
    abort();
  rc = gw_pb_to_json(m, opts, &first);
  if (rc == GW_ERR_INVALID) /* nesting past max_depth through bare lists */
    goto done;
  if (rc != GW_OK)
    abort();
  rc = gw_json_to_pb(desc, first.data, first.len, arena, opts, &m2, &err);
  if (rc != GW_OK) {
    fprintf(stderr, "re-parse failed: %s: %s\n%s\n", err.param, err.message, first.data);
    abort();
  }
  if (gw_pb_to_json(m2, opts, &second) != GW_OK)
    abort();
  if (first.len != second.len || memcmp(first.data, second.data, first.len) != 0) {
    fprintf(stderr, "not a fixed point:\n%s\n%s\n", first.data, second.data);
    abort();
  }
done:
  gw_buf_release(&first);
  gw_buf_release(&second);
  gw_arena_free(arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const gw_json_opts openai = {.keep_unknown = 1, .bare_unions = 1, .int64_as_number = 1};
  static const gw_json_opts plain = {.keep_unknown = 1};
  static const gw_json_opts defaults = {.emit_defaults = 1, .max_depth = 16};
  round_trip(&aigateway__v1__chat_completion_request__descriptor, &openai, data, size);
  round_trip(&codectest__all_kinds__descriptor, &plain, data, size);
  round_trip(&codectest__unions__descriptor, &openai, data, size);
  round_trip(&codectest__all_kinds__descriptor, &defaults, data, size);
  return 0;
}
