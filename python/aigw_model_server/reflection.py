"""gRPC server reflection (grpc.reflection.v1 and v1alpha) on top of the
generated stubs, answering from the default protobuf descriptor pool (where
every imported *_pb2 module registered its file).

Supported requests: list_services, file_by_filename, file_containing_symbol
(messages, enums, services, methods, fields), file_containing_extension and
all_extension_numbers_of_type (answered from the pool's extension registry).
File answers carry the file plus all its transitive dependencies, each once,
dependencies first.
"""
from __future__ import annotations

from typing import Iterable

import grpc
from google.protobuf import descriptor_pool
from grpc_protos.reflection.v1 import reflection_pb2 as v1_pb2
from grpc_protos.reflection.v1 import reflection_pb2_grpc as v1_grpc
from grpc_protos.reflection.v1alpha import reflection_pb2 as v1alpha_pb2
from grpc_protos.reflection.v1alpha import reflection_pb2_grpc as v1alpha_grpc

SERVICE_NAMES = ("grpc.reflection.v1.ServerReflection",
                 "grpc.reflection.v1alpha.ServerReflection")


def _with_deps(fd) -> list[bytes]:
    """Serialized FileDescriptorProtos of |fd| and its transitive imports."""
    seen: set[str] = set()
    order: list = []

    def visit(f) -> None:
        if f.name in seen:
            return
        seen.add(f.name)
        for dep in f.dependencies:
            visit(dep)
        order.append(f)

    visit(fd)
    # The requested file first (grpcurl and buf accept any order).
    order.remove(fd)
    return [fd.serialized_pb] + [f.serialized_pb for f in order]


def _find_symbol_file(pool, symbol: str):
    try:
        return pool.FindFileContainingSymbol(symbol)
    except KeyError:
        pass
    # Methods ("pkg.Service.Method") and fields ("pkg.Msg.field"): look up the parent.
    parent, _, child = symbol.rpartition(".")
    if parent:
        try:
            svc = pool.FindServiceByName(parent)
            if child in svc.methods_by_name:
                return svc.file
        except KeyError:
            pass
        try:
            msg = pool.FindMessageTypeByName(parent)
            if child in msg.fields_by_name:
                return msg.file
        except KeyError:
            pass
    raise KeyError(symbol)


def _make_servicer(pb2, base):
    class Servicer(base):
        def __init__(self, service_names: Iterable[str], pool=None) -> None:
            self._services = sorted(service_names)
            self._pool = pool or descriptor_pool.Default()

        def _answer(self, req):
            resp = pb2.ServerReflectionResponse(valid_host=req.host, original_request=req)
            kind = req.WhichOneof("message_request")
            try:
                if kind == "list_services":
                    resp.list_services_response.service.extend(
                        pb2.ServiceResponse(name=n) for n in self._services)
                elif kind == "file_by_filename":
                    fd = self._pool.FindFileByName(req.file_by_filename)
                    resp.file_descriptor_response.file_descriptor_proto.extend(_with_deps(fd))
                elif kind == "file_containing_symbol":
                    fd = _find_symbol_file(self._pool, req.file_containing_symbol)
                    resp.file_descriptor_response.file_descriptor_proto.extend(_with_deps(fd))
                elif kind == "file_containing_extension":
                    ext = req.file_containing_extension
                    msg = self._pool.FindMessageTypeByName(ext.containing_type)
                    fd = self._pool.FindExtensionByNumber(msg, ext.extension_number).file
                    resp.file_descriptor_response.file_descriptor_proto.extend(_with_deps(fd))
                elif kind == "all_extension_numbers_of_type":
                    msg = self._pool.FindMessageTypeByName(req.all_extension_numbers_of_type)
                    r = resp.all_extension_numbers_response
                    r.base_type_name = msg.full_name
                    r.extension_number.extend(
                        sorted(e.number for e in self._pool.FindAllExtensions(msg)))
                else:
                    resp.error_response.error_code = grpc.StatusCode.INVALID_ARGUMENT.value[0]
                    resp.error_response.error_message = "no request set"
            except KeyError as e:
                resp.ClearField("message_response")
                resp.error_response.error_code = grpc.StatusCode.NOT_FOUND.value[0]
                resp.error_response.error_message = f"not found: {e.args[0] if e.args else kind}"
            return resp

        def ServerReflectionInfo(self, request_iterator, context):
            for req in request_iterator:
                yield self._answer(req)

    return Servicer


ReflectionV1Servicer = _make_servicer(v1_pb2, v1_grpc.ServerReflectionServicer)
ReflectionV1AlphaServicer = _make_servicer(v1alpha_pb2, v1alpha_grpc.ServerReflectionServicer)


def add_reflection(server: grpc.Server, service_names: Iterable[str]) -> None:
    """Serves reflection v1 and v1alpha for |service_names| (plus themselves)."""
    names = set(service_names) | set(SERVICE_NAMES)
    v1_grpc.add_ServerReflectionServicer_to_server(ReflectionV1Servicer(names), server)
    v1alpha_grpc.add_ServerReflectionServicer_to_server(ReflectionV1AlphaServicer(names), server)
