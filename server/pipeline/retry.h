/* Retry policy: which failed attempts may be sent again (to another
 * deployment), how long to wait first (jittered exponential back-off, or the
 * upstream's Retry-After), and a retry budget shared by every call of a
 * router so that retries cannot multiply the load on a failing upstream.
 * Pure decisions; the route stage carries them out. */
#ifndef GW_PIPELINE_RETRY_H
#define GW_PIPELINE_RETRY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"

typedef struct gw_retry_conf {
  int max_retries;        /* extra attempts per call (0: never retry) */
  int budget_percent;     /* retries may add this % of the requests ... */
  int budget_min;         /* ... plus this many in reserve (burst) */
  int backoff_base_ms;    /* first back-off; doubles per retry, full jitter */
  int backoff_max_ms;     /* cap of the back-off */
  int max_retry_after_ms; /* a longer Retry-After is not waited for */
} gw_retry_conf;

#define GW_RETRY_CONF_DEFAULT                                                                      \
  { 2, 20, 10, 25, 1000, 10000 }

/* Why an attempt failed, as the route stage sees it. */
typedef struct gw_attempt_outcome {
  gw_status_code code;
  int http_status;        /* upstream HTTP status; 0: none (connect error, gRPC backend) */
  bool upstream;          /* the provider ended the call (not the deadline, not the client) */
  bool any_output;        /* a message already went to the client */
  const char *error_code; /* upstream error.code, may be NULL */
  const char *message;    /* may be NULL */
} gw_attempt_outcome;

/* Whether the failure may be retried at all: connect errors, 429, 5xx,
 * UNAVAILABLE / RESOURCE_EXHAUSTED / INTERNAL from the upstream; never once
 * output reached the client. */
bool gw_retry_retryable(const gw_attempt_outcome *o);

/* Whether the failure counts against the deployment's health: connect
 * errors, 5xx and timeouts (not 429, not other 4xx). */
bool gw_retry_health_failure(const gw_attempt_outcome *o);

/* Whether the failure says the prompt is too long for the model (the
 * fallback chain tries the next model). */
bool gw_retry_context_length(const gw_attempt_outcome *o);

/* Back-off before retry number |retry| (1 = the first), drawn with full
 * jitter from [base/2, base * 2^(retry-1)] capped; |rnd| any random value. */
int64_t gw_retry_backoff_ms(const gw_retry_conf *conf, int retry, uint64_t rnd);

/* Parses a Retry-After value: delta-seconds ("7", "1.5") or an HTTP-date
 * (against |now_unix|). Returns milliseconds >= 0, or -1 when unparsable. */
int64_t gw_retry_after_ms(const char *value, int64_t now_unix);

/* The retry budget: tokens in hundredths of a retry. */
typedef struct gw_retry_budget {
  _Atomic long tokens;
  long cap;
  int per_request; /* hundredths added per request */
} gw_retry_budget;

void gw_retry_budget_init(gw_retry_budget *b, const gw_retry_conf *conf);
/* A new call arrived: it earns the budget a share of a retry. */
void gw_retry_budget_deposit(gw_retry_budget *b);
/* Takes one retry from the budget: true when there was one. */
bool gw_retry_budget_withdraw(gw_retry_budget *b);

#endif
