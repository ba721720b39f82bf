/* Unit tests of the JSON <-> protobuf-c codec (transcoder/json_pb.c): every
 * field kind via tests/proto/codec_test.proto, error paths, the OpenAI chat
 * request, fail-malloc and cap behaviour. */
#include "support.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aigateway/v1/inference.pb-c.h"
#include "codec_test.pb-c.h"
#include "core/alloc.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/status.h"
#include "transcoder/json_pb.h"
#include "transcoder/pb_dom_check.h"
#include "utf8_cases.h"

enum opt_set { O_PLAIN, O_KEEP, O_OPENAI, O_DEFAULTS, O_INT64NUM, O_DEPTH3 };

static const gw_json_opts opt_sets[] = {
    [O_PLAIN] = {0},
    [O_KEEP] = {.keep_unknown = 1},
    [O_OPENAI] = {.keep_unknown = 1, .bare_unions = 1, .int64_as_number = 1},
    [O_DEFAULTS] = {.emit_defaults = 1},
    [O_INT64NUM] = {.int64_as_number = 1},
    [O_DEPTH3] = {.max_depth = 3},
};

#define ALL (&codectest__all_kinds__descriptor)
#define STRICT (&codectest__strict__descriptor)
#define INNER (&codectest__inner__descriptor)
#define UNIONS (&codectest__unions__descriptor)
#define CHAT (&aigateway__v1__chat_completion_request__descriptor)

/* Fails the test unless |got| and |want| are equal JSON values. */
static void assert_json_eq(const char *got, const char *want, const char *what) {
  json_error_t je;
  json_t *g = json_loads(got, JSON_DECODE_ANY, &je);
  if (!g)
    fail_msg("%s: output is not JSON (%s): %s", what, je.text, got);
  json_t *w = json_loads(want, JSON_DECODE_ANY, &je);
  if (!w)
    fail_msg("%s: expected value is not JSON (%s): %s", what, je.text, want);
  int eq = json_equal(g, w);
  json_decref(g);
  json_decref(w);
  if (!eq)
    fail_msg("%s:\n  got  %s\n  want %s", what, got, want);
}

/* gw_pb_to_jval(|m|) is the DOM gw_pb_to_json's text reads back as. */
static void assert_pb_dom(const ProtobufCMessage *m, const gw_json_opts *o) {
  char d[700];
  const char *why = pb_dom_check(m, o, d, sizeof d);
  if (why)
    fail_msg("gw_pb_to_jval: %s", why);
}

/* Parses |json|, prints it back and checks the result against |want|; also
 * packs the message to the wire, unpacks it and prints that again. Both
 * messages' DOMs (gw_pb_to_jval) are checked against their text read back. */
static void check_round_trip(const ProtobufCMessageDescriptor *d, enum opt_set o, const char *json,
                             const char *want) {
  gw_arena *a = gw_arena_new(0, 0);
  assert_non_null(a);
  ProtobufCMessage *m = NULL;
  gw_json_error err;
  int rc = gw_json_to_pb(d, json, strlen(json), a, &opt_sets[o], &m, &err);
  if (rc != GW_OK)
    fail_msg("%s: rc %d param '%s': %s", json, rc, err.param, err.message);
  assert_true(protobuf_c_message_check(m));

  gw_buf b;
  gw_buf_init(&b, 1 << 20);
  assert_int_equal(gw_pb_to_json(m, &opt_sets[o], &b), GW_OK);
  assert_json_eq(b.data, want ? want : json, json);

  /* Wire round trip: what gRPC sends is what HTTP prints. */
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *wire = malloc(n + 1);
  assert_int_equal(protobuf_c_message_pack(m, wire), n);
  ProtobufCMessage *u = protobuf_c_message_unpack(d, NULL, n, wire);
  assert_non_null(u);
  gw_buf b2;
  gw_buf_init(&b2, 1 << 20);
  assert_int_equal(gw_pb_to_json(u, &opt_sets[o], &b2), GW_OK);
  assert_json_eq(b2.data, b.data, "after the wire");
  assert_pb_dom(m, &opt_sets[o]);
  assert_pb_dom(u, &opt_sets[o]);
  protobuf_c_message_free_unpacked(u, NULL);
  free(wire);
  gw_buf_release(&b2);
  gw_buf_release(&b);
  gw_arena_free(a);
}

/* ------------------------------------------------------------ names */

static void test_json_name(void **state) {
  static const struct {
    const char *in, *out;
  } v[] = {
      {"max_tokens", "maxTokens"},
      {"model", "model"},
      {"f_int32", "fInt32"},
      {"top_logprobs", "topLogprobs"},
      {"a__b", "aB"},
      {"trailing_", "trailing"},
      {"", ""},
  };
  char out[32];
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    assert_int_equal(gw_json_name(v[i].in, out, sizeof out), GW_OK);
    assert_string_equal(out, v[i].out);
  }
  assert_int_equal(gw_json_name("max_tokens", out, 9), GW_ERR_TOOBIG);
  assert_int_equal(gw_json_name("max_tokens", out, 10), GW_OK);
}

/* ------------------------------------------------------------ round trips */

static const struct rt_case {
  const ProtobufCMessageDescriptor *desc;
  enum opt_set opts;
  const char *in;
  const char *out; /* NULL: same as |in| */
} rt_cases[] = {
    /* scalars */
    {ALL, O_PLAIN,
     "{\"f_int32\":-5,\"f_int64\":\"-9223372036854775808\",\"f_uint32\":4294967295,"
     "\"f_uint64\":\"18446744073709551615\",\"f_sint32\":-1,\"f_sint64\":\"-2\",\"f_fixed32\":7,"
     "\"f_fixed64\":\"8\",\"f_sfixed32\":-9,\"f_sfixed64\":\"-10\",\"f_float\":0.1,"
     "\"f_double\":0.7,\"f_bool\":true,\"f_string\":\"h\\u00e9llo \\\"q\\\"\\n\\u0001\","
     "\"f_bytes\":\"AAEC/w==\",\"f_enum\":\"RED\",\"f_inner\":{\"name\":\"n\",\"count\":3}}",
     NULL},
    {ALL, O_PLAIN, "{\"fInt32\":1,\"fString\":\"x\",\"fInner\":{\"name\":\"y\"}}",
     "{\"f_int32\":1,\"f_string\":\"x\",\"f_inner\":{\"name\":\"y\"}}"},
    {ALL, O_PLAIN,
     "{\"f_int32\":\"12\",\"f_int64\":12,\"f_uint64\":1e3,\"f_double\":\"1.5\",\"f_float\":\"-2."
     "5\","
     "\"f_uint32\":\"7\"}",
     "{\"f_int32\":12,\"f_int64\":\"12\",\"f_uint64\":\"1000\",\"f_double\":1.5,\"f_float\":-2.5,"
     "\"f_uint32\":7}"},
    {ALL, O_PLAIN, "{\"f_enum\":2}", "{\"f_enum\":\"GREEN\"}"},
    {ALL, O_PLAIN, "{\"f_enum\":-1}", "{\"f_enum\":\"MINUS_ONE\"}"},
    {ALL, O_PLAIN, "{\"f_enum\":7}", NULL},
    {ALL, O_PLAIN, "{\"f_bytes\":\"-_8\"}", "{\"f_bytes\":\"+/8=\"}"},
    {ALL, O_PLAIN,
     "{\"f_int32\":0,\"f_string\":\"\",\"f_bool\":false,\"f_enum\":\"COLOR_UNSPECIFIED\","
     "\"f_double\":0,\"f_bytes\":\"\"}",
     "{}"},
    {ALL, O_PLAIN,
     "{\"f_int32\":null,\"f_inner\":null,\"r_int32\":null,\"w_double\":null,"
     "\"m_str_int\":null,\"o_string\":null}",
     "{}"},
    /* doubles: shortest form that reads back, proto3 names for the rest */
    {ALL, O_PLAIN, "{\"f_double\":0.30000000000000004,\"r_double\":[0.1,1e300,5e-324,-1.5e-7]}",
     NULL},
    {ALL, O_PLAIN,
     "{\"f_double\":\"NaN\",\"r_double\":[\"Infinity\",\"-Infinity\"],"
     "\"r_float\":[\"NaN\",3.4028235e38]}",
     NULL},
    /* a float vector is written in runs between the values JSON has no
     * number for: those first, between others, twice in a row and last */
    {ALL, O_PLAIN,
     "{\"r_float\":[\"-Infinity\",0.5,\"NaN\",-0,0.25,\"Infinity\",\"NaN\",1e-10,-3,\"NaN\"]}",
     NULL},
    /* repeated */
    {ALL, O_PLAIN,
     "{\"r_int32\":[1,-2],\"r_int64\":[\"1\",-2],\"r_uint64\":[\"18446744073709551615\"],"
     "\"r_float\":[1.5,-0.25],\"r_bool\":[true,false],\"r_string\":[\"a\",\"\"],"
     "\"r_bytes\":[\"\",\"AA==\"],\"r_enum\":[\"RED\",1,\"GREEN\"],"
     "\"r_inner\":[{},{\"name\":\"x\"}],\"r_sint32\":[-1],\"r_fixed64\":[\"1\"]}",
     "{\"r_int32\":[1,-2],\"r_int64\":[\"1\",\"-2\"],\"r_uint64\":[\"18446744073709551615\"],"
     "\"r_float\":[1.5,-0.25],\"r_bool\":[true,false],\"r_string\":[\"a\",\"\"],"
     "\"r_bytes\":[\"\",\"AA==\"],\"r_enum\":[\"RED\",\"RED\",\"GREEN\"],"
     "\"r_inner\":[{},{\"name\":\"x\"}],\"r_sint32\":[-1],\"r_fixed64\":[\"1\"]}"},
    {ALL, O_PLAIN, "{\"r_int32\":[]}", "{}"},
    /* maps */
    {ALL, O_PLAIN,
     "{\"m_str_int\":{\"a\":1,\"b\":-1},\"m_int_str\":{\"-3\":\"x\"},"
     "\"m_int64_inner\":{\"9007199254740993\":{\"name\":\"n\"}},"
     "\"m_bool_enum\":{\"true\":\"RED\",\"false\":2},\"m_uint_double\":{\"4294967295\":0.5},"
     "\"m_value\":{\"k\":[1,\"s\",null,{\"z\":true}]},\"m_sint_bytes\":{\"-1\":\"AQ==\"},"
     "\"m_uint64_str\":{\"18446744073709551615\":\"max\"}}",
     "{\"m_str_int\":{\"a\":1,\"b\":-1},\"m_int_str\":{\"-3\":\"x\"},"
     "\"m_int64_inner\":{\"9007199254740993\":{\"name\":\"n\"}},"
     "\"m_bool_enum\":{\"true\":\"RED\",\"false\":\"GREEN\"},\"m_uint_double\":{\"4294967295\":0.5}"
     ","
     "\"m_value\":{\"k\":[1,\"s\",null,{\"z\":true}]},\"m_sint_bytes\":{\"-1\":\"AQ==\"},"
     "\"m_uint64_str\":{\"18446744073709551615\":\"max\"}}"},
    {ALL, O_PLAIN, "{\"m_str_int\":{}}", "{}"},
    {ALL, O_PLAIN, "{\"not_a_map\":{\"pairs\":[{\"key\":\"k\",\"value\":\"v\"}]}}", NULL},
    /* oneof: a member prints when set, even at its default */
    {ALL, O_PLAIN, "{\"o_string\":\"s\"}", NULL},
    {ALL, O_PLAIN, "{\"o_inner\":{\"count\":1}}", NULL},
    {ALL, O_PLAIN, "{\"o_int64\":\"0\"}", NULL},
    {ALL, O_PLAIN, "{\"o_value\":null}", NULL},
    /* wrappers keep presence */
    {ALL, O_PLAIN,
     "{\"w_double\":0,\"w_float\":0,\"w_int64\":\"0\",\"w_uint64\":\"0\",\"w_int32\":0,"
     "\"w_uint32\":0,\"w_bool\":false,\"w_string\":\"\",\"w_bytes\":\"\"}",
     NULL},
    {ALL, O_PLAIN,
     "{\"w_double\":0.7,\"w_int64\":-3,\"w_uint64\":5,\"w_string\":\"s\",\"r_wrapped\":[1,0,-1]}",
     "{\"w_double\":0.7,\"w_int64\":\"-3\",\"w_uint64\":\"5\",\"w_string\":\"s\",\"r_wrapped\":[1,"
     "0,-1]}"},
    /* Struct, Value, ListValue */
    {ALL, O_PLAIN,
     "{\"s_struct\":{\"a\":1,\"b\":[true,null,\"x\",{\"c\":2.5}],\"n\":-9007199254740992,"
     "\"big\":1e300},\"s_value\":\"str\",\"s_list\":[1,[2]]}",
     NULL},
    {ALL, O_PLAIN, "{\"s_value\":null}", NULL},
    {ALL, O_PLAIN, "{\"s_value\":{},\"s_struct\":{},\"s_list\":[]}", NULL},
    {ALL, O_PLAIN, "{\"r_value\":[null,1,\"a\"]}", NULL},
    /* Timestamp and Duration */
    {ALL, O_PLAIN, "{\"t_time\":\"1972-01-01T10:00:20.021Z\",\"t_duration\":\"1.5s\"}",
     "{\"t_time\":\"1972-01-01T10:00:20.021Z\",\"t_duration\":\"1.500s\"}"},
    {ALL, O_PLAIN, "{\"t_time\":\"2024-02-29T23:59:59.123456789+01:30\"}",
     "{\"t_time\":\"2024-02-29T22:29:59.123456789Z\"}"},
    {ALL, O_PLAIN, "{\"t_time\":\"0001-01-01T00:00:00Z\",\"t_duration\":\"-0.000000001s\"}", NULL},
    {ALL, O_PLAIN,
     "{\"t_time\":\"9999-12-31T23:59:59.999999999Z\",\"t_duration\":\"315576000000s\"}", NULL},
    {ALL, O_PLAIN, "{\"t_duration\":\"-1.25s\",\"r_time\":[\"1970-01-01T00:00:00.5Z\"]}",
     "{\"t_duration\":\"-1.250s\",\"r_time\":[\"1970-01-01T00:00:00.500Z\"]}"},
    {ALL, O_PLAIN, "{\"t_duration\":\"0.000001s\"}", NULL},
    /* unknown members kept verbatim, at every level that has a slot */
    {ALL, O_KEEP,
     "{\"f_int32\":1,\"top_k\":40,\"nested\":{\"a\":[1,2.5,\"x\"],\"b\":{\"c\":null}},"
     "\"big\":9007199254740992,\"extra_fields\":{\"x\":1},\"extraFields\":true}",
     NULL},
    {ALL, O_KEEP, "{\"recursive\":{\"recursive\":{\"f_int32\":1,\"unknown_inner\":[true]}}}", NULL},
    /* emit_defaults */
    {INNER, O_DEFAULTS, "{}", "{\"name\":\"\",\"count\":0}"},
    {STRICT, O_DEFAULTS, "{\"child\":{}}",
     "{\"name\":\"\",\"child\":{\"name\":\"\",\"children\":[]},\"children\":[]}"},
    /* int64 as number */
    {ALL, O_INT64NUM, "{\"f_int64\":\"5\",\"w_int64\":\"-1\",\"r_int64\":[\"1\"],\"f_uint64\":2}",
     "{\"f_int64\":5,\"w_int64\":-1,\"r_int64\":[1],\"f_uint64\":2}"},
    /* bare unions */
    {UNIONS, O_OPENAI, "{\"a\":\"text\"}", NULL},
    {UNIONS, O_OPENAI, "{\"a\":[\"w1\",\"w2\"]}", NULL},
    {UNIONS, O_OPENAI, "{\"a\":[1,2]}", NULL},
    {UNIONS, O_OPENAI, "{\"a\":[[1],[2,3],[]]}", NULL},
    {UNIONS, O_OPENAI, "{\"a\":{\"name\":\"i\"}}", NULL},
    {UNIONS, O_OPENAI, "{\"a\":true}", NULL},
    {UNIONS, O_OPENAI, "{\"a\":1.5}", NULL},
    {UNIONS, O_OPENAI, "{\"a\":[]}", NULL},
    {UNIONS, O_OPENAI, "{\"a\":null}", "{}"},
    {UNIONS, O_OPENAI, "{\"many\":[\"x\",[1],{\"count\":2}],\"by_name\":{\"k\":[[1]]}}", NULL},
    {UNIONS, O_OPENAI, "{\"plain_words\":{\"values\":[\"a\"]}}", NULL},
    {UNIONS, O_PLAIN, "{\"a\":{\"text\":\"x\"},\"many\":[{\"words\":{\"values\":[\"a\"]}}]}", NULL},
};

