"""The HTTP front door in front of an OpenAI-compatible upstream
(TARGET_API_URL mode). The upstream is mock_openai.py, which speaks OpenAI's
documented wire format and records every request it receives: OpenAI itself
cannot run here. Clients: the official `openai` npm SDK and http.client."""
import http.client
import json
import os
import subprocess
import time

import pytest

from conftest import ROOT, Gateway, gateway_env
from mock_openai import MockOpenAI
import openai_schema

UPSTREAM_KEY = "sk-upstream-secret-0123456789"
CLIENT_KEY = "Bearer sk-client-secret-not-for-upstream"
HERE = os.path.join(ROOT, "tests", "integration")


@pytest.fixture(scope="module")
def mock():
    m = MockOpenAI(api_key=UPSTREAM_KEY).start()
    yield m
    m.stop()


# Both upstream clients: the native HTTP/1.1 one (the default for http://)
# and libcurl (UPSTREAM_CLIENT=curl, and every https:// upstream).
@pytest.fixture(scope="module", params=["curl", "native"])
def client(request):
    return request.param


@pytest.fixture(scope="module")
def gw(mock, client):
    g = Gateway(gateway_env(TARGET_API_URL=mock.base_url, TARGET_API_KEY=UPSTREAM_KEY,
                            MODELS_REFRESH_S=1, UPSTREAM_CLIENT=client))
    # Wait for the catalog's first load.
    deadline = time.time() + 20
    while time.time() < deadline:
        r, d = request(g, "GET", "/v1/models")
        if r.status == 200 and any(m["id"] == "gpt-mock" for m in json.loads(d)["data"]):
            break
        time.sleep(0.2)
    yield g
    out = g.stop_clean()
    assert UPSTREAM_KEY not in out, "the upstream key was logged"
    assert "sk-client-secret" not in out, "the client key was logged"


