#!/usr/bin/python3
"""Raw-frame HTTP/2 abuse checks against the gateway's HTTP layer.

Usage: h2_floods.py PORT   (a cleartext listener speaking h2c prior knowledge)

Checks, each on a fresh connection:
  sane          one GET gets a 200 (the harness itself works)
  rapid_reset   HEADERS then RST_STREAM, over and over (CVE-2023-44487): the
                server must answer with GOAWAY and close, long before 2000
  continuation  HEADERS without END_HEADERS then endless CONTINUATION frames
                (CVE-2024-28182): the server must GOAWAY / close
  cancels_ok    1,500 requests, every fifth reset by the client at once (300
                RST_STREAMs, as a client cancelling calls sends): the connection
                stays open and the other 1,200 are answered
Exits 0 when all pass; prints one line per check.
"""
import socket
import sys
import time

import h2.config
import h2.connection
import h2.events
import hpack
from hyperframe.frame import ContinuationFrame, HeadersFrame, RstStreamFrame

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.settimeout(5)
    return s


def settings_frame():
    # An empty SETTINGS frame.
    return b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def read_until_closed(s, deadline_s):
    """Reads until EOF/reset or timeout. Returns (closed, bytes)."""
    data = b""
    end = time.time() + deadline_s
    while time.time() < end:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return False, data
        except ConnectionResetError:
            return True, data
        if not chunk:
            return True, data
        data += chunk
    return False, data


def has_goaway(data):
    # Walk frames: 9-byte header, type 0x7 is GOAWAY.
    i = 0
    while i + 9 <= len(data):
        length = int.from_bytes(data[i:i + 3], "big")
        if data[i + 3] == 0x7:
            return True
        i += 9 + length
    return False


def check_sane(port):
    s = connect(port)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(1, [(":method", "GET"), (":path", "/sane"), (":scheme", "http"),
                          (":authority", "x")], end_stream=True)
    s.sendall(conn.data_to_send())
    status = None
    end = time.time() + 5
    while status is None and time.time() < end:
        data = s.recv(65536)
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                status = dict(ev.headers).get(b":status")
        s.sendall(conn.data_to_send())
    s.close()
    return status == b"200"


def check_rapid_reset(port):
    s = connect(port)
    s.sendall(PREFACE + settings_frame())
    enc = hpack.Encoder()
    block = enc.encode([(":method", "GET"), (":path", "/hang"), (":scheme", "http"),
                        (":authority", "x")])
    out = b""
    for i in range(2000):
        sid = 1 + 2 * i
        out += HeadersFrame(sid, data=block, flags=["END_HEADERS", "END_STREAM"]).serialize()
        out += RstStreamFrame(sid, error_code=8).serialize()  # CANCEL
    try:
        s.sendall(out)
    except (BrokenPipeError, ConnectionResetError):
        return True
    closed, data = read_until_closed(s, 5)
    s.close()
    return closed and has_goaway(data)


def check_cancels_ok(port):
    s = connect(port)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    s.sendall(conn.data_to_send())
    want, got, goaway = 0, 0, False
    for i in range(1500):
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "GET"), (":path", "/c"), (":scheme", "http"),
                                (":authority", "x")], end_stream=True)
        if i % 5 == 0:
            conn.reset_stream(sid, error_code=8)  # CANCEL
        else:
            want += 1
        s.sendall(conn.data_to_send())
        # Read what is there: keep the number of open streams low. Every
        # 50th request, wait for all answers so far; but never wait when none
        # is owed: with no stream open the server's keep-alive timeout runs
        # and closes the connection (it did, when the client was descheduled
        # long enough to have read every answer before a checkpoint).
        while True:
            waiting = i % 50 == 0 and got < want
            s.settimeout(5 if waiting else 0)
            try:
                data = s.recv(65536)
            except (BlockingIOError, socket.timeout):
                break
            if not data:
                print("cancels_ok: closed after %d of %d answers" % (got, want))
                return False
            got, goaway = take(conn, data, got, goaway)
            s.sendall(conn.data_to_send())
            if not waiting or got >= want:
                break
    end = time.time() + 10
    s.settimeout(1)
    while got < want and not goaway and time.time() < end:
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        if not data:
            break
        got, goaway = take(conn, data, got, goaway)
        s.sendall(conn.data_to_send())
    s.close()
    if got != want or goaway:
        print("cancels_ok: %d of %d answers, goaway %s" % (got, want, goaway))
    return got == want and not goaway


def take(conn, data, got, goaway):
    """Feeds |data| to |conn|: answers ended, GOAWAY seen; DATA acknowledged
    (the connection's flow-control window would otherwise run out)."""
    for ev in conn.receive_data(data):
        if isinstance(ev, h2.events.StreamEnded):
            got += 1
        elif isinstance(ev, h2.events.DataReceived):
            conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.ConnectionTerminated):
            goaway = True
    return got, goaway


def check_continuation(port):
    s = connect(port)
    s.sendall(PREFACE + settings_frame())
    enc = hpack.Encoder()
    block = enc.encode([(":method", "GET"), (":path", "/"), (":scheme", "http"),
                        (":authority", "x")])
    try:
        s.sendall(HeadersFrame(1, data=block, flags=[]).serialize())
        for i in range(1000):
            s.sendall(ContinuationFrame(1, data=enc.encode([("x-c%d" % i, "v")]),
                                        flags=[]).serialize())
    except (BrokenPipeError, ConnectionResetError):
        return True
    closed, data = read_until_closed(s, 5)
    s.close()
    return closed


def main():
    port = int(sys.argv[1])
    ok = True
    for name, fn in (("sane", check_sane), ("rapid_reset", check_rapid_reset),
                     ("continuation", check_continuation), ("cancels_ok", check_cancels_ok)):
        try:
            passed = fn(port)
        except Exception as e:  # a harness failure is a failed check
            print("%s: error %r" % (name, e))
            passed = False
        print("%s: %s" % (name, "ok" if passed else "FAIL"))
        ok = ok and passed
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