static void test_round_trips(void **state) {
  for (size_t i = 0; i < sizeof rt_cases / sizeof rt_cases[0]; i++)
    check_round_trip(rt_cases[i].desc, rt_cases[i].opts, rt_cases[i].in, rt_cases[i].out);
}

/* Values land where the generated struct expects them. */
static void test_values(void **state) {
  static const char json[] =
      "{\"f_int64\":\"-9223372036854775808\",\"f_uint64\":\"18446744073709551615\","
      "\"f_bytes\":\"AAEC/w\",\"f_float\":0.1,\"o_inner\":{\"count\":1},"
      "\"m_bool_enum\":{\"true\":\"RED\"},\"w_double\":0,"
      "\"t_duration\":\"-1.5s\",\"top_k\":40}";
  gw_arena *a = gw_arena_new(0, 0);
  ProtobufCMessage *m;
  gw_json_error err;
  assert_int_equal(gw_json_to_pb(ALL, json, strlen(json), a, &opt_sets[O_KEEP], &m, &err), GW_OK);
  Codectest__AllKinds *k = (Codectest__AllKinds *)m;
  assert_true(k->f_int64 == INT64_MIN);
  assert_true(k->f_uint64 == UINT64_MAX);
  assert_int_equal(k->f_bytes.len, 4);
  assert_memory_equal(k->f_bytes.data, "\x00\x01\x02\xff", 4);
  assert_true(k->f_float == 0.1f);
  assert_int_equal(k->choice_case, CODECTEST__ALL_KINDS__CHOICE_O_INNER);
  assert_int_equal(k->o_inner->count, 1);
  assert_int_equal(k->n_m_bool_enum, 1);
  assert_true(k->m_bool_enum[0]->key);
  assert_int_equal(k->m_bool_enum[0]->value, CODECTEST__COLOR__RED);
  assert_non_null(k->w_double);
  assert_true(k->w_double->value == 0);
  assert_null(k->w_float);
  assert_true(k->t_duration->seconds == -1 && k->t_duration->nanos == -500000000);
  assert_non_null(k->extra_fields);
  assert_int_equal(k->extra_fields->n_fields, 1);
  assert_string_equal(k->extra_fields->fields[0]->key, "top_k");
  assert_true(k->extra_fields->fields[0]->value->number_value == 40);
  gw_arena_free(a);
}

/* ------------------------------------------------------------ errors */

static const struct err_case {
  const ProtobufCMessageDescriptor *desc;
  enum opt_set opts;
  const char *in;
  int rc;
  const char *param;
  const char *message; /* a prefix of the message */
} err_cases[] = {
    {ALL, O_PLAIN, "{\"f_int32\":1.5}", GW_ERR_INVALID, "f_int32", "expected an integer"},
    {ALL, O_PLAIN, "{\"f_int32\":2147483648}", GW_ERR_INVALID, "f_int32", "integer out of range"},
    {ALL, O_PLAIN, "{\"f_uint32\":-1}", GW_ERR_INVALID, "f_uint32", "integer out of range"},
    {ALL, O_PLAIN, "{\"f_uint64\":\"-1\"}", GW_ERR_INVALID, "f_uint64", "expected a non-negative"},
    {ALL, O_PLAIN, "{\"f_int64\":\"12x\"}", GW_ERR_INVALID, "f_int64", "expected an integer"},
    {ALL, O_PLAIN, "{\"f_int64\":\" 12\"}", GW_ERR_INVALID, "f_int64", "expected an integer"},
    {ALL, O_PLAIN, "{\"f_int64\":\"9223372036854775808\"}", GW_ERR_INVALID, "f_int64",
     "expected an integer"},
    {ALL, O_PLAIN, "{\"f_int64\":9.3e18}", GW_ERR_INVALID, "f_int64", "integer out of range"},
    {ALL, O_PLAIN, "{\"f_bool\":\"true\"}", GW_ERR_INVALID, "f_bool", "expected a boolean"},
    {ALL, O_PLAIN, "{\"f_string\":1}", GW_ERR_INVALID, "f_string", "expected a string"},
    {ALL, O_PLAIN, "{\"f_bytes\":\"@@\"}", GW_ERR_INVALID, "f_bytes", "expected a base64 string"},
    {ALL, O_PLAIN, "{\"f_bytes\":\"A\"}", GW_ERR_INVALID, "f_bytes", "expected a base64 string"},
    {ALL, O_PLAIN, "{\"f_enum\":\"BLUE\"}", GW_ERR_INVALID, "f_enum",
     "unknown value of enum codectest.Color"},
    {ALL, O_PLAIN, "{\"f_enum\":true}", GW_ERR_INVALID, "f_enum", "expected an enum"},
    {ALL, O_PLAIN, "{\"f_float\":1e39}", GW_ERR_INVALID, "f_float",
     "number out of range for a float"},
    {ALL, O_PLAIN, "{\"f_double\":\"1x\"}", GW_ERR_INVALID, "f_double", "expected a number"},
    {ALL, O_PLAIN, "{\"f_double\":\"inf\"}", GW_ERR_INVALID, "f_double", "expected a number"},
    {ALL, O_PLAIN, "{\"f_double\":[]}", GW_ERR_INVALID, "f_double", "expected a number"},
    {ALL, O_PLAIN, "{\"f_inner\":[]}", GW_ERR_INVALID, "f_inner",
     "expected an object, not an array"},
    {ALL, O_PLAIN, "{\"f_inner\":{\"count\":\"x\"}}", GW_ERR_INVALID, "f_inner.count",
     "expected an integer"},
    {ALL, O_PLAIN, "{\"r_int32\":[1,\"x\"]}", GW_ERR_INVALID, "r_int32[1]", "expected an integer"},
    {ALL, O_PLAIN, "{\"r_int32\":[null]}", GW_ERR_INVALID, "r_int32[0]", "null is not allowed"},
    {ALL, O_PLAIN, "{\"r_int32\":1}", GW_ERR_INVALID, "r_int32", "expected an array"},
    {ALL, O_PLAIN, "{\"r_inner\":[{\"name\":1}]}", GW_ERR_INVALID, "r_inner[0].name",
     "expected a string"},
    {ALL, O_PLAIN, "{\"m_int_str\":{\"01\":\"x\"}}", GW_ERR_INVALID, "m_int_str.01",
     "expected an integer map key"},
    {ALL, O_PLAIN, "{\"m_int_str\":{\"2147483648\":\"x\"}}", GW_ERR_INVALID, "m_int_str.2147483648",
     "expected an integer map key"},
    {ALL, O_PLAIN, "{\"m_bool_enum\":{\"yes\":1}}", GW_ERR_INVALID, "m_bool_enum.yes",
     "expected a boolean map key"},
    {ALL, O_PLAIN, "{\"m_str_int\":{\"a\":null}}", GW_ERR_INVALID, "m_str_int.a",
     "null is not allowed"},
    {ALL, O_PLAIN, "{\"m_str_int\":[]}", GW_ERR_INVALID, "m_str_int", "expected an object"},
    {ALL, O_PLAIN, "{\"m_int64_inner\":{\"1\":{\"bad\":1}}}", GW_ERR_INVALID, "m_int64_inner.1.bad",
     "unknown field"},
    {ALL, O_PLAIN, "{\"o_string\":\"a\",\"o_int64\":1}", GW_ERR_INVALID, "o_int64",
     "only one member of a oneof"},
    {ALL, O_PLAIN, "{\"f_int32\":1,\"fInt32\":2}", GW_ERR_INVALID, "fInt32", "duplicate field"},
    {ALL, O_PLAIN, "{\"t_time\":\"1972-13-01T00:00:00Z\"}", GW_ERR_INVALID, "t_time",
     "expected an RFC 3339"},
    {ALL, O_PLAIN, "{\"t_time\":\"2023-02-29T00:00:00Z\"}", GW_ERR_INVALID, "t_time",
     "expected an RFC 3339"},
    {ALL, O_PLAIN, "{\"t_time\":\"2023-01-01T00:00:00\"}", GW_ERR_INVALID, "t_time",
     "expected an RFC 3339"},
    {ALL, O_PLAIN, "{\"t_time\":\"0001-01-01T00:00:00+00:01\"}", GW_ERR_INVALID, "t_time",
     "timestamp out of range"},
    {ALL, O_PLAIN, "{\"t_time\":\"2023-01-01T00:00:00.1234567891Z\"}", GW_ERR_INVALID, "t_time",
     "expected an RFC 3339"},
    {ALL, O_PLAIN, "{\"t_duration\":\"1.5\"}", GW_ERR_INVALID, "t_duration", "expected a duration"},
    {ALL, O_PLAIN, "{\"t_duration\":\"315576000001s\"}", GW_ERR_INVALID, "t_duration",
     "duration out of range"},
    {ALL, O_PLAIN, "{\"t_duration\":1.5}", GW_ERR_INVALID, "t_duration", "expected a duration"},
    {ALL, O_PLAIN, "{\"w_int32\":\"x\"}", GW_ERR_INVALID, "w_int32", "expected an integer"},
    {ALL, O_PLAIN, "{\"w_bool\":1}", GW_ERR_INVALID, "w_bool", "expected a boolean"},
    {ALL, O_PLAIN, "{\"r_wrapped\":[1,null]}", GW_ERR_INVALID, "r_wrapped[1]",
     "null is not allowed"},
    {ALL, O_PLAIN, "{\"s_struct\":[]}", GW_ERR_INVALID, "s_struct", "expected an object"},
    {ALL, O_PLAIN, "{\"s_list\":{}}", GW_ERR_INVALID, "s_list", "expected an array"},
    {ALL, O_PLAIN, "{\"bogus\":1}", GW_ERR_INVALID, "bogus", "unknown field"},
    /* a field's name cut short or run on, by proto and by JSON name */
    {ALL, O_PLAIN, "{\"f_int3\":1}", GW_ERR_INVALID, "f_int3", "unknown field"},
    {ALL, O_PLAIN, "{\"f_int320\":1}", GW_ERR_INVALID, "f_int320", "unknown field"},
    {ALL, O_PLAIN, "{\"fInt3\":1}", GW_ERR_INVALID, "fInt3", "unknown field"},
    {ALL, O_PLAIN, "{\"FInt32\":1}", GW_ERR_INVALID, "FInt32", "unknown field"},
    {ALL, O_PLAIN, "{\"extra_fields\":{}}", GW_ERR_INVALID, "extra_fields", "unknown field"},
    {STRICT, O_KEEP, "{\"child\":{\"children\":[{},{\"zz\":1}]}}", GW_ERR_INVALID,
     "child.children[1].zz", "unknown field"},
    {STRICT, O_PLAIN, "[1]", GW_ERR_INVALID, "", "expected an object, not an array"},
    {STRICT, O_PLAIN, "null", GW_ERR_INVALID, "", "expected an object, not null"},
    {STRICT, O_PLAIN, "{\"name\":", GW_ERR_INVALID, "", "invalid JSON at line 1 column"},
    {STRICT, O_PLAIN, "{\"name\":\"a\",\"name\":\"b\"}", GW_ERR_INVALID, "",
     "invalid JSON at line 1"},
    {STRICT, O_PLAIN, "{\"name\":\"\\u0000\"}", GW_ERR_INVALID, "", "invalid JSON"},
    {STRICT, O_PLAIN, "{\"name\":\"\xff\"}", GW_ERR_INVALID, "", "invalid JSON"},
    {STRICT, O_DEPTH3, "{\"child\":{\"child\":{\"child\":{}}}}", GW_ERR_INVALID,
     "child.child.child", "nesting too deep"},
    {STRICT, O_DEPTH3, "{\"children\":[{\"children\":[]}]}", GW_ERR_INVALID, "children[0].children",
     "nesting too deep"},
    {ALL, O_DEPTH3, "{\"s_value\":[[[1]]]}", GW_ERR_INVALID, "s_value[0][0]", "nesting too deep"},
    {ALL, O_DEPTH3, "{\"m_value\":{\"a\":{\"b\":[]}}}", GW_ERR_INVALID, "m_value.a.b",
     "nesting too deep"},
    {UNIONS, O_OPENAI, "{\"a\":{\"zz\":1}}", GW_ERR_INVALID, "a.zz", "unknown field"},
    {UNIONS, O_OPENAI, "{\"a\":[\"x\",1]}", GW_ERR_INVALID, "a[1]", "expected a string"},
    {UNIONS, O_OPENAI, "{\"many\":[1,\"x\",null]}", GW_ERR_INVALID, "many[2]",
     "null is not allowed"},
    {UNIONS, O_OPENAI, "{\"a\":[{}]}", GW_ERR_INVALID, "a", "unexpected an array"},
    {UNIONS, O_PLAIN, "{\"a\":\"x\"}", GW_ERR_INVALID, "a", "expected an object, not a string"},
    {CHAT, O_OPENAI,
     "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":7}]}]}",
     GW_ERR_INVALID, "messages[0].content[0].text", "expected a string"},
    {CHAT, O_OPENAI, "{\"temperature\":\"hot\"}", GW_ERR_INVALID, "temperature",
     "expected a number"},
    {CHAT, O_OPENAI, "{\"tool_choice\":{\"type\":\"function\",\"fn\":1}}", GW_ERR_INVALID,
     "tool_choice.fn", "unknown field"},
    {CHAT, O_OPENAI, "{\"logit_bias\":{\"50256\":\"x\"}}", GW_ERR_INVALID, "logit_bias.50256",
     "expected a number"},
};

