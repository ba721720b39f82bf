/* Unit tests of the arena-DOM JSON parser (transcoder/json_lite.c): RFC 8259
 * accept/reject vectors (JSONTestSuite-style y_/n_ cases, written here),
 * strings and UTF-8, numbers, duplicate keys, nesting, error positions, and
 * fail-malloc / arena-cap sweeps. */
#include "support.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/status.h"
#include "transcoder/json_lite.h"
#include "utf8_cases.h"

#define S(lit) lit, sizeof(lit) - 1

static int parse(gw_arena *a, const char *s, size_t n, const gw_jval **v, gw_json_lite_error *e) {
  return gw_json_lite_parse(s, n, a, 0, 0, v, e);
}

/* ------------------------------------------------------------ accept / reject */

static const struct {
  const char *in;
  size_t len;
  int ok;
} syntax_cases[] = {
    /* y_: structure */
    {S("[]"), 1},
    {S("{}"), 1},
    {S(" [ ] "), 1},
    {S("\t\r\n[\n1\r,\t2 ]\n"), 1},
    {S("[[],[[]],{}]"), 1},
    {S("{\"a\":{\"b\":[{}]}}"), 1},
    {S("{\"\":0}"), 1},
    {S("{\"a\":1,\"b\":2}"), 1},
    {S("[null,true,false]"), 1},
    /* y_: scalars at the top (RFC 8259 allows any value) */
    {S("1"), 1},
    {S("\"x\""), 1},
    {S("null"), 1},
    {S("true"), 1},
    {S("false"), 1},
    {S(" 0 "), 1},
    {S("-0"), 1},
    /* y_: numbers */
    {S("[0,-1,1.5,1e5,1E+5,1e-5,-0.0e0,123456789012345678901234567890]"), 1},
    {S("[1e400,-1e400,1e-400]"), 1}, /* kept as text; accessors judge range */
    /* y_: strings */
    {S("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]"), 1},
    {S("[\"\\u0041\\u00e9\\u20AC\"]"), 1},
    {S("[\"\\ud83d\\ude00\"]"), 1},
    {S("[\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]"), 1},
    {S("[\"\x7f\"]"), 1},
    {S("[\"\xef\xbf\xbf\"]"), 1},
    {S("[\"\xf4\x8f\xbf\xbf\"]"), 1},
    {S("[\"a/*b*/\"]"), 1},
    /* n_: structure */
    {S(""), 0},
    {S(" "), 0},
    {S("["), 0},
    {S("]"), 0},
    {S("[1"), 0},
    {S("[1,]"), 0},
    {S("[,1]"), 0},
    {S("[1 2]"), 0},
    {S("{"), 0},
    {S("{\"a\"}"), 0},
    {S("{\"a\":}"), 0},
    {S("{\"a\":1,}"), 0},
    {S("{,}"), 0},
    {S("{a:1}"), 0},
    {S("{'a':1}"), 0},
    {S("{1:1}"), 0},
    {S("{\"a\" 1}"), 0},
    {S("[]]"), 0},
    {S("[][]"), 0},
    {S("{}}"), 0},
    {S("1 2"), 0},
    {S("[1]x"), 0},
    {S("\xef\xbb\xbf[]"), 0}, /* BOM */
    {S("[1]\0"), 0},
    {S("[1\0]"), 0},
    {S("/*c*/[]"), 0},
    {S("[]//"), 0},
    /* n_: literals */
    {S("tru"), 0},
    {S("True"), 0},
    {S("nul"), 0},
    {S("[truefalse]"), 0},
    {S("nulll"), 0},
    {S("NaN"), 0},
    {S("Infinity"), 0},
    {S("[-Infinity]"), 0},
    {S("undefined"), 0},
    /* n_: numbers */
    {S("01"), 0},
    {S("-01"), 0},
    {S("1."), 0},
    {S(".5"), 0},
    {S("+1"), 0},
    {S("-"), 0},
    {S("1e"), 0},
    {S("1e+"), 0},
    {S("1.e5"), 0},
    {S("0x10"), 0},
    {S("1.5x"), 0},
    {S("- 1"), 0},
    {S("[1,2,3.]"), 0},
    {S("--1"), 0},
    {S("1E--5"), 0},
    /* n_: strings */
    {S("\""), 0},
    {S("\"abc"), 0},
    {S("'a'"), 0},
    {S("[\"a\nb\"]"), 0},
    {S("[\"\t\"]"), 0},
    {S("[\"\x01\"]"), 0},
    {S("[\"\\x41\"]"), 0},
    {S("[\"\\a\"]"), 0},
    {S("[\"\\u12\"]"), 0},
    {S("[\"\\u12G4\"]"), 0},
    {S("[\"\\\"]"), 0},
    {S("\"\\"), 0},
    {S("[\"\\ud800\"]"), 0},
    {S("[\"\\udc00\"]"), 0},
    {S("[\"\\ud800\\u0041\"]"), 0},
    {S("[\"\\ud800\\ud800\"]"), 0},
    {S("[\"\\ud800x\"]"), 0},
    {S("[\"\\u0000\"]"), 0},
    {S("[\"\\U0041\"]"), 0},
    /* n_: UTF-8 */
    {S("[\"\xff\"]"), 0},
    {S("[\"\x80\"]"), 0},
    {S("[\"\xc0\xaf\"]"), 0},
    {S("[\"\xc1\xbf\"]"), 0},
    {S("[\"\xe0\x80\xaf\"]"), 0},
    {S("[\"\xed\xa0\x80\"]"), 0},
    {S("[\"\xf0\x80\x80\xaf\"]"), 0},
    {S("[\"\xf4\x90\x80\x80\"]"), 0},
    {S("[\"\xf5\x80\x80\x80\"]"), 0},
    {S("[\"\xe2\x82\"]"), 0},
    {S("[\"\xe2\x82"), 0},
    {S("[\"\xc3\"]"), 0},
    {S("[\xc3\xa9]"), 0},
    /* n_: duplicate keys */
    {S("{\"a\":1,\"a\":2}"), 0},
    {S("{\"a\":1,\"\\u0061\":2}"), 0},
    {S("{\"a\":{},\"b\":1,\"a\":[]}"), 0},
    {S("{\"a\":{\"x\":1},\"b\":{\"x\":1}}"), 1}, /* same key in different objects */
    {S("{\"a\":1,\"A\":2,\"a \":3}"), 1},
};

