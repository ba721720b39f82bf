/* HTTP routes built from the google.api.http annotations of the embedded
 * descriptor set: a new RPC with an annotation is reachable over HTTP/JSON
 * with no new transcoder code. Templates support literal segments, `*`,
 * `**`, `{var}`, `{var=*}`, `{var=**}` and `{var=literal/...}` forms. Built
 * once at start; read-only (shared by all workers) afterwards. */
#ifndef GW_TRANSCODER_ROUTES_H
#define GW_TRANSCODER_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"
#include "proto/descriptors.h"

typedef struct gw_routes gw_routes;

/* A variable bound by a path template: field path (dotted) = decoded value. */
typedef struct gw_route_var {
  const char *field;
  const char *value;
} gw_route_var;

#define GW_ROUTE_MAX_VARS 8

typedef struct gw_route_match {
  /* The RPC to call when the body does not ask to stream, and the
   * server-streaming RPC bound to the same verb and path (NULL if none); when
   * a pair shares a binding the transcoder picks by `"stream": true`. */
  const gw_method_info *unary, *streaming;
  const char *body;     /* "*", a field name, or "" (no body: query binds) */
  const char *template; /* the pattern that matched, e.g. "/local/chat/completions" */
  gw_route_var vars[GW_ROUTE_MAX_VARS];
  size_t n_vars;
} gw_route_match;

/* Builds the routes of every annotated method in |d| (borrowed, must outlive
 * the table). GW_OK, GW_ERR_NOMEM, GW_ERR_INVALID (a template that does not
 * parse; logged with its method). */
int gw_routes_build(const gw_descriptors *d, gw_routes **out);
void gw_routes_free(gw_routes *r);

/* Matches |method| and the percent-encoded |path|. Variables are decoded
 * into |arena|. Returns GW_OK with |out| filled; GW_ERR_NOTFOUND when no
 * template matches the path; GW_ERR_STATE when one matches the path but not
 * the method (405), with |allow| (if not NULL) set to a list such as
 * "GET, POST" in |arena|; GW_ERR_NOMEM. */
int gw_routes_match(const gw_routes *r, const char *method, const char *path, gw_arena *arena,
                    gw_route_match *out, const char **allow);

/* Number of routes (bindings) in the table. */
size_t gw_routes_count(const gw_routes *r);

#endif
