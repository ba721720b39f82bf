/* The descriptor-driven JSON <-> protobuf-c codec (contract in json_pb.h):
 * descriptor helpers, then JSON -> protobuf-c, then protobuf-c -> JSON. */
#include "transcoder/json_pb.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/numtext.h"
#include "core/status.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "transcoder/json_lite.h"

#if defined(__x86_64__)
#include <immintrin.h> /* SSSE3 and AVX2, each used where the CPU has it */
#endif

#define TRY(expr)                                                                                  \
  do {                                                                                             \
    int rc_ = (expr);                                                                              \
    if (rc_ != GW_OK)                                                                              \
      return rc_;                                                                                  \
  } while (0)

#define SLOT(msg, off) ((void *)((char *)(msg) + (off)))
#define CSLOT(msg, off) ((const void *)((const char *)(msg) + (off)))

/* Timestamp range (0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z) and Duration
 * range (+-10000 years), from timestamp.proto and duration.proto. */
#define TS_MIN_SECONDS INT64_C(-62135596800)
#define TS_MAX_SECONDS INT64_C(253402300799)
#define DUR_MAX_SECONDS INT64_C(315576000000)

/* ------------------------------------------------------------ descriptors */

enum wkt { WKT_NONE, WKT_WRAPPER, WKT_STRUCT, WKT_VALUE, WKT_LIST, WKT_TIMESTAMP, WKT_DURATION };

/* Which well-known type |d| is; they have their own JSON forms. */
static enum wkt wkt_compute(const ProtobufCMessageDescriptor *d) {
  static const char *const wrappers[] = {"DoubleValue", "FloatValue",  "Int64Value",
                                         "UInt64Value", "Int32Value",  "UInt32Value",
                                         "BoolValue",   "StringValue", "BytesValue"};
  if (strncmp(d->name, "google.protobuf.", 16) != 0)
    return WKT_NONE;
  const char *s = d->name + 16;
  if (!strcmp(s, "Struct"))
    return WKT_STRUCT;
  if (!strcmp(s, "Value"))
    return WKT_VALUE;
  if (!strcmp(s, "ListValue"))
    return WKT_LIST;
  if (!strcmp(s, "Timestamp"))
    return WKT_TIMESTAMP;
  if (!strcmp(s, "Duration"))
    return WKT_DURATION;
  for (size_t i = 0; i < sizeof wrappers / sizeof wrappers[0]; i++)
    if (!strcmp(s, wrappers[i]))
      return d->n_fields == 1 ? WKT_WRAPPER : WKT_NONE;
  return WKT_NONE;
}

static enum wkt wkt_of(const ProtobufCMessageDescriptor *d);

static int is_message_of(const ProtobufCFieldDescriptor *f, enum wkt kind) {
  return f->type == PROTOBUF_C_TYPE_MESSAGE && wkt_of(f->descriptor) == kind;
}

/* Whether |s| is |name| with each "_x" turned into "X" (protoc's JSON and
 * CamelCase names); |upper_first| capitalises the first letter too. */
static int camel_eq(const char *name, const char *s, size_t slen, int upper_first) {
  int up = upper_first;
  size_t i = 0;
  for (; *name; name++) {
    if (*name == '_') {
      up = 1;
      continue;
    }
    char ch = up ? (char)toupper((unsigned char)*name) : *name;
    up = 0;
    if (i >= slen || s[i++] != ch)
      return 0;
  }
  return i == slen;
}

/* Whether repeated field |f| of |parent| is a map (see json_pb.h): its type
 * is "<parent>.<Field>Entry" with fields key = 1 and value = 2. */
static int is_map_field(const ProtobufCMessageDescriptor *parent,
                        const ProtobufCFieldDescriptor *f) {
  if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE)
    return 0;
  const ProtobufCMessageDescriptor *e = f->descriptor;
  if (e->n_fields != 2 || e->fields[0].id != 1 || e->fields[1].id != 2 ||
      strcmp(e->fields[0].name, "key") != 0 || strcmp(e->fields[1].name, "value") != 0)
    return 0;
  size_t plen = strlen(parent->name), slen = strlen(e->short_name);
  if (slen <= 5 || strcmp(e->short_name + slen - 5, "Entry") != 0)
    return 0;
  if (strncmp(e->name, parent->name, plen) != 0 || e->name[plen] != '.' ||
      strcmp(e->name + plen + 1, e->short_name) != 0)
    return 0;
  return camel_eq(f->name, e->short_name, slen - 5, 1);
}

/* A union: every field belongs to the same oneof. */
static int is_union(const ProtobufCMessageDescriptor *d) {
  if (d->n_fields == 0)
    return 0;
  for (unsigned i = 0; i < d->n_fields; i++)
    if (!(d->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
        d->fields[i].quantifier_offset != d->fields[0].quantifier_offset)
      return 0;
  return 1;
}

/* The one field of a list wrapper (one repeated, non-map field), or NULL. */
static const ProtobufCFieldDescriptor *list_field(const ProtobufCMessageDescriptor *d) {
  if (d->n_fields != 1 || d->fields[0].label != PROTOBUF_C_LABEL_REPEATED ||
      is_map_field(d, &d->fields[0]))
    return NULL;
  return &d->fields[0];
}

/* The unknown-member slot of |d|: `google.protobuf.Struct extra_fields`. */
static const ProtobufCFieldDescriptor *extra_compute(const ProtobufCMessageDescriptor *d) {
  const ProtobufCFieldDescriptor *f =
      protobuf_c_message_descriptor_get_field_by_name(d, "extra_fields");
  if (!f || f->label == PROTOBUF_C_LABEL_REPEATED || (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
      f->type != PROTOBUF_C_TYPE_MESSAGE || wkt_compute(f->descriptor) != WKT_STRUCT)
    return NULL;
  return f;
}

/* What the codec asks of a message type over and over (its well-known kind,
 * its unknown-member slot, a field by name: protobuf-c's binary search with
 * strcmp was ~15% of a parse), computed once per type and kept for the
 * process's life in a small lock-free table. Workers parse in parallel: the
 * first to need a type builds its entry and publishes it with a
 * compare-and-swap; a loser frees its copy. A full table only means the
 * slow answers. */
typedef struct desc_info {
  const ProtobufCMessageDescriptor *desc;
  enum wkt wkt;
  int is_union;                         /* is_union(desc) */
  const ProtobufCFieldDescriptor *list; /* list_field(desc) */
  const ProtobufCFieldDescriptor *extra;
  /* A union's member that takes a JSON string (parse_union's choice) when
   * it is a plain string field, or NULL (see union_string_of). */
  const ProtobufCFieldDescriptor *union_string;
  char **camel; /* the JSON (lowerCamel) name of each field, or NULL: none differs */
  /* What the writer puts before each field's value: `"name":` is
   * keys + key_at[i], key_at[i + 1] - key_at[i] bytes (proto field names
   * are [A-Za-z0-9_]: nothing to escape). */
  char *keys;
  uint32_t *key_at;
  /* How the writer tells whether each field is there (field_shown's
   * branches on label, type and flags, decided once): one switch and one
   * load per field of every object written. */
  struct shown_plan *shown;
  unsigned mask; /* slots - 1 */
  /* The member seen at each of the first ORDER_SLOTS positions of the last
   * object read as this message, as a |slot| value (0: none yet). A given
   * upstream or SDK writes its members in one order, so the next key is
   * checked against it before it is hashed. Written only on a miss; racy
   * across threads by design (a wrong guess costs the lookup). */
  _Atomic uint32_t order[16];
  /* By hash of a name: field index + 1, with NAME_CAMEL set when the name is
   * the field's JSON name rather than its proto name, and the name's length
   * in the upper 16 bits; 0: empty. */
  uint32_t slot[];
} desc_info;
#define NAME_CAMEL 0x8000u

#define INFO_SLOTS 1024 /* a power of two, well above the types of the API */
static _Atomic(desc_info *) info_table[INFO_SLOTS];

/* A few bytes and the length: member names of one message differ early, late
 * or in length, and a collision costs one more probe, not a wrong answer. */
static inline __attribute__((always_inline)) uint32_t name_hash(const char *s, size_t n) {
  uint32_t h = (uint32_t)n * 0x9E3779B1u;
  if (n) {
    h ^= (uint32_t)(unsigned char)s[0] | (uint32_t)(unsigned char)s[n - 1] << 8 |
         (uint32_t)(unsigned char)s[n >> 1] << 16 | (uint32_t)(unsigned char)s[n > 1] << 24;
    h *= 0x85EBCA6Bu;
    h ^= h >> 15;
  }
  return h;
}

/* field_shown's cases, decided per field. */
enum shown_kind {
  SHOWN_NEVER, /* the unknown-member slot: printed apart */
  SHOWN_ONEOF,
  SHOWN_REPEATED,
  SHOWN_MESSAGE,
  SHOWN_ALWAYS,
  SHOWN_OPT_PTR, /* proto2 optional string */
  SHOWN_OPT_HAS, /* proto2 optional scalar: its has_ flag */
  SHOWN_STRING,
  SHOWN_BYTES,
  SHOWN_BITS64,
  SHOWN_BITS32,
};
struct shown_plan {
  uint32_t offset, qoffset, id;
  uint32_t kind;
};

static size_t elem_size(ProtobufCType t);

static enum shown_kind shown_kind_of(const ProtobufCFieldDescriptor *f,
                                     const ProtobufCFieldDescriptor *extra) {
  if (f == extra)
    return SHOWN_NEVER;
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
    return SHOWN_ONEOF;
  if (f->label == PROTOBUF_C_LABEL_REPEATED)
    return SHOWN_REPEATED;
  if (f->type == PROTOBUF_C_TYPE_MESSAGE)
    return SHOWN_MESSAGE;
  if (f->label == PROTOBUF_C_LABEL_REQUIRED)
    return SHOWN_ALWAYS;
  if (f->label == PROTOBUF_C_LABEL_OPTIONAL)
    return f->type == PROTOBUF_C_TYPE_STRING ? SHOWN_OPT_PTR : SHOWN_OPT_HAS;
  switch (f->type) {
  case PROTOBUF_C_TYPE_STRING: return SHOWN_STRING;
  case PROTOBUF_C_TYPE_BYTES: return SHOWN_BYTES;
  default: return elem_size(f->type) == 8 ? SHOWN_BITS64 : SHOWN_BITS32;
  }
}

static void info_release(desc_info *in) {
  if (in->camel)
    for (unsigned i = 0; i < in->desc->n_fields; i++)
      free(in->camel[i]);
  free(in->camel);
  free(in->keys);
  free(in->key_at);
  free(in->shown);
  free(in);
}

#define KEY_PAD 32

static int info_keys(desc_info *in) {
  const ProtobufCMessageDescriptor *d = in->desc;
  size_t total = 0;
  for (unsigned i = 0; i < d->n_fields; i++)
    total += strlen(d->fields[i].name) + 3;
  /* KEY_PAD more: put_key copies whole 16-byte blocks */
  if (total >= UINT32_MAX || !(in->keys = calloc(1, total + 1 + KEY_PAD)) ||
      !(in->key_at = malloc((d->n_fields + 1) * sizeof *in->key_at)))
    return -1;
  char *p = in->keys;
  for (unsigned i = 0; i < d->n_fields; i++) {
    size_t n = strlen(d->fields[i].name);
    in->key_at[i] = (uint32_t)(p - in->keys);
    *p++ = '"';
    memcpy(p, d->fields[i].name, n);
    p += n;
    *p++ = '"';
    *p++ = ':';
  }
  in->key_at[d->n_fields] = (uint32_t)(p - in->keys);
  *p = '\0';
  return 0;
}

static int info_put(desc_info *in, const char *name, unsigned v) {
  size_t n = strlen(name);
  if (n > UINT16_MAX)
    return -1;
  unsigned k = name_hash(name, n) & in->mask;
  while (in->slot[k])
    k = (k + 1) & in->mask;
  in->slot[k] = (uint32_t)n << 16 | v;
  return 0;
}

/* parse_union gives a JSON string to the first member kind_matches takes:
 * the first string field, unless a member before it might take a string
 * too (bytes, an enum, a message), where this answers NULL and the direct
 * path leaves the member to parse_union. */
static const ProtobufCFieldDescriptor *union_string_of(const ProtobufCMessageDescriptor *d) {
  for (unsigned i = 0; i < d->n_fields; i++) {
    switch (d->fields[i].type) {
    case PROTOBUF_C_TYPE_STRING: return &d->fields[i];
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_ENUM:
    case PROTOBUF_C_TYPE_MESSAGE: return NULL;
    default: break; /* numbers and bools take no string */
    }
  }
  return NULL;
}

static desc_info *info_build(const ProtobufCMessageDescriptor *d) {
  if (d->n_fields >= NAME_CAMEL)
    return NULL;
  unsigned n_camel = 0;
  for (unsigned i = 0; i < d->n_fields; i++)
    n_camel += strchr(d->fields[i].name, '_') != NULL;
  unsigned slots = 4;
  while (slots < 2 * (d->n_fields + n_camel))
    slots *= 2;
  /* Plain calloc and malloc: lives as long as the process, outside the
   * allocator's accounting and failure injection. */
  desc_info *in = calloc(1, sizeof *in + slots * sizeof in->slot[0]);
  if (!in)
    return NULL;
  in->desc = d;
  in->wkt = wkt_compute(d);
  in->is_union = is_union(d);
  in->list = list_field(d);
  in->extra = extra_compute(d);
  in->union_string = in->is_union ? union_string_of(d) : NULL;
  in->mask = slots - 1;
  if ((n_camel && !(in->camel = calloc(d->n_fields, sizeof *in->camel))) || info_keys(in) != 0 ||
      !(in->shown = calloc(d->n_fields ? d->n_fields : 1, sizeof *in->shown)))
    goto fail;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    in->shown[i] = (struct shown_plan){(uint32_t)f->offset, (uint32_t)f->quantifier_offset, f->id,
                                       shown_kind_of(f, in->extra)};
  }
  for (unsigned i = 0; i < d->n_fields; i++) {
    const char *name = d->fields[i].name;
    if (info_put(in, name, i + 1) != 0)
      goto fail;
    if (!in->camel || !strchr(name, '_'))
      continue;
    size_t n = strlen(name) + 1;
    if (!(in->camel[i] = malloc(n)) || gw_json_name(name, in->camel[i], n) != GW_OK ||
        info_put(in, in->camel[i], (i + 1) | NAME_CAMEL) != 0)
      goto fail;
  }
  return in;
fail:
  info_release(in);
  return NULL;
}

static const desc_info *info_of_slow(const ProtobufCMessageDescriptor *d, size_t h);

/* The info of |d|: built on first use, then found in the first slot its
 * pointer hashes to, almost always (inline: ~30 lookups a request). */
static inline __attribute__((always_inline)) const desc_info *
info_of(const ProtobufCMessageDescriptor *d) {
  size_t h = (size_t)(((uintptr_t)d >> 4) * 0x9E3779B97F4A7C15ull >> 40);
  desc_info *e = atomic_load_explicit(&info_table[h & (INFO_SLOTS - 1)], memory_order_acquire);
  if (__builtin_expect(e != NULL && e->desc == d, 1))
    return e;
  return info_of_slow(d, h);
}

static const desc_info *info_of_slow(const ProtobufCMessageDescriptor *d, size_t h) {
  for (size_t i = 0; i < INFO_SLOTS; i++) {
    _Atomic(desc_info *) *slot = &info_table[(h + i) & (INFO_SLOTS - 1)];
    desc_info *e = atomic_load_explicit(slot, memory_order_acquire);
    if (e) {
      if (e->desc == d)
        return e;
      continue;
    }
    desc_info *mine = info_build(d);
    if (!mine)
      return NULL;
    if (atomic_compare_exchange_strong_explicit(slot, &e, mine, memory_order_acq_rel,
                                                memory_order_acquire))
      return mine;
    info_release(mine);
    if (e->desc == d)
      return e;
  }
  return NULL;
}

/* |n| bytes of |a| and |b| equal: member names are mostly 4 to 16 bytes, two
 * overlapping word compares each (no call). */
static inline int names_equal(const char *a, const char *b, size_t n) {
  uint64_t x, y, u, v;
  if (n >= 8 && n <= 16) {
    memcpy(&x, a, 8), memcpy(&y, b, 8), memcpy(&u, a + n - 8, 8), memcpy(&v, b + n - 8, 8);
    return x == y && u == v;
  }
  if (n >= 4 && n < 8) {
    uint32_t x4, y4, u4, v4;
    memcpy(&x4, a, 4), memcpy(&y4, b, 4), memcpy(&u4, a + n - 4, 4), memcpy(&v4, b + n - 4, 4);
    return x4 == y4 && u4 == v4;
  }
  return memcmp(a, b, n) == 0;
}

/* Whether |slot| value |s| (not 0) is the name |name| (|n| bytes). */
static inline int slot_names(const desc_info *in, uint32_t s, const char *name, size_t n) {
  if ((s >> 16) != n)
    return 0;
  unsigned i = (s & 0x7fffu) - 1;
  return names_equal((s & NAME_CAMEL) ? in->camel[i] : in->desc->fields[i].name, name, n);
}

/* The |slot| value of the field named |name| (|n| bytes) by its proto name,
 * or also by its JSON name when |camel|; 0 when none. */
static uint32_t info_slot(const desc_info *in, const char *name, size_t n, int camel) {
  for (unsigned k = name_hash(name, n) & in->mask;; k = (k + 1) & in->mask) {
    uint32_t s = in->slot[k];
    if (!s)
      return 0;
    if ((camel || !(s & NAME_CAMEL)) && slot_names(in, s, name, n))
      return s;
  }
}

static const ProtobufCFieldDescriptor *slot_field(const desc_info *in, uint32_t s) {
  return s ? &in->desc->fields[(s & 0x7fffu) - 1] : NULL;
}

static const ProtobufCFieldDescriptor *info_field(const desc_info *in, const char *name, size_t n,
                                                  int camel) {
  return slot_field(in, info_slot(in, name, n, camel));
}

/* The field of member number |pos| of an object, named |key| (|klen| bytes),
 * by proto or JSON name: first the one seen there last time (desc_info's
 * |order|), then by hash. */
static const ProtobufCFieldDescriptor *ordered_field(const desc_info *in, size_t pos,
                                                     const char *key, size_t klen) {
  desc_info *hint = (desc_info *)in; /* |order| only: allocated writable (info_build) */
  if (pos >= sizeof in->order / sizeof in->order[0])
    return info_field(in, key, klen, 1);
  uint32_t s = atomic_load_explicit(&hint->order[pos], memory_order_relaxed);
  if (s && slot_names(in, s, key, klen))
    return slot_field(in, s);
  uint32_t found = info_slot(in, key, klen, 1);
  if (found && found != s)
    atomic_store_explicit(&hint->order[pos], found, memory_order_relaxed);
  return slot_field(in, found);
}

/* The field of member number |pos| of an object when its key, at |r| (the
 * opening quote), is the name seen there last time, read with no scan: the
 * name's bytes and then a quote. The key is |*key| (|*klen| bytes) and |r|
 * moves past it; NULL leaves |r| for the scan. A field name is plain
 * (letters, digits, '_'): raw bytes equal to it are that string. */
static const ProtobufCFieldDescriptor *guessed_key(const desc_info *in, size_t pos,
                                                   gw_json_lite_reader *r, const char **key,
                                                   size_t *klen) {
  if (pos >= sizeof in->order / sizeof in->order[0])
    return NULL;
  uint32_t s = atomic_load_explicit(&((desc_info *)in)->order[pos], memory_order_relaxed);
  size_t n = s >> 16;
  const char *p = r->p + 1;
  if (!s || (size_t)(r->end - p) <= n || p[n] != '"')
    return NULL;
  unsigned i = (s & 0x7fffu) - 1;
  if (!names_equal((s & NAME_CAMEL) ? in->camel[i] : in->desc->fields[i].name, p, n))
    return NULL;
  *key = p;
  *klen = n;
  r->p = p + n + 1;
  return &in->desc->fields[i];
}

static enum wkt wkt_of(const ProtobufCMessageDescriptor *d) {
  const desc_info *in = info_of(d);
  return in ? in->wkt : wkt_compute(d);
}

static const ProtobufCFieldDescriptor *extra_slot(const ProtobufCMessageDescriptor *d) {
  const desc_info *in = info_of(d);
  return in ? in->extra : extra_compute(d);
}

const ProtobufCFieldDescriptor *gw_json_field(const ProtobufCMessageDescriptor *d,
                                              const char *name) {
  const desc_info *in = info_of(d);
  if (!in)
    return protobuf_c_message_descriptor_get_field_by_name(d, name);
  return info_field(in, name, strlen(name), 0);
}

/* The field of |d| that the JSON member |key| (|klen| bytes; with a NUL
 * inside it names no field) names, by proto or JSON name; the unknown-member
 * slot is never one. |in| is info_of(d), which may be NULL. */
static const ProtobufCFieldDescriptor *find_field_in(const desc_info *in,
                                                     const ProtobufCMessageDescriptor *d,
                                                     const char *key, size_t klen,
                                                     const ProtobufCFieldDescriptor *slot) {
  const ProtobufCFieldDescriptor *f = NULL;
  if (in) {
    f = info_field(in, key, klen, 1);
  } else if (strlen(key) == klen) { /* the slow way: no room in the table */
    f = protobuf_c_message_descriptor_get_field_by_name(d, key);
    for (unsigned i = 0; i < d->n_fields && !f; i++)
      if (camel_eq(d->fields[i].name, key, klen, 0))
        f = &d->fields[i];
  }
  return f == slot ? NULL : f;
}

/* Whether an unknown member named |key| (|klen| bytes) is one opts'
 * skip_unknown names. */
static int skipped_name(const gw_json_opts *o, const char *key, size_t klen) {
  if (!o->skip_unknown)
    return 0;
  for (const char *const *n = o->skip_unknown; *n; n++)
    if (strlen(*n) == klen && memcmp(*n, key, klen) == 0)
      return 1;
  return 0;
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *d,
                                                  const char *key, size_t klen,
                                                  const ProtobufCFieldDescriptor *slot) {
  return find_field_in(info_of(d), d, key, klen, slot);
}

static size_t elem_size(ProtobufCType t) {
  switch (t) {
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64: return sizeof(int64_t);
  case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
  case PROTOBUF_C_TYPE_FLOAT: return sizeof(float);
  case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
  case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
  case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
  case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
  default: /* 32-bit integers and enums */ return sizeof(int32_t);
  }
}

static int is_null_enum(const ProtobufCFieldDescriptor *f) {
  return f->type == PROTOBUF_C_TYPE_ENUM &&
         !strcmp(((const ProtobufCEnumDescriptor *)f->descriptor)->name,
                 "google.protobuf.NullValue");
}

int gw_json_name(const char *proto_name, char *out, size_t n) {
  size_t j = 0;
  int up = 0;
  for (const char *p = proto_name; *p; p++) {
    if (*p == '_') {
      up = 1;
      continue;
    }
    if (j + 1 >= n)
      return GW_ERR_TOOBIG;
    out[j++] = up ? (char)toupper((unsigned char)*p) : *p;
    up = 0;
  }
  if (n == 0)
    return GW_ERR_TOOBIG;
  out[j] = '\0';
  return GW_OK;
}

/* ------------------------------------------------------------ base64 */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* A byte's value as a base64 digit, standard or URL-safe; 255: none. */
#define B64_VALUE(c)                                                                               \
  ((c) >= 'A' && (c) <= 'Z'   ? (c) - 'A'                                                          \
   : (c) >= 'a' && (c) <= 'z' ? (c) - 'a' + 26                                                     \
   : (c) >= '0' && (c) <= '9' ? (c) - '0' + 52                                                     \
   : (c) == '+' || (c) == '-' ? 62                                                                 \
   : (c) == '/' || (c) == '_' ? 63                                                                 \
                              : 255)
/* The digit's value already at its place in the 24 bits of a group of four
 * (shift 18, 12, 6, 0); a byte that is no digit sets the top 8 bits. One
 * table look-up and an OR per digit, instead of a look-up, a shift, an OR
 * and a check. */
#define B64_AT(c, sh) (B64_VALUE(c) == 255 ? 0xff000000u : (uint32_t)B64_VALUE(c) << (sh))
#define B64_4(c, sh) B64_AT(c, sh), B64_AT((c) + 1, sh), B64_AT((c) + 2, sh), B64_AT((c) + 3, sh)
#define B64_16(c, sh) B64_4(c, sh), B64_4((c) + 4, sh), B64_4((c) + 8, sh), B64_4((c) + 12, sh)
#define B64_64(c, sh)                                                                              \
  B64_16(c, sh), B64_16((c) + 16, sh), B64_16((c) + 32, sh), B64_16((c) + 48, sh)
#define B64_256(sh)                                                                                \
  { B64_64(0, sh), B64_64(64, sh), B64_64(128, sh), B64_64(192, sh) }
static const uint32_t b64_at[4][256] = {B64_256(18), B64_256(12), B64_256(6), B64_256(0)};

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define B64_BLOCKS 1
/* Sixteen standard-alphabet digits to twelve bytes per step, with SSSE3
 * (every x86-64 processor since 2006; asked at run time). A digit's class is
 * its high nibble; it is valid when the class bit that its high nibble picks
 * from one table is not among the bits its low nibble picks from the other;
 * its value is the digit plus an offset per class ('/' told from '+', both
 * in class 2, by one compare). Two multiply-adds join four 6-bit values into
 * 24 bits and a shuffle puts the three bytes of each in order. A block with
 * anything else ('-', '_', a bad byte) ends this: the scalar loop goes on
 * from that block, URL-safe digits and errors included. Returns how many
 * digits it took (a multiple of 16); *n gets the bytes written. |out| has
 * room for len / 4 * 3 + 3 bytes and each step stores 16. */
__attribute__((target("ssse3"))) static size_t b64_decode_blocks(const unsigned char *u, size_t len,
                                                                 unsigned char *out, long *n) {
  /* classes: bit 0 '+' '/', bit 1 digits, bit 2 'A'-'O' 'a'-'o', bit 3
   * 'P'-'Z' 'p'-'z', bit 4 none of these */
  const __m128i bad_lo = _mm_setr_epi8(0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                       0x13, 0x1a, 0x1b, 0x1b, 0x1b, 0x1a);
  const __m128i class_hi = _mm_setr_epi8(0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10,
                                         0x10, 0x10, 0x10, 0x10, 0x10, 0x10);
  const __m128i offset = _mm_setr_epi8(0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m128i nibble = _mm_set1_epi8(0x0f), slash = _mm_set1_epi8('/');
  const __m128i order = _mm_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
  size_t i = 0;
  long o = 0;
  for (; i + 24 <= len; i += 16, o += 12) { /* + 24: the 16-byte store stays in the room */
    __m128i in = _mm_loadu_si128((const __m128i *)(u + i));
    __m128i hi = _mm_and_si128(_mm_srli_epi32(in, 4), nibble);
    __m128i bad = _mm_and_si128(_mm_shuffle_epi8(bad_lo, _mm_and_si128(in, nibble)),
                                _mm_shuffle_epi8(class_hi, hi));
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(bad, _mm_setzero_si128())) != 0xffff)
      break;
    __m128i v =
        _mm_add_epi8(in, _mm_shuffle_epi8(offset, _mm_add_epi8(hi, _mm_cmpeq_epi8(in, slash))));
    __m128i pairs = _mm_maddubs_epi16(v, _mm_set1_epi32(0x01400140));  /* a << 6 | b */
    __m128i quads = _mm_madd_epi16(pairs, _mm_set1_epi32(0x00011000)); /* ab << 12 | cd */
    _mm_storeu_si128((__m128i *)(out + o), _mm_shuffle_epi8(quads, order));
  }
  *n = o;
  return i;
}
#endif