static void test_syntax(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof syntax_cases / sizeof syntax_cases[0]; i++) {
    gw_arena *a = gw_arena_new(0, 0);
    const gw_jval *v = NULL;
    gw_json_lite_error e;
    int rc = parse(a, syntax_cases[i].in, syntax_cases[i].len, &v, &e);
    if ((rc == GW_OK) != syntax_cases[i].ok)
      fail_msg("case %zu '%.*s': rc %d (%s)", i, (int)syntax_cases[i].len, syntax_cases[i].in, rc,
               rc ? e.text : "accepted");
    if (rc != GW_OK) {
      assert_int_equal(rc, GW_ERR_INVALID);
      assert_null(v);
      assert_true(e.line >= 1 && e.offset <= syntax_cases[i].len && e.text[0]);
    }
    /* jansson (the reader this parser replaced) agrees, number range aside. */
    json_error_t je;
    json_t *j = json_loadb(syntax_cases[i].in, syntax_cases[i].len,
                           JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (j && rc != GW_OK && strcmp(syntax_cases[i].in, "[1") != 0 &&
        memcmp(syntax_cases[i].in, "[1\0]", 4) != 0) /* jansson's NUL-after-number quirk */
      fail_msg("case %zu: jansson accepts what json_lite refuses", i);
    if (!j && rc == GW_OK && !strstr(je.text, "too big") && !strstr(je.text, "overflow"))
      fail_msg("case %zu: jansson refuses (%s) what json_lite accepts", i, je.text);
    json_decref(j);
    gw_arena_free(a);
  }
}

/* ------------------------------------------------------------ values */

static void test_dom(void **state) {
  (void)state;
  gw_arena *a = gw_arena_new(0, 0);
  const gw_jval *v;
  gw_json_lite_error e;
  static const char doc[] =
      "{\"s\":\"a\\u00e9\\ud83d\\ude00\\n\",\"n\":-12,\"r\":2.5,\"t\":true,\"f\":false,"
      "\"z\":null,\"arr\":[1,[2],{}],\"o\":{\"k\":\"v\"},\"e\":\"\"}";
  assert_int_equal(parse(a, S(doc), &v, &e), GW_OK);
  assert_int_equal(v->type, GW_JVAL_OBJECT);
  assert_int_equal(v->len, 9);
  /* document order */
  static const char *keys[] = {"s", "n", "r", "t", "f", "z", "arr", "o", "e"};
  for (size_t i = 0; i < 9; i++) {
    assert_string_equal(v->u.members[i].key, keys[i]);
    assert_int_equal(v->u.members[i].key_len, strlen(keys[i]));
  }
  const gw_jval *s = gw_json_lite_get(v, S("s"));
  assert_int_equal(s->type, GW_JVAL_STRING);
  assert_int_equal(s->len, 1 + 2 + 4 + 1);
  assert_memory_equal(s->u.str, "a\xc3\xa9\xf0\x9f\x98\x80\n", 9); /* NUL included */
  const gw_jval *n = gw_json_lite_get(v, S("n"));
  assert_int_equal(n->type, GW_JVAL_NUMBER);
  assert_int_equal(n->flags, GW_JVAL_NUM_INT | GW_JVAL_NUM_NEG); /* integers carry no float */
  assert_int_equal(n->len, 3);
  assert_memory_equal(n->u.str, "-12", 3);
  assert_int_equal(gw_json_lite_get(v, S("r"))->flags & ~GW_JVAL_NUM_F32, 0);
  assert_int_equal(gw_json_lite_get(v, S("t"))->type, GW_JVAL_TRUE);
  assert_int_equal(gw_json_lite_get(v, S("f"))->type, GW_JVAL_FALSE);
  assert_int_equal(gw_json_lite_get(v, S("z"))->type, GW_JVAL_NULL);
  const gw_jval *arr = gw_json_lite_get(v, S("arr"));
  assert_int_equal(arr->type, GW_JVAL_ARRAY);
  assert_int_equal(arr->len, 3);
  assert_int_equal(arr->u.elems[1].type, GW_JVAL_ARRAY);
  assert_int_equal(arr->u.elems[1].u.elems[0].type, GW_JVAL_NUMBER);
  assert_int_equal(arr->u.elems[2].len, 0);
  assert_string_equal(gw_json_lite_get(gw_json_lite_get(v, S("o")), S("k"))->u.str, "v");
  assert_int_equal(gw_json_lite_get(v, S("e"))->len, 0);
  assert_null(gw_json_lite_get(v, S("missing")));
  assert_null(gw_json_lite_get(arr, S("s")));
  /* an empty object has no members array: the look-up must not step a NULL
   * pointer (clang's UBSan stopped fuzz_providers on that at 61a3b08) */
  assert_null(arr->u.elems[2].u.members);
  assert_null(gw_json_lite_get(&arr->u.elems[2], S("s")));
  assert_null(gw_json_lite_get(&arr->u.elems[2], "", 0));

  /* \u0000 only with the flag, and never in a key. */
  assert_int_equal(gw_json_lite_parse(S("\"a\\u0000b\""), a, 0, GW_JSON_LITE_ALLOW_NUL, &v, &e),
                   GW_OK);
  assert_int_equal(v->len, 3);
  assert_memory_equal(v->u.str, "a\0b", 4);
  assert_int_equal(gw_json_lite_parse(S("{\"\\u0000\":1}"), a, 0, GW_JSON_LITE_ALLOW_NUL, &v, &e),
                   GW_ERR_INVALID);
  gw_arena_free(a);
}

