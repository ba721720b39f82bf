/* http_parser as the reference for the HTTP/1 request head fast path
 * (core/h1_head.c): parses the same bytes and says whether both
 * read the same request (or response) head. Shared by test_h1_head.c and fuzz_h1_head.c. */
#ifndef GW_TEST_H1_REF_H
#define GW_TEST_H1_REF_H

#include <http_parser.h>
#include <stdio.h>
#include <string.h>

#include "core/h1_head.h"

/* Room for a target, a name or a value: http_parser's own cap on a whole
 * head (HTTP_MAX_HEADER_SIZE, 80 KB as Debian builds it), so that nothing it
 * reads is too long for the reference. (8 KB was too little: the fuzzer
 * found an 11 KB request with a 9 KB target that the fast path and
 * http_parser both read, and called it a difference.) */
#define H1_REF_MAX HTTP_MAX_HEADER_SIZE

struct h1_ref {
  char url[H1_REF_MAX];
  size_t url_len;
  char name[GW_H1_FAST_FIELDS + 1][H1_REF_MAX], value[GW_H1_FAST_FIELDS + 1][H1_REF_MAX];
  size_t nlen[GW_H1_FAST_FIELDS + 1], vlen[GW_H1_FAST_FIELDS + 1];
  size_t n; /* fields seen; the one being read is n - 1 */
  int in_value, overflow, done;
};

static int h1_ref_append(char *dst, size_t *len, const char *at, size_t n, int *overflow) {
  if (*len + n > H1_REF_MAX) {
    *overflow = 1;
    return 0;
  }
  memcpy(dst + *len, at, n);
  *len += n;
  return 0;
}

static int h1_ref_on_url(http_parser *p, const char *at, size_t n) {
  struct h1_ref *r = p->data;
  return h1_ref_append(r->url, &r->url_len, at, n, &r->overflow);
}

static int h1_ref_on_field(http_parser *p, const char *at, size_t n) {
  struct h1_ref *r = p->data;
  if (r->n == 0 || r->in_value) {
    if (r->n > GW_H1_FAST_FIELDS) {
      r->overflow = 1;
      return 0;
    }
    r->nlen[r->n] = r->vlen[r->n] = 0;
    r->n++;
    r->in_value = 0;
  }
  return h1_ref_append(r->name[r->n - 1], &r->nlen[r->n - 1], at, n, &r->overflow);
}

static int h1_ref_on_value(http_parser *p, const char *at, size_t n) {
  struct h1_ref *r = p->data;
  r->in_value = 1;
  if (r->n == 0)
    return 0;
  return h1_ref_append(r->value[r->n - 1], &r->vlen[r->n - 1], at, n, &r->overflow);
}

static int h1_ref_on_headers_complete(http_parser *p) {
  struct h1_ref *r = p->data;
  r->done = 1;
  http_parser_pause(p, 1);
  return 0;
}

/* 1 when http_parser reads |buf| as the same head as |h| (one the fast path
 * accepted; |type| HTTP_REQUEST or HTTP_RESPONSE); otherwise 0 with the
 * difference in |why|. */
static int h1_ref_agrees_as(enum http_parser_type type, const char *buf, size_t len,
                            const gw_h1_head *h, char *why, size_t whylen) {
  static struct h1_ref r; /* large: not on the stack */
  static const http_parser_settings st = {
      .on_url = h1_ref_on_url,
      .on_header_field = h1_ref_on_field,
      .on_header_value = h1_ref_on_value,
      .on_headers_complete = h1_ref_on_headers_complete,
  };
  http_parser p;
  /* the counts only: each field's lengths are set when it starts (zeroing
   * the whole 5 MB for every fuzz input would be most of the fuzzer's time) */
  r.url_len = r.n = 0;
  r.in_value = r.overflow = r.done = 0;
  http_parser_init(&p, type);
  p.data = &r;
  size_t used = http_parser_execute(&p, &st, buf, len);
  enum http_errno e = HTTP_PARSER_ERRNO(&p);
#define H1_DIFF(...) return snprintf(why, whylen, __VA_ARGS__), 0
  if (!r.done || e != HPE_PAUSED)
    H1_DIFF("http_parser: %s, head %s", http_errno_name(e), r.done ? "complete" : "incomplete");
  if (r.overflow)
    H1_DIFF("reference overflow");
  /* paused in on_headers_complete, http_parser has not yet counted the final LF */
  if (used + 1 != h->head_len)
    H1_DIFF("head length %zu vs http_parser %zu + 1", h->head_len, used);
  if (type == HTTP_REQUEST && strcmp(h->method, http_method_str((enum http_method)p.method)) != 0)
    H1_DIFF("method %s vs %s", h->method, http_method_str((enum http_method)p.method));
  if (type == HTTP_RESPONSE && (unsigned)h->status != p.status_code)
    H1_DIFF("status %d vs %u", h->status, p.status_code);
  if (p.http_major != 1 || p.http_minor != 1)
    H1_DIFF("version 1.1 vs %d.%d", p.http_major, p.http_minor);
  if (h->target_len != r.url_len || (r.url_len && memcmp(h->target, r.url, r.url_len) != 0))
    H1_DIFF("target '%.*s' vs '%.*s'", (int)h->target_len, h->target, (int)r.url_len, r.url);
  if (h->n_fields != r.n)
    H1_DIFF("%zu fields vs %zu", h->n_fields, r.n);
  for (size_t i = 0; i < r.n; i++) {
    const gw_h1_field *f = &h->fields[i];
    if (f->nlen != r.nlen[i] || memcmp(f->name, r.name[i], f->nlen) != 0)
      H1_DIFF("field %zu name '%.*s' vs '%.*s'", i, (int)f->nlen, f->name, (int)r.nlen[i],
              r.name[i]);
    if (f->vlen != r.vlen[i] || memcmp(f->value, r.value[i], f->vlen) != 0)
      H1_DIFF("field %zu value '%.*s' vs '%.*s'", i, (int)f->vlen, f->value, (int)r.vlen[i],
              r.value[i]);
  }
  int has_cl = (p.flags & F_CONTENTLENGTH) != 0;
  if ((h->content_length >= 0) != has_cl ||
      (has_cl && (uint64_t)h->content_length != p.content_length))
    H1_DIFF("content-length %lld vs %s%llu", (long long)h->content_length, has_cl ? "" : "none ",
            (unsigned long long)p.content_length);
  if (p.flags & F_CHUNKED)
    H1_DIFF("http_parser reads a chunked body");
  if (p.upgrade)
    H1_DIFF("http_parser sees an upgrade");
  if (h->keepalive != http_should_keep_alive(&p))
    H1_DIFF("keep-alive %d vs %d", h->keepalive, http_should_keep_alive(&p));
#undef H1_DIFF
  return 1;
}

#endif
