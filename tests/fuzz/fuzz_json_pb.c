/* libFuzzer target for the JSON -> protobuf-c codec (transcoder/json_pb.c):
 * the input is parsed as an OpenAI chat request and as the codec's test
 * message; whatever parses is printed, parsed again and printed again, and
 * the two printouts must be identical (the codec's output is a fixed point).
 * Each input also goes through the direct path and the DOM path, which must
 * agree (direct_vs_dom). Every message parsed, and the input read as
 * protobuf wire bytes (what a gRPC client sends: any bytes as strings, a map
 * key twice), must give the same DOM straight (gw_pb_to_jval) as through
 * its JSON text (pb_vs_dom). */
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
#include "../unit/transcoder/pb_dom_check.h"

static void pb_vs_dom(const ProtobufCMessage *m, const gw_json_opts *opts) {
  char d[700];
  const char *why = pb_dom_check(m, opts, d, sizeof d);
  if (why) {
    fprintf(stderr, "gw_pb_to_jval: %s\n", why);
    abort();
  }
}

/* The input as wire bytes of |desc|, through pb_vs_dom. */
static void wire_vs_dom(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t size) {
  static const gw_json_opts upstream = {.int64_as_number = 1, .bare_unions = 1};
  static const gw_json_opts defaults = {.emit_defaults = 1, .max_depth = 16};
  ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, size, data);
  if (!m)
    return;
  pb_vs_dom(m, &upstream);
  pb_vs_dom(m, NULL);
  pb_vs_dom(m, &defaults);
  protobuf_c_message_free_unpacked(m, NULL);
}

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
  pb_vs_dom(m, opts);
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

/* The direct path (JSON text straight into the message) against the DOM
 * path on the same input: the same result code, the same error, and when
 * both parse, the same message (its wire bytes) down to the unknown-member
 * slots. */
static void direct_vs_dom(const ProtobufCMessageDescriptor *desc, const gw_json_opts *opts,
                          const uint8_t *data, size_t size) {
  gw_arena *arena = gw_arena_new(0, 16 << 20);
  if (!arena)
    return;
  gw_json_opts dom = *opts;
  dom.dom_only = 1;
  ProtobufCMessage *a = NULL, *b = NULL;
  gw_json_error ea, eb;
  int ra = gw_json_to_pb(desc, (const char *)data, size, arena, opts, &a, &ea);
  int rb = gw_json_to_pb(desc, (const char *)data, size, arena, &dom, &b, &eb);
  if (ra != rb) {
    fprintf(stderr, "direct %d, DOM %d (%s: %s)\n", ra, rb, eb.param, eb.message);
    abort();
  }
  if (ra != GW_OK) {
    if (strcmp(ea.param, eb.param) != 0 || strcmp(ea.message, eb.message) != 0) {
      fprintf(stderr, "errors differ: %s: %s / %s: %s\n", ea.param, ea.message, eb.param,
              eb.message);
      abort();
    }
  } else {
    size_t na = protobuf_c_message_get_packed_size(a), nb = protobuf_c_message_get_packed_size(b);
    uint8_t *pa = malloc(na + 1), *pb = malloc(nb + 1);
    if (!pa || !pb)
      abort();
    protobuf_c_message_pack(a, pa);
    protobuf_c_message_pack(b, pb);
    if (na != nb || memcmp(pa, pb, na) != 0) {
      fprintf(stderr, "messages differ (%zu / %zu bytes)\n", na, nb);
      abort();
    }
    free(pa);
    free(pb);
  }
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
  static const gw_json_opts answers = {.keep_unknown = 1, .bare_unions = 1, .floats_base64 = 1};
  direct_vs_dom(&aigateway__v1__chat_completion_request__descriptor, &openai, data, size);
  direct_vs_dom(&aigateway__v1__chat_completion_response__descriptor, &answers, data, size);
  direct_vs_dom(&aigateway__v1__embedding_response__descriptor, &answers, data, size);
  direct_vs_dom(&codectest__all_kinds__descriptor, &plain, data, size);
  direct_vs_dom(&codectest__unions__descriptor, &openai, data, size);
  direct_vs_dom(&codectest__all_kinds__descriptor, &defaults, data, size);
  direct_vs_dom(&codectest__strict__descriptor, &(gw_json_opts){0}, data, size);
  static const gw_json_opts dropping = {
      .keep_unknown = 1, .drop_unknown = 1, .bare_unions = 1, .floats_base64 = 1};
  direct_vs_dom(&aigateway__v1__chat_completion_response__descriptor, &dropping, data, size);
  static const char *const skip[] = {"prompt_filter_results", "content_filter_results", "x", NULL};
  static const gw_json_opts skipping = {
      .keep_unknown = 1, .drop_unknown = 1, .bare_unions = 1, .skip_unknown = skip};
  direct_vs_dom(&aigateway__v1__chat_completion_chunk__descriptor, &skipping, data, size);
  direct_vs_dom(&codectest__all_kinds__descriptor, &skipping, data, size);
  direct_vs_dom(&codectest__strict__descriptor, &(gw_json_opts){.drop_unknown = 1}, data, size);
  wire_vs_dom(&aigateway__v1__chat_completion_request__descriptor, data, size);
  wire_vs_dom(&codectest__all_kinds__descriptor, data, size);
  return 0;
}
