/* OpenAI request checks, response shaping and error objects. */
#include "transcoder/openai.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__)
#include <tmmintrin.h>
#endif

#include "aigateway/v1/inference.pb-c.h"
#include "core/alloc.h"
#include "core/numtext.h"

const gw_json_opts gw_openai_read_opts = {.keep_unknown = 1, .bare_unions = 1};
const gw_json_opts gw_openai_write_opts = {.int64_as_number = 1, .bare_unions = 1};

/* ---- requests ------------------------------------------------------------- */

typedef struct required {
  const ProtobufCMessageDescriptor *desc;
  const char *fields[3];
} required;

static bool field_present(const ProtobufCMessage *m, const char *name, gw_json_field_cache *cache) {
  const ProtobufCFieldDescriptor *f = gw_json_field_cached(cache, m->descriptor, name);
  if (!f)
    return false;
  const char *p = (const char *)m + f->offset;
  if (f->label == PROTOBUF_C_LABEL_REPEATED)
    return *(const size_t *)((const char *)m + f->quantifier_offset) > 0;
  switch (f->type) {
  case PROTOBUF_C_TYPE_STRING: {
    const char *s = *(const char *const *)p;
    return s && *s;
  }
  case PROTOBUF_C_TYPE_MESSAGE: return *(const void *const *)p != NULL;
  default: return true;
  }
}

int gw_openai_parse_request(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                            gw_arena *arena, ProtobufCMessage **out, gw_json_error *err) {
  static const required table[] = {
      {&aigateway__v1__chat_completion_request__descriptor, {"model", "messages"}},
      {&aigateway__v1__completion_request__descriptor, {"model", "prompt"}},
      {&aigateway__v1__embedding_request__descriptor, {"model", "input"}},
  };
  size_t n = len;
  while (n > 0 &&
         (json[n - 1] == ' ' || json[n - 1] == '\n' || json[n - 1] == '\r' || json[n - 1] == '\t'))
    n--;
  if (n == 0)
    json = "{}", len = 2;
  ProtobufCMessage *msg = NULL;
  int rc = gw_json_to_pb(desc, json, len, arena, &gw_openai_read_opts, &msg, err);
  if (rc != GW_OK)
    return rc;
  static _Thread_local gw_json_field_cache cache[3][3]; /* per table entry */
  _Static_assert(sizeof table / sizeof table[0] <= 3, "one cache row per table entry");
  for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
    if (table[i].desc != desc)
      continue;
    for (size_t k = 0; k < 3 && table[i].fields[k]; k++)
      if (!field_present(msg, table[i].fields[k], &cache[i][k])) {
        if (err) {
          snprintf(err->param, sizeof err->param, "%s", table[i].fields[k]);
          snprintf(err->message, sizeof err->message, "you must provide a %s parameter",
                   table[i].fields[k]);
        }
        return GW_ERR_INVALID;
      }
  }
  *out = msg;
  return GW_OK;
}

/* ---- responses -------------------------------------------------------------- */

/* What a member gets when the upstream left it out: OpenAI's schema
 * requires it (possibly as null). */
typedef enum { A_NULL, A_ZERO, A_STR, A_OBJ, A_ARR, A_MODEL, A_ID, A_NOW, A_FINISH } amode;

typedef struct absent_rule {
  const ProtobufCMessageDescriptor *desc;
  const char *field;
  amode mode;
  const char *s;
} absent_rule;