/* Decodes standard or URL-safe base64, padding optional, into |out| (room
 * for len / 4 * 3 + 3 bytes): sixteen digits at a time where the processor
 * can, then four digits to three bytes at a time (an embedding in base64 is
 * 8 KiB of them). Bits past the last whole byte are ignored. Returns the
 * byte count or -1. */
static long b64_decode(const char *s, size_t len, unsigned char *out) {
  const unsigned char *u = (const unsigned char *)s;
  if (len % 4 == 0 && len > 0 && s[len - 1] == '=')
    len -= (len >= 2 && s[len - 2] == '=') ? 2 : 1;
  if (len % 4 == 1)
    return -1;
  long n = 0;
  size_t i = 0;
#ifdef B64_BLOCKS
  if (len >= 24 && __builtin_cpu_supports("ssse3"))
    i = b64_decode_blocks(u, len, out, &n);
#endif
  for (; i + 4 <= len; i += 4) {
    uint32_t w = b64_at[0][u[i]] | b64_at[1][u[i + 1]] | b64_at[2][u[i + 2]] | b64_at[3][u[i + 3]];
    if (w >> 24)
      return -1;
    /* the three bytes in order, and a fourth that the next group (or the
     * room's 3 spare bytes) takes */
    uint32_t be = w << 8;
#if __BYTE_ORDER__ != __ORDER_BIG_ENDIAN__
    be = __builtin_bswap32(be);
#endif
    memcpy(out + n, &be, 4);
    n += 3;
  }
  if (i < len) { /* two or three digits: one or two bytes */
    uint32_t w = b64_at[0][u[i]] | b64_at[1][u[i + 1]] | (i + 2 < len ? b64_at[2][u[i + 2]] : 0);
    if (w >> 24)
      return -1;
    out[n++] = (unsigned char)(w >> 16);
    if (i + 2 < len)
      out[n++] = (unsigned char)(w >> 8);
  }
  return n;
}

static int b64_append(gw_buf *b, const uint8_t *p, size_t n) {
  char block[256];
  size_t k = 0;
  TRY(gw_buf_appendc(b, '"'));
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16;
    if (i + 1 < n)
      v |= (uint32_t)p[i + 1] << 8;
    if (i + 2 < n)
      v |= p[i + 2];
    block[k++] = b64_alphabet[(v >> 18) & 63];
    block[k++] = b64_alphabet[(v >> 12) & 63];
    block[k++] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
    block[k++] = i + 2 < n ? b64_alphabet[v & 63] : '=';
    if (k + 4 > sizeof block) {
      TRY(gw_buf_append(b, block, k));
      k = 0;
    }
  }
  TRY(gw_buf_append(b, block, k));
  return gw_buf_appendc(b, '"');
}

/* ------------------------------------------------------------ JSON -> pb */

#define IS(v, t) ((v)->type == GW_JVAL_##t)
#define IS_BOOL(v) ((v)->type == GW_JVAL_TRUE || (v)->type == GW_JVAL_FALSE)
#define IS_INT(v) ((v)->type == GW_JVAL_NUMBER && ((v)->flags & GW_JVAL_NUM_INT))

/* Where the parser is, as OpenAI names a param ("messages[0].content"): a
 * stack of member names and array indexes, turned into text only when an
 * error needs it (formatting it for every element of an embedding was ~3% of
 * the embeddings path). */
#define PATH_FRAMES 128
struct pframe {
  const char *key; /* NULL: an array index */
  size_t len, idx;
};

struct pctx {
  gw_arena *arena;
  gw_json_opts opts;
  gw_json_error *err;
  size_t nframes; /* may pass PATH_FRAMES: the deeper ones are not named */
  struct pframe frames[PATH_FRAMES];
};

static void path_text(const struct pctx *c, char *out, size_t cap) {
  size_t n = 0, depth = c->nframes < PATH_FRAMES ? c->nframes : PATH_FRAMES;
  char tmp[24];
  for (size_t j = 0; j < depth; j++) {
    const struct pframe *f = &c->frames[j];
    const char *s = f->key;
    size_t len = f->len;
    if (!s) {
      size_t k = sizeof tmp, i = f->idx;
      tmp[--k] = ']';
      do {
        tmp[--k] = (char)('0' + i % 10);
        i /= 10;
      } while (i);
      tmp[--k] = '[';
      s = tmp + k;
      len = sizeof tmp - k;
    } else if (n && n < cap - 1) {
      out[n++] = '.';
    }
    if (len > cap - 1 - n)
      len = cap - 1 - n;
    memcpy(out + n, s, len);
    n += len;
  }
  out[n] = '\0';
}

static int fail(struct pctx *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct pctx *c, int rc, const char *fmt, ...) {
  if (c->err) {
    path_text(c, c->err->param, sizeof c->err->param);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err->message, sizeof c->err->message, fmt, ap);
    va_end(ap);
  }
  return rc;
}

static int invalid(struct pctx *c, const char *what) { return fail(c, GW_ERR_INVALID, "%s", what); }
static int nomem(struct pctx *c) { return fail(c, GW_ERR_NOMEM, "out of memory"); }

/* Path bookkeeping: push returns a mark that pop restores. */
static size_t path_key(struct pctx *c, const char *key, size_t n) {
  size_t mark = c->nframes;
  if (c->nframes < PATH_FRAMES)
    c->frames[c->nframes] = (struct pframe){key, n, 0};
  c->nframes++;
  return mark;
}

static size_t path_index(struct pctx *c, size_t i) {
  size_t mark = c->nframes;
  if (c->nframes < PATH_FRAMES)
    c->frames[c->nframes] = (struct pframe){NULL, 0, i};
  c->nframes++;
  return mark;
}

static void path_pop(struct pctx *c, size_t mark) { c->nframes = mark; }

static int check_depth(struct pctx *c, int depth) {
  return depth > c->opts.max_depth ? invalid(c, "nesting too deep") : GW_OK;
}

static ProtobufCMessage *new_msg(struct pctx *c, const ProtobufCMessageDescriptor *d) {
  void *m = gw_arena_alloc(c->arena, d->sizeof_message);
  if (m)
    protobuf_c_message_init(d, m);
  return m;
}

