"""The Anthropic provider end to end: the real gateway in front of the mock
Messages API (mock_anthropic.py), called with the official OpenAI SDK and
http.client. Both sides are checked: what the client got (validated against
OpenAI's schema) and exactly what the mock was sent.
Each test runs with both upstream clients: the native one (the default)
and curl (UPSTREAM_CLIENT=curl)."""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from conftest import Gateway, gateway_env  # noqa: E402
from mock_anthropic import MockAnthropic  # noqa: E402
from openai_schema import validate  # noqa: E402
from provider_common import (PNG_B64, PNG_URL, WEATHER_TOOL, check_client,  # noqa: E402
                             check_not_served,
                             client_env, finish_reason, post, sdk, sse_events, stream_text,
                             stream_tool_calls)

KEY = "sk-ant-upstream-secret-42"


@pytest.fixture(scope="module")
def mock():
    m = MockAnthropic(api_key=KEY).start()
    yield m
    m.stop()


@pytest.fixture(scope="module", params=["native", "curl"])
def gw(request, mock):
    models = [{"name": n, "backend": "claude"} for n in
              ("claude-echo", "claude-tool", "error-400", "error-429", "error-500",
               "error-529", "flaky-429", "stream-error", "garbage-200")]
    models.append({"name": "sonnet", "backend": "claude",
                   "upstream_model": "claude-3-5-sonnet-20241022"})
    config = {"backends": [{"name": "claude", "provider": "anthropic", "target": mock.base_url,
                            "api_key_env": "ANTHROPIC_TEST_KEY", "timeout_ms": 20000}],
              "models": models}
    g = Gateway(gateway_env(config, ANTHROPIC_TEST_KEY=KEY, WORKERS=2, **client_env(request.param)))
    yield g
    out = g.stop_clean()
    check_client(out, request.param)
    assert KEY not in out, "the upstream key was logged"


def test_unary_system_and_usage(gw, mock):
    mock.clear()
    out = sdk(gw, {"model": "sonnet", "max_tokens": 300, "temperature": 0.5, "top_p": 0.9,
                   "stop": ["END"], "user": "user-7",
                   "messages": [{"role": "system", "content": "You are terse."},
                                {"role": "user", "content": "Hello there"}]})
    r = out["result"]
    validate("CreateChatCompletionResponse", r)
    assert r["object"] == "chat.completion"
    assert r["id"] == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert r["model"] == "claude-3-5-sonnet-20241022"
    assert r["choices"][0]["message"] == {"role": "assistant", "content": "echo: Hello there",
                                          "refusal": None}
    assert r["choices"][0]["finish_reason"] == "stop"
    assert r["usage"]["prompt_tokens"] == 25 and r["usage"]["completion_tokens"] == 12
    assert r["usage"]["total_tokens"] == 37

    req = mock.last()
    assert req["method"] == "POST" and req["path"] == "/v1/messages" and req["query"] == {}
    h = req["headers"]
    assert h["x-api-key"] == KEY
    assert h["anthropic-version"] == "2023-06-01"
    assert h["content-type"] == "application/json"
    assert "authorization" not in h, "the client's credential went upstream"
    assert req["body"] == {
        "model": "claude-3-5-sonnet-20241022", "system": "You are terse.",
        "messages": [{"role": "user", "content": "Hello there"}],
        "max_tokens": 300, "temperature": 0.5, "top_p": 0.9, "stop_sequences": ["END"],
        "metadata": {"user_id": "user-7"},
    }


def test_default_max_tokens_and_image(gw, mock):
    mock.clear()
    out = sdk(gw, {"model": "claude-echo", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": PNG_URL}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]}]})
    validate("CreateChatCompletionResponse", out["result"])
    assert out["result"]["choices"][0]["message"]["content"] == "echo: What is this?"
    body = mock.last()["body"]
    assert body == {"model": "claude-echo", "max_tokens": 4096, "messages": [{
        "role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": PNG_B64}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}]}]}


