/* The fast path of HTTP/1 parsing: a complete, plain HTTP/1.1 request (or
 * response) head found whole in one buffer is split in one pass, without http_parser's
 * per-byte state machine and callbacks. Anything else (an incomplete head,
 * HTTP/1.0, chunked bodies, Upgrade, obs-fold, bytes outside printable ASCII,
 * duplicate Content-Length, a Connection header other than "close" or
 * "keep-alive", an unknown method...) is left to http_parser, which knows
 * every case: the fast path never rejects, it only declines. */
#ifndef GW_CORE_H1_HEAD_H
#define GW_CORE_H1_HEAD_H

#include <stddef.h>
#include <stdint.h>

#define GW_H1_FAST_FIELDS 32 /* more header lines: declined */

typedef struct gw_h1_field {
  const char *name, *value; /* into the input, not NUL-terminated */
  size_t nlen, vlen;        /* the value without its leading blanks (trailing ones stay) */
} gw_h1_field;

typedef struct gw_h1_head {
  int status;         /* responses: the status code */
  const char *method; /* requests: "GET", "POST", ...: as http_method_str spells it */
  const char *target; /* the request target as sent, query and fragment included */
  size_t target_len;
  size_t head_len;        /* the request line and headers, through the blank line */
  int64_t content_length; /* -1 when not given (no body) */
  int keepalive;          /* 0 after "Connection: close" */
  size_t n_fields;
  gw_h1_field fields[GW_H1_FAST_FIELDS];
} gw_h1_head;

/* 1 with |h| filled when p[0..len) starts with a complete plain HTTP/1.1
 * request head; 0 when http_parser must take it. */
int gw_h1_parse_head(const char *p, size_t len, gw_h1_head *h);

/* The same for a response head (the gateway's upstream client): 1 when p
 * starts with a complete HTTP/1.1 head of a final status (200-599, not 204
 * or 304) with a Content-Length; 0 for every other case (1xx, chunked or
 * close-delimited bodies...). */
int gw_h1_parse_response(const char *p, size_t len, gw_h1_head *h);

#endif
