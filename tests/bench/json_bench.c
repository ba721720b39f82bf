/* Codec read benchmark: parses typical OpenAI documents into protobuf-c
 * messages with gw_json_to_pb, N times each, and prints the wall time per
 * parse. Under callgrind, --toggle-collect=bench_parse_once counts exactly
 * the parses (arena creation and release included):
 *
 *   make -C tests/bench json_bench BUILD=/work/main/build-rel
 *   valgrind --tool=callgrind --toggle-collect=bench_parse_once \
 *     tests/bench/bin/json_bench chat_request 1000
 *
 * bench_print_once does the same for writing a parsed document back.
 *
 * Usage: json_bench [document|all] [N]; documents: chat_request (~0.2 KB),
 * chat_response (~0.4 KB), prompt_100k (a chat request with a 100 KB
 * prompt), embeddings_1536 (an embeddings response with 1536 floats), and
 * three conversations (3-4.5 KB) of 16 turns in the shape of a chat app's
 * history (markdown answers: newlines, quotes in code): conv_md (English),
 * conv_utf8 (Chinese and French as UTF-8, as JavaScript's JSON.stringify
 * sends them) and conv_uesc (the same with every non-ASCII character a
 * \uXXXX escape, as Python's json.dumps sends them by default). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aigateway/v1/inference.pb-c.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/status.h"
#include "transcoder/json_pb.h"

/* The OpenAI adapters' read options (transcoder/openai.c). */
static const gw_json_opts read_opts = {.keep_unknown = 1, .bare_unions = 1};

static const char chat_request[] =
    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":\"You are a "
    "helpful assistant.\"},{\"role\":\"user\",\"content\":\"What is the capital of France? "
    "Answer in one word.\"}],\"temperature\":0.7,\"max_tokens\":64,\"stream\":false}";

static const char chat_response[] =
    "{\"id\":\"chatcmpl-AbC123xyz\",\"object\":\"chat.completion\",\"created\":1732600000,"
    "\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
    "\"assistant\",\"content\":\"Paris is the capital of France.\\nIt is also its largest "
    "city.\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{"
    "\"prompt_tokens\":27,\"completion_tokens\":12,\"total_tokens\":39,"
    "\"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":{"
    "\"reasoning_tokens\":0}},\"system_fingerprint\":\"fp_0ba0d124f1\"}";

/* Turns of the conversations: user questions and markdown answers. */
static const char *const turns_en[] = {
    "How do I read a file line by line in Python?",
    "You can iterate over the file object:\\n\\n```python\\nwith open(\\\"data.txt\\\") as f:\\n"
    "    for line in f:\\n        print(line.rstrip())\\n```\\n\\nThis reads one line at a time, "
    "so it works for **large files** too.",
    "And how do I skip empty lines?",
    "Add a check inside the loop:\\n\\n```python\\nfor line in f:\\n    if not line.strip():\\n"
    "        continue\\n    print(line)\\n```\\n\\n- `line.strip()` removes whitespace\\n- an "
    "empty "
    "string is falsy, so `continue` skips it",
};
static const char *const turns_zh[] = {
    "如何在 Python 中逐行读取文件？请给我一个简单的例子。",
    "你可以直接遍历文件对象：\\n\\n```python\\nwith open(\\\"données.txt\\\") as f:\\n    for "
    "ligne in f:\\n        print(ligne.rstrip())\\n```\\n\\n这样每次只读取一行，所以**大文件**"
    "也没有问题。Les fichiers très volumineux ne posent aucun problème.",
    "那么如何跳过空行呢？Et comment ignorer les lignes vides ?",
    "在循环里加一个判断：\\n\\n```python\\nfor ligne in f:\\n    if not ligne.strip():\\n"
    "        continue\\n```\\n\\n- `strip()` 会去掉空白字符\\n- 空字符串为假，所以 `continue` "
    "会跳过它。C'est très pratique !",
};

/* |s| (JSON string text, its escapes written) with every non-ASCII
 * character as a \uXXXX escape (a surrogate pair past U+FFFF) when |uesc|. */
static void put_text(gw_buf *b, const char *s, int uesc) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    if (!uesc || *p < 0x80) {
      gw_buf_append(b, p++, 1);
      continue;
    }
    uint32_t cp;
    int n = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : 2;
    cp = *p & (0x7f >> n);
    for (int i = 1; i < n; i++)
      cp = cp << 6 | (p[i] & 0x3f);
    p += n;
    if (cp >= 0x10000)
      gw_buf_printf(b, "\\u%04x\\u%04x", 0xd800 + ((cp - 0x10000) >> 10),
                    0xdc00 + ((cp - 0x10000) & 0x3ff));
    else
      gw_buf_printf(b, "\\u%04x", cp);
  }
}

/* A chat request: a system prompt and 16 turns taken from |turns| in turn. */
static char *conversation(const char *const *turns, int uesc, size_t *len) {
  gw_buf b;
  gw_buf_init(&b, 1 << 20);
  gw_buf_appends(&b,
                 "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":\"");
  put_text(&b,
           turns[0] == turns_en[0] ? "You are a helpful coding assistant. Answer in markdown."
                                   : "你是一个乐于助人的编程助手。请用 markdown 回答。",
           uesc);
  gw_buf_appends(&b, "\"}");
  for (int i = 0; i < 16; i++) {
    gw_buf_printf(&b, ",{\"role\":\"%s\",\"content\":\"", i % 2 ? "assistant" : "user");
    put_text(&b, turns[i % 4], uesc);
    gw_buf_appends(&b, "\"}");
  }
  gw_buf_appends(&b, "],\"temperature\":0.2,\"stream\":true}");
  char *out = strdup(b.data);
  *len = b.len;
  gw_buf_release(&b);
  return out;
}

