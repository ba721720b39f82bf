"""The Inference RPCs over real grpcio against the echo backend."""
from __future__ import annotations

import math

import grpc
import pytest
from aigateway.v1 import inference_pb2 as pb

from helpers import chat, completion, embedding

TEXT = "the quick brown fox jumps over the lazy dog"


def test_chat_unary_echoes_last_user_message(echo_server):
    req = chat("echo", "first message", TEXT)
    req.messages.insert(0, pb.ChatMessage(role="system", content=pb.MessageContent(text="sys")))
    r = echo_server.stub.CreateChatCompletion(req)
    assert r.id.startswith("chatcmpl-") and r.object == "chat.completion"
    assert r.model == "echo" and r.created > 1_600_000_000
    assert len(r.choices) == 1
    c = r.choices[0]
    assert c.index == 0 and c.finish_reason == "stop"
    assert c.message.role == "assistant" and c.message.content.text == TEXT
    assert r.usage.completion_tokens == 9
    assert r.usage.prompt_tokens == 9
    assert r.usage.total_tokens == 18


def test_chat_content_parts(echo_server):
    req = pb.ChatCompletionRequest(model="echo")
    m = req.messages.add(role="user")
    m.content.parts.parts.add(type="text", text="hello ")
    m.content.parts.parts.add(type="text", text="parts")
    r = echo_server.stub.CreateChatCompletion(req)
    assert r.choices[0].message.content.text == "hello parts"


def test_chat_max_tokens_gives_length(echo_server):
    r = echo_server.stub.CreateChatCompletion(chat("echo", TEXT, max_tokens=3))
    assert r.choices[0].message.content.text == "the quick brown"
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 3
    # max_completion_tokens wins over max_tokens
    r = echo_server.stub.CreateChatCompletion(
        chat("echo", TEXT, max_tokens=3, max_completion_tokens=2))
    assert r.choices[0].message.content.text == "the quick"


def test_chat_stop_sequence(echo_server):
    r = echo_server.stub.CreateChatCompletion(chat("echo", TEXT, stop=["jumps", "zzz"]))
    assert r.choices[0].message.content.text == "the quick brown fox "
    assert r.choices[0].finish_reason == "stop"
    r = echo_server.stub.CreateChatCompletion(chat("echo", TEXT, stop="lazy"))
    assert r.choices[0].message.content.text == "the quick brown fox jumps over the "


def test_chat_n_choices(echo_server):
    r = echo_server.stub.CreateChatCompletion(chat("echo", "a b", n=3))
    assert [c.index for c in r.choices] == [0, 1, 2]
    assert all(c.message.content.text == "a b" for c in r.choices)
    assert r.usage.completion_tokens == 6


def test_stream_chat_token_by_token(echo_server):
    chunks = list(echo_server.stub.StreamChatCompletion(chat("echo", TEXT, include_usage=True)))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    first = chunks[0].choices[0]
    assert first.delta.role == "assistant" and first.finish_reason == ""
    pieces = [c.choices[0].delta.content.value for c in chunks[1:-2]]
    assert pieces == ["the", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog"]
    last = chunks[-2].choices[0]
    assert last.finish_reason == "stop" and not last.delta.HasField("content")
    usage_chunk = chunks[-1]
    assert len(usage_chunk.choices) == 0
    assert usage_chunk.usage.completion_tokens == 9 and usage_chunk.usage.total_tokens == 18
    assert not any(c.HasField("usage") for c in chunks[:-1])


def test_stream_chat_without_usage_and_with_length(echo_server):
    chunks = list(echo_server.stub.StreamChatCompletion(chat("echo", TEXT, max_tokens=2)))
    assert chunks[-1].choices[0].finish_reason == "length"
    assert not chunks[-1].HasField("usage")
    assert "".join(c.choices[0].delta.content.value for c in chunks) == "the quick"


def test_completion_unary_and_multi_prompt(echo_server):
    r = echo_server.stub.CreateCompletion(completion("echo", "one two three"))
    assert r.id.startswith("cmpl-") and r.object == "text_completion"
    assert r.choices[0].text == "one two three" and r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens == 3 and r.usage.completion_tokens == 3
    r = echo_server.stub.CreateCompletion(completion("echo", ["a b", "c"], n=2, max_tokens=1))
    assert [(c.index, c.text, c.finish_reason) for c in r.choices] == [
        (0, "a", "length"), (1, "a", "length"), (2, "c", "length"), (3, "c", "length")]


def test_completion_echo_flag(echo_server):
    r = echo_server.stub.CreateCompletion(completion("echo", "x y", echo=True))
    assert r.choices[0].text == "x yx y"  # prompt + completion, as OpenAI


def test_stream_completion(echo_server):
    chunks = list(echo_server.stub.StreamCompletion(
        completion("echo", "alpha beta gamma", include_usage=True)))
    assert all(c.object == "text_completion" for c in chunks)
    assert [c.choices[0].text for c in chunks[:3]] == ["alpha", " beta", " gamma"]
    assert chunks[3].choices[0].finish_reason == "stop"
    assert len(chunks[4].choices) == 0 and chunks[4].usage.completion_tokens == 3


def test_embeddings(echo_server):
    r = echo_server.stub.CreateEmbedding(embedding("echo", ["hello world", "hello world",
                                                            "completely unrelated text"]))
    assert r.object == "list" and r.model == "echo"
    assert [d.index for d in r.data] == [0, 1, 2]
    assert all(d.object == "embedding" for d in r.data)
    a, b, c = (list(d.embedding) for d in r.data)
    assert len(a) == 64
    assert math.isclose(sum(x * x for x in a), 1.0, rel_tol=1e-5)
    assert a == b
    assert abs(sum(x * y for x, y in zip(a, c))) < 0.6
    assert r.usage.prompt_tokens == 7 and r.usage.total_tokens == 7
    r = echo_server.stub.CreateEmbedding(embedding("echo", "hello world", dimensions=8))
    v = list(r.data[0].embedding)
    assert len(v) == 8 and math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-5)


