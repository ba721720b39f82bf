/* Load balancing over the deployments of one model: weighted round robin,
 * least outstanding requests, and power of two choices over an EWMA of
 * latency. The per-deployment counters are atomics any worker updates; a
 * pick reads them without locks. Which deployments may be picked at all
 * (healthy, under their concurrency cap, not yet tried by this call, best
 * priority) is the caller's mask. */
#ifndef GW_PIPELINE_BALANCE_H
#define GW_PIPELINE_BALANCE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
  GW_BALANCE_WEIGHTED = 0,      /* smooth weighted round robin */
  GW_BALANCE_LEAST_OUTSTANDING, /* fewest in flight (per weight), ties by round robin */
  GW_BALANCE_P2C_EWMA,          /* two random candidates, the lower EWMA x (in flight + 1) */
} gw_balance_strategy;

const char *gw_balance_strategy_to_str(gw_balance_strategy s);
/* "weighted" / "round_robin", "least_outstanding", "p2c" / "p2c_ewma".
 * GW_OK or GW_ERR_INVALID. */
int gw_balance_strategy_parse(const char *s, gw_balance_strategy *out);

/* Live counters of one deployment. */
typedef struct gw_dep_stats {
  _Atomic int in_flight;
  _Atomic int64_t ewma_us; /* latency EWMA in microseconds; 0: no sample yet */
} gw_dep_stats;

/* Records one latency sample (alpha 0.2). */
void gw_dep_stats_observe(gw_dep_stats *s, int64_t latency_us);

/* The immutable part of a balancer plus its round-robin ticket. */
typedef struct gw_balancer {
  gw_balance_strategy strategy;
  size_t n;
  int *weights;       /* n, each >= 1 */
  uint16_t *schedule; /* smooth WRR sequence of deployment indexes */
  size_t sched_len;
  _Atomic uint64_t ticket;
  _Atomic uint64_t rng; /* xorshift state for P2C */
} gw_balancer;

/* Largest schedule: weights summing beyond it are scaled down (each >= 1). */
#define GW_BALANCE_MAX_SCHEDULE 4096
/* Most deployments one model may have. */
#define GW_BALANCE_MAX_DEPLOYMENTS 1024

/* Sets |b| up over |n| deployments with |weights| (copied; values < 1 count
 * as 1). GW_OK, GW_ERR_INVALID (n == 0 or too many) or GW_ERR_NOMEM (|b| then
 * holds nothing). */
int gw_balancer_init(gw_balancer *b, gw_balance_strategy strategy, const int *weights, size_t n);
void gw_balancer_release(gw_balancer *b);

/* Picks one deployment among those with |eligible[i]| true; |stats[i]| are
 * their counters. Returns the index, or -1 when none is eligible. Safe to
 * call from any thread at once. */
int gw_balancer_pick(gw_balancer *b, gw_dep_stats *const *stats, const bool *eligible);

#endif
