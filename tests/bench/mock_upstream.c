/* A fast OpenAI-compatible mock upstream for the benchmarks (plain epoll).
 *
 *   mock_upstream PORT [THREADS]
 *   env MOCK_EVENTS (20)  chunks per SSE stream (then "data: [DONE]")
 *   env MOCK_EMB_TEXT=double  embeddings' numbers (not base64) as Python's json writes
 *       a float32 widened to a double (vLLM and other Python servers): up to 17 digits
 *
 * The model names the pace of a stream: "delay-<µs>" (listed: delay-1000,
 * delay-200000) waits that long between two chunks, any other model streams
 * all of them at once.
 *
 * Serves GET /v1/models, POST /v1/chat/completions (a fixed answer, or an SSE
 * stream when the body says "stream":true), POST /v1/completions and
 * POST /v1/embeddings (base64 vectors when the body says "base64"; 64 different vectors, each
 * thread sending them in turn, as a real model's answers differ), and Anthropic's
 * POST /v1/messages (the same answer as a Message object in Anthropic's documented wire
 * format; "stream":true: its event sequence, message_start, content_block_start, the chunks as
 * content_block_delta text_deltas, content_block_stop, message_delta, message_stop), Gemini's
 * POST /v1beta/models/<model>:generateContent (a GenerateContentResponse: candidates, parts,
 * finishReason, usageMetadata, modelVersion, responseId) and :streamGenerateContent?alt=sse (one
 * such response a chunk, the last with finishReason and the whole usage), and Azure OpenAI's
 * POST /openai/deployments/<deployment>/chat/completions?api-version=... (the chat answer with
 * Azure's prompt_filter_results and each choice's content_filter_results; streamed, Azure's first
 * chunk with empty choices and prompt_filter_results, then the chunks as OpenAI's). Answers are
 * prebuilt; each thread owns its epoll and its listener (SO_REUSEPORT), so the mock costs a few µs
 * per request and is never the bottleneck. Every SSE chunk's "id" carries the CLOCK_MONOTONIC
 * nanosecond at which it was written ("chatcmpl-<ns>"): the stream client subtracts it from the
 * arrival time to get each event's relay delay. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define INBUF (256 * 1024)

static int port, n_events = 20;

static const char models_body[] =
    "{\"object\":\"list\",\"data\":["
    "{\"id\":\"gpt-4o-mini\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"mock\"},"
    "{\"id\":\"text-embedding-3-small\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":"
    "\"mock\"},"
    "{\"id\":\"delay-1000\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"mock\"},"
    "{\"id\":\"delay-200000\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"mock\"}]}";
static const char chat_body[] =
    "{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":"
    "\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
    "\"Hello! How can I help you today?\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_"
    "tokens\":20,\"completion_tokens\":9,\"total_tokens\":29}}";
/* Anthropic Messages: the chat answer as a Message object. */
static const char msg_body[] =
    "{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":\"message\",\"role\":\"assistant\","
    "\"model\":\"claude-mock\",\"content\":[{\"type\":\"text\",\"text\":\"Hello! How can I help "
    "you today?\"}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":{\"input_"
    "tokens\":20,\"output_tokens\":9,\"cache_creation_input_tokens\":0,\"cache_read_input_"
    "tokens\":0}}";
/* Gemini: the chat answer as a GenerateContentResponse. */
static const char gemini_body[] =
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hello! How can I help you "
    "today?\"}],\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0,\"safetyRatings\":[{"
    "\"category\":\"HARM_CATEGORY_HARASSMENT\",\"probability\":\"NEGLIGIBLE\"}]}],"
    "\"usageMetadata\":{\"promptTokenCount\":20,\"candidatesTokenCount\":9,\"totalTokenCount\":"
    "29},\"modelVersion\":\"gemini-mock-001\",\"responseId\":\"resp-mock-1\"}";
/* Azure OpenAI: the chat answer with Azure's content-filter annotations. */
#define AZURE_FILTER                                                                               \
  "{\"hate\":{\"filtered\":false,\"severity\":\"safe\"},\"self_harm\":{\"filtered\":false,"        \
  "\"severity\":\"safe\"},\"sexual\":{\"filtered\":false,\"severity\":\"safe\"},\"violence\":{"    \
  "\"filtered\":false,\"severity\":\"safe\"}}"
static const char azure_body[] =
    "{\"id\":\"chatcmpl-azure\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":"
    "\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_azure\",\"prompt_filter_results\":[{"
    "\"prompt_index\":0,\"content_filter_results\":" AZURE_FILTER "}],\"choices\":[{\"index\":0,"
    "\"message\":{\"role\":\"assistant\",\"content\":\"Hello! How can I help you today?\"},"
    "\"finish_reason\":\"stop\",\"logprobs\":null,\"content_filter_results\":" AZURE_FILTER "}],"
    "\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":9,\"total_tokens\":29}}";
static const char compl_body[] =
    "{\"id\":\"cmpl-mock\",\"object\":\"text_completion\",\"created\":1700000000,\"model\":"
    "\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"text\":\"Hello!\",\"finish_reason\":\"stop\"}],"
    "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}";
/* Embeddings: EMB_VECTORS vectors of 256 floats, as numbers and in base64,
 * built at start. One vector sent every time would let the gateway's float
 * printer run on branches the CPU has learned (the same 256 numbers on every
 * request): ~30 ns a number against ~45 for numbers it has not seen. */
#define EMB_VECTORS 64
static char *resp_emb[EMB_VECTORS], *resp_emb64[EMB_VECTORS];
static size_t len_emb[EMB_VECTORS], len_emb64[EMB_VECTORS];
static __thread unsigned emb_next; /* the vector this thread sends next */
static char *resp_models, *resp_chat, *resp_msg, *resp_gemini, *resp_azure, *resp_compl, *resp_404;
static size_t len_models, len_chat, len_msg, len_gemini, len_azure, len_compl, len_404;

/* Whose wire format a connection's answers are in. */
enum wire { WIRE_OPENAI, WIRE_ANTHROPIC, WIRE_GEMINI, WIRE_AZURE };

static const char sse_head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                               "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";

typedef struct conn {
  int fd;
  size_t len;
  char *in;
  /* streaming state */
  int left;        /* chunks still to send; -1 when not streaming */
  enum wire wire;  /* the stream's format */
  long delay_us;   /* between two chunks */
  uint64_t due_ns; /* next chunk */
  struct conn *qnext;
  int queued;
} conn;

typedef struct loop {
  int ep;
  conn *qhead, *qtail; /* streams by due time (all share one delay: FIFO) */
} loop;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static char *mkresp(const char *status, const char *body, size_t *len) {
  size_t bl = strlen(body);
  char *r = malloc(bl + 256);
  *len = (size_t)sprintf(r,
                         "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: "
                         "%zu\r\n\r\n%s",
                         status, bl, body);
  return r;
}

/* Vector |v| of the embeddings, in both forms: the floats follow one fixed
 * pseudo-random sequence (*seed), so every run sends the same bytes. */
static void build_embedding(int v, uint32_t *seed, int as_double) {
  char *body = malloc(256 * 26 + 512);
  size_t o = (size_t)sprintf(body, "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\","
                                   "\"index\":0,\"embedding\":[");
  /* As OpenAI writes them: float32 values near zero, each in its shortest
   * text (-0.0069292834, 0.00012345678, ...). MOCK_EMB_TEXT=double: the
   * shortest text of the double each float widens to, as Python's repr
   * (-0.006929283495992422). */
  float vec[256];
  for (int i = 0; i < 256; i++) {
    *seed = *seed * 1103515245u + 12345u;
    float f = vec[i] = ((float)(*seed >> 8) / 16777216.0f - 0.5f) * 0.1f;
    char t[32];
    for (int p = as_double ? 1 : 6; p <= (as_double ? 17 : 9); p++) {
      snprintf(t, sizeof t, "%.*g", p, (double)f);
      if (as_double ? strtod(t, NULL) == (double)f : strtof(t, NULL) == f)
        break;
    }
    o += (size_t)sprintf(body + o, "%s%s", i ? "," : "", t);
  }
  sprintf(body + o, "]}],\"model\":\"text-embedding-3-small\",\"usage\":{\"prompt_tokens\":8,"
                    "\"total_tokens\":8}}");
  resp_emb[v] = mkresp("200 OK", body, &len_emb[v]);
  /* The same vector for "encoding_format":"base64": little-endian float32
   * bytes in standard base64, as OpenAI sends it. */
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const unsigned char *raw = (const unsigned char *)vec;
  size_t nraw = sizeof vec;
  o = (size_t)sprintf(body, "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\","
                            "\"index\":0,\"embedding\":\"");
  for (size_t i = 0; i < nraw; i += 3) {
    uint32_t w = (uint32_t)raw[i] << 16 | (i + 1 < nraw ? (uint32_t)raw[i + 1] << 8 : 0) |
                 (i + 2 < nraw ? raw[i + 2] : 0);
    body[o++] = b64[w >> 18 & 63];
    body[o++] = b64[w >> 12 & 63];
    body[o++] = i + 1 < nraw ? b64[w >> 6 & 63] : '=';
    body[o++] = i + 2 < nraw ? b64[w & 63] : '=';
  }
  sprintf(body + o, "\"}],\"model\":\"text-embedding-3-small\",\"usage\":{\"prompt_"
                    "tokens\":8,\"total_tokens\":8}}");
  resp_emb64[v] = mkresp("200 OK", body, &len_emb64[v]);
  free(body);
}

static void build(void) {
  const char *text_form = getenv("MOCK_EMB_TEXT");
  int as_double = text_form && strcmp(text_form, "double") == 0;
  uint32_t seed = 12345;
  for (int v = 0; v < EMB_VECTORS; v++)
    build_embedding(v, &seed, as_double);
  resp_models = mkresp("200 OK", models_body, &len_models);
  resp_chat = mkresp("200 OK", chat_body, &len_chat);
  resp_msg = mkresp("200 OK", msg_body, &len_msg);
  resp_gemini = mkresp("200 OK", gemini_body, &len_gemini);
  resp_azure = mkresp("200 OK", azure_body, &len_azure);
  resp_compl = mkresp("200 OK", compl_body, &len_compl);
  resp_404 = mkresp("404 Not Found",
                    "{\"error\":{\"message\":\"not found\",\"type\":\"invalid_"
                    "request_error\",\"code\":\"not_found\"}}",
                    &len_404);
}

/* Writes all of |iov|; the mock's answers are small, a short write on a
 * loopback socket only happens under a slow reader: then it blocks a bit. */
static int send_all(int fd, struct iovec *iov, int n) {
  while (n > 0) {
    ssize_t w = writev(fd, iov, n);
    if (w < 0) {
      if (errno == EAGAIN || errno == EINTR) {
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
        continue;
      }
      return -1;
    }
    while (n > 0 && (size_t)w >= iov->iov_len) {
      w -= (ssize_t)iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = (char *)iov->iov_base + w;
      iov->iov_len -= (size_t)w;
    }
  }
  return 0;
}

static void close_conn(loop *l, conn *c) {
  epoll_ctl(l->ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->fd = -1;
  if (!c->queued) {
    free(c->in);
    free(c);
  } /* else freed when the queue reaches it */
}

static void enqueue(loop *l, conn *c) {
  c->qnext = NULL;
  c->queued = 1;
  if (l->qtail)
    l->qtail->qnext = c;
  else
    l->qhead = c;
  l->qtail = c;
}

/* One chunk of Anthropic's stream: the first also opens the message and
 * its text block, the last closes them. The message's id carries the
 * CLOCK_MONOTONIC stamp as the OpenAI chunks' do. */
static int anthropic_event(conn *c, char *ev, size_t cap) {
  int n = 0;
  if (c->left == n_events)
    n = snprintf(ev, cap,
                 "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":"
                 "\"msg_chatcmpl-%llu\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"
                 "\"claude-mock\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
                 "\"usage\":{\"input_tokens\":20,\"output_tokens\":1}}}\n\n"
                 "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
                 "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
                 (unsigned long long)now_ns());
  if (c->left > 0)
    return n + snprintf(ev + n, cap - (size_t)n,
                        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
                        "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"tok \"}}\n\n");
  return snprintf(
      ev, cap,
      "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}"
      "\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{"
      "\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":"
      "%d}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
      n_events);
}

/* One chunk of Gemini's stream: a GenerateContentResponse with one text
 * part; the last has the finishReason and the whole usage. Its responseId
 * carries the CLOCK_MONOTONIC stamp. */
static int gemini_event(conn *c, char *ev, size_t cap) {
  int last = c->left == 0;
  return snprintf(ev, cap,
                  "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"%s\"}],\"role\":"
                  "\"model\"},%s\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":20,%s"
                  "\"totalTokenCount\":%d},\"modelVersion\":\"gemini-mock-001\",\"responseId\":"
                  "\"resp-%llu\"}\r\n\r\n",
                  last ? "" : "tok ", last ? "\"finishReason\":\"STOP\"," : "",
                  last ? "\"candidatesTokenCount\":20," : "", last ? 40 : 20,
                  (unsigned long long)now_ns());
}

/* One SSE chunk (or the final [DONE]) as an HTTP/1.1 chunk. */
static int send_event(conn *c) {
  char ev[1024], frame[1200];
  int n = 0;
  if (c->wire == WIRE_AZURE && c->left == n_events) /* Azure's first chunk */
    n = snprintf(ev, sizeof ev,
                 "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\","
                 "\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":"
                 "" AZURE_FILTER "}]}\n\n");
  if (c->wire == WIRE_ANTHROPIC) {
    n = anthropic_event(c, ev, sizeof ev);
  } else if (c->wire == WIRE_GEMINI) {
    n = gemini_event(c, ev, sizeof ev);
  } else if (c->left > 0) {
    n +=
        snprintf(ev + n, sizeof ev - (size_t)n,
                 "data: {\"id\":\"chatcmpl-%llu\",\"object\":\"chat.completion.chunk\",\"created\":"
                 "1700000000,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{"
                 "\"content\":\"tok \"},\"finish_reason\":null}]}\n\n",
                 (unsigned long long)now_ns());
  } else {
    n +=
        snprintf(ev + n, sizeof ev - (size_t)n,
                 "data: {\"id\":\"chatcmpl-%llu\",\"object\":\"chat.completion.chunk\",\"created\":"
                 "1700000000,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},"
                 "\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
                 (unsigned long long)now_ns());
  }
  int f =
      snprintf(frame, sizeof frame, "%x\r\n%.*s\r\n%s", n, n, ev, c->left > 0 ? "" : "0\r\n\r\n");
  struct iovec iov = {frame, (size_t)f};
  return send_all(c->fd, &iov, 1);
}

static void start_stream(loop *l, conn *c) {
  struct iovec iov = {(void *)sse_head, sizeof sse_head - 1};
  if (send_all(c->fd, &iov, 1) != 0)
    return;
  c->left = n_events;
  if (c->delay_us == 0) {
    while (c->left >= 0) {
      if (send_event(c) != 0)
        return;
      c->left--;
    }
    c->left = -1;
    return;
  }
  if (send_event(c) != 0) { /* the first chunk at once: TTFB is the relay's */
    c->left = -1;
    return;
  }
  c->left--;
  c->due_ns = now_ns() + (uint64_t)c->delay_us * 1000u;
  enqueue(l, c);
}

/* Sends the chunks that are due; returns the epoll timeout in ms. */
static int run_queue(loop *l) {
  uint64_t now = now_ns();
  while (l->qhead && l->qhead->due_ns <= now) {
    conn *c = l->qhead;
    l->qhead = c->qnext;
    if (!l->qhead)
      l->qtail = NULL;
    c->queued = 0;
    if (c->fd < 0) {
      free(c->in);
      free(c);
      continue;
    }
    if (send_event(c) != 0) {
      c->left = -1;
      continue;
    }
    if (c->left-- > 0) {
      c->due_ns += (uint64_t)c->delay_us * 1000u;
      enqueue(l, c);
    } else {
      c->left = -1;
    }
  }
  if (!l->qhead)
    return -1;
  int64_t ms = (int64_t)(l->qhead->due_ns - now) / 1000000;
  return ms < 1 ? 1 : (int)ms;
}

/* Handles every complete request in c->in; returns -1 to close. */
static int serve(loop *l, conn *c) {
  for (;;) {
    char *hend = memmem(c->in, c->len, "\r\n\r\n", 4);
    if (!hend)
      return c->len >= INBUF ? -1 : 0;
    size_t hlen = (size_t)(hend - c->in) + 4;
    size_t clen = 0;
    int chunked = 0;
    for (char *p = c->in; p < hend;) {
      char *eol = memmem(p, (size_t)(hend - p) + 2, "\r\n", 2);
      if (!eol)
        break;
      if (eol - p > 15 && strncasecmp(p, "content-length:", 15) == 0)
        clen = strtoul(p + 15, NULL, 10);
      if (eol - p > 18 && strncasecmp(p, "transfer-encoding:", 18) == 0 &&
          memmem(p, (size_t)(eol - p), "chunked", 7))
        chunked = 1;
      p = eol + 2;
    }
    char *body = c->in + hlen;
    size_t used;
    if (chunked) { /* find the terminating 0-chunk; body is not decoded, only searched */
      char *end = memmem(body, c->len - hlen, "\r\n0\r\n\r\n", 7);
      if (!end && !(c->len - hlen >= 5 && memcmp(body, "0\r\n\r\n", 5) == 0))
        return c->len >= INBUF ? -1 : 0;
      used = end ? (size_t)(end - c->in) + 7 : hlen + 5;
      clen = used - hlen;
    } else {
      if (hlen + clen > INBUF)
        return -1;
      if (c->len < hlen + clen)
        return 0;
      used = hlen + clen;
    }
    struct iovec iov;
    int is_get = c->in[0] == 'G';
    char *path = memchr(c->in, ' ', hlen);
    path = path ? path + 1 : c->in;
    if (is_get && strncmp(path, "/v1/models", 10) == 0) {
      iov = (struct iovec){resp_models, len_models};
    } else if (strncmp(path, "/v1/chat/completions", 20) == 0 ||
               strncmp(path, "/v1/messages", 12) == 0 ||
               strncmp(path, "/v1beta/models/", 15) == 0 ||
               strncmp(path, "/openai/deployments/", 20) == 0) {
      char *eol = memchr(path, ' ', hlen - (size_t)(path - c->in));
      size_t plen = eol ? (size_t)(eol - path) : 0;
      c->wire = path[1] == 'o'   ? WIRE_AZURE
                : path[3] == 'b' ? WIRE_GEMINI
                : path[4] == 'm' ? WIRE_ANTHROPIC
                                 : WIRE_OPENAI;
      int stream = c->wire == WIRE_GEMINI ? memmem(path, plen, ":streamGenerateContent", 22) != NULL
                                          : memmem(body, clen, "\"stream\":true", 13) ||
                                                memmem(body, clen, "\"stream\": true", 14);
      if (stream) {
        char *m = memmem(body, clen, "\"delay-", 7);
        c->delay_us = m ? atol(m + 7) : 0;
        memmove(c->in, c->in + used, c->len - used);
        c->len -= used;
        start_stream(l, c);
        if (c->len)
          continue;
        return 0;
      }
      static const struct {
        char **resp;
        size_t *len;
      } unary[] = {[WIRE_OPENAI] = {&resp_chat, &len_chat},
                   [WIRE_ANTHROPIC] = {&resp_msg, &len_msg},
                   [WIRE_GEMINI] = {&resp_gemini, &len_gemini},
                   [WIRE_AZURE] = {&resp_azure, &len_azure}};
      iov = (struct iovec){*unary[c->wire].resp, *unary[c->wire].len};
    } else if (strncmp(path, "/v1/embeddings", 14) == 0) {
      unsigned v = emb_next++ % EMB_VECTORS;
      if (memmem(body, clen, "\"base64\"", 8))
        iov = (struct iovec){resp_emb64[v], len_emb64[v]};
      else
        iov = (struct iovec){resp_emb[v], len_emb[v]};
    } else if (strncmp(path, "/v1/completions", 15) == 0) {
      iov = (struct iovec){resp_compl, len_compl};
    } else {
      iov = (struct iovec){resp_404, len_404};
    }
    if (send_all(c->fd, &iov, 1) != 0)
      return -1;
    memmove(c->in, c->in + used, c->len - used);
    c->len -= used;
    if (c->len == 0)
      return 0;
  }
}

static int listen_on(int p) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  struct sockaddr_in a = {
      .sin_family = AF_INET, .sin_port = htons((uint16_t)p), .sin_addr.s_addr = htonl(0x7f000001)};
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 65535) != 0) {
    perror("mock: bind/listen");
    exit(1);
  }
  return fd;
}

