/* Retry decisions, back-off, Retry-After and the retry budget. */
#include "pipeline/retry.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

bool gw_retry_retryable(const gw_attempt_outcome *o) {
  if (o->any_output || !o->upstream)
    return false;
  if (o->http_status == 429 || (o->http_status >= 500 && o->http_status < 600))
    return true;
  if (o->http_status != 0)
    return false; /* any other answer is the upstream's word on the request */
  switch (o->code) {
  case GW_STATUS_UNAVAILABLE:
  case GW_STATUS_RESOURCE_EXHAUSTED:
  case GW_STATUS_INTERNAL: return true;
  default: return false;
  }
}

bool gw_retry_health_failure(const gw_attempt_outcome *o) {
  if (!o->upstream)
    return false;
  if (o->http_status >= 500 && o->http_status < 600)
    return true;
  if (o->http_status != 0)
    return false;
  return o->code == GW_STATUS_UNAVAILABLE || o->code == GW_STATUS_DEADLINE_EXCEEDED ||
         o->code == GW_STATUS_INTERNAL;
}

static bool contains_ci(const char *s, const char *needle) {
  size_t n = strlen(needle);
  for (; s && *s; s++)
    if (strncasecmp(s, needle, n) == 0)
      return true;
  return false;
}

bool gw_retry_context_length(const gw_attempt_outcome *o) {
  if (!o->upstream || o->any_output)
    return false;
  if (o->error_code && strcmp(o->error_code, "context_length_exceeded") == 0)
    return true;
  if (o->code != GW_STATUS_INVALID_ARGUMENT && o->code != GW_STATUS_OUT_OF_RANGE)
    return false;
  return contains_ci(o->message, "context length") || contains_ci(o->message, "context window") ||
         contains_ci(o->message, "maximum context");
}

int64_t gw_retry_backoff_ms(const gw_retry_conf *conf, int retry, uint64_t rnd) {
  int64_t cap = conf->backoff_max_ms > 0 ? conf->backoff_max_ms : 0;
  int64_t hi = conf->backoff_base_ms > 0 ? conf->backoff_base_ms : 0;
  for (int i = 1; i < retry && (cap == 0 || hi < cap); i++)
    hi *= 2;
  if (cap && hi > cap)
    hi = cap;
  int64_t lo = hi / 2;
  if (hi <= lo)
    return hi;
  return lo + (int64_t)(rnd % (uint64_t)(hi - lo + 1));
}

static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* IMF-fixdate after its weekday: "06 Nov 1994 08:49:37 GMT". */
static int64_t http_date(const char *v) {
  char mon[4], zone[4];
  int day, year, hh, mm, ss;
  if (sscanf(v, " %d %3s %d %d:%d:%d %3s", &day, mon, &year, &hh, &mm, &ss, zone) != 7)
    return -1;
  int m = -1;
  for (int i = 0; i < 12; i++)
    if (strcmp(mon, months[i]) == 0)
      m = i;
  if (m < 0 || strcmp(zone, "GMT") != 0)
    return -1;
  struct tm tm = {0};
  tm.tm_mday = day;
  tm.tm_mon = m;
  tm.tm_year = year - 1900;
  tm.tm_hour = hh;
  tm.tm_min = mm;
  tm.tm_sec = ss;
  return (int64_t)timegm(&tm);
}

int64_t gw_retry_after_ms(const char *value, int64_t now_unix) {
  if (!value)
    return -1;
  while (*value == ' ' || *value == '\t')
    value++;
  if (isdigit((unsigned char)*value)) {
    char *end;
    double s = strtod(value, &end);
    while (*end == ' ')
      end++;
    if (*end || s < 0 || s > 86400.0 * 365)
      return -1;
    return (int64_t)(s * 1000.0);
  }
  const char *comma = strchr(value, ',');
  if (!comma)
    return -1;
  int64_t t = http_date(comma + 1);
  if (t < 0)
    return -1;
  return t > now_unix ? (t - now_unix) * 1000 : 0;
}

void gw_retry_budget_init(gw_retry_budget *b, const gw_retry_conf *conf) {
  b->per_request = conf->budget_percent > 0 ? conf->budget_percent : 0;
  b->cap = 100L * (conf->budget_min > 0 ? conf->budget_min : 1);
  atomic_store(&b->tokens, b->cap);
}

void gw_retry_budget_deposit(gw_retry_budget *b) {
  long cur = atomic_load_explicit(&b->tokens, memory_order_relaxed);
  while (cur < b->cap) {
    long next = cur + b->per_request;
    if (next > b->cap)
      next = b->cap;
    if (atomic_compare_exchange_weak_explicit(&b->tokens, &cur, next, memory_order_relaxed,
                                              memory_order_relaxed))
      return;
  }
}

bool gw_retry_budget_withdraw(gw_retry_budget *b) {
  long cur = atomic_load_explicit(&b->tokens, memory_order_relaxed);
  while (cur >= 100) {
    if (atomic_compare_exchange_weak_explicit(&b->tokens, &cur, cur - 100, memory_order_relaxed,
                                              memory_order_relaxed))
      return true;
  }
  return false;
}
