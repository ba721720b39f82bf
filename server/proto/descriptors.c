/* The descriptor registry: parses a FileDescriptorSet once and indexes its
 * files, services, methods, symbols, HTTP rules and the compiled protobuf-c
 * message descriptors, for reflection, the gRPC front door and the
 * transcoder. Everything lives in one arena freed by gw_descriptors_free(). */
#include "proto/descriptors.h"

#include <string.h>

#include "aigateway/v1/admin.pb-c.h"
#include "aigateway/v1/auth.pb-c.h"
#include "aigateway/v1/inference.pb-c.h"
#include "core/arena.h"
#include "core/log.h"
#include "core/status.h"
#include "google/api/http.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"
#include "proto/pb_arena.h"

/* google.api.http: extension field 72295728 of google.protobuf.MethodOptions.
 * protobuf-c has no extensions, so it sits in the options' unknown fields. */
#define HTTP_RULE_FIELD 72295728u

/* FileDescriptorSet.file */
#define SET_FILE_FIELD 1u

/* --- string-keyed hash table (open addressing, arena-backed) ------------- */

typedef struct slot {
  const char *key; /* NULL: empty */
  const void *val;
  uint32_t hash;
} slot;

typedef struct table {
  slot *slots;
  size_t cap, len; /* cap is 0 or a power of two */
} table;

static uint32_t hash_str(const char *s) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

static const void *table_get(const table *t, const char *key) {
  if (!t->cap || !key)
    return NULL;
  uint32_t h = hash_str(key);
  for (size_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
    const slot *s = &t->slots[i];
    if (!s->key)
      return NULL;
    if (s->hash == h && strcmp(s->key, key) == 0)
      return s->val;
  }
}

static void table_place(slot *slots, size_t cap, const char *key, const void *val, uint32_t h) {
  size_t i = h & (cap - 1);
  while (slots[i].key)
    i = (i + 1) & (cap - 1);
  slots[i] = (slot){key, val, h};
}

/* Adds |key| (which must outlive the table) unless present. Returns GW_OK
 * when added, 1 when the key was already there (the first value stays),
 * GW_ERR_NOMEM. Old slot arrays stay in the arena (at most as much again). */
static int table_put(gw_arena *a, table *t, const char *key, const void *val) {
  uint32_t h = hash_str(key);
  if (t->cap) {
    for (size_t i = h & (t->cap - 1); t->slots[i].key; i = (i + 1) & (t->cap - 1))
      if (t->slots[i].hash == h && strcmp(t->slots[i].key, key) == 0)
        return 1;
  }
  if ((t->len + 1) * 4 > t->cap * 3) {
    size_t cap = t->cap ? t->cap * 2 : 64;
    slot *slots = gw_arena_calloc(a, cap * sizeof(*slots));
    if (!slots)
      return GW_ERR_NOMEM;
    for (size_t i = 0; i < t->cap; i++)
      if (t->slots[i].key)
        table_place(slots, cap, t->slots[i].key, t->slots[i].val, t->slots[i].hash);
    t->slots = slots;
    t->cap = cap;
  }
  table_place(t->slots, t->cap, key, val, h);
  t->len++;
  return GW_OK;
}

/* --- the registry ------------------------------------------------------- */

typedef struct file_entry {
  const Google__Protobuf__FileDescriptorProto *proto;
  const uint8_t *bytes; /* the file's serialized bytes, sliced from the set */
  size_t len;
  size_t *closure; /* indices into files[]: itself, then each transitive dependency once */
  size_t n_closure;
} file_entry;

typedef struct symbol {
  const file_entry *file;
  gw_symbol_kind kind;
} symbol;

typedef struct extension {
  struct extension *next;
  const char *extendee; /* no leading dot */
  int32_t number;
  const file_entry *file;
} extension;

struct gw_descriptors {
  gw_arena *arena;
  file_entry *files;
  size_t n_files;
  const char **services;
  size_t n_services;
  gw_method_info *methods;
  size_t n_methods;
  extension *extensions;
  table files_by_name, methods_by_path, symbols, messages;
};

/* Types a reflection or transcoding client may need as C structs: every
 * service's messages (and, recursively, the messages their fields use), plus
 * the well-known types compiled into the core library. */
