/* The per-deployment circuit breaker / passive ejection state machine. */
#include "pipeline/health.h"

const char *gw_circuit_state_to_str(gw_circuit_state s) {
  switch (s) {
  case GW_CIRCUIT_CLOSED: return "closed";
  case GW_CIRCUIT_OPEN: return "open";
  case GW_CIRCUIT_HALF_OPEN: return "half_open";
  }
  return "?";
}

void gw_health_init(gw_health *h) {
  atomic_store(&h->state, GW_CIRCUIT_CLOSED);
  atomic_store(&h->failures, 0);
  atomic_store(&h->ejections, 0);
  atomic_store(&h->until_ms, 0);
}

int64_t gw_health_backoff_ms(const gw_health_conf *conf, int ejections) {
  int64_t ms = conf->eject_base_ms > 0 ? conf->eject_base_ms : 1;
  for (int i = 1; i < ejections && ms < conf->eject_max_ms; i++)
    ms *= 2;
  if (conf->eject_max_ms > 0 && ms > conf->eject_max_ms)
    ms = conf->eject_max_ms;
  return ms;
}

bool gw_health_available(const gw_health *h, int64_t now_ms) {
  int st = atomic_load(&h->state);
  if (st == GW_CIRCUIT_HALF_OPEN)
    return false;
  return now_ms >= atomic_load(&h->until_ms);
}

bool gw_health_admit(gw_health *h, int64_t now_ms, bool *trial) {
  *trial = false;
  int st = atomic_load(&h->state);
  if (st == GW_CIRCUIT_HALF_OPEN)
    return false;
  if (now_ms < atomic_load(&h->until_ms))
    return false;
  if (st == GW_CIRCUIT_CLOSED)
    return true;
  /* open, back-off over: one caller becomes the trial */
  int expect = GW_CIRCUIT_OPEN;
  if (!atomic_compare_exchange_strong(&h->state, &expect, GW_CIRCUIT_HALF_OPEN))
    return expect == GW_CIRCUIT_CLOSED;
  *trial = true;
  return true;
}

static gw_health_change open_circuit(gw_health *h, const gw_health_conf *conf, int64_t now_ms,
                                     int from, int64_t *eject_ms) {
  int n = atomic_fetch_add(&h->ejections, 1) + 1;
  int64_t ms = gw_health_backoff_ms(conf, n);
  atomic_store(&h->until_ms, now_ms + ms);
  int expect = from;
  if (!atomic_compare_exchange_strong(&h->state, &expect, GW_CIRCUIT_OPEN)) {
    atomic_fetch_sub(&h->ejections, 1); /* someone else moved it first */
    return GW_HEALTH_NO_CHANGE;
  }
  atomic_store(&h->failures, 0);
  if (eject_ms)
    *eject_ms = ms;
  return from == GW_CIRCUIT_CLOSED ? GW_HEALTH_EJECTED : GW_HEALTH_REEJECTED;
}

gw_health_change gw_health_report(gw_health *h, const gw_health_conf *conf, int64_t now_ms,
                                  bool success, bool trial, int64_t *eject_ms) {
  int st = atomic_load(&h->state);
  if (trial && st == GW_CIRCUIT_HALF_OPEN) {
    if (success) {
      int expect = GW_CIRCUIT_HALF_OPEN;
      if (!atomic_compare_exchange_strong(&h->state, &expect, GW_CIRCUIT_CLOSED))
        return GW_HEALTH_NO_CHANGE;
      atomic_store(&h->failures, 0);
      atomic_store(&h->ejections, 0);
      atomic_store(&h->until_ms, 0);
      return GW_HEALTH_READMITTED;
    }
    return open_circuit(h, conf, now_ms, GW_CIRCUIT_HALF_OPEN, eject_ms);
  }
  if (st != GW_CIRCUIT_CLOSED)
    return GW_HEALTH_NO_CHANGE; /* a call admitted before the ejection: moot */
  if (success) {
    /* Written only when it changes: a store on every success would pull the
     * line away from every other worker's cache, once per request. */
    if (atomic_load_explicit(&h->failures, memory_order_relaxed) != 0)
      atomic_store(&h->failures, 0);
    return GW_HEALTH_NO_CHANGE;
  }
  int f = atomic_fetch_add(&h->failures, 1) + 1;
  int limit = conf->failures_to_eject > 0 ? conf->failures_to_eject : 1;
  if (f < limit)
    return GW_HEALTH_NO_CHANGE;
  return open_circuit(h, conf, now_ms, GW_CIRCUIT_CLOSED, eject_ms);
}

void gw_health_cool_down(gw_health *h, int64_t now_ms, int64_t ms) {
  if (ms <= 0)
    return;
  int64_t want = now_ms + ms;
  int64_t cur = atomic_load(&h->until_ms);
  while (cur < want && !atomic_compare_exchange_weak(&h->until_ms, &cur, want))
    ;
}

void gw_health_abandon(gw_health *h) {
  int expect = GW_CIRCUIT_HALF_OPEN;
  atomic_compare_exchange_strong(&h->state, &expect, GW_CIRCUIT_OPEN);
}
