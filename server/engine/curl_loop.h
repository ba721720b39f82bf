/* libcurl's multi interface driven by a worker's libevent loop: one CURLM per
 * worker, its sockets and its one timer registered on the worker's
 * event_base, so every upstream HTTP exchange of a call runs on the call's
 * own thread. Connections are pooled per worker (keep-alive, HTTP/2
 * multiplexing where the upstream offers it).
 *
 * A transfer is a gw_curl_xfer embedded in its owner. Once added, its |done|
 * runs exactly once: when it completes (any result), when it is cancelled,
 * or when the loop is freed. |done| runs outside every curl callback, after
 * the handle was removed from the multi: it may free the easy handle and the
 * object around |x|. */
#ifndef GW_ENGINE_CURL_LOOP_H
#define GW_ENGINE_CURL_LOOP_H

#include <curl/curl.h>
#include <event2/event.h>
#include <stdbool.h>

struct gw_worker;
typedef struct gw_curl_loop gw_curl_loop;

typedef struct gw_curl_xfer {
  CURL *easy; /* set by the owner before gw_curl_loop_add */
  /* |result|: CURLE_OK, curl's error, or CURLE_ABORTED_BY_CALLBACK after a
   * cancel. */
  void (*done)(struct gw_curl_xfer *x, CURLcode result);
  /* Owned by the loop. */
  gw_curl_loop *loop;
  struct gw_curl_xfer *next_cancel, *next_reap;
  void (*reap)(struct gw_curl_xfer *x);
  bool added, cancel_pending;
} gw_curl_xfer;

/* Once per process, before any thread uses libcurl (idempotent). GW_OK or
 * GW_ERR_IO. */
int gw_curl_global_init(void);

/* The trust store of |e|: the bundle in SSL_CERT_FILE and the folder in
 * SSL_CERT_DIR when they are set (curl's built-in paths when not), so that
 * curl trusts what the native client (OpenSSL's defaults) trusts. */
void gw_curl_trust_env(CURL *e);

/* A loop on |base| (borrowed: must outlive the loop). GW_OK or GW_ERR_NOMEM. */
int gw_curl_loop_new(struct event_base *base, gw_curl_loop **out);
/* Ends every transfer still open (their |done| runs with
 * CURLE_ABORTED_BY_CALLBACK), closes the pooled connections and frees the
 * loop. Call it on the loop's thread or once that thread has stopped, and
 * before the event_base is freed. NULL is a no-op. */
void gw_curl_loop_free(gw_curl_loop *l);

/* Starts |x| (x->easy and x->done set). CURLOPT_PRIVATE is taken. GW_OK, or
 * GW_ERR_IO when curl refuses (then |done| will not run). */
int gw_curl_loop_add(gw_curl_loop *l, gw_curl_xfer *x);

/* Stops |x| at once: its handle is removed from the multi (which closes its
 * connection if the response was not complete) and |done| runs with
 * CURLE_ABORTED_BY_CALLBACK — right now when called outside curl, or as soon
 * as the curl call running now returns (a handle may not be removed from
 * inside its own callback). No-op when |done| already ran or is due. */
void gw_curl_loop_cancel(gw_curl_xfer *x);

/* Runs |fn(x)| on a later loop iteration (or when the loop is freed),
 * outside every callback running now: for dropping the last reference to
 * the object around |x| without freeing it under a caller that still uses
 * it. |x| must have been added once (its loop is known). */
void gw_curl_loop_reap_later(gw_curl_xfer *x, void (*fn)(gw_curl_xfer *x));

/* Unpauses |x|'s receiving side (curl_easy_pause CONT). curl may deliver
 * the held data from inside this call. */
void gw_curl_loop_unpause(gw_curl_xfer *x);

/* Per-worker loops, in a side table indexed by worker id. Creates one loop
 * per worker of |workers| (initialised, not started). GW_OK or
 * GW_ERR_NOMEM (nothing is left allocated). */
int gw_curl_loops_init(struct gw_worker *workers, int n);
/* The loop of |w|, NULL when there is none (no worker, not initialised). */
gw_curl_loop *gw_curl_loop_of(const struct gw_worker *w);
/* Frees every per-worker loop (after the workers stopped, before their bases
 * are freed). */
void gw_curl_loops_free(void);

#endif
