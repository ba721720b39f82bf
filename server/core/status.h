/* Error codes shared by every module: negative GW_ERR_* values, GW_OK is 0. */
#ifndef GW_CORE_STATUS_H
#define GW_CORE_STATUS_H

enum {
  GW_OK = 0,
  GW_ERR_NOMEM = -1,    /* an allocation failed */
  GW_ERR_INVALID = -2,  /* bad input: malformed, wrong type, out of range */
  GW_ERR_TOOBIG = -3,   /* a capped buffer would grow past its cap */
  GW_ERR_NOTFOUND = -4, /* no such key, symbol, file or route */
  GW_ERR_IO = -5,       /* a system call failed; errno says why */
  GW_ERR_STATE = -6,    /* called in a state that does not allow it */
  GW_ERR_UNSUPPORTED = -7,
};

/* gRPC status codes (grpc_status_code values, usable without grpc headers). */
typedef enum {
  GW_STATUS_OK = 0,
  GW_STATUS_CANCELLED = 1,
  GW_STATUS_UNKNOWN = 2,
  GW_STATUS_INVALID_ARGUMENT = 3,
  GW_STATUS_DEADLINE_EXCEEDED = 4,
  GW_STATUS_NOT_FOUND = 5,
  GW_STATUS_ALREADY_EXISTS = 6,
  GW_STATUS_PERMISSION_DENIED = 7,
  GW_STATUS_RESOURCE_EXHAUSTED = 8,
  GW_STATUS_FAILED_PRECONDITION = 9,
  GW_STATUS_ABORTED = 10,
  GW_STATUS_OUT_OF_RANGE = 11,
  GW_STATUS_UNIMPLEMENTED = 12,
  GW_STATUS_INTERNAL = 13,
  GW_STATUS_UNAVAILABLE = 14,
  GW_STATUS_DATA_LOSS = 15,
  GW_STATUS_UNAUTHENTICATED = 16,
} gw_status_code;

/* Returns the canonical upper-case name of |code| ("INVALID_ARGUMENT"). */
const char *gw_status_code_name(gw_status_code code);

#endif