static void *loop_main(void *arg) {
  (void)arg;
  loop l = {.ep = epoll_create1(0)};
  int lfd = listen_on(port);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(l.ep, EPOLL_CTL_ADD, lfd, &ev);
  struct epoll_event evs[256];
  for (;;) {
    int timeout = run_queue(&l);
    int n = epoll_wait(l.ep, evs, 256, timeout);
    for (int i = 0; i < n; i++) {
      conn *c = evs[i].data.ptr;
      if (!c) {
        for (;;) {
          int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
          if (fd < 0)
            break;
          int one = 1;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          c = calloc(1, sizeof *c);
          c->fd = fd;
          c->left = -1;
          c->in = malloc(INBUF);
          struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
          epoll_ctl(l.ep, EPOLL_CTL_ADD, fd, &e);
        }
        continue;
      }
      if (c->fd < 0)
        continue;
      ssize_t r = read(c->fd, c->in + c->len, INBUF - c->len);
      if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        close_conn(&l, c);
        continue;
      }
      if (r < 0)
        continue;
      c->len += (size_t)r;
      if (serve(&l, c) != 0)
        close_conn(&l, c);
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: mock_upstream PORT [THREADS]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  port = atoi(argv[1]);
  int threads = argc > 2 ? atoi(argv[2]) : 1;
  if (getenv("MOCK_EVENTS"))
    n_events = atoi(getenv("MOCK_EVENTS"));
  build();
  pthread_t t;
  for (int i = 1; i < threads; i++)
    pthread_create(&t, NULL, loop_main, NULL);
  loop_main(NULL);
  return 0;
}
