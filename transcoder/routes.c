/* Path-template routing from google.api.http rules. */
#include "transcoder/routes.h"

#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/status.h"

enum seg_kind { SEG_LITERAL, SEG_ONE, SEG_REST };

typedef struct seg {
  enum seg_kind kind;
  char *literal; /* SEG_LITERAL */
  size_t len;    /* strlen(literal) */
  int var;       /* index of the variable this segment belongs to, -1 none */
} seg;

typedef struct route {
  char verb[16];
  char *template;
  char *body;
  char *suffix; /* ":verb" custom method suffix, or NULL */
  char *exact;  /* all literal, no suffix: the one path it matches; else NULL */
  size_t exact_len;
  seg *segs;
  size_t n_segs;
  char *var_fields[GW_ROUTE_MAX_VARS];
  size_t n_vars;
  const gw_method_info *unary, *streaming;
} route;

struct gw_routes {
  route *routes;
  size_t n, cap;
};

static void route_release(route *r) {
  for (size_t i = 0; i < r->n_segs; i++)
    gw_free(r->segs[i].literal);
  gw_free(r->segs);
  for (size_t i = 0; i < r->n_vars; i++)
    gw_free(r->var_fields[i]);
  gw_free(r->template);
  gw_free(r->body);
  gw_free(r->suffix);
  gw_free(r->exact);
}

void gw_routes_free(gw_routes *r) {
  if (!r)
    return;
  for (size_t i = 0; i < r->n; i++)
    route_release(&r->routes[i]);
  gw_free(r->routes);
  gw_free(r);
}

size_t gw_routes_count(const gw_routes *r) { return r->n; }

static int add_seg(route *r, enum seg_kind kind, const char *lit, size_t n, int var) {
  seg *s = gw_realloc(r->segs, (r->n_segs + 1) * sizeof(*s));
  if (!s)
    return GW_ERR_NOMEM;
  r->segs = s;
  s = &r->segs[r->n_segs];
  s->kind = kind;
  s->var = var;
  s->literal = NULL;
  s->len = n;
  if (kind == SEG_LITERAL && !(s->literal = gw_strndup(lit, n)))
    return GW_ERR_NOMEM;
  r->n_segs++;
  return GW_OK;
}

/* Parses the segments of |t| from just after a '/' up to |end|. Variables
 * are `{field}` or `{field=segments}`. */
/* A template of literal segments only, with no custom verb, matches one
 * path: "/" and its segments joined by "/" (a request compares it whole
 * instead of segment by segment: most of the OpenAI routes are such). */
static int set_exact(route *r) {
  if (r->suffix || r->n_vars)
    return GW_OK;
  size_t n = 1;
  for (size_t i = 0; i < r->n_segs; i++) {
    if (r->segs[i].kind != SEG_LITERAL)
      return GW_OK;
    n += r->segs[i].len + 1;
  }
  if (!(r->exact = gw_malloc(n)))
    return GW_ERR_NOMEM;
  char *o = r->exact;
  for (size_t i = 0; i < r->n_segs; i++) {
    *o++ = '/';
    memcpy(o, r->segs[i].literal, r->segs[i].len);
    o += r->segs[i].len;
  }
  if (o == r->exact)
    *o++ = '/';
  *o = '\0';
  r->exact_len = (size_t)(o - r->exact);
  return GW_OK;
}

