"""The tiny-lm backend (tokenizer, model, sampling) with the 'test' preset,
directly and over gRPC."""
from __future__ import annotations

import json
import math
import os
import threading

import pytest

torch = pytest.importorskip("torch")

from aigw_model_server.backends.base import SamplingParams  # noqa: E402
from aigw_model_server.tiny_lm.tokenizer import BPETokenizer  # noqa: E402
from helpers import chat, completion, embedding  # noqa: E402


def test_tokenizer_roundtrip_and_merges():
    tok = BPETokenizer.train("the theme of the thesis: there, then. " * 20, 20)
    assert tok.vocab_size == 256 + len(tok.merges) + 1
    assert len(tok.merges) > 5
    for text in ["the thesis", "héllo wörld ✓ \n\t x", ""]:
        assert tok.decode(tok.encode(text)) == text
    assert len(tok.encode("the theme")) < len("the theme".encode())  # merges apply
    with pytest.raises(ValueError):
        tok.decode([tok.vocab_size + 5])


def test_metrics_perplexity_below_vocab(tiny_model_dir):
    with open(os.path.join(tiny_model_dir, "metrics.json")) as f:
        m = json.load(f)
    assert m["heldout_perplexity"] < m["vocab_size"] / 3
    assert m["heldout_tokens"] > 100


@pytest.fixture(scope="module")
def backend(tiny_server):
    return tiny_server.server.backend


def test_greedy_is_deterministic_and_better_than_chance(backend):
    from aigw_model_server.generation import ChoiceRun
    p = backend.encode("the GNU General Public License")
    sp = SamplingParams(temperature=0.0)
    a = ChoiceRun(backend, p, sp, 12, [], threading.Event()).run()
    b = ChoiceRun(backend, p, sp, 12, [], threading.Event()).run()
    assert a == b and a


def test_chat_and_completion_over_grpc(tiny_server):
    stub = tiny_server.stub
    r = stub.CreateChatCompletion(chat("tiny-lm", "The program", max_tokens=8, seed=7))
    c = r.choices[0]
    assert c.finish_reason in ("length", "stop") and c.message.role == "assistant"
    assert r.usage.completion_tokens == (8 if c.finish_reason == "length" else
                                         r.usage.completion_tokens)
    assert r.usage.prompt_tokens == len(tiny_server.server.backend.encode("The program\n\n"))
    r = stub.CreateCompletion(completion("tiny-lm", "Copyright", max_tokens=5, temperature=0.0))
    assert r.usage.completion_tokens <= 5 and r.choices[0].finish_reason in ("length", "stop")


def test_same_seed_same_text_different_seed_differs(tiny_server):
    stub = tiny_server.stub

    def text(seed, n=1):
        r = stub.CreateChatCompletion(chat("tiny-lm", "the license", max_tokens=24,
                                           temperature=1.0, seed=seed, n=n))
        return [c.message.content.text for c in r.choices]

    a = text(123)
    assert a == text(123)
    others = {text(s)[0] for s in (1, 2, 3)}
    assert others != {a[0]}
    two = text(123, n=2)
    assert two[0] == a[0] and two[1] != two[0]  # choice i uses seed + i


def test_stream_matches_unary_with_seed(tiny_server):
    stub = tiny_server.stub
    req = chat("tiny-lm", "sed", max_tokens=10, seed=42, include_usage=True)
    chunks = list(stub.StreamChatCompletion(req))
    assert chunks[0].choices[0].delta.role == "assistant"
    deltas = [c.choices[0].delta.content.value for c in chunks[1:-2]]
    assert all(deltas)
    unary = stub.CreateChatCompletion(req)
    assert "".join(deltas) == unary.choices[0].message.content.text
    assert chunks[-1].usage.completion_tokens == unary.usage.completion_tokens
    assert len(deltas) <= chunks[-1].usage.completion_tokens  # at most one chunk per token


def test_max_tokens_and_stop(tiny_server):
    stub = tiny_server.stub
    backend = tiny_server.server.backend
    fixed = dict(temperature=0.9, seed=5)  # seeded sampling is reproducible
    r = stub.CreateCompletion(completion("tiny-lm", "the", max_tokens=30, **fixed))
    full = r.choices[0].text
    assert r.usage.completion_tokens <= 30
    r1 = stub.CreateCompletion(completion("tiny-lm", "the", max_tokens=3, **fixed))
    assert r1.usage.completion_tokens == 3 and r1.choices[0].finish_reason == "length"
    assert full.startswith(r1.choices[0].text)
    assert len(backend.encode(r1.choices[0].text)) <= 3 + 1
    # stop at a character that the output contains
    stop = next(ch for ch in full[2:] if not ch.isspace())
    r2 = stub.CreateCompletion(completion("tiny-lm", "the", max_tokens=30, stop=stop, **fixed))
    assert r2.choices[0].finish_reason == "stop"
    assert stop not in r2.choices[0].text
    assert full.startswith(r2.choices[0].text)


def test_token_prompt_and_bad_token(tiny_server):
    import grpc
    ids = tiny_server.server.backend.encode("the program")
    r = tiny_server.stub.CreateCompletion(completion("tiny-lm", ids, max_tokens=2))
    assert r.usage.prompt_tokens == len(ids)
    with pytest.raises(grpc.RpcError) as e:
        tiny_server.stub.CreateCompletion(completion("tiny-lm", [10 ** 6], max_tokens=2))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_embeddings(tiny_server):
    stub = tiny_server.stub
    texts = ["free software license", "free software license", "sed stream editor 1234"]
    r = stub.CreateEmbedding(embedding("tiny-lm", texts))
    a, b, c = (list(d.embedding) for d in r.data)
    dim = tiny_server.server.backend.embedding_dim
    assert len(a) == dim
    assert math.isclose(sum(x * x for x in a), 1.0, rel_tol=1e-4)
    assert all(math.isclose(x, y, abs_tol=1e-5) for x, y in zip(a, b))
    cos_ac = sum(x * y for x, y in zip(a, c))
    assert cos_ac < 0.999
    # a single request gives the same vector as inside a batch
    single = list(stub.CreateEmbedding(embedding("tiny-lm", texts[2])).data[0].embedding)
    assert all(math.isclose(x, y, abs_tol=1e-4) for x, y in zip(single, c))
    r = stub.CreateEmbedding(embedding("tiny-lm", texts[0], dimensions=8))
    v = list(r.data[0].embedding)
    assert len(v) == 8 and math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-4)
    # truncation + renormalisation of the full vector
    n = math.sqrt(sum(x * x for x in a[:8]))
    assert all(math.isclose(x, y / n, abs_tol=1e-4) for x, y in zip(v, a[:8]))
    assert r.usage.prompt_tokens == len(tiny_server.server.backend.encode(texts[0]))


def test_sampler_top_p_and_bias():
    from aigw_model_server.sampling import make_generator, sample_next
    logits = torch.tensor([5.0, 4.9, -10.0, -10.0])
    g = make_generator(0)
    # top_p small: only the best token survives
    assert {sample_next(logits, SamplingParams(top_p=0.1), g, {}) for _ in range(50)} == {0}
    # temperature 0 is greedy; a logit bias moves it
    assert sample_next(logits, SamplingParams(temperature=0.0), g, {}) == 0
    assert sample_next(logits, SamplingParams(temperature=0.0, logit_bias={3: 100.0}), g, {}) == 3
    # frequency penalty pushes a repeated token down
    assert sample_next(logits, SamplingParams(temperature=0.0, frequency_penalty=2.0),
                       g, {0: 1}) == 1
