/* Server reflection answers (v1 and v1alpha share this wire format), built
 * from the descriptor registry. One arena per answer. */
#include "grpc/reflection.h"

#include "core/arena.h"
#include "core/status.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "proto/pb_arena.h"

typedef Grpc__Reflection__V1__ServerReflectionRequest refl_request;
typedef Grpc__Reflection__V1__ServerReflectionResponse refl_response;

/* The parts a response may point at; they live on answer()'s stack until the
 * response is packed. */
typedef struct answer {
  gw_arena *arena;
  refl_response resp;
  Grpc__Reflection__V1__FileDescriptorResponse files;
  Grpc__Reflection__V1__ListServiceResponse services;
  Grpc__Reflection__V1__ExtensionNumberResponse numbers;
  Grpc__Reflection__V1__ErrorResponse error;
} answer;

static int set_error(answer *an, gw_status_code code, const char *what, const char *name) {
  char *msg = gw_arena_printf(an->arena, "%s not found: %s", what, name ? name : "");
  if (!msg)
    return GW_ERR_NOMEM;
  an->error.error_code = (int32_t)code;
  an->error.error_message = msg;
  an->resp.message_response_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
  an->resp.error_response = &an->error;
  return GW_OK;
}

static int count_file(void *arg, const uint8_t *bytes, size_t len) {
  (void)bytes, (void)len;
  ++*(size_t *)arg;
  return GW_OK;
}

static int add_file(void *arg, const uint8_t *bytes, size_t len) {
  Grpc__Reflection__V1__FileDescriptorResponse *r = arg;
  /* The registry's bytes outlive the answer: point at them, no copy. */
  r->file_descriptor_proto[r->n_file_descriptor_proto].data = (uint8_t *)bytes;
  r->file_descriptor_proto[r->n_file_descriptor_proto].len = len;
  r->n_file_descriptor_proto++;
  return GW_OK;
}

/* file_descriptor_response: |file| first, then its transitive dependencies. */
static int set_files(answer *an, const gw_descriptors *d,
                     const Google__Protobuf__FileDescriptorProto *file) {
  size_t n = 0;
  int rc = gw_descriptors_file_closure(d, file, count_file, &n);
  if (rc)
    return rc;
  an->files.file_descriptor_proto =
      gw_arena_alloc(an->arena, (n ? n : 1) * sizeof(*an->files.file_descriptor_proto));
  if (!an->files.file_descriptor_proto)
    return GW_ERR_NOMEM;
  an->files.n_file_descriptor_proto = 0;
  if ((rc = gw_descriptors_file_closure(d, file, add_file, &an->files)) != GW_OK)
    return rc;
  an->resp.message_response_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
  an->resp.file_descriptor_response = &an->files;
  return GW_OK;
}

static int set_services(answer *an, const gw_descriptors *d) {
  size_t n = gw_descriptors_service_count(d);
  Grpc__Reflection__V1__ServiceResponse *items =
      gw_arena_alloc(an->arena, (n ? n : 1) * sizeof(*items));
  Grpc__Reflection__V1__ServiceResponse **ptrs =
      gw_arena_alloc(an->arena, (n ? n : 1) * sizeof(*ptrs));
  if (!items || !ptrs)
    return GW_ERR_NOMEM;
  for (size_t i = 0; i < n; i++) {
    grpc__reflection__v1__service_response__init(&items[i]);
    items[i].name = (char *)gw_descriptors_service_name(d, i);
    ptrs[i] = &items[i];
  }
  an->services.n_service = n;
  an->services.service = ptrs;
  an->resp.message_response_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
  an->resp.list_services_response = &an->services;
  return GW_OK;
}

/* The extension numbers of a message type of the set (an empty list when it
 * has none); NOT_FOUND for a name that is not a message type of the set. */