struct doc {
  const char *name;
  const ProtobufCMessageDescriptor *desc;
  char *json;
  size_t len;
};

#define N_DOCS 7

static void build_docs(struct doc *d) {
  gw_buf b;
  d[0] = (struct doc){"chat_request", &aigateway__v1__chat_completion_request__descriptor,
                      strdup(chat_request), sizeof chat_request - 1};
  d[1] = (struct doc){"chat_response", &aigateway__v1__chat_completion_response__descriptor,
                      strdup(chat_response), sizeof chat_response - 1};

  /* 100 KB of prose, a newline and a quoted word now and then. */
  gw_buf_init(&b, 1 << 20);
  gw_buf_appends(&b, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"");
  static const char *words[] = {
      "the",  "quick", "brown",           "fox",       "jumps", "over",
      "lazy", "dog",   "\\\"gateway\\\"", "summarise", "this",  "document,"};
  uint32_t seed = 1;
  size_t start = b.len;
  while (b.len - start < 100 * 1024) {
    seed = seed * 1103515245 + 12345;
    gw_buf_appends(&b, words[(seed >> 16) % 12]);
    gw_buf_appends(&b, (seed >> 8) % 13 == 0 ? "\\n" : " ");
  }
  gw_buf_appends(&b, "\"}],\"max_tokens\":512}");
  d[2] = (struct doc){"prompt_100k", &aigateway__v1__chat_completion_request__descriptor,
                      strdup(b.data), b.len};

  /* 1536 floats as OpenAI prints them (up to 17 significant digits). */
  gw_buf_reset(&b);
  gw_buf_appends(&b, "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
                     "\"embedding\":[");
  for (int i = 0; i < 1536; i++) {
    seed = seed * 1103515245 + 12345;
    double x = ((double)(seed >> 8) / (1 << 24) - 0.5) * 0.08;
    gw_buf_printf(&b, "%s%.*g", i ? "," : "", 16 + (int)(seed % 2), x);
  }
  gw_buf_appends(&b, "]}],\"model\":\"text-embedding-3-small\",\"usage\":{\"prompt_tokens\":8,"
                     "\"total_tokens\":8}}");
  d[3] = (struct doc){"embeddings_1536", &aigateway__v1__embedding_response__descriptor,
                      strdup(b.data), b.len};
  gw_buf_release(&b);
  const ProtobufCMessageDescriptor *req = &aigateway__v1__chat_completion_request__descriptor;
  d[4] = (struct doc){"conv_md", req, NULL, 0};
  d[4].json = conversation(turns_en, 0, &d[4].len);
  d[5] = (struct doc){"conv_utf8", req, NULL, 0};
  d[5].json = conversation(turns_zh, 0, &d[5].len);
  d[6] = (struct doc){"conv_uesc", req, NULL, 0};
  d[6].json = conversation(turns_zh, 1, &d[6].len);
}

__attribute__((noinline)) int bench_parse_once(const struct doc *d) {
  gw_arena *a = gw_arena_new(0, 0);
  ProtobufCMessage *m = NULL;
  gw_json_error err;
  int rc = a ? gw_json_to_pb(d->desc, d->json, d->len, a, &read_opts, &m, &err) : GW_ERR_NOMEM;
  if (rc != GW_OK)
    fprintf(stderr, "%s: rc %d %s: %s\n", d->name, rc, err.param, err.message);
  gw_arena_free(a);
  return rc;
}

/* One write of |m| back to JSON, with the OpenAI adapters' write options
 * (--toggle-collect=bench_print_once counts it). */
static const gw_json_opts write_opts = {.int64_as_number = 1, .bare_unions = 1};
__attribute__((noinline)) int bench_print_once(const ProtobufCMessage *m) {
  gw_buf b;
  gw_buf_init(&b, 64u << 20);
  int rc = gw_pb_to_json(m, &write_opts, &b);
  gw_buf_release(&b);
  return rc;
}

/* Parses |d| once and writes it |n| times; ns per write. */
static double print_bench(const struct doc *d, long n) {
  gw_arena *a = gw_arena_new(0, 0);
  ProtobufCMessage *m = NULL;
  gw_json_error err;
  if (!a || gw_json_to_pb(d->desc, d->json, d->len, a, &read_opts, &m, &err) != GW_OK)
    return -1;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long k = 0; k < n; k++)
    if (bench_print_once(m) != GW_OK)
      return -1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  gw_arena_free(a);
  return ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / n;
}

int main(int argc, char **argv) {
  const char *which = argc > 1 ? argv[1] : "all";
  long n = argc > 2 ? atol(argv[2]) : 1000;
  struct doc docs[N_DOCS];
  build_docs(docs);
  for (int i = 0; i < N_DOCS; i++) {
    if (strcmp(which, "all") != 0 && strcmp(which, docs[i].name) != 0)
      continue;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long k = 0; k < n; k++)
      if (bench_parse_once(&docs[i]) != GW_OK)
        return 1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / n;
    printf("%-16s %7zu bytes  %10.0f ns/parse  %8.1f MB/s  %10.0f ns/write\n", docs[i].name,
           docs[i].len, ns, docs[i].len / ns * 1e3, print_bench(&docs[i], n));
  }
  for (int i = 0; i < N_DOCS; i++)
    free(docs[i].json);
  return 0;
}
