/* Embeddings answers in base64 (what the official SDKs ask for, and so what the
 * gateway asks upstreams for): the first way (jansson: decode, a DOM of reals,
 * print, then the codec parse of that text) against the codec reading the
 * base64 straight into the float field (gw_json_opts.floats_base64), on 1,536
 * random floats; checks both give the exact floats back.
 *   make -C tests/bench emb_b64_bench BUILD=/work/main/build && tests/bench/bin/emb_b64_bench */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>
#include "aigateway/v1/inference.pb-c.h"
#include "core/alloc.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/status.h"
#include "transcoder/json_pb.h"
/* |s| (standard base64, padded) as floats, malloc'd. */
static float *decode_floats(const char *s, size_t n, size_t *count) {
  unsigned char *b = malloc(n / 4 * 3 + 4);
  int len = EVP_DecodeBlock(b, (const unsigned char *)s, (int)n);
  if (len < 0) {
    free(b);
    return NULL;
  }
  len -= (n > 0 && s[n - 1] == '=') + (n > 1 && s[n - 2] == '=');
  *count = (size_t)len / 4;
  return (float *)b;
}
static int old_way(const char *json, size_t len, gw_buf *out) { /* the previous jansson code */
  json_t *root = json_loadb(json, len, 0, NULL);
  json_t *data = root ? json_object_get(root, "data") : NULL;
  int rc = 1;
  size_t i;
  json_t *item;
  json_array_foreach(data, i, item) {
    json_t *emb = json_object_get(item, "embedding");
    if (!json_is_string(emb))
      continue;
    float *f = NULL;
    size_t nf = 0;
    f = decode_floats(json_string_value(emb), json_string_length(emb), &nf);
    rc = f ? GW_OK : GW_ERR_INVALID;
    json_t *arr = json_array();
    for (size_t k = 0; k < nf; k++)
      json_array_append_new(arr, json_real((double)f[k]));
    free(f);
    json_object_set_new(item, "embedding", arr);
  }
  char *s = json_dumps(root, JSON_COMPACT);
  gw_buf_appends(out, s);
  free(s);
  json_decref(root);
  return rc;
}
static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}
int main(void) {
  int n = 1536;
  float *v = malloc(n * 4);
  srand(1);
  for (int i = 0; i < n; i++)
    v[i] = ((float)rand() / RAND_MAX - 0.5f) * 0.1f;
  char *b64 = malloc(n * 4 * 2);
  EVP_EncodeBlock((unsigned char *)b64, (unsigned char *)v, n * 4);
  char *json = malloc(n * 8 + 512);
  sprintf(json,
          "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,\"embedding\":\"%"
          "s\"}],\"model\":\"m\",\"usage\":{\"prompt_tokens\":8,\"total_tokens\":8}}",
          b64);
  size_t len = strlen(json);
  static const gw_json_opts ro = {.keep_unknown = 1, .bare_unions = 1};
  static const gw_json_opts direct = {.keep_unknown = 1, .bare_unions = 1, .floats_base64 = 1};
  for (int way = 0; way < 2; way++) {
    int N = 300;
    double t0 = now();
    for (int k = 0; k < N; k++) {
      gw_buf out;
      gw_buf_init(&out, 64 << 20);
      const char *text = json;
      size_t text_len = len;
      if (!way) {
        old_way(json, len, &out);
        text = out.data;
        text_len = out.len;
      }
      gw_arena *a = gw_arena_new(0, 0);
      ProtobufCMessage *m;
      gw_json_error e;
      if (gw_json_to_pb(&aigateway__v1__embedding_response__descriptor, text, text_len, a,
                        way ? &direct : &ro, &m, &e) != GW_OK) {
        printf("parse fail %s\n", e.message);
        return 1;
      }
      Aigateway__V1__EmbeddingResponse *r = (void *)m;
      if (k == 0)
        for (int i = 0; i < n; i++)
          if (r->data[0]->n_embedding != (size_t)n || r->data[0]->embedding[i] != v[i]) {
            printf("way %d mismatch at %d\n", way, i);
            return 1;
          }
      gw_arena_free(a);
      gw_buf_release(&out);
    }
    printf("%s: %.1f us per 1536-float base64 answer, exact\n",
           way ? "codec reads base64 (floats_base64)" : "jansson rewrite + codec parse",
           (now() - t0) / N * 1e6);
  }
}