def request(gw, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", gw.http_port, timeout=60)
    h = {"Content-Type": "application/json", "Authorization": CLIENT_KEY}
    h.update(headers or {})
    c.request(method, path, body=None if body is None else
              (body if isinstance(body, (bytes, str)) else json.dumps(body)), headers=h)
    r = c.getresponse()
    d = r.read()
    c.close()
    return r, d


def node(script, *args):
    r = subprocess.run(["node", script, *args], capture_output=True, text=True, timeout=120,
                       cwd=HERE)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_sdk_against_upstream(gw, mock):
    out = node("sdk_check.mjs", f"http://127.0.0.1:{gw.http_port}/v1", "gpt-mock", "embed-mock")
    assert "gpt-mock" in out["models"] and "embed-mock" in out["models"]
    assert out["chat"]["content"] == "echo: hello from the sdk"  # the mock's answer
    s = out["chat_stream"]
    assert s["pieces"] == 5 and s["text"] == "w0 w1 w2 w3 w4 ", s  # the mock's 5 events
    assert s["usage"] and s["usage"]["total_tokens"] > 0 and s["finish"] == "stop"
    assert out["completion"]["text"]
    assert out["completion_stream"]["text"]
    e = out["embeddings_base64_default"]
    # The mock's vectors depend on the input's index; the SDK decoded the
    # default base64 form into the same floats the mock sent.
    assert e["n"] == 3 and e["vectors"][0] == out["embeddings_float"]["vector"]
    assert out["embeddings_float"]["dims"] == e["dims"]
    assert out["not_found"]["error"]["status"] == 404
    assert out["not_found"]["error"]["code"] == "model_not_found"
    # The upstream got its own key, never the client's.
    for rec in mock.snapshot():
        if rec["path"].startswith("/v1/chat"):
            assert rec["headers"].get("authorization") == f"Bearer {UPSTREAM_KEY}"


FULL = {
    "model": "gpt-mock",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
        {"role": "user", "name": "ann", "content": [
            {"type": "text", "text": "What is in this image and this audio?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png",
                                                "detail": "high"}},
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"},
    ],
    "tools": [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city", "strict": True,
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"], "additionalProperties": False}}}],
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "parallel_tool_calls": False,
    "response_format": {"type": "json_schema", "json_schema": {
        "name": "answer", "strict": True,
        "schema": {"type": "object", "properties": {"text": {"type": "string"}}}}},
    "logit_bias": {"50256": -100, "1234": 5.5},
    "temperature": 0, "top_p": 0.9, "n": 1, "stop": ["END", "STOP"], "max_tokens": 64,
    "max_completion_tokens": 64, "presence_penalty": 0.5, "frequency_penalty": -0.5,
    "logprobs": True, "top_logprobs": 2, "seed": 42, "user": "u-1",
    "metadata": {"k": "v"}, "store": False, "service_tier": "auto",
    "top_k": 40, "vendor_options": {"nested": {"deep": [1, 2.5, "x", None, True]}},
}


def test_full_surface_reaches_upstream_equal(gw, mock):
    mock.clear()
    r, d = request(gw, "POST", "/v1/chat/completions", FULL)
    assert r.status == 200, d
    openai_schema.validate("CreateChatCompletionResponse", json.loads(d))
    got = mock.find(path="/v1/chat/completions")[-1]["body"]
    assert got == FULL, json.dumps({k: (got.get(k), FULL.get(k)) for k in set(got) | set(FULL)
                                    if got.get(k) != FULL.get(k)})


def test_string_forms_are_kept(gw, mock):
    body = {"model": "gpt-mock", "messages": [{"role": "user", "content": "plain"}],
            "stop": "END", "tool_choice": "none"}
    mock.clear()
    r, _ = request(gw, "POST", "/v1/chat/completions", body)
    assert r.status == 200
    assert mock.find(path="/v1/chat/completions")[-1]["body"] == body


def test_tool_call_comes_back_to_the_sdk(gw):
    out = node("sdk_tools.mjs", f"http://127.0.0.1:{gw.http_port}/v1", "tool-mock")
    u = out["unary"]
    assert u["finish"] == "tool_calls"
    assert u["tool_calls"][0]["function"]["name"] == "get_weather"
    assert json.loads(u["tool_calls"][0]["function"]["arguments"])
    s = out["stream"]
    assert s["finish"] == "tool_calls"
    assert s["calls"][0]["name"] == "get_weather" and json.loads(s["calls"][0]["arguments"])


@pytest.mark.parametrize("model,status,retry", [("error-429", 429, "7"), ("error-500", 500, None),
                                                ("error-401", 401, None)])
def test_upstream_errors_pass_through(gw, model, status, retry):
    r, d = request(gw, "POST", "/v1/chat/completions",
                   {"model": model, "messages": [{"role": "user", "content": "x"}]})
    body = json.loads(d)
    assert r.status == status, body
    openai_schema.validate("ErrorResponse", body)
    assert body["error"]["message"]
    assert r.getheader("retry-after") == retry


def test_error_after_first_event_is_an_sse_error_event(gw):
    r, d = request(gw, "POST", "/v1/chat/completions",
                   {"model": "stream-error", "stream": True,
                    "messages": [{"role": "user", "content": "x"}]})
    assert r.status == 200
    events = [b[len("data: "):] for b in d.decode().split("\n\n") if b.strip()]
    assert "[DONE]" not in events
    first = json.loads(events[0])
    openai_schema.validate("CreateChatCompletionStreamResponse", first)
    err = json.loads(events[-1])
    openai_schema.validate("ErrorResponse", err)


def test_upstream_pauses_are_seen_by_the_client(gw):
    import socket
    body = json.dumps({"model": "gpt-mock", "stream": True, "mock_events": 4,
                       "mock_delay_ms": 150,
                       "messages": [{"role": "user", "content": "a b c d"}]}).encode()
    s = socket.create_connection(("127.0.0.1", gw.http_port))
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    t0 = time.monotonic()
    seen, buf = [], b""
    while b"data: [DONE]" not in buf:
        chunk = s.recv(65536)
        assert chunk
        buf += chunk
        seen.append((time.monotonic() - t0, chunk.count(b"data: {")))
    s.close()
    stamps = [t for t, n in seen if n]
    assert len(stamps) >= 3, seen
    assert stamps[-1] - stamps[0] >= 0.3, seen  # spread over the upstream's pauses


def test_stream_events_validate(gw):
    r, d = request(gw, "POST", "/v1/chat/completions",
                   {"model": "gpt-mock", "stream": True, "stream_options": {"include_usage": True},
                    "messages": [{"role": "user", "content": "a b"}]})
    events = [b[len("data: "):] for b in d.decode().split("\n\n") if b.strip()]
    assert events[-1] == "[DONE]"
    for e in events[:-1]:
        openai_schema.validate("CreateChatCompletionStreamResponse", json.loads(e))


# Text in another language with markdown's newlines and quotes in code, long
# enough for the codec's 16-byte UTF-8 checks on both sides.
CHINESE = ("你好！请介绍一下京都的寺庙和大阪的美食。\n\n```python\nprint(\"données\")\n```\n"
           "- 清水寺 😀 « très bien »\n\t伏见稻荷大社，金阁寺。") * 4


@pytest.mark.parametrize("ascii_only", [False, True], ids=["utf8", "u-escapes"])
def test_text_in_another_language_round_trips(gw, mock, ascii_only):
    """A conversation in Chinese sent as JavaScript sends it (UTF-8) and as
    Python's json.dumps does (every non-ASCII character a \\uXXXX escape)
    reaches the upstream as the same text, and the upstream's answer (the
    mock echoes it, written by json.dumps: escapes) comes back as that text,
    in strict JSON (UTF-8) that validates."""
    body = {"model": "gpt-mock", "messages": [{"role": "system", "content": CHINESE[:60]},
                                              {"role": "user", "content": CHINESE}]}
    mock.clear()
    r, d = request(gw, "POST", "/v1/chat/completions",
                   json.dumps(body, ensure_ascii=ascii_only).encode())
    assert r.status == 200, d
    out = json.loads(d.decode("utf-8", errors="strict"))
    openai_schema.validate("CreateChatCompletionResponse", out)
    assert mock.find(path="/v1/chat/completions")[-1]["body"] == body
    assert out["choices"][0]["message"]["content"] == "echo: " + CHINESE
    assert "你好".encode() in d  # written as UTF-8, not as escapes

    body["stream"] = True
    r, d = request(gw, "POST", "/v1/chat/completions",
                   json.dumps(body, ensure_ascii=ascii_only).encode())
    assert r.status == 200, d
    events = [b[len("data: "):] for b in d.decode().split("\n\n") if b.strip()]
    assert events[-1] == "[DONE]"
    for e in events[:-1]:
        openai_schema.validate("CreateChatCompletionStreamResponse", json.loads(e))
    assert mock.find(path="/v1/chat/completions")[-1]["body"] == body


def test_text_that_is_not_utf8_is_refused(gw, mock):
    """A byte that is not UTF-8 in a long run of Chinese text (where the
    16-byte check looks) is a 400 with an OpenAI error object, and nothing
    goes upstream."""
    text = ("京都的寺庙" * 10).encode()
    for bad in (text[:31] + b"\xff" + text[31:], text + b"\xe4\xbd", text[:-1] + b"a"):
        mock.clear()
        r, d = request(gw, "POST", "/v1/chat/completions",
                       b'{"model":"gpt-mock","messages":[{"role":"user","content":"' + bad + b'"}]}')
        assert r.status == 400, d
        err = json.loads(d)["error"]
        assert err["type"] == "invalid_request_error" and "UTF-8" in err["message"], err
        assert mock.find(path="/v1/chat/completions") == []


def test_servers_own_members_reach_the_client(gw):
    """What vLLM and DeepSeek add to OpenAI's answers (a choice's stop_reason,
    reasoning_content in the message and in a delta, usage's cache counts)
    reaches the client where the upstream put it; vLLM's stop_reason in a
    choice was a 500 "undecodable" answer."""
    r, d = request(gw, "POST", "/v1/chat/completions",
                   {"model": "gpt-mock", "mock_server_extras": True,
                    "messages": [{"role": "user", "content": "hello"}]})
    assert r.status == 200, d
    body = json.loads(d)
    openai_schema.validate("CreateChatCompletionResponse", body)
    choice = body["choices"][0]
    assert "stop_reason" in choice and choice["stop_reason"] is None
    assert choice["message"]["reasoning_content"] == "The user said hello."
    assert choice["message"]["content"] == "echo: hello"
    assert body["usage"]["prompt_cache_hit_tokens"] == 0
    assert body["usage"]["prompt_cache_miss_tokens"] == 1
    assert "prompt_logprobs" in body and body["prompt_logprobs"] is None

    r, d = request(gw, "POST", "/v1/chat/completions",
                   {"model": "gpt-mock", "mock_server_extras": True, "stream": True,
                    "messages": [{"role": "user", "content": "hello"}]})
    assert r.status == 200, d
    events = [json.loads(line[6:]) for line in d.decode().split("\n")
              if line.startswith("data: {")]
    for e in events:
        openai_schema.validate("CreateChatCompletionStreamResponse", e)
        assert e["choices"][0]["stop_reason"] is None
    deltas = [e["choices"][0]["delta"] for e in events]
    assert {"reasoning_content": "The user said hello."} in deltas
    assert "".join(x.get("content") or "" for x in deltas) == "w0 w1 w2 w3 w4 "
