"""Request builders for the tests."""
from __future__ import annotations

from aigateway.v1 import inference_pb2 as pb
from google.protobuf import wrappers_pb2 as w


def chat(model: str, *texts: str, **kw) -> pb.ChatCompletionRequest:
    """A chat request with one user message per text; keyword arguments set
    wrapper fields (temperature=0.0 -> DoubleValue) or plain fields."""
    req = pb.ChatCompletionRequest(model=model)
    for t in texts:
        req.messages.add(role="user", content=pb.MessageContent(text=t))
    _set(req, kw)
    return req


def completion(model: str, prompt, **kw) -> pb.CompletionRequest:
    req = pb.CompletionRequest(model=model)
    if isinstance(prompt, str):
        req.prompt.text = prompt
    elif prompt and isinstance(prompt[0], int):
        req.prompt.tokens.tokens.extend(prompt)
    else:
        req.prompt.texts.values.extend(prompt)
    _set(req, kw)
    return req


def embedding(model: str, inputs, dimensions=None) -> pb.EmbeddingRequest:
    req = pb.EmbeddingRequest(model=model)
    if isinstance(inputs, str):
        req.input.text = inputs
    else:
        req.input.texts.values.extend(inputs)
    if dimensions is not None:
        req.dimensions.value = dimensions
    return req


def _set(req, kw) -> None:
    for k, v in kw.items():
        if k == "stop":
            if isinstance(v, str):
                req.stop.text = v
            else:
                req.stop.list.values.extend(v)
        elif k == "include_usage":
            req.stream_options.include_usage.value = v
        else:
            field = getattr(req, k)
            if isinstance(field, (w.DoubleValue, w.Int32Value, w.Int64Value, w.BoolValue)):
                field.value = v
            else:
                setattr(req, k, v)
