"""An https:// OpenAI-compatible upstream, the path every cloud provider
takes. The native client serves it by default (HTTP/1.1 over TLS, with a
connection pool), UPSTREAM_CLIENT=curl hands it to curl, and both trust the
same certificates: the system's store, or the bundle in SSL_CERT_FILE.

The upstream is mock_openai.py behind Python's ssl module (a real TLS 1.3
server), with a certificate made here by the openssl command for
127.0.0.1. A certificate the gateway does not trust, one for another
name, or a port that speaks plain HTTP gets an OpenAI-style error naming
the reason, and nothing is sent."""
import asyncio
import http.client
import json
import socket
import ssl
import subprocess
import time

import pytest

from conftest import Gateway, gateway_env_clean as env
from mock_openai import MockOpenAI
from test_upstream_pool_peak import Upstream, burst

KEY = "sk-upstream-https-0123"


def make_cert(folder, name, san):
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    f"/CN={name}", "-addext", f"subjectAltName={san}", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    return str(cert), str(key)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    return {"ip": make_cert(d, "ip", "IP:127.0.0.1"),
            "name": make_cert(d, "name", "DNS:upstream.test")}


@pytest.fixture(scope="module")
def mock(certs):
    m = MockOpenAI(api_key=KEY, tls=certs["ip"]).start()
    yield m
    m.stop()



