"""The echo backend: a deterministic, dependency-free model for tests.

Chat answers the last user message back, word by word (one token per word,
leading whitespace included, so the concatenated deltas equal the original
text). Completions answer the prompt back. Embeddings are a hashed bag of
words: identical inputs give identical vectors, unrelated inputs nearly
orthogonal ones. ``delay_ms`` sleeps between tokens (interruptibly) so tests
can watch a stream and cancel it halfway.
"""
from __future__ import annotations

import hashlib
import math
import re
import threading
from typing import Iterator, Sequence

from .base import Backend, ChatTurn, ModelCard, SamplingParams, Token

_WORD = re.compile(r"\s*\S+")
EOS_ID = 0


class EchoBackend(Backend):
    name = "echo"
    default_max_tokens = 4096
    DIM = 64
    batch_embeddings = False

    def __init__(self, delay_ms: float = 0.0, model_id: str = "echo") -> None:
        self.delay_s = max(0.0, delay_ms) / 1000.0
        self.model_id = model_id
        self._lock = threading.Lock()
        self._ids: dict[str, int] = {}
        self._words: list[str] = ["<eos>"]

    def models(self) -> list[ModelCard]:
        return [ModelCard(id=self.model_id, owned_by="aigw-echo")]

    @property
    def embedding_dim(self) -> int:
        return self.DIM

    # The vocabulary grows as words are seen (ids are stable per process).
    def _id(self, word: str) -> int:
        with self._lock:
            i = self._ids.get(word)
            if i is None:
                i = len(self._words)
                self._ids[word] = i
                self._words.append(word)
            return i

    def _word(self, i: int) -> str:
        with self._lock:
            if 0 < i < len(self._words):
                return self._words[i]
        return f" <{i}>"

    def encode(self, text: str) -> list[int]:
        return [self._id(w) for w in _WORD.findall(text)]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self._word(i) for i in ids)

    def encode_chat(self, turns: Sequence[ChatTurn]) -> list[int]:
        for t in reversed(turns):
            if t.role == "user":
                return self.encode(t.text)
        return self.encode(turns[-1].text) if turns else []

    def generate(self, prompt: Sequence[int], params: SamplingParams,
                 cancel: threading.Event) -> Iterator[Token]:
        first = True
        for i in prompt:
            if cancel.is_set():
                return
            if self.delay_s and not first and cancel.wait(self.delay_s):
                return
            first = False
            yield Token(i, self._word(i))
        yield Token(EOS_ID, "", eos=True)

    def embed(self, inputs: Sequence[Sequence[int]]) -> list[list[float]]:
        out = []
        for ids in inputs:
            v = [0.0] * self.DIM
            for i in ids:
                word = self._word(i).strip().lower().encode()
                d = hashlib.blake2b(word, digest_size=self.DIM).digest()
                for k in range(self.DIM):
                    v[k] += (d[k] - 127.5) / 127.5
            n = math.sqrt(sum(x * x for x in v)) or 1.0
            out.append([x / n for x in v])
        return out
