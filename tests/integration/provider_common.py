"""Helpers shared by the provider tests (test_provider_*.py): one SDK call
through sdk_call.mjs, raw HTTP calls through http.client, SSE parsing, and
the conversations every provider test sends."""
import http.client
import json
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))

# A 1x1 PNG as a data URL, for image parts.
PNG_B64 = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
PNG_URL = "data:image/png;base64," + PNG_B64

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]},
    },
}


def client_env(client):
    """The gateway's environment for one upstream client: the native one
    (the default) or curl; debug logs say which served each exchange."""
    return {"UPSTREAM_CLIENT": client, "LOG_LEVEL": "debug"}


def check_client(out, client):
    """Every exchange in the gateway's log |out| went through |client|."""
    sent = [ln for ln in out.splitlines() if "[upstream]" in ln and "-> backend" in ln]
    assert sent, out[-3000:]
    assert all(ln.endswith(", native)") == (client == "native") for ln in sent), sent[:5]


def sdk(gw, params, max_retries=0):
    """One chat call with the official SDK; its JSON output."""
    r = subprocess.run(["node", os.path.join(HERE, "sdk_call.mjs"),
                        f"http://127.0.0.1:{gw.http_port}/v1",
                        json.dumps({"params": params, "maxRetries": max_retries})],
                       capture_output=True, text=True, timeout=120, cwd=HERE)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def post(gw, body, path="/v1/chat/completions"):
    """Raw POST: (status, headers, body bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", gw.http_port, timeout=60)
    c.request("POST", path, body=json.dumps(body),
              headers={"content-type": "application/json",
                       "authorization": "Bearer sk-client-secret-not-for-upstream"})
    r = c.getresponse()
    data = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hdrs, data


def check_not_served(gw, mock, model, vendor):
    """A translating provider serves chat completions only: an embeddings
    call to one of its models is a 501 that names the method and the
    vendor, and nothing goes upstream."""
    from openai_schema import validate
    mock.clear()
    st, _, data = post(gw, {"model": model, "input": "x"}, path="/v1/embeddings")
    assert st == 501, data
    body = json.loads(data)
    validate("ErrorResponse", body)
    assert body["error"]["code"] == "not_implemented"
    assert body["error"]["message"] == (
        "/aigateway.v1.Inference/CreateEmbedding is not served by %s backends" % vendor)
    assert not mock.requests


def sse_events(data):
    """The data: payloads of an SSE body, [DONE] included as the string."""
    out = []
    for block in data.decode().split("\n\n"):
        lines = [ln[5:].lstrip() for ln in block.split("\n") if ln.startswith("data:")]
        if lines:
            d = "\n".join(lines)
            out.append(d if d == "[DONE]" else json.loads(d))
    return out


def stream_text(chunks):
    return "".join((c["choices"][0]["delta"].get("content") or "")
                   for c in chunks if c.get("choices"))


def stream_tool_calls(chunks):
    calls = {}
    for c in chunks:
        for ch in c.get("choices", []):
            for tc in (ch.get("delta") or {}).get("tool_calls") or []:
                cur = calls.setdefault(tc["index"], {"id": "", "name": "", "arguments": ""})
                if tc.get("id"):
                    cur["id"] = tc["id"]
                fn = tc.get("function") or {}
                cur["name"] += fn.get("name") or ""
                cur["arguments"] += fn.get("arguments") or ""
    return [calls[k] for k in sorted(calls)]


def finish_reason(chunks):
    for c in chunks:
        for ch in c.get("choices", []):
            if ch.get("finish_reason"):
                return ch["finish_reason"]
    return None
