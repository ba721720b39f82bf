"""The HTTP front door end to end: OpenAI's HTTP/JSON API on HTTP/1.1, h2c
and TLS, transcoded onto the canonical API and served by the real Python
model server (echo backend) through the real gateway binary. Clients: the
official `openai` npm SDK, curl, and Python's http.client for byte-exact
checks. Every JSON body and SSE event on OpenAI routes is validated against
OpenAI's published OpenAPI description."""
import gzip
import http.client
import json
import os
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import ROOT, Gateway, echo_config, gateway_env, start_backend
import openai_schema

NODE = "node"
SDK = os.path.join(ROOT, "tests", "integration", "sdk_check.mjs")


@pytest.fixture(scope="module")
def gw(backend):
    g = Gateway(gateway_env(echo_config(backend.port), MAX_BODY_BYTES=200000))
    yield g
    g.stop_clean()


def post(gw, path, body, headers=None, raw=None):
    c = http.client.HTTPConnection("127.0.0.1", gw.http_port, timeout=30)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    c.request("POST", path, body=raw if raw is not None else json.dumps(body), headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


def get(gw, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", gw.http_port, timeout=30)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


def sse_events(data):
    events = []
    for block in data.decode().split("\n\n"):
        if block.strip():
            assert block.startswith("data: "), block
            events.append(block[len("data: "):])
    return events


def chat_body(text="hello there", **kw):
    return dict(model="echo", messages=[{"role": "user", "content": text}], **kw)


# ---- the official SDK -----------------------------------------------------------

def test_openai_sdk_unchanged(gw):
    r = subprocess.run([NODE, SDK, f"http://127.0.0.1:{gw.http_port}/v1", "echo"],
                       capture_output=True, text=True, timeout=120, cwd=os.path.dirname(SDK))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["models"] == ["echo", "renamed"]
    assert out["chat"]["content"] == "hello from the sdk"
    assert out["chat"]["finish"] == "stop"
    assert out["chat"]["usage"]["total_tokens"] > 0
    s = out["chat_stream"]
    assert s["text"] == "one two three four"
    assert s["pieces"] == 4
    assert s["finish"] == "stop"
    assert s["usage"]["completion_tokens"] == 4
    assert out["completion"]["text"] == "say this back"
    assert out["completion_stream"]["text"] == "a b c"
    e = out["embeddings_base64_default"]
    assert e["n"] == 3 and e["dims"] == 64
    assert e["vectors"][0] == e["vectors"][1] and e["vectors"][0] != e["vectors"][2]
    f = out["embeddings_float"]
    assert f["dims"] == 64
    assert max(abs(a - b) for a, b in zip(f["vector"], e["vectors"][0])) < 1e-6
    nf = out["not_found"]["error"]
    assert nf["status"] == 404 and nf["code"] == "model_not_found"


# ---- schema: every body and event -------------------------------------------------

def test_bodies_validate_against_openai_schema(gw):
    r, d = get(gw, "/v1/models")
    assert r.status == 200
    openai_schema.validate("ListModelsResponse", json.loads(d))
    r, d = get(gw, "/v1/models/echo")
    assert r.status == 200
    openai_schema.validate("Model", json.loads(d))

    r, d = post(gw, "/v1/chat/completions", chat_body(temperature=0))
    assert r.status == 200 and r.getheader("content-type") == "application/json"
    body = json.loads(d)
    openai_schema.validate("CreateChatCompletionResponse", body)
    assert body["choices"][0]["message"]["content"] == "hello there"

    r, d = post(gw, "/v1/completions", {"model": "echo", "prompt": "x y"})
    assert r.status == 200
    openai_schema.validate("CreateCompletionResponse", json.loads(d))

    r, d = post(gw, "/v1/embeddings", {"model": "echo", "input": "abc", "encoding_format": "float"})
    assert r.status == 200
    openai_schema.validate("CreateEmbeddingResponse", json.loads(d))


def test_stream_events_validate_and_end_with_done(gw):
    r, d = post(gw, "/v1/chat/completions",
                chat_body("a b c", stream=True, stream_options={"include_usage": True}))
    assert r.status == 200
    assert r.getheader("content-type").startswith("text/event-stream")
    events = sse_events(d)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    for c in chunks:
        openai_schema.validate("CreateChatCompletionStreamResponse", c)
    assert "".join(ch["choices"][0]["delta"].get("content", "") for ch in chunks
                   if ch["choices"]).split() == ["a", "b", "c"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3

    # Without include_usage no chunk carries usage.
    r, d = post(gw, "/v1/chat/completions", chat_body("a b", stream=True))
    chunks = [json.loads(e) for e in sse_events(d)[:-1]]
    assert chunks and all("usage" not in c and c["choices"] for c in chunks)


def test_completion_stream_events(gw):
    r, d = post(gw, "/v1/completions", {"model": "echo", "prompt": "p q", "stream": True})
    events = sse_events(d)
    assert events[-1] == "[DONE]"
    for e in events[:-1]:
        c = json.loads(e)
        # OpenAI sends finish_reason null until the last event, although its
        # schema lists only strings there; everything else must validate.
        for ch in c["choices"]:
            if ch["finish_reason"] is None:
                ch["finish_reason"] = "stop"
        openai_schema.validate("CreateCompletionResponse", c)


def test_sse_events_arrive_as_produced(gw):
    # The backend waits 20 ms between tokens: the client sees the first
    # event long before the last one.
    words = " ".join(f"w{i}" for i in range(15))
    s = socket.create_connection(("127.0.0.1", gw.http_port))
    body = json.dumps(chat_body(words, stream=True)).encode()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    t0 = time.monotonic()
    first = last = None
    buf = b""
    while b"data: [DONE]" not in buf:
        chunk = s.recv(65536)
        assert chunk, "connection closed early"
        now = time.monotonic() - t0
        if first is None and b"data: {" in chunk:
            first = now
        buf += chunk
        last = now
    s.close()
    assert last - first >= 0.2, (first, last)


# ---- protocols --------------------------------------------------------------------

def curl(*args):
    r = subprocess.run(["curl", "-sS", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("flag,version", [("--http1.1", "1.1"), ("--http2-prior-knowledge", "2")])
def test_curl_cleartext(gw, flag, version):
    out = curl(flag, "-w", "\n%{http_version}", f"http://127.0.0.1:{gw.http_port}/v1/chat/completions",
               "-H", "Content-Type: application/json", "-d", json.dumps(chat_body("over curl")))
    body, ver = out.rsplit("\n", 1)
    assert ver == version
    assert json.loads(body)["choices"][0]["message"]["content"] == "over curl"
    out = curl(flag, "-N", f"http://127.0.0.1:{gw.http_port}/v1/chat/completions",
               "-H", "Content-Type: application/json",
               "-d", json.dumps(chat_body("x y z", stream=True)))
    assert out.rstrip().endswith("data: [DONE]")


def test_curl_tls_h2_and_http11(backend):
    d = tempfile.mkdtemp()
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    g = Gateway(gateway_env(echo_config(backend.port), TLS_CERT_FILE=cert, TLS_KEY_FILE=key))
    try:
        for flag, version in (("--http2", "2"), ("--http1.1", "1.1")):
            out = curl("-k", flag, "-D", "-", "-w", "\n%{http_version}",
                       f"https://127.0.0.1:{g.http_port}/v1/chat/completions",
                       "-H", "Content-Type: application/json",
                       "-d", json.dumps(chat_body("over tls")))
            head_body, ver = out.rsplit("\n", 1)
            assert ver == version
            assert "strict-transport-security" in head_body.lower()
            assert '"content":"over tls"' in head_body
    finally:
        g.stop_clean()


def _cpu_seconds(pid):
    """User and system CPU time the process |pid| has used, all threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tls_client(port):
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                           server_hostname="localhost")


def _pipeline_unread(port, tls, limit, pid=None):
    """Pipelines GET /v1/models on one connection, reading nothing, until
    |limit| went or the socket stops taking them; returns the requests sent,
    the answers read afterwards and (with |pid|) the CPU time the gateway
    used in the 2 s it held the connection before the client read."""
    import ssl
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    raw.connect(("127.0.0.1", port))
    s = raw
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        ctx.set_alpn_protocols(["http/1.1"])
        s = ctx.wrap_socket(raw, server_hostname="localhost")
    batch = b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n" * 100
    sent = 0
    s.settimeout(1.5)
    try:
        while sent < limit:
            s.sendall(batch)  # a batch cut short by the timeout is not counted
            sent += 100
    except socket.timeout:
        pass
    time.sleep(0.5)
    held = _cpu_seconds(pid) if pid else 0
    time.sleep(2 if pid else 0)
    held = _cpu_seconds(pid) - held if pid else 0
    pat, tail, answers = b"HTTP/1.1 200", b"", 0
    s.settimeout(10)
    try:
        while answers < sent:
            d = s.recv(1 << 20)
            if not d:
                break
            buf = tail + d
            answers += buf.count(pat)
            tail = buf[-(len(pat) - 1):]
    except socket.timeout:
        pass
    s.close()
    return sent, answers, held


def test_pipelined_requests_held_back_are_all_answered(backend):
    # A client pipelines 60,000 requests and reads nothing (18 MB of
    # answers, past what the sockets hold): the gateway answers until 64 KiB
    # of answers wait, then stops taking requests (test_http_server.c
    # test_pipelining_unread); the rest wait in its input, in SSL and in the
    # socket. Once the client reads, every request is answered, over
    # cleartext and over TLS. While it holds them the gateway sleeps: over
    # TLS its worker spun at 100% CPU (libevent ran the read callback again
    # and again while the input sat at its high-water mark).
    d = tempfile.mkdtemp()
    cert, key = _self_signed(d, "localhost")
    for tls in (False, True):
        env = dict(TLS_CERT_FILE=cert, TLS_KEY_FILE=key) if tls else {}
        g = Gateway(gateway_env(echo_config(backend.port), **env))
        try:
            sent, answers, held = _pipeline_unread(g.http_port, tls, 60000, g.p.pid)
        finally:
            g.stop_clean()
        assert sent >= 5000 and answers == sent, (tls, sent, answers)
        assert held < 0.5, f"tls={tls}: {held:.2f} s of CPU in the 2 s the connection was held"


def test_tls_requests_pipelined_behind_a_slow_one(tmp_path):
    """Over TLS, 150 requests (2 KB each: past the input's high-water mark)
    pipelined behind one the upstream answers after 2.5 s: all are answered,
    and the gateway sleeps while it waits (it spun at 100% CPU)."""
    from mock_openai import MockOpenAI
    cert, key = _self_signed(str(tmp_path), "localhost")
    m = MockOpenAI().start()
    cfg = {"backends": [{"name": "m", "provider": "openai", "target": m.base_url}],
           "models": [{"name": "gpt-mock", "backend": "m"}, {"name": "slow", "backend": "m"}]}
    g = Gateway(gateway_env(cfg, TLS_CERT_FILE=cert, TLS_KEY_FILE=key))

    def request(model, text, **extra):
        body = json.dumps(dict(model=model, messages=[{"role": "user", "content": text}],
                               **extra)).encode()
        return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (len(body), body))

    n = 150
    try:
        s = _tls_client(g.http_port)
        s.sendall(request("slow", "first", mock_delay_ms=2500) +
                  b"".join(request("gpt-mock", f"{i:04d}" + "x" * 2000) for i in range(n)))
        time.sleep(0.3)
        cpu = _cpu_seconds(g.p.pid)
        time.sleep(1.5)
        cpu = _cpu_seconds(g.p.pid) - cpu
        buf = b""
        s.settimeout(30)
        while buf.count(b"HTTP/1.1 200") < n + 1:
            d = s.recv(1 << 20)
            if not d:
                break
            buf += d
        s.close()
    finally:
        g.stop_clean()
        m.stop()
    assert buf.count(b"HTTP/1.1 200") == n + 1
    assert cpu < 0.5, f"{cpu:.2f} s of CPU in 1.5 s of waiting for the upstream"


# ---- errors: exact status and body ---------------------------------------------------

ERRORS = [
    # (method, path, raw body, headers, status, code, param)
    ("POST", "/v1/chat/completions", "{not json", {}, 400, "invalid_json", None),
    ("POST", "/v1/chat/completions", '{"model":"echo","messages":"hi"}', {}, 400, "invalid_value",
     "messages"),
    ("POST", "/v1/chat/completions", '{"model":"echo","messages":[{"role":"user","content":"x"}],'
     '"temperature":"hot"}', {}, 400, "invalid_value", "temperature"),
    ("POST", "/v1/chat/completions", '{"messages":[{"role":"user","content":"x"}]}', {}, 400,
     "invalid_value", "model"),
    ("POST", "/v1/chat/completions", '{"model":"echo"}', {}, 400, "invalid_value", "messages"),
    ("POST", "/v1/embeddings", '{"model":"echo"}', {}, 400, "invalid_value", "input"),
    ("POST", "/v1/chat/completions", '{"model":"nope","messages":[{"role":"user","content":"x"}]}',
     {}, 404, "model_not_found", "model"),
    ("POST", "/v1/nothing/here", "{}", {}, 404, "unknown_url", None),
    ("GET", "/v1/chat/completions", None, {}, 405, "method_not_allowed", None),
    ("POST", "/v1/chat/completions", '{"model":"echo"}', {"Content-Type": "text/plain"}, 415,
     "unsupported_media_type", None),
    ("POST", "/v1/chat/completions", "x" * 300000, {}, 413, None, None),
]


@pytest.mark.parametrize("method,path,raw,headers,status,code,param", ERRORS,
                         ids=[f"{e[4]}-{e[5] or 'too-large'}-{e[6] or ''}" for e in ERRORS])
def test_error_classes(gw, method, path, raw, headers, status, code, param):
    c = http.client.HTTPConnection("127.0.0.1", gw.http_port, timeout=30)
    h = {"Content-Type": "application/json"}
    h.update(headers)
    c.request(method, path, body=raw, headers=h)
    r = c.getresponse()
    body = json.loads(r.read())
    c.close()
    assert r.status == status, body
    assert r.getheader("content-type") == "application/json"
    openai_schema.validate("ErrorResponse", body)
    if code:
        assert body["error"]["code"] == code, body
    assert body["error"]["param"] == param, body
    assert body["error"]["message"]
    if status == 405:
        assert r.getheader("allow") == "POST"


# ---- the rest of the seed's surface ------------------------------------------------------

def test_request_id_accepted_and_returned(gw):
    r, _ = post(gw, "/v1/chat/completions", chat_body(), headers={"X-Request-Id": "abc-123.def"})
    assert r.getheader("x-request-id") == "abc-123.def"
    r, _ = post(gw, "/v1/chat/completions", chat_body(), headers={"X-Request-Id": "bad id!"})
    rid = r.getheader("x-request-id")
    assert rid and rid != "bad id!"
    assert r.getheader("x-content-type-options") == "nosniff"


def test_health_local_and_monitoring(gw):
    r, d = get(gw, "/health")
    h = json.loads(d)
    assert r.status == 200 and h["live"] is True and h["status"] == "ok"
    r, d = post(gw, "/local/chat/completions", chat_body("local route"))
    assert r.status == 200
    assert json.loads(d)["choices"][0]["message"]["content"] == "local route"
    r, d = get(gw, "/api/v1/monitoring/stats")
    assert r.status == 200 and json.loads(d)["requests_total"] >= 1
    r, d = get(gw, "/api/v1/monitoring/backends")
    assert json.loads(d)["backends"][0]["name"] == "local"


def test_gzip_response(gw):
    r, d = post(gw, "/v1/embeddings", {"model": "echo", "input": ["a", "b", "c", "d"],
                                        "encoding_format": "float"},
                headers={"Accept-Encoding": "gzip"})
    assert r.status == 200 and r.getheader("content-encoding") == "gzip"
    assert len(json.loads(gzip.decompress(d))["data"]) == 4
    # Never for event streams.
    r, d = post(gw, "/v1/chat/completions", chat_body("a", stream=True),
                headers={"Accept-Encoding": "gzip"})
    assert r.getheader("content-encoding") is None and d.endswith(b"data: [DONE]\n\n")


def test_unknown_fields_reach_the_backend_path_without_error(gw):
    # Vendor fields the proto does not model are kept (extra_fields), not
    # rejected; the OpenAI-provider tests check they reach the upstream.
    r, d = post(gw, "/v1/chat/completions", chat_body(top_k=40, vendor={"a": [1, 2]}))
    assert r.status == 200, d


def test_client_disconnect_cancels_upstream():
    b = start_backend(delay_ms=20, max_concurrency=1)
    g = Gateway(gateway_env(echo_config(b.port)))
    try:
        words = " ".join(f"w{i}" for i in range(200))
        s = socket.create_connection(("127.0.0.1", g.http_port))
        body = json.dumps(chat_body(words, stream=True)).encode()
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nContent-Length: "
                  + str(len(body)).encode() + b"\r\n\r\n" + body)
        assert b"data: {" in s.recv(65536)
        s.close()
        deadline = time.monotonic() + 2.0
        while True:
            r, d = post(g, "/v1/chat/completions", chat_body("after"))
            if r.status == 200:
                break
            assert r.status == 429, d  # the one-slot backend is still busy
            assert time.monotonic() < deadline, "upstream call not cancelled"
            time.sleep(0.05)
        assert json.loads(d)["choices"][0]["message"]["content"] == "after"
    finally:
        try:
            g.stop_clean()
        finally:
            b.stop(must_stop=False)


def test_slow_client_408_big_head_431_and_cors(backend):
    g = Gateway(gateway_env(echo_config(backend.port), HTTP_HEADER_TIMEOUT_MS=500,
                            CORS_ORIGINS="https://app.example.com"))
    try:
        # A client that sends half a head and stalls gets 408 with an error body.
        s = socket.create_connection(("127.0.0.1", g.http_port))
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        s.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), data
        openai_schema.validate("ErrorResponse", json.loads(body))

        # A 70 KiB header: 431.
        r, d = post(g, "/v1/chat/completions", chat_body(), headers={"X-Big": "a" * 70000})
        assert r.status == 431
        openai_schema.validate("ErrorResponse", json.loads(d))

        # CORS: preflight answered, allowed origin echoed, others not.
        c = http.client.HTTPConnection("127.0.0.1", g.http_port, timeout=10)
        c.request("OPTIONS", "/v1/chat/completions",
                  headers={"Origin": "https://app.example.com",
                           "Access-Control-Request-Method": "POST",
                           "Access-Control-Request-Headers": "authorization, content-type"})
        r = c.getresponse()
        r.read()
        assert r.status == 204
        assert r.getheader("access-control-allow-origin") == "https://app.example.com"
        assert "POST" in r.getheader("access-control-allow-methods")
        c.close()
        r, _ = post(g, "/v1/chat/completions", chat_body(),
                    headers={"Origin": "https://evil.example.com"})
        assert r.status == 200 and r.getheader("access-control-allow-origin") is None
    finally:
        g.stop_clean()


def _self_signed(d, cn):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", f"/CN={cn}"],
                   check=True, capture_output=True)
    return cert, key


def _served_cn(port):
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername",
                        "localhost"], input="", capture_output=True, text=True, timeout=20)
    m = [l for l in r.stdout.splitlines() if l.strip().startswith("subject=")]
    return m[0] if m else r.stdout[-500:]


def test_tls_certificate_reload_on_sighup(backend):
    import signal as sig
    d = tempfile.mkdtemp()
    cert, key = _self_signed(d, "first.example")
    g = Gateway(gateway_env(echo_config(backend.port), TLS_CERT_FILE=cert, TLS_KEY_FILE=key))
    try:
        assert "first.example" in _served_cn(g.http_port)
        d2 = tempfile.mkdtemp()
        cert2, key2 = _self_signed(d2, "second.example")
        os.replace(cert2, cert)
        os.replace(key2, key)
        g.p.send_signal(sig.SIGHUP)
        deadline = time.time() + 10
        while "second.example" not in _served_cn(g.http_port):
            assert time.time() < deadline, "certificate not reloaded"
            time.sleep(0.2)
        out = curl("-k", f"https://127.0.0.1:{g.http_port}/v1/models")
        assert json.loads(out)["object"] == "list"
    finally:
        g.stop_clean()