def test_stream_with_usage(gw, mock):
    mock.clear()
    out = sdk(gw, {"model": "claude-echo", "stream": True, "max_completion_tokens": 50,
                   "stream_options": {"include_usage": True},
                   "messages": [{"role": "developer", "content": "Be nice."},
                                {"role": "user", "content": "Stream me"}]})
    chunks = out["chunks"]
    for c in chunks:
        validate("CreateChatCompletionStreamResponse", c)
        assert c["id"] == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert stream_text(chunks) == "echo: Stream me"
    assert finish_reason(chunks) == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 25, "completion_tokens": 12,
                                   "total_tokens": 37}
    body = mock.last()["body"]
    assert body == {"model": "claude-echo", "system": "Be nice.", "max_tokens": 50,
                    "stream": True, "messages": [{"role": "user", "content": "Stream me"}]}
    assert mock.last()["headers"]["accept"] == "text/event-stream"


def test_stream_raw_sse(gw, mock):
    st, hdrs, data = post(gw, {"model": "claude-echo", "stream": True,
                               "messages": [{"role": "user", "content": "raw"}]})
    assert st == 200 and hdrs["content-type"].startswith("text/event-stream")
    ev = sse_events(data)
    assert ev[-1] == "[DONE]"
    assert stream_text(ev[:-1]) == "echo: raw"
    assert all("usage" not in e or e["usage"] is None for e in ev[:-1])


