"""Shared fixtures: stubs on sys.path, in-process servers over real grpcio."""
from __future__ import annotations

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.dirname(HERE)
if PYTHON_DIR not in sys.path:
    sys.path.insert(0, PYTHON_DIR)

from aigw_model_server import stubs  # noqa: E402

try:
    STUBS = stubs.setup()
except stubs.StubsNotFound as e:  # fail loudly: the suite cannot run without them
    raise pytest.UsageError(str(e))

import grpc  # noqa: E402

from aigateway.v1 import inference_pb2_grpc as pb_grpc  # noqa: E402


class Running:
    """A started ModelServer plus a channel and an Inference stub to it."""

    def __init__(self, backend, **kw) -> None:
        from aigw_model_server.server import ModelServer
        self.server = ModelServer(backend, port=0, host="127.0.0.1", **kw)
        self.port = self.server.start(load_in_background=False)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = pb_grpc.InferenceStub(self.channel)
        self.servicer = self.server.servicer

    def close(self) -> None:
        self.channel.close()
        self.server.stop(grace=0.5)


def start(backend, **kw) -> Running:
    return Running(backend, **kw)


@pytest.fixture(scope="module")
def echo_server():
    from aigw_model_server.backends.echo import EchoBackend
    r = start(EchoBackend(delay_ms=0), max_concurrency=4)
    yield r
    r.close()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny-lm trained once per session with the 'test' preset (seconds)."""
    import torch
    torch.set_num_threads(1)
    from aigw_model_server.tiny_lm import train as trainer
    out = str(tmp_path_factory.mktemp("tiny-lm"))
    trainer.train(out, trainer.PRESETS["test"], log=lambda s: None, threads=1)
    return out


@pytest.fixture(scope="module")
def tiny_server(tiny_model_dir):
    from aigw_model_server.backends.tiny_lm import TinyLMBackend
    r = start(TinyLMBackend(model_dir=tiny_model_dir, preset="test"), max_concurrency=4,
              batch_wait_ms=50.0)  # generous: the test machine is shared
    yield r
    r.close()
