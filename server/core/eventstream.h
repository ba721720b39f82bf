/* The AWS event-stream binary framing (application/vnd.amazon.eventstream,
 * as Bedrock's ConverseStream answers): each message is a 12-byte prelude
 * (total length, headers length, both big-endian uint32, then the CRC32 of
 * those 8 bytes), the headers (name length u8, name, value type u8, value),
 * the payload, and the CRC32 of everything before it. An incremental
 * decoder: bytes go in as they arrive, split anywhere; whole messages come
 * out one at a time, both CRCs verified. */
#ifndef GW_CORE_EVENTSTREAM_H
#define GW_CORE_EVENTSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Header value types of the framing. */
enum {
  GW_ES_BOOL_TRUE = 0,
  GW_ES_BOOL_FALSE = 1,
  GW_ES_BYTE = 2,
  GW_ES_SHORT = 3,
  GW_ES_INT = 4,
  GW_ES_LONG = 5,
  GW_ES_BYTES = 6,
  GW_ES_STRING = 7,
  GW_ES_TIMESTAMP = 8,
  GW_ES_UUID = 9,
};

typedef struct gw_eventstream_decoder {
  gw_buf in;  /* bytes fed and not yet consumed */
  size_t pos; /* bytes of |in| consumed by messages already returned */
  size_t cap; /* the largest message accepted */
} gw_eventstream_decoder;

/* One decoded message. The string headers the protocol uses are copied
 * (NUL-terminated, truncated to fit; "" when absent); |payload| points into
 * the decoder and is valid until the next feed/next/release. */
typedef struct gw_eventstream_message {
  char message_type[32];   /* :message-type: "event", "exception" or "error" */
  char event_type[64];     /* :event-type */
  char exception_type[64]; /* :exception-type */
  char content_type[64];   /* :content-type */
  char error_code[64];     /* :error-code (message-type "error") */
  char error_message[256]; /* :error-message */
  const char *payload;
  size_t payload_len;
  size_t n_headers;
} gw_eventstream_message;

/* |cap|: the largest message (total length) accepted. */
void gw_eventstream_init(gw_eventstream_decoder *d, size_t cap);
void gw_eventstream_release(gw_eventstream_decoder *d);
/* Appends |n| bytes. GW_OK, GW_ERR_NOMEM or GW_ERR_TOOBIG. */
int gw_eventstream_feed(gw_eventstream_decoder *d, const void *p, size_t n);
/* The next complete message: 1 and |*m| filled; 0 when more input is
 * needed; GW_ERR_TOOBIG (a message over the cap) or GW_ERR_INVALID (a bad
 * CRC, length or header), after which the stream cannot be resynchronised. */
int gw_eventstream_next(gw_eventstream_decoder *d, gw_eventstream_message *m);
/* True when bytes of an incomplete message are held. */
bool gw_eventstream_pending(const gw_eventstream_decoder *d);

/* CRC-32 (IEEE 802.3, zlib's) of |n| bytes, continuing from |crc|. */
uint32_t gw_eventstream_crc32(uint32_t crc, const void *p, size_t n);

#endif
