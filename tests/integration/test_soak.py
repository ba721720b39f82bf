"""10,000 calls through the gateway, 1,000 of them streams the client
cancels mid-way: every call ends with the right status, the gateway's RSS
stays flat once warm, and at exit LeakSanitizer (the sanitizer build under
`make test`) finds nothing (Gateway.stop_clean)."""
import concurrent.futures as cf
import os
import random

import grpc

from conftest import Gateway, echo_config, gateway_env, start_backend
from aigateway.v1 import admin_pb2, admin_pb2_grpc, inference_pb2 as pb, inference_pb2_grpc

TOTAL = int(os.environ.get("SOAK_CALLS", "10000"))
CANCELLED = TOTAL // 10


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def chat(text):
    return pb.ChatCompletionRequest(
        model="echo", messages=[pb.ChatMessage(role="user", content=pb.MessageContent(text=text))])


def test_soak_10k_calls_with_cancelled_streams():
    b = start_backend(delay_ms=2, max_concurrency=256)
    # A small ASan quarantine so RSS reflects live memory, not freed blocks.
    g = Gateway(gateway_env(echo_config(b.port),
                            ASAN_OPTIONS="detect_leaks=1:quarantine_size_mb=8:malloc_context_size=4"))
    try:
        ch = grpc.insecure_channel(g.target)
        stub = inference_pb2_grpc.InferenceStub(ch)
        rng = random.Random(7)
        kinds = ["stream-cancel"] * CANCELLED + ["unary"] * (TOTAL - CANCELLED)
        rng.shuffle(kinds)
        long_text = " ".join(f"w{i}" for i in range(50))

        def one(kind):
            if kind == "stream-cancel":
                it = stub.StreamChatCompletion(chat(long_text), timeout=30)
                next(it)
                it.cancel()
                try:
                    for _ in it:
                        pass
                except grpc.RpcError as e:
                    assert e.code() == grpc.StatusCode.CANCELLED, e
                return "cancelled"
            r = rng.random()
            if r < 0.6:
                resp = stub.CreateChatCompletion(chat("hello soak"), timeout=30)
                assert resp.choices[0].message.content.text == "hello soak"
            elif r < 0.8:
                resp = stub.CreateEmbedding(pb.EmbeddingRequest(
                    model="echo", input=pb.Prompt(text="x")), timeout=30)
                assert len(resp.data) == 1
            elif r < 0.9:
                got = "".join(c.choices[0].delta.content.value
                              for c in stub.StreamChatCompletion(chat("a b c"), timeout=30)
                              if c.choices and c.choices[0].delta.HasField("content"))
                assert got.split() == ["a", "b", "c"]
            else:
                assert stub.ListModels(pb.ListModelsRequest(), timeout=30).object == "list"
            return "ok"

        samples = []
        done = 0
        with cf.ThreadPoolExecutor(max_workers=24) as pool:
            for start in range(0, TOTAL, 1000):
                results = list(pool.map(one, kinds[start:start + 1000]))
                assert all(r in ("ok", "cancelled") for r in results)
                done += len(results)
                samples.append(rss_kib(g.p.pid))
        assert done == TOTAL

        stats = admin_pb2_grpc.AdminStub(ch).GetStats(admin_pb2.StatsRequest())
        assert stats.in_flight == 1, stats  # only this call
        assert stats.requests_total >= TOTAL
        ch.close()

        # Flat once warm: the last sample within 8 MiB of the one at 40 %.
        warm = samples[len(samples) * 4 // 10]
        growth = samples[-1] - warm
        print(f"RSS KiB per 1000 calls: {samples}; growth after warm-up {growth} KiB")
        assert growth < 8 * 1024, samples
    finally:
        try:
            g.stop_clean()
        finally:
            b.stop(must_stop=False)
