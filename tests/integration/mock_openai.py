"""A mock OpenAI upstream for tests: Python stdlib only (http.server).

It speaks OpenAI's documented wire format (the shapes of
CreateChatCompletionResponse, CreateChatCompletionStreamResponse,
CreateCompletionResponse, CreateEmbeddingResponse, ListModelsResponse and
the error object in openapi.json) and records every request it receives
(method, path, headers, parsed JSON body), in process (`MockOpenAI.requests`)
and over HTTP (`GET /__requests`, `DELETE /__requests` clears).

Behaviour is picked by the model name, so a test needs nothing but a request:
  error-NNN      answers HTTP NNN with an OpenAI error body (429 adds
                 Retry-After: 7)
  stream-error   a stream that sends one chunk, then an error event
  tool-mock      answers with a tool call (streamed or not)
  slow           waits `mock_delay_ms` (default 3000) before answering
A request member "mock_burst": true makes a stream go out in one write.
A request member "mock_server_extras": true adds the members OpenAI-compatible
servers add to chat answers: vLLM's (a choice's "stop_reason", "prompt_logprobs"
at the top level, a usage's "prompt_tokens_details": null) and DeepSeek's
("reasoning_content" in the message or in the first delta, a usage's
"prompt_cache_hit_tokens" and "prompt_cache_miss_tokens").
  anything else  in the model list: an echo of the last user message
  ctx-limit...   400 context_length_exceeded (not listed; for fallback tests)
  not listed     404 model_not_found, as OpenAI does
Failure injection (options, default off): `fail_rate` answers that share of
POSTs with `fail_status` (default 503), `fail_first` the first N POSTs;
`retry_after` adds that Retry-After header to them. Every answer carries
`X-Mock-Id` (the instance's `ident`, default its port).
Streams send `mock_events` content chunks (default 5) spaced by
`mock_delay_ms` (default 0) — both read from the request body, where the
gateway passes them through untouched as unknown members — then a final
chunk, a usage chunk when stream_options.include_usage, and `data: [DONE]`.
Every event a stream could not deliver (client gone) is noted in the
request's record: `aborted_at` (time.time()).

Standalone: python3 tests/integration/mock_openai.py --port 9000 [--api-key K]
"""
import argparse
import base64
import json
import random
import ssl
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CREATED = 1700000000
DEFAULT_MODELS = [
    ("gpt-mock", "mock-org"), ("tool-mock", "mock-org"), ("text-mock", "mock-org"),
    ("embed-mock", "mock-embeddings"), ("stream-error", "mock-org"), ("slow", "mock-org"),
    ("error-400", "mock-org"), ("error-401", "mock-org"), ("error-429", "mock-org"),
    ("error-500", "mock-org"), ("error-503", "mock-org"),
]

ERRORS = {
    400: ("Invalid request: something is wrong with the body.", "invalid_request_error",
          "messages", "invalid_value"),
    401: ("Incorrect API key provided.", "invalid_request_error", None, "invalid_api_key"),
    403: ("You are not allowed to do that.", "invalid_request_error", None, None),
    404: ("Not found.", "invalid_request_error", None, None),
    429: ("Rate limit reached for requests.", "requests", None, "rate_limit_exceeded"),
    500: ("The server had an error while processing your request.", "server_error", None, None),
    503: ("The engine is currently overloaded, please try again later.", "server_error",
          None, None),
}


def error_body(message, type_, param=None, code=None):
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def usage(prompt, completion):
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0}}


def last_user_text(body):
    for m in reversed(body.get("messages") or []):
        if m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, str):
                return c
            if isinstance(c, list):
                return " ".join(p.get("text", "") for p in c if isinstance(p, dict))
    return ""


def embedding_vector(i, dims):
    """Values exact in float32, so a test can compare them."""
    if dims == 4:
        return [float(i) + 0.5, -1.25, 2.0 ** -3, 3.0]
    return [float(i) + k * 0.25 for k in range(dims)]