static void test_errors(void **state) {
  for (size_t i = 0; i < sizeof err_cases / sizeof err_cases[0]; i++) {
    const struct err_case *e = &err_cases[i];
    gw_arena *a = gw_arena_new(0, 0);
    ProtobufCMessage *m = NULL;
    gw_json_error err;
    int rc = gw_json_to_pb(e->desc, e->in, strlen(e->in), a, &opt_sets[e->opts], &m, &err);
    if (rc != e->rc || strcmp(err.param, e->param) != 0 ||
        strncmp(err.message, e->message, strlen(e->message)) != 0)
      fail_msg("%s: got rc %d param '%s' message '%s'; want %d '%s' '%s'", e->in, rc, err.param,
               err.message, e->rc, e->param, e->message);
    assert_null(m);
    gw_arena_free(a);
  }
}

/* The default nesting limit holds for deep input of any shape. */
static void test_deep_nesting(void **state) {
  gw_buf b;
  gw_buf_init(&b, 1 << 20);
  for (int i = 0; i < 100; i++)
    gw_buf_appends(&b, "{\"child\":");
  gw_buf_appends(&b, "{}");
  for (int i = 0; i < 100; i++)
    gw_buf_appendc(&b, '}');
  gw_arena *a = gw_arena_new(0, 0);
  ProtobufCMessage *m = NULL;
  gw_json_error err;
  assert_int_equal(gw_json_to_pb(STRICT, b.data, b.len, a, NULL, &m, &err), GW_ERR_INVALID);
  assert_string_equal(err.message, "nesting too deep");

  /* 63 levels parse; printing with a lower limit refuses. */
  gw_buf_reset(&b);
  for (int i = 0; i < 63; i++)
    gw_buf_appends(&b, "{\"child\":");
  gw_buf_appends(&b, "{}");
  for (int i = 0; i < 63; i++)
    gw_buf_appendc(&b, '}');
  assert_int_equal(gw_json_to_pb(STRICT, b.data, b.len, a, NULL, &m, &err), GW_OK);
  gw_buf out;
  gw_buf_init(&out, 1 << 20);
  assert_int_equal(gw_pb_to_json(m, NULL, &out), GW_OK);
  assert_string_equal(out.data, b.data);
  gw_buf_reset(&out);
  assert_int_equal(gw_pb_to_json(m, &opt_sets[O_DEPTH3], &out), GW_ERR_INVALID);
  assert_int_equal(out.len, 0);
  assert_pb_dom(m, NULL);
  assert_pb_dom(m, &opt_sets[O_DEPTH3]);
  const gw_jval *dom;
  const char *why;
  assert_int_equal(gw_pb_to_jval(m, &opt_sets[O_DEPTH3], a, &dom, NULL, &why), GW_ERR_INVALID);
  assert_string_equal(why, "nesting too deep to be written as JSON");
  gw_buf_release(&out);
  gw_buf_release(&b);
  gw_arena_free(a);
}

/* ------------------------------------------------------------ OpenAI */

static const char chat_body[] =
    "{\"model\":\"gpt-4o\","
    "\"messages\":["
    "{\"role\":\"system\",\"content\":\"You are "
    "terse.\",\"cache_control\":{\"type\":\"ephemeral\"}},"
    "{\"role\":\"user\",\"content\":["
    "{\"type\":\"text\",\"text\":\"What is in this image and this audio?\"},"
    "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://example.com/"
    "a.png\",\"detail\":\"high\"}},"
    "{\"type\":\"input_audio\",\"input_audio\":{\"data\":\"UklGRg==\",\"format\":\"wav\"}}]},"
    "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
    "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"{\\\"temp\\\":21}\"}],"
    "\"temperature\":0,\"top_p\":0.7,\"n\":1,\"stop\":[\"\\n\\n\",\"END\"],\"max_tokens\":256,"
    "\"logit_bias\":{\"50256\":-100,\"1234\":2.5},\"seed\":42,\"user\":\"u-1\","
    "\"metadata\":{\"team\":\"a\"},\"stream\":false,"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
    "\"description\":\"Weather\",\"parameters\":{\"type\":\"object\",\"properties\":"
    "{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"],\"additionalProperties\":false},"
    "\"strict\":true}}],"
    "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}},"
    "\"parallel_tool_calls\":true,"
    "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"answer\","
    "\"schema\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}}},\"strict\":"
    "true}},"
    "\"top_k\":40,"
    "\"provider_options\":{\"cache\":{\"ttl\":3600,\"tags\":[\"x\",1,null,true]},\"ratio\":0.25}}";

/* Every top-level member of |want| equals the one of |got|, and no more. */
static void assert_members_equal(const char *got, const char *want) {
  json_t *g = json_loads(got, 0, NULL), *w = json_loads(want, 0, NULL);
  assert_non_null(g);
  assert_non_null(w);
  const char *key;
  json_t *val;
  json_object_foreach(w, key, val) {
    json_t *o = json_object_get(g, key);
    if (!o || !json_equal(o, val)) {
      char *a = json_dumps(val, JSON_ENCODE_ANY), *b = o ? json_dumps(o, JSON_ENCODE_ANY) : NULL;
      fail_msg("member %s: got %s, want %s", key, b ? b : "(absent)", a);
    }
  }
  assert_int_equal(json_object_size(g), json_object_size(w));
  json_decref(g);
  json_decref(w);
}

static void test_chat_request(void **state) {
  gw_arena *a = gw_arena_new(0, 0);
  ProtobufCMessage *m;
  gw_json_error err;
  const gw_json_opts *o = &opt_sets[O_OPENAI];
  int rc = gw_json_to_pb(CHAT, chat_body, strlen(chat_body), a, o, &m, &err);
  if (rc != GW_OK)
    fail_msg("rc %d param '%s': %s", rc, err.param, err.message);
  Aigateway__V1__ChatCompletionRequest *r = (void *)m;
  assert_string_equal(r->model, "gpt-4o");
  assert_int_equal(r->n_messages, 4);
  assert_int_equal(r->messages[0]->content->kind_case, AIGATEWAY__V1__MESSAGE_CONTENT__KIND_TEXT);
  assert_string_equal(r->messages[0]->content->text, "You are terse.");
  assert_int_equal(r->messages[0]->extra_fields->n_fields, 1);
  assert_string_equal(r->messages[0]->extra_fields->fields[0]->key, "cache_control");
  Aigateway__V1__MessageContent *c = r->messages[1]->content;
  assert_int_equal(c->kind_case, AIGATEWAY__V1__MESSAGE_CONTENT__KIND_PARTS);
  assert_int_equal(c->parts->n_parts, 3);
  assert_string_equal(c->parts->parts[1]->image_url->detail, "high");
  assert_string_equal(c->parts->parts[2]->input_audio->format, "wav");
  assert_null(r->messages[2]->content);
  assert_string_equal(r->messages[2]->tool_calls[0]->function->name, "get_weather");
  assert_string_equal(r->messages[3]->tool_call_id, "call_1");
  assert_non_null(r->temperature);
  assert_true(r->temperature->value == 0);
  assert_true(r->top_p->value == 0.7);
  assert_int_equal(r->stop->kind_case, AIGATEWAY__V1__STOP_SEQUENCES__KIND_LIST);
  assert_int_equal(r->stop->list->n_values, 2);
  assert_int_equal(r->n_logit_bias, 2);
  assert_string_equal(r->logit_bias[0]->key, "50256");
  assert_true(r->logit_bias[0]->value == -100);
  assert_true(r->seed->value == 42);
  assert_non_null(r->stream);
  assert_false(r->stream->value);
  assert_int_equal(r->tool_choice->kind_case, AIGATEWAY__V1__TOOL_CHOICE__KIND_NAMED);
  assert_string_equal(r->tool_choice->named->function->name, "get_weather");
  assert_int_equal(r->tools[0]->function->parameters->n_fields, 4);
  assert_string_equal(r->response_format->json_schema->name, "answer");
  assert_int_equal(r->response_format->json_schema->schema->n_fields, 2);
  assert_int_equal(r->extra_fields->n_fields, 2);
  assert_string_equal(r->extra_fields->fields[0]->key, "top_k");
  assert_string_equal(r->extra_fields->fields[1]->key, "provider_options");

  gw_buf b;
  gw_buf_init(&b, 1 << 20);
  assert_int_equal(gw_pb_to_json(m, o, &b), GW_OK);
  assert_members_equal(b.data, chat_body);
  assert_non_null(strstr(b.data, "\"top_k\":40,"));
  assert_non_null(strstr(b.data, "\"ttl\":3600,"));
  assert_non_null(strstr(b.data, "\"seed\":42,"));
  assert_non_null(strstr(b.data, "\"temperature\":0,"));
  assert_non_null(strstr(b.data, "\"top_p\":0.7,"));

  /* Through the wire and back: the gRPC side sees the same request. */
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *wire = malloc(n);
  protobuf_c_message_pack(m, wire);
  ProtobufCMessage *u = protobuf_c_message_unpack(CHAT, NULL, n, wire);
  assert_non_null(u);
  gw_buf_reset(&b);
  assert_int_equal(gw_pb_to_json(u, o, &b), GW_OK);
  assert_members_equal(b.data, chat_body);
  protobuf_c_message_free_unpacked(u, NULL);
  free(wire);

  /* String forms of the unions, and content: null (an explicit null is kept
   * in extra_fields and goes out again; an empty array does not). */
  static const char simple[] =
      "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[]}],"
      "\"stop\":\"END\",\"tool_choice\":\"auto\"}";
  assert_int_equal(gw_json_to_pb(CHAT, simple, strlen(simple), a, o, &m, &err), GW_OK);
  gw_buf_reset(&b);
  assert_int_equal(gw_pb_to_json(m, o, &b), GW_OK);
  assert_json_eq(b.data,
                 "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"content\":null}],"
                 "\"stop\":\"END\","
                 "\"tool_choice\":\"auto\"}",
                 simple);
  gw_buf_release(&b);
  gw_arena_free(a);
}

