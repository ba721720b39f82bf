/* libFuzzer target for the arena-DOM JSON parser (transcoder/json_lite.c),
 * cross-checked against jansson (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY):
 * both accept or both reject, and when both accept the values are equal
 * (numbers exactly: integers as int64, reals bit for bit, and the float a
 * real carries when GW_JVAL_NUM_F32 is set). The one allowed
 * difference: jansson refuses integers past int64 and reals past DBL_MAX
 * at parse time, json_lite keeps their text; then the DOM must hold such a
 * number; and jansson's NUL quirk (jansson_nul_quirk). Runs with and without \u0000 allowed, and
 * with a small nesting limit that the accepted DOM must respect. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/status.h"
#include "transcoder/json_lite.h"

static int equal(const gw_jval *v, json_t *j) {
  switch (v->type) {
  case GW_JVAL_NULL: return json_is_null(j);
  case GW_JVAL_TRUE: return json_is_true(j);
  case GW_JVAL_FALSE: return json_is_false(j);
  case GW_JVAL_NUMBER: {
    if (json_is_integer(j)) {
      int64_t i;
      return gw_json_lite_int64(v, &i) == GW_OK && i == json_integer_value(j);
    }
    if (!json_is_real(j) || (v->flags & GW_JVAL_NUM_INT))
      return 0;
    double d, r = json_real_value(j);
    float rf = (float)r;
    /* the float the parser computed on the way (GW_JVAL_NUM_F32), bit for bit */
    if ((v->flags & GW_JVAL_NUM_F32) && memcmp(&v->num_f, &rf, sizeof rf) != 0)
      return 0;
    return gw_json_lite_double(v, &d) == GW_OK && memcmp(&d, &r, sizeof d) == 0;
  }
  case GW_JVAL_STRING:
    return json_is_string(j) && json_string_length(j) == v->len &&
           memcmp(json_string_value(j), v->u.str, v->len) == 0 && v->u.str[v->len] == '\0';
  case GW_JVAL_ARRAY:
    if (!json_is_array(j) || json_array_size(j) != v->len)
      return 0;
    for (size_t i = 0; i < v->len; i++)
      if (!equal(&v->u.elems[i], json_array_get(j, i)))
        return 0;
    return 1;
  case GW_JVAL_OBJECT:
    if (!json_is_object(j) || json_object_size(j) != v->len)
      return 0;
    for (size_t i = 0; i < v->len; i++) {
      const gw_jmember *m = &v->u.members[i];
      json_t *e = json_object_getn(j, m->key, m->key_len);
      if (!e || !equal(&m->value, e) || m->key[m->key_len] != '\0')
        return 0;
    }
    return 1;
  }
  return 0;
}

/* Whether the DOM holds a number jansson refuses (see above). */
static int has_overflow(const gw_jval *v) {
  int64_t i;
  double d;
  switch (v->type) {
  case GW_JVAL_NUMBER:
    if (v->flags & GW_JVAL_NUM_INT)
      return gw_json_lite_int64(v, &i) != GW_OK;
    return gw_json_lite_double(v, &d) != GW_OK;
  case GW_JVAL_ARRAY:
    for (size_t k = 0; k < v->len; k++)
      if (has_overflow(&v->u.elems[k]))
        return 1;
    return 0;
  case GW_JVAL_OBJECT:
    for (size_t k = 0; k < v->len; k++)
      if (has_overflow(&v->u.members[k].value))
        return 1;
    return 0;
  default: return 0;
  }
}

/* jansson swallows one NUL byte right after a number or a true/false/null
 * ("[1\0]" parses as [1]); json_lite refuses it, as RFC 8259 does. */
static int jansson_nul_quirk(const uint8_t *data, size_t size, const gw_json_lite_error *e) {
  if (e->offset == 0 || e->offset >= size || data[e->offset] != 0)
    return 0;
  uint8_t prev = data[e->offset - 1];
  return (prev >= '0' && prev <= '9') || prev == 'e' || prev == 'l';
}

static int depth_of(const gw_jval *v) {
  int d = 0;
  if (v->type == GW_JVAL_ARRAY)
    for (size_t k = 0; k < v->len; k++) {
      int x = depth_of(&v->u.elems[k]);
      d = x > d ? x : d;
    }
  if (v->type == GW_JVAL_OBJECT)
    for (size_t k = 0; k < v->len; k++) {
      int x = depth_of(&v->u.members[k].value);
      d = x > d ? x : d;
    }
  return d + 1;
}

static void cross_check(const uint8_t *data, size_t size, unsigned flags) {
  gw_arena *a = gw_arena_new(0, 0);
  if (!a)
    return;
  const gw_jval *v = NULL;
  gw_json_lite_error e;
  int rc = gw_json_lite_parse((const char *)data, size, a, 0, flags, &v, &e);
  json_error_t je;
  size_t jflags = JSON_REJECT_DUPLICATES | JSON_DECODE_ANY;
  if (flags & GW_JSON_LITE_ALLOW_NUL)
    jflags |= JSON_ALLOW_NUL;
  json_t *j = json_loadb((const char *)data, size, jflags, &je);
  if (rc != GW_OK && rc != GW_ERR_INVALID)
    abort();
  if (rc != GW_OK && (e.line < 1 || e.column < 0 || e.offset > size || !e.text[0]))
    abort();
  if (rc == GW_OK && j) {
    if (!equal(v, j)) {
      fprintf(stderr, "values differ\n");
      abort();
    }
  } else if (rc == GW_OK) {
    int overflow = strstr(je.text, "too big") || strstr(je.text, "overflow");
    if (!overflow || !has_overflow(v)) {
      fprintf(stderr, "json_lite accepts, jansson refuses: %s\n", je.text);
      abort();
    }
  } else if (j && !jansson_nul_quirk(data, size, &e)) {
    fprintf(stderr, "json_lite refuses (%d:%d %s), jansson accepts\n", e.line, e.column, e.text);
    abort();
  }
  json_decref(j);

  /* A small nesting limit holds. */
  int limit = size ? 1 + data[0] % 8 : 1;
  if (gw_json_lite_parse((const char *)data, size, a, limit, flags, &v, &e) == GW_OK &&
      depth_of(v) > limit)
    abort();
  gw_arena_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cross_check(data, size, 0);
  cross_check(data, size, GW_JSON_LITE_ALLOW_NUL);
  return 0;
}