class MockOpenAI:
    """The mock, runnable in a test's thread (start/stop) or standalone."""

    def __init__(self, port=0, host="127.0.0.1", api_key=None, models=None, fail_rate=0.0,
                 fail_first=0, fail_status=503, retry_after=None, ident=None, tls=None):
        self.api_key = api_key
        self.fail_rate = fail_rate
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.retry_after = retry_after
        self.posts = 0
        self.models = list(models or DEFAULT_MODELS)
        self.requests = []
        self.lock = threading.Lock()
        mock = self

        class Handler(_Handler):
            server_mock = mock

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.connections = 0  # accepted (for TLS: handshakes done)
        self.tls = tls
        if tls:  # (certfile, keyfile): https, HTTP/1.1 only (ALPN)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            ctx.set_alpn_protocols(["http/1.1"])
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.ident = ident or str(self.port)
        self.thread = None

    @property
    def base_url(self):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/v1"

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def record(self, rec):
        with self.lock:
            self.requests.append(rec)

    def snapshot(self):
        with self.lock:
            return [dict(r) for r in self.requests]

    def clear(self):
        with self.lock:
            self.requests.clear()

    def should_fail(self):
        """Failure injection for one POST (see the module doc)."""
        with self.lock:
            self.posts += 1
            if self.posts <= self.fail_first:
                return True
        return self.fail_rate > 0 and random.random() < self.fail_rate

    def find(self, path=None, model=None):
        return [r for r in self.snapshot()
                if (path is None or r["path"] == path)
                and (model is None or (r["body"] or {}).get("model") == model)]


