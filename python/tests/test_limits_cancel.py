"""Concurrency limit and cancellation, with a slow echo backend."""
from __future__ import annotations

import time

import grpc
import pytest

from conftest import start
from helpers import chat

LONG = " ".join(f"w{i}" for i in range(200))


@pytest.fixture()
def slow_server():
    from aigw_model_server.backends.echo import EchoBackend
    r = start(EchoBackend(delay_ms=20), max_concurrency=1)
    yield r
    r.close()


def test_resource_exhausted_over_limit_then_recovers(slow_server):
    stream = slow_server.stub.StreamChatCompletion(chat("echo", LONG))
    next(stream)  # the first request holds the only slot
    with pytest.raises(grpc.RpcError) as e:
        slow_server.stub.CreateChatCompletion(chat("echo", "hi"))
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(grpc.RpcError) as e:
        list(slow_server.stub.StreamChatCompletion(chat("echo", "hi")))
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert slow_server.servicer.stats["rejected"] == 2
    # ListModels is not limited
    assert slow_server.stub.ListModels(__import__("aigateway.v1.inference_pb2",
                                                  fromlist=["x"]).ListModelsRequest()).data
    stream.cancel()
    deadline = time.time() + 2
    while True:  # the slot comes back as soon as the cancellation lands
        try:
            r = slow_server.stub.CreateChatCompletion(chat("echo", "hi"))
            break
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and time.time() < deadline
            time.sleep(0.02)
    assert r.choices[0].message.content.text == "hi"


def test_cancel_stops_generation(slow_server):
    stats = slow_server.servicer.stats
    before = stats["tokens_generated"]
    stream = slow_server.stub.StreamChatCompletion(chat("echo", LONG))
    got = [next(stream) for _ in range(4)]  # role chunk + 3 tokens
    assert got[-1].choices[0].delta.content.value == " w2"
    stream.cancel()
    time.sleep(0.3)
    generated = stats["tokens_generated"] - before
    assert generated <= 6, generated  # not the 200 of the whole answer
    time.sleep(0.2)
    assert stats["tokens_generated"] - before == generated  # and it stays stopped


def test_deadline_stops_unary_generation(slow_server):
    stats = slow_server.servicer.stats
    before = stats["tokens_generated"]
    with pytest.raises(grpc.RpcError) as e:
        slow_server.stub.CreateChatCompletion(chat("echo", LONG), timeout=0.2)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    time.sleep(0.3)
    generated = stats["tokens_generated"] - before
    assert generated < 40, generated
    time.sleep(0.3)  # 15 more tokens if the handler were still generating
    assert stats["tokens_generated"] - before == generated
    assert stats["cancelled"] == 1
    # the slot is free again
    r = slow_server.stub.CreateChatCompletion(chat("echo", "ok"))
    assert r.choices[0].message.content.text == "ok"