/* A decimal integer string: optional '-', digits, nothing else. */
static int parse_int_text(const char *s, int is_signed, int64_t *i, uint64_t *u) {
  const char *p = s + (*s == '-');
  if (!isdigit((unsigned char)*p))
    return -1;
  char *end;
  errno = 0;
  if (is_signed)
    *i = strtoll(s, &end, 10);
  else if (*s == '-')
    return -1;
  else
    *u = strtoull(s, &end, 10);
  return (errno || *end) ? -1 : 0;
}

/* The JSON number |v| as a double; |range| is the complaint when it is past
 * DBL_MAX. */
static int number_value(struct pctx *c, const gw_jval *v, double *out, const char *range) {
  int rc = gw_json_lite_double(v, out);
  if (rc == GW_ERR_NOMEM)
    return nomem(c);
  return rc == GW_OK ? GW_OK : invalid(c, range);
}

/* Reads a signed integer in [lo, hi] from a JSON number or decimal string. */
static int get_int(struct pctx *c, const gw_jval *v, int64_t lo, int64_t hi, int64_t *out) {
  if (IS_INT(v)) {
    if (gw_json_lite_int64(v, out) != GW_OK)
      return invalid(c, "integer out of range");
  } else if (IS(v, NUMBER)) {
    double d;
    TRY(number_value(c, v, &d, "integer out of range"));
    if (d != floor(d))
      return invalid(c, "expected an integer");
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
      return invalid(c, "integer out of range");
    *out = (int64_t)d;
  } else if (IS(v, STRING)) {
    if (parse_int_text(v->u.str, 1, out, NULL) != 0)
      return invalid(c, "expected an integer");
  } else {
    return invalid(c, "expected an integer");
  }
  return (*out < lo || *out > hi) ? invalid(c, "integer out of range") : GW_OK;
}

static int get_uint(struct pctx *c, const gw_jval *v, uint64_t hi, uint64_t *out) {
  if (IS_INT(v)) {
    if (gw_json_lite_uint64(v, out) != GW_OK)
      return invalid(c, "integer out of range");
  } else if (IS(v, NUMBER)) {
    double d;
    TRY(number_value(c, v, &d, "integer out of range"));
    if (d != floor(d))
      return invalid(c, "expected an integer");
    if (!(d >= 0 && d < 18446744073709551616.0))
      return invalid(c, "integer out of range");
    *out = (uint64_t)d;
  } else if (IS(v, STRING)) {
    if (parse_int_text(v->u.str, 0, NULL, out) != 0)
      return invalid(c, "expected a non-negative integer");
  } else {
    return invalid(c, "expected an integer");
  }
  return *out > hi ? invalid(c, "integer out of range") : GW_OK;
}

static int get_double(struct pctx *c, const gw_jval *v, double *out) {
  if (IS(v, NUMBER))
    return number_value(c, v, out, "number out of range");
  if (IS(v, STRING)) {
    const char *s = v->u.str;
    if (!strcmp(s, "NaN"))
      *out = NAN;
    else if (!strcmp(s, "Infinity"))
      *out = INFINITY;
    else if (!strcmp(s, "-Infinity"))
      *out = -INFINITY;
    else if (*s && strspn(s, "0123456789+-.eE") == strlen(s)) {
      char *end;
      *out = strtod(s, &end);
      if (*end || isinf(*out))
        return invalid(c, "expected a number");
    } else {
      return invalid(c, "expected a number");
    }
    return GW_OK;
  }
  return invalid(c, "expected a number");
}

static int get_float(struct pctx *c, const gw_jval *v, float *out) {
  if (IS(v, NUMBER) && (v->flags & GW_JVAL_NUM_F32)) {
    *out = v->num_f; /* (float) of get_double's value, well inside float range */
    return GW_OK;
  }
  double d;
  TRY(get_double(c, v, &d));
  /* Past FLT_MAX plus half its ulp a double rounds to infinity. */
  if (isfinite(d) && fabs(d) >= 0x1.ffffffp+127)
    return invalid(c, "number out of range for a float");
  if (isfinite(d) && fabs(d) > FLT_MAX)
    d = copysign(FLT_MAX, d);
  *out = (float)d;
  return GW_OK;
}

static int get_string(struct pctx *c, const gw_jval *v, char **out) {
  if (!IS(v, STRING))
    return invalid(c, "expected a string");
  /* The DOM's strings live in the message's arena, NUL-terminated: the
   * message points at them instead of copying. */
  *out = (char *)v->u.str;
  return GW_OK;
}

static int get_bytes(struct pctx *c, const gw_jval *v, ProtobufCBinaryData *out) {
  if (!IS(v, STRING))
    return invalid(c, "expected a base64 string");
  size_t len = v->len;
  unsigned char *p = gw_arena_alloc(c->arena, len / 4 * 3 + 3);
  if (!p)
    return nomem(c);
  long n = b64_decode(v->u.str, len, p);
  if (n < 0)
    return invalid(c, "expected a base64 string");
  out->data = p;
  out->len = (size_t)n;
  return GW_OK;
}

static int get_enum(struct pctx *c, const ProtobufCFieldDescriptor *f, const gw_jval *v,
                    int32_t *out) {
  const ProtobufCEnumDescriptor *ed = f->descriptor;
  if (IS(v, STRING)) {
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(ed, v->u.str);
    if (!ev)
      return fail(c, GW_ERR_INVALID, "unknown value of enum %s", ed->name);
    *out = ev->value;
    return GW_OK;
  }
  if (IS(v, NULL) && is_null_enum(f)) {
    *out = 0;
    return GW_OK;
  }
  if (!IS(v, NUMBER))
    return invalid(c, "expected an enum name or number");
  int64_t i;
  TRY(get_int(c, v, INT32_MIN, INT32_MAX, &i));
  *out = (int32_t)i;
  return GW_OK;
}

/* Stores the scalar |v| of field |f|'s type at |slot|. */
static int get_scalar(struct pctx *c, const ProtobufCFieldDescriptor *f, const gw_jval *v,
                      void *slot) {
  int64_t i;
  uint64_t u;
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
    TRY(get_int(c, v, INT32_MIN, INT32_MAX, &i));
    *(int32_t *)slot = (int32_t)i;
    return GW_OK;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    TRY(get_int(c, v, INT64_MIN, INT64_MAX, &i));
    *(int64_t *)slot = i;
    return GW_OK;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    TRY(get_uint(c, v, UINT32_MAX, &u));
    *(uint32_t *)slot = (uint32_t)u;
    return GW_OK;
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    TRY(get_uint(c, v, UINT64_MAX, &u));
    *(uint64_t *)slot = u;
    return GW_OK;
  case PROTOBUF_C_TYPE_FLOAT: return get_float(c, v, slot);
  case PROTOBUF_C_TYPE_DOUBLE: return get_double(c, v, slot);
  case PROTOBUF_C_TYPE_BOOL:
    if (!IS_BOOL(v))
      return invalid(c, "expected a boolean");
    *(protobuf_c_boolean *)slot = IS(v, TRUE);
    return GW_OK;
  case PROTOBUF_C_TYPE_ENUM: return get_enum(c, f, v, slot);
  case PROTOBUF_C_TYPE_STRING: return get_string(c, v, slot);
  case PROTOBUF_C_TYPE_BYTES: return get_bytes(c, v, slot);
  default: return invalid(c, "unsupported field type");
  }
}

static int parse_message(struct pctx *c, const ProtobufCMessageDescriptor *d, const gw_jval *v,
                         ProtobufCMessage *m, int depth, int bare_list);

/* Parses |v| (at |depth|) as one value of field |f| into |slot|: a scalar or
 * a newly allocated message. |bare_list| as in parse_message. */
static int parse_value(struct pctx *c, const ProtobufCFieldDescriptor *f, const gw_jval *v,
                       void *slot, int depth, int bare_list) {
  if (f->type != PROTOBUF_C_TYPE_MESSAGE)
    return get_scalar(c, f, v, slot);
  ProtobufCMessage *m = new_msg(c, f->descriptor);
  if (!m)
    return nomem(c);
  TRY(parse_message(c, f->descriptor, v, m, depth, bare_list));
  *(ProtobufCMessage **)slot = m;
  return GW_OK;
}

/* null is a value only where it can be stored: Value and NullValue. */
static int null_is_value(const ProtobufCFieldDescriptor *f) {
  return is_message_of(f, WKT_VALUE) || is_null_enum(f);
}

/* A repeated float given as base64 (opts.floats_base64): its bytes are the
 * little-endian floats themselves. */
static int parse_base64_floats(struct pctx *c, const ProtobufCFieldDescriptor *f, const gw_jval *v,
                               ProtobufCMessage *m) {
  unsigned char *p = gw_arena_alloc(c->arena, v->len / 4 * 3 + 3);
  if (!p)
    return nomem(c);
  long n = b64_decode(v->u.str, v->len, p);
  if (n < 0 || n % 4 != 0)
    return invalid(c, "expected an array, or base64 of 4-byte floats");
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  for (long i = 0; i < n; i += 4) {
    unsigned char t = p[i];
    p[i] = p[i + 3], p[i + 3] = t, t = p[i + 1], p[i + 1] = p[i + 2], p[i + 2] = t;
  }
#endif
  *(size_t *)SLOT(m, f->quantifier_offset) = (size_t)n / 4;
  *(void **)SLOT(m, f->offset) = n ? p : NULL;
  return GW_OK;
}

static int parse_repeated(struct pctx *c, const ProtobufCFieldDescriptor *f, const gw_jval *v,
                          ProtobufCMessage *m, int depth, int bare_list) {
  if (IS(v, STRING) && f->type == PROTOBUF_C_TYPE_FLOAT && c->opts.floats_base64)
    return parse_base64_floats(c, f, v, m);
  if (!IS(v, ARRAY))
    return invalid(c, "expected an array");
  TRY(check_depth(c, depth));
  size_t n = v->len, size = elem_size(f->type), i = 0;
  char *arr = NULL;
  if (n > 0 && !(arr = gw_arena_calloc(c->arena, n * size)))
    return nomem(c);
  if (f->type == PROTOBUF_C_TYPE_FLOAT) { /* an embedding: the scanner has the values */
    float *floats = (void *)arr;
    for (; i < n && IS(&v->u.elems[i], NUMBER) && (v->u.elems[i].flags & GW_JVAL_NUM_F32); i++)
      floats[i] = v->u.elems[i].num_f;
  }
  for (; i < n; i++) {
    const gw_jval *e = &v->u.elems[i];
    size_t mark = path_index(c, i);
    if (IS(e, NULL) && !null_is_value(f))
      return invalid(c, "null is not allowed in an array");
    TRY(parse_value(c, f, e, arr + i * size, depth + 1, bare_list));
    path_pop(c, mark);
  }
  *(size_t *)SLOT(m, f->quantifier_offset) = n;
  *(void **)SLOT(m, f->offset) = arr;
  return GW_OK;
}

/* Map keys are JSON strings; integer keys must be canonical decimals, so two
 * distinct keys are never the same entry. */
static int parse_map_key(struct pctx *c, const ProtobufCFieldDescriptor *kf, const char *key,
                         void *slot) { /* |key| lives in the arena (the DOM's) */
  char canon[32];
  int64_t i = 0;
  uint64_t u = 0;
  switch (kf->type) {
  case PROTOBUF_C_TYPE_STRING: *(char **)slot = (char *)key; return GW_OK;
  case PROTOBUF_C_TYPE_BOOL:
    if (strcmp(key, "true") != 0 && strcmp(key, "false") != 0)
      return invalid(c, "expected a boolean map key");
    *(protobuf_c_boolean *)slot = key[0] == 't';
    return GW_OK;
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64: {
    int wide = elem_size(kf->type) == 8;
    if (parse_int_text(key, 1, &i, NULL) != 0 || (!wide && (i < INT32_MIN || i > INT32_MAX)))
      return invalid(c, "expected an integer map key");
    snprintf(canon, sizeof canon, "%" PRId64, i);
    if (strcmp(canon, key) != 0)
      return invalid(c, "expected an integer map key");
    if (wide)
      *(int64_t *)slot = i;
    else
      *(int32_t *)slot = (int32_t)i;
    return GW_OK;
  }
  default: { /* unsigned */
    int wide = elem_size(kf->type) == 8;
    if (parse_int_text(key, 0, NULL, &u) != 0 || (!wide && u > UINT32_MAX))
      return invalid(c, "expected an integer map key");
    snprintf(canon, sizeof canon, "%" PRIu64, u);
    if (strcmp(canon, key) != 0)
      return invalid(c, "expected an integer map key");
    if (wide)
      *(uint64_t *)slot = u;
    else
      *(uint32_t *)slot = (uint32_t)u;
    return GW_OK;
  }
  }
}

static int parse_map(struct pctx *c, const ProtobufCFieldDescriptor *f, const gw_jval *v,
                     ProtobufCMessage *m, int depth) {
  if (!IS(v, OBJECT))
    return invalid(c, "expected an object");
  TRY(check_depth(c, depth));
  const ProtobufCMessageDescriptor *ed = f->descriptor;
  const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
  size_t n = v->len, i = 0;
  ProtobufCMessage **entries = NULL;
  if (n > 0 && !(entries = gw_arena_alloc(c->arena, n * sizeof *entries)))
    return nomem(c);
  for (size_t j = 0; j < n; j++) {
    const char *key = v->u.members[j].key;
    const gw_jval *val = &v->u.members[j].value;
    size_t mark = path_key(c, key, v->u.members[j].key_len);
    ProtobufCMessage *e = new_msg(c, ed);
    if (!e)
      return nomem(c);
    TRY(parse_map_key(c, kf, key, SLOT(e, kf->offset)));
    if (IS(val, NULL) && !null_is_value(vf))
      return invalid(c, "null is not allowed as a map value");
    TRY(parse_value(c, vf, val, SLOT(e, vf->offset), depth + 1, 0));
    entries[i++] = e;
    path_pop(c, mark);
  }
  *(size_t *)SLOT(m, f->quantifier_offset) = n;
  *(void **)SLOT(m, f->offset) = entries;
  return GW_OK;
}

static int parse_struct(struct pctx *c, const gw_jval *v, Google__Protobuf__Struct *st, int depth);
static int parse_list_value(struct pctx *c, const gw_jval *v, Google__Protobuf__ListValue *lv,
                            int depth);

/* Any JSON value as a google.protobuf.Value. Integers become doubles: exact
 * up to 2^53. */
static int parse_pb_value(struct pctx *c, const gw_jval *v, Google__Protobuf__Value *pv,
                          int depth) {
  switch (v->type) {
  case GW_JVAL_NULL:
    pv->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE;
    pv->null_value = GOOGLE__PROTOBUF__NULL_VALUE__NULL_VALUE;
    return GW_OK;
  case GW_JVAL_TRUE:
  case GW_JVAL_FALSE:
    pv->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
    pv->bool_value = IS(v, TRUE);
    return GW_OK;
  case GW_JVAL_NUMBER:
    pv->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
    return number_value(c, v, &pv->number_value, "number out of range");
  case GW_JVAL_STRING:
    pv->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
    return get_string(c, v, &pv->string_value);
  case GW_JVAL_OBJECT:
    pv->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
    if (!(pv->struct_value =
              (Google__Protobuf__Struct *)new_msg(c, &google__protobuf__struct__descriptor)))
      return nomem(c);
    return parse_struct(c, v, pv->struct_value, depth);
  case GW_JVAL_ARRAY:
    pv->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
    if (!(pv->list_value =
              (Google__Protobuf__ListValue *)new_msg(c, &google__protobuf__list_value__descriptor)))
      return nomem(c);
    return parse_list_value(c, v, pv->list_value, depth);
  }
  return invalid(c, "unexpected JSON value");
}

/* One Struct entry |key|: |v|, the path already pointing at it. */
static int struct_entry(struct pctx *c, const char *key, const gw_jval *v, int depth,
                        Google__Protobuf__Struct__FieldsEntry **out) {
  Google__Protobuf__Struct__FieldsEntry *e =
      (void *)new_msg(c, &google__protobuf__struct__fields_entry__descriptor);
  Google__Protobuf__Value *pv = (void *)new_msg(c, &google__protobuf__value__descriptor);
  if (!e || !pv)
    return nomem(c);
  e->key = (char *)key; /* the DOM's, in the arena */
  e->value = pv;
  *out = e;
  return parse_pb_value(c, v, pv, depth);
}

static int parse_struct(struct pctx *c, const gw_jval *v, Google__Protobuf__Struct *st, int depth) {
  if (!IS(v, OBJECT))
    return invalid(c, "expected an object");
  TRY(check_depth(c, depth));
  size_t n = v->len, i = 0;
  if (n > 0 && !(st->fields = gw_arena_alloc(c->arena, n * sizeof *st->fields)))
    return nomem(c);
  for (size_t j = 0; j < n; j++) {
    const gw_jmember *mb = &v->u.members[j];
    size_t mark = path_key(c, mb->key, mb->key_len);
    TRY(struct_entry(c, mb->key, &mb->value, depth + 1, &st->fields[i]));
    st->n_fields = ++i;
    path_pop(c, mark);
  }
  return GW_OK;
}

