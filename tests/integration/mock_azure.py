"""A mock Azure OpenAI endpoint for tests: Python stdlib only.

It speaks Azure's documented wire format: POST
/openai/deployments/{deployment}/chat/completions?api-version=V with the
`api-key` header (or Authorization: Bearer), OpenAI's chat completion and
chunk shapes plus Azure's additions (prompt_filter_results, a first stream
chunk with empty choices, content_filter_results per choice), and Azure's
error body {"error": {"code": "429", "message": ...}}. Every request is
recorded (method, path, query, headers, body) in `MockAzure.requests`.

Behaviour is picked by the deployment:
  tool-dep       answers with a tool call (get_weather, Paris) unless the last
                 message is a tool result
  error-NNN      HTTP NNN with Azure's error body (429: retry-after: 0)
  flaky-429      429 on the first request, then as any other
  stream-error   a stream that sends a chunk, then an error event
  anything else  echoes the last user text
"""
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

CREATED = 1700000000
FILTER = {"hate": {"filtered": False, "severity": "safe"},
          "self_harm": {"filtered": False, "severity": "safe"},
          "sexual": {"filtered": False, "severity": "safe"},
          "violence": {"filtered": False, "severity": "safe"}}
USAGE = {"prompt_tokens": 19, "completion_tokens": 7, "total_tokens": 26}
PATH = re.compile(r"^/openai/deployments/([^/]+)/(chat/completions|completions|embeddings)$")


def last_user_text(body):
    for m in reversed(body.get("messages", [])):
        if m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, str):
                return c
            return "".join(p.get("text", "") for p in c if p.get("type") == "text")
    return ""


def answer(dep, body):
    msgs = body.get("messages", [])
    if dep == "tool-dep" and not (msgs and msgs[-1].get("role") == "tool"):
        return {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_abc123", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}, "tool_calls"
    if dep == "tool-dep":
        return {"role": "assistant", "content": "Sunny in Paris."}, "stop"
    return {"role": "assistant", "content": "echo: " + last_user_text(body)}, "stop"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send_json(self, status, obj, headers=()):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("apim-request-id", "00000000-0000-0000-0000-000000000000")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, message, code=None):
        headers = [("retry-after", "0")] if status == 429 else []
        self.send_json(status, {"error": {"code": code or str(status), "message": message}}, headers)

    def do_POST(self):
        mock = self.server.mock
        raw = self.rfile.read(int(self.headers.get("content-length", "0")))
        u = urlsplit(self.path)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        rec = {"method": "POST", "path": u.path, "query": parse_qs(u.query),
               "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
        with mock.lock:
            mock.requests.append(rec)
            count = sum(1 for r in mock.requests if r["path"] == u.path)
        m = PATH.match(u.path)
        if not m:
            return self.error(404, "Resource not found", "404")
        if "api-version" not in rec["query"]:
            return self.error(404, "Resource not found", "404")
        auth_ok = (self.headers.get("api-key") == mock.api_key or
                   self.headers.get("authorization") == "Bearer " + mock.api_key)
        if not auth_ok:
            return self.error(401, "Access denied due to invalid subscription key or wrong API "
                                   "endpoint. Make sure to provide a valid key for an active "
                                   "subscription and use a correct regional API endpoint for "
                                   "your resource.")
        dep = m.group(1)
        if dep.startswith("error-"):
            status = int(dep[6:])
            msgs = {429: "Requests to the ChatCompletions_Create Operation under Azure OpenAI "
                         "API version 2024-10-21 have exceeded token rate limit of your current "
                         "OpenAI S0 pricing tier. Please retry after 0 seconds.",
                    400: "Invalid value for 'messages'.", 500: "The server had an error while "
                    "processing your request. Sorry about that!"}
            return self.error(status, msgs.get(status, "error"))
        if dep == "flaky-429" and count == 1:
            return self.error(429, "Rate limit is exceeded. Try again in 0 seconds.")
        msg, finish = answer(dep, body)
        if not body.get("stream"):
            return self.send_json(200, {
                "id": "chatcmpl-azure-1", "object": "chat.completion", "created": CREATED,
                "model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_azure",
                "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": FILTER}],
                "choices": [{"index": 0, "message": msg, "finish_reason": finish,
                             "logprobs": None, "content_filter_results": FILTER}],
                "usage": USAGE})
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()

        def send(obj):
            self.wfile.write(b"data: " + json.dumps(obj).encode() + b"\n\n")
            self.wfile.flush()

        base = {"id": "chatcmpl-azure-2", "object": "chat.completion.chunk", "created": CREATED,
                "model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_azure"}
        send({"choices": [], "created": 0, "id": "", "model": "", "object": "",
              "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": FILTER}]})
        send(dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""},
                                  "finish_reason": None, "logprobs": None,
                                  "content_filter_results": {}}]))
        if msg.get("tool_calls"):
            tc = msg["tool_calls"][0]
            send(dict(base, choices=[{"index": 0, "delta": {"tool_calls": [{
                "index": 0, "id": tc["id"], "type": "function",
                "function": {"name": "get_weather", "arguments": ""}}]}, "finish_reason": None}]))
            args = tc["function"]["arguments"]
            for k in range(0, len(args), 6):
                send(dict(base, choices=[{"index": 0, "delta": {"tool_calls": [{
                    "index": 0, "function": {"arguments": args[k:k + 6]}}]},
                    "finish_reason": None}]))
        else:
            text = msg["content"]
            for k in range(0, len(text), 4):
                send(dict(base, choices=[{"index": 0, "delta": {"content": text[k:k + 4]},
                                          "finish_reason": None, "content_filter_results": FILTER}]))
                if dep == "stream-error":
                    self.wfile.write(b'data: {"error": {"code": "500", "message": '
                                     b'"The server had an error while processing your request."}}\n\n')
                    self.wfile.flush()
                    self.close_connection = True
                    return
        send(dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": finish,
                                  "content_filter_results": {}}]))
        if (body.get("stream_options") or {}).get("include_usage"):
            send(dict(base, choices=[], usage=USAGE))
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


class MockAzure:
    def __init__(self, api_key="azure-mock-key"):
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