/* Long strings cross the 8-byte fast scan at every alignment. */
static void test_long_strings(void **state) {
  (void)state;
  gw_arena *a = gw_arena_new(0, 0);
  char buf[512], want[512];
  /* past 128 bytes the scan may take 32 bytes a step (AVX2): every position
   * around its blocks too */
  for (size_t len = 0; len < 200; len = len == 39 ? 120 : len + 1)
    for (size_t pos = 0; pos <= len; pos++)
      for (int kind = 0; kind < 4; kind++) {
        static const char *ins[] = {"\\n", "\xc3\xa9", "\x01", "\xff"};
        static const char *out[] = {"\n", "\xc3\xa9", NULL, NULL};
        size_t k = 0, w = 0;
        buf[k++] = '"';
        for (size_t i = 0; i < len; i++) {
          if (i == pos) {
            memcpy(buf + k, ins[kind], strlen(ins[kind]));
            k += strlen(ins[kind]);
            if (out[kind]) {
              memcpy(want + w, out[kind], strlen(out[kind]));
              w += strlen(out[kind]);
            }
          }
          buf[k++] = (char)('a' + i % 26);
          want[w++] = (char)('a' + i % 26);
        }
        buf[k++] = '"';
        const gw_jval *v;
        gw_json_lite_error e;
        int rc = parse(a, buf, k, &v, &e);
        if (pos == len) { /* nothing inserted */
          assert_int_equal(rc, GW_OK);
          assert_int_equal(v->len, len);
          continue;
        }
        if (!out[kind]) {
          assert_int_equal(rc, GW_ERR_INVALID);
          assert_int_equal(e.offset, 1 + pos);
          continue;
        }
        assert_int_equal(rc, GW_OK);
        assert_int_equal(v->len, w);
        assert_memory_equal(v->u.str, want, w);
        assert_int_equal(v->u.str[w], '\0');
      }
  gw_arena_free(a);
}

/* Pieces of the string literals of test_strings_vs_jansson: text, every
 * escape, \uXXXX runs (as Python's json.dumps writes Chinese text) with
 * surrogate pairs whole, halved or swapped, bad hex digits (also a quote or
 * a backslash where a digit should be), raw UTF-8, raw bytes that are not
 * UTF-8, a raw control byte and \u0000. */
static const char *const literal_pieces[] = {"a",
                                             "Hello, world ",
                                             "0123456789abcdef0123456789",
                                             "\\n",
                                             "\\\"",
                                             "\\\\",
                                             "\\/",
                                             "\\b",
                                             "\\f",
                                             "\\r",
                                             "\\t",
                                             "\\u4f60\\u597d",
                                             "\\u00e9",
                                             "\\u0041",
                                             "\\u20AC",
                                             "\\uD83D\\uDE00",
                                             "\\ud83d",
                                             "\\ude00",
                                             "\\ude00\\ud83d",
                                             "\\u12G4",
                                             "\\u12\"",
                                             "\\u1\\\\",
                                             "\\u",
                                             "\\x",
                                             "\\u0000",
                                             "\xe4\xbd\xa0\xe5\xa5\xbd",
                                             "\xc3\xa9",
                                             "\xf0\x9f\x98\x80",
                                             "\xff",
                                             "\xc3",
                                             "\xed\xa0\x80",
                                             "\x01",
                                             "\x7f",
                                             "\\u4f60\\u597d\\u4f60\\u597d\\u4f60\\u597d"};

/* String literals made of random pieces are accepted or refused as jansson
 * accepts or refuses them (json_loadb, JSON_DECODE_ANY), and when accepted
 * read as the same bytes: each alone, in a heap block of its exact size (so
 * that a read past the end is AddressSanitizer's), and as a member value. */
static void test_strings_vs_jansson(void **state) {
  (void)state;
  gw_arena *a = gw_arena_new(0, 0);
  uint32_t seed = 7;
  gw_buf lit, doc;
  gw_buf_init(&lit, 1 << 20);
  gw_buf_init(&doc, 1 << 20);
  for (int round = 0; round < 20000; round++) {
    gw_buf_reset(&lit);
    assert_int_equal(gw_buf_appendc(&lit, '"'), GW_OK);
    seed = seed * 1103515245 + 12345;
    int pieces = (int)(seed >> 16) % (round % 10 == 0 ? 200 : 12), mostly = (int)(seed >> 8) % 3;
    size_t np = sizeof literal_pieces / sizeof literal_pieces[0];
    for (int i = 0; i < pieces; i++) {
      seed = seed * 1103515245 + 12345;
      size_t k = (seed >> 16) % np;
      if (mostly == 1 && (seed & 3)) /* mostly well-formed: text, escapes, \u runs */
        k = (seed >> 8) % 16;
      assert_int_equal(gw_buf_appends(&lit, literal_pieces[k]), GW_OK);
    }
    assert_int_equal(gw_buf_appendc(&lit, '"'), GW_OK);
    json_error_t je;
    json_t *j = json_loadb(lit.data, lit.len, JSON_DECODE_ANY, &je);
    char *exact = malloc(lit.len);
    memcpy(exact, lit.data, lit.len);
    const gw_jval *v;
    gw_json_lite_error e;
    int rc = parse(a, exact, lit.len, &v, &e);
    if (!j) {
      if (rc != GW_ERR_INVALID)
        fail_msg("round %d: %s accepted, jansson: %s", round, lit.data, je.text);
    } else {
      if (rc != GW_OK)
        fail_msg("round %d: %s refused: %s", round, lit.data, e.text);
      assert_int_equal(v->type, GW_JVAL_STRING);
      assert_int_equal(v->len, json_string_length(j));
      assert_memory_equal(v->u.str, json_string_value(j), v->len);
      assert_int_equal(v->u.str[v->len], '\0');
    }
    free(exact);
    gw_buf_reset(&doc);
    assert_int_equal(gw_buf_printf(&doc, "{\"k\":%s,\"n\":1}", lit.data), GW_OK);
    rc = parse(a, doc.data, doc.len, &v, &e);
    assert_int_equal(rc, j ? GW_OK : GW_ERR_INVALID);
    if (j) {
      const gw_jval *k = &v->u.members[0].value;
      assert_int_equal(k->len, json_string_length(j));
      assert_memory_equal(k->u.str, json_string_value(j), k->len);
    }
    json_decref(j);
  }
  gw_buf_release(&lit);
  gw_buf_release(&doc);
  gw_arena_free(a);
}

