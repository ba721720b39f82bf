"""The AWS Bedrock provider end to end: the real gateway in front of the mock
Bedrock runtime (mock_bedrock.py), which checks every request's SigV4
signature and answers Converse JSON or ConverseStream event-stream frames;
called with the official OpenAI SDK and http.client.
Each test runs with both upstream clients: the native one (the default)
and curl (UPSTREAM_CLIENT=curl)."""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from conftest import Gateway, gateway_env  # noqa: E402
from mock_bedrock import MockBedrock  # noqa: E402
from openai_schema import validate  # noqa: E402
from provider_common import (PNG_B64, PNG_URL, WEATHER_TOOL, check_client,  # noqa: E402
                             check_not_served,
                             client_env, finish_reason, post, sdk, sse_events, stream_text,
                             stream_tool_calls)

AKID = "AKIDGATEWAYTEST"
SECRET = "bedrock/secret+KEY-for-tests-0123456789"
TOKEN = "session-token-for-tests"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"


@pytest.fixture(scope="module")
def mock():
    m = MockBedrock(access_key_id=AKID, secret=SECRET, region="eu-west-1",
                    session_token=TOKEN).start()
    yield m
    m.stop()


@pytest.fixture(scope="module", params=["native", "curl"])
def gw(request, mock):
    models = [{"name": n, "backend": "br"} for n in
              ("error-400", "error-429", "error-500", "flaky-429", "stream-error")]
    models += [{"name": "haiku", "backend": "br", "upstream_model": HAIKU},
               {"name": "haiku-tool", "backend": "br", "upstream_model": "haiku-tool"}]
    config = {"backends": [{"name": "br", "provider": "bedrock", "target": mock.base_url,
                            "region": "eu-west-1", "access_key_id_env": "BR_AKID",
                            "secret_access_key_env": "BR_SECRET",
                            "session_token_env": "BR_TOKEN"}],
              "models": models}
    g = Gateway(gateway_env(config, BR_AKID=AKID, BR_SECRET=SECRET, BR_TOKEN=TOKEN, WORKERS=2, **client_env(request.param)))
    yield g
    out = g.stop_clean()
    check_client(out, request.param)
    assert SECRET not in out and TOKEN not in out


def test_unary_signed(gw, mock):
    mock.clear()
    out = sdk(gw, {"model": "haiku", "max_tokens": 200, "temperature": 0.1, "top_p": 0.9,
                   "stop": ["END"],
                   "messages": [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": [
                                    {"type": "text", "text": "Look"},
                                    {"type": "image_url", "image_url": {"url": PNG_URL}}]}]})
    r = out["result"]
    validate("CreateChatCompletionResponse", r)
    assert r["model"] == HAIKU
    assert r["choices"][0]["message"]["content"] == "echo: Look"
    assert r["choices"][0]["finish_reason"] == "stop"
    assert r["usage"] == {"prompt_tokens": 30, "completion_tokens": 10, "total_tokens": 40}
    req = mock.last()
    assert req["signature_ok"]
    assert req["path"] == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    h = req["headers"]
    assert h["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={AKID}/")
    assert "/eu-west-1/bedrock/aws4_request, SignedHeaders=accept;content-type;host;x-amz-date;" \
           "x-amz-security-token, Signature=" in h["authorization"]
    assert h["x-amz-security-token"] == TOKEN
    assert h["content-type"] == "application/json"
    assert req["body"] == {
        "messages": [{"role": "user", "content": [
            {"text": "Look"}, {"image": {"format": "png", "source": {"bytes": PNG_B64}}}]}],
        "system": [{"text": "Be brief."}],
        "inferenceConfig": {"maxTokens": 200, "temperature": 0.1, "topP": 0.9,
                            "stopSequences": ["END"]}}


def test_stream_eventstream(gw, mock):
    out = sdk(gw, {"model": "haiku", "stream": True, "stream_options": {"include_usage": True},
                   "messages": [{"role": "user", "content": "stream it"}]})
    chunks = out["chunks"]
    for c in chunks:
        validate("CreateChatCompletionStreamResponse", c)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert stream_text(chunks) == "echo: stream it"
    assert finish_reason(chunks) == "stop"
    assert chunks[-1]["usage"] == {"prompt_tokens": 30, "completion_tokens": 10,
                                   "total_tokens": 40}
    req = mock.last()
    assert req["signature_ok"]
    assert req["path"] == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream"
    assert req["headers"]["accept"] == "application/vnd.amazon.eventstream"
    st, _, data = post(gw, {"model": "haiku", "stream": True,
                            "messages": [{"role": "user", "content": "raw"}]})
    ev = sse_events(data)
    assert st == 200 and ev[-1] == "[DONE]" and stream_text(ev[:-1]) == "echo: raw"


