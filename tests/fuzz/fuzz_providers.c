/* libFuzzer target for the translating providers, Anthropic
 * (provider_anthropic.c), Gemini (provider_gemini.c) and Bedrock
 * (provider_bedrock.c; an event's type is its "type" member): what an upstream
 * sends is untrusted, and a request carries whatever a client wrote. The
 * input is read as JSON documents, one per line: each goes through both
 * stream translators (one state each for the whole input, as the events of
 * one stream), the first line through the answer and request translators
 * too. Whatever they write must be one JSON object (json_lite reads it back),
 * a refusal must say why, and an accepted Anthropic message must carry its
 * id and model through unchanged. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/status.h"
#include "pipeline/provider_anthropic.h"
#include "pipeline/provider_bedrock.h"
#include "pipeline/provider_gemini.h"
#include "transcoder/json_lite.h"

/* What a translation wrote: one JSON object (json_lite reads it back; it
 * takes numbers past int64, which a translation may copy as written). */
static const gw_jval *must_be_object(const gw_buf *b, gw_arena *a) {
  const gw_jval *v = NULL;
  gw_json_lite_error e;
  if (!b->data || gw_json_lite_parse(b->data, b->len, a, 0, 0, &v, &e) != GW_OK ||
      v->type != GW_JVAL_OBJECT)
    abort(); /* the translation wrote something that is not a JSON object */
  return v;
}

static bool same_str(const gw_jval *x, const gw_jval *y) {
  return x && y && x->type == GW_JVAL_STRING && y->type == GW_JVAL_STRING && x->len == y->len &&
         memcmp(x->u.str, y->u.str, x->len) == 0;
}

static void message(const gw_jval *v, gw_arena *a) {
  gw_buf out;
  gw_buf_init(&out, 1 << 22);
  if (gw_anthropic_response(v, 1700000000, &out) == GW_OK) {
    const gw_jval *j = must_be_object(&out, a);
    if (!same_str(gw_json_lite_get(j, "id", 2), gw_json_lite_get(v, "id", 2)) ||
        !same_str(gw_json_lite_get(j, "model", 5), gw_json_lite_get(v, "model", 5)))
      abort();
  }
  gw_buf_release(&out);
}

static void request(const gw_jval *v, gw_arena *a) {
  gw_buf out;
  gw_buf_init(&out, 1 << 22);
  char err[256] = "";
  int rc = gw_anthropic_request(v, NULL, true, a, &out, err, sizeof err);
  if (rc == GW_OK)
    must_be_object(&out, a);
  else if (rc == GW_ERR_INVALID && !err[0])
    abort(); /* a refusal says why */
  gw_buf_release(&out);
}

static void gemini(const gw_jval *v, gw_arena *a) {
  gw_buf out;
  gw_buf_init(&out, 1 << 22);
  if (gw_gemini_response(v, "id", "model", 1700000000, &out) == GW_OK)
    must_be_object(&out, a);
  gw_buf_reset(&out);
  char err[300] = "";
  int rc = gw_gemini_request(v, a, &out, err, sizeof err);
  if (rc == GW_OK)
    must_be_object(&out, a);
  else if (rc == GW_ERR_INVALID && !err[0])
    abort();
  gw_buf_release(&out);
}

static void bedrock(const gw_jval *v, gw_arena *a) {
  gw_buf out;
  gw_buf_init(&out, 1 << 22);
  int rc = gw_bedrock_response(v, "id", "model", 1700000000, &out);
  if (rc == GW_OK)
    must_be_object(&out, a);
  else if (out.len)
    abort(); /* a refused answer leaves nothing */
  gw_buf_reset(&out);
  char err[300] = "";
  rc = gw_bedrock_request(v, a, &out, err, sizeof err);
  if (rc == GW_OK)
    must_be_object(&out, a);
  else if (rc == GW_ERR_INVALID && !err[0])
    abort();
  gw_buf_release(&out);
}

/* One streamed event or end through |fn|: a chunk must be one object, a
 * failure appends nothing. */
static void chunk_ok(int rc, gw_buf *chunk, gw_arena *a) {
  if (rc == GW_OK && chunk->len)
    must_be_object(chunk, a);
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
  gw_bedrock_stream br;
  gw_bedrock_stream_init(&br, "id", "model", 7, size & 4);
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
        message(v, a);
        request(v, a);
        gemini(v, a);
        bedrock(v, a);
      }
      chunk_ok(gw_gemini_stream_event(&g, v, &gchunk), &gchunk, a);
      const char *type =
          gw_json_lite_get(v, "type", 4) && gw_json_lite_get(v, "type", 4)->type == GW_JVAL_STRING
              ? gw_json_lite_get(v, "type", 4)->u.str
              : "contentBlockDelta";
      int rc = gw_bedrock_stream_event(&br, type, v, &gchunk);
      if (rc == GW_ERR_INVALID && gchunk.len)
        abort(); /* a refused event leaves nothing */
      chunk_ok(rc, &gchunk, a);
      gw_buf chunk;
      gw_buf_init(&chunk, 1 << 22);
      if (gw_anthropic_stream_event(&s, v, &chunk) == GW_OK && chunk.len)
        must_be_object(&chunk, a);
      else if (chunk.len)
        abort(); /* a failed event appends nothing */
      gw_buf_release(&chunk);
    }
    p += n + (nl ? 1 : 0);
  }
  chunk_ok(gw_gemini_stream_end(&g, &gchunk), &gchunk, a);
  gw_buf_release(&gchunk);
  gw_arena_free(a);
  return 0;
}