/* The text of utf8_cases.h with each of its bytes in turn replaced by each
 * of the breakers: accepted or refused as jansson does, and read as the
 * same bytes. */
static void test_utf8_every_position(void **state) {
  (void)state;
  gw_arena *a = gw_arena_new(0, 0);
  size_t n = sizeof utf8_text - 1;
  for (size_t at = 0; at <= n; at++)
    for (size_t k = 0; k < sizeof utf8_breakers; k++) {
      if (at == n && k > 0)
        break;                   /* at == n: the text as it is, once */
      char *lit = malloc(n + 2); /* the literal in a block of its exact size */
      lit[0] = '"';
      memcpy(lit + 1, utf8_text, n);
      lit[n + 1] = '"';
      if (at < n)
        lit[1 + at] = (char)utf8_breakers[k];
      json_error_t je;
      json_t *j = json_loadb(lit, n + 2, JSON_DECODE_ANY, &je);
      const gw_jval *v;
      gw_json_lite_error e;
      int rc = parse(a, lit, n + 2, &v, &e);
      if ((rc == GW_OK) != (j != NULL))
        fail_msg("byte %zu set to %02x: rc %d, jansson %s", at, utf8_breakers[k], rc,
                 j ? "accepts" : "refuses");
      if (j) {
        assert_int_equal(v->len, json_string_length(j));
        assert_memory_equal(v->u.str, json_string_value(j), v->len);
      }
      json_decref(j);
      free(lit);
    }
  gw_arena_free(a);
}

/* ------------------------------------------------------------ numbers */

static void test_numbers(void **state) {
  (void)state;
  static const struct {
    const char *in;
    int i64_ok;
    int64_t i64;
    int u64_ok;
    uint64_t u64;
    int d_ok;
  } v[] = {
      {"0", 1, 0, 1, 0, 1},
      {"-0", 1, 0, 1, 0, 1},
      {"42", 1, 42, 1, 42, 1},
      {"-42", 1, -42, 0, 0, 1},
      {"9223372036854775807", 1, INT64_MAX, 1, INT64_MAX, 1},
      {"9223372036854775808", 0, 0, 1, UINT64_C(9223372036854775808), 1},
      {"-9223372036854775808", 1, INT64_MIN, 0, 0, 1},
      {"-9223372036854775809", 0, 0, 0, 0, 1},
      {"18446744073709551615", 0, 0, 1, UINT64_MAX, 1},
      {"18446744073709551616", 0, 0, 0, 0, 1},
      {"1.0", 0, 0, 0, 0, 1},
      {"1e2", 0, 0, 0, 0, 1},
      {"1e308", 0, 0, 0, 0, 1},
      {"1.7976931348623157e308", 0, 0, 0, 0, 1},
      {"1.7976931348623159e308", 0, 0, 0, 0, 0}, /* rounds past DBL_MAX */
      {"1e400", 0, 0, 0, 0, 0},
      {"-1e400", 0, 0, 0, 0, 0},
      {"1e-400", 0, 0, 0, 0, 1}, /* underflow to 0 is a value */
  };
  gw_arena *a = gw_arena_new(0, 0);
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    const gw_jval *n;
    gw_json_lite_error e;
    assert_int_equal(parse(a, v[i].in, strlen(v[i].in), &n, &e), GW_OK);
    int64_t i64;
    uint64_t u64;
    double d;
    assert_int_equal(gw_json_lite_int64(n, &i64) == GW_OK, v[i].i64_ok);
    if (v[i].i64_ok)
      assert_true(i64 == v[i].i64);
    assert_int_equal(gw_json_lite_uint64(n, &u64) == GW_OK, v[i].u64_ok);
    if (v[i].u64_ok)
      assert_true(u64 == v[i].u64);
    assert_int_equal(gw_json_lite_double(n, &d) == GW_OK, v[i].d_ok);
    if (v[i].d_ok && !(n->flags & GW_JVAL_NUM_INT))
      assert_true(d == strtod(v[i].in, NULL));
  }
  /* "-0" as an integer is +0.0 (jansson's), "-0.0" is -0.0 (strtod's). */
  const gw_jval *n;
  double d;
  assert_int_equal(parse(a, S("-0"), &n, NULL), GW_OK);
  assert_int_equal(gw_json_lite_double(n, &d), GW_OK);
  assert_false(signbit(d));
  assert_int_equal(parse(a, S("-0.0"), &n, NULL), GW_OK);
  assert_int_equal(gw_json_lite_double(n, &d), GW_OK);
  assert_true(signbit(d) && d == 0);
  /* Non-numbers are refused by the accessors. */
  assert_int_equal(parse(a, S("\"1\""), &n, NULL), GW_OK);
  assert_int_equal(gw_json_lite_double(n, &d), GW_ERR_INVALID);

  /* Doubles match strtod bit for bit: fast path and fallback, many shapes. */
  uint32_t seed = 7;
  char text[64];
  for (int i = 0; i < 20000; i++) {
    seed = seed * 1103515245 + 12345;
    double x = ldexp((double)(seed >> 4), (int)(seed % 200) - 150) * ((seed & 8) ? -1 : 1);
    snprintf(text, sizeof text, "%.*e", 1 + (int)(seed >> 27) % 18, x);
    assert_int_equal(parse(a, text, strlen(text), &n, NULL), GW_OK);
    assert_int_equal(gw_json_lite_double(n, &d), GW_OK);
    double want = strtod(text, NULL);
    if (memcmp(&d, &want, sizeof d) != 0)
      fail_msg("%s: got %.17g want %.17g", text, d, want);
    snprintf(text, sizeof text, "%.*f", (int)(seed >> 26) % 20, x * 1e6);
    if (parse(a, text, strlen(text), &n, NULL) == GW_OK && !(n->flags & GW_JVAL_NUM_INT)) {
      assert_int_equal(gw_json_lite_double(n, &d), GW_OK);
      want = strtod(text, NULL);
      if (memcmp(&d, &want, sizeof d) != 0)
        fail_msg("%s: got %.17g want %.17g", text, d, want);
    }
  }
  /* A number longer than the accessor's stack copy. */
  gw_buf b;
  gw_buf_init(&b, 4096);
  gw_buf_appends(&b, "0.");
  for (int i = 0; i < 300; i++)
    gw_buf_appendc(&b, (char)('0' + i % 10));
  assert_int_equal(parse(a, b.data, b.len, &n, NULL), GW_OK);
  assert_int_equal(gw_json_lite_double(n, &d), GW_OK);
  assert_true(d == strtod(b.data, NULL));
  gw_buf_release(&b);
  gw_arena_free(a);
}

