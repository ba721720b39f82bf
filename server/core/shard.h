/* Per-thread shards for counters that every call writes. A counter that all
 * workers add to is one cache line that the cores take turns owning, once
 * per request each: split it into GW_SHARDS copies, each thread adds to its
 * own (gw_shard()), and whoever reads adds the copies up. Threads past
 * GW_SHARDS share shards, so the copies stay atomic. */
#ifndef GW_CORE_SHARD_H
#define GW_CORE_SHARD_H

#define GW_SHARDS 32 /* a power of two, above the workers of one process */

/* Bytes from one shard to the next: the allocator aligns to 16, not 64, so
 * shards of up to 64 bytes of counters share no line when 128 apart. An
 * 8-byte counter alone needs 64. */
#define GW_SHARD_STRIDE 128

extern _Thread_local unsigned gw_shard_plus1_; /* 0: none given yet */
unsigned gw_shard_assign_(void);

/* The calling thread's shard, 0 .. GW_SHARDS - 1: given out in turn on a
 * thread's first call, the same ever after. */
static inline unsigned gw_shard(void) {
  unsigned s = gw_shard_plus1_;
  return s ? s - 1 : gw_shard_assign_();
}

#endif
