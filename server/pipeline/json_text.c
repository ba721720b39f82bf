/* JSON text out of a json_lite DOM (contract in json_text.h). */
#include "pipeline/json_text.h"

#include <jansson.h>
#include <stdio.h>
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

bool gw_jt_is_system(const gw_jval *m) {
  const gw_jval *role = GW_JT_GET(m, "role");
  return GW_JT_STR_IS(role, "system") || GW_JT_STR_IS(role, "developer");
}

/* |m|'s side, or GW_ERR_INVALID with |err| (when not NULL) saying why. */
static int side_of(const gw_jval *m, const char *provider, bool tool_needs_id, gw_jt_role *out,
                   char *err, size_t errlen) {
  const gw_jval *role = GW_JT_GET(m, "role");
  const char *why = NULL;
  if (!gw_jt_is_str(role))
    why = "a message has no role";
  else if (gw_jt_is_system(m))
    *out = GW_JT_SYSTEM;
  else if (GW_JT_STR_IS(role, "user"))
    *out = GW_JT_USER;
  else if (GW_JT_STR_IS(role, "assistant"))
    *out = GW_JT_ASSISTANT;
  else if (!GW_JT_STR_IS(role, "tool"))
    why = "";
  else if (tool_needs_id && !gw_jt_is_str(GW_JT_GET(m, "tool_call_id")))
    why = "a tool message has no tool_call_id";
  else
    *out = GW_JT_USER;
  if (!why)
    return GW_OK;
  if (err && *why)
    snprintf(err, errlen, "%s", why);
  else if (err)
    snprintf(err, errlen, "message role %s is not supported by %s", role->u.str, provider);
  return GW_ERR_INVALID;
}

int gw_jt_turns(const gw_jval *msgs, const char *provider, bool tool_needs_id, gw_jt_turn_fn turn,
                gw_jt_writer *w) {
  for (size_t i = 0; i < gw_jt_array_len(msgs);) {
    gw_jt_role side, next;
    int rc = side_of(&msgs->u.elems[i], provider, tool_needs_id, &side, w->err, w->errlen);
    if (rc != GW_OK)
      return rc;
    if (side == GW_JT_SYSTEM) {
      i++;
      continue;
    }
    size_t j = i + 1;
    while (j < msgs->len &&
           side_of(&msgs->u.elems[j], provider, tool_needs_id, &next, NULL, 0) == GW_OK &&
           (next == GW_JT_SYSTEM || next == side))
      j++;
    if ((rc = turn(w, msgs, i, j, side)) != GW_OK)
      return rc;
    i = j;
  }
  return GW_OK;
}

int gw_jt_tool_call(const gw_jval *tc, gw_arena *a, bool need_id, const gw_jval **id,
                    const gw_jval **name, const gw_jval **args, char *err, size_t errlen) {
  const gw_jval *fn = GW_JT_GET(tc, "function");
  const char *why = NULL;
  *id = GW_JT_GET(tc, "id");
  *name = GW_JT_GET(fn, "name");
  if (gw_jt_tool_arguments(fn, a, args) != GW_OK)
    why = "tool call arguments are not a JSON object";
  else if (need_id && !gw_jt_is_str(*id))
    why = "a tool call has no id";
  else if (!gw_jt_is_str(*name))
    why = "a tool call has no function name";
  if (!why)
    return GW_OK;
  snprintf(err, errlen, "%s", why);
  return GW_ERR_INVALID;
}

int gw_jt_put_tools(gw_buf *b, const gw_jval *tools, const gw_jt_tool_shape *shape, char *err,
                    size_t errlen) {
  size_t n = 0;
  int rc = GW_OK;
  for (size_t i = 0; rc == GW_OK && i < gw_jt_array_len(tools); i++) {
    const gw_jval *fn = GW_JT_GET(&tools->u.elems[i], "function");
    const gw_jval *name = GW_JT_GET(fn, "name"), *d = GW_JT_GET(fn, "description");
    const gw_jval *params = GW_JT_GET(fn, "parameters");
    if (!gw_jt_is_str(name)) {
      snprintf(err, errlen, "a tool has no function name");
      return GW_ERR_INVALID;
    }
    rc = gw_jt_sep(b, &n);
    if (rc == GW_OK)
      rc = gw_buf_appends(b, shape->open);
    if (rc == GW_OK)
      rc = gw_jt_put_str(b, name);
    if (rc == GW_OK && gw_jt_is_str(d) && (rc = GW_JT_PUT(b, ",\"description\":")) == GW_OK)
      rc = gw_jt_put_str(b, d);
    if (rc == GW_OK && (gw_jt_is_object(params) || shape->no_schema))
      rc = gw_buf_appends(b, shape->schema_key);
    if (rc == GW_OK && gw_jt_is_object(params))
      rc = gw_jt_put_value(b, params);
    else if (rc == GW_OK && shape->no_schema)
      rc = gw_buf_appends(b, shape->no_schema);
    if (rc == GW_OK)
      rc = gw_buf_appends(b, shape->close);
  }
  return rc;
}

