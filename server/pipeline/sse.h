/* A reader of server-sent events (text/event-stream), as OpenAI-compatible
 * and other upstreams stream them. */
#ifndef GW_PIPELINE_SSE_H
#define GW_PIPELINE_SSE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

/* Incremental: bytes go in as they arrive, split anywhere; events come out
 * one at a time. Lines end in LF, CRLF or CR; "data:" lines of an event are
 * joined with LF; comments (":...") and "id:"/"retry:" are ignored; a blank
 * line ends an event; "data: [DONE]" is reported as |done|. Capped: an event
 * (or a line) longer than the cap is GW_ERR_TOOBIG. */
typedef struct gw_sse_reader {
  gw_buf in;      /* bytes fed and not yet parsed */
  gw_buf data;    /* the data of the event being read */
  char event[32]; /* its "event:" name, truncated */
  size_t pos;     /* bytes of |in| already parsed */
  size_t cap;
  bool has_data; /* a data: line was seen in this event */
  bool skip_lf;  /* the last line ended in CR at the end of the input */
  bool returned; /* |data| was handed out: reset it on the next call */
} gw_sse_reader;

typedef struct gw_sse_event {
  const char *event; /* "" when none was named */
  const char *data;  /* NUL-terminated; valid until the next call */
  size_t len;
  bool done; /* data was [DONE] */
} gw_sse_event;

/* |cap| bounds one event's data and the bytes held unparsed. */
void gw_sse_reader_init(gw_sse_reader *r, size_t cap);
void gw_sse_reader_release(gw_sse_reader *r);
/* Appends |n| bytes. GW_OK, GW_ERR_NOMEM or GW_ERR_TOOBIG. */
int gw_sse_reader_feed(gw_sse_reader *r, const char *p, size_t n);
/* The next complete event: 1 and |*ev| filled; 0 when more input is
 * needed; GW_ERR_TOOBIG (event over the cap) or GW_ERR_NOMEM. */
int gw_sse_reader_next(gw_sse_reader *r, gw_sse_event *ev);

/* Whether an event's data |p| (|n| bytes) holds "error" with its quotes (a
 * member an error object has): memmem's answer, the cheap test before an
 * event is parsed as an error. */
bool gw_sse_names_error(const char *p, size_t n);

#endif
