/* The providers' JSON helpers (pipeline/json_text.h) and the buffer's JSON
 * string writer: what they write reads back (jansson) as what went in. */
#include "support.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/status.h"
#include "pipeline/json_text.h"
#include "transcoder/json_lite.h"

static const gw_jval *L(gw_arena *a, const char *s) {
  const gw_jval *v = NULL;
  gw_json_lite_error e;
  if (gw_json_lite_parse(s, strlen(s), a, 0, 0, &v, &e) != GW_OK)
    fail_msg("bad test JSON: %s: %s", e.text, s);
  return v;
}

/* Compact text of a DOM: the same value as its source, numbers as written. */
static void test_put_value(void **state) {
  (void)state;
  static const char *const docs[] = {
      "{\"a\":[1,-2.50,3e-7,true,false,null,\"x\\\"y\\\\z\\n\\u0001\\u00e9\"],\"b\":{},\"c\":[]}",
      "\"\\ud83d\\ude00 and \\/slash\"",
      "[[[[{\"deep\":[{\"k\":\"v\"}]}]]]]",
      "12345678901234567890123",
  };
  gw_arena *a = gw_arena_new(0, 0);
  for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
    gw_buf b;
    gw_buf_init(&b, 1 << 20);
    assert_int_equal(gw_jt_put_value(&b, L(a, docs[i])), GW_OK);
    json_t *want = json_loads(docs[i], JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, NULL);
    json_t *got = json_loads(b.data, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, NULL);
    if (!got || !json_equal(got, want))
      fail_msg("case %zu: %s", i, b.data);
    json_decref(want);
    json_decref(got);
    gw_buf_release(&b);
  }
  /* Compact, and numbers keep their text. */
  gw_buf b;
  gw_buf_init(&b, 1 << 20);
  assert_int_equal(gw_jt_put_value(&b, L(a, "[ 1.50 , -0 , 2E+3 ]")), GW_OK);
  assert_string_equal(b.data, "[1.50,-0,2E+3]");
  gw_buf_release(&b);
  gw_arena_free(a);
}

/* Every control byte escaped, quotes and backslashes too, the rest copied. */
static void test_json_chars(void **state) {
  (void)state;
  char in[64];
  for (int i = 0; i < 32; i++)
    in[i] = (char)i;
  memcpy(in + 32, "\"\\/ abc\xc3\xa9", 10);
  gw_buf b;
  gw_buf_init(&b, 1 << 20);
  assert_int_equal(gw_buf_append_json_string(&b, in, 42), GW_OK);
  json_t *got = json_loads(b.data, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
  assert_non_null(got);
  assert_int_equal(json_string_length(got), 42);
  assert_memory_equal(json_string_value(got), in, 42);
  assert_non_null(strstr(b.data, "\\n\\u000b\\u000c\\r"));
  json_decref(got);
  /* Long strings, a byte to escape at every position across the 16-byte
   * blocks, UTF-8 (bytes from 0x80) copied as it is. */
  static const char specials[] = {'"', '\\', '\n', 0x1f, 0x01};
  for (size_t k = 0; k < sizeof specials; k++)
    for (size_t at = 0; at < 48; at++) {
      char t[49];
      for (size_t i = 0; i < 48; i++)
        t[i] = i % 7 == 3 ? (char)0xc3 : i % 7 == 4 ? (char)0xa9 : 'a';
      t[at] = specials[k];
      if (at % 7 == 3 && at + 1 < 48)
        t[at + 1] = 'b'; /* (no half UTF-8 sequence left behind) */
      if (at % 7 == 4)
        t[at - 1] = 'c';
      t[48] = '\0';
      gw_buf_reset(&b);
      assert_int_equal(gw_buf_append_json_string(&b, t, 48), GW_OK);
      json_t *r = json_loads(b.data, JSON_DECODE_ANY, NULL);
      if (!r || json_string_length(r) != 48 || memcmp(json_string_value(r), t, 48) != 0)
        fail_msg("special %zu at %zu: %s", k, at, b.data);
      json_decref(r);
    }
  /* Within a string, several runs: the inside only. */
  gw_buf_reset(&b);
  assert_int_equal(gw_buf_append_json_chars(&b, "a\"b", 3), GW_OK);
  assert_int_equal(gw_buf_append_json_chars(&b, "", 0), GW_OK);
  assert_int_equal(gw_buf_append_json_chars(&b, "\tc", 2), GW_OK);
  assert_string_equal(b.data, "a\\\"b\\tc");
  gw_buf_release(&b);
  /* Past the cap: an error, and the buffer as it was. */
  gw_buf small;
  gw_buf_init(&small, 8);
  assert_int_equal(gw_buf_appends(&small, "ab"), GW_OK);
  assert_int_not_equal(gw_buf_append_json_string(&small, "\"\"\"\"", 4), GW_OK);
  assert_string_equal(small.data, "ab");
  gw_buf_release(&small);
}

/* The escaper the writer must match, one byte at a time. */
static size_t ref_escape(const unsigned char *in, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = in[i];
    if (c == '"' || c == '\\')
      o += (size_t)sprintf(out + o, "\\%c", c);
    else if (c == '\n')
      o += (size_t)sprintf(out + o, "\\n");
    else if (c == '\r')
      o += (size_t)sprintf(out + o, "\\r");
    else if (c == '\t')
      o += (size_t)sprintf(out + o, "\\t");
    else if (c < 0x20)
      o += (size_t)sprintf(out + o, "\\u%04x", c);
    else
      out[o++] = (char)c;
  }
  out[o] = '\0';
  return o;
}

