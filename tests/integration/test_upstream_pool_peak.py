"""The upstream connection pool keeps what the busiest moment needed, with
both upstream clients (native and curl): after a burst of 1,000 requests at
once, a second burst of 1,000 reuses those connections instead of opening
new ones. A fixed idle cap below the peak (256 native, CURLMOPT_MAXCONNECTS
512 curl, until 2026-11-26) closed connections over the cap and the next
burst opened them again: this test failed with both (the second burst
opened 700 native and 207 curl connections).

The upstream is a small asyncio HTTP/1.1 server here that speaks the OpenAI
chat completion and model list shapes and counts the connections it
accepts. One gateway worker, so that every request goes through one pool."""
import asyncio
import json
import resource
import threading

import pytest

from conftest import Gateway, gateway_env

BURST = 1000
HOLD_S = 0.5
CHAT = json.dumps({
    "id": "chatcmpl-pool", "object": "chat.completion", "created": 1764115200,
    "model": "gpt-mock",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}).encode()
MODELS = json.dumps({"object": "list", "data": [
    {"id": "gpt-mock", "object": "model", "created": 0, "owned_by": "test"}]}).encode()


async def read_message(reader):
    """One HTTP/1.1 message (head and Content-Length body), or None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None, None
    n = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            n = int(value)
    body = await reader.readexactly(n) if n else b""
    return head, body


class Upstream:
    """The upstream; |ssl| (an ssl.SSLContext) serves https."""

    def __init__(self, ssl=None):
        self.ssl = ssl
        self.accepts = 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._conn, "127.0.0.1", 0, backlog=4096, ssl=self.ssl))
        self.port = self.server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    async def _conn(self, reader, writer):
        self.accepts += 1
        try:
            while True:
                head, _ = await read_message(reader)
                if head is None:
                    break
                body = MODELS if head.startswith(b"GET /v1/models") else CHAT
                if body is CHAT:
                    # Held a while, so that a burst's requests are in flight
                    # at once: its peak is (about) the whole burst with
                    # either client; answered at once, curl reused
                    # connections within the first burst (767 opened).
                    await asyncio.sleep(HOLD_S)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    def stop(self):
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


async def one_chat(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps({"model": "gpt-mock",
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n"
                 b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                 % (len(body), body))
    await writer.drain()
    head, answer = await read_message(reader)
    writer.close()
    return head.split(b" ")[1] if head else b"EOF", answer


async def burst(port, n=BURST):
    return await asyncio.wait_for(
        asyncio.gather(*(one_chat(port) for _ in range(n))), 60)


@pytest.fixture(scope="module", autouse=True)
def enough_fds():
    # The client and the upstream here hold 2 x BURST sockets at once.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 8192) if hard != resource.RLIM_INFINITY else 8192
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < 3 * BURST:
        pytest.skip(f"open-file limit {hard} below {3 * BURST}")
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.parametrize("client", ["native", "curl"])
def test_second_burst_reuses_the_first_bursts_connections(client):
    up = Upstream()
    g = Gateway(gateway_env(TARGET_API_URL=f"http://127.0.0.1:{up.port}/v1",
                            TARGET_API_KEY="sk-pool", UPSTREAM_CLIENT=client, WORKERS=1,
                            MAX_CONNS_PER_IP=0, LOG_LEVEL="warn"))
    try:
        first = 0
        for n in (1, 2):
            before = up.accepts
            results = asyncio.run(burst(g.http_port))
            bad = [r for r in results if r[0] != b"200" or json.loads(r[1])["model"] != "gpt-mock"]
            assert not bad, (n, bad[:3])
            opened = up.accepts - before
            if n == 1:
                # (+5: the catalog's own fetch of /v1/models may land here)
                assert 1 <= opened <= BURST + 5, opened
                first = opened
            else:
                # Every connection of the first burst is still pooled: the
                # second opens only what its own peak needs beyond the
                # first's, never more than 1,000 requests at once need in
                # all. (On a slow machine a burst's client may take longer
                # than HOLD_S to connect, so its peak can fall short of
                # 1,000: 957 then 43 more, 915 then 85 were seen.)
                assert first + opened <= BURST + 5, \
                    f"{client}: the bursts opened {first} then {opened} connections"
    finally:
        g.stop_clean()
        up.stop()
