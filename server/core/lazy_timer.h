/* A timeout that moves on every request and seldom fires: a keep-alive
 * connection's, a pooled upstream connection's. Setting it changes only its
 * due time; the libevent timer under it is left armed when it fires no later
 * than that, and gw_lazy_timer_fired arms it again for what is left (the lazy
 * timeout of libev's documentation). An event_del and an event_add cost ~100
 * instructions each: a connection that goes idle and back to work per
 * request sets its timer about once per timeout instead of twice per request.
 * A timeout still fires at its due time (to the millisecond). */
#ifndef GW_CORE_LAZY_TIMER_H
#define GW_CORE_LAZY_TIMER_H

#include <stdbool.h>
#include <stdint.h>

struct event;

typedef struct gw_lazy_timer {
  struct event *ev; /* the owner's evtimer; its callback asks gw_lazy_timer_fired */
  int64_t due;      /* when the timeout falls (gw_mono_ms' clock); 0: none */
  int64_t at;       /* while |on|: when |ev| fires */
  bool on;
} gw_lazy_timer;

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t gw_mono_ms(void);

/* The timeout falls |ms| from now; 0: there is none (an armed timer then
 * finds nothing due and stops). */
void gw_lazy_timer_set(gw_lazy_timer *t, int64_t ms);

/* From |ev|'s callback: true when the timeout is due now (the owner acts);
 * false when |ev| was armed for an earlier due time (armed again for the
 * rest) or none is set. */
bool gw_lazy_timer_fired(gw_lazy_timer *t);

/* Disarms |ev| (the owner closes). */
void gw_lazy_timer_stop(gw_lazy_timer *t);

#endif