def test_tool_round_trip(gw, mock):
    msgs = [{"role": "user", "content": "Weather in Paris?"}]
    out = sdk(gw, {"model": "haiku-tool", "messages": msgs, "tools": [WEATHER_TOOL],
                   "tool_choice": "required"})
    r = out["result"]
    validate("CreateChatCompletionResponse", r)
    msg = r["choices"][0]["message"]
    assert r["choices"][0]["finish_reason"] == "tool_calls"
    assert msg["tool_calls"] == [{"id": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "type": "function",
                                  "function": {"name": "get_weather",
                                               "arguments": '{"city":"Paris"}'}}]
    body = mock.last()["body"]
    assert body["toolConfig"] == {"tools": [{"toolSpec": {
        "name": "get_weather", "description": "Weather for a city",
        "inputSchema": {"json": WEATHER_TOOL["function"]["parameters"]}}}],
        "toolChoice": {"any": {}}}

    msgs += [msg, {"role": "tool", "tool_call_id": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
                   "content": "sunny"}]
    out = sdk(gw, {"model": "haiku-tool", "messages": msgs, "tools": [WEATHER_TOOL]})
    assert out["result"]["choices"][0]["message"]["content"] == "Sunny in Paris."
    assert mock.last()["body"]["messages"] == [
        {"role": "user", "content": [{"text": "Weather in Paris?"}]},
        {"role": "assistant", "content": [
            {"text": "Let me look."},
            {"toolUse": {"toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "name": "get_weather",
                         "input": {"city": "Paris"}}}]},
        {"role": "user", "content": [{"toolResult": {
            "toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "content": [{"text": "sunny"}]}}]}]

    out = sdk(gw, {"model": "haiku-tool", "stream": True, "tools": [WEATHER_TOOL],
                   "messages": [{"role": "user", "content": "Weather in Paris?"}]})
    for c in out["chunks"]:
        validate("CreateChatCompletionStreamResponse", c)
    assert stream_tool_calls(out["chunks"]) == [{"id": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
                                                 "name": "get_weather",
                                                 "arguments": '{"city": "Paris"}'}]
    assert finish_reason(out["chunks"]) == "tool_calls"


@pytest.mark.parametrize("model,status,etype", [
    ("error-400", 400, "ValidationException"), ("error-429", 429, "ThrottlingException"),
    ("error-500", 500, "InternalServerException")])
def test_errors(gw, mock, model, status, etype):
    st, hdrs, data = post(gw, {"model": model, "messages": [{"role": "user", "content": "x"}]})
    assert st == status
    body = json.loads(data)
    validate("ErrorResponse", body)
    assert body["error"]["type"] == etype and body["error"]["message"]
    if status == 429:
        assert hdrs.get("retry-after") == "0"
    out = sdk(gw, {"model": model, "messages": [{"role": "user", "content": "x"}]})
    assert out["error"]["status"] == status


def test_429_then_retry_succeeds(gw, mock):
    out = sdk(gw, {"model": "flaky-429", "messages": [{"role": "user", "content": "again"}]},
              max_retries=2)
    assert out["result"]["choices"][0]["message"]["content"] == "echo: again"


def test_exception_mid_stream(gw, mock):
    out = sdk(gw, {"model": "stream-error", "stream": True,
                   "messages": [{"role": "user", "content": "boom"}]})
    assert "Too many tokens" in out["error"]["message"]
    assert stream_text(out["error"]["chunks"]) == "echo:"
    st, _, data = post(gw, {"model": "stream-error", "stream": True,
                            "messages": [{"role": "user", "content": "boom"}]})
    assert sse_events(data)[-1]["error"]["type"] == "ThrottlingException"


def test_embeddings_not_served(gw, mock):
    check_not_served(gw, mock, "haiku", "Bedrock")
