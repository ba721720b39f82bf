#!/usr/bin/python3
"""How the gateway's HTTP/2 responses encode their headers (HPACK), seen by
python3-h2's decoder on one h2c connection.

Usage: h2_headers.py PORT   (a cleartext listener speaking h2c prior knowledge)

Forty GETs in turn on one connection. Every response's x-request-id must be
a literal never indexed (it differs in every response: indexed, each one
went into the dynamic table, and the server searched a chain of the earlier
ids for every response), distinct from the others, and absent from the
decoder's dynamic table at the end; the fixed headers stay indexable (the
second response sends them as indexes). Prints "request_id_never_indexed:
ok" or what failed; exits 0 when it passed.
"""
import socket
import sys
import time

import h2.config
import h2.connection
import h2.events
from hpack import NeverIndexedHeaderTuple

N = 40


def responses(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    s.sendall(conn.data_to_send())
    got = []
    for i in range(N):
        sid = 1 + 2 * i
        conn.send_headers(sid, [(":method", "GET"), (":path", "/sane"), (":scheme", "http"),
                                (":authority", "x")], end_stream=True)
        s.sendall(conn.data_to_send())
        ended, headers = False, None
        end = time.time() + 5
        while not ended and time.time() < end:
            data = s.recv(65536)
            if not data:
                raise SystemExit(f"request_id_never_indexed: connection closed at stream {sid}")
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    headers = ev.headers
                if isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    ended = True
            s.sendall(conn.data_to_send())
        if headers is None:
            raise SystemExit(f"request_id_never_indexed: no response on stream {sid}")
        got.append(headers)
    table = list(conn.decoder.header_table.dynamic_entries)
    s.close()
    return got, table


def main():
    got, table = responses(int(sys.argv[1]))
    ids, problems = set(), []
    for i, headers in enumerate(got):
        rid = [h for h in headers if h[0] == b"x-request-id"]
        if len(rid) != 1:
            problems.append(f"response {i}: {len(rid)} x-request-id")
            continue
        if not isinstance(rid[0], NeverIndexedHeaderTuple):
            problems.append(f"response {i}: x-request-id may be indexed")
        ids.add(rid[0][1])
        fixed = [h for h in headers if h[0] == b"x-content-type-options"]
        if not fixed or isinstance(fixed[0], NeverIndexedHeaderTuple):
            problems.append(f"response {i}: x-content-type-options missing or never indexed")
    if len(ids) != len(got):
        problems.append(f"{len(ids)} distinct request ids in {len(got)} responses")
    in_table = [e for e in table if e[0] == b"x-request-id"]
    if in_table:
        problems.append(f"{len(in_table)} request ids in the dynamic table")
    print("request_id_never_indexed: " + ("ok" if not problems else "; ".join(problems[:4])))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
