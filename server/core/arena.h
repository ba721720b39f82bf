/* A per-request arena (h2o's req->pool): everything a call allocates comes
 * from it and goes away in one gw_arena_free(). Not thread-safe: an arena
 * belongs to the one worker that owns its call. */
#ifndef GW_CORE_ARENA_H
#define GW_CORE_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

typedef struct gw_arena gw_arena;

/* The layout is here only for gw_arena_alloc's inline fast path (a bump of
 * the head chunk: ~150 allocations a proxied request); use the functions. */
struct gw_arena_chunk {
  struct gw_arena_chunk *next;
  size_t size, used;
  _Alignas(16) unsigned char data[];
};
struct gw_arena {
  struct gw_arena_chunk *head;
  struct gw_arena_chunk *first; /* the chunk it was created with: kept when cached */
  struct gw_arena_deferred *deferred;
  size_t chunk_size, cap, total; /* total <= cap when cap != 0 */
};

/* Returns a new arena whose first chunk holds |first_chunk| bytes (0 picks a
 * default), or NULL when out of memory. |cap| bounds the total bytes the arena
 * may hand out (0 means no cap); past it, allocations return NULL. */
gw_arena *gw_arena_new(size_t first_chunk, size_t cap);

/* Frees the arena and everything allocated from it. NULL is a no-op. */
void gw_arena_free(gw_arena *a);

/* A worker thread keeps a few freed arenas (their first chunk included) and
 * reuses them; it drains the cache before it exits. */
void gw_arena_cache_enable(void);
void gw_arena_cache_drain(void);

/* Returns |n| bytes aligned for any type, or NULL (out of memory or over cap). */
void *gw_arena_alloc_slow(gw_arena *a, size_t n);
static inline void *gw_arena_alloc(gw_arena *a, size_t n) {
  size_t need = (n + 15) & ~(size_t)15;
  struct gw_arena_chunk *c = a->head;
  if (__builtin_expect(
          need >= n && c->size - c->used >= need && (!a->cap || a->cap - a->total >= need), 1)) {
    void *p = c->data + c->used;
    c->used += need;
    a->total += need;
    return p;
  }
  return gw_arena_alloc_slow(a, n);
}
void *gw_arena_calloc(gw_arena *a, size_t n);
char *gw_arena_strndup(gw_arena *a, const char *s, size_t n);
char *gw_arena_strdup(gw_arena *a, const char *s);
/* |s1| followed by |s2| (a printf("%s%s") without the printf: ~1.8K
 * instructions less), and by |s3|. */
char *gw_arena_concat(gw_arena *a, const char *s1, const char *s2);
char *gw_arena_concat3(gw_arena *a, const char *s1, const char *s2, const char *s3);
/* printf into the arena; NULL on failure. */
char *gw_arena_printf(gw_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Bytes handed out so far. */
size_t gw_arena_used(const gw_arena *a);

/* Registers |fn(arg)| to run when the arena is freed (LIFO). Returns GW_OK or
 * GW_ERR_NOMEM (then |fn| was not registered and is not called). */
int gw_arena_defer(gw_arena *a, void (*fn)(void *), void *arg);

/* A protobuf-c allocator drawing from |a|: messages unpacked with it need no
 * protobuf_c_message_free_unpacked; they die with the arena. */
void gw_arena_pb_allocator(gw_arena *a, ProtobufCAllocator *out);

#endif
