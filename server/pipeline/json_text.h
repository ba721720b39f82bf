/* JSON both ways for the providers that translate: NULL-safe readers of a
 * json_lite DOM (transcoder/json_lite.h: an arena, no malloc per node) and
 * writers of JSON text into a gw_buf. A translation reads what one side
 * sent and writes the other side's text straight into the body or the
 * chunk, with no tree in between.
 *
 * The writers return GW_OK or the buffer's error (GW_ERR_NOMEM,
 * GW_ERR_TOOBIG); a chain of them reads
 *
 *   int rc = GW_JT_PUT(b, "{\"id\":");
 *   if (rc == GW_OK)
 *     rc = gw_jt_put_str(b, id);
 */
#ifndef GW_PIPELINE_JSON_TEXT_H
#define GW_PIPELINE_JSON_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "core/numtext.h"
#include "core/status.h"
#include "transcoder/json_lite.h"

/* ---- reading -------------------------------------------------------------------- */

/* |len| bytes of JSON read into |a| (the reader's own depth and rules); NULL
 * when they are not JSON or memory ran out. */
static inline const gw_jval *gw_jt_parse(gw_arena *a, const char *data, size_t len) {
  const gw_jval *v = NULL;
  gw_json_lite_error je;
  return gw_json_lite_parse(data, len, a, 0, 0, &v, &je) == GW_OK ? v : NULL;
}

/* Member |key| of object |o|; NULL when |o| is NULL or not an object, or
 * has no such member. */
static inline const gw_jval *gw_jt_get(const gw_jval *o, const char *key, size_t n) {
  return o ? gw_json_lite_get(o, key, n) : NULL;
}
#define GW_JT_GET(o, key) gw_jt_get((o), (key), sizeof(key) - 1)

static inline bool gw_jt_is_str(const gw_jval *v) { return v && v->type == GW_JVAL_STRING; }
static inline bool gw_jt_is_object(const gw_jval *v) { return v && v->type == GW_JVAL_OBJECT; }
static inline bool gw_jt_is_true(const gw_jval *v) { return v && v->type == GW_JVAL_TRUE; }
static inline bool gw_jt_is_false(const gw_jval *v) { return v && v->type == GW_JVAL_FALSE; }
static inline bool gw_jt_is_number(const gw_jval *v) { return v && v->type == GW_JVAL_NUMBER; }

/* The string's bytes (NUL-terminated), NULL when |v| is not a string. */
static inline const char *gw_jt_str(const gw_jval *v) { return gw_jt_is_str(v) ? v->u.str : NULL; }

static inline bool gw_jt_str_is(const gw_jval *v, const char *lit, size_t n) {
  return gw_jt_is_str(v) && v->len == n && memcmp(v->u.str, lit, n) == 0;
}
#define GW_JT_STR_IS(v, lit) gw_jt_str_is((v), (lit), sizeof(lit) - 1)

/* An integer (no fraction, no exponent) that fits int64. */
static inline bool gw_jt_is_int(const gw_jval *v) {
  int64_t x;
  return gw_jt_is_number(v) && (v->flags & GW_JVAL_NUM_INT) && gw_json_lite_int64(v, &x) == GW_OK;
}

/* |v| as an integer; 0 when it is not one. */
static inline int64_t gw_jt_int(const gw_jval *v) {
  int64_t x;
  return gw_jt_is_number(v) && (v->flags & GW_JVAL_NUM_INT) && gw_json_lite_int64(v, &x) == GW_OK
             ? x
             : 0;
}
#define GW_JT_INT_OF(o, key) gw_jt_int(GW_JT_GET(o, key))

/* The number of elements of an array; 0 for anything else. */
static inline size_t gw_jt_array_len(const gw_jval *v) {
  return v && v->type == GW_JVAL_ARRAY ? v->len : 0;
}

/* The length of an OpenAI message content's text (see
 * gw_jt_put_content_text), before escaping. */
size_t gw_jt_content_text_len(const gw_jval *content);

/* The arguments of an OpenAI tool call's |function| (JSON text in a
 * string) parsed in |a|: GW_OK and |*out|, NULL when there are none (absent
 * or ""); GW_ERR_INVALID when they are not a JSON object. A key given twice
 * keeps its last value, as jansson reads it. */
int gw_jt_tool_arguments(const gw_jval *function, gw_arena *a, const gw_jval **out);

/* ---- turns ------------------------------------------------------------------------ */

/* The side an OpenAI message takes for a provider that keeps the system
 * prompt apart and wants user and assistant turns to alternate. */
typedef enum { GW_JT_SYSTEM, GW_JT_USER, GW_JT_ASSISTANT } gw_jt_role;

/* A system or developer message. */
bool gw_jt_is_system(const gw_jval *m);

/* What a turn is written with: the buffer, the turns written so far (for
 * separators), the arena for parsing tool-call arguments, and where a
 * refusal says why. */
typedef struct gw_jt_writer {
  gw_buf *b;
  size_t n;
  gw_arena *a;
  char *err;
  size_t errlen;
} gw_jt_writer;

/* Called for each turn: messages [from, to) of |msgs|, the system ones among
 * them to be skipped (gw_jt_is_system). Returns GW_OK or an error, which
 * ends the walk. */
