"""The gRPC server: Inference + health + reflection around one backend.

The server listens at once and answers health NOT_SERVING (and Inference calls
UNAVAILABLE) while the backend loads in a background thread (the tiny-lm
backend may be training its model on first run); then it turns SERVING.
"""
from __future__ import annotations

import logging
import threading
from concurrent import futures
from typing import Optional

import grpc
from aigateway.v1 import inference_pb2, inference_pb2_grpc
from grpc_protos.health.v1 import health_pb2_grpc

from .backends.base import Backend
from .health import NOT_SERVING, SERVING, HealthServicer
from .reflection import add_reflection
from .servicer import InferenceServicer

log = logging.getLogger("aigw.server")

INFERENCE_SERVICE = inference_pb2.DESCRIPTOR.services_by_name["Inference"].full_name
HEALTH_SERVICE = "grpc.health.v1.Health"
# Threads beyond --max-concurrency for health watches, reflection, model
# listing and for answering RESOURCE_EXHAUSTED quickly.
EXTRA_THREADS = 16


class ModelServer:
    def __init__(self, backend: Backend, port: int = 50061, host: str = "[::]",
                 max_concurrency: int = 8, batching: bool = True,
                 batch_max_items: Optional[int] = None, batch_wait_ms: float = 3.0) -> None:
        self.backend = backend
        self.address = f"{host}:{port}"
        self.servicer = InferenceServicer(backend, max_concurrency, batching,
                                          batch_max_items, batch_wait_ms)
        self.health = HealthServicer()
        self.loaded = threading.Event()
        self.load_failed = threading.Event()
        self.load_error: Optional[BaseException] = None
        workers = self.servicer.max_concurrency + EXTRA_THREADS
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers,
                                                              thread_name_prefix="rpc"),
                                   maximum_concurrent_rpcs=workers)
        inference_pb2_grpc.add_InferenceServicer_to_server(self.servicer, self._server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        add_reflection(self._server, [INFERENCE_SERVICE, HEALTH_SERVICE])
        for name in ("", INFERENCE_SERVICE):
            self.health.set(name, NOT_SERVING)
        self.port = 0

    def start(self, load_in_background: bool = True) -> int:
        """Binds, starts serving and starts loading the backend. Returns the
        bound port (useful with port 0)."""
        self.port = self._server.add_insecure_port(self.address)
        if not self.port:
            raise RuntimeError(f"cannot listen on {self.address}")
        self._server.start()
        log.info("listening on %s (port %d), backend %s", self.address, self.port,
                 self.backend.name)
        if load_in_background:
            threading.Thread(target=self._load, name="backend-load", daemon=True).start()
        else:
            self._load()
        return self.port

    def _load(self) -> None:
        try:
            self.backend.load()
            self.servicer.mark_ready()
        except BaseException as e:  # reported by the caller (main exits non-zero)
            log.exception("backend %s failed to load", self.backend.name)
            self.load_error = e
            self.load_failed.set()
            return
        for name in ("", INFERENCE_SERVICE):
            self.health.set(name, SERVING)
        log.info("backend %s ready: SERVING %s", self.backend.name,
                 ", ".join(m.id for m in self.backend.models()))
        self.loaded.set()

    def wait_ready(self, timeout: Optional[float] = None) -> bool:
        return self.loaded.wait(timeout)

    def stop(self, grace: float = 10.0) -> None:
        """Stops accepting RPCs, lets in-flight ones finish for up to |grace|
        seconds, cancels the rest, then releases the backend."""
        self.health.shutdown()
        self._server.stop(grace).wait()
        self.servicer.close()
        self.backend.close()
        log.info("stopped")