/* The response side: `created` is a number on OpenAI routes. */
static void test_chat_response(void **state) {
  Aigateway__V1__ChatCompletionResponse r = AIGATEWAY__V1__CHAT_COMPLETION_RESPONSE__INIT;
  Aigateway__V1__Usage u = AIGATEWAY__V1__USAGE__INIT;
  r.id = "chatcmpl-1";
  r.object = "chat.completion";
  r.created = 1700000000;
  r.model = "gpt-4o";
  u.prompt_tokens = 3;
  u.total_tokens = 3;
  r.usage = &u;
  gw_buf b;
  gw_buf_init(&b, 4096);
  assert_int_equal(gw_pb_to_json(&r.base, &opt_sets[O_OPENAI], &b), GW_OK);
  assert_string_equal(b.data, "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\","
                              "\"created\":1700000000,\"model\":\"gpt-4o\","
                              "\"usage\":{\"prompt_tokens\":3,\"total_tokens\":3}}");
  gw_buf_reset(&b);
  assert_int_equal(gw_pb_to_json(&r.base, NULL, &b), GW_OK);
  assert_non_null(strstr(b.data, "\"created\":\"1700000000\""));
  gw_buf_release(&b);
}

/* ------------------------------------------------------------ limits */

static int sweep_chat(void *arg) {
  gw_arena *a = gw_arena_new(256, 0);
  if (!a)
    return GW_ERR_NOMEM;
  ProtobufCMessage *m;
  gw_json_error err;
  gw_buf b;
  gw_buf_init(&b, 1 << 20);
  const char *json = arg;
  int rc = gw_json_to_pb(CHAT, json, strlen(json), a, &opt_sets[O_OPENAI], &m, &err);
  if (rc == GW_OK)
    rc = gw_pb_to_json(m, &opt_sets[O_OPENAI], &b);
  gw_buf_release(&b);
  gw_arena_free(a);
  return rc;
}

static int sweep_all_kinds(void *arg) {
  gw_arena *a = gw_arena_new(64, 0);
  if (!a)
    return GW_ERR_NOMEM;
  ProtobufCMessage *m;
  gw_buf b;
  gw_buf_init(&b, 1 << 20);
  const char *json = arg;
  int rc = gw_json_to_pb(ALL, json, strlen(json), a, &opt_sets[O_KEEP], &m, NULL);
  if (rc == GW_OK)
    rc = gw_pb_to_json(m, &opt_sets[O_KEEP], &b);
  gw_buf_release(&b);
  gw_arena_free(a);
  return rc;
}

/* opts.floats_base64: an embedding answer's base64 vector (little-endian
 * float32) lands in the repeated float field as the same bits: URL-safe or
 * standard alphabet, padded or not, a JSON escape inside the string; a bad
 * character or a length that is not whole floats is an error naming the
 * member; without the option a string there is an error as before. */
static void test_floats_base64(void **state) {
  gw_arena *a = gw_arena_new(0, 0);
  assert_non_null(a);
  static const gw_json_opts on = {.keep_unknown = 1, .floats_base64 = 1};
  const ProtobufCMessageDescriptor *resp = &aigateway__v1__embedding_response__descriptor;
  /* [1.0, -2.5, 0.125] and [0.1f]; "\/" is an escaped '/' (63) */
  static const char json[] =
      "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
      "\"embedding\":\"AACAPwAAIMAAAAA+\"},{\"index\":1,\"embedding\":\"zczMPQ==\"},"
      "{\"index\":2,\"embedding\":\"zczMPQ\"},{\"index\":3,\"embedding\":\"AAAg\\/w\"},"
      "{\"index\":4,\"embedding\":\"AAAg_w\"},{\"index\":5,\"embedding\":\"\"},"
      "{\"index\":6,\"embedding\":[0.5,1]}],\"model\":\"m\"}";
  ProtobufCMessage *m = NULL;
  gw_json_error err;
  assert_int_equal(gw_json_to_pb(resp, json, strlen(json), a, &on, &m, &err), GW_OK);
  const Aigateway__V1__EmbeddingResponse *r = (const void *)m;
  assert_int_equal(r->n_data, 7);
  assert_int_equal(r->data[0]->n_embedding, 3);
  assert_true(r->data[0]->embedding[0] == 1.0f && r->data[0]->embedding[1] == -2.5f &&
              r->data[0]->embedding[2] == 0.125f);
  for (int i = 1; i <= 2; i++) {
    assert_int_equal(r->data[i]->n_embedding, 1);
    assert_true(r->data[i]->embedding[0] == 0.1f);
  }
  for (int i = 3; i <= 4; i++) { /* 0xff200000: a NaN, its bits kept */
    uint32_t bits;
    assert_int_equal(r->data[i]->n_embedding, 1);
    memcpy(&bits, &r->data[i]->embedding[0], 4);
    assert_int_equal(bits, 0xff200000u);
  }
  assert_int_equal(r->data[5]->n_embedding, 0);
  assert_int_equal(r->data[6]->n_embedding, 2);
  assert_true(r->data[6]->embedding[1] == 1.0f);
  static const char *const bad[] = {"{\"data\":[{\"embedding\":\"A*==\"}]}",
                                    "{\"data\":[{\"embedding\":\"AACA\"}]}",
                                    "{\"data\":[{\"embedding\":\"AACAP\"}]}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(gw_json_to_pb(resp, bad[i], strlen(bad[i]), a, &on, &m, &err), GW_ERR_INVALID);
    assert_string_equal(err.param, "data[0].embedding");
  }
  static const char plain[] = "{\"data\":[{\"embedding\":\"AACAPw==\"}]}";
  assert_int_equal(gw_json_to_pb(resp, plain, strlen(plain), a, &opt_sets[O_KEEP], &m, &err),
                   GW_ERR_INVALID);
  assert_string_equal(err.message, "expected an array");
  gw_arena_free(a);
}

/* bytes fields: every length from 0 to 64 of random bytes and some long
 * ones, written by the printer and read back (the decoder takes sixteen
 * digits at a time where it can, then four, then a tail of two or three);
 * unpadded, URL-safe and half URL-safe forms (the sixteen-digit path hands
 * over mid-way) read the same; a bad digit at any position is an error. */
static void test_bytes_base64_lengths(void **state) {
  gw_arena *a = gw_arena_new(0, 0);
  assert_non_null(a);
  uint32_t x = 2463534242u;
  static const size_t longer[] = {65, 100, 255, 256, 300, 767, 1024, 1537, 3000};
  enum { MAX_RAW = 3000, MAX_B64 = 4004 };
  static uint8_t raw[MAX_RAW];
  static char b64[MAX_B64], text[MAX_B64 + 64];
  for (size_t li = 0; li < 65 + sizeof longer / sizeof longer[0]; li++) {
    size_t len = li < 65 ? li : longer[li - 65];
    for (size_t i = 0; i < len; i++) {
      x ^= x << 13, x ^= x >> 17, x ^= x << 5;
      raw[i] = (uint8_t)x;
    }
    Codectest__AllKinds k = CODECTEST__ALL_KINDS__INIT;
    k.f_bytes.data = raw;
    k.f_bytes.len = len;
    gw_buf out;
    gw_buf_init(&out, 1 << 16);
    assert_int_equal(gw_pb_to_json(&k.base, NULL, &out), GW_OK);
    const char *q = strstr(out.data, "\"f_bytes\":\"");
    if (!len) {
      gw_buf_release(&out);
      continue; /* a default: not printed */
    }
    assert_non_null(q);
    q += 11;
    size_t n = (size_t)(strchr(q, '"') - q);
    for (int form = 0; form < 4; form++) { /* printed, unpadded, URL-safe, half */
      memcpy(b64, q, n);
      size_t m = n;
      if (form >= 1)
        while (m && b64[m - 1] == '=')
          m--;
      for (size_t i = form == 3 ? m / 2 : 0; form >= 2 && i < m; i++)
        b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
      snprintf(text, sizeof text, "{\"f_bytes\":\"%.*s\"}", (int)m, b64);
      ProtobufCMessage *pm = NULL;
      gw_json_error err;
      assert_int_equal(gw_json_to_pb(ALL, text, strlen(text), a, NULL, &pm, &err), GW_OK);
      const Codectest__AllKinds *r = (const void *)pm;
      assert_int_equal(r->f_bytes.len, len);
      assert_memory_equal(r->f_bytes.data, raw, len);
      if (form == 1)
        for (size_t bad = 0; bad < m; bad += len <= 64 ? 1 : 7) {
          snprintf(text, sizeof text, "{\"f_bytes\":\"%.*s%c%.*s\"}", (int)bad, b64,
                   "*@.\x80"[bad % 4], (int)(m - bad - 1), b64 + bad + 1);
          assert_int_equal(gw_json_to_pb(ALL, text, strlen(text), a, NULL, &pm, &err),
                           GW_ERR_INVALID);
        }
    }
    gw_buf_release(&out);
  }
  gw_arena_free(a);
}

/* A digit's value in either alphabet, -1 for anything else: the reference
 * for the test below. */
static int ref_digit(int c) {
  static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (c == '-')
    return 62;
  if (c == '_')
    return 63;
  const char *p = c ? strchr(std, c) : NULL;
  return p ? (int)(p - std) : -1;
}

/* Every printable byte JSON lets through, at a place in the first
 * sixteen-digit block and in a later one of a long unpadded string: read as
 * its digit's value when it is one, an error otherwise. */
