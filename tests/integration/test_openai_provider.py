"""The OpenAI-compatible provider end to end: the real gateway binary in
front of the mock OpenAI upstream (mock_openai.py, in this process),
called through the gateway's gRPC port with grpcio stubs. The mock records
every request, so the tests check both sides: what the client got and
exactly what the upstream was sent."""
import base64
import http.client
import json
import os
import struct
import sys
import threading
import time

import grpc
import pytest
from google.protobuf import struct_pb2, wrappers_pb2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from conftest import Gateway, free_port, gateway_env  # noqa: E402
from mock_openai import MockOpenAI, embedding_vector  # noqa: E402
from aigateway.v1 import admin_pb2, admin_pb2_grpc  # noqa: E402
from aigateway.v1 import inference_pb2 as pb, inference_pb2_grpc  # noqa: E402

UPSTREAM_KEY = "sk-upstream-secret-123"
CLIENT_KEY = "Bearer client-credential-must-not-leak"


def chat(text, model="gpt-mock", **kw):
    return pb.ChatCompletionRequest(
        model=model,
        messages=[pb.ChatMessage(role="user", content=pb.MessageContent(text=text))], **kw)


def extra(**members):
    s = struct_pb2.Struct()
    s.update(members)
    return s


def wait_models(stub, want, timeout=20.0):
    deadline = time.time() + timeout
    ids = set()
    while time.time() < deadline:
        ids = {m.id for m in stub.ListModels(pb.ListModelsRequest(), timeout=5).data}
        if want <= ids:
            return ids
        time.sleep(0.2)
    raise AssertionError(f"catalog never listed {want - ids}: {ids}")


@pytest.fixture(scope="module")
def mock():
    m = MockOpenAI(api_key=UPSTREAM_KEY).start()
    yield m
    m.stop()


# Every test runs against both upstream clients: the native HTTP/1.1 client
# (the default for http://) and libcurl (UPSTREAM_CLIENT=curl; https://).
@pytest.fixture(scope="module", params=["curl", "native"])
def client(request):
    return request.param


@pytest.fixture(scope="module")
def gw(mock, client):
    # TARGET_API_URL mode: no CONFIG_FILE, one upstream, every model ("*").
    g = Gateway(gateway_env(TARGET_API_URL=mock.base_url, TARGET_API_KEY=UPSTREAM_KEY,
                            MODELS_REFRESH_S=1, WORKERS=2, UPSTREAM_CLIENT=client))
    yield g
    out = g.stop_clean()
    assert UPSTREAM_KEY not in out, "the upstream key was logged"


@pytest.fixture(scope="module")
def stub(gw):
    ch = grpc.insecure_channel(gw.target)
    s = inference_pb2_grpc.InferenceStub(ch)
    wait_models(s, {"gpt-mock"})
    yield s
    ch.close()


def md(request_id=None):
    m = [("authorization", CLIENT_KEY)]
    if request_id:
        m.append(("x-request-id", request_id))
    return m


def last_request(mock, path, model=None):
    reqs = mock.find(path=path, model=model)
    assert reqs, f"the mock saw no {path} for {model}: {[r['path'] for r in mock.snapshot()]}"
    return reqs[-1]


# ---- model discovery ----------------------------------------------------------

def test_list_models_comes_from_the_catalog(stub, mock):
    resp = stub.ListModels(pb.ListModelsRequest(), timeout=5)
    assert resp.object == "list"
    by_id = {m.id: m for m in resp.data}
    assert set(by_id) == {m for m, _ in mock.models}
    assert by_id["gpt-mock"].owned_by == "mock-org"
    assert by_id["embed-mock"].owned_by == "mock-embeddings"
    assert by_id["gpt-mock"].object == "model"
    assert by_id["gpt-mock"].created == 1700000000
    # The catalog fetch carried the backend key.
    listing = [r for r in mock.snapshot() if r["path"] == "/v1/models"]
    assert listing and listing[-1]["headers"]["authorization"] == f"Bearer {UPSTREAM_KEY}"


def test_health_reports_the_upstream_from_its_model_listing(gw, stub):
    with grpc.insecure_channel(gw.target) as ch:
        h = admin_pb2_grpc.AdminStub(ch).GetHealth(admin_pb2.HealthRequest(), timeout=5)
    assert h.checks["backend:upstream"] == "serving"


