/* One HTTP exchange with a vendor's API on the call's worker: on its native
 * HTTP/1.1 client (engine/http_client.h; http:// and https://), or on its
 * curl loop when a proxy is set for the URL's scheme or the process runs
 * with UPSTREAM_CLIENT=curl. For the providers that translate (Anthropic,
 * Azure, Gemini/Vertex, Bedrock):
 * the request goes out as the provider built it; a unary answer, each
 * stream event (SSE, or AWS event-stream frames) and an error answer go to
 * the provider's codec, which turns them into OpenAI JSON that this module
 * decodes into the call's output message and emits. Back-pressure, cancel,
 * deadline and the upstream error for the HTTP front door work as in the
 * OpenAI-compatible provider (provider_openai.c), whose SSE reader this
 * reuses. */
#ifndef GW_PIPELINE_UPSTREAM_HTTP_H
#define GW_PIPELINE_UPSTREAM_HTTP_H

#include <curl/curl.h>
#include <stdbool.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/eventstream.h"
#include "engine/curl_loop.h"
#include "engine/http_client.h"
#include "pipeline/call.h"
#include "pipeline/exchange.h"
#include "pipeline/provider_openai.h"
#include "transcoder/json_lite.h"

typedef struct gw_upstream gw_upstream;

typedef enum {
  GW_UPSTREAM_SSE = 0,     /* text/event-stream */
  GW_UPSTREAM_EVENTSTREAM, /* application/vnd.amazon.eventstream */
} gw_upstream_framing;

/* What a provider does with what comes back. Each may end the call with
 * gw_upstream_end()/gw_upstream_fail(); when |body| returns without having
 * ended it, the call ends OK. */
typedef struct gw_upstream_codec {
  /* A 2xx unary answer: |len| bytes at |data|. */
  void (*body)(gw_upstream *u, const char *data, size_t len);
  /* One stream event: SSE "event:" name ("" when none) and data; for the
   * event-stream framing the :event-type (or :exception-type, with
   * |exception| set) and the payload. */
  void (*event)(gw_upstream *u, const char *name, const char *data, size_t len, bool exception);
  /* The stream's transfer ended well and every event was handled. May be
   * NULL. The call ends OK afterwards unless this ended it. */
  void (*stream_end)(gw_upstream *u);
  /* A non-2xx answer (up to 64 KiB of its body): fill u->x.err (type, code,
   * param, message) and return the status. NULL: the message is the body. */
  gw_status_code (*error)(gw_upstream *u, long http_status, const char *data, size_t len);
} gw_upstream_codec;

struct gw_upstream {
  /* x.call is set by gw_upstream_new; x.err and x.has_error are the
   * upstream's own error, which the codecs fill (see exchange.h). */
  gw_exchange x;
  /* Set by the provider before gw_upstream_start(). */
  const gw_upstream_codec *codec;
  void *state;              /* the codec's own, in the call's arena */
  const char *backend_name; /* for messages */
  gw_upstream_framing framing;
  bool streaming;
  int timeout_ms; /* the backend's; the call's deadline also applies */

  /* Internal. */
  struct gw_upstream_line *lines, **lines_end; /* the header lines, in the call's arena */
  size_t n_lines;
  char host[256];
  char errbuf[CURL_ERROR_SIZE];
  bool backlog, paused, saw_done;
};

/* A new exchange for |call| in the call's arena (zeroed, buffers set up).
 * NULL when out of memory. */
gw_upstream *gw_upstream_new(gw_call *call, const gw_upstream_codec *codec,
                             const char *backend_name, bool streaming, gw_upstream_framing framing,
                             int timeout_ms);

/* Adds header line |h| ("Name: value", copied into the call's arena: no
 * malloc per line). GW_OK or GW_ERR_NOMEM. */
int gw_upstream_add_header(gw_upstream *u, const char *h);

/* Sends |method| |url| with u->body (filled by the provider) and the headers
 * added. On GW_OK the exchange owns a call reference and
 * call->provider_state is |u|; on error nothing is left open (the caller
 * returns the error from its start()). */
int gw_upstream_start(gw_upstream *u, const char *method, const char *url);

/* Frees what |u| holds when the provider gives up before (or instead of)
 * gw_upstream_start(), e.g. after ending the call on a bad request. */
void gw_upstream_discard(gw_upstream *u);

/* For the provider's ops. */
void gw_upstream_cancel(gw_call *call);
void gw_upstream_resume(gw_call *call);

