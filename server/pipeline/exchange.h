/* What an upstream HTTP exchange holds, whichever provider runs it: the
 * OpenAI-compatible one (provider_openai.c, which reads OpenAI's wire format
 * straight into the call's messages) and the translating ones
 * (upstream_http.c, which hands each answer and event to a vendor codec).
 * Both embed a gw_exchange as |x| and end it the same way:
 *
 *   gw_exchange_end()     the one way a provider ends its call: the upstream's
 *                         error copied into the call, the call finished, the
 *                         transfer stopped
 *   gw_exchange_stop()    ends the transfer; release() follows from its end
 *   gw_exchange_release() frees the buffers and handles, and drops the call
 *                         reference on a later loop turn (this may run inside
 *                         gw_call_finish/cancel, under a front door that still
 *                         touches the call when they return)
 *   gw_exchange_discard() frees what a provider built before giving up
 *                         without starting */
#ifndef GW_PIPELINE_EXCHANGE_H
#define GW_PIPELINE_EXCHANGE_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/eventstream.h"
#include "engine/curl_loop.h"
#include "engine/http_client.h"
#include "pipeline/call.h"
#include "pipeline/provider_openai.h"
#include "pipeline/sse.h"

typedef struct gw_exchange {
  gw_call *call;
  gw_curl_xfer cx;            /* curl's transfer, unless |native| */
  gw_http_req hr;             /* the native client's exchange (|native|) */
  struct curl_slist *headers; /* the request's lines (the native client reads them too) */
  gw_buf body, resp;          /* the request; a unary answer or an error answer */
  gw_sse_reader sse;
  gw_eventstream_decoder es; /* AWS event-stream framing (Bedrock) */
  gw_openai_error err;       /* the upstream's own error, when |has_error| */
  long http_status;          /* of the answer; 0 before its head */
  bool has_error;
  bool native;        /* runs on the worker's native HTTP/1.1 client */
  bool transfer_done; /* the transfer is over (its done callback ran) */
  bool ended;         /* the call is finished, by us or by anyone */
  bool released;      /* buffers freed, reference dropped */
} gw_exchange;

void gw_exchange_discard(gw_exchange *x);
void gw_exchange_release(gw_exchange *x);
void gw_exchange_stop(gw_exchange *x);
/* Idempotent. A transfer not started is left alone. */
void gw_exchange_end(gw_exchange *x, gw_status_code code, const char *msg);
/* A provider's cancel op: the call ends elsewhere; the transfer stops. */
void gw_exchange_cancel(gw_exchange *x);

/* From curl's done callback: the transfer is over, its handle, the
 * request's lines and body freed, the answer's status in |x->http_status|.
 * False when the call ended meanwhile: all is released, nothing is left to
 * do. */
bool gw_exchange_curl_done(gw_exchange *x);

/* Milliseconds the whole exchange may take: the call's deadline and the
 * backend's timeout, whichever comes first; 0 for no limit. */
int64_t gw_exchange_timeout(const gw_call *call, int backend_timeout_ms);

/* A value that may go into a header line as it is: set, and no CR or LF. */
bool gw_header_safe(const char *v);

#endif
