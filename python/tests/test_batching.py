"""DynamicBatcher: gathering, splitting, errors, and batching in the server."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from aigw_model_server.batching import DynamicBatcher


def test_gathers_concurrent_requests_into_one_call():
    calls = []

    def fn(items):
        calls.append(list(items))
        time.sleep(0.01)
        return [x * 10 for x in items]

    b = DynamicBatcher(fn, max_items=100, max_wait_ms=100)
    start = threading.Barrier(8)

    def one(i):
        start.wait()
        return b.submit([i, i + 100])

    try:
        with ThreadPoolExecutor(8) as ex:
            futs = [ex.submit(one, i) for i in range(8)]
            results = [f.result(timeout=5) for f in futs]
        assert results == [[i * 10, (i + 100) * 10] for i in range(8)]
        assert len(calls) < 8  # at least some requests shared a call
        assert b.max_batch_seen >= 4  # 2 requests of 2 items at least
        assert b.items == 16
    finally:
        b.close()


def test_respects_max_items_and_never_splits():
    sizes = []

    def fn(items):
        sizes.append(len(items))
        return list(items)

    b = DynamicBatcher(fn, max_items=4, max_wait_ms=30)
    try:
        futs = [b.submit_async([1, 2, 3]) for _ in range(3)] + [b.submit_async(list(range(9)))]
        assert [f.result(timeout=5) for f in futs][-1] == list(range(9))
        assert all(s <= 4 for s in sizes[:-1]) and 9 in sizes
    finally:
        b.close()


def test_errors_reach_every_request_and_worker_survives():
    def fn(items):
        if "bad" in items:
            raise ValueError("boom")
        return items

    b = DynamicBatcher(fn, max_items=10, max_wait_ms=20)
    try:
        f1, f2 = b.submit_async(["ok"]), b.submit_async(["bad"])
        with pytest.raises(ValueError):
            f2.result(timeout=5)
        with pytest.raises(ValueError):
            f1.result(timeout=5)  # same batch
        assert b.submit(["fine"]) == ["fine"]
    finally:
        b.close()


def test_server_batches_concurrent_embedding_requests(tiny_server):
    from helpers import embedding
    batcher = tiny_server.servicer.batcher
    assert batcher is not None
    before_batches, before_items = batcher.batches, batcher.items
    barrier = threading.Barrier(4)

    def call(i):
        barrier.wait()
        return tiny_server.stub.CreateEmbedding(embedding("tiny-lm", [f"text {i}", "x"]))

    with ThreadPoolExecutor(4) as ex:
        rs = list(ex.map(call, range(4)))
    assert all(len(r.data) == 2 for r in rs)
    assert batcher.items - before_items == 8
    assert batcher.batches - before_batches < 4
