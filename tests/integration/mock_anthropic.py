"""A mock Anthropic Messages API for tests: Python stdlib only.

It speaks the documented wire format of POST /v1/messages (x-api-key and
anthropic-version headers; the Message object; the streaming events
message_start, content_block_start, ping, content_block_delta (text_delta,
input_json_delta), content_block_stop, message_delta, message_stop and
error; the error object {"type":"error","error":{"type","message"}}) and
records every request (method, path, query, headers, parsed JSON body) in
`MockAnthropic.requests`.

Behaviour is picked by the request's model:
  claude-tool     answers with a tool_use block (get_weather, city Paris);
                  when the last user turn holds a tool_result, with text
  error-NNN       HTTP NNN with Anthropic's error body (429: retry-after: 0)
  flaky-429       429 on the first request, then as claude-echo
  stream-error    a stream that sends some text, then an error event
  anything else   echoes the last user text ("echo: ...")
"""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qs

ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
    500: "api_error", 529: "overloaded_error",
}
USAGE = {"input_tokens": 25, "output_tokens": 12, "cache_creation_input_tokens": 0,
         "cache_read_input_tokens": 0}


def last_user_text(body):
    for m in reversed(body.get("messages", [])):
        if m.get("role") != "user":
            continue
        c = m.get("content")
        if isinstance(c, str):
            return c
        for b in c:
            if b.get("type") == "text":
                return b["text"]
        return ""
    return ""


def has_tool_result(body):
    msgs = body.get("messages", [])
    if not msgs or not isinstance(msgs[-1].get("content"), list):
        return False
    return any(b.get("type") == "tool_result" for b in msgs[-1]["content"])


def message(body):
    model = body["model"]
    if model == "claude-tool" and not has_tool_result(body):
        content = [{"type": "text", "text": "Let me check the weather."},
                   {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9",
                    "name": "get_weather", "input": {"city": "Paris"}}]
        stop = "tool_use"
    elif model == "claude-tool":
        content = [{"type": "text", "text": "It is sunny in Paris."}]
        stop = "end_turn"
    else:
        content = [{"type": "text", "text": "echo: " + last_user_text(body)}]
        stop = "end_turn"
    return {"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
            "content": content, "model": model, "stop_reason": stop, "stop_sequence": None,
            "usage": dict(USAGE)}


def stream_events(body):
    """The documented event sequence for message(body)."""
    msg = message(body)
    start = dict(msg, content=[], stop_reason=None,
                 usage=dict(USAGE, output_tokens=1))
    ev = [("message_start", {"type": "message_start", "message": start}),
          ("ping", {"type": "ping"})]
    for i, b in enumerate(msg["content"]):
        if b["type"] == "text":
            ev.append(("content_block_start", {"type": "content_block_start", "index": i,
                                               "content_block": {"type": "text", "text": ""}}))
            text = b["text"]
            for k in range(0, len(text), 5):
                ev.append(("content_block_delta", {
                    "type": "content_block_delta", "index": i,
                    "delta": {"type": "text_delta", "text": text[k:k + 5]}}))
        else:
            ev.append(("content_block_start", {
                "type": "content_block_start", "index": i,
                "content_block": {"type": "tool_use", "id": b["id"], "name": b["name"],
                                  "input": {}}}))
            args = json.dumps(b["input"])
            for k in range(0, len(args), 7):
                ev.append(("content_block_delta", {
                    "type": "content_block_delta", "index": i,
                    "delta": {"type": "input_json_delta", "partial_json": args[k:k + 7]}}))
        ev.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    ev.append(("message_delta", {"type": "message_delta",
                                 "delta": {"stop_reason": msg["stop_reason"],
                                           "stop_sequence": None},
                                 "usage": {"output_tokens": USAGE["output_tokens"]}}))
    ev.append(("message_stop", {"type": "message_stop"}))
    return ev


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send_json(self, status, obj, headers=()):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", "req_mock_1")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, message):
        headers = [("retry-after", "0")] if status == 429 else []
        self.send_json(status, {"type": "error", "error": {"type": ERROR_TYPES.get(status, "api_error"),
                                                           "message": message}}, headers)

    def do_POST(self):
        mock = self.server.mock
        n = int(self.headers.get("content-length", "0"))
        raw = self.rfile.read(n)
        u = urlsplit(self.path)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        rec = {"method": "POST", "path": u.path, "query": parse_qs(u.query),
               "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
        with mock.lock:
            mock.requests.append(rec)
            count = sum(1 for r in mock.requests if r["body"] and body and
                        r["body"].get("model") == body.get("model"))
        if u.path != "/v1/messages":
            return self.error(404, "Not found")
        if self.headers.get("x-api-key") != mock.api_key:
            return self.error(401, "invalid x-api-key")
        if not self.headers.get("anthropic-version"):
            return self.error(400, "anthropic-version: header is required")
        if body is None:
            return self.error(400, "invalid JSON")
        model = body.get("model", "")
        if model.startswith("error-"):
            status = int(model[6:])
            return self.error(status, {429: "Number of requests has exceeded your rate limit",
                                       400: "messages: roles must alternate",
                                       500: "Internal server error",
                                       529: "Overloaded"}.get(status, "error"))
        if model == "flaky-429" and count == 1:
            return self.error(429, "Number of requests has exceeded your rate limit")
        if model == "garbage-200":  # a broken proxy in front of the API, say
            raw = b"<html>upstream is having a moment</html>"
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
            return
        if not body.get("stream"):
            return self.send_json(200, message(body))
        events = stream_events(body)
        if model == "stream-error":
            events = events[:4] + [("error", {"type": "error", "error": {
                "type": "overloaded_error", "message": "Overloaded"}})]
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        for name, data in events:
            self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()
        self.close_connection = True


class MockAnthropic:
    def __init__(self, api_key="sk-ant-mock-key"):
        self.api_key = api_key
        self.requests = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.mock = self
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"

    def start(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def clear(self):
        with self.lock:
            self.requests.clear()

    def last(self):
        with self.lock:
            return self.requests[-1]