/* ------------------------------------------------------------ objects */

/* GW_JVAL_NUM_F32: the float the parser computes on the way must be
 * (float) of gw_json_lite_double's value, bit for bit (sign of zero too);
 * integers and numbers outside the fast range carry no flag. */
static void check_f32(const gw_jval *e, int want_flag) {
  double d;
  if (gw_json_lite_double(e, &d) != GW_OK) { /* out of range for a double */
    assert_int_equal(e->flags & GW_JVAL_NUM_F32, 0);
    return;
  }
  if (want_flag >= 0 && !!(e->flags & GW_JVAL_NUM_F32) != want_flag)
    fail_msg("%.*s: flag %d, want %d", (int)e->len, e->u.str, !!(e->flags & GW_JVAL_NUM_F32),
             want_flag);
  if (e->flags & GW_JVAL_NUM_F32) {
    float f = (float)d;
    if (memcmp(&f, &e->num_f, sizeof f) != 0)
      fail_msg("%.*s: parsed %a, gw_json_lite_double %a", (int)e->len, e->u.str, (double)e->num_f,
               (double)f);
  }
}

static void test_number_f32(void **state) {
  (void)state;
  gw_arena *a = gw_arena_new(0, 0);
  const gw_jval *v;
  gw_json_lite_error err;
  static const struct {
    const char *text;
    int flag;
  } cases[] = {
      {"0", 0},
      {"-0", 0},
      {"-0.0", 1},
      {"0.0023064255", 1},
      {"-0.0123", 1},
      {"1e22", 1},
      {"1e23", 0},
      {"1.5E-22", 0},
      {"1e-23", 0},
      {"123456789012345", 0},
      {"1234567890123456", 0},
      {"0.000000000000000000001", 1},
      {"1E+2", 1},
      {"12.5e-3", 1},
      {"3.4028235e38", 0},
      {"-7", 0},
      {"0.100000000000000000000", 0},
      {"1e100001", 0},
      {"-0.0e5", 1},
      /* eight fraction digits at a time: all zeros, leading zeros, the
       * fifteen-digit edge */
      {"1.00000000", 1},
      {"0.00000000123456789", 1},
      {"-0.00012345678", 1},
      {"0.123456789012345", 1},
      /* 16 to 19 digits: where the float is certain (floats printed with
       * 17 digits, as Python servers write float32 embeddings), none past 19 */
      {"0.1234567890123456", 1},
      {"10000000.00000001", 1},
      {"-0.006929283495992422", 1},
      {"0.0023064255156824", 1},
      {"1234567890.123456789", 1},
      {"1234567890.1234567891", 0},
      {"0.15625000000000001", 1},
      /* 1 + 2^-24, halfway between the floats 1 and 1 + 2^-23, and a
       * hair either side of it: a double's rounding can go either way */
      {"1.000000059604644775", 0},
      {"1.000000059604644776", 0},
      {"1.000000059604644774", 0},
      {"0.000000000000000000000", 1},
      {"0.12345678e-3", 1},
      /* found by fuzz_json_lite: a significand that kept growing by eight
       * digits wrapped to zero, and the digits after it counted as the first */
      {"1.00400000000000000000000000000000000000000000000000000000000000000000000000000158e61", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    assert_int_equal(parse(a, cases[i].text, strlen(cases[i].text), &v, &err), GW_OK);
    check_f32(v, cases[i].flag);
  }
  /* An embedding's worth of random numbers in the forms models print. */
  char *buf = malloc(1 << 20);
  size_t n = 0;
  uint64_t x = 88172645463325252ull;
  buf[n++] = '[';
  for (int i = 0; i < 20000; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    double r = (double)(x >> 11) / 9007199254740992.0 - 0.5;
    static const char *const fmt[] = {"%.10f", "%.8g", "%.17g", "%.6e", "%.3f", "%.0f"};
    n += (size_t)snprintf(buf + n, 64, "%s", i ? "," : "");
    n +=
        (size_t)snprintf(buf + n, 64, fmt[(x >> 5) % 6], r * pow(10.0, (double)((x >> 8) % 9) - 4));
  }
  buf[n++] = ']';
  assert_int_equal(parse(a, buf, n, &v, &err), GW_OK);
  size_t flagged = 0;
  for (size_t i = 0; i < v->len; i++) {
    check_f32(&v->u.elems[i], -1);
    flagged += (v->u.elems[i].flags & GW_JVAL_NUM_F32) != 0;
  }
  assert_true(flagged > v->len / 2); /* the fast range is the common case */
  /* Around halfway points between two floats, where a double's rounding
   * decides which float: 16 to 19 digits of doubles a few units in the last
   * place either side of the point, each must read as strtod's does. */
  n = 0;
  buf[n++] = '[';
  for (int i = 0; i < 4000; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    float f = (float)((double)(x >> 40) / 16777216.0 * pow(10.0, (double)((x >> 8) % 13) - 6));
    double half = ((double)f + (double)nextafterf(f, INFINITY)) / 2; /* exact */
    double d = half;
    int steps = (int)((x >> 20) % 25) - 12;
    for (; steps > 0; steps--)
      d = nextafter(d, INFINITY);
    for (; steps < 0; steps++)
      d = nextafter(d, 0);
    n += (size_t)snprintf(buf + n, 64, "%s%.*g", i ? "," : "", 16 + (int)((x >> 30) % 4),
                          (x >> 33) & 1 ? -d : d);
  }
  buf[n++] = ']';
  assert_int_equal(parse(a, buf, n, &v, &err), GW_OK);
  flagged = 0;
  for (size_t i = 0; i < v->len; i++) {
    check_f32(&v->u.elems[i], -1);
    flagged += (v->u.elems[i].flags & GW_JVAL_NUM_F32) != 0;
  }
  assert_true(flagged < v->len / 2); /* most are too near to tell */
  free(buf);
  gw_arena_free(a);
}

/* gw_json_lite_read_floats (an embedding's vector read straight into
 * floats) against the DOM parser on the same text: the same floats, bit for
 * bit, when every number has one of its own (GW_JVAL_NUM_F32), else 1 (the
 * caller's general path). Numbers in the forms models print and the edges
 * of the one-register reader (16 digits in a register, up to 19 in all, a
 * first digit that is not 0 before 16 zeros, exponents, a point with no
 * digits, a vector ending at the buffer's end: the buffer is exactly the
 * text, so a read past it is ASan's). */
static int read_floats_like_dom(const char *text, size_t len) {
  gw_arena *a = gw_arena_new(0, 0);
  char *copy = malloc(len); /* no NUL, no slack */
  memcpy(copy, text, len);
  const gw_jval *v;
  gw_json_lite_error err;
  int want_ok = parse(a, copy, len, &v, &err) == GW_OK && v->type == GW_JVAL_ARRAY;
  for (size_t i = 0; want_ok && i < v->len; i++)
    want_ok = v->u.elems[i].type == GW_JVAL_NUMBER && (v->u.elems[i].flags & GW_JVAL_NUM_F32);
  gw_json_lite_reader r = {copy, copy + len, a};
  float *f = NULL;
  size_t n = 0;
  int rc = gw_json_lite_read_floats(&r, &f, &n);
  if (want_ok) {
    if (rc != GW_OK)
      fail_msg("read_floats refused %.*s", (int)(len > 200 ? 200 : len), copy);
    assert_int_equal(n, v->len);
    assert_ptr_equal(r.p, copy + len);
    for (size_t i = 0; i < n; i++)
      if (memcmp(&f[i], &v->u.elems[i].num_f, sizeof f[i]) != 0)
        fail_msg("%.*s: read %a, the parser %a", (int)v->u.elems[i].len, v->u.elems[i].u.str,
                 (double)f[i], (double)v->u.elems[i].num_f);
  } else {
    assert_int_not_equal(rc, GW_OK);
  }
  free(copy);
  gw_arena_free(a);
  return want_ok;
}

static void test_read_floats(void **state) {
  (void)state;
  static const char *const edges[] = {
      "-0.0",
      "0.0",
      "0.5",
      "-0.0123",
      "1.5",
      "9.999999999999999",
      "0.0000000000000001",
      "0.1234567890123456",
      "0.12345678901234567",
      "0.123456789012345678",
      "0.1234567890123456789",
      "0.12345678901234567891",
      "1.0000000000000000123",
      "1.000000000000000012",
      "1.00000000000000001",
      "2.000000000000000001",
      "1.0000000000000000001",
      "-3.0000000000000000004",
      "0.0000000000000000012345",
      "0.000000000000000000123",
      "0.0000000000000000001",
      "0.00000000000000000001234",
      "0.0000000000000000000000001",
      "0.006929283495992422",
      "-0.0023064255156824",
      "1.000000059604644775",
      "0.12345678e-3",
      "1.5E2",
      "12.5",
      "-12.25",
      "0",
      "-7",
      "1e5",
      "0.",
      "-",
      "-.5",
      "01.5",
      "0.5.5",
      "1.00000000000000000000000000000000000000000000000000000000000000000001"};
  char *buf = malloc(1 << 20);
  uint64_t x = 0x2545f4914f6cdd1dull;
  for (int round = 0; round < 600; round++) {
    size_t n = 0, count = 1 + (size_t)(round % 40);
    buf[n++] = '[';
    for (size_t i = 0; i < count; i++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      if (i)
        n += (size_t)snprintf(buf + n, 8, "%s", (x >> 3) % 5 ? "," : " , ");
      if ((x >> 10) % 17 == 0) {
        n +=
            (size_t)snprintf(buf + n, 128, "%s", edges[(x >> 20) % (sizeof edges / sizeof *edges)]);
        continue;
      }
      double r = (double)(x >> 11) / 9007199254740992.0 - 0.5;
      static const char *const fmt[] = {"%.10f", "%.8g",  "%.17g", "%.9f", "%.16f",
                                        "%.18f", "%.19f", "%.6e",  "%.3f", "%.20f"};
      n += (size_t)snprintf(buf + n, 64, fmt[(x >> 5) % 10],
                            r * pow(10.0, (double)((x >> 40) % 7) - 4));
    }
    buf[n++] = ']';
    read_floats_like_dom(buf, n);
  }
  /* each edge alone, last in a vector, at the buffer's end */
  for (size_t e = 0; e < sizeof edges / sizeof *edges; e++) {
    size_t n = (size_t)snprintf(buf, 256, "[0.25,%s]", edges[e]);
    read_floats_like_dom(buf, n);
    n = (size_t)snprintf(buf, 256, "[%s,0.0123456789012345678,-0.5]", edges[e]);
    read_floats_like_dom(buf, n);
  }
  /* 16 to 19 digits a few doubles either side of a point halfway between
   * two floats, in the one-digit form the register reader takes: where the
   * double's rounding can decide the float, the parser refuses, and so must
   * the reader */
  for (int round = 0; round < 40; round++) {
    size_t n = 0;
    buf[n++] = '[';
    for (int i = 0; i < 100; i++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      float f = (float)((double)(x >> 40) / 16777216.0 * pow(10.0, (double)((x >> 8) % 5) - 4));
      double d = ((double)f + (double)nextafterf(f, INFINITY)) / 2; /* exact */
      for (int steps = (int)((x >> 20) % 9) - 4; steps; steps += steps < 0 ? 1 : -1)
        d = nextafter(d, steps > 0 ? INFINITY : 0);
      int digits = 16 + (int)((x >> 30) % 4); /* fraction digits */
      n += (size_t)snprintf(buf + n, 64, "%s%.*f", i ? "," : "", digits, (x >> 33) & 1 ? -d : d);
    }
    buf[n++] = ']';
    read_floats_like_dom(buf, n);
  }
  /* an embedding as OpenAI prints one: every number taken */
  size_t n = 0;
  buf[n++] = '[';
  for (int i = 0; i < 1536; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    float f = (float)((double)(x >> 11) / 9007199254740992.0 - 0.5) * 0.1f;
    n += (size_t)snprintf(buf + n, 64, "%s%.9g", i ? "," : "", (double)f);
  }
  buf[n++] = ']';
  assert_true(read_floats_like_dom(buf, n));
  free(buf);
}

/* Big objects: all distinct keys pass; one repeat anywhere is found. */
static void test_big_objects(void **state) {
  (void)state;
  gw_arena *a = gw_arena_new(0, 0);
  for (int repeat_at = -1; repeat_at < 3000; repeat_at += 499) {
    gw_buf b;
    gw_buf_init(&b, 1 << 20);
    gw_buf_appendc(&b, '{');
    for (int i = 0; i < 3000; i++)
      gw_buf_printf(&b, "%s\"k%d\":%d", i ? "," : "", i == repeat_at ? 7 : i, i);
    gw_buf_appendc(&b, '}');
    const gw_jval *v;
    gw_json_lite_error e;
    int rc = parse(a, b.data, b.len, &v, &e);
    if (repeat_at < 0 || repeat_at == 7) {
      assert_int_equal(rc, GW_OK);
      assert_int_equal(v->len, 3000);
      assert_string_equal(v->u.members[2999].key, "k2999");
    } else {
      assert_int_equal(rc, GW_ERR_INVALID);
      assert_string_equal(e.text, "duplicate object key");
      /* reported at the repeat */
      assert_memory_equal(b.data + e.offset, "\"k7\"", 4);
    }
    gw_buf_release(&b);
  }
  gw_arena_free(a);
}

/* ------------------------------------------------------------ nesting */

static void test_depth(void **state) {
  (void)state;
  gw_arena *a = gw_arena_new(0, 0);
  gw_buf b;
  gw_buf_init(&b, 1 << 20);
  /* jansson's limit by default: a value at depth 2049 is refused, as there. */
  for (int depth = 2047; depth <= 2049; depth++) {
    gw_buf_reset(&b);
    for (int i = 0; i < depth - 1; i++)
      gw_buf_appendc(&b, '[');
    gw_buf_appendc(&b, '1');
    for (int i = 0; i < depth - 1; i++)
      gw_buf_appendc(&b, ']');
    const gw_jval *v;
    gw_json_lite_error e;
    int rc = parse(a, b.data, b.len, &v, &e);
    json_t *j = json_loadb(b.data, b.len, JSON_DECODE_ANY, NULL);
    assert_int_equal(rc == GW_OK, j != NULL);
    assert_int_equal(rc == GW_OK, depth <= GW_JSON_LITE_MAX_DEPTH);
    json_decref(j);
  }
  /* A caller's limit. */
  const gw_jval *v;
  gw_json_lite_error e;
  assert_int_equal(gw_json_lite_parse(S("[[1]]"), a, 3, 0, &v, &e), GW_OK);
  assert_int_equal(gw_json_lite_parse(S("[[[1]]]"), a, 3, 0, &v, &e), GW_ERR_INVALID);
  assert_string_equal(e.text, "maximum nesting depth reached");
  assert_int_equal(gw_json_lite_parse(S("{\"a\":{\"b\":{}}}"), a, 3, 0, &v, &e), GW_OK);
  assert_int_equal(gw_json_lite_parse(S("{\"a\":{\"b\":{\"c\":0}}}"), a, 3, 0, &v, &e),
                   GW_ERR_INVALID);
  /* Very deep input is refused without exhausting the stack. */
  gw_buf_reset(&b);
  for (int i = 0; i < 200000; i++)
    gw_buf_appendc(&b, '[');
  assert_int_equal(parse(a, b.data, b.len, &v, &e), GW_ERR_INVALID);
  gw_buf_release(&b);
  gw_arena_free(a);
}

/* ------------------------------------------------------------ errors */

static void test_error_positions(void **state) {
  (void)state;
  static const struct {
    const char *in;
    int line, column;
    const char *text;
  } v[] = {
      {"{\"name\":", 1, 8, "unexpected end of input"},
      {"[1,]", 1, 4, "invalid token"},
      {"{\n  \"a\": 1,\n  \"a\": 2\n}", 3, 3, "duplicate object key"},
      {"[\"\xc3\xa9\xc3\xa9\", x]", 1, 8, "invalid token"}, /* columns count characters */
      {"[1 2]", 1, 4, "',' or ']' expected"},
      {"{\"a\" 1}", 1, 6, "':' expected"},
      {"[\"a\\qb\"]", 1, 4, "invalid escape"},
      {"[\"\\u0000\"]", 1, 3, "\\u0000 is not allowed"},
      /* a quote where a \u escape's digits should be ends the string there,
       * also when a backslash follows it (the scan of a \uXXXX run) */
      {"\"\\u4f60\\u1\"xy\\n", 1, 8, "invalid \\u escape"},
      {"\n\n  01", 3, 4, "end of input expected"},
      {"", 1, 0, "unexpected end of input"},
  };
  gw_arena *a = gw_arena_new(0, 0);
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    const gw_jval *out;
    gw_json_lite_error e;
    assert_int_equal(parse(a, v[i].in, strlen(v[i].in), &out, &e), GW_ERR_INVALID);
    if (e.line != v[i].line || e.column != v[i].column || strcmp(e.text, v[i].text) != 0)
      fail_msg("'%s': got %d:%d '%s', want %d:%d '%s'", v[i].in, e.line, e.column, e.text,
               v[i].line, v[i].column, v[i].text);
  }
  /* NULL error and NULL input with length 0 are fine. */
  const gw_jval *out;
  assert_int_equal(parse(a, NULL, 0, &out, NULL), GW_ERR_INVALID);
  gw_arena_free(a);
}

