/* The pool autoscaling decision (see autoscale.h). */
#include "engine/autoscale.h"

const char *gw_scale_action_to_str(gw_scale_action a) {
  switch (a) {
  case GW_SCALE_UP: return "up";
  case GW_SCALE_DOWN: return "down";
  default: return "hold";
  }
}

double gw_autoscale_ewma(double avg, double x, double alpha) { return avg + alpha * (x - avg); }

/* Which rule makes the load high, NULL when it is not. */
static const char *high_reason(const gw_pool_conf *c, const gw_autoscale_sample *s) {
  long load = s->inflight + s->queued;
  int active = s->active > 0 ? s->active : 1;
  if (s->queued > 0)
    return "calls are queued";
  if (c->scale_up_inflight > 0 && load >= (long)c->scale_up_inflight * active)
    return "in-flight calls per worker at or above scale_up_inflight";
  if (c->scale_up_wait_ms > 0 && s->wait_ms >= c->scale_up_wait_ms)
    return "queue wait at or above scale_up_wait_ms";
  if (c->scale_up_latency_ms > 0 && s->latency_ms >= c->scale_up_latency_ms)
    return "latency at or above scale_up_latency_ms";
  return NULL;
}

static int is_low(const gw_pool_conf *c, const gw_autoscale_sample *s) {
  if (s->queued > 0 || s->active <= 1)
    return s->queued == 0 && s->inflight == 0;
  return s->inflight <= (long)c->scale_down_inflight * (s->active - 1);
}

static gw_scale_action changed(gw_autoscale_state *st, int64_t now, gw_scale_action a) {
  st->last_change_ms = now;
  st->high_since = 0;
  st->low_since = 0;
  return a;
}

gw_scale_action gw_autoscale_decide(const gw_pool_conf *c, gw_autoscale_state *st,
                                    const gw_autoscale_sample *s, const char **why) {
  int64_t now = s->now_ms;
  const char *high = high_reason(c, s);
  int low = !high && is_low(c, s);
  if (!high)
    st->high_since = 0;
  else if (!st->high_since)
    st->high_since = now;
  if (!low)
    st->low_since = 0;
  else if (!st->low_since)
    st->low_since = now;

  if (s->active < c->min) {
    *why = "below the minimum";
    return changed(st, now, GW_SCALE_UP);
  }
  if (s->active > c->max) {
    *why = "above the maximum";
    return changed(st, now, GW_SCALE_DOWN);
  }
  int64_t since_change = st->last_change_ms ? now - st->last_change_ms : INT64_MAX;
  if (high) {
    *why = high;
    if (s->active >= c->max) {
      *why = "load is high but the pool is at its maximum";
      return GW_SCALE_HOLD;
    }
    if (now - st->high_since < c->up_after_ms) {
      *why = "load is high, not yet for up_after_ms";
      return GW_SCALE_HOLD;
    }
    if (since_change < c->up_cooldown_ms) {
      *why = "load is high, in the up cooldown";
      return GW_SCALE_HOLD;
    }
    return changed(st, now, GW_SCALE_UP);
  }
  if (low && s->active > c->min) {
    if (now - st->low_since < c->down_after_ms) {
      *why = "load is low, not yet for down_after_ms";
      return GW_SCALE_HOLD;
    }
    if (since_change < c->down_cooldown_ms) {
      *why = "load is low, in the down cooldown";
      return GW_SCALE_HOLD;
    }
    *why = "load has been low for down_after_ms";
    return changed(st, now, GW_SCALE_DOWN);
  }
  *why = "load within bounds";
  return GW_SCALE_HOLD;
}
