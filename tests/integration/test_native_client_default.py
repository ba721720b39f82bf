"""The native HTTP/1.1 upstream client is the default for plain http://
OpenAI-compatible upstreams; UPSTREAM_CLIENT=curl turns it off, and a
configured proxy (http_proxy / all_proxy) keeps curl, which knows proxies.
The upstream is mock_openai.py; the proxy is a small forwarding server here."""
import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from conftest import Gateway, gateway_env_clean as env_without_proxies
from mock_openai import MockOpenAI

UPSTREAM_KEY = "sk-upstream-native-default-0123"


@pytest.fixture(scope="module")
def mock():
    m = MockOpenAI(api_key=UPSTREAM_KEY).start()
    yield m
    m.stop()


def chat(gw, stream=False):
    c = http.client.HTTPConnection("127.0.0.1", gw.http_port, timeout=60)
    body = {"model": "gpt-mock", "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        body["stream"] = True
    c.request("POST", "/v1/chat/completions", body=json.dumps(body),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    d = r.read()
    c.close()
    return r.status, d


def wait_catalog(gw, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        c = http.client.HTTPConnection("127.0.0.1", gw.http_port, timeout=10)
        c.request("GET", "/v1/models")
        r = c.getresponse()
        d = r.read()
        c.close()
        if r.status == 200 and any(m["id"] == "gpt-mock" for m in json.loads(d)["data"]):
            return
        time.sleep(0.2)
    raise AssertionError("the model catalog never loaded")


@pytest.mark.parametrize("setting,native", [(None, True), ("native", True), ("curl", False)])
def test_which_client_serves_plain_http(mock, setting, native):
    extra = {"UPSTREAM_CLIENT": setting} if setting else {}
    g = Gateway(env_without_proxies(TARGET_API_URL=mock.base_url, TARGET_API_KEY=UPSTREAM_KEY,
                                    MODELS_REFRESH_S=1, LOG_LEVEL="debug", **extra))
    try:
        wait_catalog(g)
        st, d = chat(g)
        assert st == 200, d
        st, d = chat(g, stream=True)
        assert st == 200 and b"data: [DONE]" in d, d
    finally:
        out = g.stop_clean()
    # The provider's debug line names the native client for each exchange.
    sent = [l for l in out.splitlines() if "-> backend" in l and "/chat/completions" in l]
    assert len(sent) == 2, out[-4000:]
    assert all(l.endswith(", native)") == native for l in sent), sent


class _Proxy:
    """A forward proxy for plain http: takes absolute-form requests, records
    them, and forwards them to |target| (host, port)."""

    def __init__(self, target):
        self.seen = []
        proxy = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def _forward(self):
                proxy.seen.append((self.command, self.path))
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                u = urlsplit(self.path)
                if not u.scheme:  # origin-form: not sent through a proxy
                    self.send_response(400)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                c = http.client.HTTPConnection(*target, timeout=30)
                hdrs = {k: v for k, v in self.headers.items()
                        if k.lower() not in ("host", "proxy-connection", "connection")}
                c.request(self.command, u.path + (("?" + u.query) if u.query else ""),
                          body=body, headers=hdrs)
                r = c.getresponse()
                data = r.read()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                c.close()

            do_GET = _forward
            do_POST = _forward

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("var", ["http_proxy", "all_proxy"])
def test_proxy_keeps_curl(mock, var):
    # The upstream's name resolves nowhere: only the proxy can reach it.
    proxy = _Proxy(("127.0.0.1", mock.port))
    g = Gateway(env_without_proxies(TARGET_API_URL="http://upstream.invalid:9/v1",
                                    TARGET_API_KEY=UPSTREAM_KEY, MODELS_REFRESH_S=1,
                                    LOG_LEVEL="debug",
                                    **{var: f"http://127.0.0.1:{proxy.port}"}))
    try:
        wait_catalog(g)
        st, d = chat(g)
        assert st == 200, d
        st, d = chat(g, stream=True)
        assert st == 200 and b"data: [DONE]" in d, d
    finally:
        out = g.stop_clean()
        proxy.stop()
    posts = [p for m, p in proxy.seen if m == "POST"]
    assert posts == ["http://upstream.invalid:9/v1/chat/completions"] * 2, proxy.seen
    assert ", native)" not in out