static int parse_list_value(struct pctx *c, const gw_jval *v, Google__Protobuf__ListValue *lv,
                            int depth) {
  if (!IS(v, ARRAY))
    return invalid(c, "expected an array");
  TRY(check_depth(c, depth));
  size_t n = v->len;
  if (n > 0 && !(lv->values = gw_arena_alloc(c->arena, n * sizeof *lv->values)))
    return nomem(c);
  for (size_t i = 0; i < n; i++) {
    size_t mark = path_index(c, i);
    Google__Protobuf__Value *pv = (void *)new_msg(c, &google__protobuf__value__descriptor);
    if (!pv)
      return nomem(c);
    lv->values[i] = pv;
    lv->n_values = i + 1;
    TRY(parse_pb_value(c, &v->u.elems[i], pv, depth + 1));
    path_pop(c, mark);
  }
  return GW_OK;
}

/* Reads exactly |n| digits at |*p| into |*out|. */
static int digits(const char **p, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++, (*p)++) {
    if (!isdigit((unsigned char)**p))
      return -1;
    v = v * 10 + (**p - '0');
  }
  *out = v;
  return 0;
}

/* ".d{1,9}" at |*p|, if present, as nanoseconds. */
static int fraction(const char **p, int32_t *nanos) {
  *nanos = 0;
  if (**p != '.')
    return 0;
  (*p)++;
  int n = 0;
  int32_t v = 0;
  while (isdigit((unsigned char)**p) && n < 9) {
    v = v * 10 + (**p - '0');
    (*p)++;
    n++;
  }
  if (n == 0 || isdigit((unsigned char)**p))
    return -1;
  for (; n < 9; n++)
    v *= 10;
  *nanos = v;
  return 0;
}

/* RFC 3339: "1972-01-01T10:00:20.021Z" or with a "+hh:mm" / "-hh:mm" offset. */
static int parse_timestamp(struct pctx *c, const gw_jval *v, Google__Protobuf__Timestamp *ts) {
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (!IS(v, STRING))
    return invalid(c, "expected an RFC 3339 timestamp");
  const char *p = v->u.str;
  int y, mo, d, h, mi, s, oh = 0, om = 0, sign = 0;
  int32_t nanos;
  if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d) ||
      (*p != 'T' && *p != 't') || !*p++ || digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) ||
      *p++ != ':' || digits(&p, 2, &s) || fraction(&p, &nanos))
    return invalid(c, "expected an RFC 3339 timestamp");
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    sign = *p++ == '-' ? -1 : 1;
    if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
      return invalid(c, "expected an RFC 3339 timestamp");
  } else {
    return invalid(c, "expected an RFC 3339 timestamp");
  }
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (*p || y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
      (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || s > 59)
    return invalid(c, "expected an RFC 3339 timestamp");
  struct tm tm = {
      .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = s};
  int64_t secs = (int64_t)timegm(&tm) - sign * (oh * 3600 + om * 60);
  if (secs < TS_MIN_SECONDS || secs > TS_MAX_SECONDS)
    return invalid(c, "timestamp out of range");
  ts->seconds = secs;
  ts->nanos = nanos;
  return GW_OK;
}

/* "-1.5s": optional sign, seconds, up to 9 fraction digits, "s". */
static int parse_duration(struct pctx *c, const gw_jval *v, Google__Protobuf__Duration *du) {
  if (!IS(v, STRING))
    return invalid(c, "expected a duration such as \"1.5s\"");
  const char *p = v->u.str;
  int neg = *p == '-';
  p += neg;
  int64_t secs = 0;
  int32_t nanos;
  int n = 0;
  for (; isdigit((unsigned char)*p); p++, n++) {
    secs = secs * 10 + (*p - '0');
    if (secs > DUR_MAX_SECONDS)
      return invalid(c, "duration out of range");
  }
  if (n == 0 || fraction(&p, &nanos) || *p++ != 's' || *p)
    return invalid(c, "expected a duration such as \"1.5s\"");
  du->seconds = neg ? -secs : secs;
  du->nanos = neg ? -nanos : nanos;
  return GW_OK;
}

/* Whether |v|'s JSON kind fits field |f| (a bare union's member test).
 * |guard| stops a union type that contains itself without nesting. */
static int kind_matches(const ProtobufCFieldDescriptor *f, const gw_jval *v, int bare_list,
                        int guard) {
  switch (f->type) {
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_BYTES: return IS(v, STRING);
  case PROTOBUF_C_TYPE_ENUM: return IS(v, STRING) || IS_INT(v);
  case PROTOBUF_C_TYPE_BOOL: return IS_BOOL(v);
  case PROTOBUF_C_TYPE_MESSAGE: break;
  default: return IS(v, NUMBER);
  }
  const ProtobufCMessageDescriptor *d = f->descriptor;
  const ProtobufCFieldDescriptor *lf;
  if (guard > 16)
    return 0;
  switch (wkt_of(d)) {
  case WKT_WRAPPER: return kind_matches(&d->fields[0], v, 0, guard + 1);
  case WKT_STRUCT: return IS(v, OBJECT);
  case WKT_LIST: return IS(v, ARRAY);
  case WKT_VALUE: return 1;
  case WKT_TIMESTAMP:
  case WKT_DURATION: return IS(v, STRING);
  case WKT_NONE: break;
  }
  if (is_union(d)) {
    for (unsigned i = 0; i < d->n_fields; i++)
      if (kind_matches(&d->fields[i], v, 1, guard + 1))
        return 1;
    return 0;
  }
  if (bare_list && (lf = list_field(d)))
    return IS(v, ARRAY) && (v->len == 0 || kind_matches(lf, &v->u.elems[0], 1, guard + 1));
  return IS(v, OBJECT);
}

static const char *kind_name(const gw_jval *v) {
  switch (v->type) {
  case GW_JVAL_OBJECT: return "an object";
  case GW_JVAL_ARRAY: return "an array";
  case GW_JVAL_STRING: return "a string";
  case GW_JVAL_NUMBER: return "a number";
  case GW_JVAL_TRUE:
  case GW_JVAL_FALSE: return "a boolean";
  default: return "null";
  }
}

/* A bare union: the first member whose kind matches |v| takes it. */
static int parse_union(struct pctx *c, const ProtobufCMessageDescriptor *d, const gw_jval *v,
                       ProtobufCMessage *m, int depth) {
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (!kind_matches(f, v, 1, 0))
      continue;
    TRY(parse_value(c, f, v, SLOT(m, f->offset), depth, 1));
    *(uint32_t *)SLOT(m, f->quantifier_offset) = f->id;
    return GW_OK;
  }
  return fail(c, GW_ERR_INVALID, "unexpected %s", kind_name(v));
}

/* Sets field |f| of |m| (an object member, |v| not a skipped null). */
static int parse_field(struct pctx *c, const ProtobufCMessageDescriptor *d,
                       const ProtobufCFieldDescriptor *f, const gw_jval *v, ProtobufCMessage *m,
                       int depth) {
  if (f->label == PROTOBUF_C_LABEL_REPEATED)
    return is_map_field(d, f) ? parse_map(c, f, v, m, depth) : parse_repeated(c, f, v, m, depth, 0);
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
    uint32_t *which = SLOT(m, f->quantifier_offset);
    if (*which != 0 && *which != f->id)
      return invalid(c, "only one member of a oneof may be set");
    TRY(parse_value(c, f, v, SLOT(m, f->offset), depth, 0));
    *which = f->id;
    return GW_OK;
  }
  TRY(parse_value(c, f, v, SLOT(m, f->offset), depth, 0));
  if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
      f->type != PROTOBUF_C_TYPE_MESSAGE)
    *(protobuf_c_boolean *)SLOT(m, f->quantifier_offset) = 1;
  return GW_OK;
}

/* A JSON object as message |d|; unknown members go to the slot or fail. */
static int parse_object(struct pctx *c, const ProtobufCMessageDescriptor *d, const desc_info *in,
                        const gw_jval *v, ProtobufCMessage *m, int depth) {
  if (!IS(v, OBJECT))
    return fail(c, GW_ERR_INVALID, "expected an object, not %s", kind_name(v));
  const ProtobufCFieldDescriptor *slot = in ? in->extra : extra_compute(d);
  int keep = slot && c->opts.keep_unknown;
  unsigned char *seen = NULL;
  size_t n_unknown = 0;
  if (d->n_fields > 0 && !(seen = gw_arena_calloc(c->arena, d->n_fields)))
    return nomem(c);
  for (size_t j = 0; j < v->len; j++) {
    const char *key = v->u.members[j].key;
    const gw_jval *val = &v->u.members[j].value;
    const ProtobufCFieldDescriptor *f = find_field_in(in, d, key, v->u.members[j].key_len, slot);
    size_t mark = path_key(c, key, v->u.members[j].key_len);
    if (!f) {
      int skip = skipped_name(&c->opts, key, v->u.members[j].key_len);
      if (!keep && !c->opts.drop_unknown && !skip)
        return invalid(c, "unknown field");
      n_unknown += keep && !skip;
      path_pop(c, mark);
      continue;
    }
    size_t idx = (size_t)(f - d->fields);
    if (seen[idx])
      return invalid(c, "duplicate field");
    seen[idx] = 1;
    if (!IS(val, NULL) || null_is_value(f))
      TRY(parse_field(c, d, f, val, m, depth + 1));
    else if (keep && !c->opts.drop_unknown)
      n_unknown++; /* an explicit null is kept in the slot, so it goes out again */
    path_pop(c, mark);
  }
  if (n_unknown == 0)
    return GW_OK;
  Google__Protobuf__Struct *st = (void *)new_msg(c, &google__protobuf__struct__descriptor);
  if (!st || !(st->fields = gw_arena_alloc(c->arena, n_unknown * sizeof *st->fields)))
    return nomem(c);
  *(Google__Protobuf__Struct **)SLOT(m, slot->offset) = st;
  for (size_t j = 0; j < v->len; j++) {
    const char *key = v->u.members[j].key;
    const gw_jval *val = &v->u.members[j].value;
    const ProtobufCFieldDescriptor *f = find_field_in(in, d, key, v->u.members[j].key_len, slot);
    if (f && (!(IS(val, NULL) && !null_is_value(f)) || c->opts.drop_unknown))
      continue;
    if (!f && skipped_name(&c->opts, key, v->u.members[j].key_len))
      continue;
    size_t mark = path_key(c, key, v->u.members[j].key_len);
    TRY(struct_entry(c, key, val, depth + 1, &st->fields[st->n_fields]));
    st->n_fields++;
    path_pop(c, mark);
  }
  return GW_OK;
}

/* Parses |v| (at nesting |depth|) into the initialised message |m| of type
 * |d|. |bare_list|: a list wrapper here is a bare array (bare_unions). */
static int parse_message(struct pctx *c, const ProtobufCMessageDescriptor *d, const gw_jval *v,
                         ProtobufCMessage *m, int depth, int bare_list) {
  const ProtobufCFieldDescriptor *lf;
  TRY(check_depth(c, depth));
  const desc_info *in = info_of(d); /* once per message: the rest read it */
  switch (in ? in->wkt : wkt_compute(d)) {
  case WKT_WRAPPER: return get_scalar(c, &d->fields[0], v, SLOT(m, d->fields[0].offset));
  case WKT_STRUCT: return parse_struct(c, v, (Google__Protobuf__Struct *)m, depth);
  case WKT_VALUE: return parse_pb_value(c, v, (Google__Protobuf__Value *)m, depth);
  case WKT_LIST: return parse_list_value(c, v, (Google__Protobuf__ListValue *)m, depth);
  case WKT_TIMESTAMP: return parse_timestamp(c, v, (Google__Protobuf__Timestamp *)m);
  case WKT_DURATION: return parse_duration(c, v, (Google__Protobuf__Duration *)m);
  case WKT_NONE: break;
  }
  if (c->opts.bare_unions && (in ? in->is_union : is_union(d)))
    return parse_union(c, d, v, m, depth);
  if (c->opts.bare_unions && bare_list && (lf = in ? in->list : list_field(d)))
    return parse_repeated(c, lf, v, m, depth, 1);
  return parse_object(c, d, in, v, m, depth);
}

/* ------------------------------------------------------------ the direct path
 *
 * Most documents are plain: objects that are messages, arrays of scalars or
 * of messages, and scalars. Those are read from the text straight into the
 * message, with no DOM. A member whose value needs more (a well-known type,
 * a bare union, a map, a null, a member kept in the unknown-member slot) is
 * read as a DOM of its own and given to the code the DOM path runs, so each
 * rule exists once. On any error the direct path gives up (FAST_NO) and the
 * document goes the DOM way from the start, which reports the error as it
 * always did: the direct path reports nothing of its own. */
#define FAST_NO 1
#define FAST_MAX_DEPTH 32 /* deeper nesting goes the DOM way */
#define FAST_TRY(x)                                                                                \
  do {                                                                                             \
    if ((x) != GW_OK)                                                                              \
      return FAST_NO;                                                                              \
  } while (0)

/* A member read as a DOM for the unknown-member slot, in document order. */
struct fast_kept {
  const char *key;
  size_t klen;
  gw_jval v;
  int skip; /* one skip_unknown names: read, not kept */
};

/* The info of |d| when the direct path reads its objects itself. */
static const desc_info *fast_plain(const struct pctx *c, const ProtobufCMessageDescriptor *d) {
  const desc_info *in = info_of(d);
  if (!in || in->wkt != WKT_NONE || (c->opts.bare_unions && in->is_union))
    return NULL;
  return in;
}

static int fast_depth_ok(const struct pctx *c, int depth) {
  return depth <= FAST_MAX_DEPTH && depth <= c->opts.max_depth;
}

/* The string at |r| ('"' there). A plain one (no escape, control or
 * non-ASCII byte, the common case) is taken in place, without the reader's
 * set-up: a key stays in the text (|copy| 0: it is only looked up), a value
 * is copied into the arena with its NUL. Others go through the reader. */
static int fast_string(struct pctx *c, gw_json_lite_reader *r, int is_key, int copy, const char **s,
                       size_t *n) {
  const unsigned char *p = (const unsigned char *)r->p + 1, *end = (const unsigned char *)r->end;
  const unsigned char *q = gw_json_skip_plain(p, end);
  if (q < end && *q == '"') {
    size_t len = (size_t)(q - p);
    if (copy) {
      char *d = gw_arena_alloc(c->arena, len + 1);
      if (!d)
        return FAST_NO;
      memcpy(d, p, len);
      d[len] = '\0';
      *s = d;
    } else {
      *s = (const char *)p;
    }
    *n = len;
    r->p = (const char *)q + 1;
    return GW_OK;
  }
  FAST_TRY(gw_json_lite_read_string(r, is_key, s, n));
  return GW_OK;
}

/* The scalar at |r| (its first byte |ch|) into |*v|, as json_lite reads it. */
static int fast_scalar(struct pctx *c, gw_json_lite_reader *r, int ch, gw_jval *v) {
  if (ch == '"') {
    v->type = GW_JVAL_STRING;
    v->flags = 0;
    return fast_string(c, r, 0, 1, &v->u.str, &v->len);
  }
  FAST_TRY(gw_json_lite_read_scalar(r, v));
  return GW_OK;
}

/* After an element or member: |close| ends the container (0), a comma means
 * another follows (1); both are consumed. Anything else: -1. */
static int fast_next(gw_json_lite_reader *r, int close) {
  int ch = gw_json_lite_peek(r);
  if (ch != close && ch != ',')
    return -1;
  r->p++;
  return ch == ',';
}

/* Skips the value at |r| (|ch| its first byte, at nesting |depth|) checking
 * it as the DOM path reads it, keeping nothing and allocating nothing for
 * plain strings: a skip_unknown member (Azure's filter annotations were
 * ~9.7K instructions an answer as a DOM). An object of more than
 * SKIP_KEYS members, a key repeated in it, nesting the direct path does not
 * go to, or bad syntax: FAST_NO, and the DOM path reads the whole text. */