/* Decodes |json| (OpenAI JSON of the call's output type: a
 * ChatCompletionResponse, a chunk, ...) and emits it. Ends the call with
 * INTERNAL when it does not decode. Returns GW_OK or an error. */
int gw_upstream_emit_text(gw_upstream *u, const char *json, size_t len);
/* Decodes |json| as the call's output message into |a| (*out), without
 * emitting it; members it does not model named in |skip| (NULL-ended, or
 * NULL) are left out wherever they are (gw_json_opts.skip_unknown). GW_OK,
 * or an error after ending the call with INTERNAL ("untranslatable
 * answer"; RESOURCE_EXHAUSTED when out of memory). */
int gw_upstream_decode_text(gw_upstream *u, const char *json, size_t len, gw_arena *a,
                            const char *const *skip, ProtobufCMessage **out);

/* Ends the call with |code| and |msg| (upstream error copied into the call
 * first when there is one). Idempotent. */
void gw_upstream_end(gw_upstream *u, gw_status_code code, const char *msg);

/* Ends the call for an answer or event (|what|) of the backend's that does
 * not translate: RESOURCE_EXHAUSTED when |rc| is GW_ERR_NOMEM, else INTERNAL,
 * "backend <name> sent an undecodable <what>". */
void gw_upstream_undecodable(gw_upstream *u, int rc, const char *what);

/* Records an upstream error (strings copied) and ends the call with the
 * status for |http_status| (or |code| when |http_status| is 0). */
void gw_upstream_fail(gw_upstream *u, long http_status, gw_status_code code, const char *type,
                      const char *ecode, const char *message);

/* The gRPC status for an error `type` in the vendors' vocabularies
 * (invalid_request_error, rate_limit_error, overloaded_error,
 * ThrottlingException, RESOURCE_EXHAUSTED, ...). INTERNAL when unknown. */
gw_status_code gw_upstream_status_from_type(const char *type);

/* Milliseconds since the epoch / seconds since the epoch (wall clock). */
long long gw_upstream_unix_time(void);

/* Shared translation helper (OpenAI → vendor). Splits a data: URL ("data:image/png;base64,AAAA")
 * into media type and payload (pointers into |url|). false when |url| is not a base64 data URL. */
bool gw_upstream_data_url(const char *url, const char **media, size_t *media_len,
                          const char **data);

/* For a provider that serves chat completions only: true when the call is
 * one (CreateChatCompletion, StreamChatCompletion); otherwise ends it with
 * UNIMPLEMENTED, "<path> is not served by <what> backends", and false. */
bool gw_upstream_serves_chat(gw_call *call, const char *what);

/* The call's canonical request as the DOM of its OpenAI JSON (int64 as
 * numbers, unions bare), built straight from the message in an arena of its
 * own (gw_pb_to_jval: no text written and read back): what a translating
 * provider reads, gone once the vendor's body is written (the DOM's strings
 * point into the call's request). */
typedef struct gw_upstream_request {
  gw_arena *arena;
  const gw_jval *req; /* an object once opened */
  size_t json_len;    /* about the length of that JSON */
} gw_upstream_request;

/* GW_OK with r->req set; GW_ERR_NOMEM; GW_ERR_TOOBIG (over 64 MiB of JSON);
 * GW_ERR_INVALID when the request has no JSON form (|err| says why: nested
 * deeper than the writer goes, a map key twice from the gRPC wire). Closed
 * with gw_upstream_request_close() whatever it returned. */
int gw_upstream_request_open(gw_upstream_request *r, const gw_call *call, char *err, size_t errlen);
void gw_upstream_request_close(gw_upstream_request *r);

/* Room in |body| for about the size of the opened request's JSON, which its
 * translation about matches: one allocation instead of growth by doubling
 * (a 100 KB prompt's body was copied nine times). A failure here is left to
 * the writer to meet and report. */
static inline void gw_upstream_body_room(gw_buf *body, const gw_upstream_request *in) {
  if (in->req && in->json_len)
    (void)gw_buf_reserve(body, in->json_len + in->json_len / 8 + 256);
}

/* Ends a call whose request was refused before anything went upstream:
 * INVALID_ARGUMENT with |err| for GW_ERR_INVALID, RESOURCE_EXHAUSTED ("request
 * too large", "out of memory") for GW_ERR_TOOBIG and anything else. */
void gw_upstream_refuse(gw_call *call, int rc, const char *err);

#endif