/* ------------------------------------------------------------ memory */

static const char *mem_doc;

/* Parses |arg| in a fresh small arena; 0 when it parsed. */
static int sweep_parse(void *arg) {
  gw_arena *a = gw_arena_new(64, 0);
  if (!a)
    return GW_ERR_NOMEM;
  const gw_jval *v = NULL;
  gw_json_lite_error e;
  const char *s = arg;
  int rc = parse(a, s, strlen(s), &v, &e);
  if (rc != GW_OK && rc != GW_ERR_NOMEM)
    fail_msg("rc %d: %s", rc, e.text);
  gw_arena_free(a);
  return rc;
}

static char *big_doc(void) {
  /* 100 members (sorted duplicate check) holding a 300-element array (the
   * scratch stack grows past its inline part) and long escaped strings. */
  gw_buf b;
  gw_buf_init(&b, 1 << 20);
  gw_buf_appendc(&b, '{');
  for (int i = 0; i < 100; i++)
    gw_buf_printf(&b, "%s\"key%d\":\"v\\u00e9\\n%d\"", i ? "," : "", i, i);
  gw_buf_appends(&b, ",\"arr\":[");
  for (int i = 0; i < 300; i++)
    gw_buf_printf(&b, "%s[%d.5,{\"x\":null}]", i ? "," : "", i);
  gw_buf_appends(&b, "]}");
  char *s = strdup(b.data);
  gw_buf_release(&b);
  return s;
}