#define SKIP_KEYS 16
static int fast_skip(struct pctx *c, gw_json_lite_reader *r, int ch, int depth) {
  const char *s;
  size_t n;
  if (ch == '"')
    return fast_string(c, r, 0, 0, &s, &n);
  if (ch != '[' && ch != '{') {
    gw_jval v;
    FAST_TRY(gw_json_lite_read_scalar(r, &v));
    return GW_OK;
  }
  if (!fast_depth_ok(c, depth + 1))
    return FAST_NO;
  int close = ch == '[' ? ']' : '}';
  const char *keys[SKIP_KEYS];
  size_t lens[SKIP_KEYS], nk = 0;
  r->p++;
  if (gw_json_lite_peek(r) == close) {
    r->p++;
    return GW_OK;
  }
  for (;;) {
    if (close == '}') {
      if (gw_json_lite_peek(r) != '"' || nk == SKIP_KEYS)
        return FAST_NO;
      FAST_TRY(fast_string(c, r, 1, 0, &s, &n));
      for (size_t i = 0; i < nk; i++)
        if (lens[i] == n && memcmp(keys[i], s, n) == 0)
          return FAST_NO; /* a repeated key */
      keys[nk] = s;
      lens[nk++] = n;
      if (gw_json_lite_peek(r) != ':')
        return FAST_NO;
      r->p++;
    }
    if ((ch = gw_json_lite_peek(r)) < 0)
      return FAST_NO;
    FAST_TRY(fast_skip(c, r, ch, depth + 1));
    int more = fast_next(r, close);
    if (more < 0)
      return FAST_NO;
    if (!more)
      return GW_OK;
  }
}

/* The value at |r| as a DOM, parsed as field |f| of |m| the DOM way. */
static int fast_by_dom(struct pctx *c, gw_json_lite_reader *r, const ProtobufCMessageDescriptor *d,
                       const ProtobufCFieldDescriptor *f, ProtobufCMessage *m, int depth) {
  gw_jval v;
  FAST_TRY(gw_json_lite_read_value(r, depth, &v));
  FAST_TRY(parse_field(c, d, f, &v, m, depth));
  return GW_OK;
}

static int fast_object(struct pctx *c, gw_json_lite_reader *r, const ProtobufCMessageDescriptor *d,
                       const desc_info *in, ProtobufCMessage *m, int depth);

/* The array at |r| ('[' there) as repeated field |f|, at nesting |depth|;
 * |sub| is the info of its plain message type (NULL for scalars). */
static int fast_repeated(struct pctx *c, gw_json_lite_reader *r, const ProtobufCFieldDescriptor *f,
                         const desc_info *sub, ProtobufCMessage *m, int depth) {
  size_t size = elem_size(f->type), n = 0, cap = 8;
  if (!fast_depth_ok(c, depth) || !fast_depth_ok(c, depth + 1))
    return FAST_NO;
  char *arr = gw_arena_alloc(c->arena, cap * size);
  if (!arr)
    return FAST_NO;
  r->p++; /* '[' */
  int ch = gw_json_lite_peek(r);
  if (ch == ']') {
    r->p++;
  } else {
    for (;;) {
      if (n == cap) {
        char *grown = gw_arena_alloc(c->arena, 2 * cap * size);
        if (!grown)
          return FAST_NO;
        memcpy(grown, arr, n * size);
        arr = grown;
        cap *= 2;
      }
      if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        ProtobufCMessage *sm;
        if (ch != '{' || !(sm = new_msg(c, f->descriptor)))
          return FAST_NO;
        FAST_TRY(fast_object(c, r, f->descriptor, sub, sm, depth + 1));
        ((ProtobufCMessage **)(void *)arr)[n] = sm;
      } else {
        gw_jval v;
        FAST_TRY(fast_scalar(c, r, ch, &v));
        if (IS(&v, NULL) && !null_is_value(f))
          return FAST_NO;
        FAST_TRY(get_scalar(c, f, &v, arr + n * size));
      }
      n++;
      int more = fast_next(r, ']');
      if (more < 0)
        return FAST_NO;
      if (!more)
        break;
      ch = gw_json_lite_peek(r);
    }
  }
  *(size_t *)SLOT(m, f->quantifier_offset) = n;
  *(void **)SLOT(m, f->offset) = n ? arr : NULL;
  return GW_OK;
}

/* The value at |r| (its first byte |ch|) as field |f| of |m|. */
/* A JSON integer (no fraction, no exponent, at most 18 digits) at |r| into
 * the int32, int64, uint32 or uint64 field |f|'s |slot| when it is in range;
 * else FAST_NO with |r| unmoved, and the general path reads (or rejects) it.
 * json_lite's number grammar: a leading zero stands alone. */
static int fast_int(gw_json_lite_reader *r, const ProtobufCFieldDescriptor *f, void *slot) {
  const unsigned char *p = (const unsigned char *)r->p, *end = (const unsigned char *)r->end;
  const unsigned char *q = p + (p < end && *p == '-');
  int neg = q != p;
  uint64_t v = 0;
  size_t n = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  if (end - q >= 8) { /* a timestamp's ten digits: eight of them in one step */
    uint64_t w;
    memcpy(&w, q, 8);
    /* each byte 0x30..0x39: high nibble 3, and adding 6 keeps it 3 */
    if (((w & 0xf0f0f0f0f0f0f0f0u) | (((w + 0x0606060606060606u) & 0xf0f0f0f0f0f0f0f0u) >> 4)) ==
        0x3333333333333333u) {
      w &= 0x0f0f0f0f0f0f0f0fu;
      w = (w * (1 + (10 << 8))) >> 8;
      w = ((w & 0x00ff00ff00ff00ffu) * (1 + (100 << 16))) >> 16;
      v = ((w & 0x0000ffff0000ffffu) * (1 + (10000ull << 32))) >> 32;
      n = 8;
    }
  }
#endif
  while (q + n < end && q[n] >= '0' && q[n] <= '9' && n < 19)
    v = v * 10 + (uint64_t)(q[n++] - '0');
  q += n;
  if (n == 0 || n > 18 || (n > 1 && q[-(ptrdiff_t)n] == '0') ||
      (q < end && (*q == '.' || *q == 'e' || *q == 'E' || (*q >= '0' && *q <= '9'))))
    return FAST_NO;
  int64_t i = neg ? -(int64_t)v : (int64_t)v; /* |v| < 10^18: no overflow */
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
    if (i < INT32_MIN || i > INT32_MAX)
      return FAST_NO;
    *(int32_t *)slot = (int32_t)i;
    break;
  case PROTOBUF_C_TYPE_INT64: *(int64_t *)slot = i; break;
  case PROTOBUF_C_TYPE_UINT32:
    if (neg || v > UINT32_MAX)
      return FAST_NO;
    *(uint32_t *)slot = (uint32_t)v;
    break;
  case PROTOBUF_C_TYPE_UINT64:
    if (neg)
      return FAST_NO;
    *(uint64_t *)slot = v;
    break;
  default: return FAST_NO;
  }
  r->p = (const char *)q;
  return GW_OK;
}