def test_tool_round_trip(gw, mock):
    mock.clear()
    msgs = [{"role": "user", "content": "Weather in Paris?"}]
    out = sdk(gw, {"model": "claude-tool", "messages": msgs, "tools": [WEATHER_TOOL],
                   "tool_choice": "auto", "parallel_tool_calls": False})
    r = out["result"]
    validate("CreateChatCompletionResponse", r)
    choice = r["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check the weather."
    assert choice["message"]["tool_calls"] == [{
        "id": "toolu_01A09q90qw90lq917835lq9", "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]
    body = mock.last()["body"]
    assert body["tools"] == [{"name": "get_weather", "description": "Weather for a city",
                              "input_schema": WEATHER_TOOL["function"]["parameters"]}]
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}

    # The answer goes back with the tool's result.
    msgs += [choice["message"],
             {"role": "tool", "tool_call_id": "toolu_01A09q90qw90lq917835lq9",
              "content": "sunny, 21C"}]
    out = sdk(gw, {"model": "claude-tool", "messages": msgs, "tools": [WEATHER_TOOL],
                   "tool_choice": {"type": "function", "function": {"name": "get_weather"}}})
    validate("CreateChatCompletionResponse", out["result"])
    assert out["result"]["choices"][0]["message"]["content"] == "It is sunny in Paris."
    body = mock.last()["body"]
    assert body["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert body["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Let me check the weather."},
            {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather",
             "input": {"city": "Paris"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
             "content": "sunny, 21C"}]}]


def test_tool_call_streamed(gw, mock):
    out = sdk(gw, {"model": "claude-tool", "stream": True, "tools": [WEATHER_TOOL],
                   "tool_choice": "required",
                   "messages": [{"role": "user", "content": "Weather in Paris?"}]})
    chunks = out["chunks"]
    for c in chunks:
        validate("CreateChatCompletionStreamResponse", c)
    assert finish_reason(chunks) == "tool_calls"
    calls = stream_tool_calls(chunks)
    assert calls == [{"id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather",
                      "arguments": '{"city": "Paris"}'}]
    assert stream_text(chunks) == "Let me check the weather."
    assert mock.last()["body"]["tool_choice"] == {"type": "any"}


@pytest.mark.parametrize("model,status,etype", [
    ("error-400", 400, "invalid_request_error"),
    ("error-500", 500, "api_error"),
    ("error-529", 529, "overloaded_error"),
    ("error-429", 429, "rate_limit_error"),
])
def test_errors(gw, mock, model, status, etype):
    st, hdrs, data = post(gw, {"model": model, "messages": [{"role": "user", "content": "x"}]})
    assert st == status, data
    body = json.loads(data)
    validate("ErrorResponse", body)
    assert body["error"]["type"] == etype
    assert body["error"]["message"]
    if status == 429:
        assert hdrs.get("retry-after") == "0"
    out = sdk(gw, {"model": model, "messages": [{"role": "user", "content": "x"}]})
    assert out["error"]["status"] == status
    assert out["error"]["type"] == etype


def test_429_then_retry_succeeds(gw, mock):
    mock.clear()
    out = sdk(gw, {"model": "flaky-429", "messages": [{"role": "user", "content": "again"}]},
              max_retries=2)
    assert out["result"]["choices"][0]["message"]["content"] == "echo: again"
    assert len([r for r in mock.requests if r["body"]["model"] == "flaky-429"]) >= 2


def test_error_mid_stream(gw, mock):
    out = sdk(gw, {"model": "stream-error", "stream": True,
                   "messages": [{"role": "user", "content": "boom"}]})
    err = out["error"]
    assert "Overloaded" in err["message"]
    assert err["chunks"], "the chunks before the error were delivered"
    st, _, data = post(gw, {"model": "stream-error", "stream": True,
                            "messages": [{"role": "user", "content": "boom"}]})
    ev = sse_events(data)
    assert ev[-1]["error"]["type"] == "overloaded_error"
    assert ev[-1]["error"]["message"] == "Overloaded"


def test_unsupported_is_400(gw, mock):
    st, _, data = post(gw, {"model": "claude-echo", "n": 2,
                            "messages": [{"role": "user", "content": "x"}]})
    assert st == 400, data
    validate("ErrorResponse", json.loads(data))


def test_embeddings_not_served(gw, mock):
    check_not_served(gw, mock, "claude-echo", "Anthropic")


def test_undecodable_answer_is_500(gw, mock):
    """A 200 whose body is not Anthropic's JSON: the client gets a 500 that
    names the backend, not a half-translated answer."""
    st, _, data = post(gw, {"model": "garbage-200", "messages": [{"role": "user", "content": "x"}]})
    assert st == 500, data
    body = json.loads(data)
    validate("ErrorResponse", body)
    assert body["error"]["message"] == "backend claude sent an undecodable message"


def grpc_chat_raw(gw, wire):
    """CreateChatCompletion with |wire| as the request's bytes, as a gRPC
    client may send them (protobuf-c takes any bytes as a string and every
    entry of a map): (status code, details, response or None)."""
    import grpc
    from aigateway.v1 import inference_pb2 as pb
    with grpc.insecure_channel(gw.target) as ch:
        call = ch.unary_unary("/aigateway.v1.Inference/CreateChatCompletion",
                              request_serializer=None,
                              response_deserializer=pb.ChatCompletionResponse.FromString)
        try:
            return grpc.StatusCode.OK, "", call(wire, timeout=20)
        except grpc.RpcError as e:
            return e.code(), e.details(), None


def test_grpc_request_the_json_cannot_say(gw, mock):
    """What the translator reads is the request's OpenAI JSON, built straight
    from the message (gw_pb_to_jval): bytes that are not UTF-8 reach
    Anthropic as U+FFFD, as the JSON writer writes them; a map key twice on
    the wire and nesting past the writer's depth are refused with the reason,
    before anything goes upstream."""
    import grpc
    from aigateway.v1 import inference_pb2 as pb
    base = pb.ChatCompletionRequest(model="claude-echo", messages=[
        pb.ChatMessage(role="user", content=pb.MessageContent(text="hi"))])
    wire = base.SerializeToString()
    # field 15 (user), length-delimited: "u", 0xff, "v"
    mock.clear()
    code, details, resp = grpc_chat_raw(gw, wire + bytes([15 << 3 | 2, 3]) + b"u\xffv")
    assert code == grpc.StatusCode.OK, details
    assert resp.choices[0].message.content.text == "echo: hi"
    assert mock.last()["body"]["metadata"] == {"user_id": "u\ufffdv"}

    one = pb.ChatCompletionRequest(metadata={"team": "a"}).SerializeToString()
    mock.clear()
    code, details, _ = grpc_chat_raw(gw, wire + one + one)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details == "the request cannot be translated: duplicate object key"
    assert mock.requests == []

    deep = pb.ChatCompletionRequest()
    deep.CopyFrom(base)
    s = deep.extra_fields
    for _ in range(70):
        s = s.get_or_create_struct("x")
    code, details, _ = grpc_chat_raw(gw, deep.SerializeToString())
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details == "the request cannot be translated: nesting too deep to be written as JSON"
    assert mock.requests == []
