/* A growable byte buffer with a hard cap (curl's dynbuf): exceeding the cap is
 * GW_ERR_TOOBIG, which callers turn into 413 / 431 / RESOURCE_EXHAUSTED. */
#ifndef GW_CORE_BUF_H
#define GW_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct gw_buf {
  char *data; /* always NUL-terminated when non-NULL */
  size_t len, alloc, cap;
} gw_buf;

/* Initialises an empty buffer that may hold at most |cap| bytes. */
void gw_buf_init(gw_buf *b, size_t cap);
/* Frees the contents; the buffer is empty and reusable afterwards. */
void gw_buf_release(gw_buf *b);
void gw_buf_reset(gw_buf *b);
/* Append; GW_OK, GW_ERR_NOMEM or GW_ERR_TOOBIG (then |b| is unchanged). */
int gw_buf_append(gw_buf *b, const void *p, size_t n);
int gw_buf_appends(gw_buf *b, const char *s);
int gw_buf_appendc(gw_buf *b, char c);
int gw_buf_printf(gw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int gw_buf_vprintf(gw_buf *b, const char *fmt, va_list ap);
/* Appends |s| as a JSON string literal, quotes included. */
int gw_buf_append_json_string(gw_buf *b, const char *s, size_t n);
/* Drops the first |n| bytes. */
void gw_buf_consume(gw_buf *b, size_t n);

#endif
