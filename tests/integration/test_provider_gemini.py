"""The Gemini and Vertex AI providers end to end: the real gateway in front
of the mock Google endpoints (mock_gemini.py, which also serves Vertex's
OAuth token endpoint and checks the service-account JWT's signature),
called with the official OpenAI SDK and http.client.
Each test runs with both upstream clients: the native one (the default)
and curl (UPSTREAM_CLIENT=curl)."""
import json
import os
import sys
import tempfile
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from conftest import Gateway, gateway_env  # noqa: E402
from mock_gemini import TOKEN, MockGemini  # noqa: E402
from openai_schema import validate  # noqa: E402
from provider_common import (PNG_B64, PNG_URL, WEATHER_TOOL, check_client,  # noqa: E402
                             check_not_served,
                             client_env, finish_reason, post, sdk, sse_events, stream_text,
                             stream_tool_calls)

KEY = "AIza-gemini-upstream-secret"
SA_EMAIL = "gw-test@mock-project.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def mock(rsa_key):
    m = MockGemini(api_key=KEY, public_key=rsa_key.public_key()).start()
    yield m
    m.stop()


def sa_key_file(mock, rsa_key, key_id):
    """A service-account JSON key file for the mock's token endpoint (the
    caller unlinks it)."""
    pem = rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    sa = {"type": "service_account", "project_id": "mock-project", "private_key_id": key_id,
          "private_key": pem, "client_email": SA_EMAIL, "client_id": "1",
          "token_uri": mock.base_url + "/token"}
    f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(sa, f)
    f.close()
    return f


@pytest.fixture(scope="module", params=["native", "curl"])
def gw(request, mock, rsa_key):
    f = sa_key_file(mock, rsa_key, "kid-123")
    models = [{"name": n, "backend": "gem"} for n in
              ("gemini-echo", "gemini-tool", "error-400", "error-429", "error-500", "flaky-429",
               "stream-error")]
    models += [{"name": "flash", "backend": "gem", "upstream_model": "gemini-1.5-flash"},
               {"name": "vertex-flash", "backend": "vtx", "upstream_model": "gemini-1.5-flash"}]
    config = {"backends": [
        {"name": "gem", "provider": "gemini", "target": mock.base_url + "/v1beta",
         "api_key_env": "GEMINI_TEST_KEY"},
        {"name": "vtx", "provider": "vertex", "target": mock.base_url + "/v1",
         "project": "mock-project", "location": "europe-west4", "credentials_file": f.name}],
        "models": models}
    g = Gateway(gateway_env(config, GEMINI_TEST_KEY=KEY, WORKERS=2, **client_env(request.param)))
    yield g
    out = g.stop_clean()
    check_client(out, request.param)
    os.unlink(f.name)
    assert KEY not in out and TOKEN not in out and "PRIVATE KEY" not in out


