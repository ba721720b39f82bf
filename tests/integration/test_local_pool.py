"""The gateway's pool of local model-server processes: the gateway starts
the echo model server itself (a backend with a `command` and a `pool`),
scales it up under a load step and back down when quiet, restarts a member
killed with SIGKILL, and leaves no process behind when it stops."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import PY, ROOT, Gateway, gateway_env

DELAY_MS = 40
WORDS = " ".join(f"w{i}" for i in range(20))  # 20 tokens * 40 ms = ~0.8 s a stream


def free_port_range(n):
    """A base port with |n| consecutive free ports."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n > 65535:
            continue
        ok = True
        for p in range(base, base + n):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port range")


def pool_config(base):
    cmd = [PY, "-m", "aigw_model_server", "--backend", "echo", "--port", str(base),
           "--echo-delay-ms", str(DELAY_MS), "--max-concurrency", "2", "--grace", "2"]
    return {
        "backends": [{
            "name": "local", "provider": "grpc", "target": f"127.0.0.1:{base}", "command": cmd,
            "pool": {"min": 1, "max": 3, "up_after_ms": 300, "up_cooldown_ms": 600,
                     "down_after_ms": 1500, "down_cooldown_ms": 1000,
                     "queue_timeout_ms": 20000},
        }],
        "models": [{"name": "echo", "backend": "local"}],
    }


def marker(base):
    """pgrep pattern for this test's model-server processes (unique ports)."""
    return rf"aigw_model_server .*--port ({base}|{base + 1}|{base + 2}) "


def pids(base):
    r = subprocess.run(["pgrep", "-f", marker(base)], capture_output=True, text=True)
    return sorted(int(x) for x in r.stdout.split())


def members(gw):
    c = http.client.HTTPConnection("127.0.0.1", gw.http_port, timeout=5)
    c.request("GET", "/api/v1/monitoring/backends")
    r = c.getresponse()
    body = json.loads(r.read())
    c.close()
    return [b for b in body["backends"] if re.fullmatch(r"local\[\d+\]", b["name"])]


def active(gw):
    return sum(1 for m in members(gw) if m["state"] in ("starting", "serving", "restarting"))


def serving(gw):
    return sum(1 for m in members(gw) if m["state"] == "serving")


def wait_for(cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def stream_chat(gw, text=WORDS, timeout=30):
    """One streamed chat completion over HTTP; returns (status, content)."""
    c = http.client.HTTPConnection("127.0.0.1", gw.http_port, timeout=timeout)
    body = {"model": "echo", "stream": True, "messages": [{"role": "user", "content": text}]}
    c.request("POST", "/v1/chat/completions", json.dumps(body),
              {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read().decode()
    c.close()
    if r.status != 200:
        return r.status, data
    out = []
    for line in data.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            ev = json.loads(line[6:])
            for ch in ev.get("choices", []):
                out.append(ch.get("delta", {}).get("content") or "")
    return 200, "".join(out)


@pytest.fixture(scope="module")
def pool_gw():
    base = free_port_range(3)
    env = gateway_env(pool_config(base), PYTHONPATH=os.path.join(ROOT, "python"))
    g = Gateway(env)
    g.base = base
    try:
        wait_for(lambda: serving(g) == 1, 30, "the first member to serve")
        yield g
    finally:
        if g.p.poll() is None:
            g.stop_clean()


def test_load_step_scales_up_then_down(pool_gw):
    gw = pool_gw
    t0 = time.time()
    assert active(gw) == 1
    results, peak = [], [1]
    stop = threading.Event()

    def client():
        while not stop.is_set():
            results.append(stream_chat(gw))

    def watcher():
        while not stop.is_set():
            peak[0] = max(peak[0], active(gw))
            time.sleep(0.1)

    threads = [threading.Thread(target=client) for _ in range(8)]
    threads.append(threading.Thread(target=watcher))
    for t in threads:
        t.start()
    try:
        wait_for(lambda: peak[0] >= 2 and serving(gw) >= 2, 20, "the pool to grow")
        time.sleep(1.0)  # the new members take calls
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=40)
    assert results and all(s == 200 and c.strip() == WORDS for s, c in results), results[:3]
    assert peak[0] >= 2
    # Quiet: back to one process.
    wait_for(lambda: active(gw) == 1, 25, "the pool to shrink back to 1")
    wait_for(lambda: len(pids(gw.base)) == 1, 10, "the drained processes to exit")
    out = gw.output()
    assert re.search(r"backend local: scale up 1 -> 2 \(.*in flight \d+, queued \d+", out), out[-3000:]
    assert "backend local: scale down" in out and "draining member" in out
    assert time.time() - t0 < 60


def test_killed_member_restarts(pool_gw):
    gw = pool_gw
    wait_for(lambda: len(pids(gw.base)) == 1 and serving(gw) == 1, 20, "one serving member")
    before = pids(gw.base)
    os.kill(before[0], signal.SIGKILL)
    wait_for(lambda: pids(gw.base) and pids(gw.base) != before, 10, "a new process")
    # Calls made while it restarts wait for it (or fail fast once); afterwards all succeed.
    wait_for(lambda: serving(gw) == 1, 30, "the restarted member to serve")
    for _ in range(4):
        assert stream_chat(gw, "after restart") == (200, "after restart")
    assert "killed by signal 9; restart in" in gw.output()


def test_stop_leaves_no_process(pool_gw):
    gw = pool_gw
    assert pids(gw.base)
    gw.stop_clean()
    assert pids(gw.base) == []
