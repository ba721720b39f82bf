/* The balancers: smooth weighted round robin, least outstanding, P2C/EWMA. */
#include "pipeline/balance.h"

#include <string.h>

#include "core/alloc.h"
#include "core/status.h"

const char *gw_balance_strategy_to_str(gw_balance_strategy s) {
  switch (s) {
  case GW_BALANCE_WEIGHTED: return "weighted";
  case GW_BALANCE_LEAST_OUTSTANDING: return "least_outstanding";
  case GW_BALANCE_P2C_EWMA: return "p2c_ewma";
  }
  return "?";
}

int gw_balance_strategy_parse(const char *s, gw_balance_strategy *out) {
  static const struct {
    const char *name;
    gw_balance_strategy s;
  } names[] = {
      {"weighted", GW_BALANCE_WEIGHTED},
      {"round_robin", GW_BALANCE_WEIGHTED},
      {"weighted_round_robin", GW_BALANCE_WEIGHTED},
      {"least_outstanding", GW_BALANCE_LEAST_OUTSTANDING},
      {"least_requests", GW_BALANCE_LEAST_OUTSTANDING},
      {"p2c", GW_BALANCE_P2C_EWMA},
      {"p2c_ewma", GW_BALANCE_P2C_EWMA},
  };
  for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++)
    if (strcmp(s, names[i].name) == 0) {
      *out = names[i].s;
      return GW_OK;
    }
  return GW_ERR_INVALID;
}

void gw_dep_stats_observe(gw_dep_stats *s, int64_t latency_us) {
  if (latency_us < 1)
    latency_us = 1;
  /* A lost update under contention only drops one sample: fine for an EWMA. */
  int64_t old = atomic_load_explicit(&s->ewma_us, memory_order_relaxed);
  int64_t next = old == 0 ? latency_us : old + (latency_us - old) / 5;
  if (next < 1)
    next = 1;
  if (next != old) /* a steady latency leaves the line shared among the workers */
    atomic_store_explicit(&s->ewma_us, next, memory_order_relaxed);
}

/* nginx's smooth weighted round robin, run once to build the sequence:
 * each step every weight adds to its current value, the largest is chosen
 * and pays the total back. Spreads a 3:1 split as a,a,b,a rather than
 * a,a,a,b. */
static int build_schedule(gw_balancer *b) {
  long total = 0;
  for (size_t i = 0; i < b->n; i++)
    total += b->weights[i];
  long scaled[GW_BALANCE_MAX_DEPLOYMENTS];
  long stotal = 0;
  for (size_t i = 0; i < b->n; i++) {
    long w = b->weights[i];
    if (total > GW_BALANCE_MAX_SCHEDULE) {
      w = (long)((double)w * GW_BALANCE_MAX_SCHEDULE / (double)total);
      if (w < 1)
        w = 1;
    }
    scaled[i] = w;
    stotal += w;
  }
  b->schedule = gw_calloc((size_t)stotal, sizeof(*b->schedule));
  if (!b->schedule)
    return GW_ERR_NOMEM;
  b->sched_len = (size_t)stotal;
  long current[GW_BALANCE_MAX_DEPLOYMENTS];
  memset(current, 0, sizeof(current[0]) * b->n);
  for (long k = 0; k < stotal; k++) {
    size_t best = 0;
    for (size_t i = 0; i < b->n; i++) {
      current[i] += scaled[i];
      if (current[i] > current[best])
        best = i;
    }
    current[best] -= stotal;
    b->schedule[k] = (uint16_t)best;
  }
  return GW_OK;
}

int gw_balancer_init(gw_balancer *b, gw_balance_strategy strategy, const int *weights, size_t n) {
  memset(b, 0, sizeof(*b));
  if (n == 0 || n > GW_BALANCE_MAX_DEPLOYMENTS)
    return GW_ERR_INVALID;
  b->strategy = strategy;
  b->n = n;
  b->weights = gw_calloc(n, sizeof(*b->weights));
  if (!b->weights)
    return GW_ERR_NOMEM;
  for (size_t i = 0; i < n; i++)
    b->weights[i] = weights && weights[i] > 0 ? weights[i] : 1;
  if (build_schedule(b) != GW_OK) {
    gw_free(b->weights);
    memset(b, 0, sizeof(*b));
    return GW_ERR_NOMEM;
  }
  atomic_store(&b->rng, 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)b);
  return GW_OK;
}

