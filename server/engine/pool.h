/* A pool of local model-server processes serving one backend (a backend with
 * a `command`): up to pool.max members, member i listening on the target's
 * port + i with its own gRPC channel. The supervisor (supervisor.c) owns the
 * processes and every state change; the gRPC provider takes and returns call
 * slots. What the request path reads or writes is atomic: no locks there.
 *
 * A pool is shared by name: the router's provider and the supervisor both
 * gw_pool_acquire() the backend's pool and gw_pool_release() it; the last
 * release frees it. */
#ifndef GW_ENGINE_POOL_H
#define GW_ENGINE_POOL_H

#include <grpc/grpc.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"
#include "engine/autoscale.h"

/* A member's life (transitions in supervisor.c's set_state):
 *   off -> starting (spawned) -> ready (health SERVING)
 *   ready -> unhealthy (health not SERVING, or a call found it unreachable)
 *   unhealthy -> ready (health SERVING again)
 *   starting | ready | unhealthy -> backoff (the process died) -> starting
 *   any running -> draining (scale-down: no new calls) -> stopping (SIGTERM
 *   once its calls have ended) -> off (reaped). Only ready takes calls. */
typedef enum {
  GW_MEMBER_OFF = 0,
  GW_MEMBER_STARTING,
  GW_MEMBER_READY,
  GW_MEMBER_UNHEALTHY,
  GW_MEMBER_BACKOFF,
  GW_MEMBER_DRAINING,
  GW_MEMBER_STOPPING,
} gw_member_state;

const char *gw_member_state_to_str(gw_member_state s);

typedef struct gw_pool_member {
  int index, port;
  char target[80]; /* "host:port" */
  grpc_channel *channel;
  _Atomic int state;     /* gw_member_state */
  _Atomic long inflight; /* calls holding a slot */
  _Atomic long calls;    /* calls ever taken */
  _Atomic int pid;       /* for reporting; 0 when none */

  /* The supervisor's alone. */
  pid_t proc;
  int64_t started_ms, restart_at, next_probe_ms, stop_sent_ms;
  int backoff_ms, restarts;
  char port_arg[32];
  char **argv; /* the command with this member's port, NULL-terminated */
} gw_pool_member;

typedef struct gw_pool {
  char *name;
  gw_pool_conf conf;
  char **command; /* copy of the backend's command */
  size_t n_command;
  int port_index;   /* index in |command| of the --port value, -1 when none */
  bool port_joined; /* it is "--port=N" */
  int n;            /* members: conf.max */
  gw_pool_member *members;
  _Atomic long queued;              /* calls waiting for a slot */
  _Atomic long wait_sum_ms, wait_n; /* since the supervisor's last sample */
  _Atomic long lat_sum_ms, lat_n;   /* likewise */
  _Atomic int active;               /* N as the supervisor last counted it */

  /* The supervisor's alone. */
  gw_autoscale_state scale;
  double wait_ewma, lat_ewma;
  int64_t next_sample_ms;

  int refs; /* under the registry's lock */
  struct gw_pool *next;
} gw_pool;

/* The pool of backend |b| (which has a command), created on first use from
 * |b| (copied). NULL when out of memory. grpc_init() must have run. */
gw_pool *gw_pool_acquire(const gw_backend_conf *b);
void gw_pool_release(gw_pool *p);

/* Request path. Takes a slot at the ready member with the fewest calls in
 * flight and a free slot (fewer than max_concurrency calls); NULL when
 * none. |wait_ms|: how long the call waited for it (recorded). */
gw_pool_member *gw_pool_take(gw_pool *p, int64_t wait_ms);
/* Gives the slot back after |latency_ms|. |unreachable|: the call found the
 * member not answering (the member takes no calls until health says so). */
void gw_pool_done(gw_pool *p, gw_pool_member *m, int64_t latency_ms, bool unreachable);
/* True when some member is ready (it may be busy). */
bool gw_pool_any_ready(const gw_pool *p);

/* Port substitution. The index in |argv| (|n| strings) of the element that
 * carries the --port value: the one after "--port", or "--port=N" itself
 * (|*joined| true). -1 when there is none. */
int gw_pool_port_index(char *const *argv, size_t n, bool *joined);
/* Writes into |buf| (|cap| bytes) the element that replaces argv[index] for
 * |port|: "N" or "--port=N". GW_OK or GW_ERR_TOOBIG. */
int gw_pool_port_arg(bool joined, int port, char *buf, size_t cap);

/* Asks member |m|'s grpc.health.v1.Health/Check ("" service) within
 * |timeout_ms|, on |cq| (a pluck queue). 1 SERVING, 0 answered but not
 * serving, -1 no answer. */
int gw_pool_probe(gw_pool_member *m, grpc_completion_queue *cq, int timeout_ms);

#endif
