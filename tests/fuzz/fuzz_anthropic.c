/* libFuzzer target for the Anthropic translations (provider_anthropic.c):
 * what an upstream sends is untrusted, and a request carries whatever a
 * client wrote. The input is read as JSON documents, one per line: each goes
 * through the stream translator (one state for the whole input, as the
 * events of one stream), the first line through the message translator and
 * the request translator too. Whatever they write must be one JSON object
 * (jansson reads it back), and an accepted message must carry its id and
 * model through unchanged. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/status.h"
#include "pipeline/provider_anthropic.h"
#include "transcoder/json_lite.h"

static json_t *must_be_object(const gw_buf *b) {
  json_error_t e;
  json_t *j = json_loadb(b->data, b->len, 0, &e);
  if (!json_is_object(j))
    abort(); /* the translation wrote something that is not a JSON object */
  return j;
}

static void message(const gw_jval *v) {
  gw_buf out;
  gw_buf_init(&out, 1 << 22);
  if (gw_anthropic_response(v, 1700000000, &out) == GW_OK) {
    json_t *j = must_be_object(&out);
    const gw_jval *id = gw_json_lite_get(v, "id", 2), *model = gw_json_lite_get(v, "model", 5);
    const char *jid = json_string_value(json_object_get(j, "id"));
    const char *jmodel = json_string_value(json_object_get(j, "model"));
    if (!jid || !jmodel || strlen(jid) != id->len || memcmp(jid, id->u.str, id->len) != 0 ||
        strlen(jmodel) != model->len || memcmp(jmodel, model->u.str, model->len) != 0)
      abort();
    json_decref(j);
  }
  gw_buf_release(&out);
}

static void request(const gw_jval *v, gw_arena *a) {
  gw_buf out;
  gw_buf_init(&out, 1 << 22);
  char err[256] = "";
  int rc = gw_anthropic_request(v, NULL, true, a, &out, err, sizeof err);
  if (rc == GW_OK)
    json_decref(must_be_object(&out));
  else if (rc == GW_ERR_INVALID && !err[0])
    abort(); /* a refusal says why */
  gw_buf_release(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  gw_arena *a = gw_arena_new(0, 0);
  gw_anthropic_stream s;
  gw_anthropic_stream_init(&s, 7, size & 1);
  const char *p = (const char *)data, *end = p + size;
  for (int line = 0; p < end; line++) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    const gw_jval *v = NULL;
    gw_json_lite_error e;
    if (gw_json_lite_parse(p, n, a, 0, 0, &v, &e) == GW_OK && v->type == GW_JVAL_OBJECT) {
      if (line == 0) {
        message(v);
        request(v, a);
      }
      gw_buf chunk;
      gw_buf_init(&chunk, 1 << 22);
      if (gw_anthropic_stream_event(&s, v, &chunk) == GW_OK && chunk.len)
        json_decref(must_be_object(&chunk));
      else if (chunk.len)
        abort(); /* a failed event appends nothing */
      gw_buf_release(&chunk);
    }
    p += n + (nl ? 1 : 0);
  }
  gw_arena_free(a);
  return 0;
}