class _Handler(BaseHTTPRequestHandler):
    _burst = False
    protocol_version = "HTTP/1.1"
    server_mock = None  # set by MockOpenAI

    def log_message(self, fmt, *args):  # quiet
        pass

    def setup(self):
        with self.server_mock.lock:
            self.server_mock.connections += 1
        super().setup()

    # ---- plumbing --------------------------------------------------------

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        return raw, body

    def _record(self, raw, body):
        rec = {"method": self.command, "path": self.path,
               "headers": {k.lower(): v for k, v in self.headers.items()},
               "body": body, "raw": raw.decode("utf-8", "replace"), "time": time.time(),
               "aborted_at": None, "events_sent": 0}
        self.server_mock.record(rec)
        return rec

    def _json(self, status, obj, headers=()):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("X-Mock-Id", self.server_mock.ident)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status, message=None, type_=None, param=None, code=None, headers=()):
        m, t, p, c = ERRORS.get(status, ("Upstream error.", "server_error", None, None))
        self._json(status, error_body(message or m, type_ or t, param if param else p,
                                      code if code else c), headers)

    def _start_stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        if self._burst:
            # The whole response goes out in one write at the end.
            self._headers_buffer.append(b"\r\n")
            self._burst_buf = bytearray(b"".join(self._headers_buffer))
            self._headers_buffer = []
        else:
            self.end_headers()

    def _chunk(self, data):
        out = b"%x\r\n%s\r\n" % (len(data), data)
        if self._burst:
            self._burst_buf += out
            return
        self.wfile.write(out)
        self.wfile.flush()

    def _event(self, rec, obj):
        payload = obj if isinstance(obj, str) else json.dumps(obj)
        self._chunk(f"data: {payload}\n\n".encode())
        rec["events_sent"] += 1

    def _end_stream(self):
        if self._burst:
            self.wfile.write(bytes(self._burst_buf) + b"0\r\n\r\n")
        else:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _authorized(self):
        key = self.server_mock.api_key
        return key is None or self.headers.get("Authorization") == f"Bearer {key}"

    def _known(self, model):
        return any(m == model for m, _ in self.server_mock.models)

    # ---- routes ----------------------------------------------------------

    def do_GET(self):
        raw, body = b"", None
        if self.path == "/__requests":
            return self._json(200, self.server_mock.snapshot())
        rec = self._record(raw, body)
        if not self._authorized():
            return self._error(401)
        if self.path.rstrip("/") == "/v1/models":
            return self._json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": CREATED, "owned_by": o}
                for m, o in self.server_mock.models]})
        if self.path.startswith("/v1/models/"):
            mid = self.path[len("/v1/models/"):]
            for m, o in self.server_mock.models:
                if m == mid:
                    return self._json(200, {"id": m, "object": "model", "created": CREATED,
                                            "owned_by": o})
            return self._error(404, f"The model '{mid}' does not exist",
                               "invalid_request_error", "model", "model_not_found")
        rec["unrouted"] = True
        self._error(404, f"Unknown path {self.path}")

    def do_DELETE(self):
        if self.path == "/__requests":
            self.server_mock.clear()
            return self._json(200, {"cleared": True})
        self._error(404)

    def do_POST(self):
        raw, body = self._read_body()
        rec = self._record(raw, body)
        # "mock_burst": true writes a whole stream in one write: a SIGKILL then
        # lands before the first byte or after the last, never mid-stream.
        self._burst = isinstance(body, dict) and body.get("mock_burst") is True
        try:
            self._post(rec, body)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError,
                ssl.SSLError):  # (over TLS: the peer closed without close_notify)
            rec["aborted_at"] = time.time()
            self.close_connection = True

    def _post(self, rec, body):
        if not self._authorized():
            return self._error(401)
        if not isinstance(body, dict):
            return self._error(400, "We could not parse the JSON body of your request.",
                               "invalid_request_error")
        model = body.get("model") or ""
        mock = self.server_mock
        if mock.should_fail():
            rec["injected_failure"] = True
            ra = [("Retry-After", str(mock.retry_after))] if mock.retry_after is not None else []
            return self._error(mock.fail_status, headers=ra)
        if model.startswith("ctx-limit"):
            return self._error(400, "This model's maximum context length is 16 tokens.",
                               "invalid_request_error", "messages", "context_length_exceeded")
        if model.startswith("error-"):
            status = int(model[len("error-"):])
            headers = [("Retry-After", "7")] if status == 429 else []
            return self._error(status, headers=headers)
        if not self._known(model):
            return self._error(404, f"The model '{model}' does not exist",
                               "invalid_request_error", "model", "model_not_found")
        delay = float(body.get("mock_delay_ms", 0)) / 1000.0
        if model == "slow":
            time.sleep(float(body.get("mock_delay_ms", 3000)) / 1000.0)
            delay = 0
        path = self.path.rstrip("/")
        if path == "/v1/chat/completions":
            return self._chat(rec, body, model, delay)
        if path == "/v1/completions":
            return self._completions(rec, body, model, delay)
        if path == "/v1/embeddings":
            return self._embeddings(body, model)
        self._error(404, f"Unknown path {self.path}")

    # ---- chat -------------------------------------------------------------

    def _tool_call(self, body):
        tools = body.get("tools") or []
        name = (tools[0].get("function") or {}).get("name") if tools else "get_weather"
        return {"id": "call_mock_1", "type": "function",
                "function": {"name": name, "arguments": "{\"city\": \"Paris\"}"}}

    def _chat(self, rec, body, model, delay):
        text = "echo: " + last_user_text(body)
        prompt_tokens = max(1, len(last_user_text(body).split()))
        extras = bool(body.get("mock_server_extras"))
        if not body.get("stream"):
            if model == "tool-mock":
                msg = {"role": "assistant", "content": None, "refusal": None,
                       "tool_calls": [self._tool_call(body)]}
                finish = "tool_calls"
            else:
                msg = {"role": "assistant", "content": text, "refusal": None}
                finish = "stop"
            answer = {
                "id": "chatcmpl-mock-1", "object": "chat.completion", "created": CREATED,
                "model": model, "system_fingerprint": "fp_mock", "service_tier": "default",
                "choices": [{"index": 0, "message": msg, "logprobs": None,
                             "finish_reason": finish}],
                "usage": usage(prompt_tokens, 7)}
            if extras:
                msg["reasoning_content"] = "The user said hello."
                answer["choices"][0]["stop_reason"] = None
                answer["prompt_logprobs"] = None
                answer["usage"].update(prompt_tokens_details=None, prompt_cache_hit_tokens=0,
                                       prompt_cache_miss_tokens=prompt_tokens)
            return self._json(200, answer)

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        n_events = int(body.get("mock_events", 5))

        def chunk(delta, finish=None, choices=True):
            c = {"id": "chatcmpl-mock-1", "object": "chat.completion.chunk",
                 "created": CREATED, "model": model, "system_fingerprint": "fp_mock",
                 "choices": [{"index": 0, "delta": delta, "logprobs": None,
                              "finish_reason": finish}] if choices else []}
            if extras and choices:
                c["choices"][0]["stop_reason"] = None
            if include_usage:
                c["usage"] = None
            return c

        self._start_stream()
        self._event(rec, chunk({"role": "assistant", "content": "", "refusal": None}))
        if extras:
            self._event(rec, chunk({"reasoning_content": "The user said hello."}))
        if model == "stream-error":
            time.sleep(delay)
            self._event(rec, chunk({"content": "partial"}))
            self._event(rec, error_body("The stream broke upstream.", "server_error", None,
                                        "stream_failed"))
            return self._end_stream()
        if model == "tool-mock":
            tc = self._tool_call(body)
            self._event(rec, chunk({"tool_calls": [{"index": 0, "id": tc["id"], "type": "function",
                                                    "function": {"name": tc["function"]["name"],
                                                                 "arguments": ""}}]}))
            args = tc["function"]["arguments"]
            for part in (args[:len(args) // 2], args[len(args) // 2:]):
                time.sleep(delay)
                self._event(rec, chunk({"tool_calls": [{"index": 0,
                                                        "function": {"arguments": part}}]}))
            finish = "tool_calls"
        else:
            for i in range(n_events):
                time.sleep(delay)
                self._event(rec, chunk({"content": f"w{i} "}))
            finish = "stop"
        self._event(rec, chunk({}, finish))
        if include_usage:
            u = chunk(None, choices=False)
            u["usage"] = usage(prompt_tokens, n_events)
            self._event(rec, u)
        self._event(rec, "[DONE]")
        self._end_stream()

    # ---- completions ---------------------------------------------------------

    def _completions(self, rec, body, model, delay):
        prompt = body.get("prompt")
        ptext = prompt if isinstance(prompt, str) else json.dumps(prompt)

        def obj(text, finish, with_usage=False):
            o = {"id": "cmpl-mock-1", "object": "text_completion", "created": CREATED,
                 "model": model, "system_fingerprint": "fp_mock",
                 "choices": [{"text": text, "index": 0, "logprobs": None,
                              "finish_reason": finish}]}
            if with_usage:
                o["usage"] = usage(max(1, len(ptext.split())), 3)
            return o

        if not body.get("stream"):
            return self._json(200, obj("completed: " + ptext, "stop", True))
        n_events = int(body.get("mock_events", 3))
        self._start_stream()
        for i in range(n_events):
            time.sleep(delay)
            self._event(rec, obj(f"t{i} ", None))
        self._event(rec, obj("", "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            u = obj("", None, True)
            u["choices"] = []
            self._event(rec, u)
        self._event(rec, "[DONE]")
        self._end_stream()

    # ---- embeddings ------------------------------------------------------------

    def _embeddings(self, body, model):
        inp = body.get("input")
        if isinstance(inp, str):
            items = [inp]
        elif isinstance(inp, list) and inp and isinstance(inp[0], int):
            items = [inp]
        else:
            items = list(inp or [])
        dims = int(body.get("dimensions") or 4)
        fmt = body.get("encoding_format") or "float"
        data = []
        for i, _ in enumerate(items):
            vec = embedding_vector(i, dims)
            if fmt == "base64":
                emb = base64.b64encode(struct.pack("<%df" % len(vec), *vec)).decode()
            else:
                emb = vec
            data.append({"object": "embedding", "index": i, "embedding": emb})
        self._json(200, {"object": "list", "data": data, "model": model,
                         "usage": {"prompt_tokens": len(items), "total_tokens": len(items)}})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=9000)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--api-key", default=None, help="require Authorization: Bearer KEY")
    ap.add_argument("--fail-rate", type=float, default=0.0, help="share of POSTs that fail")
    ap.add_argument("--fail-first", type=int, default=0, help="the first N POSTs fail")
    ap.add_argument("--fail-status", type=int, default=503, help="status of injected failures")
    ap.add_argument("--retry-after", default=None, help="Retry-After of injected failures")
    ap.add_argument("--id", default=None, help="X-Mock-Id of every answer (default: the port)")
    args = ap.parse_args()
    mock = MockOpenAI(port=args.port, host=args.host, api_key=args.api_key,
                      fail_rate=args.fail_rate, fail_first=args.fail_first,
                      fail_status=args.fail_status, retry_after=args.retry_after, ident=args.id)
    print(f"mock OpenAI on {mock.base_url}", flush=True)
    try:
        mock.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        mock.httpd.server_close()


if __name__ == "__main__":
    main()