static int fast_field(struct pctx *c, gw_json_lite_reader *r, const ProtobufCMessageDescriptor *d,
                      const ProtobufCFieldDescriptor *f, ProtobufCMessage *m, int depth, int ch) {
  if (f->label == PROTOBUF_C_LABEL_REPEATED) {
    if (f->type == PROTOBUF_C_TYPE_FLOAT && ch == '[' && fast_depth_ok(c, depth)) {
      float *a; /* an embedding: the scanner's float values, in one loop */
      size_t k;
      if (gw_json_lite_read_floats(r, &a, &k) == GW_OK) {
        *(size_t *)SLOT(m, f->quantifier_offset) = k;
        *(void **)SLOT(m, f->offset) = k ? a : NULL;
        return GW_OK;
      }
      return fast_by_dom(c, r, d, f, m, depth); /* |r| has not moved */
    }
    const desc_info *sub = NULL;
    if (ch != '[' || is_map_field(d, f) ||
        (f->type == PROTOBUF_C_TYPE_MESSAGE && !(sub = fast_plain(c, f->descriptor))))
      return fast_by_dom(c, r, d, f, m, depth);
    return fast_repeated(c, r, f, sub, m, depth);
  }
  const desc_info *sub;
  if (f->type == PROTOBUF_C_TYPE_MESSAGE && ch == '{' && (sub = fast_plain(c, f->descriptor))) {
    uint32_t *which =
        (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ? SLOT(m, f->quantifier_offset) : NULL;
    ProtobufCMessage *sm;
    if ((which && *which != 0 && *which != f->id) || !(sm = new_msg(c, f->descriptor)))
      return FAST_NO;
    FAST_TRY(fast_object(c, r, f->descriptor, sub, sm, depth));
    *(ProtobufCMessage **)SLOT(m, f->offset) = sm;
    if (which)
      *which = f->id;
    return GW_OK;
  }
  if (ch == '{' || ch == '[')
    return fast_by_dom(c, r, d, f, m, depth);
  if (f->type == PROTOBUF_C_TYPE_MESSAGE && fast_depth_ok(c, depth)) {
    /* A scalar for a wrapper (max_tokens, a StringValue) or a string for a
     * bare union (a message's content): the one member it sets, directly. */
    const ProtobufCMessageDescriptor *sd = f->descriptor;
    const desc_info *sub = info_of(sd);
    const ProtobufCFieldDescriptor *tf = NULL;
    if (sub && sub->wkt == WKT_WRAPPER)
      tf = &sd->fields[0];
    else if (sub && c->opts.bare_unions && sub->is_union && ch == '"')
      tf = sub->union_string;
    uint32_t *which =
        (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ? SLOT(m, f->quantifier_offset) : NULL;
    ProtobufCMessage *sm;
    if (tf && (tf->type == PROTOBUF_C_TYPE_STRING) == (ch == '"') &&
        !(which && *which != 0 && *which != f->id) && (sm = new_msg(c, sd))) {
      size_t n;
      void *slot = SLOT(sm, tf->offset);
      int rc = tf->type == PROTOBUF_C_TYPE_STRING ? fast_string(c, r, 0, 1, (const char **)slot, &n)
                                                  : fast_int(r, tf, slot);
      if (rc == GW_OK) {
        if (tf->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
          *(uint32_t *)SLOT(sm, tf->quantifier_offset) = tf->id;
        *(ProtobufCMessage **)SLOT(m, f->offset) = sm;
        if (which)
          *which = f->id;
        return GW_OK;
      }
      if (tf->type == PROTOBUF_C_TYPE_STRING)
        return FAST_NO;
      /* not a plain integer (a fraction, a float wrapper...): |r| has not
       * moved, and the general path reads it */
    }
  }
  if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && f->label != PROTOBUF_C_LABEL_OPTIONAL) {
    /* The two commonest members, straight into their slot: a string, and an
     * integer written as digits. */
    if (f->type == PROTOBUF_C_TYPE_STRING && ch == '"') {
      size_t n;
      return fast_string(c, r, 0, 1, (const char **)SLOT(m, f->offset), &n);
    }
    if (fast_int(r, f, SLOT(m, f->offset)) == GW_OK)
      return GW_OK;
  }
  gw_jval v; /* a scalar, also for a union or wrapper message */
  FAST_TRY(fast_scalar(c, r, ch, &v));
  if (f->type == PROTOBUF_C_TYPE_MESSAGE || (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) {
    FAST_TRY(parse_field(c, d, f, &v, m, depth));
    return GW_OK;
  }
  /* A plain scalar field: parse_field's last case, without its dispatch. */
  FAST_TRY(get_scalar(c, f, &v, SLOT(m, f->offset)));
  if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING)
    *(protobuf_c_boolean *)SLOT(m, f->quantifier_offset) = 1;
  return GW_OK;
}

/* The object at |r| ('{' there) as message |m| of plain type |d| (|in| its
 * info), at nesting |depth|: parse_object's rules, member by member. */
static int fast_object(struct pctx *c, gw_json_lite_reader *r, const ProtobufCMessageDescriptor *d,
                       const desc_info *in, ProtobufCMessage *m, int depth) {
  if (!fast_depth_ok(c, depth) || !fast_depth_ok(c, depth + 1))
    return FAST_NO;
  const ProtobufCFieldDescriptor *slot = in->extra;
  int keep = slot && c->opts.keep_unknown;
  unsigned char seen_small[64], *seen = seen_small;
  if (d->n_fields > sizeof seen_small && !(seen = gw_arena_calloc(c->arena, d->n_fields)))
    return FAST_NO;
  if (seen == seen_small)
    memset(seen_small, 0, sizeof seen_small);
  struct fast_kept *kept = NULL;
  size_t n_kept = 0, n_skipped = 0, kept_cap = 0, pos = 0;
  r->p++; /* '{' */
  int ch = gw_json_lite_peek(r);
  if (ch == '}') {
    r->p++;
    return GW_OK;
  }
  for (;;) {
    const char *key; /* in the text when plain: not NUL-terminated */
    size_t klen;
    if (ch != '"')
      return FAST_NO;
    const ProtobufCFieldDescriptor *f = guessed_key(in, pos, r, &key, &klen);
    if (!f)
      FAST_TRY(fast_string(c, r, 1, 0, &key, &klen));
    if (gw_json_lite_peek(r) != ':')
      return FAST_NO;
    r->p++;
    if ((ch = gw_json_lite_peek(r)) < 0)
      return FAST_NO;
    if (!f)
      f = ordered_field(in, pos, key, klen);
    pos++;
    if (f == slot)
      f = NULL; /* the unknown-member slot is no member */
    int keep_this = !f;
    if (f) {
      size_t idx = (size_t)(f - d->fields);
      if (seen[idx])
        return FAST_NO; /* a repeated key, or two names of one field */
      seen[idx] = 1;
      if (ch == 'n' && !null_is_value(f)) { /* kept, so it goes out again; or dropped */
        gw_jval v;
        FAST_TRY(gw_json_lite_read_scalar(r, &v));
        if (!IS(&v, NULL))
          return FAST_NO;
        keep_this = !c->opts.drop_unknown;
      } else {
        FAST_TRY(fast_field(c, r, d, f, m, depth + 1, ch));
      }
    } else if (!keep) {
      return FAST_NO; /* an unknown field */
    }
    if (keep_this && keep) {
      for (size_t i = 0; i < n_kept; i++)
        if (kept[i].klen == klen && memcmp(kept[i].key, key, klen) == 0)
          return FAST_NO; /* a repeated key */
      if (n_kept == kept_cap) {
        size_t ncap = kept_cap ? 2 * kept_cap : 4;
        struct fast_kept *grown = gw_arena_alloc(c->arena, ncap * sizeof *grown);
        if (!grown)
          return FAST_NO;
        if (n_kept)
          memcpy(grown, kept, n_kept * sizeof *kept);
        kept = grown;
        kept_cap = ncap;
      }
      if (!(kept[n_kept].key = gw_arena_strndup(c->arena, key, klen)))
        return FAST_NO;
      kept[n_kept].klen = klen;
      /* checked all the same (its syntax, a repeated key), not kept */
      kept[n_kept].skip = !f && skipped_name(&c->opts, key, klen);
      n_skipped += kept[n_kept].skip;
      if (f) { /* the null, read above */
        kept[n_kept].v = (gw_jval){.type = GW_JVAL_NULL};
      } else if (kept[n_kept].skip) {
        FAST_TRY(fast_skip(c, r, ch, depth + 1));
      } else {
        FAST_TRY(gw_json_lite_read_value(r, depth + 1, &kept[n_kept].v));
      }
      n_kept++;
    } else if (!f) {
      return FAST_NO;
    }
    int more = fast_next(r, '}');
    if (more < 0)
      return FAST_NO;
    if (!more)
      break;
    if ((ch = gw_json_lite_peek(r)) != '"')
      return FAST_NO;
  }
  if (n_kept == n_skipped)
    return GW_OK;
  Google__Protobuf__Struct *st = (void *)new_msg(c, &google__protobuf__struct__descriptor);
  if (!st || !(st->fields = gw_arena_alloc(c->arena, (n_kept - n_skipped) * sizeof *st->fields)))
    return FAST_NO;
  *(Google__Protobuf__Struct **)SLOT(m, slot->offset) = st;
  for (size_t i = 0; i < n_kept; i++) {
    if (kept[i].skip)
      continue;
    FAST_TRY(struct_entry(c, kept[i].key, &kept[i].v, depth + 1, &st->fields[st->n_fields]));
    st->n_fields++;
  }
  return GW_OK;
}

static void resolve_opts(const gw_json_opts *in, gw_json_opts *out) {
  if (in)
    *out = *in;
  else
    memset(out, 0, sizeof *out);
  if (out->max_depth <= 0)
    out->max_depth = GW_JSON_DEFAULT_MAX_DEPTH;
}

int gw_json_to_pb(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                  gw_arena *arena, const gw_json_opts *opts, ProtobufCMessage **out,
                  gw_json_error *err) {
  struct pctx c; /* not zeroed whole: the frames are written before read */
  c.arena = arena;
  c.err = err;
  c.nframes = 0;
  resolve_opts(opts, &c.opts);
  if (err)
    err->param[0] = err->message[0] = '\0';
  const desc_info *in;
  if (json && !c.opts.dom_only && (in = fast_plain(&c, desc))) {
    gw_json_lite_reader r = {json, json + len, arena};
    ProtobufCMessage *m;
    if (gw_json_lite_peek(&r) == '{' && (m = new_msg(&c, desc)) &&
        fast_object(&c, &r, desc, in, m, 1) == GW_OK && gw_json_lite_peek(&r) < 0) {
      *out = m;
      return GW_OK;
    }
    c.nframes = 0; /* the DOM way, from the start */
    if (err)
      err->param[0] = err->message[0] = '\0';
  }
  gw_json_lite_error je;
  const gw_jval *root;
  int rc = gw_json_lite_parse(json, len, arena, 0, 0, &root, &je);
  if (rc == GW_ERR_NOMEM)
    return nomem(&c);
  if (rc != GW_OK)
    return fail(&c, GW_ERR_INVALID, "invalid JSON at line %d column %d: %s", je.line, je.column,
                je.text);
  ProtobufCMessage *m = new_msg(&c, desc);
  if (!m)
    rc = nomem(&c);
  else
    rc = parse_message(&c, desc, root, m, 1, 0);
  if (rc == GW_OK)
    *out = m;
  return rc;
}

/* ------------------------------------------------------------ pb -> JSON */

struct wctx {
  gw_buf *b;
  gw_json_opts opts;
};

static int print_message(struct wctx *w, const ProtobufCMessage *m, int depth, int bare_list);

/* Where a number's text (GW_NUMTEXT_MAX bytes at most, its NUL included)
 * can be written straight into |b|, or NULL: then it goes through a copy.
 * Room within |alloc| is within the cap too (alloc <= cap + 1). */
static char *num_room(gw_buf *b) {
  return b->data && b->alloc - b->len >= GW_NUMTEXT_MAX ? b->data + b->len : NULL;
}

static int print_double(gw_buf *b, double v) {
  char tmp[GW_NUMTEXT_MAX], *room;
  if (isnan(v))
    return gw_buf_appends(b, "\"NaN\"");
  if (isinf(v))
    return gw_buf_appends(b, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  if (v == 0 && signbit(v))
    return gw_buf_appends(b, "-0.0"); /* "-0" would read back as integer 0 */
  if ((room = num_room(b))) {
    b->len += gw_numtext_double(v, room);
    return GW_OK;
  }
  return gw_buf_append(b, tmp, gw_numtext_double(v, tmp));
}

static int print_float(gw_buf *b, float v) {
  char tmp[GW_NUMTEXT_MAX], *room;
  if (isnan(v) || isinf(v) || (v == 0 && signbit(v)))
    return print_double(b, v);
  if ((room = num_room(b))) {
    b->len += gw_numtext_float(v, room);
    return GW_OK;
  }
  return gw_buf_append(b, tmp, gw_numtext_float(v, tmp));
}

/* |v| as a JSON number, or quoted when |quote| (proto3 JSON's 64-bit form). */
static int print_int_text(gw_buf *b, const char *t, size_t n, int quote) {
  if (!quote)
    return gw_buf_append(b, t, n);
  TRY(gw_buf_appendc(b, '"'));
  TRY(gw_buf_append(b, t, n));
  return gw_buf_appendc(b, '"');
}

static int print_i64(struct wctx *w, int64_t v) {
  char t[GW_NUMTEXT_MAX];
  return print_int_text(w->b, t, gw_numtext_i64(v, t), !w->opts.int64_as_number);
}

static int print_u64(struct wctx *w, uint64_t v) {
  char t[GW_NUMTEXT_MAX];
  return print_int_text(w->b, t, gw_numtext_u64(v, t), !w->opts.int64_as_number);
}

/* put_escape: gw_json_put_escape (core/buf.h), the writers' one. */
static inline size_t put_escape(unsigned char *o, unsigned char ch) {
  return gw_json_put_escape((char *)o, ch);
}

#if defined(GW_JSON_SKIP_AVX2)
/* The rest of plain_len's scan from the 32-aligned |at|, 32 bytes a step
 * (CPUs with AVX2): where it stops. */
__attribute__((no_sanitize("address"), target("avx2"))) static const char *
plain_stop_avx2(uintptr_t at) {
  for (;; at += 32) {
    unsigned m = gw_json_special_mask32(_mm256_load_si256((const __m256i *)at));
    if (m)
      return (const char *)at + __builtin_ctz(m);
  }
}

/* The length of |s| when every byte of it is plain (gw_json_skip_plain's
 * sense), else SIZE_MAX: strlen and the scan in one pass. It reads 16 aligned
 * bytes at a time, as strlen does: an aligned load never crosses into the
 * next page, so reading past the NUL is safe on the machine, though not in
 * C's abstract machine; AddressSanitizer is told to let it be. */
__attribute__((no_sanitize("address"))) static size_t plain_len(const char *s) {
  uintptr_t at = (uintptr_t)s & ~(uintptr_t)15;
  unsigned skip = (unsigned)((uintptr_t)s & 15);
  for (int step = 0;; at += 16, skip = 0, step++) {
    /* past 64 bytes, a long string (a prompt): on to 32 bytes a step */
    if (step >= 4 && !(at & 31) && __builtin_cpu_supports("avx2")) {
      const char *q = plain_stop_avx2(at);
      return *q ? SIZE_MAX : (size_t)(q - s);
    }
    /* the NUL is a control byte: it stops the scan with the others */
    unsigned m = gw_json_special_mask16(_mm_load_si128((const __m128i *)at)) >> skip;
    if (m) {
      const char *q = (const char *)at + skip + __builtin_ctz(m);
      return *q ? SIZE_MAX : (size_t)(q - s);
    }
  }
}

/* Copies the plain bytes (gw_json_skip_plain's sense) at |u| to |*op| and
 * returns where they end (|end| or a byte that is not plain), |*op| moved
 * past them: the run between two escapes of a string, without a call for
 * the scan and one for the copy. 16 bytes a step, each stored whole: the
 * caller keeps room for the rest of the string at |*op|, which holds the 16
 * bytes read. */
static const unsigned char *copy_plain(const unsigned char *u, const unsigned char *end,
                                       unsigned char **op) {
  unsigned char *o = *op;
  for (; end - u >= 16; u += 16, o += 16) {
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)u);
    _mm_storeu_si128((__m128i *)(void *)o, x);
    unsigned m = gw_json_special_mask16(x);
    if (m) {
      *op = o + __builtin_ctz(m);
      return u + __builtin_ctz(m);
    }
  }
  const unsigned char *v = gw_json_skip_plain(u, end);
  memcpy(o, u, (size_t)(v - u));
  *op = o + (v - u);
  return v;
}
#else
static size_t plain_len(const char *s) {
  const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
  return gw_json_skip_plain(p, end) == end ? (size_t)(end - p) : SIZE_MAX;
}

static const unsigned char *copy_plain(const unsigned char *u, const unsigned char *end,
                                       unsigned char **op) {
  const unsigned char *v = gw_json_skip_plain(u, end);
  memcpy(*op, u, (size_t)(v - u));
  *op += v - u;
  return v;
}
#endif

/* |s| as a JSON string. protobuf-c does not check that strings from the wire
 * are UTF-8, so bytes that are not become U+FFFD rather than invalid JSON. */
static int print_string(gw_buf *b, const char *s) {
  const unsigned char *p = (const unsigned char *)(s ? s : "");
  size_t n = plain_len((const char *)p);
  if (n != SIZE_MAX) { /* plain: one copy, into room made once (a 100 KB prompt) */
    if (!b->data || n + 2 >= b->alloc - b->len)
      TRY(gw_buf_reserve(b, n + 2));
    char *o = b->data + b->len;
    o[0] = '"';
    memcpy(o + 1, p, n);
    o[n + 1] = '"';
    o[n + 2] = '\0';
    b->len += n + 2;
    return GW_OK;
  }
  /* Escapes or non-ASCII text (a markdown answer's newlines, a language
   * other than English): written straight into the buffer. The room left
   * (to |lim|, the NUL's byte kept) is never less than what the rest of the
   * string takes as it is plus the closing quote: an escape, up to six
   * bytes for one, first makes sure of room for itself and the rest (the
   * buffer grows by doubling, so that is seldom needed, and then for no
   * more than the string's own text: a cap that holds it is enough). */
  n = strlen((const char *)p);
  const unsigned char *end = p + n, *u = p;
  TRY(gw_buf_reserve(b, n + 2));
  unsigned char *o = (unsigned char *)b->data + b->len,
                *lim = (unsigned char *)b->data + b->alloc - 1;
  *o++ = '"';
  for (;;) {
    u = copy_plain(u, end, &o);
    if (u == end)
      break;
    if (*u >= 0x80) {                                     /* whole UTF-8 characters, as they are */
      const unsigned char *v = gw_json_skip_text(u, end); /* 16 bytes a step */
      size_t len;
      if (v == u) /* (no SSSE3, near the end, or a byte that is not UTF-8 ahead) */
        while (v < end && *v >= 0x80 && (len = gw_json_utf8_seq(v, (size_t)(end - v))))
          v += len;
      if (v != u) {
        memcpy(o, u, (size_t)(v - u));
        o += v - u;
        u = v;
        continue;
      }
    }
    if ((size_t)(lim - o) < (size_t)(end - u) + 6) {
      unsigned char e[6]; /* what it needs exactly, as a cap may allow no more */
      size_t elen = put_escape(e, *u);
      if ((size_t)(lim - o) < (size_t)(end - u) + elen) {
        b->len = (size_t)(o - (unsigned char *)b->data);
        TRY(gw_buf_reserve(b, (size_t)(end - u) + elen));
        o = (unsigned char *)b->data + b->len;
        lim = (unsigned char *)b->data + b->alloc - 1;
      }
    }
    o += put_escape(o, *u++);
  }
  *o++ = '"';
  *o = '\0';
  b->len = (size_t)(o - (unsigned char *)b->data);
  return GW_OK;
}

static int print_scalar(struct wctx *w, const ProtobufCFieldDescriptor *f, const void *slot) {
  char t[GW_NUMTEXT_MAX], *room;
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
    if ((room = num_room(w->b))) {
      w->b->len += gw_numtext_i64(*(const int32_t *)slot, room);
      return GW_OK;
    }
    return print_int_text(w->b, t, gw_numtext_i64(*(const int32_t *)slot, t), 0);
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    if ((room = num_room(w->b))) {
      w->b->len += gw_numtext_u64(*(const uint32_t *)slot, room);
      return GW_OK;
    }
    return print_int_text(w->b, t, gw_numtext_u64(*(const uint32_t *)slot, t), 0);
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64: return print_i64(w, *(const int64_t *)slot);
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64: return print_u64(w, *(const uint64_t *)slot);
  case PROTOBUF_C_TYPE_FLOAT: return print_float(w->b, *(const float *)slot);
  case PROTOBUF_C_TYPE_DOUBLE: return print_double(w->b, *(const double *)slot);
  case PROTOBUF_C_TYPE_BOOL:
    return gw_buf_appends(w->b, *(const protobuf_c_boolean *)slot ? "true" : "false");
  case PROTOBUF_C_TYPE_ENUM: {
    int32_t v = *(const int32_t *)slot;
    if (is_null_enum(f))
      return gw_buf_appends(w->b, "null");
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
    return ev ? print_string(w->b, ev->name) : gw_buf_printf(w->b, "%" PRId32, v);
  }
  case PROTOBUF_C_TYPE_STRING: return print_string(w->b, *(char *const *)slot);
  case PROTOBUF_C_TYPE_BYTES: {
    const ProtobufCBinaryData *bd = slot;
    return b64_append(w->b, bd->data, bd->len);
  }
  default: return GW_ERR_INVALID;
  }
}

/* A repeated float (an embedding: hundreds to thousands of them) as a JSON
 * array: the run up to the next value JSON has no number for (NaN, the
 * infinities, -0: rare) written in one call with room for all of it, that
 * value by the careful path, and on. Where the room is refused (a buffer's
 * cap), each number goes by the careful path. */
static int print_floats(gw_buf *b, const float *v, size_t n) {
  TRY(gw_buf_appendc(b, '['));
  for (size_t i = 0; i < n;) {
    if (i)
      TRY(gw_buf_appendc(b, ','));
    size_t done = 0;
    if (gw_buf_reserve(b, (n - i) * (GW_NUMTEXT_MAX + 1)) == GW_OK)
      b->len += gw_numtext_floats(v + i, n - i, b->data + b->len, &done);
    if (done) {
      i += done;
      continue;
    }
    TRY(print_float(b, v[i]));
    i++;
  }
  return gw_buf_appendc(b, ']');
}

static int print_value(struct wctx *w, const ProtobufCFieldDescriptor *f, const void *slot,
                       int depth, int bare_list) {
  if (f->type != PROTOBUF_C_TYPE_MESSAGE)
    return print_scalar(w, f, slot);
  const ProtobufCMessage *m = *(ProtobufCMessage *const *)slot;
  return m ? print_message(w, m, depth, bare_list) : gw_buf_appends(w->b, "null");
}

static int print_repeated(struct wctx *w, const ProtobufCFieldDescriptor *f,
                          const ProtobufCMessage *m, int depth, int bare_list) {
  size_t n = *(const size_t *)CSLOT(m, f->quantifier_offset), size = elem_size(f->type);
  const char *arr = *(char *const *)CSLOT(m, f->offset);
  if (depth > w->opts.max_depth)
    return GW_ERR_INVALID;
  if (f->type == PROTOBUF_C_TYPE_FLOAT)
    return print_floats(w->b, (const void *)arr, n);
  TRY(gw_buf_appendc(w->b, '['));
  for (size_t i = 0; i < n; i++) {
    if (i)
      TRY(gw_buf_appendc(w->b, ','));
    TRY(print_value(w, f, arr + i * size, depth + 1, bare_list));
  }
  return gw_buf_appendc(w->b, ']');
}

static int print_map_key(struct wctx *w, const ProtobufCFieldDescriptor *kf, const void *slot) {
  switch (kf->type) {
  case PROTOBUF_C_TYPE_STRING: return print_string(w->b, *(char *const *)slot);
  case PROTOBUF_C_TYPE_BOOL:
    return gw_buf_appends(w->b, *(const protobuf_c_boolean *)slot ? "\"true\"" : "\"false\"");
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
    return gw_buf_printf(w->b, "\"%" PRId32 "\"", *(const int32_t *)slot);
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    return gw_buf_printf(w->b, "\"%" PRIu32 "\"", *(const uint32_t *)slot);
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    return gw_buf_printf(w->b, "\"%" PRIu64 "\"", *(const uint64_t *)slot);
  default: return gw_buf_printf(w->b, "\"%" PRId64 "\"", *(const int64_t *)slot);
  }
}

static int print_map(struct wctx *w, const ProtobufCFieldDescriptor *f, const ProtobufCMessage *m,
                     int depth) {
  size_t n = *(const size_t *)CSLOT(m, f->quantifier_offset);
  ProtobufCMessage *const *entries = *(ProtobufCMessage *const *const *)CSLOT(m, f->offset);
  const ProtobufCMessageDescriptor *ed = f->descriptor;
  if (depth > w->opts.max_depth)
    return GW_ERR_INVALID;
  TRY(gw_buf_appendc(w->b, '{'));
  for (size_t i = 0; i < n; i++) {
    if (i)
      TRY(gw_buf_appendc(w->b, ','));
    TRY(print_map_key(w, &ed->fields[0], CSLOT(entries[i], ed->fields[0].offset)));
    TRY(gw_buf_appendc(w->b, ':'));
    TRY(print_value(w, &ed->fields[1], CSLOT(entries[i], ed->fields[1].offset), depth + 1, 0));
  }
  return gw_buf_appendc(w->b, '}');
}

static int print_pb_value(struct wctx *w, const Google__Protobuf__Value *pv, int depth);

/* Whether Struct member |e| is left out: no key, or (with |d|) named like a
 * field of |d| that was written (|printed|; NULL: any field). */
static int struct_member_hidden(const Google__Protobuf__Struct__FieldsEntry *e,
                                const ProtobufCMessageDescriptor *d, const unsigned char *printed) {
  if (!e || !e->key)
    return 1;
  const ProtobufCFieldDescriptor *mf =
      d ? find_field(d, e->key, strlen(e->key), extra_slot(d)) : NULL;
  return mf && (!printed || printed[mf - d->fields]);
}

/* Struct members, comma-separated, without braces; |d| (when not NULL) is a
 * message whose modeled fields hide members of the same name. */
/* Writes the members of |st| into the object being printed. With |d|, a
 * member named like a field of |d| is written only when that field was not
 * (|printed| marks the fields written): the output never repeats a key, and
 * an explicit null the client sent for a modeled field goes out again. */
static int print_struct_members(struct wctx *w, const Google__Protobuf__Struct *st,
                                const ProtobufCMessageDescriptor *d, const unsigned char *printed,
                                int *first, int depth) {
  for (size_t i = 0; i < st->n_fields; i++) {
    const Google__Protobuf__Struct__FieldsEntry *e = st->fields[i];
    if (struct_member_hidden(e, d, printed))
      continue;
    if (!*first)
      TRY(gw_buf_appendc(w->b, ','));
    *first = 0;
    TRY(print_string(w->b, e->key));
    TRY(gw_buf_appendc(w->b, ':'));
    if (e->value)
      TRY(print_pb_value(w, e->value, depth));
    else
      TRY(gw_buf_appends(w->b, "null"));
  }
  return GW_OK;
}

