#!/usr/bin/python3
"""Embedding throughput with and without dynamic batching, over real gRPC.

    cd python && /usr/bin/python3 tools/bench_batching.py [--model-dir DIR]
        [--clients 16] [--seconds 5] [--wait-ms 3] [--threads 2]

Starts the tiny-lm backend in-process twice (batching off, then on), runs
|clients| client threads that each send one-text embedding requests back to
back for |seconds|, and prints requests/s and latency for both runs.
Without --model-dir it uses the cached default model (training it if needed).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from aigw_model_server import stubs  # noqa: E402


def run(backend, batching: bool, clients: int, seconds: float, wait_ms: float) -> dict:
    import grpc
    from aigateway.v1 import inference_pb2 as pb
    from aigateway.v1 import inference_pb2_grpc as pb_grpc
    from aigw_model_server.server import ModelServer

    srv = ModelServer(backend, port=0, host="127.0.0.1", max_concurrency=clients,
                      batching=batching, batch_wait_ms=wait_ms)
    port = srv.start(load_in_background=False)
    texts = [f"request {i}: the GNU General Public License and the sed stream editor "
             f"manual, section {i % 17}" for i in range(1000)]
    lat: list[float] = []
    lock = threading.Lock()
    stop_at = [0.0]
    ready = threading.Barrier(clients + 1)

    def client(k: int) -> None:
        ch = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = pb_grpc.InferenceStub(ch)
        mine = []
        i = k
        stub.CreateEmbedding(pb.EmbeddingRequest(model="tiny-lm", input=pb.Prompt(text="warm")))
        ready.wait()
        while time.perf_counter() < stop_at[0]:
            t = time.perf_counter()
            stub.CreateEmbedding(pb.EmbeddingRequest(
                model="tiny-lm", input=pb.Prompt(text=texts[i % len(texts)])))
            mine.append(time.perf_counter() - t)
            i += clients
        with lock:
            lat.extend(mine)
        ch.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + 1e9
    ready_t = time.perf_counter()
    stop_at[0] = ready_t + seconds + 0.2
    ready.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    b = srv.servicer.batcher
    out = {
        "batching": batching, "requests": len(lat), "seconds": elapsed,
        "rps": len(lat) / elapsed,
        "p50_ms": statistics.median(lat) * 1000,
        "p95_ms": sorted(lat)[int(len(lat) * 0.95)] * 1000,
        "mean_batch": (b.items / b.batches) if b and b.batches else 1.0,
    }
    srv._server.stop(0).wait()
    srv.servicer.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir")
    ap.add_argument("--preset", default="default", choices=("default", "test"))
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--wait-ms", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="torch intra-op threads")
    ap.add_argument("--stubs")
    args = ap.parse_args()
    stubs.setup(args.stubs)
    import torch
    from aigw_model_server.backends.tiny_lm import TinyLMBackend

    torch.set_num_threads(args.threads)
    backend = TinyLMBackend(model_dir=args.model_dir, preset=args.preset)
    backend.load()
    torch.set_num_threads(args.threads)
    print(f"tiny-lm {backend.model_dir}: d_model {backend.embedding_dim}, "
          f"{args.clients} clients x {args.seconds:.0f}s, torch threads {args.threads}, "
          f"{os.cpu_count()} CPUs")
    results = [run(backend, False, args.clients, args.seconds, args.wait_ms),
               run(backend, True, args.clients, args.seconds, args.wait_ms)]
    for r in results:
        print(f"batching {'on ' if r['batching'] else 'off'}: {r['rps']:8.1f} req/s  "
              f"p50 {r['p50_ms']:6.1f} ms  p95 {r['p95_ms']:6.1f} ms  "
              f"mean batch {r['mean_batch']:.1f}  ({r['requests']} requests)")
    print(f"gain: x{results[1]['rps'] / results[0]['rps']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