static void test_bytes_base64_every_digit(void **state) {
  gw_arena *a = gw_arena_new(0, 0);
  assert_non_null(a);
  char b64[97], text[160];
  for (int i = 0; i < 96; i++)
    b64[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[(i * 37) % 64];
  b64[96] = '\0';
  static const int at[] = {5, 15, 16, 40, 95};
  for (size_t w = 0; w < sizeof at / sizeof at[0]; w++)
    for (int c = 0x20; c < 0x7f; c++) {
      if (c == '"' || c == '\\' || (c == '=' && at[w] == 95)) /* (padding, there) */
        continue;
      char t[97];
      memcpy(t, b64, sizeof t);
      t[at[w]] = (char)c;
      snprintf(text, sizeof text, "{\"f_bytes\":\"%s\"}", t);
      ProtobufCMessage *pm = NULL;
      gw_json_error err;
      int rc = gw_json_to_pb(ALL, text, strlen(text), a, NULL, &pm, &err);
      if (ref_digit(c) < 0) {
        if (rc != GW_ERR_INVALID)
          fail_msg("'%c' at %d read as a digit", c, at[w]);
        continue;
      }
      assert_int_equal(rc, GW_OK);
      const Codectest__AllKinds *r = (const void *)pm;
      assert_int_equal(r->f_bytes.len, 72);
      for (int g = 0; g < 24; g++) { /* each group of four digits, three bytes */
        uint32_t v = 0;
        for (int d = 0; d < 4; d++)
          v = v << 6 | (uint32_t)ref_digit((unsigned char)t[4 * g + d]);
        uint8_t want[3] = {(uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
        assert_memory_equal(r->f_bytes.data + 3 * g, want, 3);
      }
    }
  gw_arena_free(a);
}

/* The direct path (plain documents read straight into the message) gives
 * what the DOM path gives: the same message bytes, or the same error, on
 * documents that take every branch of it and on ones it hands back. A plain
 * chat request uses less arena that way (no DOM). */
static void direct_equals_dom(const ProtobufCMessageDescriptor *d, const gw_json_opts *o,
                              const char *json, size_t *used_direct, size_t *used_dom) {
  gw_json_opts dom = *o;
  dom.dom_only = 1;
  gw_arena *a = gw_arena_new(0, 0), *b = gw_arena_new(0, 0);
  assert_non_null(a);
  assert_non_null(b);
  ProtobufCMessage *ma = NULL, *mb = NULL;
  gw_json_error ea, eb;
  int ra = gw_json_to_pb(d, json, strlen(json), a, o, &ma, &ea);
  int rb = gw_json_to_pb(d, json, strlen(json), b, &dom, &mb, &eb);
  if (ra != rb)
    fail_msg("%s: direct %d, DOM %d", json, ra, rb);
  if (ra != GW_OK) {
    assert_string_equal(ea.param, eb.param);
    assert_string_equal(ea.message, eb.message);
  } else {
    size_t na = protobuf_c_message_get_packed_size(ma);
    assert_int_equal(na, protobuf_c_message_get_packed_size(mb));
    uint8_t *pa = malloc(na + 1), *pb = malloc(na + 1);
    protobuf_c_message_pack(ma, pa);
    protobuf_c_message_pack(mb, pb);
    if (memcmp(pa, pb, na) != 0)
      fail_msg("%s: messages differ", json);
    free(pa);
    free(pb);
  }
  if (used_direct)
    *used_direct = gw_arena_used(a), *used_dom = gw_arena_used(b);
  gw_arena_free(a);
  gw_arena_free(b);
}

/* A scalar for a wrapper field and a string for a bare union are read by the
 * direct path into the one member they set: every wrapper kind with every
 * kind of scalar, and unions with and without bare_unions, read exactly as
 * the DOM path reads them. */
static void test_direct_wrappers_and_unions(void **state) {
  (void)state;
  static const gw_json_opts plain = {0}, bare = {.bare_unions = 1};
  static const char *const fields[] = {"w_double", "w_float", "w_int64",  "w_uint64", "w_int32",
                                       "w_uint32", "w_bool",  "w_string", "w_bytes"};
  static const char *const values[] = {"0",
                                       "7",
                                       "-7",
                                       "01",
                                       "1.5",
                                       "1e2",
                                       "\"12\"",
                                       "\"s\"",
                                       "true",
                                       "\"aGk=\"",
                                       "null",
                                       "\"\"",
                                       "\"a\\nb\"",
                                       "2147483648",
                                       "-2147483649",
                                       "4294967296",
                                       "18446744073709551615",
                                       "9223372036854775808"};
  char doc[256];
  for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++)
    for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
      snprintf(doc, sizeof doc, "{\"%s\":%s,\"f_int32\":1}", fields[f], values[v]);
      direct_equals_dom(ALL, &plain, doc, NULL, NULL);
      snprintf(doc, sizeof doc, "{\"r_wrapped\":[%s]}", values[v]);
      direct_equals_dom(ALL, &plain, doc, NULL, NULL);
    }
  static const char *const unions[] = {"{\"a\":\"text\"}",
                                       "{\"a\":\"esc\\\"aped\\n\"}",
                                       "{\"a\":\"\"}",
                                       "{\"a\":5}",
                                       "{\"a\":-1.5}",
                                       "{\"a\":true}",
                                       "{\"a\":[\"w\"]}",
                                       "{\"a\":{\"name\":\"n\"}}",
                                       "{\"a\":\"x\",\"a\":\"y\"}",
                                       "{\"many\":[\"s\",7,true]}",
                                       "{\"by_name\":{\"k\":\"v\"}}",
                                       "{\"a\":\"cut",
                                       "{\"a\":null}"};
  for (size_t i = 0; i < sizeof unions / sizeof unions[0]; i++) {
    direct_equals_dom(UNIONS, &bare, unions[i], NULL, NULL);
    direct_equals_dom(UNIONS, &plain, unions[i], NULL, NULL);
  }
  /* the values land */
  gw_arena *a = gw_arena_new(0, 0);
  ProtobufCMessage *m = NULL;
  gw_json_error e;
  const char *doc2 = "{\"w_int32\":-42,\"w_string\":\"hi\",\"w_uint64\":18}";
  assert_int_equal(gw_json_to_pb(ALL, doc2, strlen(doc2), a, &plain, &m, &e), GW_OK);
  const Codectest__AllKinds *k = (const void *)m;
  assert_int_equal(k->w_int32->value, -42);
  assert_string_equal(k->w_string->value, "hi");
  assert_true(k->w_uint64->value == 18);
  const char *doc3 = "{\"a\":\"text\"}";
  assert_int_equal(gw_json_to_pb(UNIONS, doc3, strlen(doc3), a, &bare, &m, &e), GW_OK);
  const Codectest__Unions *u = (const void *)m;
  assert_int_equal(u->a->kind_case, CODECTEST__EITHER__KIND_TEXT);
  assert_string_equal(u->a->text, "text");
  gw_arena_free(a);
}

/* gw_json_field_cached answers as gw_json_field does, also when the type
 * asked about changes from one call to the next. */
static void test_field_cache(void **state) {
  (void)state;
  gw_json_field_cache cache = {0};
  const ProtobufCMessageDescriptor *types[] = {ALL, INNER, ALL, STRICT, INNER, INNER};
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    assert_ptr_equal(gw_json_field_cached(&cache, types[i], "count"),
                     gw_json_field(types[i], "count"));
    assert_ptr_equal(gw_json_field_cached(NULL, types[i], "name"), gw_json_field(types[i], "name"));
  }
  assert_non_null(gw_json_field_cached(&cache, INNER, "count"));
  assert_null(gw_json_field_cached(&cache, ALL, "count"));
}

/* A string is written in one pass when it is plain: each length from 1 to 40
 * at each of the 16 alignments, in a heap block of exactly its size (the scan
 * reads whole aligned blocks), plain or with a byte that must be escaped at
 * each position, is written as the slow path writes it. */
static void test_print_string_alignments(void **state) {
  (void)state;
  static const char specials[] = {'"', '\\', '\n', '\x01', '\x7f', '\xc3'};
  gw_buf out, want;
  gw_buf_init(&out, 1 << 20);
  gw_buf_init(&want, 1 << 20);
  /* (an empty string is not written); past 64 bytes the scan may go on 32
   * bytes a step from a 32-aligned address (AVX2): long strings at every
   * alignment to 32, specials at every position around those blocks */
  static const size_t longs[] = {63, 64,  65,  79,  80,  81,  95,  96,
                                 97, 111, 112, 127, 128, 129, 161, 200};
  for (size_t li = 0; li < 40 + sizeof longs / sizeof longs[0]; li++) {
    size_t len = li < 40 ? li + 1 : longs[li - 40];
    for (size_t align = 0; align < (len > 40 ? 32u : 16u); align++)
      for (int sp = -1; sp < (int)sizeof specials; sp++)
        for (size_t at = 0; at < (sp < 0 ? 1 : len); at++) {
          char *block = malloc(align + len + 1), *str = block + align;
          for (size_t i = 0; i < len; i++)
            str[i] = (char)('a' + (i % 26));
          str[len] = '\0';
          if (sp >= 0)
            str[at] = specials[sp];
          Codectest__Inner m = CODECTEST__INNER__INIT;
          m.name = str;
          gw_buf_reset(&out);
          assert_int_equal(gw_pb_to_json(&m.base, NULL, &out), GW_OK);
          gw_buf_reset(&want);
          assert_int_equal(gw_buf_appends(&want, "{\"name\":\""), GW_OK);
          for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)str[i];
            if (c == '"' || c == '\\')
              assert_int_equal(gw_buf_printf(&want, "\\%c", c), GW_OK);
            else if (c == '\n')
              assert_int_equal(gw_buf_appends(&want, "\\n"), GW_OK);
            else if (c < 0x20)
              assert_int_equal(gw_buf_printf(&want, "\\u%04x", c), GW_OK);
            else if (c >= 0x80) /* a lone lead byte: not UTF-8 */
              assert_int_equal(gw_buf_appends(&want, "\\ufffd"), GW_OK);
            else
              assert_int_equal(gw_buf_appendc(&want, (char)c), GW_OK);
          }
          assert_int_equal(gw_buf_appends(&want, "\"}"), GW_OK);
          if (strcmp(out.data, want.data) != 0)
            fail_msg("len %zu align %zu: %s, want %s", len, align, out.data, want.data);
          free(block);
        }
  }
  gw_buf_release(&out);
  gw_buf_release(&want);
}

/* A plain string longer than the room left (a 100 KB prompt) is written with
 * one reservation and one copy: whole, and refused whole when the cap is one
 * byte short, the buffer left as it was. */
static void test_print_long_string(void **state) {
  (void)state;
  size_t len = 100000;
  char *str = malloc(len + 1);
  for (size_t i = 0; i < len; i++)
    str[i] = (char)('a' + (i % 26));
  str[len] = '\0';
  Codectest__Inner m = CODECTEST__INNER__INIT;
  m.name = str;
  size_t whole = strlen("{\"name\":\"") + len + strlen("\"}");
  for (size_t cap = whole - 1; cap <= whole + 1; cap++) {
    gw_buf b;
    gw_buf_init(&b, cap);
    int rc = gw_pb_to_json(&m.base, NULL, &b);
    if (cap < whole) {
      assert_int_equal(rc, GW_ERR_TOOBIG);
      assert_int_equal(b.len, 0);
    } else {
      assert_int_equal(rc, GW_OK);
      assert_int_equal(b.len, whole);
      assert_memory_equal(b.data, "{\"name\":\"", 9);
      assert_memory_equal(b.data + 9, str, len);
      assert_string_equal(b.data + 9 + len, "\"}");
    }
    gw_buf_release(&b);
  }
  free(str);
}

/* The direct path reads an integer written as plain digits, and a string,
 * straight into the field: every number form and range edge reads as the DOM
 * path reads it (a value, or the same error), in each integer field kind,
 * and the values land. */
static void test_direct_integers_and_strings(void **state) {
  (void)state;
  static const gw_json_opts o = {0};
  static const char *const fields[] = {"f_int32",  "f_int64",   "f_uint32", "f_uint64",
                                       "f_sint32", "f_fixed64", "count"};
  static const char *const values[] = {
      "0", "-0", "7", "-7", "01", "-01", "00", "1.0", "1e2", "1E2", "-", "1.5", "-1.5e3", "\"12\"",
      "true", "2147483647", "2147483648", "-2147483648", "-2147483649", "4294967295", "4294967296",
      "999999999999999999", "-999999999999999999", "1000000000000000000", "9223372036854775807",
      "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "18446744073709551615",
      "18446744073709551616", "123456789012345678901234", "12 ", "0x10", "1-2",
      /* eight digits and more, read eight at a time */
      "12345678", "87654321.5", "1234567", "00000000", "012345678", "1700000000", "-1700000000",
      "123456789012345678", "12345678e1", "1234567x"};
  char doc[256];
  for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++)
    for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
      snprintf(doc, sizeof doc, "{\"%s\":%s,\"f_bool\":true}", fields[f], values[v]);
      direct_equals_dom(f == 6 ? INNER : ALL, &o, doc, NULL, NULL);
    }
  static const char *const strings[] = {"{\"f_string\":\"plain\",\"f_int64\":-123456789012345678}",
                                        "{\"f_string\":\"esc\\\"aped\\u00e9\"}",
                                        "{\"f_string\":\"\"}", "{\"f_string\":\"cut"};
  for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
    direct_equals_dom(ALL, &o, strings[i], NULL, NULL);
  gw_arena *a = gw_arena_new(0, 0);
  ProtobufCMessage *m = NULL;
  gw_json_error e;
  assert_int_equal(gw_json_to_pb(ALL, strings[0], strlen(strings[0]), a, &o, &m, &e), GW_OK);
  const Codectest__AllKinds *k = (const void *)m;
  assert_string_equal(k->f_string, "plain");
  assert_true(k->f_int64 == -123456789012345678LL);
  assert_int_equal(gw_json_to_pb(ALL, strings[1], strlen(strings[1]), a, &o, &m, &e), GW_OK);
  k = (const void *)m;
  assert_string_equal(k->f_string, "esc\"aped\xc3\xa9");
  gw_arena_free(a);
}

/* The direct path checks each key against the member seen at its position
 * last time before it hashes it. Orders that change from one document to
 * the next, JSON names where proto names were, unknown keys as long as the
 * guess, a repeated key and objects past the remembered positions all read
 * as the DOM path reads them, and the values land in the right fields. */