def test_unary(gw, mock):
    mock.clear()
    out = sdk(gw, {"model": "flash", "temperature": 0.3, "top_p": 0.8, "max_tokens": 100,
                   "stop": "END", "seed": 7,
                   "messages": [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": [
                                    {"type": "text", "text": "What is it?"},
                                    {"type": "image_url", "image_url": {"url": PNG_URL}}]}]})
    r = out["result"]
    validate("CreateChatCompletionResponse", r)
    assert r["id"] == "resp-mock-1" and r["model"] == "gemini-1.5-flash-001"
    assert r["choices"][0]["message"]["content"] == "echo: What is it?"
    assert r["choices"][0]["finish_reason"] == "stop"
    assert r["usage"] == {"prompt_tokens": 11, "completion_tokens": 9, "total_tokens": 20}
    req = mock.last()
    assert req["path"] == "/v1beta/models/gemini-1.5-flash:generateContent"
    assert req["query"] == {}
    assert req["headers"]["x-goog-api-key"] == KEY
    assert "authorization" not in req["headers"]
    assert req["body"] == {
        "contents": [{"role": "user", "parts": [
            {"text": "What is it?"},
            {"inlineData": {"mimeType": "image/png", "data": PNG_B64}}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"temperature": 0.3, "topP": 0.8, "maxOutputTokens": 100,
                             "stopSequences": ["END"], "seed": 7}}


def test_stream_with_usage(gw, mock):
    out = sdk(gw, {"model": "gemini-echo", "stream": True,
                   "stream_options": {"include_usage": True},
                   "messages": [{"role": "user", "content": "stream it"}]})
    chunks = out["chunks"]
    for c in chunks:
        validate("CreateChatCompletionStreamResponse", c)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert stream_text(chunks) == "echo: stream it"
    assert finish_reason(chunks) == "stop"
    assert chunks[-1]["usage"] == {"prompt_tokens": 11, "completion_tokens": 9,
                                   "total_tokens": 20}
    req = mock.last()
    assert req["path"] == "/v1beta/models/gemini-echo:streamGenerateContent"
    assert req["query"] == {"alt": ["sse"]}
    assert req["body"] == {"contents": [{"role": "user", "parts": [{"text": "stream it"}]}]}
    st, _, data = post(gw, {"model": "gemini-echo", "stream": True,
                            "messages": [{"role": "user", "content": "raw"}]})
    ev = sse_events(data)
    assert st == 200 and ev[-1] == "[DONE]" and stream_text(ev[:-1]) == "echo: raw"


def test_tool_round_trip(gw, mock):
    msgs = [{"role": "user", "content": "Weather in Paris?"}]
    out = sdk(gw, {"model": "gemini-tool", "messages": msgs, "tools": [WEATHER_TOOL],
                   "tool_choice": {"type": "function", "function": {"name": "get_weather"}}})
    r = out["result"]
    validate("CreateChatCompletionResponse", r)
    msg = r["choices"][0]["message"]
    assert r["choices"][0]["finish_reason"] == "tool_calls"
    assert msg["content"] == "Checking."
    assert len(msg["tool_calls"]) == 1
    call = msg["tool_calls"][0]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    body = mock.last()["body"]
    assert body["tools"] == [{"functionDeclarations": [{
        "name": "get_weather", "description": "Weather for a city",
        "parameters": WEATHER_TOOL["function"]["parameters"]}]}]
    assert body["toolConfig"] == {"functionCallingConfig": {
        "mode": "ANY", "allowedFunctionNames": ["get_weather"]}}

    msgs += [msg, {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}]
    out = sdk(gw, {"model": "gemini-tool", "messages": msgs, "tools": [WEATHER_TOOL],
                   "tool_choice": "auto"})
    assert out["result"]["choices"][0]["message"]["content"] == "Sunny in Paris."
    body = mock.last()["body"]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
        {"role": "model", "parts": [{"text": "Checking."}, {"functionCall": {
            "name": "get_weather", "args": {"city": "Paris"}}}]},
        {"role": "user", "parts": [{"functionResponse": {
            "name": "get_weather", "response": {"content": "sunny"}}}]}]

    out = sdk(gw, {"model": "gemini-tool", "stream": True, "tools": [WEATHER_TOOL],
                   "messages": [{"role": "user", "content": "Weather in Paris?"}]})
    for c in out["chunks"]:
        validate("CreateChatCompletionStreamResponse", c)
    calls = stream_tool_calls(out["chunks"])
    assert [(c["name"], c["arguments"]) for c in calls] == [("get_weather", '{"city":"Paris"}')]
    assert calls[0]["id"]
    assert finish_reason(out["chunks"]) == "tool_calls"


@pytest.mark.parametrize("model,status,gstatus", [
    ("error-400", 400, "INVALID_ARGUMENT"), ("error-429", 429, "RESOURCE_EXHAUSTED"),
    ("error-500", 500, "INTERNAL")])
def test_errors(gw, mock, model, status, gstatus):
    st, hdrs, data = post(gw, {"model": model, "messages": [{"role": "user", "content": "x"}]})
    assert st == status
    body = json.loads(data)
    validate("ErrorResponse", body)
    assert body["error"]["type"] == gstatus and body["error"]["message"]
    if status == 429:
        assert hdrs.get("retry-after") == "0"
    out = sdk(gw, {"model": model, "messages": [{"role": "user", "content": "x"}]})
    assert out["error"]["status"] == status


def test_429_then_retry_succeeds(gw, mock):
    out = sdk(gw, {"model": "flaky-429", "messages": [{"role": "user", "content": "again"}]},
              max_retries=2)
    assert out["result"]["choices"][0]["message"]["content"] == "echo: again"


def test_error_mid_stream(gw, mock):
    out = sdk(gw, {"model": "stream-error", "stream": True,
                   "messages": [{"role": "user", "content": "boom"}]})
    assert "overloaded" in out["error"]["message"]
    assert stream_text(out["error"]["chunks"]) == "echo: "


def test_vertex_service_account(gw, mock):
    mock.clear()
    mock.assertions.clear()
    for _ in range(2):  # the token is fetched once and cached
        out = sdk(gw, {"model": "vertex-flash", "messages": [{"role": "user", "content": "hi"}]})
        validate("CreateChatCompletionResponse", out["result"])
        assert out["result"]["choices"][0]["message"]["content"] == "echo: hi"
    paths = [r["path"] for r in mock.requests]
    assert paths.count("/token") == 1
    tok = next(r for r in mock.requests if r["path"] == "/token")
    assert tok["headers"]["content-type"] == "application/x-www-form-urlencoded"
    a = mock.assertions[0]
    assert a["header"] == {"alg": "RS256", "typ": "JWT", "kid": "kid-123"}
    c = a["claims"]
    assert c["iss"] == SA_EMAIL and c["aud"] == mock.base_url + "/token"
    assert c["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert c["exp"] - c["iat"] == 3600
    req = mock.last()
    assert req["path"] == ("/v1/projects/mock-project/locations/europe-west4/publishers/google/"
                           "models/gemini-1.5-flash:generateContent")
    assert req["headers"]["authorization"] == "Bearer " + mock.issued[-1]  # (TOKEN first)
    assert "x-goog-api-key" not in req["headers"]
    out = sdk(gw, {"model": "vertex-flash", "stream": True,
                   "messages": [{"role": "user", "content": "hi"}]})
    assert stream_text(out["chunks"]) == "echo: hi"


def test_vertex_token_refreshed_in_the_background(gw, mock, rsa_key):
    """The next token is fetched on a thread of its own while the current
    one serves: a request made as the token nears its end is not held up by
    the fetch (which takes 1.5 s here), and the requests after it use the
    new token. The token endpoint says expires_in 4: the gateway keeps it 2 s
    and starts the next fetch in its last second. (Only the first token is
    fetched on the worker.)"""
    f = sa_key_file(mock, rsa_key, "kid-9")
    config = {"backends": [{"name": "vtx", "provider": "vertex", "target": mock.base_url + "/v1",
                            "project": "mock-project", "location": "europe-west4",
                            "credentials_file": f.name}],
              "models": [{"name": "vertex-flash", "backend": "vtx",
                          "upstream_model": "gemini-1.5-flash"}]}
    body = {"model": "vertex-flash", "messages": [{"role": "user", "content": "hi"}]}
    mock.token_expires_in = 4
    g = Gateway(gateway_env(config, WORKERS=1))
    try:
        before = len(mock.issued)
        st, _, d = post(g, body)
        assert st == 200, d
        assert len(mock.issued) == before + 1
        first = mock.issued[-1]
        assert mock.last_api()["headers"]["authorization"] == "Bearer " + first
        time.sleep(1.2)  # into the token's last second
        mock.token_delay_s = 1.5
        t0 = time.time()
        st, _, d = post(g, body)
        took = time.time() - t0
        assert st == 200, d
        assert took < 1.0, f"the request waited {took:.2f} s for the token fetch"
        assert mock.last_api()["headers"]["authorization"] == "Bearer " + first
        time.sleep(1.8)  # the background fetch has ended
        st, _, d = post(g, body)
        assert st == 200, d
        assert len(mock.issued) == before + 2
        assert mock.last_api()["headers"]["authorization"] == "Bearer " + mock.issued[-1]
        assert mock.issued[-1] != first
    finally:
        mock.token_expires_in, mock.token_delay_s = 3599, 0.0
        out = g.stop_clean()
        os.unlink(f.name)
    assert "ya29." not in out and "PRIVATE KEY" not in out


def test_embeddings_not_served(gw, mock):
    check_not_served(gw, mock, "gemini-echo", "Gemini")