static void test_failmalloc(void **state) {
  (void)state;
  mem_doc = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\\n\"}],\"n\":1.5}";
  assert_true(gw_test_failmalloc_sweep(sweep_parse, (void *)mem_doc) >= 2);
  char *s = big_doc();
  assert_true(gw_test_failmalloc_sweep(sweep_parse, s) > 5);
  free(s);
}

/* Every arena cap below what the document needs is GW_ERR_NOMEM, never a
 * crash, a leak or a partial result. */
static void test_arena_cap(void **state) {
  (void)state;
  char *s = big_doc();
  gw_arena *probe = gw_arena_new(0, 0);
  const gw_jval *v;
  gw_json_lite_error e;
  assert_int_equal(parse(probe, s, strlen(s), &v, &e), GW_OK);
  size_t need = gw_arena_used(probe);
  gw_arena_free(probe);
  long live = gw_alloc_live();
  for (size_t cap = 16; cap < need; cap += need / 97 + 1) {
    gw_arena *a = gw_arena_new(0, cap);
    v = NULL;
    assert_int_equal(parse(a, s, strlen(s), &v, &e), GW_ERR_NOMEM);
    assert_string_equal(e.text, "out of memory");
    assert_null(v);
    gw_arena_free(a);
    assert_int_equal(gw_alloc_live(), live);
  }
  gw_arena *a = gw_arena_new(0, need);
  assert_int_equal(parse(a, s, strlen(s), &v, &e), GW_OK);
  gw_arena_free(a);
  free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_syntax),
      cmocka_unit_test(test_dom),
      cmocka_unit_test(test_long_strings),
      cmocka_unit_test(test_strings_vs_jansson),
      cmocka_unit_test(test_utf8_every_position),
      cmocka_unit_test(test_numbers),
      cmocka_unit_test(test_big_objects),
      cmocka_unit_test(test_depth),
      cmocka_unit_test(test_error_positions),
      cmocka_unit_test(test_failmalloc),
      cmocka_unit_test(test_arena_cap),
      cmocka_unit_test(test_number_f32),
      cmocka_unit_test(test_read_floats),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
