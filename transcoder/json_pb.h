/* The descriptor-driven JSON <-> protobuf-c codec: any generated message,
 * walked through its ProtobufCMessageDescriptor, read from and written as
 * proto3 JSON (with the proto field names, which are OpenAI's names).
 *
 * Beyond the proto3 JSON mapping it knows two conventions of the canonical
 * API (DESIGN.md, "Canonical API guidelines"):
 *
 * - The unknown-member slot. A message with a field named `extra_fields` of
 *   type google.protobuf.Struct keeps, when |keep_unknown| is set, every JSON
 *   member it does not model there, verbatim; on output those members are
 *   merged back into the object at the same level. The slot itself is never a
 *   JSON member: a member called "extra_fields" is just another unknown one.
 *   A member of the slot whose name is also a modeled field is not printed
 *   (the modeled field wins, so the output never has a duplicate key).
 *
 * - Bare unions (|bare_unions|, for OpenAI routes). A message whose fields
 *   all belong to one oneof (MessageContent, StopSequences, ToolChoice,
 *   Prompt) is written as the bare JSON value of the member that is set, and
 *   read by picking the first member, in field-number order, whose JSON form
 *   matches the value's kind (string, number, bool, array, object). A member
 *   whose message type has exactly one field, repeated and not a map
 *   (ContentParts, StringList, TokenList, TokenLists), is written as a bare
 *   array, and so are the elements of such an array when they are of that
 *   shape too (TokenLists: [[1,2],[3]]).
 *
 * Maps: protobuf-c 1.4.1 keeps no map_entry option, so a repeated message
 * field is a map when its message type is the entry protoc generates for
 * it: named "<Field in CamelCase>Entry", nested in the field's message, with
 * exactly two fields "key" = 1 and "value" = 2. protoc refuses to let a
 * declared message take that name beside a map field, so the only thing that
 * can be mistaken for a map is a hand-written message of exactly that name
 * and shape used as a repeated field of the same name, which proto3 JSON
 * could not tell from a map either.
 */
#ifndef GW_TRANSCODER_JSON_PB_H
#define GW_TRANSCODER_JSON_PB_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#include "core/arena.h"
#include "core/buf.h"

#define GW_JSON_DEFAULT_MAX_DEPTH 64

typedef struct gw_json_opts {
  /* Output 64-bit integers (and Int64Value/UInt64Value) as JSON numbers
   * instead of strings (OpenAI's `created`). Input takes both anyway. */
  int int64_as_number;
  /* Output proto3 scalars without presence, and empty repeated fields and
   * maps, even when they hold their default. */
  int emit_defaults;
  /* Input: keep members a message does not model in its `extra_fields`
   * slot; without it (or without a slot) they are an error. */
  int keep_unknown;
  /* Input, for an upstream's answer: a member a message neither models nor
   * can keep (no slot, or keep_unknown off) is skipped instead of refused,
   * as a server's own member in a nested object must not fail the call (a
   * JSON syntax error, a repeated key or a modeled member of the wrong type
   * still does); and an explicit null for a modeled member is taken as its
   * absence, not kept to go out again (vLLM's "prompt_tokens_details": null
   * where OpenAI's schema has an object or nothing). */
  int drop_unknown;
  /* Input: members no message models whose name is one of these (NULL-ended;
   * NULL: none) are skipped wherever they appear, never kept (a provider's
   * own annotations the gateway does not pass on: Azure's content filter
   * results, read as a DOM and dropped instead of built into a Struct). */
  const char *const *skip_unknown;
  /* Read and write bare unions and bare lists (see above). */
  int bare_unions;
  /* Input: a repeated float field may also be one base64 string of its
   * values as little-endian IEEE 754 floats (OpenAI's embeddings with
   * encoding_format "base64"), decoded straight into the field. */
  int floats_base64;
  /* Input: always build the whole DOM first (the tests compare the direct
   * path, which reads plain documents straight into the message, with it). */
  int dom_only;
  /* Output hook (the OpenAI adapters' way to give schema-required members a
   * value whatever the upstream left out): called for every member of every
   * object printed, with |shown| telling whether the codec would print it.
   * NULL: the codec's usual rule; "": leave the member out; anything else:
   * JSON text written verbatim as the member's value (it must stay valid
   * until the next call). */
  const char *(*field_hook)(void *arg, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                            int shown);
  void *hook_arg;
  /* With a field_hook: the one member it is also called for when the codec
   * would print it (NULL: none; a member printed is then printed as usual,
   * with no call). */
  const ProtobufCFieldDescriptor *hook_shown;
  /* Nesting limit of objects and arrays, both ways; 0 means
   * GW_JSON_DEFAULT_MAX_DEPTH. Deeper input is GW_ERR_INVALID "nesting too
   * deep". */
  int max_depth;
} gw_json_opts;

