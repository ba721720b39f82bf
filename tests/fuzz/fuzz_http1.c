/* libFuzzer target for the HTTP/1 side of the server layer (and the h2c
 * preface/upgrade switch it can lead to): the input is what a client sends on
 * a fresh cleartext connection, delivered through a socketpair to a real
 * gw_http_server whose handler echoes, streams, or answers with an error. */
#include <event2/event.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/status.h"
#include "transcoder/http/server.h"

static void handler(gw_http_stream *s, const gw_http_request *r, void *arg) {
  (void)arg;
  gw_http_header h[] = {{"Content-Type", "application/json"}};
  if (strcmp(r->path, "/s") == 0) {
    gw_http_start(s, 200, h, 1);
    gw_http_write(s, r->body, r->body_len);
    gw_http_write(s, "x", 1);
    gw_http_end(s);
  } else if (strcmp(r->path, "/e") == 0) {
    gw_http_respond_error(s, 404, NULL, "not_found", r->query);
  } else {
    gw_http_respond(s, 200, h, 1, r->body, r->body_len);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct event_base *base;
  gw_http_server *srv;
  gw_http_options o;
  int sv[2];

  if (!base) {
    gw_log_setup(GW_LOG_OFF, GW_LOG_TEXT);
    base = event_base_new();
  }
  gw_http_options_init(&o);
  o.host = "127.0.0.1";
  o.port = 0;
  o.max_body_bytes = 4096;
  o.max_header_bytes = 2048;
  o.max_headers = 16;
  o.gzip_min_bytes = 16;
  if (gw_http_server_new(base, &o, handler, NULL, &srv) != GW_OK)
    return 0;
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
    gw_http_server_free(srv);
    return 0;
  }
  gw_http_server_adopt(srv, sv[0], NULL, 0);
  size_t off = 0;
  /* Feed in a few slices so that parsing resumes across reads. */
  for (int round = 0; round < 64 && gw_http_server_connections(srv); round++) {
    if (off < size) {
      size_t n = size - off < 97 ? size - off : 97;
      ssize_t w = send(sv[1], data + off, n, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (w > 0)
        off += (size_t)w;
      if (off == size)
        shutdown(sv[1], SHUT_WR);
    }
    char sink[65536];
    while (recv(sv[1], sink, sizeof sink, MSG_DONTWAIT) > 0)
      ;
    event_base_loop(base, EVLOOP_NONBLOCK);
  }
  close(sv[1]);
  event_base_loop(base, EVLOOP_NONBLOCK);
  gw_http_server_free(srv);
  return 0;
}
