/* A growable byte buffer with a hard cap (curl's dynbuf): exceeding the cap is
 * GW_ERR_TOOBIG, which callers turn into 413 / 431 / RESOURCE_EXHAUSTED. */
#ifndef GW_CORE_BUF_H
#define GW_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <string.h>

struct gw_arena;

typedef struct gw_buf {
  char *data; /* always NUL-terminated when non-NULL */
  size_t len, alloc, cap;
  struct gw_arena *arena; /* where it grows; NULL: malloc */
} gw_buf;

/* Initialises an empty buffer that may hold at most |cap| bytes. */
void gw_buf_init(gw_buf *b, size_t cap);
/* The same, growing in |a| instead of the heap (each growth copies into a new
 * piece of the arena; the old one stays until the arena goes): for the small
 * buffers of one request, which then cost no malloc and no free. */
void gw_buf_init_arena(gw_buf *b, size_t cap, struct gw_arena *a);
/* Frees the contents; the buffer is empty and reusable afterwards. */
void gw_buf_release(gw_buf *b);
/* Makes room for |extra| more bytes at once; GW_OK, GW_ERR_NOMEM or
 * GW_ERR_TOOBIG. */
int gw_buf_reserve(gw_buf *b, size_t extra);
void gw_buf_reset(gw_buf *b);
/* Append; GW_OK, GW_ERR_NOMEM or GW_ERR_TOOBIG (then |b| is unchanged). */
static inline int gw_buf_append(gw_buf *b, const void *p, size_t n);
int gw_buf_appends(gw_buf *b, const char *s);
static inline int gw_buf_appendc(gw_buf *b, char c);
/* The growing path of the two above. */
int gw_buf_append_slow(gw_buf *b, const void *p, size_t n);
int gw_buf_printf(gw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int gw_buf_vprintf(gw_buf *b, const char *fmt, va_list ap);
/* Appends |s| as a JSON string literal, quotes included. */
int gw_buf_append_json_string(gw_buf *b, const char *s, size_t n);
/* The same without the quotes: |s| escaped as the inside of a literal. */
int gw_buf_append_json_chars(gw_buf *b, const char *s, size_t n);
/* The JSON escape of |ch| (a quote, a backslash, a control byte, or a
 * byte that is not UTF-8: U+FFFD) at |o|; its length (2 or 6). The writers'
 * one, here and in the protobuf codec. */
size_t gw_json_put_escape(char *o, unsigned char ch);
/* Drops the first |n| bytes. */
void gw_buf_consume(gw_buf *b, size_t n);

/* The codec appends a few bytes at a time: when they fit (and then they are
 * within the cap too, as alloc <= cap + 1) that is a copy and no call. */
static inline int gw_buf_append(gw_buf *b, const void *p, size_t n) {
  if (b->data && n < b->alloc - b->len) {
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
  }
  return gw_buf_append_slow(b, p, n);
}

static inline int gw_buf_appendc(gw_buf *b, char c) {
  if (b->data && b->alloc - b->len > 1) {
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
    return 0;
  }
  return gw_buf_append_slow(b, &c, 1);
}

#endif
