/* A message field by name, looked up once per call site and message type.
 * protobuf_c_message_descriptor_get_field_by_name bisects the sorted names
 * with strcmp (~250 instructions); the pipeline asks the same few questions
 * of every request and response ("model", "usage"...). Descriptors are
 * immutable globals, so a remembered answer never goes stale; the memory is
 * per thread, so workers never share it. */
#ifndef GW_CORE_PBFIELD_H
#define GW_CORE_PBFIELD_H

#include <protobuf-c/protobuf-c.h>

/* GW_PB_FIELD(descriptor, "name"): |name| must be a string literal. */
#define GW_PB_FIELD(d, name)                                                                       \
  __extension__({                                                                                  \
    static _Thread_local const ProtobufCMessageDescriptor *gw_pbf_d_;                              \
    static _Thread_local const ProtobufCFieldDescriptor *gw_pbf_f_;                                \
    const ProtobufCMessageDescriptor *gw_pbf_q_ = (d);                                             \
    if (gw_pbf_q_ != gw_pbf_d_) {                                                                  \
      gw_pbf_f_ = protobuf_c_message_descriptor_get_field_by_name(gw_pbf_q_, "" name "");          \
      gw_pbf_d_ = gw_pbf_q_;                                                                       \
    }                                                                                              \
    gw_pbf_f_;                                                                                     \
  })

#endif
