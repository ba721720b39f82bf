"""The server as a process: start-up, SIGTERM with a request in flight, a
backend that cannot load, and echo staying free of torch."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import grpc
import pytest
from aigateway.v1 import inference_pb2_grpc
from grpc_protos.health.v1 import health_pb2, health_pb2_grpc

from conftest import PYTHON_DIR, STUBS
from helpers import chat

PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def _env():
    env = dict(os.environ, AIGW_STUBS=STUBS, PYTHONPATH=PYTHON_DIR)
    return env


def _spawn(*args):
    p = subprocess.Popen([PY, "-m", "aigw_model_server", "--port", "0", "--host", "127.0.0.1",
                          *args], cwd=PYTHON_DIR, env=_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    assert "listening on port" in line, (line, p.stderr.read() if p.poll() is not None else "")
    return p, int(line.split()[-1])


def test_sigterm_finishes_in_flight_stream_and_exits_0():
    p, port = _spawn("--backend", "echo", "--echo-delay-ms", "30", "--grace", "5")
    try:
        ch = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = inference_pb2_grpc.InferenceStub(ch)
        grpc.channel_ready_future(ch).result(timeout=5)
        words = " ".join(f"w{i}" for i in range(15))
        stream = stub.StreamChatCompletion(chat("echo", words))
        first = next(stream)
        assert first.choices[0].delta.role == "assistant"
        t0 = time.time()
        p.send_signal(signal.SIGTERM)
        rest = list(stream)  # the in-flight stream still completes
        text = "".join(c.choices[0].delta.content.value for c in rest if c.choices)
        assert text == words
        assert rest[-1].choices[0].finish_reason == "stop"
        # new calls are refused while draining / after stop
        try:
            stub.CreateChatCompletion(chat("echo", "late"), timeout=1)
            refused = False
        except grpc.RpcError:
            refused = True
        assert refused
        ch.close()  # an idle Python channel would not read the server's GOAWAY
        assert p.wait(timeout=10) == 0
        assert time.time() - t0 < 5
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_hf_backend_without_transformers_fails_clearly():
    import importlib.util
    if importlib.util.find_spec("transformers") is not None:
        pytest.skip("transformers is installed here")
    r = subprocess.run([PY, "-m", "aigw_model_server", "--port", "0", "--backend", "hf",
                        "--model-dir", "/nonexistent"], cwd=PYTHON_DIR, env=_env(),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "transformers" in r.stderr and "Traceback" not in r.stderr


def test_echo_backend_does_not_import_torch():
    code = ("import sys; from aigw_model_server import stubs; stubs.setup();"
            "from aigw_model_server.backends import create; "
            "from aigw_model_server.server import ModelServer; "
            "s = ModelServer(create('echo'), port=0, host='127.0.0.1'); s.start(False); "
            "s.stop(0); print('torch' in sys.modules)")
    r = subprocess.run([PY, "-c", code], cwd=PYTHON_DIR, env=_env(), capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_missing_stubs_message():
    env = _env()
    r = subprocess.run([PY, "-m", "aigw_model_server", "--stubs", "/nonexistent"],
                       cwd=PYTHON_DIR, env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "python_stubs" in r.stderr


def test_tiny_lm_trains_on_first_run_then_reuses_the_cache(tmp_path):
    pytest.importorskip("torch")
    env = dict(_env(), AIGW_CACHE_DIR=str(tmp_path), AIGW_TRAIN_THREADS="1")
    logs = []
    for run in range(2):
        p = subprocess.Popen([PY, "-m", "aigw_model_server", "--port", "0", "--host",
                              "127.0.0.1", "--backend", "tiny-lm", "--tiny-preset", "test"],
                             cwd=PYTHON_DIR, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            port = int(p.stdout.readline().split()[-1])
            ch = grpc.insecure_channel(f"127.0.0.1:{port}")
            health = health_pb2_grpc.HealthStub(ch)
            deadline = time.time() + 60
            while health.Check(health_pb2.HealthCheckRequest(), timeout=5).status != \
                    health_pb2.HealthCheckResponse.SERVING:
                assert time.time() < deadline and p.poll() is None
                time.sleep(0.1)
            r = inference_pb2_grpc.InferenceStub(ch).CreateChatCompletion(
                chat("tiny-lm", "the", max_tokens=4))
            assert r.usage.completion_tokens >= 1
            ch.close()
        finally:
            p.send_signal(signal.SIGTERM)
            assert p.wait(timeout=20) == 0
        logs.append(p.stderr.read())
    metrics = list(tmp_path.glob("tiny-lm/*/metrics.json"))
    assert len(metrics) == 1
    assert "training one" in logs[0]
    assert "training one" not in logs[1] and "tiny-lm loaded" in logs[1]
