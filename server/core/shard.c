/* The calling thread's counter shard (shard.h). */
#include "core/shard.h"

#include <stdatomic.h>

_Thread_local unsigned gw_shard_plus1_;
static _Atomic unsigned next_shard;

unsigned gw_shard_assign_(void) {
  unsigned s = atomic_fetch_add_explicit(&next_shard, 1, memory_order_relaxed) % GW_SHARDS;
  gw_shard_plus1_ = s + 1;
  return s;
}
