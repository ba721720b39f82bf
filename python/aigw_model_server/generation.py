"""Drives one choice of a text generation: max_tokens, stop sequences,
end of sequence and cancellation, on top of Backend.generate()."""
from __future__ import annotations

import threading
from typing import Iterator, Optional, Sequence

from .backends.base import Backend, SamplingParams


class StopMatcher:
    """Cuts generated text at the first stop sequence. Text that could still be
    the start of a stop sequence is held back until it is known not to be."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.buf = ""

    def push(self, text: str) -> tuple[str, bool]:
        """Adds |text|; returns (text safe to emit, whether a stop matched)."""
        self.buf += text
        if not self.stops:
            out, self.buf = self.buf, ""
            return out, False
        hits = [i for i in (self.buf.find(s) for s in self.stops) if i >= 0]
        if hits:
            out, self.buf = self.buf[:min(hits)], ""
            return out, True
        hold = 0
        for s in self.stops:
            for k in range(min(len(s) - 1, len(self.buf)), hold, -1):
                if self.buf.endswith(s[:k]):
                    hold = k
                    break
        cut = len(self.buf) - hold
        out, self.buf = self.buf[:cut], self.buf[cut:]
        return out, False

    def flush(self) -> str:
        out, self.buf = self.buf, ""
        return out


class ChoiceRun:
    """Iterating yields the text deltas of one choice (non-empty strings, at
    most one per generated token). Afterwards |finish_reason| is "stop",
    "length", or None when |cancel| ended it, and |completion_tokens| counts
    the tokens the model produced (an end-of-sequence token excluded)."""

    def __init__(self, backend: Backend, prompt: Sequence[int], params: SamplingParams,
                 max_tokens: int, stops: Sequence[str], cancel: threading.Event,
                 on_token=None) -> None:
        self.backend = backend
        self.prompt = prompt
        self.params = params
        self.max_tokens = max_tokens
        self.matcher = StopMatcher(stops)
        self.cancel = cancel
        self.on_token = on_token
        self.finish_reason: Optional[str] = None
        self.completion_tokens = 0
        self.text_parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    def __iter__(self) -> Iterator[str]:
        gen = self.backend.generate(self.prompt, self.params, self.cancel)
        try:
            for tok in gen:
                if self.cancel.is_set():
                    return
                if tok.eos:
                    out, hit = self.matcher.push(tok.text)
                    out += "" if hit else self.matcher.flush()
                    if out:
                        self.text_parts.append(out)
                        yield out
                    self.finish_reason = "stop"
                    return
                self.completion_tokens += 1
                if self.on_token:
                    self.on_token()
                out, hit = self.matcher.push(tok.text)
                if hit or self.completion_tokens >= self.max_tokens:
                    out += "" if hit else self.matcher.flush()
                if out:
                    self.text_parts.append(out)
                    yield out
                if hit:
                    self.finish_reason = "stop"
                    return
                if self.completion_tokens >= self.max_tokens:
                    self.finish_reason = "length"
                    return
            if not self.cancel.is_set():
                out = self.matcher.flush()
                if out:
                    self.text_parts.append(out)
                    yield out
                self.finish_reason = "stop"
        finally:
            gen.close()

    def run(self) -> str:
        """Runs to the end and returns the whole text."""
        for _ in self:
            pass
        return self.text