static const ProtobufCServiceDescriptor *const compiled_services[] = {
    &aigateway__v1__inference__descriptor,
    &aigateway__v1__auth__descriptor,
    &aigateway__v1__admin__descriptor,
    &grpc__health__v1__health__descriptor,
    &grpc__reflection__v1__server_reflection__descriptor,
    &grpc__reflection__v1alpha__server_reflection__descriptor,
};
static const ProtobufCMessageDescriptor *const compiled_messages[] = {
    &google__protobuf__file_descriptor_set__descriptor,
    &google__api__http__descriptor,
    &google__protobuf__struct__descriptor,
    &google__protobuf__timestamp__descriptor,
    &google__protobuf__duration__descriptor,
    &google__protobuf__double_value__descriptor,
    &google__protobuf__float_value__descriptor,
    &google__protobuf__int64_value__descriptor,
    &google__protobuf__uint64_value__descriptor,
    &google__protobuf__int32_value__descriptor,
    &google__protobuf__uint32_value__descriptor,
    &google__protobuf__bool_value__descriptor,
    &google__protobuf__string_value__descriptor,
    &google__protobuf__bytes_value__descriptor,
};

static const char *strip_dot(const char *s) {
  if (!s)
    return "";
  return s[0] == '.' ? s + 1 : s;
}

/* "scope.name", or "name" when |scope| is empty. NULL when out of memory. */
static const char *join(gw_arena *a, const char *scope, const char *name) {
  if (!scope || !*scope)
    return gw_arena_strdup(a, name ? name : "");
  return gw_arena_printf(a, "%s.%s", scope, name ? name : "");
}

/* --- wire scan of the FileDescriptorSet --------------------------------- */

static int read_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *out) {
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    if (*pos >= len)
      return GW_ERR_INVALID;
    uint8_t b = p[(*pos)++];
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return GW_OK;
    }
  }
  return GW_ERR_INVALID;
}

/* Walks the top level of a serialized FileDescriptorSet. Counts its files in
 * *n and, when |files| is non-NULL, records each file's byte slice there.
 * Unknown fields are skipped; anything malformed is GW_ERR_INVALID. */
