/* gw_pb_to_jval (the DOM straight from a message) against what it stands
 * for: gw_pb_to_json's text read back by gw_json_lite_parse. Shared by the
 * codec's unit tests and fuzz_json_pb. */
#ifndef GW_TESTS_PB_DOM_CHECK_H
#define GW_TESTS_PB_DOM_CHECK_H

#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/status.h"
#include "transcoder/json_lite.h"
#include "transcoder/json_pb.h"

/* Whether |a| and |b| are the same value: types, numbers' text and their
 * INT/NEG flags (not F32, which only the parser sets), strings' and keys'
 * bytes, members in order. |where| gets the path of the first difference. */
static int pb_dom_equal(const gw_jval *a, const gw_jval *b, char *where, size_t n) {
  const unsigned char flags = GW_JVAL_NUM_INT | GW_JVAL_NUM_NEG;
  if (a->type != b->type || a->len != b->len) {
    snprintf(where, n, "type %d/%d or length %zu/%zu", a->type, b->type, a->len, b->len);
    return 0;
  }
  switch (a->type) {
  case GW_JVAL_NUMBER:
    if ((a->flags & flags) != (b->flags & flags) || memcmp(a->u.str, b->u.str, a->len) != 0) {
      snprintf(where, n, "number %.*s (flags %d) / %.*s (flags %d)", (int)a->len, a->u.str,
               a->flags & flags, (int)b->len, b->u.str, b->flags & flags);
      return 0;
    }
    return 1;
  case GW_JVAL_STRING:
    if (memcmp(a->u.str, b->u.str, a->len) != 0 || a->u.str[a->len] != '\0') {
      snprintf(where, n, "string \"%.40s\" / \"%.40s\"", a->u.str, b->u.str);
      return 0;
    }
    return 1;
  case GW_JVAL_ARRAY:
    for (size_t i = 0; i < a->len; i++)
      if (!pb_dom_equal(&a->u.elems[i], &b->u.elems[i], where, n))
        return 0;
    return 1;
  case GW_JVAL_OBJECT:
    for (size_t i = 0; i < a->len; i++) {
      const gw_jmember *x = &a->u.members[i], *y = &b->u.members[i];
      if (x->key_len != y->key_len || memcmp(x->key, y->key, x->key_len) != 0 ||
          x->key[x->key_len] != '\0') {
        snprintf(where, n, "member %zu: key \"%.40s\" / \"%.40s\"", i, x->key, y->key);
        return 0;
      }
      if (!pb_dom_equal(&x->value, &y->value, where, n))
        return 0;
    }
    return 1;
  default: return 1;
  }
}

/* NULL when gw_pb_to_jval(|m|, |opts|) and the text read back agree (the
 * same DOM, or both refused with the same code), else what differs, in
 * |out|. A message whose JSON passes 64 MiB is not compared. */
static const char *pb_dom_check(const ProtobufCMessage *m, const gw_json_opts *opts, char *out,
                                size_t n) {
  gw_arena *a = gw_arena_new(0, 0);
  gw_buf text;
  gw_buf_init(&text, (size_t)64 << 20);
  const gw_jval *want = NULL, *got = NULL;
  gw_json_lite_error je = {0};
  const char *why = NULL;
  size_t json_len = 0;
  if (!a) {
    snprintf(out, n, "no arena");
    return out;
  }
  int rw = gw_pb_to_json(m, opts, &text);
  if (rw == GW_OK)
    rw = gw_json_lite_parse(text.data, text.len, a, 0, 0, &want, &je);
  int rd = gw_pb_to_jval(m, opts, a, &got, &json_len, &why);
  const char *res = NULL;
  char where[200] = "";
  if (rw == GW_ERR_TOOBIG) {
    res = NULL;
  } else if (rw != rd) {
    snprintf(out, n, "text read back: %d (%s), DOM: %d (%s)", rw, je.text, rd, why ? why : "");
    res = out;
  } else if (rw == GW_OK && !pb_dom_equal(got, want, where, sizeof where)) {
    snprintf(out, n, "the DOMs differ at %s; the text: %.300s", where, text.data);
    res = out;
  } else if (rw == GW_ERR_INVALID && je.text[0] && (!why || strcmp(why, je.text) != 0)) {
    snprintf(out, n, "refused for \"%s\" / \"%s\"", je.text, why ? why : "");
    res = out;
  } else if (rw == GW_OK && (json_len == 0 || json_len > 3 * text.len + 64)) {
    snprintf(out, n, "json_len %zu for %zu bytes of JSON", json_len, text.len);
    res = out;
  }
  gw_buf_release(&text);
  gw_arena_free(a);
  return res;
}

#endif