def test_get_model_from_the_catalog(stub):
    m = stub.GetModel(pb.GetModelRequest(id="embed-mock"), timeout=5)
    assert (m.id, m.owned_by) == ("embed-mock", "mock-embeddings")
    with pytest.raises(grpc.RpcError) as e:
        stub.GetModel(pb.GetModelRequest(id="no-such-model"), timeout=5)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_unknown_model_is_not_found_without_asking_upstream(stub, mock):
    before = len(mock.find(path="/v1/chat/completions"))
    with pytest.raises(grpc.RpcError) as e:
        stub.CreateChatCompletion(chat("hi", model="no-such-model"), timeout=5)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert e.value.details() == "The model 'no-such-model' does not exist"
    assert len(mock.find(path="/v1/chat/completions")) == before


# ---- chat -----------------------------------------------------------------------

def test_unary_chat(stub, mock):
    resp = stub.CreateChatCompletion(chat("hello there"), timeout=10,
                                     metadata=md("req-unary-1"))
    assert resp.id == "chatcmpl-mock-1"
    assert resp.object == "chat.completion"
    assert resp.model == "gpt-mock"
    assert resp.created == 1700000000
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].message.content.text == "echo: hello there"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.system_fingerprint.value == "fp_mock"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens,
            resp.usage.total_tokens) == (2, 7, 9)
    r = last_request(mock, "/v1/chat/completions", "gpt-mock")
    h = r["headers"]
    assert r["method"] == "POST"
    assert h["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert CLIENT_KEY not in json.dumps(r)
    assert h["content-type"] == "application/json"
    assert h["x-request-id"] == "req-unary-1"
    assert "stream" not in r["body"]


def test_body_reaches_upstream_exactly(stub, mock):
    req = pb.ChatCompletionRequest(
        model="gpt-mock",
        messages=[
            pb.ChatMessage(role="system", content=pb.MessageContent(text="be brief")),
            pb.ChatMessage(role="user", content=pb.MessageContent(parts=pb.ContentParts(parts=[
                pb.ContentPart(type="text", text="look"),
                pb.ContentPart(type="image_url",
                               image_url=pb.ImageUrl(url="https://x.invalid/a.png",
                                                     detail="low"))]))),
        ],
        temperature=wrappers_pb2.DoubleValue(value=0),
        max_tokens=wrappers_pb2.Int32Value(value=32),
        seed=wrappers_pb2.Int64Value(value=42),
        stop=pb.StopSequences(list=pb.StringList(values=["a", "b"])),
        logit_bias={"50256": -100},
        user="user-7",
        tools=[pb.Tool(type="function", function=pb.FunctionDefinition(
            name="get_weather", parameters=extra(type="object",
                                                 properties={"city": {"type": "string"}})))],
        tool_choice=pb.ToolChoice(mode="auto"),
        extra_fields=extra(top_k=5, vendor={"nested": {"a": [1, "x", True, None]}},
                           repetition_penalty=1.1),
    )
    stub.CreateChatCompletion(req, timeout=10, metadata=md())
    body = last_request(mock, "/v1/chat/completions", "gpt-mock")["body"]
    assert body == {
        "model": "gpt-mock",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "https://x.invalid/a.png",
                                                    "detail": "low"}}]},
        ],
        "temperature": 0,
        "max_tokens": 32,
        "seed": 42,
        "stop": ["a", "b"],
        "logit_bias": {"50256": -100},
        "user": "user-7",
        "tools": [{"type": "function", "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": "auto",
        "top_k": 5,
        "vendor": {"nested": {"a": [1, "x", True, None]}},
        "repetition_penalty": 1.1,
    }


def test_unary_rpc_turns_client_stream_flag_off(stub, mock):
    stub.CreateChatCompletion(chat("x", stream=wrappers_pb2.BoolValue(value=True)), timeout=10)
    assert last_request(mock, "/v1/chat/completions", "gpt-mock")["body"]["stream"] is False


def test_stream_chat_relayed_event_by_event(stub, mock):
    req = chat("stream please", extra_fields=extra(mock_events=5, mock_delay_ms=100))
    arrivals, texts = [], []
    for c in stub.StreamChatCompletion(req, timeout=20, metadata=md("req-stream-1")):
        arrivals.append(time.monotonic())
        assert c.object == "chat.completion.chunk"
        assert c.id == "chatcmpl-mock-1"
        if c.choices and c.choices[0].delta.HasField("content"):
            texts.append(c.choices[0].delta.content.value)
    assert "".join(texts) == "w0 w1 w2 w3 w4 "
    assert len(arrivals) == 7  # role, 5 pieces, finish
    # The mock waits 100 ms before each piece: the client saw them spread
    # out, not in one burst at the end.
    gaps = [b - a for a, b in zip(arrivals[1:6], arrivals[2:7])]
    assert sum(1 for g in gaps if g > 0.05) >= 4, gaps
    assert arrivals[5] - arrivals[1] > 0.3
    r = last_request(mock, "/v1/chat/completions", "gpt-mock")
    assert r["body"]["stream"] is True
    assert r["headers"]["accept"] == "text/event-stream"
    assert r["headers"]["x-request-id"] == "req-stream-1"
    assert r["headers"]["authorization"] == f"Bearer {UPSTREAM_KEY}"


def test_stream_include_usage(stub, mock):
    req = chat("count me", stream_options=pb.StreamOptions(
        include_usage=wrappers_pb2.BoolValue(value=True)), extra_fields=extra(mock_events=3))
    chunks = list(stub.StreamChatCompletion(req, timeout=20))
    last = chunks[-1]
    assert len(last.choices) == 0
    assert (last.usage.prompt_tokens, last.usage.completion_tokens,
            last.usage.total_tokens) == (2, 3, 5)
    assert all(not c.HasField("usage") for c in chunks[:-1])
    body = last_request(mock, "/v1/chat/completions", "gpt-mock")["body"]
    assert body["stream_options"] == {"include_usage": True}


def test_tool_call_answer(stub, mock):
    resp = stub.CreateChatCompletion(chat("weather?", model="tool-mock"), timeout=10)
    ch = resp.choices[0]
    assert ch.finish_reason == "tool_calls"
    assert not ch.message.HasField("content")
    tc = ch.message.tool_calls[0]
    assert (tc.id, tc.type, tc.function.name) == ("call_mock_1", "function", "get_weather")
    assert json.loads(tc.function.arguments) == {"city": "Paris"}

    chunks = list(stub.StreamChatCompletion(chat("weather?", model="tool-mock"), timeout=10))
    args = "".join(t.function.arguments for c in chunks for ch in c.choices
                   for t in ch.delta.tool_calls)
    assert json.loads(args) == {"city": "Paris"}
    first = next(t for c in chunks for ch in c.choices for t in ch.delta.tool_calls)
    assert (first.index.value, first.id, first.function.name) == (0, "call_mock_1",
                                                                   "get_weather")
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


# ---- completions and embeddings ----------------------------------------------------

def test_completions_unary_and_stream(stub, mock):
    req = pb.CompletionRequest(model="text-mock", prompt=pb.Prompt(text="once upon"),
                               max_tokens=wrappers_pb2.Int32Value(value=5))
    resp = stub.CreateCompletion(req, timeout=10)
    assert resp.object == "text_completion"
    assert resp.choices[0].text == "completed: once upon"
    assert resp.usage.completion_tokens == 3
    r = last_request(mock, "/v1/completions", "text-mock")
    assert r["body"] == {"model": "text-mock", "prompt": "once upon", "max_tokens": 5}

    chunks = list(stub.StreamCompletion(req, timeout=10))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "t0 t1 t2 "
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert last_request(mock, "/v1/completions", "text-mock")["body"]["stream"] is True


@pytest.mark.parametrize("fmt", ["", "float", "base64"])
def test_embeddings(stub, mock, fmt):
    req = pb.EmbeddingRequest(model="embed-mock", encoding_format=fmt,
                              input=pb.Prompt(texts=pb.StringList(values=["a", "b"])))
    resp = stub.CreateEmbedding(req, timeout=10)
    assert resp.object == "list" and resp.model == "embed-mock"
    assert [list(d.embedding) for d in resp.data] == [embedding_vector(0, 4),
                                                      embedding_vector(1, 4)]
    assert [d.index for d in resp.data] == [0, 1]
    assert resp.usage.prompt_tokens == 2
    body = last_request(mock, "/v1/embeddings", "embed-mock")["body"]
    # Base64 from upstream whatever the client asked (smaller, and no text
    # floats to parse); the client gets its own encoding.
    assert body["encoding_format"] == "base64"
    assert body["input"] == ["a", "b"]


@pytest.mark.parametrize("backend_enc", [None, "float"])
@pytest.mark.parametrize("client_enc", ["float", "base64"])
def test_embedding_encoding_upstream(mock, client, backend_enc, client_enc):
    """Over HTTP, each way round: the upstream is asked for base64 (or for
    floats with embedding_encoding "float", for upstreams without base64),
    and the client gets exactly the float32 values in the encoding it
    asked for."""
    backend = {"name": "mock", "provider": "openai", "target": mock.base_url,
               "api_key_env": "EMB_KEY"}
    if backend_enc:
        backend["embedding_encoding"] = backend_enc
    cfg = {"backends": [backend], "models": [{"name": "embed-mock", "backend": "mock"}]}
    g = Gateway(gateway_env(cfg, EMB_KEY=UPSTREAM_KEY, UPSTREAM_CLIENT=client))
    try:
        c = http.client.HTTPConnection("127.0.0.1", g.http_port, timeout=10)
        c.request("POST", "/v1/embeddings", body=json.dumps(
            {"model": "embed-mock", "input": ["a", "b"], "encoding_format": client_enc}),
            headers={"Content-Type": "application/json"})
        r = c.getresponse()
        d = json.loads(r.read())
        c.close()
        assert r.status == 200, d
        got = [e["embedding"] for e in d["data"]]
        if client_enc == "base64":
            got = [list(struct.unpack("<4f", base64.b64decode(e))) for e in got]
        assert got == [embedding_vector(0, 4), embedding_vector(1, 4)]
        body = last_request(mock, "/v1/embeddings", "embed-mock")["body"]
        assert body["encoding_format"] == (backend_enc or "base64")
    finally:
        g.stop_clean()


# ---- errors --------------------------------------------------------------------------

@pytest.mark.parametrize("model,code,message", [
    ("error-429", grpc.StatusCode.RESOURCE_EXHAUSTED, "Rate limit reached for requests."),
    ("error-500", grpc.StatusCode.INTERNAL,
     "The server had an error while processing your request."),
    ("error-503", grpc.StatusCode.UNAVAILABLE,
     "The engine is currently overloaded, please try again later."),
    ("error-400", grpc.StatusCode.INVALID_ARGUMENT,
     "Invalid request: something is wrong with the body."),
    ("error-401", grpc.StatusCode.UNAUTHENTICATED, "Incorrect API key provided."),
])
def test_upstream_errors_are_mapped(stub, model, code, message):
    with pytest.raises(grpc.RpcError) as e:
        stub.CreateChatCompletion(chat("x", model=model), timeout=10)
    assert e.value.code() == code
    assert e.value.details() == message
    with pytest.raises(grpc.RpcError) as e:
        list(stub.StreamChatCompletion(chat("x", model=model), timeout=10))
    assert e.value.code() == code
    assert e.value.details() == message


def test_error_event_inside_a_stream_ends_it(stub):
    got = []
    with pytest.raises(grpc.RpcError) as e:
        for c in stub.StreamChatCompletion(chat("x", model="stream-error"), timeout=10):
            got.append(c)
    assert e.value.code() == grpc.StatusCode.INTERNAL
    assert e.value.details() == "The stream broke upstream."
    assert any(ch.delta.content.value == "partial" for c in got for ch in c.choices)


def test_client_cancel_closes_the_upstream_connection(stub, mock):
    req = chat("long", extra_fields=extra(mock_events=100, mock_delay_ms=100,
                                          mock_tag="cancel-me"))
    it = stub.StreamChatCompletion(req, timeout=30)
    for _ in range(3):
        next(it)
    cancelled_at = time.time()
    it.cancel()
    rec = None
    deadline = time.time() + 5
    while time.time() < deadline:
        recs = [r for r in mock.find(path="/v1/chat/completions")
                if (r["body"] or {}).get("mock_tag") == "cancel-me"]
        rec = recs[-1] if recs else None
        if rec and rec["aborted_at"]:
            break
        time.sleep(0.05)
    assert rec and rec["aborted_at"], "the mock never saw the connection close"
    assert rec["aborted_at"] - cancelled_at < 1.0
    assert rec["events_sent"] < 20


def test_deadline_exceeded(stub, mock):
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError) as e:
        stub.CreateChatCompletion(chat("x", model="slow", extra_fields=extra(mock_delay_ms=3000)),
                                  timeout=0.5)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - t0 < 2.0
    # The gateway still serves afterwards.
    assert stub.CreateChatCompletion(chat("after"), timeout=10).choices[0].message.content.text \
        == "echo: after"


