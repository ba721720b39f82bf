/* Lazy timeouts (see lazy_timer.h). */
#include "core/lazy_timer.h"

#include <event2/event.h>
#include <time.h>

int64_t gw_mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void arm(gw_lazy_timer *t, int64_t ms) {
  struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
  event_add(t->ev, &tv);
  t->on = true;
  t->at = t->due;
}

void gw_lazy_timer_set(gw_lazy_timer *t, int64_t ms) {
  if (ms <= 0) {
    t->due = 0;
    return;
  }
  t->due = gw_mono_ms() + ms;
  if (!t->on || t->at > t->due)
    arm(t, ms);
}

bool gw_lazy_timer_fired(gw_lazy_timer *t) {
  t->on = false;
  if (!t->due)
    return false; /* armed for a state that has ended */
  int64_t now = gw_mono_ms();
  if (now < t->due) { /* armed for an earlier state: what is left */
    arm(t, t->due - now);
    return false;
  }
  return true;
}

void gw_lazy_timer_stop(gw_lazy_timer *t) {
  event_del(t->ev);
  t->on = false;
}