static void test_member_order_guess(void **state) {
  (void)state;
  static const gw_json_opts o = {.keep_unknown = 1, .bare_unions = 1};
  const ProtobufCMessageDescriptor *u = &aigateway__v1__usage__descriptor;
  static const char *const docs[] = {
      "{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}",
      "{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}",
      "{\"total_tokens\":3,\"prompt_tokens\":1,\"completion_tokens\":2}",
      "{\"promptTokens\":1,\"completionTokens\":2,\"totalTokens\":3}",
      "{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}",
      "{\"prompt_tokenz\":1,\"completion_tokens\":2}",
      "{\"prompt_tokens\":1,\"prompt_tokens\":2}",
      "{\"completion_tokens\":2,\"promptTokens\":1,\"total_tokens\":3}",
      /* the guessed name read with no scan: a longer key it starts, the
       * same key escaped, the document cut inside or right after it */
      "{\"prompt_tokensX\":1,\"completion_tokens\":2,\"total_tokens\":3}",
      "{\"prompt_tokens\":1,\"completion\\u005ftokens\":2,\"total_tokens\":3}",
      "{\"prompt_tokens\":1,\"completion_tokens\\\":2,\"total_tokens\":3}",
      "{\"prompt_tokens\":1,\"completion_tok",
      "{\"prompt_tokens\":1,\"completion_tokens",
      "{\"prompt_tokens\":1,\"completion_tokens\"",
  };
  for (int round = 0; round < 2; round++)
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++)
      direct_equals_dom(u, &o, docs[i], NULL, NULL);
  /* The values, after the guesses were trained on another order. */
  static const char *const orders[] = {
      "{\"total_tokens\":30,\"completion_tokens\":20,\"prompt_tokens\":10}",
      "{\"completionTokens\":20,\"totalTokens\":30,\"promptTokens\":10}",
  };
  for (size_t i = 0; i < 2; i++) {
    gw_arena *a = gw_arena_new(0, 0);
    ProtobufCMessage *m = NULL;
    gw_json_error e;
    assert_int_equal(gw_json_to_pb(u, orders[i], strlen(orders[i]), a, &o, &m, &e), GW_OK);
    const Aigateway__V1__Usage *us = (const void *)m;
    assert_int_equal(us->prompt_tokens, 10);
    assert_int_equal(us->completion_tokens, 20);
    assert_int_equal(us->total_tokens, 30);
    gw_arena_free(a);
  }
  /* More members than positions remembered (16): the rest by hash. */
  static const char big[] =
      "{\"model\":\"m\",\"messages\":[],\"max_tokens\":1,\"temperature\":0.5,\"top_p\":1,"
      "\"n\":1,\"stream\":false,\"stop\":\"x\",\"presence_penalty\":0,\"frequency_penalty\":0,"
      "\"user\":\"u\",\"seed\":7,\"logprobs\":false,\"parallel_tool_calls\":true,"
      "\"store\":false,\"service_tier\":\"auto\",\"max_completion_tokens\":5,\"top_logprobs\":2,"
      "\"x_unknown\":1}";
  for (int round = 0; round < 2; round++)
    direct_equals_dom(CHAT, &opt_sets[O_OPENAI], big, NULL, NULL);
}

static void test_direct_path(void **state) {
  static const gw_json_opts answers = {.keep_unknown = 1, .bare_unions = 1, .floats_base64 = 1};
  const gw_json_opts *openai = &opt_sets[O_OPENAI];
  const ProtobufCMessageDescriptor *resp = &aigateway__v1__chat_completion_response__descriptor;
  static const char chat[] =
      "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
      "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi \\u00e9\\n\"}]}],"
      "\"max_tokens\":64,\"temperature\":0.5,\"stream\":false,\"stop\":[\"a\",\"b\"],"
      "\"logit_bias\":{\"50256\":-100},\"metadata\":{\"k\":\"v\"},\"x_vendor\":{\"a\":[1,null]},"
      "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":"
      "{\"type\":\"object\",\"properties\":{}}}}],\"user\":null}";
  size_t used_direct, used_dom;
  direct_equals_dom(CHAT, openai, chat, &used_direct, &used_dom);
  assert_true(used_direct < used_dom);
  static const char *const answers_ok[] = {
      "{\"id\":\"c\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":\"m\","
      "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello\","
      "\"refusal\":null,\"annotations\":[]},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
      "\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":9,\"total_tokens\":29,"
      "\"prompt_tokens_details\":{\"cached_tokens\":0}},\"system_fingerprint\":\"fp\","
      "\"service_tier\":\"default\"}",
      " { } ",
      "{\"choices\":[]}",
      "{\"choices\":[{\"message\":{\"tool_calls\":[{\"id\":\"t\",\"type\":\"function\","
      "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}}]}",
      "{\"created\":\"1700000000\",\"choices\":[{\"index\":1e0}]}",
  };
  for (size_t i = 0; i < sizeof answers_ok / sizeof answers_ok[0]; i++)
    direct_equals_dom(resp, &answers, answers_ok[i], NULL, NULL);
  /* Embeddings: floats read in one loop; an integer, a bad number or a
   * wrong element hands the array to the DOM path. */
  const ProtobufCMessageDescriptor *emb = &aigateway__v1__embedding_response__descriptor;
  static const char *const embs[] = {
      "{\"data\":[{\"embedding\":[0.0327577,-0.015240711, 1e-3 ,2.5E+1]}]}",
      "{\"data\":[{\"embedding\":[]}]}",
      "{\"data\":[{\"embedding\":[0.5,1,-0.25]}]}",
      "{\"data\":[{\"embedding\":[0.5,1e400]}]}",
      "{\"data\":[{\"embedding\":[0.5,\"NaN\",0.1]}]}",
      "{\"data\":[{\"embedding\":[0.5,null]}]}",
      "{\"data\":[{\"embedding\":[0.5,]}]}",
      "{\"data\":[{\"embedding\":[0.5 0.1]}]}",
      "{\"data\":[{\"embedding\":\"AACAPw==\"}]}",
  };
  for (size_t i = 0; i < sizeof embs / sizeof embs[0]; i++)
    direct_equals_dom(emb, &answers, embs[i], NULL, NULL);
  /* Errors: each one must come out as the DOM path words it. */
  static const char *const bad[] = {
      "{\"model\":\"m\",\"model\":\"n\"}",                  /* a repeated key */
      "{\"max_tokens\":1,\"maxTokens\":2}",                 /* two names of one field */
      "{\"model\":\"m\",}",                                 /* a trailing comma */
      "{\"model\":\"m\"} x",                                /* text after the value */
      "{\"messages\":[{\"role\":\"user\"},null]}",          /* null in an array */
      "{\"messages\":[{\"role\":\"user\"},]}",              /* a trailing comma in an array */
      "{\"max_tokens\":\"x\"}",                             /* a wrong type */
      "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", /* a union of the wrong kind */
      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"n\":1, "
      "\"stop\":[1]}",
      "{\"model\":\"\\ud800\"}", /* a lone surrogate */
      "{\"model\":\"m\"",        /* cut short */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    direct_equals_dom(CHAT, openai, bad[i], NULL, NULL);
  direct_equals_dom(CHAT, &opt_sets[O_PLAIN], "{\"model\":\"m\",\"x\":1}", NULL, NULL);
  direct_equals_dom(CHAT, &opt_sets[O_DEPTH3], chat, NULL, NULL);
  /* Deeper than the direct path goes: the DOM path takes it whole. */
  char deep[512] = "";
  for (int i = 0; i < 40; i++)
    strcat(deep, "{\"child\":");
  strcat(deep, "{\"name\":\"x\"}");
  for (int i = 0; i < 40; i++)
    strcat(deep, "}");
  direct_equals_dom(STRICT, &opt_sets[O_PLAIN], deep, NULL, NULL);
  direct_equals_dom(STRICT, &opt_sets[O_PLAIN], "{\"children\":[{\"name\":\"a\"},{}]}", NULL, NULL);
}

static void test_failmalloc(void **state) {
  long n = gw_test_failmalloc_sweep(sweep_chat, (void *)chat_body);
  assert_true(n > 3);
  n = gw_test_failmalloc_sweep(sweep_all_kinds, (void *)rt_cases[0].in);
  assert_true(n > 3);
  n = gw_test_failmalloc_sweep(sweep_all_kinds,
                               "{\"m_value\":{\"k\":[1,{\"z\":[true]}]},\"s_struct\":{\"a\":[1]},"
                               "\"t_time\":\"1972-01-01T10:00:20.021Z\",\"zz\":{\"y\":[1,2]}}");
  assert_true(n > 3);
}

/* A capped arena turns into GW_ERR_NOMEM, never a crash or a partial OK. */
static void test_arena_cap(void **state) {
  static const size_t caps[] = {64, 512, 2048, 4096};
  for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
    long live = gw_alloc_live();
    gw_arena *a = gw_arena_new(0, caps[i]);
    ProtobufCMessage *m = NULL;
    gw_json_error err;
    int rc = gw_json_to_pb(CHAT, chat_body, strlen(chat_body), a, &opt_sets[O_OPENAI], &m, &err);
    assert_int_equal(rc, GW_ERR_NOMEM);
    assert_string_equal(err.message, "out of memory");
    assert_null(m);
    gw_arena_free(a);
    assert_int_equal(gw_alloc_live(), live);
  }
  gw_arena *a = gw_arena_new(0, 1 << 20);
  ProtobufCMessage *m = NULL;
  assert_int_equal(
      gw_json_to_pb(CHAT, chat_body, strlen(chat_body), a, &opt_sets[O_OPENAI], &m, NULL), GW_OK);
  gw_arena_free(a);
}

/* The output buffer's cap is GW_ERR_TOOBIG, and the buffer is left as it was. */
static void test_buf_cap(void **state) {
  gw_arena *a = gw_arena_new(0, 0);
  ProtobufCMessage *m;
  assert_int_equal(
      gw_json_to_pb(CHAT, chat_body, strlen(chat_body), a, &opt_sets[O_OPENAI], &m, NULL), GW_OK);
  gw_buf full;
  gw_buf_init(&full, 1 << 20);
  assert_int_equal(gw_pb_to_json(m, &opt_sets[O_OPENAI], &full), GW_OK);
  for (size_t cap = 3; cap < full.len + 2; cap += 37) {
    gw_buf b;
    gw_buf_init(&b, cap);
    assert_int_equal(gw_buf_appends(&b, "xy"), GW_OK);
    assert_int_equal(gw_pb_to_json(m, &opt_sets[O_OPENAI], &b), GW_ERR_TOOBIG);
    assert_int_equal(b.len, 2);
    assert_string_equal(b.data, "xy");
    gw_buf_release(&b);
  }
  gw_buf b;
  gw_buf_init(&b, full.len + 3);
  assert_int_equal(gw_buf_appends(&b, "xy"), GW_OK);
  assert_int_equal(gw_pb_to_json(m, &opt_sets[O_OPENAI], &b), GW_OK);
  assert_string_equal(b.data + 2, full.data);
  gw_buf_release(&b);
  gw_buf_release(&full);
  gw_arena_free(a);
}

/* Values that cannot be written are refused, not printed wrong. */
static void test_unprintable(void **state) {
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  Google__Protobuf__Duration du = GOOGLE__PROTOBUF__DURATION__INIT;
  Codectest__AllKinds k = CODECTEST__ALL_KINDS__INIT;
  gw_buf b;
  gw_buf_init(&b, 4096);
  k.t_time = &ts;
  ts.seconds = 253402300800; /* year 10000 */
  assert_int_equal(gw_pb_to_json(&k.base, NULL, &b), GW_ERR_INVALID);
  assert_pb_dom(&k.base, NULL);
  ts.seconds = 0;
  ts.nanos = -1;
  assert_int_equal(gw_pb_to_json(&k.base, NULL, &b), GW_ERR_INVALID);
  assert_pb_dom(&k.base, NULL);
  ts.nanos = 0;
  k.t_duration = &du;
  du.seconds = 1;
  du.nanos = -1;
  assert_int_equal(gw_pb_to_json(&k.base, NULL, &b), GW_ERR_INVALID);
  assert_pb_dom(&k.base, NULL);
  du.nanos = 1;
  assert_int_equal(gw_pb_to_json(&k.base, NULL, &b), GW_OK);
  assert_pb_dom(&k.base, NULL);
  assert_string_equal(b.data,
                      "{\"t_time\":\"1970-01-01T00:00:00Z\",\"t_duration\":\"1.000000001s\"}");
  gw_buf_release(&b);
}

