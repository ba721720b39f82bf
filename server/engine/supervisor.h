/* Starts and supervises the local processes that serve backends (a backend
 * with a `command`, such as the Python model server): each is restarted with
 * exponential back-off when it dies, and stopped (SIGTERM, then SIGKILL after
 * a grace period) when the gateway stops. A child also gets SIGTERM if the
 * gateway itself dies (PR_SET_PDEATHSIG), so nothing is left behind. */
#ifndef GW_ENGINE_SUPERVISOR_H
#define GW_ENGINE_SUPERVISOR_H

#include "config/config.h"

typedef struct gw_supervisor gw_supervisor;

/* Spawns every backend command of |cfg| (borrowed; must outlive the
 * supervisor) and a thread watching them. GW_OK (also when there is nothing
 * to supervise: *out may then be NULL), GW_ERR_NOMEM, GW_ERR_IO. */
int gw_supervisor_start(const gw_config *cfg, gw_supervisor **out);

/* Stops every child and the watching thread, and frees. NULL is a no-op. */
void gw_supervisor_stop(gw_supervisor *s);

#endif
