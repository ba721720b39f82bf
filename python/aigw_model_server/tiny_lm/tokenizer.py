"""A byte-level BPE tokenizer, trained from scratch by train.py.

Ids 0..255 are the raw bytes (so any text encodes, nothing is ever unknown),
then one id per learned merge, then one end-of-text id. Text is first split
into word-like pieces (a letter run, a digit run or a punctuation run, each with
at most one leading space; whitespace runs on their own) and merges never cross
a piece boundary, as in GPT-2.
"""
from __future__ import annotations

import collections
import json
import re
import threading
from typing import Iterable, Sequence

_PIECE = re.compile(r" ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+")


class BPETokenizer:
    def __init__(self, merges: Sequence[tuple[int, int]]) -> None:
        self.merges = [tuple(m) for m in merges]
        self.ranks = {m: 256 + i for i, m in enumerate(self.merges)}
        self.vocab: list[bytes] = [bytes([b]) for b in range(256)]
        for a, b in self.merges:
            self.vocab.append(self.vocab[a] + self.vocab[b])
        self.eos_id = len(self.vocab)
        self.vocab.append(b"")
        self._cache: dict[str, tuple[int, ...]] = {}
        self._lock = threading.Lock()

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    # ------------------------------------------------------------ training
    @classmethod
    def train(cls, text: str, num_merges: int) -> "BPETokenizer":
        """Learns |num_merges| merges from |text| (ties broken by pair value,
        so training is deterministic)."""
        counts = collections.Counter(_PIECE.findall(text))
        words = [[list(w.encode("utf-8")), c] for w, c in counts.items()]
        pairs: collections.Counter = collections.Counter()
        for syms, c in words:
            for p in zip(syms, syms[1:]):
                pairs[p] += c
        merges: list[tuple[int, int]] = []
        for i in range(num_merges):
            if not pairs:
                break
            best = max(pairs.items(), key=lambda kv: (kv[1], -kv[0][0], -kv[0][1]))[0]
            if pairs[best] < 2:
                break
            new = 256 + i
            merges.append(best)
            a, b = best
            for entry in words:
                syms, c = entry
                if len(syms) < 2 or a not in syms:
                    continue
                j, changed, out = 0, False, []
                while j < len(syms):
                    if j + 1 < len(syms) and syms[j] == a and syms[j + 1] == b:
                        out.append(new)
                        j += 2
                        changed = True
                    else:
                        out.append(syms[j])
                        j += 1
                if changed:
                    for p in zip(syms, syms[1:]):
                        pairs[p] -= c
                    for p in zip(out, out[1:]):
                        pairs[p] += c
                    entry[0] = out
            for p in [p for p, c in pairs.items() if c <= 0]:
                del pairs[p]
        return cls(merges)

    # ------------------------------------------------------------ encode/decode
    def _encode_piece(self, piece: str) -> tuple[int, ...]:
        syms = list(piece.encode("utf-8"))
        while len(syms) > 1:
            best_rank, best_j = None, -1
            for j in range(len(syms) - 1):
                r = self.ranks.get((syms[j], syms[j + 1]))
                if r is not None and (best_rank is None or r < best_rank):
                    best_rank, best_j = r, j
            if best_rank is None:
                break
            syms[best_j:best_j + 2] = [best_rank]
        return tuple(syms)

    def encode(self, text: str) -> list[int]:
        out: list[int] = []
        for piece in _PIECE.findall(text):
            ids = self._cache.get(piece)
            if ids is None:
                ids = self._encode_piece(piece)
                if len(self._cache) < 200_000:
                    with self._lock:
                        self._cache[piece] = ids
            out.extend(ids)
        return out

    def token_bytes(self, i: int) -> bytes:
        if not 0 <= i < len(self.vocab):
            raise ValueError(f"token id {i} is outside the vocabulary (0..{len(self.vocab) - 1})")
        return self.vocab[i]

    def decode(self, ids: Iterable[int]) -> str:
        return b"".join(self.token_bytes(i) for i in ids).decode("utf-8", errors="replace")

    # ------------------------------------------------------------ persistence
    def save(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"type": "byte-bpe", "merges": [list(m) for m in self.merges]}, f)

    @classmethod
    def load(cls, path: str) -> "BPETokenizer":
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return cls([tuple(m) for m in data["merges"]])
