/* The embedded FileDescriptorSet (generated at build time from proto/, with
 * every import), parsed once at start: the source of truth for reflection,
 * for which RPCs stream, and for the HTTP bindings the transcoder serves.
 * Read-only after gw_descriptors_load(); safe to share between threads. */
#ifndef GW_PROTO_DESCRIPTORS_H
#define GW_PROTO_DESCRIPTORS_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "google/api/http.pb-c.h"
#include "google/protobuf/descriptor.pb-c.h"

typedef struct gw_descriptors gw_descriptors;

/* One RPC of a service in the set. Strings live as long as the registry. */
typedef struct gw_method_info {
  const char *path;        /* "/aigateway.v1.Inference/CreateChatCompletion" */
  const char *service;     /* "aigateway.v1.Inference" */
  const char *name;        /* "CreateChatCompletion" */
  const char *input_type;  /* "aigateway.v1.ChatCompletionRequest" (no leading dot) */
  const char *output_type; /* "aigateway.v1.ChatCompletionResponse" */
  bool client_streaming, server_streaming;
  /* protobuf-c descriptors of input and output, NULL when the message has no
   * compiled C type linked into this binary (only ours and the well-known
   * ones are). */
  const ProtobufCMessageDescriptor *input, *output;
  /* The google.api.http rule of the method, NULL when it has none. */
  const Google__Api__HttpRule *http;
} gw_method_info;

/* The set compiled into this binary (gw_descriptor_set[]). */
extern const unsigned char gw_descriptor_set[];
extern const size_t gw_descriptor_set_len;

/* Parses a serialized FileDescriptorSet. Returns GW_OK and a registry in *out,
 * GW_ERR_INVALID for bytes that are not a set, GW_ERR_NOMEM. */
int gw_descriptors_load(const uint8_t *data, size_t len, gw_descriptors **out);
void gw_descriptors_free(gw_descriptors *d);

/* Services, in set order, as full names ("grpc.health.v1.Health"). */
size_t gw_descriptors_service_count(const gw_descriptors *d);
const char *gw_descriptors_service_name(const gw_descriptors *d, size_t i);
/* True when the set has the service |name| (full name). */
bool gw_descriptors_has_service(const gw_descriptors *d, const char *name);

/* Every method of every service, in set order. */
size_t gw_descriptors_method_count(const gw_descriptors *d);
const gw_method_info *gw_descriptors_method(const gw_descriptors *d, size_t i);
/* By path "/pkg.Svc/Method"; NULL when unknown. */
const gw_method_info *gw_descriptors_find_method(const gw_descriptors *d, const char *path);

/* The file named |name| ("aigateway/v1/inference.proto"), NULL if absent. */
const Google__Protobuf__FileDescriptorProto *gw_descriptors_file_by_name(const gw_descriptors *d,
                                                                         const char *name);
/* The file defining the fully-qualified |symbol|: a package-qualified
 * service, method ("pkg.Svc.Method"), message (nested too), enum, enum value
 * or field. NULL if none does. */
const Google__Protobuf__FileDescriptorProto *
gw_descriptors_file_containing_symbol(const gw_descriptors *d, const char *symbol);

/* Calls |fn| with |file| first, then each of its transitive dependencies once
 * (serialized bytes of each FileDescriptorProto, as found in the set). Stops
 * and returns the first nonzero value |fn| returns; GW_OK otherwise. */
int gw_descriptors_file_closure(const gw_descriptors *d,
                                const Google__Protobuf__FileDescriptorProto *file,
                                int (*fn)(void *arg, const uint8_t *bytes, size_t len), void *arg);

/* The protobuf-c descriptor of the message with full name |name| (no leading
 * dot), among those compiled into this binary; NULL if none. */
const ProtobufCMessageDescriptor *gw_descriptors_message(const gw_descriptors *d, const char *name);

/* --- Added for reflection (file_containing_extension and friends). --- */

/* What a fully-qualified symbol names. */
typedef enum gw_symbol_kind {
  GW_SYMBOL_NONE = 0, /* not in the set */
  GW_SYMBOL_PACKAGE,
  GW_SYMBOL_SERVICE,
  GW_SYMBOL_METHOD,
  GW_SYMBOL_MESSAGE,
  GW_SYMBOL_ENUM,
  GW_SYMBOL_ENUM_VALUE, /* both "pkg.VALUE" (C++ scoping) and "pkg.Enum.VALUE" */
  GW_SYMBOL_FIELD,
  GW_SYMBOL_ONEOF,
  GW_SYMBOL_EXTENSION,
} gw_symbol_kind;

/* The kind of |symbol| (no leading dot needed), GW_SYMBOL_NONE if unknown. */
gw_symbol_kind gw_descriptors_symbol_kind(const gw_descriptors *d, const char *symbol);

/* The file declaring extension field |number| of message |extendee|
 * ("google.protobuf.MethodOptions"), NULL if none does. */
const Google__Protobuf__FileDescriptorProto *
gw_descriptors_file_containing_extension(const gw_descriptors *d, const char *extendee,
                                         int32_t number);

/* Returns how many extensions of |extendee| the set declares and writes the
 * first |max| of their field numbers to |numbers| (which may be NULL when
 * |max| is 0). Order unspecified. */
size_t gw_descriptors_extension_numbers(const gw_descriptors *d, const char *extendee,
                                        int32_t *numbers, size_t max);

#endif