typedef int (*gw_jt_turn_fn)(gw_jt_writer *w, const gw_jval *msgs, size_t from, size_t to,
                             gw_jt_role side);

/* Walks OpenAI |msgs| as turns: consecutive messages on one side (user and
 * tool messages are the user's, assistant ones the assistant's) share a
 * turn; system and developer messages are left to the caller and do not
 * break one. GW_ERR_INVALID with w->err for a message without a role, with
 * a role |provider| does not take ("message role %s is not supported by
 * <provider>"), or, when |tool_needs_id|, a tool message without
 * tool_call_id; else what |turn| returned. */
int gw_jt_turns(const gw_jval *msgs, const char *provider, bool tool_needs_id, gw_jt_turn_fn turn,
                gw_jt_writer *w);

/* An OpenAI tool call |tc| (of an assistant message): its id, function name
 * and arguments (parsed in |a|, NULL when there are none). GW_OK, or
 * GW_ERR_INVALID with |err| when the arguments are not a JSON object, there
 * is no id (when |need_id|) or no function name. */
int gw_jt_tool_call(const gw_jval *tc, gw_arena *a, bool need_id, const gw_jval **id,
                    const gw_jval **name, const gw_jval **args, char *err, size_t errlen);

/* How a vendor writes a tool call back into its history: |open|, then (when
 * |after_id| is set) the call's id and |after_id|, the function name,
 * |after_name|, the arguments as an object, |close|. */
typedef struct gw_jt_call_shape {
  const char *open, *after_id, *after_name, *close;
} gw_jt_call_shape;

/* How a vendor declares a tool: |open|, the function name, its description
 * (when a string) after ,"description":, then |schema_key| and the
 * parameters object, or |no_schema| when there is none (NULL: the key is
 * left out too), |close|. */
typedef struct gw_jt_tool_shape {
  const char *open, *schema_key, *no_schema, *close;
} gw_jt_tool_shape;

/* The request's |tools| (OpenAI function tools) in |shape|, comma-separated
 * (the caller writes the list around them). GW_ERR_INVALID with |err| when
 * a tool has no function name. */
int gw_jt_put_tools(gw_buf *b, const gw_jval *tools, const gw_jt_tool_shape *shape, char *err,
                    size_t errlen);

/* Each of |calls| (an assistant message's tool_calls) checked with
 * gw_jt_tool_call (an id needed when the shape writes one) and written in
 * |shape|, each after a separator counted in |*n|. */
int gw_jt_put_tool_calls(gw_buf *b, const gw_jval *calls, const gw_jt_call_shape *shape, size_t *n,
                         gw_arena *a, char *err, size_t errlen);

/* ---- writing -------------------------------------------------------------------- */

#define GW_JT_PUT(b, lit) gw_buf_append((b), (lit), sizeof(lit) - 1)

static inline int gw_jt_put_int(gw_buf *b, int64_t v) {
  char t[GW_NUMTEXT_MAX];
  return gw_buf_append(b, t, gw_numtext_i64(v, t));
}

/* A string value of the DOM as a JSON string. */
static inline int gw_jt_put_str(gw_buf *b, const gw_jval *v) {
  return gw_buf_append_json_string(b, v->u.str, v->len);
}

static inline int gw_jt_put_cstr(gw_buf *b, const char *s) {
  return gw_buf_append_json_string(b, s, strlen(s));
}

/* A comma before every element of a list but the first (*n counts them). */
static inline int gw_jt_sep(gw_buf *b, size_t *n) {
  return (*n)++ ? gw_buf_appendc(b, ',') : GW_OK;
}

/* |v| as compact JSON text, numbers as their source text. */
int gw_jt_put_value(gw_buf *b, const gw_jval *v);

/* ---- OpenAI's side of a translation ---- */

/* OpenAI's usage object; prompt_tokens_details only when |cached| > 0. */
int gw_jt_put_usage(gw_buf *b, int64_t prompt, int64_t completion, int64_t cached);

/* A chat.completion.chunk up to and with "choices":. */
int gw_jt_chunk_head(gw_buf *b, const char *id, long long created, const char *model);
/* ... and its one choice up to "delta": (the caller writes the delta) ... */
int gw_jt_chunk_open(gw_buf *b, const char *id, long long created, const char *model);
/* ... and after the delta, its finish_reason (NULL: null) to the end. */
int gw_jt_chunk_close(gw_buf *b, const char *finish);

/* An upstream's tool input (an object, or NULL: {}) as OpenAI's
 * "arguments": a JSON string holding its compact text. */
int gw_jt_put_args_string(gw_buf *b, const gw_jval *input);

/* Tool-call arguments (gw_jt_tool_call) as an object: |args|, or {}. */
static inline int gw_jt_put_args(gw_buf *b, const gw_jval *args) {
  return args ? gw_jt_put_value(b, args) : gw_buf_append(b, "{}", 2);
}

/* The text of an OpenAI message content as a JSON string: the string
 * itself, or the "text" of its parts joined ("" for anything else). */
int gw_jt_put_content_text(gw_buf *b, const gw_jval *content);

#endif
