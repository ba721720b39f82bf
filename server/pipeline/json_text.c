/* JSON text out of a json_lite DOM (contract in json_text.h). */
#include "pipeline/json_text.h"

#include <jansson.h>
#include <stdlib.h>

#include "core/arena.h"

int gw_jt_put_value(gw_buf *b, const gw_jval *v) {
  switch (v->type) {
  case GW_JVAL_NULL: return GW_JT_PUT(b, "null");
  case GW_JVAL_FALSE: return GW_JT_PUT(b, "false");
  case GW_JVAL_TRUE: return GW_JT_PUT(b, "true");
  case GW_JVAL_NUMBER: return gw_buf_append(b, v->u.str, v->len);
  case GW_JVAL_STRING: return gw_jt_put_str(b, v);
  case GW_JVAL_ARRAY: {
    int rc = gw_buf_appendc(b, '[');
    for (size_t i = 0; rc == GW_OK && i < v->len; i++) {
      if (i)
        rc = gw_buf_appendc(b, ',');
      if (rc == GW_OK)
        rc = gw_jt_put_value(b, &v->u.elems[i]);
    }
    return rc == GW_OK ? gw_buf_appendc(b, ']') : rc;
  }
  default: {
    int rc = gw_buf_appendc(b, '{');
    for (size_t i = 0; rc == GW_OK && i < v->len; i++) {
      const gw_jmember *m = &v->u.members[i];
      if (i)
        rc = gw_buf_appendc(b, ',');
      if (rc == GW_OK)
        rc = gw_buf_append_json_string(b, m->key, m->key_len);
      if (rc == GW_OK)
        rc = gw_buf_appendc(b, ':');
      if (rc == GW_OK)
        rc = gw_jt_put_value(b, &m->value);
    }
    return rc == GW_OK ? gw_buf_appendc(b, '}') : rc;
  }
  }
}

int gw_jt_put_content_text(gw_buf *b, const gw_jval *c) {
  int rc = gw_buf_appendc(b, '"');
  if (gw_jt_is_str(c) && rc == GW_OK)
    rc = gw_buf_append_json_chars(b, c->u.str, c->len);
  for (size_t i = 0; rc == GW_OK && i < gw_jt_array_len(c); i++) {
    const gw_jval *t = GW_JT_GET(&c->u.elems[i], "text");
    if (gw_jt_is_str(t))
      rc = gw_buf_append_json_chars(b, t->u.str, t->len);
  }
  return rc == GW_OK ? gw_buf_appendc(b, '"') : rc;
}

int gw_jt_tool_arguments(const gw_jval *fn, gw_arena *a, const gw_jval **out) {
  const gw_jval *args = GW_JT_GET(fn, "arguments");
  gw_json_lite_error je;
  *out = NULL;
  if (!gw_jt_is_str(args) || !args->len)
    return GW_OK;
  if (gw_json_lite_parse(args->u.str, args->len, a, 0, 0, out, &je) == GW_OK)
    return gw_jt_is_object(*out) ? GW_OK : (*out = NULL, GW_ERR_INVALID);
  /* json_lite refuses a key given twice, where jansson keeps the last one.
   * Arguments come from a model's earlier answer, replayed by the client:
   * take them as jansson (and the translations before json_lite) did,
   * rewritten without the duplicates. Only this rare path pays for it. */
  *out = NULL;
  json_t *j = json_loadb(args->u.str, args->len, 0, NULL);
  char *t = json_is_object(j) ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  /* (numbers point into the text they were read from: it goes in |a| too) */
  char *kept = t ? gw_arena_strdup(a, t) : NULL;
  free(t);
  if (!kept || gw_json_lite_parse(kept, strlen(kept), a, 0, 0, out, &je) != GW_OK ||
      !gw_jt_is_object(*out)) {
    *out = NULL;
    return GW_ERR_INVALID;
  }
  return GW_OK;
}

size_t gw_jt_content_text_len(const gw_jval *c) {
  if (gw_jt_is_str(c))
    return c->len;
  size_t n = 0;
  for (size_t i = 0; i < gw_jt_array_len(c); i++) {
    const gw_jval *t = GW_JT_GET(&c->u.elems[i], "text");
    if (gw_jt_is_str(t))
      n += t->len;
  }
  return n;
}