#define D(x) &aigateway__v1__##x##__descriptor
static const absent_rule rules[] = {
    {D(chat_completion_response), "id", A_ID, "chatcmpl-"},
    {D(chat_completion_response), "object", A_STR, "chat.completion"},
    {D(chat_completion_response), "created", A_NOW, NULL},
    {D(chat_completion_response), "model", A_MODEL, NULL},
    {D(chat_completion_response), "choices", A_ARR, NULL},
    {D(chat_choice), "index", A_ZERO, NULL},
    {D(chat_choice), "message", A_OBJ,
     "{\"role\":\"assistant\",\"content\":null,\"refusal\":null}"},
    {D(chat_choice), "finish_reason", A_STR, "stop"},
    {D(chat_choice), "logprobs", A_NULL, NULL},
    {D(chat_message), "role", A_STR, "assistant"},
    {D(chat_message), "content", A_NULL, NULL},
    {D(chat_message), "refusal", A_NULL, NULL},
    {D(choice_logprobs), "content", A_NULL, NULL},
    {D(choice_logprobs), "refusal", A_NULL, NULL},
    {D(token_logprob), "token", A_STR, ""},
    {D(token_logprob), "logprob", A_ZERO, NULL},
    {D(token_logprob), "bytes", A_NULL, NULL},
    {D(token_logprob), "top_logprobs", A_ARR, NULL},
    {D(tool_call), "type", A_STR, "function"},
    {D(chat_completion_chunk), "id", A_ID, "chatcmpl-"},
    {D(chat_completion_chunk), "object", A_STR, "chat.completion.chunk"},
    {D(chat_completion_chunk), "created", A_NOW, NULL},
    {D(chat_completion_chunk), "model", A_MODEL, NULL},
    {D(chat_completion_chunk), "choices", A_ARR, NULL},
    {D(chunk_choice), "index", A_ZERO, NULL},
    {D(chunk_choice), "delta", A_OBJ, NULL},
    {D(chunk_choice), "finish_reason", A_NULL, NULL},
    {D(usage), "prompt_tokens", A_ZERO, NULL},
    {D(usage), "completion_tokens", A_ZERO, NULL},
    {D(usage), "total_tokens", A_ZERO, NULL},
    {D(completion_response), "id", A_ID, "cmpl-"},
    {D(completion_response), "object", A_STR, "text_completion"},
    {D(completion_response), "created", A_NOW, NULL},
    {D(completion_response), "model", A_MODEL, NULL},
    {D(completion_response), "choices", A_ARR, NULL},
    {D(completion_choice), "text", A_STR, ""},
    {D(completion_choice), "index", A_ZERO, NULL},
    {D(completion_choice), "logprobs", A_NULL, NULL},
    {D(completion_choice), "finish_reason", A_FINISH, NULL},
    {D(embedding_response), "object", A_STR, "list"},
    {D(embedding_response), "model", A_MODEL, NULL},
    {D(embedding_response), "data", A_ARR, NULL},
    {D(embedding_response), "usage", A_OBJ, "{\"prompt_tokens\":0,\"total_tokens\":0}"},
    {D(embedding_usage), "prompt_tokens", A_ZERO, NULL},
    {D(embedding_usage), "total_tokens", A_ZERO, NULL},
    {D(embedding), "object", A_STR, "embedding"},
    {D(embedding), "index", A_ZERO, NULL},
    {D(embedding), "embedding", A_ARR, NULL},
    {D(list_models_response), "object", A_STR, "list"},
    {D(list_models_response), "data", A_ARR, NULL},
    {D(model), "id", A_STR, ""},
    {D(model), "object", A_STR, "model"},
    {D(model), "created", A_ZERO, NULL},
    {D(model), "owned_by", A_STR, "system"},
};
#undef D

static const ProtobufCMessageDescriptor *const shaped[] = {
    &aigateway__v1__chat_completion_response__descriptor,
    &aigateway__v1__chat_completion_chunk__descriptor,
    &aigateway__v1__completion_response__descriptor,
    &aigateway__v1__embedding_response__descriptor,
    &aigateway__v1__list_models_response__descriptor,
    &aigateway__v1__model__descriptor,
};

bool gw_openai_is_response_type(const ProtobufCMessageDescriptor *desc) {
  for (size_t i = 0; i < sizeof(shaped) / sizeof(shaped[0]); i++)
    if (shaped[i] == desc)
      return true;
  return false;
}

typedef struct hook_ctx {
  const gw_openai_out *o;
  bool stream;
  gw_buf scratch; /* the text a hook call returns */
} hook_ctx;

static const char *scratch_json_string(hook_ctx *h, const char *a, const char *b) {
  gw_buf_reset(&h->scratch);
  char tmp[512];
  snprintf(tmp, sizeof tmp, "%s%s", a, b ? b : "");
  if (gw_buf_append_json_string(&h->scratch, tmp, strlen(tmp)) != GW_OK)
    return "\"\"";
  return h->scratch.data;
}

