"""A mock AWS Bedrock runtime for tests: Python stdlib only.

It speaks the documented wire format of Converse and ConverseStream:
POST /model/{modelId}/converse and /model/{modelId}/converse-stream, signed
with SigV4 (service "bedrock"); the mock recomputes the signature from the
request it received, as AWS does (canonical request with the path URI-encoded
once more, signed headers, payload hash; the key derived from the secret,
date, region and service) and answers 403 InvalidSignatureException when it
differs. Converse answers {"output":{"message":...},"stopReason","usage",
"metrics"}; ConverseStream answers application/vnd.amazon.eventstream
frames (prelude with CRC32, headers :event-type / :content-type /
:message-type, JSON payload, message CRC32): messageStart,
contentBlockStart, contentBlockDelta, contentBlockStop, messageStop,
metadata, or an exception frame. Errors: x-amzn-ErrorType and
{"message": ...}. Every request is recorded (method, path as sent, query,
headers, body) in `MockBedrock.requests`.

Behaviour by model id: *tool* (toolUse unless the last turn has a
toolResult), error-NNN, flaky-429, stream-error (throttlingException after
one delta), anything else echoes the last user text.
"""
import hashlib
import hmac
import json
import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote, urlsplit

ERRORS = {400: "ValidationException", 403: "AccessDeniedException",
          404: "ResourceNotFoundException", 429: "ThrottlingException",
          500: "InternalServerException", 503: "ServiceUnavailableException"}
USAGE = {"inputTokens": 30, "outputTokens": 10, "totalTokens": 40}


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def expected_authorization(method, raw_path, headers, body, signed, secret, akid, region):
    """SigV4 as AWS documents it, from the request as received."""
    amz_date = headers["x-amz-date"]
    date = amz_date[:8]
    canon_path = quote(raw_path, safe="/-_.~")
    canon_headers = "".join(f"{h}:{' '.join(headers[h].strip().split())}\n" for h in signed)
    canon = "\n".join([method, canon_path, "", canon_headers, ";".join(signed),
                       hashlib.sha256(body).hexdigest()])
    scope = f"{date}/{region}/bedrock/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(canon.encode()).hexdigest()])
    k = _hmac(("AWS4" + secret).encode(), date)
    for part in (region, "bedrock", "aws4_request"):
        k = _hmac(k, part)
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    return (f"AWS4-HMAC-SHA256 Credential={akid}/{scope}, "
            f"SignedHeaders={';'.join(signed)}, Signature={sig}")


def frame(headers, payload):
    """One event-stream message: string headers and a bytes payload."""
    hb = b""
    for name, value in headers.items():
        n, v = name.encode(), value.encode()
        hb += bytes([len(n)]) + n + bytes([7]) + struct.pack(">H", len(v)) + v
    total = 12 + len(hb) + len(payload) + 4
    prelude = struct.pack(">II", total, len(hb))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    msg = prelude + hb + payload
    return msg + struct.pack(">I", zlib.crc32(msg))


def event(etype, obj):
    obj = dict(obj, p="abcdefghijklmnopqrstuvwxyzABCDEFGHIJ")  # AWS pads payloads with "p"
    return frame({":event-type": etype, ":content-type": "application/json",
                  ":message-type": "event"}, json.dumps(obj).encode())


def last_user_text(body):
    for m in reversed(body.get("messages", [])):
        if m["role"] == "user":
            return "".join(b.get("text", "") for b in m["content"])
    return ""


