/* The autoscaling decision for a pool of local model-server processes: a pure
 * function from one load sample (and the pool's own memory of how long the
 * load has been high or low) to "start one more", "drain one" or "hold".
 * No clock, no threads: the supervisor samples, calls it and acts. */
#ifndef GW_ENGINE_AUTOSCALE_H
#define GW_ENGINE_AUTOSCALE_H

#include <stdint.h>

#include "config/config.h"

/* What the pool measured, at |now_ms|. */
typedef struct gw_autoscale_sample {
  int64_t now_ms;
  int active;        /* members counted as N: starting, serving or restarting */
  long inflight;     /* calls at members */
  long queued;       /* calls waiting for a member with a free slot */
  double wait_ms;    /* EWMA of the queue wait (call start -> a member took it) */
  double latency_ms; /* EWMA of call latency (a member took it -> it ended) */
} gw_autoscale_sample;

/* The decision's memory; zero-initialise it. */
typedef struct gw_autoscale_state {
  int64_t high_since;     /* when the load turned high, 0 = it is not */
  int64_t low_since;      /* when the load turned low, 0 = it is not */
  int64_t last_change_ms; /* when the pool last scaled, 0 = never */
} gw_autoscale_state;

typedef enum { GW_SCALE_HOLD = 0, GW_SCALE_UP, GW_SCALE_DOWN } gw_scale_action;

const char *gw_scale_action_to_str(gw_scale_action a);

/* Decides for the pool configured by |c| (min, max, thresholds, delays and
 * cooldowns; see docs/config.md) given |s|, updating |st|. Returns the action
 * and sets |*why| (static text) to the rule that chose it.
 *   up:   active < min; or the load has been high for up_after_ms, the last
 *         change is up_cooldown_ms old and active < max. High: calls per
 *         member (in flight + queued, over active) >= scale_up_inflight, or
 *         any call queued, or wait_ms >= scale_up_wait_ms (when > 0), or
 *         latency_ms >= scale_up_latency_ms (when > 0).
 *   down: active > max; or the load has been low for down_after_ms, the last
 *         change is down_cooldown_ms old and active > min. Low: nothing
 *         queued and in flight <= scale_down_inflight * (active - 1), i.e.
 *         one member fewer would still be quiet.
 * A change restarts both the high and the low clocks. */
gw_scale_action gw_autoscale_decide(const gw_pool_conf *c, gw_autoscale_state *st,
                                    const gw_autoscale_sample *s, const char **why);

/* Folds |x| into the exponentially weighted average |avg| with weight |alpha|
 * (0..1). */
double gw_autoscale_ewma(double avg, double x, double alpha);

#endif