/* Standard base64's digit for a value 0-63, and the two digits of a 12-bit
 * value, first in the low byte (text order on a little-endian host): a
 * group of three bytes is two look-ups instead of four. */
#define B64_DIGIT(x)                                                                               \
  ((x) < 26 ? 'A' + (x) : (x) < 52 ? 'a' + (x)-26 : (x) < 62 ? '0' + (x)-52 : (x) == 62 ? '+' : '/')
#define B64_PAIR(i) (uint16_t)(B64_DIGIT((i) >> 6) | B64_DIGIT((i)&63) << 8)
#define B64_PAIR4(i) B64_PAIR(i), B64_PAIR((i) + 1), B64_PAIR((i) + 2), B64_PAIR((i) + 3)
#define B64_PAIR16(i) B64_PAIR4(i), B64_PAIR4((i) + 4), B64_PAIR4((i) + 8), B64_PAIR4((i) + 12)
#define B64_PAIR64(i)                                                                              \
  B64_PAIR16(i), B64_PAIR16((i) + 16), B64_PAIR16((i) + 32), B64_PAIR16((i) + 48)
#define B64_PAIR256(i)                                                                             \
  B64_PAIR64(i), B64_PAIR64((i) + 64), B64_PAIR64((i) + 128), B64_PAIR64((i) + 192)
#define B64_PAIR1024(i)                                                                            \
  B64_PAIR256(i), B64_PAIR256((i) + 256), B64_PAIR256((i) + 512), B64_PAIR256((i) + 768)
static const uint16_t b64_pairs[4096] = {B64_PAIR1024(0), B64_PAIR1024(1024), B64_PAIR1024(2048),
                                         B64_PAIR1024(3072)};

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define B64_BLOCKS 1
/* Twelve bytes to sixteen digits per step, with SSSE3 (asked at run time):
 * each group of three bytes a b c is spread over a 32-bit lane as b a c b,
 * where the four 6-bit values sit at bits 10, 4, 22 and 16; two masks and
 * two 16-bit multiplies (one keeping the high half) move each to the bottom
 * of its own byte. A digit is its value plus an offset chosen by range:
 * the values from 52 on map to 1-12 by a saturating subtraction, those
 * under 26 to 13, the rest to 0, and a look-up gives the offset. Returns
 * the bytes taken (a multiple of 12, each step reading 16 of |p|). */
__attribute__((target("ssse3"))) static size_t b64_encode_blocks(const unsigned char *p,
                                                                 size_t bytes, char *o) {
  const __m128i spread = _mm_setr_epi8(1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10);
  const __m128i offset =
      _mm_setr_epi8(71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -19, -16, 65, 0, 0);
  size_t i = 0;
  for (; i + 16 <= bytes; i += 12, o += 16) {
    __m128i x = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + i)), spread);
    __m128i v02 =
        _mm_mulhi_epu16(_mm_and_si128(x, _mm_set1_epi32(0x0fc0fc00)), _mm_set1_epi32(0x04000040));
    __m128i v13 =
        _mm_mullo_epi16(_mm_and_si128(x, _mm_set1_epi32(0x003f03f0)), _mm_set1_epi32(0x01000010));
    __m128i v = _mm_or_si128(v02, v13);
    __m128i range =
        _mm_or_si128(_mm_subs_epu8(v, _mm_set1_epi8(51)),
                     _mm_and_si128(_mm_cmpgt_epi8(_mm_set1_epi8(26), v), _mm_set1_epi8(13)));
    _mm_storeu_si128((__m128i *)o, _mm_add_epi8(v, _mm_shuffle_epi8(offset, range)));
  }
  return i;
}
#endif

/* Little-endian float32 in standard base64, as OpenAI encodes them, written
 * straight into the scratch buffer. On a little-endian host the floats'
 * memory is those bytes already. */