def answer(model, body):
    msgs = body.get("messages", [])
    has_result = msgs and any("toolResult" in b for b in msgs[-1]["content"])
    if "tool" in model and not has_result:
        return [{"text": "Let me look."},
                {"toolUse": {"toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "name": "get_weather",
                             "input": {"city": "Paris"}}}], "tool_use"
    if "tool" in model:
        return [{"text": "Sunny in Paris."}], "end_turn"
    return [{"text": "echo: " + last_user_text(body)}], "end_turn"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send_json(self, status, obj, headers=()):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("x-amzn-requestid", "11111111-2222-3333-4444-555555555555")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, message, etype=None):
        etype = etype or ERRORS.get(status, "InternalServerException")
        headers = [("x-amzn-ErrorType", f"{etype}:http://internal.amazon.com/coral/com.amazon.bedrock/")]
        if status == 429:
            headers.append(("retry-after", "0"))
        self.send_json(status, {"message": message}, headers)

    def do_POST(self):
        mock = self.server.mock
        raw = self.rfile.read(int(self.headers.get("content-length", "0")))
        u = urlsplit(self.path)
        hdrs = {k.lower(): v for k, v in self.headers.items()}
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        rec = {"method": "POST", "path": u.path, "query": u.query, "headers": hdrs, "body": body}
        with mock.lock:
            mock.requests.append(rec)
            count = sum(1 for r in mock.requests if r["path"] == u.path)
        auth = hdrs.get("authorization", "")
        try:
            signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
            want = expected_authorization("POST", u.path, hdrs, raw, signed, mock.secret,
                                          mock.access_key_id, mock.region)
        except (IndexError, KeyError):
            want = None
        rec["signature_ok"] = want == auth
        if want != auth:
            return self.error(403, "The request signature we calculated does not match the "
                                   "signature you provided.", "InvalidSignatureException")
        if mock.session_token and hdrs.get("x-amz-security-token") != mock.session_token:
            return self.error(403, "The security token included in the request is invalid.",
                              "UnrecognizedClientException")
        parts = u.path.split("/")
        if len(parts) != 4 or parts[1] != "model" or parts[3] not in ("converse", "converse-stream"):
            return self.error(404, "Not found")
        model = unquote(parts[2])
        if model.startswith("error-"):
            st = int(model[6:])
            return self.error(st, {429: "Too many requests, please wait before trying again.",
                                   400: "Malformed input request, please reformat your input "
                                        "and try again.",
                                   500: "The server encountered an internal error."}.get(st, "err"))
        if model == "flaky-429" and count == 1:
            return self.error(429, "Too many requests, please wait before trying again.")
        blocks, stop = answer(model, body)
        if parts[3] == "converse":
            return self.send_json(200, {"output": {"message": {"role": "assistant",
                                                               "content": blocks}},
                                        "stopReason": stop, "usage": USAGE,
                                        "metrics": {"latencyMs": 123}})
        self.send_response(200)
        self.send_header("content-type", "application/vnd.amazon.eventstream")
        self.send_header("x-amzn-requestid", "11111111-2222-3333-4444-555555555555")
        self.send_header("connection", "close")
        self.end_headers()
        out = [event("messageStart", {"role": "assistant"})]
        for i, b in enumerate(blocks):
            if "text" in b:
                t = b["text"]
                for k in range(0, len(t), 5):
                    out.append(event("contentBlockDelta", {"contentBlockIndex": i,
                                                           "delta": {"text": t[k:k + 5]}}))
                    if model == "stream-error":
                        out.append(frame({":exception-type": "throttlingException",
                                          ":content-type": "application/json",
                                          ":message-type": "exception"},
                                         json.dumps({"message": "Too many tokens, please wait "
                                                                "before trying again."}).encode()))
                        break
                if model == "stream-error":
                    break
            else:
                tu = b["toolUse"]
                out.append(event("contentBlockStart", {"contentBlockIndex": i, "start": {
                    "toolUse": {"toolUseId": tu["toolUseId"], "name": tu["name"]}}}))
                args = json.dumps(tu["input"])
                for k in range(0, len(args), 4):
                    out.append(event("contentBlockDelta", {"contentBlockIndex": i, "delta": {
                        "toolUse": {"input": args[k:k + 4]}}}))
            if model != "stream-error":
                out.append(event("contentBlockStop", {"contentBlockIndex": i}))
        if model != "stream-error":
            out.append(event("messageStop", {"stopReason": stop}))
            out.append(event("metadata", {"usage": USAGE, "metrics": {"latencyMs": 99}}))
        data = b"".join(out)
        for k in range(0, len(data), 37):  # frames split across reads
            self.wfile.write(data[k:k + 37])
            self.wfile.flush()
        self.close_connection = True


class MockBedrock:
    def __init__(self, access_key_id="AKIDEXAMPLE", secret="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                 region="us-east-1", session_token=None):
        self.access_key_id, self.secret, self.region = access_key_id, secret, region
        self.session_token = session_token
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
