"""The completion hand-off between a worker and its completion-queue thread,
under load: many concurrent unary calls of every kind the front door answers
(built-in answers that go out in one batch with their close, errors, unknown
methods, calls through a gRPC backend whose client completions share the
worker's queue, streams), with and without deadlines, on two workers. Every
call must get its own answer; afterwards the idle gateway must not spin (the
worker gives the polling back to the blocking thread when it runs out of
work) and must still serve, cancel and shut down cleanly.

Run against both servers of the gRPC port: gRPC core's (GRPC_SERVER=core, the
hand-off above) and the gateway's own HTTP/2 server (native, the default),
where the same load meets the worker's loop directly."""
import os
import re
import threading
import time

import grpc
import pytest

from conftest import Gateway, echo_config, gateway_env, start_backend
from aigateway.v1 import inference_pb2 as pb, inference_pb2_grpc
from grpc_protos.health.v1 import health_pb2, health_pb2_grpc


def chat(text, model="echo"):
    return pb.ChatCompletionRequest(
        model=model, messages=[pb.ChatMessage(role="user", content=pb.MessageContent(text=text))])


@pytest.fixture(scope="module")
def backend():
    b = start_backend(delay_ms=0)
    yield b
    b.stop(must_stop=False)


@pytest.fixture(scope="module", params=["core", "native"])
def gateway(backend, request):
    g = Gateway(gateway_env(echo_config(backend.port), WORKERS="2", LOG_LEVEL="warn",
                            GRPC_SERVER=request.param))
    yield g
    g.stop_clean()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_round(ch, i):
    """One call of kind |i % 7|; raises AssertionError on a wrong answer."""
    inf = inference_pb2_grpc.InferenceStub(ch)
    kind = i % 7
    timeout = 20 if i % 2 else None
    if kind == 0:
        r, call = inf.ListModels.with_call(pb.ListModelsRequest(), timeout=timeout)
        assert r.object == "list" and r.data
        md = dict(call.initial_metadata())
        # Generated: "req_" and 24 hex digits (core), 24 hex digits (native,
        # as on the HTTP port).
        assert re.fullmatch(r"(req_)?[0-9a-f]{24}", md.get("x-request-id", "")), md
    elif kind == 1:
        rid = f"rid-{i}"
        _, call = inf.ListModels.with_call(pb.ListModelsRequest(), timeout=timeout,
                                           metadata=(("x-request-id", rid),))
        assert dict(call.initial_metadata()).get("x-request-id") == rid
    elif kind == 2:
        r = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(),
                                                  timeout=timeout)
        assert r.status == health_pb2.HealthCheckResponse.SERVING
    elif kind == 3:
        with pytest.raises(grpc.RpcError) as e:
            ch.unary_unary("/no.such.Service/Method")(b"", timeout=timeout)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    elif kind == 4:
        with pytest.raises(grpc.RpcError) as e:
            inf.CreateChatCompletion(pb.ChatCompletionRequest(), timeout=timeout)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    elif kind == 5:
        text = f"hand-off {i}"
        r = inf.CreateChatCompletion(chat(text), timeout=timeout)
        assert text in r.choices[0].message.content.text
    else:
        chunks = list(inf.StreamChatCompletion(chat(f"stream {i}"), timeout=timeout))
        assert chunks


def test_concurrent_mixed_unary_calls_each_get_their_answer(gateway):
    errors = []
    n_threads, per_thread = 8, 70

    def run(t):
        try:
            with grpc.insecure_channel(gateway.target) as ch:
                for k in range(per_thread):
                    one_round(ch, t * per_thread + k)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=run, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors[:5]


def test_idle_gateway_does_not_spin_after_a_burst(gateway):
    with grpc.insecure_channel(gateway.target) as ch:
        inf = inference_pb2_grpc.InferenceStub(ch)
        futures = [inf.ListModels.future(pb.ListModelsRequest()) for _ in range(300)]
        for f in futures:
            assert f.result(timeout=60).object == "list"
    time.sleep(0.5)
    before = cpu_seconds(gateway.p.pid)
    time.sleep(2.0)
    used = cpu_seconds(gateway.p.pid) - before
    # A worker that kept polling its completion queue would burn a core here.
    assert used < 0.5, f"idle gateway used {used:.2f}s of CPU in 2s"
    with grpc.insecure_channel(gateway.target) as ch:
        assert inference_pb2_grpc.InferenceStub(ch).ListModels(
            pb.ListModelsRequest(), timeout=10).object == "list"


def test_cancelled_and_expired_calls_amid_quick_ones(gateway):
    with grpc.insecure_channel(gateway.target) as ch:
        inf = inference_pb2_grpc.InferenceStub(ch)
        quick = [inf.ListModels.future(pb.ListModelsRequest(), timeout=30) for _ in range(100)]
        streams = [inf.StreamChatCompletion(chat("cancel me " * 50), timeout=30)
                   for _ in range(10)]
        for s in streams:
            s.cancel()
        with pytest.raises(grpc.RpcError) as e:
            inf.CreateChatCompletion(chat("late"), timeout=0.0001)
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        for f in quick:
            assert f.result(timeout=60).object == "list"
        r = inf.CreateChatCompletion(chat("still here"), timeout=30)
        assert "still here" in r.choices[0].message.content.text