static int print_struct(struct wctx *w, const Google__Protobuf__Struct *st, int depth) {
  int first = 1;
  if (depth > w->opts.max_depth)
    return GW_ERR_INVALID;
  TRY(gw_buf_appendc(w->b, '{'));
  TRY(print_struct_members(w, st, NULL, NULL, &first, depth + 1));
  return gw_buf_appendc(w->b, '}');
}

static int print_list_value(struct wctx *w, const Google__Protobuf__ListValue *lv, int depth) {
  if (depth > w->opts.max_depth)
    return GW_ERR_INVALID;
  TRY(gw_buf_appendc(w->b, '['));
  for (size_t i = 0; i < lv->n_values; i++) {
    if (i)
      TRY(gw_buf_appendc(w->b, ','));
    if (lv->values[i])
      TRY(print_pb_value(w, lv->values[i], depth + 1));
    else
      TRY(gw_buf_appends(w->b, "null"));
  }
  return gw_buf_appendc(w->b, ']');
}

static int print_pb_value(struct wctx *w, const Google__Protobuf__Value *pv, int depth) {
  switch (pv->kind_case) {
  case GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE: return print_double(w->b, pv->number_value);
  case GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE: return print_string(w->b, pv->string_value);
  case GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE:
    return gw_buf_appends(w->b, pv->bool_value ? "true" : "false");
  case GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE:
    return pv->struct_value ? print_struct(w, pv->struct_value, depth) : gw_buf_appends(w->b, "{}");
  case GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE:
    return pv->list_value ? print_list_value(w, pv->list_value, depth) : gw_buf_appends(w->b, "[]");
  default: return gw_buf_appends(w->b, "null");
  }
}

/* 0, 3, 6 or 9 fraction digits, as proto3 JSON writes them. */
static int print_nanos(gw_buf *b, int32_t nanos) {
  if (nanos == 0)
    return GW_OK;
  if (nanos % 1000000 == 0)
    return gw_buf_printf(b, ".%03" PRId32, nanos / 1000000);
  if (nanos % 1000 == 0)
    return gw_buf_printf(b, ".%06" PRId32, nanos / 1000);
  return gw_buf_printf(b, ".%09" PRId32, nanos);
}

static int print_timestamp(struct wctx *w, const Google__Protobuf__Timestamp *ts) {
  struct tm tm;
  time_t t = (time_t)ts->seconds;
  if (ts->seconds < TS_MIN_SECONDS || ts->seconds > TS_MAX_SECONDS || ts->nanos < 0 ||
      ts->nanos > 999999999 || !gmtime_r(&t, &tm))
    return GW_ERR_INVALID;
  TRY(gw_buf_printf(w->b, "\"%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec));
  TRY(print_nanos(w->b, ts->nanos));
  return gw_buf_appends(w->b, "Z\"");
}

static int print_duration(struct wctx *w, const Google__Protobuf__Duration *du) {
  int64_t s = du->seconds;
  int32_t n = du->nanos;
  if (s < -DUR_MAX_SECONDS || s > DUR_MAX_SECONDS || n < -999999999 || n > 999999999 ||
      (s > 0 && n < 0) || (s < 0 && n > 0))
    return GW_ERR_INVALID;
  TRY(gw_buf_printf(w->b, "\"%s%" PRId64, (s < 0 || n < 0) ? "-" : "", s < 0 ? -s : s));
  TRY(print_nanos(w->b, n < 0 ? -n : n));
  return gw_buf_appends(w->b, "s\"");
}

/* Whether field |f| of |m| is written (set, or emit_defaults wants it). */
static int field_shown(const struct wctx *w, const ProtobufCFieldDescriptor *f,
                       const ProtobufCMessage *m) {
  const void *slot = CSLOT(m, f->offset);
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
    return *(const uint32_t *)CSLOT(m, f->quantifier_offset) == f->id;
  if (f->label == PROTOBUF_C_LABEL_REPEATED)
    return w->opts.emit_defaults || *(const size_t *)CSLOT(m, f->quantifier_offset) > 0;
  if (f->type == PROTOBUF_C_TYPE_MESSAGE)
    return *(ProtobufCMessage *const *)slot != NULL;
  if (f->label == PROTOBUF_C_LABEL_REQUIRED)
    return 1;
  if (f->label == PROTOBUF_C_LABEL_OPTIONAL)
    return f->type == PROTOBUF_C_TYPE_STRING
               ? *(char *const *)slot != NULL
               : *(const protobuf_c_boolean *)CSLOT(m, f->quantifier_offset);
  if (w->opts.emit_defaults)
    return 1;
  switch (f->type) {
  case PROTOBUF_C_TYPE_STRING: {
    const char *s = *(char *const *)slot;
    return s && *s;
  }
  case PROTOBUF_C_TYPE_BYTES: return ((const ProtobufCBinaryData *)slot)->len > 0;
  default: { /* any bit set: -0.0 counts as set, as on the wire */
    if (elem_size(f->type) == 8) {
      uint64_t bits;
      memcpy(&bits, slot, 8);
      return bits != 0;
    }
    uint32_t bits; /* 32-bit numbers, enums and protobuf_c_boolean */
    _Static_assert(sizeof(protobuf_c_boolean) == 4, "protobuf_c_boolean is 32 bits");
    memcpy(&bits, slot, 4);
    return bits != 0;
  }
  }
}

/* field_shown from the type's plan. */
static inline __attribute__((always_inline)) int
plan_shown(const struct wctx *w, const struct shown_plan *p, const ProtobufCMessage *m) {
  const char *base = (const char *)m;
  switch ((enum shown_kind)p->kind) {
  case SHOWN_NEVER: return 0;
  case SHOWN_ONEOF: return *(const uint32_t *)(base + p->qoffset) == p->id;
  case SHOWN_REPEATED: return w->opts.emit_defaults || *(const size_t *)(base + p->qoffset) > 0;
  case SHOWN_MESSAGE:
  case SHOWN_OPT_PTR: return *(const void *const *)(base + p->offset) != NULL;
  case SHOWN_ALWAYS: return 1;
  case SHOWN_OPT_HAS: return *(const protobuf_c_boolean *)(base + p->qoffset) != 0;
  case SHOWN_STRING: {
    const char *str = *(const char *const *)(base + p->offset);
    return w->opts.emit_defaults || (str && *str);
  }
  case SHOWN_BYTES:
    return w->opts.emit_defaults || ((const ProtobufCBinaryData *)(base + p->offset))->len > 0;
  case SHOWN_BITS64: {
    uint64_t bits;
    memcpy(&bits, base + p->offset, 8);
    return w->opts.emit_defaults || bits != 0;
  }
  case SHOWN_BITS32: {
    uint32_t bits;
    memcpy(&bits, base + p->offset, 4);
    return w->opts.emit_defaults || bits != 0;
  }
  }
  return 0;
}

static int print_object_fields(struct wctx *w, const ProtobufCMessage *m,
                               const ProtobufCMessageDescriptor *d, const desc_info *in,
                               const ProtobufCFieldDescriptor *slot, unsigned char *printed,
                               int *firstp, int depth);

static int print_object(struct wctx *w, const ProtobufCMessage *m, const desc_info *in, int depth) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  const ProtobufCFieldDescriptor *slot = in ? in->extra : extra_compute(d);
  int first = 1;
  unsigned char printed_small[64];
  unsigned char *printed = printed_small;
  if (d->n_fields > sizeof printed_small && !(printed = gw_calloc(d->n_fields, 1)))
    return GW_ERR_NOMEM;
  if (printed == printed_small)
    memset(printed_small, 0, sizeof printed_small);
  int rc = print_object_fields(w, m, d, in, slot, printed, &first, depth);
  if (printed != printed_small)
    gw_free(printed);
  return rc;
}

/* Appends field |i|'s `"name":`. One that fits in KEY_PAD bytes is copied as
 * two fixed 16-byte blocks (two loads and two stores, no call): the key
 * table has KEY_PAD bytes after its end, and the buffer the room. */
static inline int put_key(gw_buf *b, const desc_info *in, unsigned i) {
  const char *k = in->keys + in->key_at[i];
  size_t n = in->key_at[i + 1] - in->key_at[i];
  if (n <= KEY_PAD && b->data && b->alloc - b->len > KEY_PAD) {
    char *o = b->data + b->len;
    memcpy(o, k, 16);
    memcpy(o + 16, k + 16, 16);
    b->len += n;
    b->data[b->len] = '\0';
    return GW_OK;
  }
  return gw_buf_append(b, k, n);
}

/* Writes member |i| of |m|: its key, then |raw| when the hook gave one, else
 * its value. */
static int print_member(struct wctx *w, const ProtobufCMessage *m,
                        const ProtobufCMessageDescriptor *d, const desc_info *in, unsigned i,
                        const char *raw, int *first, int depth) {
  const ProtobufCFieldDescriptor *f = &d->fields[i];
  if (!*first)
    TRY(gw_buf_appendc(w->b, ','));
  *first = 0;
  if (in) {
    TRY(put_key(w->b, in, i));
  } else {
    TRY(print_string(w->b, f->name));
    TRY(gw_buf_appendc(w->b, ':'));
  }
  if (raw)
    return gw_buf_appends(w->b, raw);
  if (f->label != PROTOBUF_C_LABEL_REPEATED)
    return print_value(w, f, CSLOT(m, f->offset), depth + 1, 0);
  if (is_map_field(d, f))
    return print_map(w, f, m, depth + 1);
  return print_repeated(w, f, m, depth + 1, 0);
}

static int print_object_fields(struct wctx *w, const ProtobufCMessage *m,
                               const ProtobufCMessageDescriptor *d, const desc_info *in,
                               const ProtobufCFieldDescriptor *slot, unsigned char *printed,
                               int *firstp, int depth) {
  int first = *firstp;
  const char *(*hook)(void *, const ProtobufCMessage *, const ProtobufCFieldDescriptor *, int) =
      w->opts.field_hook;
  TRY(gw_buf_appendc(w->b, '{'));
  for (unsigned i = 0, n = d->n_fields; i < n; i++) {
    int shown;
    if (in) { /* the type's plan: an absent member costs a switch and a load */
      shown = plan_shown(w, &in->shown[i], m);
      if (!shown && (!hook || in->shown[i].kind == SHOWN_NEVER))
        continue;
    } else {
      if (&d->fields[i] == slot)
        continue;
      shown = field_shown(w, &d->fields[i], m);
    }
    const char *raw = hook && (!shown || &d->fields[i] == w->opts.hook_shown)
                          ? hook(w->opts.hook_arg, m, &d->fields[i], shown)
                          : NULL;
    if (raw ? !*raw : !shown)
      continue;
    printed[i] = 1;
    TRY(print_member(w, m, d, in, i, raw, &first, depth));
  }
  if (slot) {
    const Google__Protobuf__Struct *st = *(Google__Protobuf__Struct *const *)CSLOT(m, slot->offset);
    if (st)
      TRY(print_struct_members(w, st, d, printed, &first, depth + 1));
  }
  return gw_buf_appendc(w->b, '}');
}

/* Writes |m| (at nesting |depth|); |bare_list| as in parse_message. */
static int print_message(struct wctx *w, const ProtobufCMessage *m, int depth, int bare_list) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  const ProtobufCFieldDescriptor *lf;
  if (depth > w->opts.max_depth)
    return GW_ERR_INVALID;
  const desc_info *in = info_of(d); /* once per message: the rest read it */
  switch (in ? in->wkt : wkt_compute(d)) {
  case WKT_WRAPPER: return print_scalar(w, &d->fields[0], CSLOT(m, d->fields[0].offset));
  case WKT_STRUCT: return print_struct(w, (const Google__Protobuf__Struct *)m, depth);
  case WKT_VALUE: return print_pb_value(w, (const Google__Protobuf__Value *)m, depth);
  case WKT_LIST: return print_list_value(w, (const Google__Protobuf__ListValue *)m, depth);
  case WKT_TIMESTAMP: return print_timestamp(w, (const Google__Protobuf__Timestamp *)m);
  case WKT_DURATION: return print_duration(w, (const Google__Protobuf__Duration *)m);
  case WKT_NONE: break;
  }
  if (w->opts.bare_unions && (in ? in->is_union : is_union(d))) {
    uint32_t which = *(const uint32_t *)CSLOT(m, d->fields[0].quantifier_offset);
    for (unsigned i = 0; i < d->n_fields; i++)
      if (d->fields[i].id == which)
        return print_value(w, &d->fields[i], CSLOT(m, d->fields[i].offset), depth, 1);
    return gw_buf_appends(w->b, "null");
  }
  if (w->opts.bare_unions && bare_list && (lf = in ? in->list : list_field(d)))
    return print_repeated(w, lf, m, depth, 1);
  return print_object(w, m, in, depth);
}

int gw_pb_to_json(const ProtobufCMessage *msg, const gw_json_opts *opts, gw_buf *out) {
  struct wctx w = {.b = out};
  resolve_opts(opts, &w.opts);
  size_t start = out->len;
  int rc = print_message(&w, msg, 1, 0);
  if (rc != GW_OK && out->data) {
    out->len = start;
    out->data[start] = '\0';
  }
  return rc;
}

/* ------------------------------------------------------------ pb -> DOM */

/* gw_pb_to_jval mirrors the writer above function for function (the same
 * members shown, the same depth checks, the same unknown-member merge), so
 * that its DOM is the one the writer's text reads back as. */
#define DOM_TMP_CAP ((size_t)64 << 20) /* a bytes field's base64 at most */

struct dctx {
  struct wctx w; /* the options (plan_shown reads them); w.b is unused */
  gw_arena *a;
  size_t bytes; /* about what the writer would have written */
  const char *why;
};

static int dom_invalid(struct dctx *c, const char *why) {
  c->why = why;
  return GW_ERR_INVALID;
}

static int dom_too_deep(struct dctx *c) {
  return dom_invalid(c, "nesting too deep to be written as JSON");
}

/* Where the bytes of |u| stop being UTF-8 (|end| when they never do): the
 * writer's own scans (gw_json_skip_text, gw_json_utf8_seq) over non-ASCII
 * text, 16 ASCII bytes a step between. */
static const unsigned char *utf8_stop(const unsigned char *u, const unsigned char *end) {
  for (;;) {
#if defined(__SSE2__)
    while (end - u >= 16) {
      unsigned m = (unsigned)_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(const void *)u));
      if (m) {
        u += __builtin_ctz(m);
        break;
      }
      u += 16;
    }
#endif
    while (u < end && *u < 0x80)
      u++;
    if (u == end)
      return end;
    const unsigned char *v = gw_json_skip_text(u, end);
    if (v == u) {
      size_t len = gw_json_utf8_seq(u, (size_t)(end - u));
      if (!len)
        return u;
      v = u + len;
    }
    u = v;
  }
}

/* |s| as print_string writes it and the parser reads it back: the same
 * bytes when they are UTF-8 (pointed at, not copied: the DOM lives as long
 * as the message too), else a copy with U+FFFD for each byte that starts no
 * UTF-8 character. */
static int dom_string(struct dctx *c, const char *s, const char **out, size_t *out_len) {
  if (!s)
    s = "";
  size_t n = strlen(s);
  const unsigned char *u = (const unsigned char *)s, *end = u + n, *bad = utf8_stop(u, end);
  c->bytes += n + 3;
  if (bad == end) {
    *out = s;
    *out_len = n;
    return GW_OK;
  }
  unsigned char *o = gw_arena_alloc(c->a, (bad - u) + (size_t)(end - bad) * 3 + 1), *p = o;
  if (!o)
    return GW_ERR_NOMEM;
  memcpy(p, u, (size_t)(bad - u));
  p += bad - u;
  for (u = bad; u < end;) {
    size_t len = *u < 0x80 ? 1 : gw_json_utf8_seq(u, (size_t)(end - u));
    if (len) {
      memcpy(p, u, len);
      p += len;
      u += len;
    } else {
      memcpy(p, "\xef\xbf\xbd", 3);
      p += 3;
      u++;
    }
  }
  *p = '\0';
  *out = (const char *)o;
  *out_len = (size_t)(p - o);
  return GW_OK;
}

static int dom_string_value(struct dctx *c, const char *s, gw_jval *v) {
  *v = (gw_jval){.type = GW_JVAL_STRING};
  return dom_string(c, s, &v->u.str, &v->len);
}

/* |n| bytes of number text (the writer's) as the parser reads it. */
static int dom_number(struct dctx *c, const char *t, size_t n, gw_jval *v) {
  char *p = gw_arena_alloc(c->a, n);
  if (!p)
    return GW_ERR_NOMEM;
  memcpy(p, t, n);
  unsigned char flags = 0;
  if (!memchr(t, '.', n) && !memchr(t, 'e', n) && !memchr(t, 'E', n))
    flags |= GW_JVAL_NUM_INT;
  if (t[0] == '-')
    flags |= GW_JVAL_NUM_NEG;
  *v = (gw_jval){.type = GW_JVAL_NUMBER, .flags = flags, .len = n, .u.str = p};
  c->bytes += n + 1;
  return GW_OK;
}