static int parse_template(route *r, const char *t) {
  if (t[0] != '/')
    return GW_ERR_INVALID;
  const char *p = t + 1;
  const char *colon = strrchr(t, ':');
  const char *brace = strrchr(t, '}');
  const char *end = t + strlen(t);
  if (colon && (!brace || colon > brace)) {
    if (!(r->suffix = gw_strdup(colon)))
      return GW_ERR_NOMEM;
    end = colon;
  }
  int rc;
  while (p < end) {
    if (*p == '{') {
      const char *close = memchr(p, '}', (size_t)(end - p));
      if (!close || r->n_vars >= GW_ROUTE_MAX_VARS)
        return GW_ERR_INVALID;
      const char *eq = memchr(p, '=', (size_t)(close - p));
      const char *name_end = eq ? eq : close;
      int var = (int)r->n_vars;
      if (!(r->var_fields[r->n_vars] = gw_strndup(p + 1, (size_t)(name_end - p - 1))))
        return GW_ERR_NOMEM;
      r->n_vars++;
      if (!eq) {
        if ((rc = add_seg(r, SEG_ONE, NULL, 0, var)))
          return rc;
      } else {
        /* The variable's own sub-template: segments separated by '/'. */
        const char *q = eq + 1;
        while (q < close) {
          const char *slash = memchr(q, '/', (size_t)(close - q));
          const char *se = slash ? slash : close;
          size_t n = (size_t)(se - q);
          if (n == 2 && q[0] == '*' && q[1] == '*')
            rc = add_seg(r, SEG_REST, NULL, 0, var);
          else if (n == 1 && q[0] == '*')
            rc = add_seg(r, SEG_ONE, NULL, 0, var);
          else
            rc = add_seg(r, SEG_LITERAL, q, n, var);
          if (rc)
            return rc;
          q = slash ? slash + 1 : close;
        }
      }
      p = close + 1;
    } else {
      const char *slash = memchr(p, '/', (size_t)(end - p));
      const char *se = slash ? slash : end;
      size_t n = (size_t)(se - p);
      if (n == 2 && p[0] == '*' && p[1] == '*')
        rc = add_seg(r, SEG_REST, NULL, 0, -1);
      else if (n == 1 && p[0] == '*')
        rc = add_seg(r, SEG_ONE, NULL, 0, -1);
      else if (n == 0)
        return GW_ERR_INVALID;
      else
        rc = add_seg(r, SEG_LITERAL, p, n, -1);
      if (rc)
        return rc;
      p = se;
    }
    if (p < end) {
      if (*p != '/')
        return GW_ERR_INVALID;
      p++;
    }
  }
  for (size_t i = 0; i + 1 < r->n_segs; i++)
    if (r->segs[i].kind == SEG_REST)
      return GW_ERR_INVALID; /* ** must be last */
  return set_exact(r);
}

static route *find_same(gw_routes *rt, const char *verb, const char *tmpl) {
  for (size_t i = 0; i < rt->n; i++)
    if (strcmp(rt->routes[i].verb, verb) == 0 && strcmp(rt->routes[i].template, tmpl) == 0)
      return &rt->routes[i];
  return NULL;
}

static int add_binding(gw_routes *rt, const gw_method_info *m, const Google__Api__HttpRule *h) {
  const char *verb = NULL, *tmpl = NULL;
  switch (h->pattern_case) {
  case GOOGLE__API__HTTP_RULE__PATTERN_GET: verb = "GET", tmpl = h->get; break;
  case GOOGLE__API__HTTP_RULE__PATTERN_POST: verb = "POST", tmpl = h->post; break;
  case GOOGLE__API__HTTP_RULE__PATTERN_PUT: verb = "PUT", tmpl = h->put; break;
  case GOOGLE__API__HTTP_RULE__PATTERN_DELETE: verb = "DELETE", tmpl = h->delete_; break;
  case GOOGLE__API__HTTP_RULE__PATTERN_PATCH: verb = "PATCH", tmpl = h->patch; break;
  case GOOGLE__API__HTTP_RULE__PATTERN_CUSTOM:
    if (h->custom)
      verb = h->custom->kind, tmpl = h->custom->path;
    break;
  default: break;
  }
  if (!verb || !tmpl || strlen(verb) >= sizeof(((route *)0)->verb))
    return GW_ERR_INVALID;
  route *same = find_same(rt, verb, tmpl);
  if (same) {
    /* A unary and a server-streaming RPC sharing one binding. */
    if (m->server_streaming && !same->streaming)
      same->streaming = m;
    else if (!m->server_streaming && !same->unary)
      same->unary = m;
    else
      return GW_ERR_INVALID;
    return GW_OK;
  }
  if (rt->n == rt->cap) {
    size_t cap = rt->cap ? rt->cap * 2 : 16;
    route *p = gw_realloc(rt->routes, cap * sizeof(*p));
    if (!p)
      return GW_ERR_NOMEM;
    rt->routes = p;
    rt->cap = cap;
  }
  route *r = &rt->routes[rt->n];
  memset(r, 0, sizeof(*r));
  strcpy(r->verb, verb);
  if (m->server_streaming)
    r->streaming = m;
  else
    r->unary = m;
  int rc = GW_ERR_NOMEM;
  if (!(r->template = gw_strdup(tmpl)) || !(r->body = gw_strdup(h->body ? h->body : "")) ||
      (rc = parse_template(r, tmpl)) != GW_OK) {
    route_release(r);
    return rc;
  }
  rt->n++;
  return GW_OK;
}