def post(gw, body):
    c = http.client.HTTPConnection("127.0.0.1", gw.http_port, timeout=60)
    c.request("POST", "/v1/chat/completions", body=json.dumps(body),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    d = r.read()
    c.close()
    return r.status, d


def chat(gw, stream=False, content="hi"):
    body = {"model": "gpt-mock", "messages": [{"role": "user", "content": content}]}
    if stream:
        body["stream"] = True
    return post(gw, body)


@pytest.mark.parametrize("client", ["native", "curl"])
def test_https_upstream(mock, certs, client):
    extra = {"UPSTREAM_CLIENT": "curl"} if client == "curl" else {}
    g = Gateway(env(TARGET_API_URL=mock.base_url, TARGET_API_KEY=KEY,
                    SSL_CERT_FILE=certs["ip"][0], MODELS_REFRESH_S=60, WORKERS=1,
                    LOG_LEVEL="debug", **extra))
    try:
        mock.clear()
        before = mock.connections
        for i in range(5):
            st, d = chat(g, content=f"hello {i}")
            assert st == 200, d
            assert json.loads(d)["choices"][0]["message"]["content"], d
        st, d = chat(g, stream=True)
        assert st == 200 and d.rstrip().endswith(b"data: [DONE]"), d
        events = [json.loads(l[6:]) for l in d.decode().splitlines()
                  if l.startswith("data: {")]
        assert events and all(e["object"] == "chat.completion.chunk" for e in events), d
        # A large prompt: many TLS records one way.
        st, d = chat(g, content="x" * 300_000)
        assert st == 200, d
        posts = mock.find(path="/v1/chat/completions")
        assert len(posts) == 7, posts
        assert posts[-1]["body"]["messages"][0]["content"] == "x" * 300_000
        assert all(p["headers"]["host"] == f"127.0.0.1:{mock.port}" for p in posts), posts
        assert all(p["headers"]["authorization"] == f"Bearer {KEY}" for p in posts)
        # Kept alive: the seven exchanges (and the catalog's fetch) share
        # a connection or two, not one handshake each.
        assert mock.connections - before <= 3, mock.connections - before
    finally:
        out = g.stop_clean()
    sent = [l for l in out.splitlines() if "-> backend" in l and "/chat/completions" in l]
    assert len(sent) == 7, out[-4000:]
    assert all(l.endswith(", native)") == (client == "native") for l in sent), sent
    assert KEY not in out  # the key is never logged


@pytest.mark.parametrize("client", ["native", "curl"])
@pytest.mark.parametrize("case", ["untrusted", "wrong name", "plain http port"])
def test_tls_refused(mock, certs, client, case):
    extra = {"UPSTREAM_CLIENT": "curl"} if client == "curl" else {}
    other = None
    if case == "untrusted":
        # The system's store (no SSL_CERT_FILE): the mock's certificate is
        # self-signed and in no store.
        url, trust, want = mock.base_url, {"SSL_CERT_DIR": "/nonexistent"}, ["self-signed"]
    elif case == "wrong name":
        # Trusted, but made for upstream.test, not for 127.0.0.1.
        other = MockOpenAI(api_key=KEY, tls=certs["name"]).start()
        url, trust = other.base_url, {"SSL_CERT_FILE": certs["name"][0]}
        want = ["IP address mismatch", "no alternative certificate subject name matches"]
    else:
        # https:// to a port that speaks plain HTTP.
        other = MockOpenAI(api_key=KEY).start()
        url = other.base_url.replace("http://", "https://")
        trust, want = {"SSL_CERT_FILE": certs["ip"][0]}, ["wrong version number"]
    g = Gateway(env(TARGET_API_URL=url, TARGET_API_KEY=KEY, MODELS_REFRESH_S=60, WORKERS=1,
                    **trust, **extra))
    try:
        mock.clear()
        st, d = chat(g)
        assert st == 503, (st, d)
        err = json.loads(d)["error"]
        assert err["code"] == "upstream_unavailable", err
        assert any(w in err["message"] for w in want), err
        assert not mock.find(path="/v1/chat/completions")  # nothing was sent
        if other:
            assert not other.find(path="/v1/chat/completions")
        # The gateway stays up and answers.
        c = http.client.HTTPConnection("127.0.0.1", g.http_port, timeout=10)
        c.request("GET", "/health")
        assert c.getresponse().status == 200
    finally:
        g.stop_clean()
        if other:
            other.stop()


def test_clients_gone_mid_stream(mock, certs):
    """Twelve streams over https, each client gone after its first event:
    every upstream TLS connection is closed at once (the mock sees its
    writes fail), none is pooled half-read, and the next requests are
    served. Under ASan this also checks the TLS objects' lifetimes."""
    g = Gateway(env(TARGET_API_URL=mock.base_url, TARGET_API_KEY=KEY,
                    SSL_CERT_FILE=certs["ip"][0], MODELS_REFRESH_S=60, WORKERS=1))
    try:
        mock.clear()
        body = json.dumps({"model": "gpt-mock", "stream": True, "mock_events": 200,
                           "mock_delay_ms": 50, "mock_tag": "gone",
                           "messages": [{"role": "user", "content": "long"}]})
        socks = []
        for _ in range(12):
            s = socket.create_connection(("127.0.0.1", g.http_port), timeout=30)
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n"
                      b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                      % (len(body), body.encode()))
            socks.append(s)
        for s in socks:
            assert b"data: {" in s.recv(65536)
        gone_at = time.time()
        for s in socks:
            s.close()
        deadline = time.time() + 10
        while time.time() < deadline:
            recs = [r for r in mock.find(path="/v1/chat/completions")
                    if (r["body"] or {}).get("mock_tag") == "gone"]
            if len(recs) == 12 and all(r["aborted_at"] for r in recs):
                break
            time.sleep(0.05)
        assert len(recs) == 12 and all(r["aborted_at"] for r in recs), recs
        assert max(r["aborted_at"] for r in recs) - gone_at < 2.0
        assert all(r["events_sent"] < 40 for r in recs)
        for i in range(3):
            st, d = chat(g, content=f"after {i}")
            assert st == 200, d
    finally:
        g.stop_clean()


def test_burst_over_tls(certs):
    """300 requests at once, twice, through one worker to an https upstream
    (asyncio over Python's ssl): 300 TLS handshakes in flight together in
    the client's state machine, none failing, and the second burst served
    by the pool the first one grew (at most 5 new connections)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*certs["ip"])
    up = Upstream(ssl=ctx)
    g = Gateway(env(TARGET_API_URL=f"https://127.0.0.1:{up.port}/v1", TARGET_API_KEY=KEY,
                    SSL_CERT_FILE=certs["ip"][0], WORKERS=1, MAX_CONNS_PER_IP=0,
                    MODELS_REFRESH_S=60))
    try:
        for n in (1, 2):
            before = up.accepts
            results = asyncio.run(burst(g.http_port, 300))
            bad = [r for r in results if r[0] != b"200"]
            assert not bad, (n, bad[:3])
            opened = up.accepts - before
            if n == 2:
                assert opened <= 5, f"the second burst opened {opened} connections"
    finally:
        g.stop_clean()
        up.stop()