def test_slow_reader_gets_every_event_in_order(stub):
    # A burst of events against a client that reads slowly: the provider
    # pauses the upstream transfer while the gRPC sink is full and resumes
    # it when it drains; nothing is lost, duplicated or reordered.
    n = 400
    req = chat("burst", extra_fields=extra(mock_events=n))
    text = []
    for i, c in enumerate(stub.StreamChatCompletion(req, timeout=60)):
        if i < 40:
            time.sleep(0.01)
        text += [ch.delta.content.value for ch in c.choices if ch.delta.HasField("content")]
    assert "".join(text) == "".join(f"w{i} " for i in range(n))


def test_concurrent_streams_share_the_workers(stub):
    errors = []

    def one(i):
        try:
            req = chat(f"n{i}", extra_fields=extra(mock_events=4, mock_delay_ms=20))
            text = "".join(ch.delta.content.value for c in stub.StreamChatCompletion(
                req, timeout=20) for ch in c.choices if ch.delta.HasField("content"))
            assert text == "w0 w1 w2 w3 ", text
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


# ---- config-file backends: renamed models, backend timeout, dead upstream -------------

def test_config_file_backends(mock, client):
    dead = free_port()
    cfg = {
        "backends": [
            {"name": "mock", "provider": "openai", "target": mock.base_url + "/",
             "api_key": UPSTREAM_KEY, "timeout_ms": 400},
            {"name": "dead", "provider": "openai", "target": f"http://127.0.0.1:{dead}/v1"},
        ],
        "models": [
            {"name": "public-name", "backend": "mock", "upstream_model": "gpt-mock"},
            {"name": "slowpoke", "backend": "mock", "upstream_model": "slow"},
            {"name": "mock/*", "backend": "mock"},
            {"name": "gone", "backend": "dead"},
        ],
    }
    g = Gateway(gateway_env(cfg, MODELS_REFRESH_S=1, UPSTREAM_CLIENT=client))
    try:
        with grpc.insecure_channel(g.target) as ch:
            s = inference_pb2_grpc.InferenceStub(ch)
            resp = s.CreateChatCompletion(chat("renamed", model="public-name"), timeout=10)
            assert resp.choices[0].message.content.text == "echo: renamed"
            body = last_request(mock, "/v1/chat/completions", "gpt-mock")["body"]
            assert body["messages"][0]["content"] == "renamed"

            with pytest.raises(grpc.RpcError) as e:
                s.CreateChatCompletion(chat("x", model="gone"), timeout=10)
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "dead" in e.value.details()

            # The backend's timeout_ms bounds the exchange.
            with pytest.raises(grpc.RpcError) as e:
                s.CreateChatCompletion(chat("x", model="slowpoke",
                                            extra_fields=extra(mock_delay_ms=3000)), timeout=10)
            assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

            # ListModels: exact names, and nothing through "mock/*" (the mock
            # lists no "mock/..." model).
            ids = {m.id for m in s.ListModels(pb.ListModelsRequest(), timeout=5).data}
            assert {"public-name", "slowpoke", "gone"} <= ids
            assert not any(i.startswith("mock/") for i in ids)
            with pytest.raises(grpc.RpcError) as e:
                s.CreateChatCompletion(chat("x", model="mock/anything"), timeout=10)
            assert e.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        g.stop_clean()


def test_shutdown_with_a_stream_in_flight(mock, client):
    # SIGTERM while an upstream stream is open: the gateway ends the call,
    # closes the transfer and exits 0 without a sanitizer report.
    g = Gateway(gateway_env(TARGET_API_URL=mock.base_url, TARGET_API_KEY=UPSTREAM_KEY,
                            SHUTDOWN_GRACE_MS=300, UPSTREAM_CLIENT=client))
    with grpc.insecure_channel(g.target) as ch:
        s = inference_pb2_grpc.InferenceStub(ch)
        wait_models(s, {"gpt-mock"})
        it = s.StreamChatCompletion(chat("x", extra_fields=extra(mock_events=200,
                                                                 mock_delay_ms=50)), timeout=30)
        next(it)
        g.stop_clean()
        with pytest.raises(grpc.RpcError):
            for _ in it:
                pass
