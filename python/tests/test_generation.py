"""StopMatcher and ChoiceRun with a scripted backend."""
from __future__ import annotations

import threading

from aigw_model_server.backends.base import SamplingParams, Token
from aigw_model_server.backends.echo import EchoBackend
from aigw_model_server.generation import ChoiceRun, StopMatcher


def test_stop_matcher_holds_back_partial_matches():
    m = StopMatcher(["END", "\n\n"])
    assert m.push("abc E") == ("abc ", False)
    assert m.push("N") == ("", False)
    assert m.push("X") == ("ENX", False)
    assert m.push(" fooEN") == (" foo", False)
    assert m.push("D tail") == ("", True)
    m = StopMatcher(["\n\n"])
    assert m.push("a\n") == ("a", False)
    assert m.push("\nb") == ("", True)
    m = StopMatcher([])
    assert m.push("xyz") == ("xyz", False)


class Scripted(EchoBackend):
    def __init__(self, pieces, eos=True):
        super().__init__()
        self.pieces, self.eos = pieces, eos

    def generate(self, prompt, params, cancel):
        for i, p in enumerate(self.pieces):
            yield Token(i + 1, p)
        if self.eos:
            yield Token(0, "", eos=True)


def _run(pieces, max_tokens=100, stops=(), eos=True):
    r = ChoiceRun(Scripted(pieces, eos), [], SamplingParams(), max_tokens, stops,
                  threading.Event())
    out = list(r)
    return out, r


def test_choice_run_finish_reasons_and_counts():
    out, r = _run(["a", "b", "c"])
    assert out == ["a", "b", "c"] and r.finish_reason == "stop" and r.completion_tokens == 3
    out, r = _run(["a", "b", "c"], max_tokens=2)
    assert out == ["a", "b"] and r.finish_reason == "length" and r.completion_tokens == 2
    out, r = _run(["a", "b", "<", "/s>", "z"], stops=["</s>"])
    assert "".join(out) == "ab" and r.finish_reason == "stop" and r.completion_tokens == 4
    out, r = _run(["a", ""], eos=True)  # an empty piece is not a chunk
    assert out == ["a"]


def test_choice_run_cancel():
    cancel = threading.Event()
    r = ChoiceRun(Scripted(["a"] * 100), [], SamplingParams(), 1000, [], cancel)
    it = iter(r)
    assert next(it) == "a"
    cancel.set()
    assert list(it) == []
    assert r.finish_reason is None and r.completion_tokens == 1
