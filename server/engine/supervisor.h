/* Starts and supervises the local processes that serve backends (a backend
 * with a `command`, such as the Python model server). Each such backend is a
 * pool (engine/pool.h) of pool.min..pool.max processes on consecutive ports:
 * a member that dies is restarted with exponential back-off; one thread
 * probes each member's gRPC health, samples the load (in-flight calls, queued
 * calls, queue wait, latency) and scales the pool with the decision of
 * engine/autoscale.h, logging every change with the numbers behind it; a
 * scale-down drains a member (no new calls, SIGTERM once its calls ended).
 * Every child is stopped (SIGTERM, then SIGKILL after a grace period) when
 * the gateway stops, and gets SIGTERM if the gateway itself dies
 * (PR_SET_PDEATHSIG), so nothing is left behind. */
#ifndef GW_ENGINE_SUPERVISOR_H
#define GW_ENGINE_SUPERVISOR_H

#include "config/config.h"

typedef struct gw_supervisor gw_supervisor;

/* Starts pool.min processes for every backend command of |cfg| (borrowed;
 * must outlive the supervisor) and the thread watching them. GW_OK (also
 * when there is nothing to supervise: *out may then be NULL), GW_ERR_NOMEM,
 * GW_ERR_IO. grpc_init() must have run. */
int gw_supervisor_start(const gw_config *cfg, gw_supervisor **out);

/* Stops every child and the watching thread, and frees. NULL is a no-op. */
void gw_supervisor_stop(gw_supervisor *s);

#endif