/* Strings from the wire need not be UTF-8; the output stays valid JSON. */
static void test_invalid_utf8(void **state) {
  static const struct {
    const char *in, *out;
  } v[] = {
      {"a\xff\"b\x01", "{\"name\":\"a\\ufffd\\\"b\\u0001\"}"},
      {"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
       "{\"name\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}"},
      {"\xc0\xaf", "{\"name\":\"\\ufffd\\ufffd\"}"},            /* overlong */
      {"\xed\xa0\x80", "{\"name\":\"\\ufffd\\ufffd\\ufffd\"}"}, /* surrogate */
      {"x\xe2\x82", "{\"name\":\"x\\ufffd\\ufffd\"}"},          /* cut short */
  };
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    Codectest__Inner in = CODECTEST__INNER__INIT;
    in.name = (char *)v[i].in;
    gw_buf b;
    gw_buf_init(&b, 256);
    assert_int_equal(gw_pb_to_json(&in.base, NULL, &b), GW_OK);
    assert_string_equal(b.data, v[i].out);
    json_t *j = json_loads(b.data, 0, NULL);
    assert_non_null(j);
    json_decref(j);
    assert_pb_dom(&in.base, NULL);
    gw_buf_release(&b);
  }
}

/* Pieces of the strings of test_print_string_random: text, what must be
 * escaped, UTF-8 of each length, and bytes that are not UTF-8 (a lone lead
 * or continuation byte, overlong forms, a surrogate, past U+10FFFF). */
static const char *const string_pieces[] = {"a",
                                            "The quick brown fox ",
                                            "0123456789abcdef0123456789",
                                            "\"",
                                            "\\",
                                            "\n",
                                            "\r",
                                            "\t",
                                            "\x01",
                                            "\x1f",
                                            "\x7f",
                                            "\xc3\xa9",
                                            "\xe4\xbd\xa0\xe5\xa5\xbd",
                                            "\xe2\x82\xac",
                                            "\xf0\x9f\x98\x80",
                                            "\xef\xbf\xbf",
                                            "\xf4\x8f\xbf\xbf",
                                            "\xff",
                                            "\x80",
                                            "\xc3",
                                            "\xe4\xbd",
                                            "\xc0\xaf",
                                            "\xe0\x80\xaf",
                                            "\xed\xa0\x80",
                                            "\xf4\x90\x80\x80",
                                            "\xf5\x80\x80\x80"};

/* The test's own writer of |s| as a JSON string, one byte or character at a
 * time: the code point of each UTF-8 sequence worked out and judged. */
static void reference_json_string(gw_buf *out, const char *str) {
  const unsigned char *s = (const unsigned char *)str;
  size_t n = strlen(str);
  assert_int_equal(gw_buf_appendc(out, '"'), GW_OK);
  for (size_t i = 0; i < n;) {
    unsigned char c = s[i];
    if (c == '"' || c == '\\') {
      assert_int_equal(gw_buf_printf(out, "\\%c", c), GW_OK);
    } else if (c == '\n' || c == '\r' || c == '\t') {
      assert_int_equal(gw_buf_appends(out, c == '\n' ? "\\n" : c == '\r' ? "\\r" : "\\t"), GW_OK);
    } else if (c < 0x20) {
      assert_int_equal(gw_buf_printf(out, "\\u%04x", c), GW_OK);
    } else if (c < 0x80) {
      assert_int_equal(gw_buf_appendc(out, (char)c), GW_OK);
    } else {
      size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
      uint32_t cp = c & (0x7f >> len);
      int ok = len > 0 && i + len <= n;
      for (size_t k = 1; ok && k < len; k++) {
        ok = (s[i + k] & 0xc0) == 0x80;
        cp = cp << 6 | (s[i + k] & 0x3f);
      }
      static const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = ok && cp >= least[len] && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
      if (ok) {
        assert_int_equal(gw_buf_append(out, s + i, len), GW_OK);
        i += len;
        continue;
      }
      assert_int_equal(gw_buf_appends(out, "\\ufffd"), GW_OK);
    }
    i++;
  }
  assert_int_equal(gw_buf_appendc(out, '"'), GW_OK);
}

/* Strings made of random pieces (escapes dense or sparse, runs of Chinese
 * text, bytes that are not UTF-8; up to ~2 KB, so that an escape-heavy one
 * outgrows the room first made) are written as the reference writes them,
 * into a buffer capped at exactly the output's size, and refused whole by
 * one a byte smaller. Each string sits in a heap block of its size. */
static void test_print_string_random(void **state) {
  (void)state;
  uint32_t seed = 12345;
  gw_buf want, out;
  gw_buf_init(&want, 1 << 20);
  for (int round = 0; round < 3000; round++) {
    gw_buf str;
    gw_buf_init(&str, 1 << 20);
    seed = seed * 1103515245 + 12345;
    int pieces = (int)(seed >> 16) % (round % 10 == 0 ? 400 : 40), bias = (int)(seed >> 8) % 4;
    for (int i = 0; i < pieces; i++) {
      seed = seed * 1103515245 + 12345;
      size_t k = (seed >> 16) % (sizeof string_pieces / sizeof string_pieces[0]);
      if (bias == 1 && (seed & 1)) /* mostly escapes */
        k = 3 + (seed >> 8) % 5;
      else if (bias == 2 && (seed & 1)) /* mostly Chinese text */
        k = 12;
      assert_int_equal(gw_buf_appends(&str, string_pieces[k]), GW_OK);
    }
    char *text = malloc(str.len + 1);
    memcpy(text, str.data ? str.data : "", str.len + 1);
    Codectest__Inner m = CODECTEST__INNER__INIT;
    m.name = text;
    gw_buf_reset(&want);
    if (str.len) {
      assert_int_equal(gw_buf_appends(&want, "{\"name\":"), GW_OK);
      reference_json_string(&want, text);
      assert_int_equal(gw_buf_appendc(&want, '}'), GW_OK);
    } else {
      assert_int_equal(gw_buf_appends(&want, "{}"), GW_OK);
    }
    for (size_t cap = want.len - 1; cap <= want.len; cap++) {
      gw_buf_init(&out, cap);
      int rc = gw_pb_to_json(&m.base, NULL, &out);
      if (cap < want.len) {
        assert_int_equal(rc, GW_ERR_TOOBIG);
        assert_int_equal(out.len, 0);
      } else {
        assert_int_equal(rc, GW_OK);
        if (strcmp(out.data, want.data) != 0)
          fail_msg("round %d: %s, want %s", round, out.data, want.data);
      }
      gw_buf_release(&out);
    }
    assert_pb_dom(&m.base, NULL);
    free(text);
    gw_buf_release(&str);
  }
  gw_buf_release(&want);
}

/* The text of utf8_cases.h with each of its bytes in turn replaced by each
 * of the breakers, as a string from the wire: written as the reference
 * writer writes it (what is not UTF-8 as U+FFFD, character by character). */
static void test_print_utf8_every_position(void **state) {
  (void)state;
  size_t n = sizeof utf8_text - 1;
  gw_buf want, out;
  gw_buf_init(&want, 1 << 20);
  gw_buf_init(&out, 1 << 20);
  for (size_t at = 0; at <= n; at++)
    for (size_t k = 0; k < sizeof utf8_breakers; k++) {
      if (at == n && k > 0)
        break; /* at == n: the text as it is, once */
      char *text = malloc(n + 1);
      memcpy(text, utf8_text, n + 1);
      if (at < n)
        text[at] = (char)utf8_breakers[k];
      Codectest__Inner m = CODECTEST__INNER__INIT;
      m.name = text;
      gw_buf_reset(&want);
      assert_int_equal(gw_buf_appends(&want, "{\"name\":"), GW_OK);
      reference_json_string(&want, text);
      assert_int_equal(gw_buf_appendc(&want, '}'), GW_OK);
      gw_buf_reset(&out);
      assert_int_equal(gw_pb_to_json(&m.base, NULL, &out), GW_OK);
      if (strcmp(out.data, want.data) != 0)
        fail_msg("byte %zu set to %02x: %s, want %s", at, utf8_breakers[k], out.data, want.data);
      assert_pb_dom(&m.base, NULL);
      free(text);
    }
  gw_buf_release(&want);
  gw_buf_release(&out);
}

/* ------------------------------------------------------------ pb -> DOM */

/* gw_pb_to_jval against the text read back, where a message from the gRPC
 * wire holds what JSON cannot say: a map or Struct key twice, an unknown
 * member named like a field, numbers JSON has no form for. */
static void test_pb_dom(void **state) {
  (void)state;
  gw_arena *a = gw_arena_new(0, 0);
  const gw_jval *dom;
  const char *why;
  size_t json_len;

  /* numbers and the rest of the scalars, both 64-bit forms */
  Codectest__AllKinds k = CODECTEST__ALL_KINDS__INIT;
  float floats[] = {1.5f, -0.0f, 0.0f / 0.0f, 1.0f / 0.0f, -1.0f / 0.0f, 3e38f, 1e-45f};
  double doubles[] = {-0.0, 1e300, -1.0 / 0.0, 0.1, 1, -2};
  int64_t i64s[] = {INT64_MIN, -1, 0, INT64_MAX};
  uint8_t raw[] = {0, 1, 2, 0xff, 'x'};
  k.f_double = -0.0;
  k.f_float = 0.0f / 0.0f;
  k.f_int64 = INT64_MIN;
  k.f_uint64 = UINT64_MAX;
  k.f_enum = 7; /* no name: a number */
  k.f_bytes = (ProtobufCBinaryData){sizeof raw, raw};
  k.n_r_float = sizeof floats / sizeof floats[0];
  k.r_float = floats;
  k.n_r_double = sizeof doubles / sizeof doubles[0];
  k.r_double = doubles;
  k.n_r_int64 = sizeof i64s / sizeof i64s[0];
  k.r_int64 = i64s;
  k.f_string = "caf\xc3\xa9 \"q\" \n";
  Google__Protobuf__Int64Value w64 = GOOGLE__PROTOBUF__INT64_VALUE__INIT;
  w64.value = -42;
  k.w_int64 = &w64;
  for (size_t o = 0; o < sizeof opt_sets / sizeof opt_sets[0]; o++)
    assert_pb_dom(&k.base, &opt_sets[o]);
  /* a string that is UTF-8 is the message's own, not a copy */
  assert_int_equal(gw_pb_to_jval(&k.base, NULL, a, &dom, &json_len, &why), GW_OK);
  const gw_jval *fs = gw_json_lite_get(dom, "f_string", 8);
  assert_non_null(fs);
  assert_ptr_equal(fs->u.str, k.f_string);
  assert_true(json_len > 100);

  /* a map key twice: the text has it twice, which the parser refuses */
  Codectest__AllKinds__MStrIntEntry e1 = CODECTEST__ALL_KINDS__MSTR_INT_ENTRY__INIT,
                                    e2 = CODECTEST__ALL_KINDS__MSTR_INT_ENTRY__INIT;
  Codectest__AllKinds__MStrIntEntry *entries[] = {&e1, &e2};
  Codectest__AllKinds m = CODECTEST__ALL_KINDS__INIT;
  e1.key = "a";
  e2.key = "b";
  m.n_m_str_int = 2;
  m.m_str_int = entries;
  assert_pb_dom(&m.base, NULL);
  e2.key = "a";
  assert_pb_dom(&m.base, NULL);
  assert_int_equal(gw_pb_to_jval(&m.base, NULL, a, &dom, NULL, &why), GW_ERR_INVALID);
  assert_string_equal(why, "duplicate object key");
  /* the same for an integer key, and for a key that is not UTF-8 */
  Codectest__AllKinds__MIntStrEntry i1 = CODECTEST__ALL_KINDS__MINT_STR_ENTRY__INIT,
                                    i2 = CODECTEST__ALL_KINDS__MINT_STR_ENTRY__INIT;
  Codectest__AllKinds__MIntStrEntry *ientries[] = {&i1, &i2};
  m = (Codectest__AllKinds)CODECTEST__ALL_KINDS__INIT;
  i1.key = -7;
  i2.key = -7;
  i1.value = "\xff";
  m.n_m_int_str = 2;
  m.m_int_str = ientries;
  assert_pb_dom(&m.base, NULL);
  i2.key = 8;
  assert_pb_dom(&m.base, NULL);
  m = (Codectest__AllKinds)CODECTEST__ALL_KINDS__INIT;
  e1.key = "x\xfe";
  e2.key = "x\xff"; /* both U+FFFD: one key */
  m.n_m_str_int = 2;
  m.m_str_int = entries;
  assert_pb_dom(&m.base, NULL);
  assert_int_equal(gw_pb_to_jval(&m.base, NULL, a, &dom, NULL, &why), GW_ERR_INVALID);

  /* Struct members: twice, and (the unknown-member slot) named like a field */
  Google__Protobuf__Value one = GOOGLE__PROTOBUF__VALUE__INIT;
  one.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
  one.number_value = 1;
  Google__Protobuf__Struct__FieldsEntry s1 = GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT,
                                        s2 = GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT,
                                        s3 = GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT;
  Google__Protobuf__Struct__FieldsEntry *sentries[] = {&s1, &s2, &s3};
  Google__Protobuf__Struct st = GOOGLE__PROTOBUF__STRUCT__INIT;
  s1.key = "f_int32";
  s1.value = &one;
  s2.key = "fBool"; /* a field's JSON name */
  s3.key = "other";
  s3.value = &one;
  st.n_fields = 3;
  st.fields = sentries;
  m = (Codectest__AllKinds)CODECTEST__ALL_KINDS__INIT;
  m.extra_fields = &st;
  assert_pb_dom(&m.base, NULL); /* f_int32 not set: the unknown one shown */
  m.f_int32 = 5;
  m.f_bool = 1;
  assert_pb_dom(&m.base, NULL); /* set: the modeled one wins */
  assert_int_equal(gw_pb_to_jval(&m.base, NULL, a, &dom, NULL, &why), GW_OK);
  assert_int_equal(dom->len, 3); /* f_int32, f_bool, other */
  s2.key = "other";
  assert_pb_dom(&m.base, NULL);
  assert_int_equal(gw_pb_to_jval(&m.base, NULL, a, &dom, NULL, &why), GW_ERR_INVALID);
  m.extra_fields = NULL;
  m.s_struct = &st; /* a Struct of its own */
  assert_pb_dom(&m.base, NULL);
  s2.key = NULL; /* skipped */
  assert_pb_dom(&m.base, NULL);
  m.extra_fields = &st;
  assert_pb_dom(&m.base, NULL);

  /* the OpenAI request, as a translating provider reads it */
  ProtobufCMessage *chat = NULL;
  gw_json_error err;
  assert_int_equal(
      gw_json_to_pb(CHAT, chat_body, strlen(chat_body), a, &opt_sets[O_OPENAI], &chat, &err),
      GW_OK);
  static const gw_json_opts upstream = {.int64_as_number = 1, .bare_unions = 1};
  assert_pb_dom(chat, &upstream);
  assert_pb_dom(chat, &opt_sets[O_OPENAI]);
  assert_pb_dom(chat, NULL);
  /* an arena that runs out at every step: GW_ERR_NOMEM, nothing leaked */
  int ok = 0;
  for (size_t cap = 16; !ok; cap += 16) {
    long live = gw_alloc_live();
    gw_arena *small = gw_arena_new(64, cap);
    assert_non_null(small);
    int rc = gw_pb_to_jval(chat, &upstream, small, &dom, NULL, &why);
    if (rc == GW_OK)
      ok = 1;
    else {
      assert_int_equal(rc, GW_ERR_NOMEM);
      assert_string_equal(why, "out of memory");
    }
    gw_arena_free(small);
    assert_int_equal(gw_alloc_live(), live);
  }
  gw_arena_free(a);
}