/* Random texts up to 3 KB (the 32-byte scan starts at 128 bytes left): runs
 * of plain bytes, UTF-8 bytes and bytes to escape, anywhere; into heap and
 * arena buffers already holding a prefix, with the cap exactly the output's
 * size (must fit) and one byte less (GW_ERR_TOOBIG, the buffer as it was). */
static void test_json_chars_random(void **state) {
  (void)state;
  static unsigned char in[3072];
  static char want[3072 * 6 + 1];
  uint32_t seed = 7;
  gw_arena *a = gw_arena_new(0, 0);
  for (int round = 0; round < 3000; round++) {
    seed = seed * 1103515245u + 12345u;
    size_t n = (seed >> 8) % (round < 1500 ? 300 : sizeof in);
    unsigned density = 1 + (seed >> 20) % 200; /* one special in |density| bytes */
    for (size_t i = 0; i < n; i++) {
      seed = seed * 1103515245u + 12345u;
      unsigned r = seed >> 8;
      if (r % density == 0)
        in[i] = (unsigned char)("\"\\\n\r\t\x01\x1f\x00\x08"[(r >> 8) % 9]);
      else
        in[i] = (r >> 12) % 5 == 0 ? (unsigned char)(0x80 + (r >> 16) % 0x80)
                                   : (unsigned char)('a' + (r >> 16) % 26);
    }
    size_t wn = ref_escape(in, n, want);
    for (int arena = 0; arena < 2; arena++)
      for (int tight = 0; tight < 2; tight++) {
        if (tight && wn == 0)
          continue; /* (no byte less than nothing) */
        gw_buf b;
        size_t cap = 3 + wn - (size_t)tight;
        gw_buf_init(&b, cap);
        if (arena)
          b.arena = a;
        assert_int_equal(gw_buf_appends(&b, "pre"), GW_OK);
        int rc = gw_buf_append_json_chars(&b, (const char *)in, n);
        if (tight) {
          assert_int_equal(rc, GW_ERR_TOOBIG);
          assert_int_equal(b.len, 3);
          assert_string_equal(b.data, "pre");
        } else {
          if (rc != GW_OK || b.len != 3 + wn || memcmp(b.data + 3, want, wn + 1) != 0)
            fail_msg("round %d (n %zu, arena %d): rc %d, %zu bytes, want %zu", round, n, arena, rc,
                     b.len - 3, wn);
        }
        if (!arena)
          gw_buf_release(&b);
      }
  }
  gw_arena_free(a);
}

static void test_content_text_and_arguments(void **state) {
  (void)state;
  gw_arena *a = gw_arena_new(0, 0);
  static const struct {
    const char *content, *want;
  } texts[] = {
      {"\"a\\\"b\"", "\"a\\\"b\""},
      {"[{\"type\":\"text\",\"text\":\"x\"},{\"type\":\"image_url\"},{\"text\":\"\\ny\"}]",
       "\"x\\ny\""},
      {"null", "\"\""},
      {"{\"text\":\"not a list\"}", "\"\""},
  };
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    gw_buf b;
    gw_buf_init(&b, 1 << 20);
    assert_int_equal(gw_jt_put_content_text(&b, L(a, texts[i].content)), GW_OK);
    assert_string_equal(b.data, texts[i].want);
    gw_buf_release(&b);
  }
  const gw_jval *out;
  assert_int_equal(gw_jt_tool_arguments(L(a, "{\"arguments\":\"{\\\"k\\\":[1]}\"}"), a, &out),
                   GW_OK);
  assert_true(gw_jt_is_object(out));
  assert_int_equal(gw_jt_array_len(GW_JT_GET(out, "k")), 1);
  assert_int_equal(gw_jt_tool_arguments(L(a, "{\"arguments\":\"\"}"), a, &out), GW_OK);
  assert_null(out);
  assert_int_equal(gw_jt_tool_arguments(L(a, "{}"), a, &out), GW_OK);
  assert_null(out);
  assert_int_equal(gw_jt_tool_arguments(NULL, a, &out), GW_OK);
  /* A key given twice: the last value, as jansson reads it. */
  assert_int_equal(
      gw_jt_tool_arguments(L(a, "{\"arguments\":\"{\\\"a\\\":1,\\\"b\\\":[2.50],\\\"a\\\":3}\"}"),
                           a, &out),
      GW_OK);
  assert_int_equal(GW_JT_INT_OF(out, "a"), 3);
  assert_int_equal(out->len, 2);
  static const char *const bad[] = {"{\"arguments\":\"[1]\"}", "{\"arguments\":\"{\"}",
                                    "{\"arguments\":\"{\\\"a\\\":1,\\\"a\\\":}\"}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(gw_jt_tool_arguments(L(a, bad[i]), a, &out), GW_ERR_INVALID);
    assert_null(out);
  }
  /* Readers are NULL-safe and typed. */
  const gw_jval *o = L(a, "{\"n\":5,\"f\":1.5,\"s\":\"5\",\"big\":99999999999999999999}");
  assert_int_equal(GW_JT_INT_OF(o, "n"), 5);
  assert_int_equal(GW_JT_INT_OF(o, "f"), 0);
  assert_int_equal(GW_JT_INT_OF(o, "s"), 0);
  assert_int_equal(GW_JT_INT_OF(o, "big"), 0);
  assert_int_equal(GW_JT_INT_OF(NULL, "n"), 0);
  assert_null(GW_JT_GET(GW_JT_GET(o, "missing"), "x"));
  assert_true(GW_JT_STR_IS(GW_JT_GET(o, "s"), "5"));
  assert_false(GW_JT_STR_IS(GW_JT_GET(o, "n"), "5"));
  gw_arena_free(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_put_value),
      cmocka_unit_test(test_json_chars),
      cmocka_unit_test(test_json_chars_random),
      cmocka_unit_test(test_content_text_and_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
