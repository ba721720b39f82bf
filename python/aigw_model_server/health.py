"""grpc.health.v1.Health (Check and Watch) on top of the generated stubs."""
from __future__ import annotations

import threading

import grpc
from grpc_protos.health.v1 import health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


class HealthServicer(health_pb2_grpc.HealthServicer):
    """Keeps one status per service name ("" is the whole server). Watch
    streams send the current status, then every change, until the client
    leaves or shutdown() is called."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._status: dict[str, int] = {}
        self._version = 0
        self._shutdown = False

    def set(self, service: str, status: int) -> None:
        with self._cv:
            self._status[service] = status
            self._version += 1
            self._cv.notify_all()

    def set_all(self, status: int) -> None:
        with self._cv:
            for k in self._status:
                self._status[k] = status
            self._version += 1
            self._cv.notify_all()

    def shutdown(self) -> None:
        """Marks everything NOT_SERVING and ends the Watch streams."""
        with self._cv:
            for k in self._status:
                self._status[k] = NOT_SERVING
            self._shutdown = True
            self._version += 1
            self._cv.notify_all()

    def Check(self, request, context):
        with self._cv:
            status = self._status.get(request.service)
        if status is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=status)

    def Watch(self, request, context):
        last = None
        while context.is_active():
            with self._cv:
                status = self._status.get(request.service, SERVICE_UNKNOWN)
                done = self._shutdown
                if status == last and not done:
                    self._cv.wait(timeout=0.5)
                    continue
            if status != last:
                last = status
                yield health_pb2.HealthCheckResponse(status=status)
            if done:
                return
