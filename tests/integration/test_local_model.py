"""The local model through the gateway: the gateway starts the Python model
server itself with the real tiny-lm backend (trained on first run, here
with the fast `test` preset into a temporary cache), and the official
`openai` npm SDK talks to it: streamed tokens arrive one by one, the same
seed gives the same text, max_tokens and stop are honoured, embeddings of
identical inputs match and differ from unrelated ones."""
import json
import math
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import PY, ROOT, Gateway, free_port, gateway_env

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_OK = shutil.which("node") and os.path.isdir(os.path.join(HERE, "node_modules", "openai"))


def backends(gw):
    out = subprocess.run(["curl", "-s", f"http://127.0.0.1:{gw.http_port}/api/v1/monitoring/backends"],
                         capture_output=True, text=True, timeout=10).stdout
    return json.loads(out)["backends"]


@pytest.fixture(scope="module")
def tiny_gw():
    port = free_port()
    cache = tempfile.mkdtemp(prefix="aigw-tiny-")
    cmd = [PY, "-m", "aigw_model_server", "--backend", "tiny-lm", "--tiny-preset", "test",
           "--port", str(port)]
    config = {"backends": [{"name": "local", "provider": "grpc", "target": f"127.0.0.1:{port}",
                            "command": cmd}],
              "models": [{"name": "tiny-lm", "backend": "local"}]}
    env = gateway_env(config, PYTHONPATH=os.path.join(ROOT, "python"), AIGW_CACHE_DIR=cache)
    g = Gateway(env)
    try:
        deadline = time.time() + 120
        while not any(b["name"] == "local[0]" and b["state"] == "serving" for b in backends(g)):
            assert time.time() < deadline, "tiny-lm not serving after 120 s:\n" + g.output()[-3000:]
            assert g.p.poll() is None, g.output()[-3000:]
            time.sleep(0.25)
        g.port = port
        yield g
    finally:
        if g.p.poll() is None:
            g.stop_clean()
        shutil.rmtree(cache, ignore_errors=True)
    r = subprocess.run(["pgrep", "-f", f"aigw_model_server .*--port {port}$"], capture_output=True)
    assert r.returncode == 1, "a model-server process was left behind"


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


@pytest.mark.skipif(not NODE_OK, reason="node or the openai npm package is missing")
def test_openai_sdk_against_tiny_lm(tiny_gw):
    assert "training one (once)" in tiny_gw.output()  # first run in an empty cache
    r = subprocess.run(["node", os.path.join(HERE, "local_model_check.mjs"),
                        f"http://127.0.0.1:{tiny_gw.http_port}/v1", "tiny-lm"],
                       capture_output=True, text=True, timeout=120, cwd=HERE)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for k, v in out.items():
        assert not (isinstance(v, dict) and "error" in v), (k, v)

    s = out["stream"]
    assert len(s["chunks"]) >= 4 and all(c["content"] for c in s["chunks"]), s
    assert s["finish"] in ("length", "stop")
    assert s["text"] == out["greedy"]["content"][:len(s["text"])]  # same greedy text

    assert out["seed_a"]["content"] == out["seed_b"]["content"]
    assert out["seed_a"]["content"]
    # A different seed usually gives different text (sampling at temperature 1).
    assert out["seed_c"]["content"] != out["seed_a"]["content"]

    mt = out["max_tokens"]
    assert mt["finish"] == "length" and mt["usage"]["completion_tokens"] == 5, mt

    st = out["stop"]
    assert st["finish"] == "stop" and st["stop"] not in st["content"], st
    assert st["content"] == st["prefix"], st

    e = out["embeddings"]
    assert len(e) == 3 and len(e[0]) >= 16  # 128 dims by default, fewer with the test preset
    # Identical inputs match (up to float noise of batched inference) ...
    assert max(abs(x - y) for x, y in zip(e[0], e[1])) < 1e-4
    assert cosine(e[0], e[1]) > 0.99999
    # ... and an unrelated input lands elsewhere.
    assert max(abs(x - y) for x, y in zip(e[0], e[2])) > 1e-3
    assert cosine(e[0], e[2]) < cosine(e[0], e[1])


def test_local_route_over_curl(tiny_gw):
    body = {"model": "tiny-lm", "messages": [{"role": "user", "content": "The king"}],
            "max_tokens": 6, "temperature": 0}
    r = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", "-H", "Content-Type: application/json",
                        "-d", json.dumps(body),
                        f"http://127.0.0.1:{tiny_gw.http_port}/local/chat/completions"],
                       capture_output=True, text=True, timeout=60)
    text, code = r.stdout.rsplit("\n", 1)
    assert code == "200", text
    d = json.loads(text)
    assert d["model"] == "tiny-lm" and d["choices"][0]["message"]["content"]
    assert d["usage"]["completion_tokens"] == 6