static const char *base64_floats(hook_ctx *h, const float *v, size_t n) {
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "base64_floats reads the floats' memory as little-endian bytes"
#endif
  const unsigned char *p = (const unsigned char *)v;
  size_t bytes = n * 4, i = 0;
  gw_buf *b = &h->scratch;
  gw_buf_reset(b);
  if (gw_buf_reserve(b, 4 * ((bytes + 2) / 3) + 2) != GW_OK)
    return "\"\"";
  char *o = b->data + b->len;
  *o++ = '"';
#ifdef B64_BLOCKS
  if (bytes >= 16 && __builtin_cpu_supports("ssse3")) {
    i = b64_encode_blocks(p, bytes, o);
    o += i / 3 * 4;
  }
#endif
  for (; i + 3 <= bytes; i += 3, o += 4) {
    uint32_t w;
    if (i + 4 <= bytes) { /* one load for the three bytes (and one more) */
      memcpy(&w, p + i, 4);
      w = __builtin_bswap32(w) >> 8;
    } else {
      w = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    }
    uint32_t c = b64_pairs[w >> 12] | (uint32_t)b64_pairs[w & 0xfff] << 16;
    memcpy(o, &c, 4); /* four characters, one store */
  }
  if (i < bytes) { /* one or two bytes left */
    uint32_t w = (uint32_t)p[i] << 16 | (i + 1 < bytes ? (uint32_t)p[i + 1] << 8 : 0);
    o[0] = (char)B64_DIGIT(w >> 18);
    o[1] = (char)B64_DIGIT((w >> 12) & 63);
    o[2] = i + 1 < bytes ? (char)B64_DIGIT((w >> 6) & 63) : '=';
    o[3] = '=';
    o += 4;
  }
  *o++ = '"';
  *o = '\0';
  b->len = (size_t)(o - b->data);
  return b->data;
}

/* The rule for a field, by its descriptor's address: the hook asks for every
 * member not printed of every object, and a scan of the table with strcmp
 * was ~3K instructions per chat completion. Built once, read-only after. */
#define RULE_SLOTS 256 /* a power of two, over twice the rules */
static struct {
  const ProtobufCFieldDescriptor *f;
  const absent_rule *r;
} rule_index[RULE_SLOTS];
static pthread_once_t rule_once = PTHREAD_ONCE_INIT;
/* The two members the hook changes when they are there (see hook), found
 * once with the index: a pointer compare per member instead of a strcmp. */
static const ProtobufCFieldDescriptor *embedding_member, *chunk_usage_member;

static size_t rule_slot(const ProtobufCFieldDescriptor *f) {
  return (size_t)((((uintptr_t)f >> 3) * 0x9E3779B97F4A7C15ull) >> 56) & (RULE_SLOTS - 1);
}

static void build_rule_index(void) {
  embedding_member = gw_json_field(&aigateway__v1__embedding__descriptor, "embedding");
  chunk_usage_member = gw_json_field(&aigateway__v1__chat_completion_chunk__descriptor, "usage");
  for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
    const ProtobufCFieldDescriptor *f = gw_json_field(rules[i].desc, rules[i].field);
    if (!f)
      continue; /* test_openai checks that every rule names a field */
    size_t k = rule_slot(f);
    while (rule_index[k].f && rule_index[k].f != f)
      k = (k + 1) & (RULE_SLOTS - 1);
    if (!rule_index[k].f) /* the first rule for a field wins, as in the table */
      rule_index[k].f = f, rule_index[k].r = &rules[i];
  }
}

/* (gw_openai_render has built the index.) */
static const absent_rule *rule_for(const ProtobufCFieldDescriptor *f) {
  for (size_t k = rule_slot(f);; k = (k + 1) & (RULE_SLOTS - 1)) {
    if (!rule_index[k].f)
      return NULL;
    if (rule_index[k].f == f)
      return rule_index[k].r;
  }
}

/* Every rule names a real field (for test_openai). */
bool gw_openai_rules_valid(void) {
  for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
    if (!gw_json_field(rules[i].desc, rules[i].field))
      return false;
  return true;
}

