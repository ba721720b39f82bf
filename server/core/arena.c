/* Bump allocator over a list of chunks; large requests get their own chunk. */
#include "core/arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/status.h"

#define ARENA_ALIGN 16
#define ARENA_DEFAULT_CHUNK 4096

struct gw_arena_deferred {
  struct gw_arena_deferred *next;
  void (*fn)(void *);
  void *arg;
};

_Static_assert(ARENA_ALIGN == 16, "gw_arena_alloc (arena.h) rounds to 16");

/* Arenas of a worker thread come and go several times a request (the HTTP
 * stream's, the call's, the parses'): a malloc and a free each, ~800
 * instructions. A thread that enables it keeps freed ones with their first
 * chunk and hands them out again: a stack per first-chunk size (4, 8 and 16
 * KiB), each as deep as a burst of answers can free at once (with 256
 * connections, 8 kept arenas in all sent most frees and mallocs of a burst to
 * the allocator's slow paths). At most 3 x 128 arenas, <= 3.5 MiB a thread.
 * Off by default (unit tests count live allocations). */
#define ARENA_CACHE_DEPTH 128
#define ARENA_CACHE_CLASSES 3 /* 4096 << 0, 1, 2 */
static __thread struct {
  int on;
  int n[ARENA_CACHE_CLASSES];
  gw_arena *free[ARENA_CACHE_CLASSES][ARENA_CACHE_DEPTH];
} cache;

/* The stack of arenas whose first chunk holds |size| bytes, or -1. */
static int cache_class(size_t size) {
  switch (size) {
  case 4096: return 0;
  case 8192: return 1;
  case 16384: return 2;
  default: return -1;
  }
}

void gw_arena_cache_enable(void) { cache.on = 1; }

static void arena_release(gw_arena *a) {
  gw_free(a->first);
  gw_free(a);
}

void gw_arena_cache_drain(void) {
  for (int k = 0; k < ARENA_CACHE_CLASSES; k++)
    while (cache.n[k] > 0)
      arena_release(cache.free[k][--cache.n[k]]);
  cache.on = 0;
}

static struct gw_arena_chunk *chunk_new(size_t size) {
  struct gw_arena_chunk *c = gw_malloc(sizeof(*c) + size);
  if (!c)
    return NULL;
  c->next = NULL;
  c->size = size;
  c->used = 0;
  return c;
}

gw_arena *gw_arena_new(size_t first_chunk, size_t cap) {
  size_t size = first_chunk ? first_chunk : ARENA_DEFAULT_CHUNK;
  gw_arena *a = NULL;
  int k = cache_class(size);
  if (k >= 0 && cache.n[k] > 0) {
    a = cache.free[k][--cache.n[k]];
    a->first->used = 0;
    a->first->next = NULL;
  } else {
    a = gw_malloc(sizeof(*a));
    if (!a)
      return NULL;
    a->first = chunk_new(size);
    if (!a->first) {
      gw_free(a);
      return NULL;
    }
  }
  a->chunk_size = size;
  a->head = a->first;
  a->deferred = NULL;
  a->cap = cap;
  a->total = 0;
  return a;
}

void gw_arena_free(gw_arena *a) {
  if (!a)
    return;
  for (struct gw_arena_deferred *d = a->deferred; d;) {
    struct gw_arena_deferred *next = d->next;
    d->fn(d->arg);
    d = next; /* the record itself lives in the arena */
  }
  for (struct gw_arena_chunk *c = a->head; c;) {
    struct gw_arena_chunk *next = c->next;
    if (c != a->first)
      gw_free(c);
    c = next;
  }
  int k = cache.on ? cache_class(a->first->size) : -1;
  if (k >= 0 && cache.n[k] < ARENA_CACHE_DEPTH)
    cache.free[k][cache.n[k]++] = a;
  else
    arena_release(a);
}

void *gw_arena_alloc_slow(gw_arena *a, size_t n) {
  size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
  if (need < n)
    return NULL;
  if (a->cap && (a->total + need > a->cap || a->total + need < a->total))
    return NULL;
  struct gw_arena_chunk *c = a->head;
  if (c->size - c->used < need) {
    if (need > a->chunk_size / 2) {
      /* Big block: its own chunk, linked behind the head so the head's free
       * space stays usable. */
      struct gw_arena_chunk *big = chunk_new(need);
      if (!big)
        return NULL;
      big->used = need;
      big->next = c->next;
      c->next = big;
      a->total += need;
      return big->data;
    }
    if (a->chunk_size < 64 * 1024)
      a->chunk_size *= 2;
    struct gw_arena_chunk *fresh = chunk_new(a->chunk_size);
    if (!fresh)
      return NULL;
    fresh->next = c;
    a->head = c = fresh;
  }
  void *p = c->data + c->used;
  c->used += need;
  a->total += need;
  return p;
}

void *gw_arena_calloc(gw_arena *a, size_t n) {
  void *p = gw_arena_alloc(a, n);
  if (p)
    memset(p, 0, n);
  return p;
}

char *gw_arena_strndup(gw_arena *a, const char *s, size_t n) {
  char *d = gw_arena_alloc(a, n + 1);
  if (!d)
    return NULL;
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

char *gw_arena_strdup(gw_arena *a, const char *s) { return gw_arena_strndup(a, s, strlen(s)); }

char *gw_arena_concat3(gw_arena *a, const char *s1, const char *s2, const char *s3) {
  size_t n1 = strlen(s1), n2 = strlen(s2), n3 = strlen(s3);
  char *d = gw_arena_alloc(a, n1 + n2 + n3 + 1);
  if (!d)
    return NULL;
  memcpy(d, s1, n1);
  memcpy(d + n1, s2, n2);
  memcpy(d + n1 + n2, s3, n3 + 1);
  return d;
}

char *gw_arena_concat(gw_arena *a, const char *s1, const char *s2) {
  return gw_arena_concat3(a, s1, s2, "");
}

char *gw_arena_printf(gw_arena *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    return NULL;
  char *d = gw_arena_alloc(a, (size_t)n + 1);
  if (!d)
    return NULL;
  va_start(ap, fmt);
  vsnprintf(d, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return d;
}

size_t gw_arena_used(const gw_arena *a) { return a->total; }

int gw_arena_defer(gw_arena *a, void (*fn)(void *), void *arg) {
  struct gw_arena_deferred *d = gw_arena_alloc(a, sizeof(*d));
  if (!d)
    return GW_ERR_NOMEM;
  d->fn = fn;
  d->arg = arg;
  d->next = a->deferred;
  a->deferred = d;
  return GW_OK;
}

static void *pb_alloc(void *data, size_t n) { return gw_arena_alloc(data, n); }
static void pb_free(void *data, void *p) { (void)data, (void)p; }

void gw_arena_pb_allocator(gw_arena *a, ProtobufCAllocator *out) {
  out->alloc = pb_alloc;
  out->free = pb_free;
  out->allocator_data = a;
}