void gw_balancer_release(gw_balancer *b) {
  gw_free(b->weights);
  gw_free(b->schedule);
  memset(b, 0, sizeof(*b));
}

static uint64_t next_random(gw_balancer *b) {
  /* Racing threads may read the same state and draw the same number once;
   * the balance still holds on average, and no lock is taken. */
  uint64_t x = atomic_load_explicit(&b->rng, memory_order_relaxed);
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  atomic_store_explicit(&b->rng, x, memory_order_relaxed);
  return x;
}

/* A slot of an ineligible deployment is skipped by drawing the next ticket
 * rather than taking the next slot, so the eligible ones keep their shares
 * among themselves (taking the next slot would hand the skipped share to
 * whichever follows it). */
static int pick_weighted(gw_balancer *b, const bool *eligible) {
  for (size_t k = 0; k < b->sched_len; k++) {
    uint64_t t = atomic_fetch_add_explicit(&b->ticket, 1, memory_order_relaxed);
    size_t i = b->schedule[t % b->sched_len];
    if (eligible[i])
      return (int)i;
  }
  for (size_t i = 0; i < b->n; i++) /* unlucky draws (other threads took the tickets) */
    if (eligible[i])
      return (int)i;
  return -1;
}

static int pick_least(gw_balancer *b, gw_dep_stats *const *stats, const bool *eligible) {
  /* Start at a rotating index so ties spread instead of piling on index 0. */
  uint64_t t = atomic_fetch_add_explicit(&b->ticket, 1, memory_order_relaxed);
  int best = -1;
  long best_load = 0, best_w = 1;
  for (size_t k = 0; k < b->n; k++) {
    size_t i = (t + k) % b->n;
    if (!eligible[i])
      continue;
    long load = atomic_load_explicit(&stats[i]->in_flight, memory_order_relaxed);
    long w = b->weights[i];
    /* load/w < best_load/best_w, without division */
    if (best < 0 || load * best_w < best_load * w) {
      best = (int)i;
      best_load = load;
      best_w = w;
    }
  }
  return best;
}

/* Lower is better: EWMA latency times the queue it would join, per weight.
 * A deployment without a sample scores 0 so that it gets one. */
static double p2c_score(const gw_balancer *b, gw_dep_stats *s, size_t i) {
  double ewma = (double)atomic_load_explicit(&s->ewma_us, memory_order_relaxed);
  double load = (double)atomic_load_explicit(&s->in_flight, memory_order_relaxed) + 1.0;
  return ewma * load / (double)b->weights[i];
}

static int pick_p2c(gw_balancer *b, gw_dep_stats *const *stats, const bool *eligible) {
  size_t idx[GW_BALANCE_MAX_DEPLOYMENTS];
  size_t m = 0;
  for (size_t i = 0; i < b->n; i++)
    if (eligible[i])
      idx[m++] = i;
  if (m == 0)
    return -1;
  if (m == 1)
    return (int)idx[0];
  uint64_t r = next_random(b);
  size_t a = (size_t)(r % m);
  size_t off = 1 + (size_t)((r / m) % (m - 1)); /* a second, distinct candidate */
  size_t x = idx[a], y = idx[(a + off) % m];
  double sx = p2c_score(b, stats[x], x), sy = p2c_score(b, stats[y], y);
  if (sx == sy)
    return (int)((r >> 32) & 1 ? x : y);
  return (int)(sx < sy ? x : y);
}

int gw_balancer_pick(gw_balancer *b, gw_dep_stats *const *stats, const bool *eligible) {
  if (b->n == 1) /* nothing to choose: no shared ticket or random state to move */
    return eligible[0] ? 0 : -1;
  switch (b->strategy) {
  case GW_BALANCE_LEAST_OUTSTANDING: return pick_least(b, stats, eligible);
  case GW_BALANCE_P2C_EWMA: return pick_p2c(b, stats, eligible);
  case GW_BALANCE_WEIGHTED:
  default: return pick_weighted(b, eligible);
  }
}
