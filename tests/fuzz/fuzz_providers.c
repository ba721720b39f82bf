/* libFuzzer target for the translating providers, Anthropic
 * (provider_anthropic.c) and Gemini (provider_gemini.c): what an upstream
 * sends is untrusted, and a request carries whatever a client wrote. The
 * input is read as JSON documents, one per line: each goes through both
 * stream translators (one state each for the whole input, as the events of
 * one stream), the first line through the answer and request translators
 * too. Whatever they write must be one JSON object (jansson reads it back),
 * a refusal must say why, and an accepted Anthropic message must carry its
 * id and model through unchanged. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/status.h"
#include "pipeline/provider_anthropic.h"
#include "pipeline/provider_gemini.h"
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

static void gemini(const gw_jval *v, gw_arena *a) {
  gw_buf out;
  gw_buf_init(&out, 1 << 22);
  if (gw_gemini_response(v, "id", "model", 1700000000, &out) == GW_OK)
    json_decref(must_be_object(&out));
  gw_buf_reset(&out);
  char err[300] = "";
  int rc = gw_gemini_request(v, a, &out, err, sizeof err);
  if (rc == GW_OK)
    json_decref(must_be_object(&out));
  else if (rc == GW_ERR_INVALID && !err[0])
    abort();
  gw_buf_release(&out);
}

/* One streamed event or end through |fn|: a chunk must be one object, a
 * failure appends nothing. */
static void chunk_ok(int rc, gw_buf *chunk) {
  if (rc == GW_OK && chunk->len)
    json_decref(must_be_object(chunk));
  else if (rc != GW_OK && chunk->len)
    abort();
  gw_buf_reset(chunk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  gw_arena *a = gw_arena_new(0, 0);
  gw_anthropic_stream s;
  gw_anthropic_stream_init(&s, 7, size & 1);
  gw_gemini_stream g;
  gw_gemini_stream_init(&g, "id", "model", 7, size & 2);
  gw_buf gchunk;
  gw_buf_init(&gchunk, 1 << 22);
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
        gemini(v, a);
      }
      chunk_ok(gw_gemini_stream_event(&g, v, &gchunk), &gchunk);
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
  chunk_ok(gw_gemini_stream_end(&g, &gchunk), &gchunk);
  gw_buf_release(&gchunk);
  gw_arena_free(a);
  return 0;
}
