/* A protobuf-c allocator over a gw_arena that remembers whether an allocation
 * failed, so a failed unpack can be told apart: out of memory (GW_ERR_NOMEM)
 * or bytes that do not decode (GW_ERR_INVALID). */
#ifndef GW_PROTO_PB_ARENA_H
#define GW_PROTO_PB_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

#include "core/arena.h"

typedef struct gw_pb_arena {
  ProtobufCAllocator allocator; /* pass &allocator to protobuf-c */
  gw_arena *arena;
  bool failed; /* set once any allocation through |allocator| failed */
} gw_pb_arena;

/* Points |pa| at |a|; messages unpacked through it die with |a|. */
void gw_pb_arena_init(gw_pb_arena *pa, gw_arena *a);

/* The error for a NULL returned by a protobuf-c unpack through |pa|:
 * GW_ERR_NOMEM when an allocation failed, GW_ERR_INVALID otherwise. */
int gw_pb_arena_unpack_error(const gw_pb_arena *pa);

#endif