static int scan_set(const uint8_t *p, size_t len, file_entry *files, size_t *n) {
  size_t pos = 0, count = 0;
  while (pos < len) {
    uint64_t tag, v;
    if (read_varint(p, len, &pos, &tag) != GW_OK || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
      return GW_ERR_INVALID;
    switch (tag & 7) {
    case 0:
      if (read_varint(p, len, &pos, &v) != GW_OK)
        return GW_ERR_INVALID;
      break;
    case 1:
      if (len - pos < 8)
        return GW_ERR_INVALID;
      pos += 8;
      break;
    case 5:
      if (len - pos < 4)
        return GW_ERR_INVALID;
      pos += 4;
      break;
    case 2:
      if (read_varint(p, len, &pos, &v) != GW_OK || v > len - pos)
        return GW_ERR_INVALID;
      if ((tag >> 3) == SET_FILE_FIELD) {
        if (files) {
          files[count].bytes = p + pos;
          files[count].len = (size_t)v;
        }
        count++;
      }
      pos += (size_t)v;
      break;
    default: /* groups and reserved wire types have no place in a set */ return GW_ERR_INVALID;
    }
    if ((tag >> 3) == SET_FILE_FIELD && (tag & 7) != 2)
      return GW_ERR_INVALID;
  }
  *n = count;
  return GW_OK;
}

/* --- indexing ----------------------------------------------------------- */

static int add_symbol(gw_descriptors *d, const char *name, const file_entry *f,
                      gw_symbol_kind kind) {
  if (!name)
    return GW_ERR_NOMEM;
  symbol *s = gw_arena_alloc(d->arena, sizeof(*s));
  if (!s)
    return GW_ERR_NOMEM;
  s->file = f;
  s->kind = kind;
  int rc = table_put(d->arena, &d->symbols, name, s);
  return rc < 0 ? rc : GW_OK; /* a duplicate keeps its first definition */
}

static int add_extension(gw_descriptors *d, const char *scope, const file_entry *f,
                         const Google__Protobuf__FieldDescriptorProto *x) {
  int rc = add_symbol(d, join(d->arena, scope, x->name), f, GW_SYMBOL_EXTENSION);
  if (rc)
    return rc;
  extension *e = gw_arena_alloc(d->arena, sizeof(*e));
  if (!e)
    return GW_ERR_NOMEM;
  e->extendee = strip_dot(x->extendee);
  e->number = x->number;
  e->file = f;
  e->next = d->extensions;
  d->extensions = e;
  return GW_OK;
}

/* Enum values are scoped like C++ (siblings of their enum, "pkg.VALUE") and,
 * for clients that qualify them by the enum, also as "pkg.Enum.VALUE". */
static int index_enum(gw_descriptors *d, const char *scope, const file_entry *f,
                      const Google__Protobuf__EnumDescriptorProto *e) {
  const char *name = join(d->arena, scope, e->name);
  int rc = add_symbol(d, name, f, GW_SYMBOL_ENUM);
  for (size_t i = 0; rc == GW_OK && i < e->n_value; i++) {
    rc = add_symbol(d, join(d->arena, scope, e->value[i]->name), f, GW_SYMBOL_ENUM_VALUE);
    if (rc == GW_OK)
      rc = add_symbol(d, join(d->arena, name, e->value[i]->name), f, GW_SYMBOL_ENUM_VALUE);
  }
  return rc;
}

static int index_message(gw_descriptors *d, const char *scope, const file_entry *f,
                         const Google__Protobuf__DescriptorProto *m) {
  const char *name = join(d->arena, scope, m->name);
  int rc = add_symbol(d, name, f, GW_SYMBOL_MESSAGE);
  for (size_t i = 0; rc == GW_OK && i < m->n_field; i++)
    rc = add_symbol(d, join(d->arena, name, m->field[i]->name), f, GW_SYMBOL_FIELD);
  for (size_t i = 0; rc == GW_OK && i < m->n_oneof_decl; i++)
    rc = add_symbol(d, join(d->arena, name, m->oneof_decl[i]->name), f, GW_SYMBOL_ONEOF);
  for (size_t i = 0; rc == GW_OK && i < m->n_nested_type; i++)
    rc = index_message(d, name, f, m->nested_type[i]);
  for (size_t i = 0; rc == GW_OK && i < m->n_enum_type; i++)
    rc = index_enum(d, name, f, m->enum_type[i]);
  for (size_t i = 0; rc == GW_OK && i < m->n_extension; i++)
    rc = add_extension(d, name, f, m->extension[i]);
  return rc;
}

/* Every package prefix ("aigateway", "aigateway.v1"), then each top-level
 * definition of |f| and everything nested in it. */
static int index_file_symbols(gw_descriptors *d, const file_entry *f) {
  const Google__Protobuf__FileDescriptorProto *p = f->proto;
  const char *pkg = p->package ? p->package : "";
  int rc = GW_OK;
  for (const char *dot = pkg; rc == GW_OK && *pkg; dot++) {
    if (*dot == '.' || *dot == '\0')
      rc =
          add_symbol(d, gw_arena_strndup(d->arena, pkg, (size_t)(dot - pkg)), f, GW_SYMBOL_PACKAGE);
    if (!*dot)
      break;
  }
  for (size_t i = 0; rc == GW_OK && i < p->n_message_type; i++)
    rc = index_message(d, pkg, f, p->message_type[i]);
  for (size_t i = 0; rc == GW_OK && i < p->n_enum_type; i++)
    rc = index_enum(d, pkg, f, p->enum_type[i]);
  for (size_t i = 0; rc == GW_OK && i < p->n_extension; i++)
    rc = add_extension(d, pkg, f, p->extension[i]);
  for (size_t i = 0; rc == GW_OK && i < p->n_service; i++) {
    const Google__Protobuf__ServiceDescriptorProto *s = p->service[i];
    const char *sname = join(d->arena, pkg, s->name);
    rc = add_symbol(d, sname, f, GW_SYMBOL_SERVICE);
    for (size_t j = 0; rc == GW_OK && j < s->n_method; j++)
      rc = add_symbol(d, join(d->arena, sname, s->method[j]->name), f, GW_SYMBOL_METHOD);
  }
  return rc;
}

/* Records |desc| and, recursively, the message types of its fields. */
static int index_compiled(gw_descriptors *d, const ProtobufCMessageDescriptor *desc) {
  int rc = table_put(d->arena, &d->messages, desc->name, desc);
  if (rc != GW_OK)
    return rc < 0 ? rc : GW_OK; /* seen already */
  for (unsigned i = 0; i < desc->n_fields; i++) {
    const ProtobufCFieldDescriptor *fd = &desc->fields[i];
    if (fd->type == PROTOBUF_C_TYPE_MESSAGE && fd->descriptor) {
      rc = index_compiled(d, fd->descriptor);
      if (rc)
        return rc;
    }
  }
  return GW_OK;
}

/* The payload of a length-prefixed unknown field: protobuf-c keeps the bytes
 * that follow the tag, length prefix included. */
static int unknown_payload(const ProtobufCMessageUnknownField *u, const uint8_t **p, size_t *n) {
  size_t pos = 0;
  uint64_t v;
  if (read_varint(u->data, u->len, &pos, &v) != GW_OK || v != u->len - pos)
    return GW_ERR_INVALID;
  *p = u->data + pos;
  *n = (size_t)v;
  return GW_OK;
}

static bool is_http_rule(const ProtobufCMessageUnknownField *u) {
  return u->tag == HTTP_RULE_FIELD && u->wire_type == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
}

/* The google.api.http rule in |opts|' unknown fields, or NULL in *out when
 * there is none. Repeated occurrences are merged as protobuf merges them:
 * by unpacking their concatenation. */
static int http_rule(gw_descriptors *d, gw_pb_arena *pa,
                     const Google__Protobuf__MethodOptions *opts,
                     const Google__Api__HttpRule **out) {
  *out = NULL;
  if (!opts)
    return GW_OK;
  size_t total = 0, n = 0, len;
  const uint8_t *bytes = NULL, *p;
  for (unsigned i = 0; i < opts->base.n_unknown_fields; i++) {
    const ProtobufCMessageUnknownField *u = &opts->base.unknown_fields[i];
    if (!is_http_rule(u))
      continue;
    if (unknown_payload(u, &p, &len) != GW_OK)
      return GW_ERR_INVALID;
    bytes = p;
    total += len;
    n++;
  }
  if (!n)
    return GW_OK;
  if (n > 1) {
    uint8_t *cat = gw_arena_alloc(d->arena, total ? total : 1);
    if (!cat)
      return GW_ERR_NOMEM;
    size_t off = 0;
    for (unsigned i = 0; i < opts->base.n_unknown_fields; i++) {
      const ProtobufCMessageUnknownField *u = &opts->base.unknown_fields[i];
      if (is_http_rule(u) && unknown_payload(u, &p, &len) == GW_OK) {
        memcpy(cat + off, p, len);
        off += len;
      }
    }
    bytes = cat;
  }
  Google__Api__HttpRule *rule = google__api__http_rule__unpack(&pa->allocator, total, bytes);
  if (!rule)
    return gw_pb_arena_unpack_error(pa);
  *out = rule;
  return GW_OK;
}

static int index_services(gw_descriptors *d, gw_pb_arena *pa) {
  size_t n_services = 0, n_methods = 0;
  for (size_t i = 0; i < d->n_files; i++) {
    const Google__Protobuf__FileDescriptorProto *p = d->files[i].proto;
    n_services += p->n_service;
    for (size_t j = 0; j < p->n_service; j++)
      n_methods += p->service[j]->n_method;
  }
  d->services = gw_arena_calloc(d->arena, (n_services ? n_services : 1) * sizeof(*d->services));
  d->methods = gw_arena_calloc(d->arena, (n_methods ? n_methods : 1) * sizeof(*d->methods));
  if (!d->services || !d->methods)
    return GW_ERR_NOMEM;
  for (size_t i = 0; i < d->n_files; i++) {
    const Google__Protobuf__FileDescriptorProto *p = d->files[i].proto;
    for (size_t j = 0; j < p->n_service; j++) {
      const Google__Protobuf__ServiceDescriptorProto *s = p->service[j];
      const char *sname = join(d->arena, p->package, s->name);
      if (!sname)
        return GW_ERR_NOMEM;
      d->services[d->n_services++] = sname;
      for (size_t k = 0; k < s->n_method; k++) {
        const Google__Protobuf__MethodDescriptorProto *m = s->method[k];
        gw_method_info *mi = &d->methods[d->n_methods];
        mi->service = sname;
        mi->name = m->name ? m->name : "";
        mi->path = gw_arena_printf(d->arena, "/%s/%s", sname, mi->name);
        if (!mi->path)
          return GW_ERR_NOMEM;
        mi->input_type = strip_dot(m->input_type);
        mi->output_type = strip_dot(m->output_type);
        mi->client_streaming = m->has_client_streaming && m->client_streaming;
        mi->server_streaming = m->has_server_streaming && m->server_streaming;
        mi->input = table_get(&d->messages, mi->input_type);
        mi->output = table_get(&d->messages, mi->output_type);
        int rc = http_rule(d, pa, m->options, &mi->http);
        if (rc)
          return rc;
        rc = table_put(d->arena, &d->methods_by_path, mi->path, mi);
        if (rc < 0)
          return rc;
        d->n_methods++;
      }
    }
  }
  return GW_OK;
}

static void closure_visit(const gw_descriptors *d, size_t i, bool *seen, size_t *out, size_t *n) {
  if (seen[i])
    return;
  seen[i] = true;
  out[(*n)++] = i;
  const Google__Protobuf__FileDescriptorProto *p = d->files[i].proto;
  for (size_t k = 0; k < p->n_dependency; k++) {
    const file_entry *dep = table_get(&d->files_by_name, p->dependency[k]);
    closure_visit(d, (size_t)(dep - d->files), seen, out, n);
  }
}

/* Precomputes each file's transitive closure, so answering reflection
 * allocates nothing. A dependency missing from the set is GW_ERR_INVALID:
 * serving it would hand clients files they cannot resolve. */
static int resolve_closures(gw_descriptors *d) {
  for (size_t i = 0; i < d->n_files; i++) {
    const Google__Protobuf__FileDescriptorProto *p = d->files[i].proto;
    for (size_t k = 0; k < p->n_dependency; k++) {
      if (!p->dependency[k] || !table_get(&d->files_by_name, p->dependency[k])) {
        GW_LOGE("proto", NULL, "descriptor set: %s imports %s, which the set lacks", p->name,
                p->dependency[k] ? p->dependency[k] : "(null)");
        return GW_ERR_INVALID;
      }
    }
  }
  bool *seen = gw_arena_alloc(d->arena, d->n_files * sizeof(*seen) + 1);
  size_t *scratch = gw_arena_alloc(d->arena, d->n_files * sizeof(*scratch) + 1);
  if (!seen || !scratch)
    return GW_ERR_NOMEM;
  for (size_t i = 0; i < d->n_files; i++) {
    size_t n = 0;
    memset(seen, 0, d->n_files * sizeof(*seen));
    closure_visit(d, i, seen, scratch, &n);
    d->files[i].closure = gw_arena_alloc(d->arena, n * sizeof(*scratch));
    if (!d->files[i].closure)
      return GW_ERR_NOMEM;
    memcpy(d->files[i].closure, scratch, n * sizeof(*scratch));
    d->files[i].n_closure = n;
  }
  return GW_OK;
}

int gw_descriptors_load(const uint8_t *data, size_t len, gw_descriptors **out) {
  *out = NULL;
  if (!data && len)
    return GW_ERR_INVALID;
  size_t n_files;
  int rc = scan_set(data, len, NULL, &n_files);
  if (rc)
    return rc;

  /* The unpacked set with source info is a few times its wire size. */
  gw_arena *a = gw_arena_new(64 * 1024, 0);
  if (!a)
    return GW_ERR_NOMEM;
  rc = GW_ERR_NOMEM;
  gw_descriptors *d = gw_arena_calloc(a, sizeof(*d));
  if (!d)
    goto fail;
  d->arena = a;
  uint8_t *copy = gw_arena_alloc(a, len ? len : 1);
  d->files = gw_arena_calloc(a, (n_files ? n_files : 1) * sizeof(*d->files));
  if (!copy || !d->files)
    goto fail;
  if (len)
    memcpy(copy, data, len);
  if ((rc = scan_set(copy, len, d->files, &d->n_files)) != GW_OK)
    goto fail;

  gw_pb_arena pa;
  gw_pb_arena_init(&pa, a);
  for (size_t i = 0; i < d->n_files; i++) {
    file_entry *f = &d->files[i];
    f->proto = google__protobuf__file_descriptor_proto__unpack(&pa.allocator, f->len, f->bytes);
    if (!f->proto) {
      rc = gw_pb_arena_unpack_error(&pa);
      goto fail;
    }
    if (!f->proto->name || !*f->proto->name) {
      rc = GW_ERR_INVALID;
      goto fail;
    }
    rc = table_put(a, &d->files_by_name, f->proto->name, f);
    if (rc == 1) {
      GW_LOGE("proto", NULL, "descriptor set: %s appears twice", f->proto->name);
      rc = GW_ERR_INVALID;
    }
    if (rc)
      goto fail;
  }
  if ((rc = resolve_closures(d)) != GW_OK)
    goto fail;
  for (size_t i = 0; i < d->n_files; i++)
    if ((rc = index_file_symbols(d, &d->files[i])) != GW_OK)
      goto fail;
  for (size_t i = 0; i < sizeof(compiled_services) / sizeof(*compiled_services); i++)
    for (unsigned j = 0; j < compiled_services[i]->n_methods; j++) {
      const ProtobufCMethodDescriptor *m = &compiled_services[i]->methods[j];
      if ((rc = index_compiled(d, m->input)) != GW_OK ||
          (rc = index_compiled(d, m->output)) != GW_OK)
        goto fail;
    }
  for (size_t i = 0; i < sizeof(compiled_messages) / sizeof(*compiled_messages); i++)
    if ((rc = index_compiled(d, compiled_messages[i])) != GW_OK)
      goto fail;
  if ((rc = index_services(d, &pa)) != GW_OK)
    goto fail;
  *out = d;
  return GW_OK;

fail:
  gw_arena_free(a);
  return rc;
}

void gw_descriptors_free(gw_descriptors *d) {
  if (d)
    gw_arena_free(d->arena);
}

size_t gw_descriptors_service_count(const gw_descriptors *d) { return d->n_services; }

const char *gw_descriptors_service_name(const gw_descriptors *d, size_t i) {
  return i < d->n_services ? d->services[i] : NULL;
}

bool gw_descriptors_has_service(const gw_descriptors *d, const char *name) {
  for (size_t i = 0; i < d->n_services; i++)
    if (strcmp(d->services[i], name) == 0)
      return true;
  return false;
}

size_t gw_descriptors_method_count(const gw_descriptors *d) { return d->n_methods; }

const gw_method_info *gw_descriptors_method(const gw_descriptors *d, size_t i) {
  return i < d->n_methods ? &d->methods[i] : NULL;
}

const gw_method_info *gw_descriptors_find_method(const gw_descriptors *d, const char *path) {
  return table_get(&d->methods_by_path, path);
}

const Google__Protobuf__FileDescriptorProto *gw_descriptors_file_by_name(const gw_descriptors *d,
                                                                         const char *name) {
  const file_entry *f = table_get(&d->files_by_name, name);
  return f ? f->proto : NULL;
}

const Google__Protobuf__FileDescriptorProto *
gw_descriptors_file_containing_symbol(const gw_descriptors *d, const char *symbol_name) {
  const symbol *s = table_get(&d->symbols, symbol_name ? strip_dot(symbol_name) : NULL);
  return s ? s->file->proto : NULL;
}

gw_symbol_kind gw_descriptors_symbol_kind(const gw_descriptors *d, const char *symbol_name) {
  const symbol *s = table_get(&d->symbols, symbol_name ? strip_dot(symbol_name) : NULL);
  return s ? s->kind : GW_SYMBOL_NONE;
}

int gw_descriptors_file_closure(const gw_descriptors *d,
                                const Google__Protobuf__FileDescriptorProto *file,
                                int (*fn)(void *arg, const uint8_t *bytes, size_t len), void *arg) {
  const file_entry *f = file ? table_get(&d->files_by_name, file->name) : NULL;
  if (!f || f->proto != file)
    return GW_ERR_NOTFOUND;
  for (size_t i = 0; i < f->n_closure; i++) {
    const file_entry *dep = &d->files[f->closure[i]];
    int rc = fn(arg, dep->bytes, dep->len);
    if (rc)
      return rc;
  }
  return GW_OK;
}

const ProtobufCMessageDescriptor *gw_descriptors_message(const gw_descriptors *d,
                                                         const char *name) {
  return table_get(&d->messages, name ? strip_dot(name) : NULL);
}

/* Extensions are few (google.api.http is the only one in our set): a list. */
const Google__Protobuf__FileDescriptorProto *
gw_descriptors_file_containing_extension(const gw_descriptors *d, const char *extendee,
                                         int32_t number) {
  if (!extendee)
    return NULL;
  extendee = strip_dot(extendee);
  for (const extension *e = d->extensions; e; e = e->next)
    if (e->number == number && strcmp(e->extendee, extendee) == 0)
      return e->file->proto;
  return NULL;
}

size_t gw_descriptors_extension_numbers(const gw_descriptors *d, const char *extendee,
                                        int32_t *numbers, size_t max) {
  size_t n = 0;
  if (!extendee)
    return 0;
  extendee = strip_dot(extendee);
  for (const extension *e = d->extensions; e; e = e->next)
    if (strcmp(e->extendee, extendee) == 0) {
      if (n < max)
        numbers[n] = e->number;
      n++;
    }
  return n;
}
