/* Health of one deployment: passive outlier ejection and a circuit breaker
 * in one explicit state machine, updated with atomics from any worker.
 *
 *   closed ──(N consecutive failures)──▶ open (ejected until now + back-off)
 *   open ──(back-off over; one call or active probe admitted)──▶ half_open
 *   half_open ──success──▶ closed (readmitted; back-off reset)
 *   half_open ──failure──▶ open (back-off doubled, up to a cap)
 *
 * A failure is a connect error, a 5xx or an upstream timeout; a 4xx (the
 * upstream answered) is a success. Retry-After on a 429/503 cools a
 * deployment down without counting as a failure. */
#ifndef GW_PIPELINE_HEALTH_H
#define GW_PIPELINE_HEALTH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum {
  GW_CIRCUIT_CLOSED = 0, /* healthy: takes calls */
  GW_CIRCUIT_OPEN,       /* ejected until |until_ms| */
  GW_CIRCUIT_HALF_OPEN,  /* one trial (call or probe) in flight */
} gw_circuit_state;

const char *gw_circuit_state_to_str(gw_circuit_state s);

typedef struct gw_health_conf {
  int failures_to_eject; /* consecutive failures that open the circuit (>= 1) */
  int eject_base_ms;     /* first ejection's length */
  int eject_max_ms;      /* cap of the doubling back-off */
} gw_health_conf;

#define GW_HEALTH_CONF_DEFAULT                                                                     \
  { 3, 1000, 30000 }

typedef struct gw_health {
  _Atomic int state;        /* gw_circuit_state */
  _Atomic int failures;     /* consecutive, while closed */
  _Atomic int ejections;    /* consecutive ejections, for the back-off */
  _Atomic int64_t until_ms; /* open: ejected until; closed: cooling down until (Retry-After) */
} gw_health;

/* What a report changed, for the state-change log line. */
typedef enum {
  GW_HEALTH_NO_CHANGE = 0,
  GW_HEALTH_EJECTED,    /* closed → open */
  GW_HEALTH_REEJECTED,  /* half_open → open */
  GW_HEALTH_READMITTED, /* half_open → closed */
} gw_health_change;

void gw_health_init(gw_health *h);

/* Whether a call may go to the deployment at |now_ms|. When the back-off is
 * over, exactly one caller wins the move to half_open and gets true with
 * |*trial| set: its outcome decides readmission. */
bool gw_health_admit(gw_health *h, int64_t now_ms, bool *trial);

/* True when gw_health_admit() would admit at |now_ms| (no state change). */
bool gw_health_available(const gw_health *h, int64_t now_ms);

/* Reports one outcome. |trial|: the call gw_health_admit() marked so.
 * Returns the transition made and, for an ejection, its length in
 * |*eject_ms| (may be NULL). */
gw_health_change gw_health_report(gw_health *h, const gw_health_conf *conf, int64_t now_ms,
                                  bool success, bool trial, int64_t *eject_ms);

/* A trial ended without an outcome (the client went away): the next
 * caller may be the trial instead. */
void gw_health_abandon(gw_health *h);

/* The upstream asked for |ms| of rest (Retry-After): no call goes there
 * before now + |ms|. Not a failure. */
void gw_health_cool_down(gw_health *h, int64_t now_ms, int64_t ms);

/* The back-off after |ejections| consecutive ejections (1 = the first). */
int64_t gw_health_backoff_ms(const gw_health_conf *conf, int ejections);

#endif
