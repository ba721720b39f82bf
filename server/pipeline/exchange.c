/* An upstream HTTP exchange's end, shared by the providers (see exchange.h). */
#include "pipeline/exchange.h"

#include <string.h>

#include "core/later.h"
#include "engine/worker.h"

static void reap(gw_curl_xfer *cx) {
  gw_exchange *x = GW_CONTAINER_OF(cx, gw_exchange, cx);
  gw_call_unref(x->call); /* may dispose of the call and |x| with it */
}

static void native_reap(gw_http_req *r) {
  gw_exchange *x = GW_CONTAINER_OF(r, gw_exchange, hr);
  gw_call_unref(x->call);
}

void gw_exchange_discard(gw_exchange *x) {
  if (x->cx.easy)
    curl_easy_cleanup(x->cx.easy);
  x->cx.easy = NULL;
  curl_slist_free_all(x->headers);
  x->headers = NULL;
  gw_buf_release(&x->body);
  gw_buf_release(&x->resp);
  gw_sse_reader_release(&x->sse);
  gw_eventstream_release(&x->es);
}

void gw_exchange_release(gw_exchange *x) {
  if (x->released)
    return;
  x->released = true;
  gw_exchange_discard(x);
  if (x->native)
    gw_http_req_reap_later(&x->hr, native_reap);
  else
    gw_curl_loop_reap_later(&x->cx, reap);
}

void gw_exchange_stop(gw_exchange *x) {
  if (!x->transfer_done && x->native)
    gw_http_req_cancel(&x->hr);
  else if (!x->transfer_done)
    gw_curl_loop_cancel(&x->cx); /* inside curl: once it returns */
  else
    gw_exchange_release(x);
}

void gw_exchange_end(gw_exchange *x, gw_status_code code, const char *msg) {
  if (x->ended)
    return;
  x->ended = true;
  gw_call *c = x->call;
  if (x->has_error) { /* for the HTTP front door's answer */
    c->upstream_error.http_status = (int)x->err.http_status;
    c->upstream_error.type = x->err.type;
    c->upstream_error.code = x->err.code;
    c->upstream_error.param = x->err.param;
    c->upstream_error.retry_after = x->err.retry_after;
  }
  gw_call_finish(c, code, msg);                    /* its cancel() finds us ended */
  if (x->native || x->cx.loop || x->transfer_done) /* (started) */
    gw_exchange_stop(x);
}

void gw_exchange_cancel(gw_exchange *x) {
  if (!x || x->ended)
    return;
  x->ended = true;
  gw_exchange_stop(x);
}

bool gw_exchange_curl_done(gw_exchange *x) {
  x->transfer_done = true;
  long st = 0;
  curl_easy_getinfo(x->cx.easy, CURLINFO_RESPONSE_CODE, &st);
  x->http_status = st;
  curl_easy_cleanup(x->cx.easy);
  x->cx.easy = NULL;
  curl_slist_free_all(x->headers);
  x->headers = NULL;
  gw_buf_release(&x->body);
  if (x->ended) {
    gw_exchange_release(x);
    return false;
  }
  return true;
}

int64_t gw_exchange_timeout(const gw_call *call, int backend_timeout_ms) {
  int64_t left = 0;
  if (call->deadline_ms) {
    left = call->deadline_ms - gw_now_ms();
    if (left < 1)
      left = 1;
  }
  if (backend_timeout_ms > 0 && (left == 0 || backend_timeout_ms < left))
    left = backend_timeout_ms;
  return left;
}

bool gw_header_safe(const char *v) { return v && *v && !strpbrk(v, "\r\n"); }