static const char *hook(void *arg, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                        int shown) {
  hook_ctx *h = arg;
  if (f == embedding_member && h->o->base64_embeddings) {
    const Aigateway__V1__Embedding *e = (const void *)m;
    return base64_floats(h, e->embedding, e->n_embedding);
  }
  if (f == chunk_usage_member && !h->o->include_usage)
    return ""; /* the client did not ask for usage */
  if (shown)
    return NULL;
  const absent_rule *r = rule_for(f);
  if (r) {
    switch (r->mode) {
    case A_NULL: return "null";
    case A_ZERO: return "0";
    case A_OBJ: return r->s ? r->s : "{}";
    case A_ARR: return "[]";
    case A_STR: return scratch_json_string(h, r->s, NULL);
    case A_MODEL: return scratch_json_string(h, h->o->model ? h->o->model : "unknown", NULL);
    case A_ID: return scratch_json_string(h, r->s, h->o->request_id ? h->o->request_id : "0");
    case A_FINISH: return h->stream ? "null" : "\"stop\"";
    case A_NOW:
      gw_buf_reset(&h->scratch);
      char t[GW_NUMTEXT_MAX];
      if (gw_buf_append(&h->scratch, t, gw_numtext_i64(h->o->created, t) + 1) != GW_OK)
        return "0";
      return h->scratch.data;
    }
  }
  return NULL;
}

int gw_openai_render(const ProtobufCMessage *msg, const gw_openai_out *o, gw_buf *out) {
  if (!gw_openai_is_response_type(msg->descriptor)) {
    gw_json_opts opts = {.int64_as_number = 1, .emit_defaults = 1};
    return gw_pb_to_json(msg, &opts, out);
  }
  if (msg->descriptor == &aigateway__v1__chat_completion_chunk__descriptor && !o->include_usage &&
      ((const Aigateway__V1__ChatCompletionChunk *)msg)->n_choices == 0)
    return 1; /* a usage-only chunk the client did not ask for */
  pthread_once(&rule_once, build_rule_index);
  hook_ctx h = {.o = o, .stream = o->stream};
  gw_buf_init(&h.scratch, 64 << 20);
  gw_json_opts opts = gw_openai_write_opts;
  opts.field_hook = hook;
  opts.hook_arg = &h;
  /* The hook changes a member that is there in two cases only (see hook). */
  if (msg->descriptor == &aigateway__v1__chat_completion_chunk__descriptor && !o->include_usage)
    opts.hook_shown = chunk_usage_member;
  else if (msg->descriptor == &aigateway__v1__embedding_response__descriptor &&
           o->base64_embeddings)
    opts.hook_shown = embedding_member;
  int rc = gw_pb_to_json(msg, &opts, out);
  gw_buf_release(&h.scratch);
  return rc;
}

/* ---- errors -------------------------------------------------------------------- */

int gw_openai_http_status(gw_status_code code) {
  static const int map[] = {200, 499, 500, 400, 504, 404, 409, 403, 429,
                            400, 409, 400, 501, 500, 503, 500, 401};
  return (unsigned)code < sizeof(map) / sizeof(map[0]) ? map[code] : 500;
}

const char *gw_openai_error_type(int http_status) {
  switch (http_status) {
  case 401: return "authentication_error";
  case 403: return "permission_error";
  case 404: return "invalid_request_error";
  case 429: return "rate_limit_error";
  default: return http_status >= 500 ? "server_error" : "invalid_request_error";
  }
}

int gw_openai_error_body(int http_status, const char *type, const char *code, const char *param,
                         const char *message, gw_buf *out) {
  size_t before = out->len;
  int rc = gw_buf_appends(out, "{\"error\":{\"message\":");
  if (!rc)
    rc = gw_buf_append_json_string(out, message ? message : "", message ? strlen(message) : 0);
  const char *t = type ? type : gw_openai_error_type(http_status);
  if (!rc)
    rc = gw_buf_appends(out, ",\"type\":");
  if (!rc)
    rc = gw_buf_append_json_string(out, t, strlen(t));
  if (!rc)
    rc = gw_buf_appends(out, ",\"param\":");
  if (!rc)
    rc = param ? gw_buf_append_json_string(out, param, strlen(param)) : gw_buf_appends(out, "null");
  if (!rc)
    rc = gw_buf_appends(out, ",\"code\":");
  if (!rc)
    rc = code ? gw_buf_append_json_string(out, code, strlen(code)) : gw_buf_appends(out, "null");
  if (!rc)
    rc = gw_buf_appends(out, "}}");
  if (rc) {
    out->len = before;
    if (out->data)
      out->data[before] = '\0';
  }
  return rc;
}
