"""The Azure OpenAI provider end to end: the real gateway in front of the
mock Azure endpoint (mock_azure.py), called with the official OpenAI SDK and
http.client; both what the client got and what the mock received are
checked.
Each test runs with both upstream clients: the native one (the default)
and curl (UPSTREAM_CLIENT=curl)."""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from conftest import Gateway, gateway_env  # noqa: E402
from mock_azure import MockAzure  # noqa: E402
from openai_schema import validate  # noqa: E402
from provider_common import (PNG_URL, WEATHER_TOOL, check_client,  # noqa: E402
                             client_env, finish_reason, post, sdk, sse_events, stream_text,
                             stream_tool_calls)

KEY = "azure-upstream-secret-77"


@pytest.fixture(scope="module")
def mock():
    m = MockAzure(api_key=KEY).start()
    yield m
    m.stop()


@pytest.fixture(scope="module", params=["native", "curl"])
def gw(request, mock):
    models = [{"name": n, "backend": "az"} for n in
              ("tool-dep", "error-400", "error-429", "error-500", "flaky-429", "stream-error")]
    models += [{"name": "gpt-4o", "backend": "az", "upstream_model": "my-gpt4o"},
               {"name": "bearer-4o", "backend": "az-bearer", "upstream_model": "my gpt4o"}]
    config = {"backends": [
        {"name": "az", "provider": "azure", "target": mock.base_url + "/",
         "api_key_env": "AZURE_TEST_KEY", "api_version": "2024-10-21"},
        {"name": "az-bearer", "provider": "azure", "target": mock.base_url,
         "api_key_env": "AZURE_TEST_TOKEN"}],
        "models": models}
    g = Gateway(gateway_env(config, AZURE_TEST_KEY=KEY, AZURE_TEST_TOKEN="Bearer " + KEY,
                            WORKERS=2, **client_env(request.param)))
    yield g
    out = g.stop_clean()
    check_client(out, request.param)
    assert KEY not in out, "the upstream key was logged"


def test_unary(gw, mock):
    mock.clear()
    out = sdk(gw, {"model": "gpt-4o", "temperature": 0.2, "max_tokens": 64,
                   "messages": [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": [
                                    {"type": "text", "text": "Describe"},
                                    {"type": "image_url", "image_url": {"url": PNG_URL}}]}]})
    r = out["result"]
    validate("CreateChatCompletionResponse", r)
    assert r["choices"][0]["message"]["content"] == "echo: Describe"
    assert r["usage"] == {"prompt_tokens": 19, "completion_tokens": 7, "total_tokens": 26}
    assert "prompt_filter_results" not in r
    assert "content_filter_results" not in r["choices"][0]
    req = mock.last()
    assert req["path"] == "/openai/deployments/my-gpt4o/chat/completions"
    assert req["query"] == {"api-version": ["2024-10-21"]}
    assert req["headers"]["api-key"] == KEY
    assert "authorization" not in req["headers"]
    assert req["headers"]["content-type"] == "application/json"
    assert req["body"] == {
        "temperature": 0.2, "max_tokens": 64,
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": [
                         {"type": "text", "text": "Describe"},
                         {"type": "image_url", "image_url": {"url": PNG_URL}}]}]}


def test_bearer_and_default_version(gw, mock):
    out = sdk(gw, {"model": "bearer-4o", "messages": [{"role": "user", "content": "hi"}]})
    validate("CreateChatCompletionResponse", out["result"])
    req = mock.last()
    assert req["path"] == "/openai/deployments/my%20gpt4o/chat/completions"
    assert req["query"] == {"api-version": ["2024-10-21"]}
    assert req["headers"]["authorization"] == "Bearer " + KEY
    assert "api-key" not in req["headers"]