def test_models(echo_server):
    r = echo_server.stub.ListModels(pb.ListModelsRequest())
    assert r.object == "list" and [m.id for m in r.data] == ["echo"]
    m = echo_server.stub.GetModel(pb.GetModelRequest(id="echo"))
    assert m.id == "echo" and m.object == "model" and m.owned_by
    with pytest.raises(grpc.RpcError) as e:
        echo_server.stub.GetModel(pb.GetModelRequest(id="nope"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def _empty_messages():
    return pb.ChatCompletionRequest(model="echo")


def _image_part():
    req = pb.ChatCompletionRequest(model="echo")
    req.messages.add(role="user").content.parts.parts.add(type="image_url")
    return req


def _bad_role():
    req = chat("echo", "hi")
    req.messages[0].role = "wizard"
    return req


INVALID_CHAT = [
    ("empty messages", _empty_messages, "messages"),
    ("temperature high", lambda: chat("echo", "hi", temperature=2.5), "temperature"),
    ("temperature negative", lambda: chat("echo", "hi", temperature=-0.1), "temperature"),
    ("top_p zero", lambda: chat("echo", "hi", top_p=0.0), "top_p"),
    ("top_p above one", lambda: chat("echo", "hi", top_p=1.5), "top_p"),
    ("n zero", lambda: chat("echo", "hi", n=0), "n"),
    ("max_tokens zero", lambda: chat("echo", "hi", max_tokens=0), "max_tokens"),
    ("five stops", lambda: chat("echo", "hi", stop=["a", "b", "c", "d", "e"]), "stop"),
    ("presence penalty", lambda: chat("echo", "hi", presence_penalty=3.0), "presence_penalty"),
    ("image part", _image_part, "image_url"),
    ("bad role", _bad_role, "role"),
    ("no model", lambda: chat("", "hi"), "model"),
]


@pytest.mark.parametrize("name,make,needle", INVALID_CHAT, ids=[c[0] for c in INVALID_CHAT])
def test_invalid_chat(echo_server, name, make, needle):
    for rpc in (echo_server.stub.CreateChatCompletion,
                lambda r: list(echo_server.stub.StreamChatCompletion(r))):
        with pytest.raises(grpc.RpcError) as e:
            rpc(make())
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
        assert needle in e.value.details()


def test_boundary_values_are_accepted(echo_server):
    r = echo_server.stub.CreateChatCompletion(chat("echo", "ok", temperature=0.0, top_p=1.0))
    assert r.choices[0].message.content.text == "ok"
    r = echo_server.stub.CreateChatCompletion(chat("echo", "ok", temperature=2.0))
    assert r.choices[0].message.content.text == "ok"


def test_unknown_model_is_not_found(echo_server):
    for call in (lambda: echo_server.stub.CreateChatCompletion(chat("gpt-9", "hi")),
                 lambda: list(echo_server.stub.StreamCompletion(completion("gpt-9", "hi"))),
                 lambda: echo_server.stub.CreateEmbedding(embedding("gpt-9", "hi"))):
        with pytest.raises(grpc.RpcError) as e:
            call()
        assert e.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("req", [
    embedding("echo", [""]),
    embedding("echo", "hi", dimensions=0),
    embedding("echo", "hi", dimensions=65),
    pb.EmbeddingRequest(model="echo"),
    completion("echo", "x", n=0),
    pb.CompletionRequest(model="echo"),
], ids=["empty input", "dims 0", "dims too big", "no input", "completion n 0", "no prompt"])
def test_invalid_other(echo_server, req):
    rpc = (echo_server.stub.CreateEmbedding if isinstance(req, pb.EmbeddingRequest)
           else echo_server.stub.CreateCompletion)
    with pytest.raises(grpc.RpcError) as e:
        rpc(req)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
