"""BUSY_POLL_US: a worker that has just been woken keeps polling its
descriptors for that long instead of sleeping (docs/config.md). Checked here:
with polling on, back-to-back requests do not put the gateway's threads to
sleep between them (voluntary context switches, /proc), without it each
request does; answers, streams and gRPC work the same; an idle polling
gateway goes back to sleep; SIGTERM still stops it cleanly.
The upstream is mock_openai.py (the OpenAI wire format) on the native client."""
import glob
import http.client
import json
import os
import time

import grpc
import pytest

from conftest import Gateway, gateway_env
from mock_openai import MockOpenAI

from aigateway.v1 import inference_pb2 as pb, inference_pb2_grpc as pb_grpc

KEY = "sk-upstream-busy-poll-0123"


@pytest.fixture(scope="module")
def mock():
    m = MockOpenAI(api_key=KEY).start()
    yield m
    m.stop()


def start(mock, busy_poll_us):
    g = Gateway(gateway_env(TARGET_API_URL=mock.base_url, TARGET_API_KEY=KEY, WORKERS=1,
                            LOG_LEVEL="warn", BUSY_POLL_US=busy_poll_us))
    conn = http.client.HTTPConnection("127.0.0.1", g.http_port, timeout=30)
    deadline = time.time() + 20
    while time.time() < deadline:  # the model catalog loads in the background
        conn.request("GET", "/v1/models")
        r = conn.getresponse()
        body = r.read()
        if r.status == 200 and any(m["id"] == "gpt-mock" for m in json.loads(body)["data"]):
            return g, conn
        time.sleep(0.2)
    g.stop()
    raise AssertionError("the model catalog never loaded")


def chat(conn, stream=False):
    body = {"model": "gpt-mock", "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        body["stream"] = True
    conn.request("POST", "/v1/chat/completions", body=json.dumps(body),
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    return r.status, r.read()


def voluntary_switches(pid):
    n = 0
    for f in glob.glob(f"/proc/{pid}/task/*/status"):
        try:
            with open(f) as s:
                for line in s:
                    if line.startswith("voluntary_ctxt_switches:"):
                        n += int(line.split()[1])
        except FileNotFoundError:
            pass  # a thread that just ended
    return n


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as s:
        fields = s.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sleeps_per_burst(g, conn, n=40):
    chat(conn)  # wakes the worker: the burst below falls in its polling window
    before = voluntary_switches(g.p.pid)
    for _ in range(n):
        st, d = chat(conn)
        assert st == 200, d
    return voluntary_switches(g.p.pid) - before


def sleeps_with(mock, busy_poll_us):
    g, conn = start(mock, busy_poll_us)
    try:
        return sleeps_per_burst(g, conn)
    finally:
        conn.close()
        g.stop_clean()


def test_polling_worker_does_not_sleep_between_requests(mock):
    # One second of polling after a wake-up covers the whole burst; without
    # polling the worker sleeps at least once per request (waiting for the
    # upstream's answer, then for the client's next request).
    polled = sleeps_with(mock, 1000000)
    slept = sleeps_with(mock, 0)
    assert slept >= 40, (polled, slept)
    assert polled < 20, (polled, slept)


def test_polling_gateway_serves_and_goes_idle(mock):
    g, conn = start(mock, 2000)
    try:
        st, d = chat(conn)
        assert st == 200 and json.loads(d)["choices"][0]["message"]["content"], d
        st, d = chat(conn, stream=True)
        assert st == 200 and d.rstrip().endswith(b"data: [DONE]"), d
        # gRPC: completions come through the completion-queue thread's
        # hand-off, which must wake a worker whether it polls or sleeps.
        with grpc.insecure_channel(g.target) as ch:
            models = pb_grpc.InferenceStub(ch).ListModels(pb.ListModelsRequest(), timeout=10)
            assert any(m.id == "gpt-mock" for m in models.data)
        # Idle: the window ends and the worker sleeps. A worker that kept
        # spinning would burn about a second of CPU per second here.
        time.sleep(0.5)
        c0 = cpu_seconds(g.p.pid)
        time.sleep(2.0)
        assert cpu_seconds(g.p.pid) - c0 < 0.5
    finally:
        conn.close()
        g.stop_clean()