static int set_extension_numbers(answer *an, const gw_descriptors *d, const char *type) {
  if (gw_descriptors_symbol_kind(d, type) != GW_SYMBOL_MESSAGE)
    return set_error(an, GW_STATUS_NOT_FOUND, "type", type);
  size_t n = gw_descriptors_extension_numbers(d, type, NULL, 0);
  int32_t *nums = gw_arena_alloc(an->arena, (n ? n : 1) * sizeof(*nums));
  if (!nums)
    return GW_ERR_NOMEM;
  gw_descriptors_extension_numbers(d, type, nums, n);
  an->numbers.base_type_name = (char *)type;
  an->numbers.n_extension_number = n;
  an->numbers.extension_number = nums;
  an->resp.message_response_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
  an->resp.all_extension_numbers_response = &an->numbers;
  return GW_OK;
}

static int dispatch(answer *an, const gw_descriptors *d, const refl_request *rq) {
  const Google__Protobuf__FileDescriptorProto *f;
  switch (rq->message_request_case) {
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
    return set_services(an, d);
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
    f = gw_descriptors_file_by_name(d, rq->file_by_filename);
    return f ? set_files(an, d, f)
             : set_error(an, GW_STATUS_NOT_FOUND, "file", rq->file_by_filename);
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
    f = gw_descriptors_file_containing_symbol(d, rq->file_containing_symbol);
    return f ? set_files(an, d, f)
             : set_error(an, GW_STATUS_NOT_FOUND, "symbol", rq->file_containing_symbol);
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION: {
    const Grpc__Reflection__V1__ExtensionRequest *er = rq->file_containing_extension;
    f = er ? gw_descriptors_file_containing_extension(d, er->containing_type, er->extension_number)
           : NULL;
    if (f)
      return set_files(an, d, f);
    char *what =
        gw_arena_printf(an->arena, "extension %d of type", er ? (int)er->extension_number : 0);
    return what ? set_error(an, GW_STATUS_NOT_FOUND, what, er ? er->containing_type : "")
                : GW_ERR_NOMEM;
  }
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
    return set_extension_numbers(an, d, rq->all_extension_numbers_of_type);
  default: {
    /* No kind set (or one newer than us): what grpc C++ answers. */
    char *msg = gw_arena_strdup(an->arena, "request kind not implemented");
    if (!msg)
      return GW_ERR_NOMEM;
    an->error.error_code = GW_STATUS_UNIMPLEMENTED;
    an->error.error_message = msg;
    an->resp.message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
    an->resp.error_response = &an->error;
    return GW_OK;
  }
  }
}

int gw_reflection_answer(const gw_descriptors *d, const uint8_t *req, size_t req_len, gw_buf *out) {
  static const uint8_t empty[1];
  if (!req && req_len)
    return GW_ERR_INVALID;
  answer an;
  an.arena = gw_arena_new(0, 0);
  if (!an.arena)
    return GW_ERR_NOMEM;
  grpc__reflection__v1__server_reflection_response__init(&an.resp);
  grpc__reflection__v1__file_descriptor_response__init(&an.files);
  grpc__reflection__v1__list_service_response__init(&an.services);
  grpc__reflection__v1__extension_number_response__init(&an.numbers);
  grpc__reflection__v1__error_response__init(&an.error);

  int rc;
  gw_pb_arena pa;
  gw_pb_arena_init(&pa, an.arena);
  refl_request *rq = grpc__reflection__v1__server_reflection_request__unpack(&pa.allocator, req_len,
                                                                             req ? req : empty);
  if (!rq) {
    rc = gw_pb_arena_unpack_error(&pa);
    goto done;
  }
  an.resp.valid_host = rq->host;
  an.resp.original_request = rq;
  if ((rc = dispatch(&an, d, rq)) != GW_OK)
    goto done;

  size_t n = grpc__reflection__v1__server_reflection_response__get_packed_size(&an.resp);
  uint8_t *bytes = gw_arena_alloc(an.arena, n ? n : 1);
  if (!bytes) {
    rc = GW_ERR_NOMEM;
    goto done;
  }
  grpc__reflection__v1__server_reflection_response__pack(&an.resp, bytes);
  rc = gw_buf_append(out, bytes, n);

done:
  gw_arena_free(an.arena);
  return rc;
}
