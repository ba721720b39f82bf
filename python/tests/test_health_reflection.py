"""grpc.health.v1 and server reflection (v1 and v1alpha)."""
from __future__ import annotations

import threading

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_protos.health.v1 import health_pb2, health_pb2_grpc
from grpc_protos.reflection.v1 import reflection_pb2 as r1
from grpc_protos.reflection.v1 import reflection_pb2_grpc as r1_grpc
from grpc_protos.reflection.v1alpha import reflection_pb2 as r1a
from grpc_protos.reflection.v1alpha import reflection_pb2_grpc as r1a_grpc




def test_health_check(echo_server):
    h = health_pb2_grpc.HealthStub(echo_server.channel)
    for svc in ("", "aigateway.v1.Inference"):
        r = h.Check(health_pb2.HealthCheckRequest(service=svc))
        assert r.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as e:
        h.Check(health_pb2.HealthCheckRequest(service="nope.Service"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_health_not_serving_while_loading_then_watch_sees_serving():
    from aigw_model_server.backends.echo import EchoBackend
    from aigw_model_server.server import ModelServer

    gate = threading.Event()

    class SlowLoad(EchoBackend):
        def load(self):
            gate.wait(5)

    srv = ModelServer(SlowLoad(), port=0, host="127.0.0.1")
    port = srv.start()
    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        h = health_pb2_grpc.HealthStub(ch)
        assert h.Check(health_pb2.HealthCheckRequest()).status == \
            health_pb2.HealthCheckResponse.NOT_SERVING
        from aigateway.v1 import inference_pb2_grpc
        from helpers import chat
        with pytest.raises(grpc.RpcError) as e:
            inference_pb2_grpc.InferenceStub(ch).CreateChatCompletion(chat("echo", "hi"))
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        watch = h.Watch(health_pb2.HealthCheckRequest(service="aigateway.v1.Inference"),
                        timeout=5)
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        gate.set()
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        unknown = h.Watch(health_pb2.HealthCheckRequest(service="x.Y"), timeout=5)
        assert next(unknown).status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
        unknown.cancel()
        srv.health.shutdown()  # shutdown ends watches after NOT_SERVING
        assert [r.status for r in watch] == [health_pb2.HealthCheckResponse.NOT_SERVING]
    finally:
        ch.close()
        srv.stop(0.5)


@pytest.mark.parametrize("pb2,grpc_mod", [(r1, r1_grpc), (r1a, r1a_grpc)], ids=["v1", "v1alpha"])
def test_reflection(echo_server, pb2, grpc_mod):
    stub = grpc_mod.ServerReflectionStub(echo_server.channel)
    reqs = [
        pb2.ServerReflectionRequest(list_services=""),
        pb2.ServerReflectionRequest(file_containing_symbol="aigateway.v1.Inference"),
        pb2.ServerReflectionRequest(file_by_filename="aigateway/v1/inference.proto"),
        pb2.ServerReflectionRequest(
            file_containing_symbol="aigateway.v1.Inference.StreamChatCompletion"),
        pb2.ServerReflectionRequest(file_containing_symbol="grpc.health.v1.Health"),
        pb2.ServerReflectionRequest(file_containing_symbol="no.such.Symbol"),
        pb2.ServerReflectionRequest(file_by_filename="no/such.proto"),
    ]
    resps = list(stub.ServerReflectionInfo(iter(reqs)))
    assert len(resps) == len(reqs)
    names = {s.name for s in resps[0].list_services_response.service}
    assert {"aigateway.v1.Inference", "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection"} <= names
    for resp in resps[1:4]:
        files = [descriptor_pb2.FileDescriptorProto.FromString(b)
                 for b in resp.file_descriptor_response.file_descriptor_proto]
        by_name = {f.name: f for f in files}
        assert files[0].name == "aigateway/v1/inference.proto"
        assert "Inference" in [s.name for s in files[0].service]
        # transitive dependencies: annotations -> http, descriptor; wrappers; struct
        assert {"google/api/annotations.proto", "google/api/http.proto",
                "google/protobuf/descriptor.proto", "google/protobuf/wrappers.proto",
                "google/protobuf/struct.proto"} <= set(by_name)
        assert len(files) == len(by_name)  # each file once
        for f in files:  # closed under imports
            assert set(f.dependency) <= set(by_name)
    health = [descriptor_pb2.FileDescriptorProto.FromString(b)
              for b in resps[4].file_descriptor_response.file_descriptor_proto]
    assert health[0].package == "grpc.health.v1"
    for resp in resps[5:]:
        assert resp.WhichOneof("message_response") == "error_response"
        assert resp.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