int gw_routes_build(const gw_descriptors *d, gw_routes **out) {
  gw_routes *rt = gw_calloc(1, sizeof(*rt));
  if (!rt)
    return GW_ERR_NOMEM;
  for (size_t i = 0; i < gw_descriptors_method_count(d); i++) {
    const gw_method_info *m = gw_descriptors_method(d, i);
    if (!m->http || !m->input || !m->output || m->client_streaming)
      continue;
    int rc = add_binding(rt, m, m->http);
    for (size_t k = 0; rc == GW_OK && k < m->http->n_additional_bindings; k++)
      rc = add_binding(rt, m, m->http->additional_bindings[k]);
    if (rc != GW_OK) {
      if (rc == GW_ERR_INVALID)
        GW_LOGE("routes", NULL, "%s: unusable google.api.http rule", m->path);
      gw_routes_free(rt);
      return rc;
    }
  }
  *out = rt;
  return GW_OK;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Percent-decodes |n| bytes of |s| into |a|. For single segments "%2F" stays
 * a literal slash in the value, as the spec says for `*` variables. */
static char *decode(gw_arena *a, const char *s, size_t n) {
  char *d = gw_arena_alloc(a, n + 1);
  if (!d)
    return NULL;
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
      d[j++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
      i += 2;
    } else {
      d[j++] = s[i];
    }
  }
  d[j] = '\0';
  return d;
}

/* Matches |r| against |path|; fills vars on success. */
/* |path| (|plen| bytes) against |r|; |custom|: its last segment holds a
 * ':' (a ":verb" suffix), which only templates with a suffix match. */
static bool match_path(const route *r, const char *path, size_t plen, bool custom, gw_arena *a,
                       gw_route_match *out, int *nomem) {
  if (r->exact) {
    out->n_vars = 0;
    return plen == r->exact_len && memcmp(path, r->exact, plen) == 0;
  }
  const char *end = path + plen;
  if (r->suffix) {
    size_t sl = strlen(r->suffix);
    if (plen < sl || strcmp(end - sl, r->suffix) != 0)
      return false;
    end -= sl;
  } else if (custom) {
    return false;
  }
  if (path[0] != '/')
    return false;
  const char *p = path + 1;
  const char *var_start[GW_ROUTE_MAX_VARS] = {0};
  const char *var_end[GW_ROUTE_MAX_VARS] = {0};
  for (size_t i = 0; i < r->n_segs; i++) {
    const seg *s = &r->segs[i];
    if (p > end)
      return false;
    const char *slash = memchr(p, '/', (size_t)(end - p));
    const char *se = s->kind == SEG_REST ? end : (slash ? slash : end);
    size_t n = (size_t)(se - p);
    if (s->kind == SEG_LITERAL) {
      if (s->len != n || memcmp(s->literal, p, n) != 0)
        return false;
    } else if (n == 0) {
      return false; /* `*` and `**` bind at least one character */
    }
    if (s->var >= 0) {
      if (!var_start[s->var])
        var_start[s->var] = p;
      var_end[s->var] = se;
    }
    p = se;
    if (i + 1 < r->n_segs) {
      if (p >= end || *p != '/')
        return false;
      p++;
    }
  }
  if (p != end)
    return false;
  out->n_vars = 0;
  for (size_t v = 0; v < r->n_vars; v++) {
    if (!var_start[v])
      continue;
    out->vars[out->n_vars].field = r->var_fields[v];
    out->vars[out->n_vars].value = decode(a, var_start[v], (size_t)(var_end[v] - var_start[v]));
    if (!out->vars[out->n_vars].value) {
      *nomem = 1;
      return false;
    }
    out->n_vars++;
  }
  return true;
}

int gw_routes_match(const gw_routes *rt, const char *method, const char *path, gw_arena *arena,
                    gw_route_match *out, const char **allow) {
  bool path_seen = false;
  char allowed[128] = "";
  size_t plen = strlen(path); /* the same for every route: found once */
  const char *last = memrchr(path, '/', plen);
  bool custom = last && memchr(last, ':', (size_t)(path + plen - last));
  gw_route_match m; /* a route's variables land here once its path matches */
  memset(&m, 0, sizeof m);
  for (size_t i = 0; i < rt->n; i++) {
    const route *r = &rt->routes[i];
    int nomem = 0;
    if (!match_path(r, path, plen, custom, arena, &m, &nomem)) {
      if (nomem)
        return GW_ERR_NOMEM;
      continue;
    }
    bool verb_ok = strcmp(r->verb, method) == 0 ||
                   (strcmp(method, "HEAD") == 0 && strcmp(r->verb, "GET") == 0);
    if (!verb_ok) {
      path_seen = true;
      if (!strstr(allowed, r->verb) && strlen(allowed) + strlen(r->verb) + 3 < sizeof allowed) {
        if (allowed[0])
          strcat(allowed, ", ");
        strcat(allowed, r->verb);
      }
      continue;
    }
    m.unary = r->unary;
    m.streaming = r->streaming;
    m.body = r->body;
    m.template = r->template;
    *out = m;
    return GW_OK;
  }
  if (path_seen) {
    if (allow)
      *allow = gw_arena_strdup(arena, allowed);
    return GW_ERR_STATE;
  }
  return GW_ERR_NOTFOUND;
}