int gw_jt_put_tool_calls(gw_buf *b, const gw_jval *calls, const gw_jt_call_shape *shape, size_t *n,
                         gw_arena *a, char *err, size_t errlen) {
  bool with_id = shape->after_id != NULL;
  int rc = GW_OK;
  for (size_t i = 0; rc == GW_OK && i < gw_jt_array_len(calls); i++) {
    const gw_jval *id, *name, *args;
    if ((rc = gw_jt_tool_call(&calls->u.elems[i], a, with_id, &id, &name, &args, err, errlen)) !=
        GW_OK)
      return rc;
    rc = gw_jt_sep(b, n);
    if (rc == GW_OK)
      rc = gw_buf_appends(b, shape->open);
    if (rc == GW_OK && with_id && (rc = gw_jt_put_str(b, id)) == GW_OK)
      rc = gw_buf_appends(b, shape->after_id);
    if (rc == GW_OK)
      rc = gw_jt_put_str(b, name);
    if (rc == GW_OK)
      rc = gw_buf_appends(b, shape->after_name);
    if (rc == GW_OK)
      rc = gw_jt_put_args(b, args);
    if (rc == GW_OK)
      rc = gw_buf_appends(b, shape->close);
  }
  return rc;
}

int gw_jt_put_args_string(gw_buf *b, const gw_jval *input) {
  gw_buf t;
  gw_buf_init(&t, b->cap);
  int rc = gw_jt_put_args(&t, input);
  if (rc == GW_OK)
    rc = gw_buf_append_json_string(b, t.data ? t.data : "", t.len);
  gw_buf_release(&t);
  return rc;
}

int gw_jt_put_usage(gw_buf *b, int64_t prompt, int64_t completion, int64_t cached) {
  int rc = GW_JT_PUT(b, "{\"prompt_tokens\":");
  if (rc == GW_OK)
    rc = gw_jt_put_int(b, prompt);
  if (rc == GW_OK)
    rc = GW_JT_PUT(b, ",\"completion_tokens\":");
  if (rc == GW_OK)
    rc = gw_jt_put_int(b, completion);
  if (rc == GW_OK)
    rc = GW_JT_PUT(b, ",\"total_tokens\":");
  if (rc == GW_OK)
    rc = gw_jt_put_int(b, prompt + completion);
  if (rc == GW_OK && cached > 0 &&
      (rc = GW_JT_PUT(b, ",\"prompt_tokens_details\":{\"cached_tokens\":")) == GW_OK) {
    rc = gw_jt_put_int(b, cached);
    if (rc == GW_OK)
      rc = gw_buf_appendc(b, '}');
  }
  return rc == GW_OK ? gw_buf_appendc(b, '}') : rc;
}

int gw_jt_chunk_head(gw_buf *b, const char *id, long long created, const char *model) {
  int rc = GW_JT_PUT(b, "{\"id\":");
  if (rc == GW_OK)
    rc = gw_jt_put_cstr(b, id);
  if (rc == GW_OK)
    rc = GW_JT_PUT(b, ",\"object\":\"chat.completion.chunk\",\"created\":");
  if (rc == GW_OK)
    rc = gw_jt_put_int(b, created);
  if (rc == GW_OK)
    rc = GW_JT_PUT(b, ",\"model\":");
  if (rc == GW_OK)
    rc = gw_jt_put_cstr(b, model);
  return rc == GW_OK ? GW_JT_PUT(b, ",\"choices\":") : rc;
}

int gw_jt_chunk_open(gw_buf *b, const char *id, long long created, const char *model) {
  int rc = gw_jt_chunk_head(b, id, created, model);
  return rc == GW_OK ? GW_JT_PUT(b, "[{\"index\":0,\"delta\":") : rc;
}

int gw_jt_chunk_close(gw_buf *b, const char *finish) {
  int rc = GW_JT_PUT(b, ",\"finish_reason\":");
  if (rc == GW_OK)
    rc = finish ? gw_jt_put_cstr(b, finish) : GW_JT_PUT(b, "null");
  return rc == GW_OK ? GW_JT_PUT(b, ",\"logprobs\":null}]}") : rc;
}