/* What was wrong with the input: |param| is the path of the offending member
 * as OpenAI reports it ("messages[0].content", "logit_bias.50256", empty for
 * the document itself), |message| says what was wrong ("expected a
 * number"). Both are NUL-terminated and truncated to fit. */
typedef struct gw_json_error {
  char param[256];
  char message[256];
} gw_json_error;

/* Parses the JSON text |json| (|len| bytes) as a message of type |desc|.
 * Everything the message holds, the message included, is allocated from
 * |arena| and dies with it. |opts| may be NULL (all off). |err| may be NULL.
 * Returns GW_OK and sets |*out|; GW_ERR_INVALID with |err| filled; or
 * GW_ERR_NOMEM (the arena or its cap ran out; |err| says so). On error
 * |*out| is untouched and whatever was allocated stays in |arena|. */
int gw_json_to_pb(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                  gw_arena *arena, const gw_json_opts *opts, ProtobufCMessage **out,
                  gw_json_error *err);

/* Appends |msg| as JSON to |out|. |opts| may be NULL. Returns GW_OK;
 * GW_ERR_TOOBIG when |out|'s cap is hit; GW_ERR_NOMEM; GW_ERR_INVALID when
 * the message cannot be written (a Timestamp or Duration out of range,
 * nesting deeper than max_depth). On error |out| is left as it was. */
int gw_pb_to_json(const ProtobufCMessage *msg, const gw_json_opts *opts, gw_buf *out);

struct gw_jval; /* transcoder/json_lite.h */

/* The DOM gw_json_lite_parse builds from gw_pb_to_json(|msg|, |opts|)'s
 * text, built straight from the message, with no text written and read
 * back: what a translating provider reads the request as. The same values,
 * members and order, and the same refusals (nesting past max_depth, a
 * Timestamp or Duration out of range, two members with one key, which a
 * map or Struct from the gRPC wire can hold); bytes that are not UTF-8 read
 * as U+FFFD, as the writer writes them. Otherwise:
 * - strings that are UTF-8 point into |msg| (not copied), so the DOM lives
 *   as long as both |msg| and |arena|; numbers' text lives in |arena|;
 * - GW_JVAL_NUM_F32 is never set (only the codec's reader looks at it);
 * - opts->field_hook must be NULL.
 * Returns GW_OK with |*out| set and |*json_len| (may be NULL) about the
 * length of the JSON text gw_pb_to_json would write (escapes not counted);
 * GW_ERR_INVALID with |*why| (a static string); GW_ERR_NOMEM. What was
 * allocated stays in |arena|. */
int gw_pb_to_jval(const ProtobufCMessage *msg, const gw_json_opts *opts, gw_arena *arena,
                  const struct gw_jval **out, size_t *json_len, const char **why);

/* Writes the lowerCamelCase JSON name of |proto_name| ("max_tokens" ->
 * "maxTokens", protoc's rule) into |out| (|n| bytes, NUL included).
 * Returns GW_OK or GW_ERR_TOOBIG. */
int gw_json_name(const char *proto_name, char *out, size_t n);

/* The field of |d| with the proto name |name|, or NULL: a hash lookup,
 * cheaper than protobuf_c_message_descriptor_get_field_by_name's binary
 * search. */
const ProtobufCFieldDescriptor *gw_json_field(const ProtobufCMessageDescriptor *d,
                                              const char *name);

/* gw_json_field for a caller that asks for one name over and over: |cache|
 * (zeroed at first; one per name and thread, e.g. a static _Thread_local)
 * keeps the answer for the last type asked about. NULL: no cache. */
typedef struct gw_json_field_cache {
  const ProtobufCMessageDescriptor *desc;
  const ProtobufCFieldDescriptor *field;
} gw_json_field_cache;

static inline const ProtobufCFieldDescriptor *
gw_json_field_cached(gw_json_field_cache *cache, const ProtobufCMessageDescriptor *d,
                     const char *name) {
  if (!cache)
    return gw_json_field(d, name);
  if (cache->desc != d) {
    cache->field = gw_json_field(d, name);
    cache->desc = d;
  }
  return cache->field;
}

#endif