def test_stream_with_usage(gw, mock):
    out = sdk(gw, {"model": "gpt-4o", "stream": True, "stream_options": {"include_usage": True},
                   "messages": [{"role": "user", "content": "stream please"}]})
    chunks = out["chunks"]
    for c in chunks:
        validate("CreateChatCompletionStreamResponse", c)
        assert "prompt_filter_results" not in c
        assert all("content_filter_results" not in ch for ch in c["choices"])
    assert stream_text(chunks) == "echo: stream please"
    assert finish_reason(chunks) == "stop"
    assert chunks[-1]["usage"] == {"prompt_tokens": 19, "completion_tokens": 7,
                                   "total_tokens": 26}
    body = mock.last()["body"]
    assert body == {"stream": True, "stream_options": {"include_usage": True},
                    "messages": [{"role": "user", "content": "stream please"}]}
    st, hdrs, data = post(gw, {"model": "gpt-4o", "stream": True,
                               "messages": [{"role": "user", "content": "raw"}]})
    ev = sse_events(data)
    assert st == 200 and ev[-1] == "[DONE]"
    assert all(e["object"] == "chat.completion.chunk" for e in ev[:-1])


def test_tool_round_trip(gw, mock):
    msgs = [{"role": "user", "content": "Weather in Paris?"}]
    out = sdk(gw, {"model": "tool-dep", "messages": msgs, "tools": [WEATHER_TOOL]})
    r = out["result"]
    validate("CreateChatCompletionResponse", r)
    msg = r["choices"][0]["message"]
    assert r["choices"][0]["finish_reason"] == "tool_calls"
    assert msg["tool_calls"][0]["function"] == {"name": "get_weather",
                                                "arguments": "{\"city\":\"Paris\"}"}
    assert mock.last()["body"]["tools"] == [WEATHER_TOOL]
    msgs += [msg, {"role": "tool", "tool_call_id": "call_abc123", "content": "sunny"}]
    out = sdk(gw, {"model": "tool-dep", "messages": msgs, "tools": [WEATHER_TOOL]})
    assert out["result"]["choices"][0]["message"]["content"] == "Sunny in Paris."
    sent = mock.last()["body"]["messages"]
    assert sent[1]["tool_calls"] == [{"id": "call_abc123", "type": "function", "function": {
        "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]
    assert sent[2] == {"role": "tool", "tool_call_id": "call_abc123", "content": "sunny"}

    out = sdk(gw, {"model": "tool-dep", "stream": True, "tools": [WEATHER_TOOL],
                   "messages": [{"role": "user", "content": "Weather in Paris?"}]})
    for c in out["chunks"]:
        validate("CreateChatCompletionStreamResponse", c)
    assert stream_tool_calls(out["chunks"]) == [
        {"id": "call_abc123", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}]
    assert finish_reason(out["chunks"]) == "tool_calls"


@pytest.mark.parametrize("model,status", [("error-400", 400), ("error-429", 429),
                                          ("error-500", 500)])
def test_errors(gw, mock, model, status):
    st, hdrs, data = post(gw, {"model": model, "messages": [{"role": "user", "content": "x"}]})
    assert st == status
    body = json.loads(data)
    validate("ErrorResponse", body)
    assert body["error"]["code"] == str(status)
    assert body["error"]["message"]
    if status == 429:
        assert hdrs.get("retry-after") == "0"
    out = sdk(gw, {"model": model, "messages": [{"role": "user", "content": "x"}]})
    assert out["error"]["status"] == status
    assert out["error"]["code"] == str(status)


def test_429_then_retry_succeeds(gw, mock):
    out = sdk(gw, {"model": "flaky-429", "messages": [{"role": "user", "content": "again"}]},
              max_retries=2)
    assert out["result"]["choices"][0]["message"]["content"] == "echo: again"


def test_error_mid_stream(gw, mock):
    out = sdk(gw, {"model": "stream-error", "stream": True,
                   "messages": [{"role": "user", "content": "boom"}]})
    assert "server had an error" in out["error"]["message"]
    assert stream_text(out["error"]["chunks"]) == "echo"
