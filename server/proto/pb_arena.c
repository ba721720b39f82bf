/* protobuf-c allocator over a gw_arena that records allocation failures. */
#include "proto/pb_arena.h"

#include "core/status.h"

static void *pa_alloc(void *data, size_t n) {
  gw_pb_arena *pa = data;
  void *p = gw_arena_alloc(pa->arena, n);
  if (!p)
    pa->failed = true;
  return p;
}

/* Arena memory goes away with the arena. */
static void pa_free(void *data, void *p) { (void)data, (void)p; }

void gw_pb_arena_init(gw_pb_arena *pa, gw_arena *a) {
  pa->allocator.alloc = pa_alloc;
  pa->allocator.free = pa_free;
  pa->allocator.allocator_data = pa;
  pa->arena = a;
  pa->failed = false;
}

int gw_pb_arena_unpack_error(const gw_pb_arena *pa) {
  return pa->failed ? GW_ERR_NOMEM : GW_ERR_INVALID;
}