/* What one of the writer's functions wrote into |tmp| as a JSON string
 * without escapes (base64, a timestamp, a quoted 64-bit integer or map key)
 * or as a bare word, read back. */
static int dom_printed(struct dctx *c, int rc, gw_buf *tmp, gw_jval *v) {
  if (rc == GW_OK) {
    const char *t = tmp->data;
    size_t n = tmp->len;
    if (n >= 2 && t[0] == '"') {
      char *s = gw_arena_strndup(c->a, t + 1, n - 2);
      *v = (gw_jval){.type = GW_JVAL_STRING, .len = n - 2, .u.str = s};
      c->bytes += n + 1;
      rc = s ? GW_OK : GW_ERR_NOMEM;
    } else {
      rc = dom_number(c, t, n, v);
    }
  } else if (rc == GW_ERR_INVALID) {
    c->why = "a Timestamp or Duration out of range";
  }
  gw_buf_release(tmp);
  return rc;
}

static int dom_double(struct dctx *c, double d, gw_jval *v) {
  char t[GW_NUMTEXT_MAX];
  if (isnan(d))
    return dom_string_value(c, "NaN", v);
  if (isinf(d))
    return dom_string_value(c, d > 0 ? "Infinity" : "-Infinity", v);
  if (d == 0 && signbit(d))
    return dom_number(c, "-0.0", 4, v);
  return dom_number(c, t, gw_numtext_double(d, t), v);
}

static int dom_float(struct dctx *c, float f, gw_jval *v) {
  char t[GW_NUMTEXT_MAX];
  if (isnan(f) || isinf(f) || (f == 0 && signbit(f)))
    return dom_double(c, f, v);
  return dom_number(c, t, gw_numtext_float(f, t), v);
}

/* A 64-bit integer: a number, or with proto3 JSON's rule a string. */
static int dom_int64_text(struct dctx *c, const char *t, size_t n, gw_jval *v) {
  if (c->w.opts.int64_as_number)
    return dom_number(c, t, n, v);
  char *s = gw_arena_strndup(c->a, t, n);
  *v = (gw_jval){.type = GW_JVAL_STRING, .len = n, .u.str = s};
  c->bytes += n + 3;
  return s ? GW_OK : GW_ERR_NOMEM;
}

static int dom_scalar(struct dctx *c, const ProtobufCFieldDescriptor *f, const void *slot,
                      gw_jval *v) {
  char t[GW_NUMTEXT_MAX];
  gw_buf tmp;
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64: {
    size_t n;
    switch (f->type) {
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: n = gw_numtext_u64(*(const uint32_t *)slot, t); break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: n = gw_numtext_i64(*(const int64_t *)slot, t); break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: n = gw_numtext_u64(*(const uint64_t *)slot, t); break;
    default: n = gw_numtext_i64(*(const int32_t *)slot, t); break;
    }
    return elem_size(f->type) == 8 ? dom_int64_text(c, t, n, v) : dom_number(c, t, n, v);
  }
  case PROTOBUF_C_TYPE_FLOAT: return dom_float(c, *(const float *)slot, v);
  case PROTOBUF_C_TYPE_DOUBLE: return dom_double(c, *(const double *)slot, v);
  case PROTOBUF_C_TYPE_BOOL:
    *v = (gw_jval){.type = *(const protobuf_c_boolean *)slot ? GW_JVAL_TRUE : GW_JVAL_FALSE};
    c->bytes += 5;
    return GW_OK;
  case PROTOBUF_C_TYPE_ENUM: {
    int32_t e = *(const int32_t *)slot;
    if (is_null_enum(f)) {
      *v = (gw_jval){.type = GW_JVAL_NULL};
      c->bytes += 4;
      return GW_OK;
    }
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, e);
    return ev ? dom_string_value(c, ev->name, v) : dom_number(c, t, gw_numtext_i64(e, t), v);
  }
  case PROTOBUF_C_TYPE_STRING: return dom_string_value(c, *(char *const *)slot, v);
  case PROTOBUF_C_TYPE_BYTES: {
    const ProtobufCBinaryData *bd = slot;
    gw_buf_init(&tmp, DOM_TMP_CAP);
    return dom_printed(c, b64_append(&tmp, bd->data, bd->len), &tmp, v);
  }
  default: return dom_invalid(c, "a field of an unknown type");
  }
}

static int dom_message(struct dctx *c, const ProtobufCMessage *m, int depth, int bare_list,
                       gw_jval *v);

static int dom_value(struct dctx *c, const ProtobufCFieldDescriptor *f, const void *slot, int depth,
                     int bare_list, gw_jval *v) {
  if (f->type != PROTOBUF_C_TYPE_MESSAGE)
    return dom_scalar(c, f, slot, v);
  const ProtobufCMessage *m = *(ProtobufCMessage *const *)slot;
  if (m)
    return dom_message(c, m, depth, bare_list, v);
  *v = (gw_jval){.type = GW_JVAL_NULL};
  c->bytes += 4;
  return GW_OK;
}

/* An array of |n| values from the arena (none: no array, as the parser). */
static int dom_array(struct dctx *c, size_t n, gw_jval *v, gw_jval **elems) {
  *elems = NULL;
  if (n && (n > SIZE_MAX / sizeof **elems || !(*elems = gw_arena_alloc(c->a, n * sizeof **elems))))
    return GW_ERR_NOMEM;
  *v = (gw_jval){.type = GW_JVAL_ARRAY, .len = n, .u.elems = *elems};
  c->bytes += n + 2;
  return GW_OK;
}

static int dom_repeated(struct dctx *c, const ProtobufCFieldDescriptor *f,
                        const ProtobufCMessage *m, int depth, int bare_list, gw_jval *v) {
  size_t n = *(const size_t *)CSLOT(m, f->quantifier_offset), size = elem_size(f->type);
  const char *arr = *(char *const *)CSLOT(m, f->offset);
  gw_jval *elems;
  if (depth > c->w.opts.max_depth)
    return dom_too_deep(c);
  TRY(dom_array(c, n, v, &elems));
  for (size_t i = 0; i < n; i++)
    TRY(dom_value(c, f, arr + i * size, depth + 1, bare_list, &elems[i]));
  return GW_OK;
}

/* |n| members from the arena (none: no array, as the parser). */
static int dom_members(struct dctx *c, size_t n, gw_jmember **out) {
  *out = NULL;
  if (n && (n > SIZE_MAX / sizeof **out || !(*out = gw_arena_alloc(c->a, n * sizeof **out))))
    return GW_ERR_NOMEM;
  return GW_OK;
}

/* The object |members| (|n|), refused as the parser refuses the writer's
 * text when two members share a key (a map or Struct from the gRPC wire may
 * repeat one; the writer writes both). */
static int dom_object_of(struct dctx *c, gw_jmember *members, size_t n, int may_repeat,
                         gw_jval *v) {
  size_t dup = n;
  if (may_repeat && n > 1 && gw_json_lite_find_dup(members, n, &dup) != GW_OK)
    return GW_ERR_NOMEM;
  if (dup < n)
    return dom_invalid(c, "duplicate object key");
  *v = (gw_jval){.type = GW_JVAL_OBJECT, .len = n, .u.members = members};
  c->bytes += n + 2;
  return GW_OK;
}

static int dom_map(struct dctx *c, const ProtobufCFieldDescriptor *f, const ProtobufCMessage *m,
                   int depth, gw_jval *v) {
  size_t n = *(const size_t *)CSLOT(m, f->quantifier_offset);
  ProtobufCMessage *const *entries = *(ProtobufCMessage *const *const *)CSLOT(m, f->offset);
  const ProtobufCMessageDescriptor *ed = f->descriptor;
  const ProtobufCFieldDescriptor *kf = &ed->fields[0];
  gw_jmember *members;
  if (depth > c->w.opts.max_depth)
    return dom_too_deep(c);
  TRY(dom_members(c, n, &members));
  for (size_t i = 0; i < n; i++) {
    gw_jmember *mb = &members[i];
    const void *key = CSLOT(entries[i], kf->offset);
    if (kf->type == PROTOBUF_C_TYPE_STRING) {
      TRY(dom_string(c, *(char *const *)key, &mb->key, &mb->key_len));
    } else {
      struct wctx w = {.opts = c->w.opts};
      gw_buf tmp;
      gw_jval k;
      gw_buf_init(&tmp, DOM_TMP_CAP);
      w.b = &tmp;
      TRY(dom_printed(c, print_map_key(&w, kf, key), &tmp, &k));
      mb->key = k.u.str;
      mb->key_len = k.len;
    }
    TRY(dom_value(c, &ed->fields[1], CSLOT(entries[i], ed->fields[1].offset), depth + 1, 0,
                  &mb->value));
  }
  return dom_object_of(c, members, n, 1, v);
}

static int dom_pb_value(struct dctx *c, const Google__Protobuf__Value *pv, int depth, gw_jval *v);

/* print_struct_members: the members of |st| from |*k| on, those named like
 * a field of |d| that was written (|printed|) left out. */
static int dom_struct_members(struct dctx *c, const Google__Protobuf__Struct *st,
                              const ProtobufCMessageDescriptor *d, const unsigned char *printed,
                              int depth, gw_jmember *members, size_t *k) {
  for (size_t i = 0; i < st->n_fields; i++) {
    const Google__Protobuf__Struct__FieldsEntry *e = st->fields[i];
    if (struct_member_hidden(e, d, printed))
      continue;
    gw_jmember *mb = &members[(*k)++];
    TRY(dom_string(c, e->key, &mb->key, &mb->key_len));
    if (e->value) {
      TRY(dom_pb_value(c, e->value, depth, &mb->value));
    } else {
      mb->value = (gw_jval){.type = GW_JVAL_NULL};
      c->bytes += 4;
    }
  }
  return GW_OK;
}

static int dom_struct(struct dctx *c, const Google__Protobuf__Struct *st, int depth, gw_jval *v) {
  gw_jmember *members;
  size_t k = 0;
  if (depth > c->w.opts.max_depth)
    return dom_too_deep(c);
  TRY(dom_members(c, st->n_fields, &members));
  TRY(dom_struct_members(c, st, NULL, NULL, depth + 1, members, &k));
  return dom_object_of(c, k ? members : NULL, k, 1, v);
}

static int dom_list_value(struct dctx *c, const Google__Protobuf__ListValue *lv, int depth,
                          gw_jval *v) {
  gw_jval *elems;
  if (depth > c->w.opts.max_depth)
    return dom_too_deep(c);
  TRY(dom_array(c, lv->n_values, v, &elems));
  for (size_t i = 0; i < lv->n_values; i++) {
    if (lv->values[i]) {
      TRY(dom_pb_value(c, lv->values[i], depth + 1, &elems[i]));
    } else {
      elems[i] = (gw_jval){.type = GW_JVAL_NULL};
      c->bytes += 4;
    }
  }
  return GW_OK;
}

static int dom_pb_value(struct dctx *c, const Google__Protobuf__Value *pv, int depth, gw_jval *v) {
  switch (pv->kind_case) {
  case GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE: return dom_double(c, pv->number_value, v);
  case GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE: return dom_string_value(c, pv->string_value, v);
  case GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE:
    *v = (gw_jval){.type = pv->bool_value ? GW_JVAL_TRUE : GW_JVAL_FALSE};
    c->bytes += 5;
    return GW_OK;
  case GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE:
    if (pv->struct_value)
      return dom_struct(c, pv->struct_value, depth, v);
    return dom_object_of(c, NULL, 0, 0, v);
  case GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE: {
    gw_jval *none;
    if (pv->list_value)
      return dom_list_value(c, pv->list_value, depth, v);
    return dom_array(c, 0, v, &none);
  }
  default:
    *v = (gw_jval){.type = GW_JVAL_NULL};
    c->bytes += 4;
    return GW_OK;
  }
}

/* print_object_fields: the fields shown, then the unknown members. */
static int dom_object(struct dctx *c, const ProtobufCMessage *m, const desc_info *in, int depth,
                      gw_jval *v) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  const ProtobufCFieldDescriptor *slot = in ? in->extra : extra_compute(d);
  const Google__Protobuf__Struct *st =
      slot ? *(Google__Protobuf__Struct *const *)CSLOT(m, slot->offset) : NULL;
  /* each field's entry is written below: no zeroing */
  unsigned char printed_small[64], *printed = printed_small;
  if (d->n_fields > sizeof printed_small && !(printed = gw_malloc(d->n_fields)))
    return GW_ERR_NOMEM;
  size_t n = 0;
  for (unsigned i = 0; i < d->n_fields; i++) {
    if (in)
      printed[i] = (unsigned char)plan_shown(&c->w, &in->shown[i], m);
    else
      printed[i] = &d->fields[i] != slot && field_shown(&c->w, &d->fields[i], m);
    n += printed[i];
  }
  gw_jmember *members;
  size_t k = 0;
  int rc = dom_members(c, n + (st ? st->n_fields : 0), &members);
  for (unsigned i = 0; rc == GW_OK && i < d->n_fields; i++) {
    if (!printed[i])
      continue;
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    gw_jmember *mb = &members[k++];
    mb->key = f->name;
    mb->key_len = in ? in->key_at[i + 1] - in->key_at[i] - 3 : strlen(f->name);
    c->bytes += mb->key_len + 3;
    if (f->label != PROTOBUF_C_LABEL_REPEATED)
      rc = dom_value(c, f, CSLOT(m, f->offset), depth + 1, 0, &mb->value);
    else if (is_map_field(d, f))
      rc = dom_map(c, f, m, depth + 1, &mb->value);
    else
      rc = dom_repeated(c, f, m, depth + 1, 0, &mb->value);
  }
  if (rc == GW_OK && st)
    rc = dom_struct_members(c, st, d, printed, depth + 1, members, &k);
  if (printed != printed_small)
    gw_free(printed);
  if (rc != GW_OK)
    return rc;
  return dom_object_of(c, k ? members : NULL, k, k > n, v);
}

static int dom_message(struct dctx *c, const ProtobufCMessage *m, int depth, int bare_list,
                       gw_jval *v) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  const ProtobufCFieldDescriptor *lf;
  if (depth > c->w.opts.max_depth)
    return dom_too_deep(c);
  const desc_info *in = info_of(d);
  gw_buf tmp;
  struct wctx w = {.b = &tmp, .opts = c->w.opts};
  switch (in ? in->wkt : wkt_compute(d)) {
  case WKT_WRAPPER: return dom_scalar(c, &d->fields[0], CSLOT(m, d->fields[0].offset), v);
  case WKT_STRUCT: return dom_struct(c, (const Google__Protobuf__Struct *)m, depth, v);
  case WKT_VALUE: return dom_pb_value(c, (const Google__Protobuf__Value *)m, depth, v);
  case WKT_LIST: return dom_list_value(c, (const Google__Protobuf__ListValue *)m, depth, v);
  case WKT_TIMESTAMP:
    gw_buf_init(&tmp, DOM_TMP_CAP);
    return dom_printed(c, print_timestamp(&w, (const Google__Protobuf__Timestamp *)m), &tmp, v);
  case WKT_DURATION:
    gw_buf_init(&tmp, DOM_TMP_CAP);
    return dom_printed(c, print_duration(&w, (const Google__Protobuf__Duration *)m), &tmp, v);
  case WKT_NONE: break;
  }
  if (c->w.opts.bare_unions && (in ? in->is_union : is_union(d))) {
    uint32_t which = *(const uint32_t *)CSLOT(m, d->fields[0].quantifier_offset);
    for (unsigned i = 0; i < d->n_fields; i++)
      if (d->fields[i].id == which)
        return dom_value(c, &d->fields[i], CSLOT(m, d->fields[i].offset), depth, 1, v);
    *v = (gw_jval){.type = GW_JVAL_NULL};
    c->bytes += 4;
    return GW_OK;
  }
  if (c->w.opts.bare_unions && bare_list && (lf = in ? in->list : list_field(d)))
    return dom_repeated(c, lf, m, depth, 1, v);
  return dom_object(c, m, in, depth, v);
}

int gw_pb_to_jval(const ProtobufCMessage *msg, const gw_json_opts *opts, gw_arena *arena,
                  const gw_jval **out, size_t *json_len, const char **why) {
  struct dctx c = {.a = arena};
  resolve_opts(opts, &c.w.opts);
  *why = NULL;
  if (c.w.opts.field_hook) {
    *why = "gw_pb_to_jval takes no field hook";
    return GW_ERR_INVALID;
  }
  gw_jval *v = gw_arena_alloc(arena, sizeof *v);
  int rc = v ? dom_message(&c, msg, 1, 0, v) : GW_ERR_NOMEM;
  if (rc == GW_ERR_NOMEM)
    c.why = "out of memory";
  if (rc != GW_OK) {
    *why = c.why ? c.why : "the message cannot be written as JSON";
    return rc;
  }
  *out = v;
  if (json_len)
    *json_len = c.bytes;
  return GW_OK;
}
