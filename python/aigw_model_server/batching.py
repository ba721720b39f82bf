"""Dynamic batching: concurrent requests are gathered for up to |max_wait_ms|
or |max_items| inputs and run through one call of |fn| (one forward pass).

    batcher = DynamicBatcher(backend.embed, max_items=32, max_wait_ms=3)
    vectors = batcher.submit([ids_a, ids_b])     # blocks; thread-safe

A request is never split: a request larger than |max_items| runs alone. When
|fn| raises, every request of that batch gets the exception.
"""
from __future__ import annotations

import collections
import threading
import time
from concurrent.futures import Future
from typing import Callable, Generic, Sequence, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class DynamicBatcher(Generic[In, Out]):
    def __init__(self, fn: Callable[[Sequence[In]], list[Out]], max_items: int = 32,
                 max_wait_ms: float = 3.0, name: str = "batcher") -> None:
        self._fn = fn
        self.max_items = max(1, max_items)
        self.max_wait_s = max(0.0, max_wait_ms) / 1000.0
        self._cv = threading.Condition()
        self._queue: collections.deque = collections.deque()
        self._closed = False
        # Counters for tests and benchmarks.
        self.batches = 0
        self.items = 0
        self.max_batch_seen = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, inputs: Sequence[In]) -> list[Out]:
        """Runs |inputs| in some batch and returns their outputs, in order."""
        return self.submit_async(inputs).result()

    def submit_async(self, inputs: Sequence[In]) -> "Future[list[Out]]":
        fut: Future = Future()
        if not inputs:
            fut.set_result([])
            return fut
        with self._cv:
            if self._closed:
                raise RuntimeError("batcher is closed")
            self._queue.append((list(inputs), fut))
            self._cv.notify()
        return fut

    def close(self) -> None:
        """Stops the worker after the queued requests ran."""
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._thread.join(timeout=10)

    def _take_batch(self) -> list:
        """Waits for a first request, then gathers more until the batch is full
        or the first request waited max_wait. Returns [] once closed and empty."""
        with self._cv:
            while not self._queue and not self._closed:
                self._cv.wait()
            if not self._queue:
                return []
            batch = [self._queue.popleft()]
            n = len(batch[0][0])
            deadline = time.monotonic() + self.max_wait_s
            while n < self.max_items:
                if self._queue:
                    if n + len(self._queue[0][0]) > self.max_items:
                        break
                    req = self._queue.popleft()
                    batch.append(req)
                    n += len(req[0])
                    continue
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    break
                self._cv.wait(left)
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if not batch:
                return
            flat = [x for inputs, _ in batch for x in inputs]
            try:
                outs = self._fn(flat)
                if len(outs) != len(flat):
                    raise RuntimeError(f"batch function returned {len(outs)} outputs "
                                       f"for {len(flat)} inputs")
            except BaseException as e:  # handed to every waiting request
                for _, fut in batch:
                    fut.set_exception(e)
                continue
            self.batches += 1
            self.items += len(flat)
            self.max_batch_seen = max(self.max_batch_seen, len(flat))
            i = 0
            for inputs, fut in batch:
                fut.set_result(outs[i:i + len(inputs)])
                i += len(inputs)
