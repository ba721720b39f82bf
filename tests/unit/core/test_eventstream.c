/* The AWS event-stream decoder: messages built here byte by byte (prelude,
 * headers of every type, payload, both CRCs), fed in every split; bad CRCs,
 * lengths and headers; the cap; a fail-malloc sweep. */
#include "support.h"

#include <string.h>

#include "core/eventstream.h"
#include "core/status.h"

static size_t put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
  return 4;
}

static size_t put_str_header(unsigned char *p, const char *name, const char *value) {
  size_t n = 0, nl = strlen(name), vl = strlen(value);
  p[n++] = (unsigned char)nl;
  memcpy(p + n, name, nl);
  n += nl;
  p[n++] = GW_ES_STRING;
  p[n++] = (unsigned char)(vl >> 8);
  p[n++] = (unsigned char)vl;
  memcpy(p + n, value, vl);
  return n + vl;
}

/* One message with the given string headers plus an int, a bool, a uuid and
 * a timestamp header, and |payload|. Returns its length. */
static size_t build(unsigned char *out, const char *mtype, const char *etype, const char *payload) {
  unsigned char h[512];
  size_t hl = 0;
  hl += put_str_header(h + hl, ":message-type", mtype);
  hl += put_str_header(
      h + hl, mtype[0] == 'e' && mtype[1] == 'x' ? ":exception-type" : ":event-type", etype);
  hl += put_str_header(h + hl, ":content-type", "application/json");
  h[hl++] = 3, memcpy(h + hl, "int", 3), hl += 3, h[hl++] = GW_ES_INT, hl += put32(h + hl, 7);
  h[hl++] = 1, h[hl++] = 'b', h[hl++] = GW_ES_BOOL_TRUE;
  h[hl++] = 1, h[hl++] = 'u', h[hl++] = GW_ES_UUID, memset(h + hl, 0xab, 16), hl += 16;
  h[hl++] = 1, h[hl++] = 't', h[hl++] = GW_ES_TIMESTAMP, memset(h + hl, 0, 8), hl += 8;
  size_t pl = strlen(payload);
  size_t total = 12 + hl + pl + 4;
  size_t n = put32(out, (uint32_t)total);
  n += put32(out + n, (uint32_t)hl);
  n += put32(out + n, gw_eventstream_crc32(0, out, 8));
  memcpy(out + n, h, hl);
  n += hl;
  memcpy(out + n, payload, pl);
  n += pl;
  n += put32(out + n, gw_eventstream_crc32(0, out, n));
  return n;
}

static void test_crc32(void **state) {
  (void)state;
  /* The standard check value of CRC-32/ISO-HDLC. */
  assert_int_equal(gw_eventstream_crc32(0, "123456789", 9), 0xCBF43926u);
}

static void test_decode_any_split(void **state) {
  (void)state;
  unsigned char buf[4096];
  size_t n = build(buf, "event", "contentBlockDelta", "{\"delta\":{\"text\":\"Hi\"}}");
  n += build(buf + n, "exception", "throttlingException", "{\"message\":\"slow down\"}");
  for (size_t step = 1; step <= n; step++) {
    gw_eventstream_decoder d;
    gw_eventstream_init(&d, 1 << 16);
    int got = 0;
    for (size_t off = 0; off < n; off += step) {
      size_t k = step < n - off ? step : n - off;
      assert_int_equal(gw_eventstream_feed(&d, buf + off, k), GW_OK);
      gw_eventstream_message m;
      int rc;
      while ((rc = gw_eventstream_next(&d, &m)) == 1) {
        if (got == 0) {
          assert_string_equal(m.message_type, "event");
          assert_string_equal(m.event_type, "contentBlockDelta");
          assert_string_equal(m.content_type, "application/json");
          assert_int_equal(m.payload_len, strlen("{\"delta\":{\"text\":\"Hi\"}}"));
          assert_memory_equal(m.payload, "{\"delta\":{\"text\":\"Hi\"}}", m.payload_len);
          assert_int_equal(m.n_headers, 7);
        } else {
          assert_string_equal(m.message_type, "exception");
          assert_string_equal(m.exception_type, "throttlingException");
          assert_string_equal(m.event_type, "");
        }
        got++;
      }
      assert_int_equal(rc, 0);
    }
    assert_int_equal(got, 2);
    assert_false(gw_eventstream_pending(&d));
    gw_eventstream_release(&d);
  }
}

static int decode_one(const unsigned char *p, size_t n, size_t cap) {
  gw_eventstream_decoder d;
  gw_eventstream_init(&d, cap);
  int rc = gw_eventstream_feed(&d, p, n);
  gw_eventstream_message m;
  if (rc == GW_OK)
    rc = gw_eventstream_next(&d, &m);
  gw_eventstream_release(&d);
  return rc;
}

static void test_corruption(void **state) {
  (void)state;
  unsigned char buf[1024], bad[1024];
  size_t n = build(buf, "event", "messageStop", "{\"stopReason\":\"end_turn\"}");
  assert_int_equal(decode_one(buf, n, 1 << 16), 1);
  /* Any flipped byte is caught by one CRC or the other (or a length check). */
  for (size_t i = 0; i < n; i++) {
    memcpy(bad, buf, n);
    bad[i] ^= 0x01;
    int rc = decode_one(bad, n, 1 << 16);
    assert_true(rc == GW_ERR_INVALID || rc == 0 || rc == GW_ERR_TOOBIG);
  }
  /* Over the cap. */
  assert_int_equal(decode_one(buf, n, 32), GW_ERR_TOOBIG);
  /* Incomplete: more needed. */
  assert_int_equal(decode_one(buf, n - 1, 1 << 16), 0);
  /* A header of an unknown type, with valid CRCs. */
  unsigned char h[64];
  size_t hl = 0;
  h[hl++] = 1, h[hl++] = 'x', h[hl++] = 42;
  size_t total = 12 + hl + 4, k = put32(bad, (uint32_t)total);
  k += put32(bad + k, (uint32_t)hl);
  k += put32(bad + k, gw_eventstream_crc32(0, bad, 8));
  memcpy(bad + k, h, hl);
  k += hl;
  k += put32(bad + k, gw_eventstream_crc32(0, bad, k));
  assert_int_equal(decode_one(bad, k, 1 << 16), GW_ERR_INVALID);
}

static int workload(void *arg) {
  (void)arg;
  unsigned char buf[2048];
  size_t n = build(buf, "event", "messageStart", "{\"role\":\"assistant\"}");
  n += build(buf + n, "event", "messageStop", "{}");
  gw_eventstream_decoder d;
  gw_eventstream_init(&d, 1 << 16);
  int rc = GW_OK, got = 0;
  for (size_t off = 0; off < n && rc == GW_OK; off += 16) {
    rc = gw_eventstream_feed(&d, buf + off, n - off < 16 ? n - off : 16);
    gw_eventstream_message m;
    while (rc == GW_OK && gw_eventstream_next(&d, &m) == 1)
      got++;
  }
  gw_eventstream_release(&d);
  if (rc != GW_OK)
    return 1;
  return got == 2 ? 0 : 2;
}

static void test_failmalloc(void **state) {
  (void)state;
  assert_true(gw_test_failmalloc_sweep(workload, NULL) > 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crc32),
      cmocka_unit_test(test_decode_any_split),
      cmocka_unit_test(test_corruption),
      cmocka_unit_test(test_failmalloc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