/* drop_unknown (upstream answers): a member no message models and none can
 * keep is skipped, on the direct path and the DOM path alike; one a slot can
 * keep is kept; JSON errors and modeled members of the wrong type still
 * fail. */
static void test_drop_unknown(void **state) {
  (void)state;
  gw_arena *a = gw_arena_new(0, 0);
  ProtobufCMessage *m = NULL;
  gw_json_error err;
  static const char strict[] = "{\"name\":\"a\",\"bogus\":{\"x\":[1,{\"y\":null}]},"
                               "\"inner\":{\"name\":\"i\",\"extra\":true}}";
  assert_int_equal(gw_json_to_pb(STRICT, strict, strlen(strict), a, NULL, &m, &err),
                   GW_ERR_INVALID);
  assert_string_equal(err.message, "unknown field");
  for (int dom = 0; dom < 2; dom++) {
    gw_json_opts o = {.drop_unknown = 1, .dom_only = dom};
    m = NULL;
    assert_int_equal(gw_json_to_pb(STRICT, strict, strlen(strict), a, &o, &m, &err), GW_OK);
    Codectest__Strict *st = (Codectest__Strict *)m;
    assert_string_equal(st->name, "a");
    assert_non_null(st->inner);
    assert_string_equal(st->inner->name, "i");
    /* still refused: a repeated key, a modeled member of the wrong type */
    static const char dup[] = "{\"bogus\":1,\"bogus\":2}", wrong[] = "{\"name\":5,\"bogus\":1}";
    assert_int_equal(gw_json_to_pb(STRICT, dup, strlen(dup), a, &o, &m, &err), GW_ERR_INVALID);
    assert_int_equal(gw_json_to_pb(STRICT, wrong, strlen(wrong), a, &o, &m, &err), GW_ERR_INVALID);
  }

  /* a vLLM answer: stop_reason kept in the choice, prompt_logprobs at the top,
   * a member of the logprobs (no slot there) dropped, the null
   * prompt_tokens_details taken as absent; printed back so */
  static const char vllm[] =
      "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"m\","
      "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"hi\","
      "\"reasoning_content\":null},\"logprobs\":{\"content\":[],\"vendor\":1},"
      "\"finish_reason\":\"stop\",\"stop_reason\":null}],\"usage\":{\"prompt_tokens\":1,"
      "\"total_tokens\":2,\"completion_tokens\":1,\"prompt_tokens_details\":null,"
      "\"prompt_cache_hit_tokens\":0},\"prompt_logprobs\":null}";
  const ProtobufCMessageDescriptor *resp = &aigateway__v1__chat_completion_response__descriptor;
  static const gw_json_opts answers = {.keep_unknown = 1, .bare_unions = 1};
  assert_int_equal(gw_json_to_pb(resp, vllm, strlen(vllm), a, &answers, &m, &err), GW_ERR_INVALID);
  assert_string_equal(err.param, "choices[0].logprobs.vendor");
  gw_json_opts drop = answers;
  drop.drop_unknown = 1;
  assert_int_equal(gw_json_to_pb(resp, vllm, strlen(vllm), a, &drop, &m, &err), GW_OK);
  gw_buf b;
  gw_buf_init(&b, 1 << 16);
  assert_int_equal(gw_pb_to_json(m, &drop, &b), GW_OK);
  assert_json_eq(b.data,
                 "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":\"1\","
                 "\"model\":\"m\",\"choices\":[{\"message\":{\"role\":\"assistant\","
                 "\"content\":\"hi\",\"reasoning_content\":null},\"logprobs\":{},"
                 "\"finish_reason\":\"stop\",\"stop_reason\":null}],\"usage\":{\"prompt_tokens\":"
                 "1,\"completion_tokens\":1,\"total_tokens\":2,\"prompt_cache_hit_tokens\":0},"
                 "\"prompt_logprobs\":null}",
                 "a vLLM answer");
  gw_buf_release(&b);

  /* a DeepSeek stream delta: reasoning_content kept in the delta */
  static const char chunk[] =
      "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","
      "\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"Let me think\"},"
      "\"finish_reason\":null}]}";
  assert_int_equal(gw_json_to_pb(&aigateway__v1__chat_completion_chunk__descriptor, chunk,
                                 strlen(chunk), a, &drop, &m, &err),
                   GW_OK);
  Aigateway__V1__ChatCompletionChunk *ck = (Aigateway__V1__ChatCompletionChunk *)m;
  assert_int_equal(ck->n_choices, 1);
  assert_non_null(ck->choices[0]->delta->extra_fields);
  assert_string_equal(ck->choices[0]->delta->extra_fields->fields[0]->key, "reasoning_content");

  /* skip_unknown: Azure's filter annotations read and left out, at the top
   * and in a choice, on both paths; other unknown members kept; the
   * skipped member's syntax and a repeat of it still refused */
  static const char *const filters[] = {"prompt_filter_results", "content_filter_results", NULL};
  static const char azure[] =
      "{\"id\":\"a\",\"prompt_filter_results\":[{\"prompt_index\":0,"
      "\"content_filter_results\":{\"hate\":{\"filtered\":false}}}],\"choices\":[{\"index\":0,"
      "\"message\":{\"role\":\"assistant\",\"content\":\"x\"},\"content_filter_results\":{},"
      "\"stop_reason\":null}],\"vendor\":1}";
  for (int dom = 0; dom < 2; dom++) {
    gw_json_opts o = drop;
    o.skip_unknown = filters;
    o.dom_only = dom;
    assert_int_equal(gw_json_to_pb(resp, azure, strlen(azure), a, &o, &m, &err), GW_OK);
    gw_buf_init(&b, 1 << 16);
    assert_int_equal(gw_pb_to_json(m, &o, &b), GW_OK);
    assert_json_eq(b.data,
                   "{\"id\":\"a\",\"choices\":[{\"message\":{\"role\":\"assistant\","
                   "\"content\":\"x\"},\"stop_reason\":null}],\"vendor\":1}",
                   dom ? "skip_unknown, DOM path" : "skip_unknown, direct path");
    gw_buf_release(&b);
    static const char twice[] = "{\"id\":\"a\",\"prompt_filter_results\":[],"
                                "\"prompt_filter_results\":[]}",
                      broken[] = "{\"id\":\"a\",\"prompt_filter_results\":[}";
    assert_int_equal(gw_json_to_pb(resp, twice, strlen(twice), a, &o, &m, &err), GW_ERR_INVALID);
    assert_int_equal(gw_json_to_pb(resp, broken, strlen(broken), a, &o, &m, &err), GW_ERR_INVALID);
  }
  /* what the direct path's skipper leaves to the DOM path, or refuses: both
   * paths agree (a repeated key deep inside, more keys than it tracks,
   * escapes and UTF-8, bad syntax and bytes, deep nesting) */
  gw_buf big, deep;
  gw_buf_init(&big, 1 << 16);
  gw_buf_init(&deep, 1 << 16);
  assert_int_equal(gw_buf_appends(&big, "{\"prompt_filter_results\":{"), GW_OK);
  for (int i = 0; i < 40; i++)
    assert_int_equal(gw_buf_printf(&big, "%s\"k%d\":[%d,\"v\\n\xc3\xa9\"]", i ? "," : "", i, i),
                     GW_OK);
  assert_int_equal(gw_buf_appends(&big, "},\"id\":\"x\"}"), GW_OK);
  assert_int_equal(gw_buf_appends(&deep, "{\"prompt_filter_results\":"), GW_OK);
  for (int i = 0; i < 70; i++)
    assert_int_equal(gw_buf_appends(&deep, "[{\"a\":"), GW_OK);
  assert_int_equal(gw_buf_appends(&deep, "1"), GW_OK);
  for (int i = 0; i < 70; i++)
    assert_int_equal(gw_buf_appends(&deep, "}]"), GW_OK);
  assert_int_equal(gw_buf_appends(&deep, "}"), GW_OK);
  const char *docs[] = {
      "{\"prompt_filter_results\":{\"a\":{\"b\":1,\"b\":2}}}",
      "{\"prompt_filter_results\":[{\"x\":\"\\u00e9\\\"\",\"y\":[true,false,null,-1.5e3]}]}",
      "{\"prompt_filter_results\":[1,]}",
      "{\"prompt_filter_results\":\"\xff\"}",
      big.data,
      deep.data,
  };
  for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
    gw_json_opts o = drop;
    o.skip_unknown = filters;
    ProtobufCMessage *m1 = NULL, *m2 = NULL;
    int r1 = gw_json_to_pb(resp, docs[i], strlen(docs[i]), a, &o, &m1, &err);
    o.dom_only = 1;
    int r2 = gw_json_to_pb(resp, docs[i], strlen(docs[i]), a, &o, &m2, &err);
    if (r1 != r2)
      fail_msg("document %zu: direct %d, DOM %d", i, r1, r2);
    if (i == 0 || i == 2 || i == 3)
      assert_int_equal(r1, GW_ERR_INVALID);
    if (i == 1 || i == 4)
      assert_int_equal(r1, GW_OK);
  }
  gw_buf_release(&big);
  gw_buf_release(&deep);
  gw_arena_free(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_name),
      cmocka_unit_test(test_round_trips),
      cmocka_unit_test(test_values),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_deep_nesting),
      cmocka_unit_test(test_chat_request),
      cmocka_unit_test(test_chat_response),
      cmocka_unit_test(test_floats_base64),
      cmocka_unit_test(test_bytes_base64_lengths),
      cmocka_unit_test(test_bytes_base64_every_digit),
      cmocka_unit_test(test_direct_path),
      cmocka_unit_test(test_member_order_guess),
      cmocka_unit_test(test_direct_integers_and_strings),
      cmocka_unit_test(test_print_string_alignments),
      cmocka_unit_test(test_print_long_string),
      cmocka_unit_test(test_field_cache),
      cmocka_unit_test(test_direct_wrappers_and_unions),
      cmocka_unit_test(test_failmalloc),
      cmocka_unit_test(test_arena_cap),
      cmocka_unit_test(test_buf_cap),
      cmocka_unit_test(test_unprintable),
      cmocka_unit_test(test_invalid_utf8),
      cmocka_unit_test(test_pb_dom),
      cmocka_unit_test(test_drop_unknown),
      cmocka_unit_test(test_print_string_random),
      cmocka_unit_test(test_print_utf8_every_position),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
