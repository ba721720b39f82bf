"""HTTP soak in front of an OpenAI-compatible upstream (mock_openai.py, which
speaks OpenAI's wire format): 3,000 requests over HTTP/1.1 keep-alive, a
tenth of them streams the client abandons after the first event, through the
OpenAI provider and the curl loop. Every call ends right, the gateway's RSS is
flat once warm, and LeakSanitizer finds nothing at exit (stop_clean)."""
import concurrent.futures as cf
import http.client
import json
import random
import socket

from conftest import Gateway, gateway_env
from mock_openai import MockOpenAI
from test_soak import rss_kib

TOTAL = 3000


def test_http_soak_with_abandoned_streams():
    mock = MockOpenAI(api_key="sk-up").start()
    g = Gateway(gateway_env(TARGET_API_URL=mock.base_url, TARGET_API_KEY="sk-up",
                            ASAN_OPTIONS="detect_leaks=1:quarantine_size_mb=8:malloc_context_size=4"))
    try:
        rng = random.Random(11)
        kinds = ["abandon"] * (TOTAL // 10) + ["chat"] * (TOTAL - TOTAL // 10)
        rng.shuffle(kinds)
        body = json.dumps({"model": "gpt-mock", "messages": [{"role": "user", "content": "hi"}]})
        sbody = json.dumps({"model": "gpt-mock", "stream": True, "mock_events": 20,
                            "mock_delay_ms": 5,
                            "messages": [{"role": "user", "content": "hi"}]}).encode()

        def one(kind):
            if kind == "abandon":
                s = socket.create_connection(("127.0.0.1", g.http_port), timeout=30)
                s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Type: application/json\r\nContent-Length: "
                          + str(len(sbody)).encode() + b"\r\n\r\n" + sbody)
                assert b"data: {" in s.recv(65536)
                s.close()
                return "abandoned"
            c = http.client.HTTPConnection("127.0.0.1", g.http_port, timeout=30)
            c.request("POST", "/v1/chat/completions", body=body,
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            d = r.read()
            c.close()
            assert r.status == 200, d
            assert json.loads(d)["choices"][0]["message"]["content"]
            return "ok"

        # Wait for the catalog's first listing.
        for _ in range(100):
            try:
                if one("chat") == "ok":
                    break
            except AssertionError:
                import time
                time.sleep(0.1)
        samples = []
        with cf.ThreadPoolExecutor(max_workers=16) as pool:
            for start in range(0, TOTAL, 500):
                results = list(pool.map(one, kinds[start:start + 500]))
                assert all(x in ("ok", "abandoned") for x in results)
                samples.append(rss_kib(g.p.pid))
        warm = samples[len(samples) // 2]
        print(f"RSS KiB per 500 requests: {samples}")
        assert samples[-1] - warm < 8 * 1024, samples
    finally:
        g.stop_clean()
        mock.stop()
