/* The process allocator: every heap allocation of the gateway's own code goes
 * through these, so the unit tests can fail the Nth allocation (fail-malloc
 * sweeps, STYLE.md 12) and count what is still live. */
#ifndef GW_CORE_ALLOC_H
#define GW_CORE_ALLOC_H

#include <stddef.h>

void *gw_malloc(size_t n);
void *gw_calloc(size_t count, size_t n);
void *gw_realloc(void *p, size_t n);
void gw_free(void *p);
/* Zeroes the NUL-terminated secret |s| (an API key, a token, a private key)
 * before freeing it, so it does not linger in freed heap. NULL is a no-op. */
void gw_free_secret(char *s);
char *gw_strdup(const char *s);
char *gw_strndup(const char *s, size_t n);

/* Test hooks, in builds with GW_ALLOC_HOOKS (CMake's GW_TESTS; elsewhere they
 * do nothing and count 0). gw_alloc_fail_after(n): the allocation after the
 * next |n| succeeds fails (n = 0 fails the next one); -1 turns failing off.
 * gw_alloc_count() is the number of allocations made since the last
 * gw_alloc_reset_count(); gw_alloc_live() is allocations not yet freed. */
void gw_alloc_fail_after(long n);
long gw_alloc_count(void);
long gw_alloc_live(void);
void gw_alloc_reset_count(void);

#endif
