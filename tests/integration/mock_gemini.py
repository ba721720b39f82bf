"""A mock Gemini API (generativelanguage.googleapis.com) and Vertex AI
endpoint for tests: Python stdlib only (plus `cryptography` to check the
service-account JWT's RS256 signature when a public key is given).

It speaks the documented wire format: POST
  /v1beta/models/{model}:generateContent            (x-goog-api-key)
  /v1beta/models/{model}:streamGenerateContent?alt=sse
  /v1/projects/{p}/locations/{l}/publishers/google/models/{model}:generateContent
                                                    (Authorization: Bearer <token>)
  /token   the OAuth token endpoint (grant_type jwt-bearer, assertion)
GenerateContentResponse (candidates, content.parts, finishReason,
usageMetadata, modelVersion, responseId), streamed as SSE data: events, and
Google's error body {"error": {"code", "message", "status"}}. Every request
is recorded (method, path, query, headers, body) in `MockGemini.requests`.

Behaviour by model: gemini-tool (functionCall unless the last turn is a
functionResponse), error-NNN, flaky-429 (429 first), stream-error (error
after one chunk), anything else echoes the last user text.
"""
import base64
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

TOKEN = "ya29.mock-access-token"
STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
          429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
PATH = re.compile(r"^(?:/v1beta|/v1/projects/([^/]+)/locations/([^/]+)/publishers/google)"
                  r"/models/([^/:]+):(generateContent|streamGenerateContent)$")
USAGE = {"promptTokenCount": 11, "candidatesTokenCount": 9, "totalTokenCount": 20}


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def last_user_text(body):
    for c in reversed(body.get("contents", [])):
        if c.get("role") == "user":
            return "".join(p.get("text", "") for p in c["parts"])
    return ""


def answer(model, body):
    contents = body.get("contents", [])
    last = contents[-1]["parts"] if contents else []
    if model == "gemini-tool" and not any("functionResponse" in p for p in last):
        return [{"text": "Checking."},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}], "STOP"
    if model == "gemini-tool":
        return [{"text": "Sunny in Paris."}], "STOP"
    return [{"text": "echo: " + last_user_text(body)}], "STOP"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send_json(self, status, obj, headers=()):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json; charset=UTF-8")
        self.send_header("content-length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, message):
        headers = [("retry-after", "0")] if status == 429 else []
        self.send_json(status, {"error": {"code": status, "message": message,
                                          "status": STATUS.get(status, "UNKNOWN")}}, headers)

    def token(self, raw):
        mock = self.server.mock
        form = parse_qs(raw.decode())
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return self.send_json(400, {"error": "unsupported_grant_type"})
        jwt = form.get("assertion", [""])[0]
        try:
            h, c, s = jwt.split(".")
            header, claims = json.loads(b64url_decode(h)), json.loads(b64url_decode(c))
        except ValueError:
            return self.send_json(400, {"error": "invalid_grant",
                                        "error_description": "malformed assertion"})
        mock.assertions.append({"header": header, "claims": claims})
        if mock.public_key is not None:
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import padding
            try:
                mock.public_key.verify(b64url_decode(s), f"{h}.{c}".encode(),
                                       padding.PKCS1v15(), hashes.SHA256())
            except Exception:
                return self.send_json(400, {"error": "invalid_grant",
                                            "error_description": "Invalid JWT Signature."})
        time.sleep(mock.token_delay_s)
        with mock.lock:  # the first token is TOKEN, the next ones TOKEN-2, TOKEN-3, ...
            tok = TOKEN if not mock.issued else f"{TOKEN}-{len(mock.issued) + 1}"
            mock.issued.append(tok)
        self.send_json(200, {"access_token": tok, "expires_in": mock.token_expires_in,
                             "token_type": "Bearer"})

    def do_POST(self):
        mock = self.server.mock
        raw = self.rfile.read(int(self.headers.get("content-length", "0")))
        u = urlsplit(self.path)
        is_json = u.path != "/token"
        try:
            body = json.loads(raw) if is_json else raw.decode()
        except ValueError:
            body = None
        rec = {"method": "POST", "path": u.path, "query": parse_qs(u.query),
               "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
        with mock.lock:
            mock.requests.append(rec)
            count = sum(1 for r in mock.requests if r["path"] == u.path)
        if u.path == "/token":
            return self.token(raw)
        m = PATH.match(u.path)
        if not m:
            return self.error(404, "Requested entity was not found.")
        vertex = m.group(1) is not None
        auth = self.headers.get("authorization") or ""
        if vertex and not (auth.startswith("Bearer ") and auth[7:] in mock.issued):
            return self.error(401, "Request had invalid authentication credentials.")
        if not vertex and self.headers.get("x-goog-api-key") != mock.api_key:
            return self.error(400, "API key not valid. Please pass a valid API key.")
        model, method = m.group(3), m.group(4)
        if model.startswith("error-"):
            st = int(model[6:])
            return self.error(st, {429: "Resource has been exhausted (e.g. check quota).",
                                   400: "Invalid JSON payload received.",
                                   500: "An internal error has occurred."}.get(st, "error"))
        if model == "flaky-429" and count == 1:
            return self.error(429, "Resource has been exhausted (e.g. check quota).")
        parts, finish = answer(model, body)
        if method == "generateContent":
            return self.send_json(200, {
                "candidates": [{"content": {"parts": parts, "role": "model"},
                                "finishReason": finish, "index": 0,
                                "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT",
                                                   "probability": "NEGLIGIBLE"}]}],
                "usageMetadata": USAGE, "modelVersion": model + "-001",
                "responseId": "resp-mock-1"})
        if rec["query"].get("alt") != ["sse"]:
            return self.error(400, "stream without alt=sse")
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()

        def send(obj):
            self.wfile.write(b"data: " + json.dumps(obj).encode() + b"\r\n\r\n")
            self.wfile.flush()

        pieces = []
        for p in parts:
            if "text" in p:
                t = p["text"]
                pieces += [{"text": t[k:k + 6]} for k in range(0, len(t), 6)]
            else:
                pieces.append(p)
        for i, p in enumerate(pieces):
            last = i == len(pieces) - 1
            cand = {"content": {"parts": [p], "role": "model"}, "index": 0}
            if last:
                cand["finishReason"] = finish
            send({"candidates": [cand],
                  "usageMetadata": USAGE if last else {"promptTokenCount": 11,
                                                        "totalTokenCount": 11},
                  "modelVersion": model + "-001", "responseId": "resp-mock-2"})
            if model == "stream-error":
                send({"error": {"code": 503, "message": "The model is overloaded.",
                                "status": "UNAVAILABLE"}})
                break
        self.close_connection = True


class MockGemini:
    def __init__(self, api_key="gemini-mock-key", public_key=None):
        self.api_key = api_key
        self.public_key = public_key
        self.token_expires_in = 3599  # what /token says
        self.token_delay_s = 0.0      # how long /token takes
        self.issued = []              # the tokens /token gave, in order
        self.requests = []
        self.assertions = []
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

    def last_api(self):
        """The last request that is not a token fetch: a background fetch
        races the request that started it to this mock."""
        with self.lock:
            return [r for r in self.requests if r["path"] != "/token"][-1]
