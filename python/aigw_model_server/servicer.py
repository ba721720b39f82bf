"""aigateway.v1.Inference over any Backend: validation, OpenAI-shaped answers,
streaming, usage, the concurrency limit, cancellation, embedding batching."""
from __future__ import annotations

import collections
import logging
import threading
import time
import uuid
from typing import Optional, Sequence

import grpc
from aigateway.v1 import inference_pb2 as pb
from aigateway.v1 import inference_pb2_grpc as pb_grpc

from .backends.base import Backend, ChatTurn, SamplingParams
from .batching import DynamicBatcher
from .generation import ChoiceRun

log = logging.getLogger("aigw.servicer")

ROLES = ("system", "developer", "user", "assistant", "tool")
MAX_N = 16
MAX_STOPS = 4
MAX_EMBED_INPUTS = 2048


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _invalid(msg: str) -> _Abort:
    return _Abort(grpc.StatusCode.INVALID_ARGUMENT, msg)


class _Slot:
    """One admitted request: holds a concurrency permit until released (by the
    handler's end or by the RPC's termination callback, whichever is first) and
    the cancel event that the termination callback sets."""

    def __init__(self, sem: threading.Semaphore) -> None:
        self._sem = sem
        self._lock = threading.Lock()
        self._held = True
        self.cancel = threading.Event()

    def release(self) -> None:
        with self._lock:
            if self._held:
                self._held = False
                self._sem.release()

    def on_done(self) -> None:
        self.cancel.set()
        self.release()


class InferenceServicer(pb_grpc.InferenceServicer):
    def __init__(self, backend: Backend, max_concurrency: int = 8, batching: bool = True,
                 batch_max_items: Optional[int] = None, batch_wait_ms: float = 3.0) -> None:
        self.backend = backend
        self.max_concurrency = max(1, max_concurrency)
        self._sem = threading.Semaphore(self.max_concurrency)
        self._models = {m.id: m for m in backend.models()}
        self._started = int(time.time())
        self._ready = threading.Event()
        self._batching = batching and getattr(backend, "batch_embeddings", True)
        self._batch_max_items = batch_max_items or backend.max_embed_batch
        self._batch_wait_ms = batch_wait_ms
        self.batcher: Optional[DynamicBatcher] = None
        self._stats_lock = threading.Lock()
        self.stats: collections.Counter = collections.Counter()

    # ------------------------------------------------------------ lifecycle
    def mark_ready(self) -> None:
        """Called once the backend's load() returned."""
        if self._batching:
            self.batcher = DynamicBatcher(self.backend.embed, self._batch_max_items,
                                          self._batch_wait_ms, name="embed-batcher")
        self._ready.set()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def close(self) -> None:
        if self.batcher:
            self.batcher.close()

    def _count(self, key: str, n: int = 1) -> None:
        with self._stats_lock:
            self.stats[key] += n

    # ------------------------------------------------------------ admission
    def _check_model(self, model: str) -> str:
        """Checks |model| (and that the backend is ready: request parsing
        needs its tokenizer)."""
        if not model:
            raise _invalid("model: required")
        if model not in self._models:
            raise _Abort(grpc.StatusCode.NOT_FOUND,
                         f"model {model!r} not found (served: {', '.join(sorted(self._models))})")
        if not self._ready.is_set():
            raise _Abort(grpc.StatusCode.UNAVAILABLE, "model is still loading")
        return model

    def _admit(self, context) -> _Slot:
        if not self._ready.is_set():
            raise _Abort(grpc.StatusCode.UNAVAILABLE, "model is still loading")
        if not self._sem.acquire(blocking=False):
            self._count("rejected")
            raise _Abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                         f"server busy: {self.max_concurrency} requests in flight "
                         f"(--max-concurrency)")
        slot = _Slot(self._sem)
        if not context.add_callback(slot.on_done):
            slot.on_done()
            raise _Abort(grpc.StatusCode.CANCELLED, "request already terminated")
        return slot

    # ------------------------------------------------------------ parameters
    @staticmethod
    def _stops(req) -> list[str]:
        if not req.HasField("stop"):
            return []
        kind = req.stop.WhichOneof("kind")
        stops = [req.stop.text] if kind == "text" else list(req.stop.list.values) if kind == "list" else []
        if len(stops) > MAX_STOPS:
            raise _invalid(f"stop: at most {MAX_STOPS} sequences, got {len(stops)}")
        return [s for s in stops if s]

    def _sampling(self, req, max_tokens_fields: Sequence[str]) -> tuple[SamplingParams, int, int]:
        """(params, n, max_tokens) from the fields chat and completion share."""
        p = SamplingParams()
        if req.HasField("temperature"):
            t = req.temperature.value
            if not 0.0 <= t <= 2.0:
                raise _invalid(f"temperature: must be in [0, 2], got {t}")
            p.temperature = t
        if req.HasField("top_p"):
            t = req.top_p.value
            if not 0.0 < t <= 1.0:
                raise _invalid(f"top_p: must be in (0, 1], got {t}")
            p.top_p = t
        for name in ("presence_penalty", "frequency_penalty"):
            if req.HasField(name):
                v = getattr(req, name).value
                if not -2.0 <= v <= 2.0:
                    raise _invalid(f"{name}: must be in [-2, 2], got {v}")
                setattr(p, name, v)
        if req.HasField("seed"):
            p.seed = req.seed.value
        for k, v in req.logit_bias.items():
            try:
                tid = int(k)
            except ValueError:
                raise _invalid(f"logit_bias: key {k!r} is not a token id") from None
            if not -100.0 <= v <= 100.0:
                raise _invalid(f"logit_bias[{k}]: must be in [-100, 100], got {v}")
            p.logit_bias[tid] = v
        n = 1
        if req.HasField("n"):
            n = req.n.value
            if not 1 <= n <= MAX_N:
                raise _invalid(f"n: must be in [1, {MAX_N}], got {n}")
        max_tokens = self.backend.default_max_tokens
        for name in max_tokens_fields:
            if req.HasField(name):
                v = getattr(req, name).value
                if v < 1:
                    raise _invalid(f"{name}: must be >= 1, got {v}")
                max_tokens = v
                break
        return p, n, max_tokens

    @staticmethod
    def _choice_params(p: SamplingParams, index: int) -> SamplingParams:
        if p.seed is None or index == 0:
            return p
        q = SamplingParams(**p.__dict__)
        q.seed = p.seed + index
        return q

    @staticmethod
    def _turns(req) -> list[ChatTurn]:
        if not req.messages:
            raise _invalid("messages: must not be empty")
        turns = []
        for i, m in enumerate(req.messages):
            if m.role not in ROLES:
                raise _invalid(f"messages[{i}].role: must be one of {', '.join(ROLES)}, "
                               f"got {m.role!r}")
            text = ""
            kind = m.content.WhichOneof("kind") if m.HasField("content") else None
            if kind == "text":
                text = m.content.text
            elif kind == "parts":
                pieces = []
                for j, part in enumerate(m.content.parts.parts):
                    if part.type in ("text", "refusal"):
                        pieces.append(part.text or part.refusal)
                    else:
                        raise _invalid(f"messages[{i}].content[{j}].type: {part.type!r} "
                                       f"is not supported by this model (text only)")
                text = "".join(pieces)
            elif not (m.role == "assistant" and (m.tool_calls or m.HasField("refusal"))):
                raise _invalid(f"messages[{i}].content: required for role {m.role!r}")
            turns.append(ChatTurn(role=m.role, text=text, name=m.name))
        return turns

    def _decode_ids(self, ids: Sequence[int], where: str) -> None:
        try:
            self.backend.decode(ids)
        except ValueError as e:
            raise _invalid(f"{where}: {e}") from None

    def _prompts(self, prompt, field: str) -> list[list[int]]:
        """The token ids of every input of a Prompt (completion prompt or
        embedding input)."""
        kind = prompt.WhichOneof("kind")
        if kind == "text":
            texts = [prompt.text]
        elif kind == "texts":
            texts = list(prompt.texts.values)
        elif kind == "tokens":
            self._decode_ids(prompt.tokens.tokens, field)
            return [list(prompt.tokens.tokens)]
        elif kind == "token_lists":
            out = [list(t.tokens) for t in prompt.token_lists.lists]
            for i, ids in enumerate(out):
                self._decode_ids(ids, f"{field}[{i}]")
            if not out:
                raise _invalid(f"{field}: must not be empty")
            return out
        else:
            raise _invalid(f"{field}: required")
        if not texts:
            raise _invalid(f"{field}: must not be empty")
        return [self.backend.encode(t) for t in texts]

    # ------------------------------------------------------------ helpers
    def _on_token(self) -> None:
        self._count("tokens_generated")

    def _run(self, prompt, params, max_tokens, stops, slot) -> ChoiceRun:
        return ChoiceRun(self.backend, prompt, params, max_tokens, stops, slot.cancel,
                         on_token=self._on_token)

    def _finish_run(self, run: ChoiceRun, slot: _Slot) -> None:
        if run.finish_reason is None:
            self._count("cancelled")
            raise _Abort(grpc.StatusCode.CANCELLED, "cancelled")

    @staticmethod
    def _usage(prompt_tokens: int, completion_tokens: int) -> pb.Usage:
        return pb.Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                        total_tokens=prompt_tokens + completion_tokens)

    @staticmethod
    def _include_usage(req) -> bool:
        return (req.HasField("stream_options")
                and req.stream_options.include_usage.value)

    # ------------------------------------------------------------ chat
    def _chat_setup(self, req):
        model = self._check_model(req.model)
        turns = self._turns(req)
        params, n, max_tokens = self._sampling(req, ("max_completion_tokens", "max_tokens"))
        stops = self._stops(req)
        prompt = self.backend.encode_chat(turns)
        return model, prompt, params, n, max_tokens, stops

    def CreateChatCompletion(self, request, context):
        with _aborting(context):
            model, prompt, params, n, max_tokens, stops = self._chat_setup(request)
            slot = self._admit(context)
            try:
                resp = pb.ChatCompletionResponse(
                    id="chatcmpl-" + uuid.uuid4().hex[:24], object="chat.completion",
                    created=int(time.time()), model=model)
                completion = 0
                for i in range(n):
                    run = self._run(prompt, self._choice_params(params, i), max_tokens, stops, slot)
                    text = run.run()
                    self._finish_run(run, slot)
                    completion += run.completion_tokens
                    resp.choices.add(index=i, finish_reason=run.finish_reason,
                                     message=pb.ChatMessage(
                                         role="assistant", content=pb.MessageContent(text=text)))
                resp.usage.CopyFrom(self._usage(len(prompt), completion))
                self._count("chat")
                return resp
            finally:
                slot.release()

    def StreamChatCompletion(self, request, context):
        with _aborting(context):
            model, prompt, params, n, max_tokens, stops = self._chat_setup(request)
            slot = self._admit(context)
        try:
            base = dict(id="chatcmpl-" + uuid.uuid4().hex[:24], object="chat.completion.chunk",
                        created=int(time.time()), model=model)
            completion = 0
            for i in range(n):
                yield pb.ChatCompletionChunk(**base, choices=[pb.ChunkChoice(
                    index=i, delta=pb.ChatDelta(role="assistant", content=_s("")))])
                run = self._run(prompt, self._choice_params(params, i), max_tokens, stops, slot)
                for piece in run:
                    yield pb.ChatCompletionChunk(**base, choices=[pb.ChunkChoice(
                        index=i, delta=pb.ChatDelta(content=_s(piece)))])
                with _aborting(context):
                    self._finish_run(run, slot)
                completion += run.completion_tokens
                yield pb.ChatCompletionChunk(**base, choices=[pb.ChunkChoice(
                    index=i, delta=pb.ChatDelta(), finish_reason=run.finish_reason)])
            if self._include_usage(request):
                yield pb.ChatCompletionChunk(**base, usage=self._usage(len(prompt), completion))
            self._count("chat_stream")
        finally:
            slot.release()

    # ------------------------------------------------------------ completions
    def _completion_setup(self, req):
        model = self._check_model(req.model)
        prompts = self._prompts(req.prompt, "prompt") if req.HasField("prompt") else None
        if prompts is None:
            raise _invalid("prompt: required")
        params, n, max_tokens = self._sampling(req, ("max_tokens",))
        if req.HasField("best_of") and req.best_of.value < n:
            raise _invalid(f"best_of: must be >= n ({n}), got {req.best_of.value}")
        stops = self._stops(req)
        echo = req.HasField("echo") and req.echo.value
        return model, prompts, params, n, max_tokens, stops, echo

    def CreateCompletion(self, request, context):
        with _aborting(context):
            model, prompts, params, n, max_tokens, stops, echo = self._completion_setup(request)
            slot = self._admit(context)
            try:
                resp = pb.CompletionResponse(
                    id="cmpl-" + uuid.uuid4().hex[:24], object="text_completion",
                    created=int(time.time()), model=model)
                completion = 0
                for p, prompt in enumerate(prompts):
                    for i in range(n):
                        run = self._run(prompt, self._choice_params(params, i), max_tokens,
                                        stops, slot)
                        text = run.run()
                        self._finish_run(run, slot)
                        completion += run.completion_tokens
                        if echo:
                            text = self.backend.decode(prompt) + text
                        resp.choices.add(text=text, index=p * n + i,
                                         finish_reason=run.finish_reason)
                resp.usage.CopyFrom(self._usage(sum(map(len, prompts)), completion))
                self._count("completion")
                return resp
            finally:
                slot.release()

    def StreamCompletion(self, request, context):
        with _aborting(context):
            model, prompts, params, n, max_tokens, stops, echo = self._completion_setup(request)
            slot = self._admit(context)
        try:
            base = dict(id="cmpl-" + uuid.uuid4().hex[:24], object="text_completion",
                        created=int(time.time()), model=model)
            completion = 0
            for p, prompt in enumerate(prompts):
                for i in range(n):
                    index = p * n + i
                    if echo:
                        yield pb.CompletionResponse(**base, choices=[pb.CompletionChoice(
                            text=self.backend.decode(prompt), index=index)])
                    run = self._run(prompt, self._choice_params(params, i), max_tokens,
                                    stops, slot)
                    for piece in run:
                        yield pb.CompletionResponse(**base, choices=[pb.CompletionChoice(
                            text=piece, index=index)])
                    with _aborting(context):
                        self._finish_run(run, slot)
                    completion += run.completion_tokens
                    yield pb.CompletionResponse(**base, choices=[pb.CompletionChoice(
                        text="", index=index, finish_reason=run.finish_reason)])
            if self._include_usage(request):
                yield pb.CompletionResponse(**base, usage=self._usage(
                    sum(map(len, prompts)), completion))
            self._count("completion_stream")
        finally:
            slot.release()

    # ------------------------------------------------------------ embeddings
    def CreateEmbedding(self, request, context):
        with _aborting(context):
            model = self._check_model(request.model)
            if not request.HasField("input"):
                raise _invalid("input: required")
            inputs = self._prompts(request.input, "input")
            if len(inputs) > MAX_EMBED_INPUTS:
                raise _invalid(f"input: at most {MAX_EMBED_INPUTS} items, got {len(inputs)}")
            for i, ids in enumerate(inputs):
                if not ids:
                    raise _invalid(f"input[{i}]: must not be empty")
            if request.encoding_format not in ("", "float", "base64"):
                raise _invalid(f"encoding_format: must be float or base64, "
                               f"got {request.encoding_format!r}")
            native = self.backend.embedding_dim
            dims = native
            if request.HasField("dimensions"):
                dims = request.dimensions.value
                if not 1 <= dims <= native:
                    raise _invalid(f"dimensions: must be in [1, {native}] for {model}, got {dims}")
            slot = self._admit(context)
            try:
                if self.batcher is not None:
                    vectors = self.batcher.submit(inputs)
                else:
                    vectors = self.backend.embed(inputs)
                resp = pb.EmbeddingResponse(object="list", model=model)
                for i, v in enumerate(vectors):
                    if dims < native:
                        v = v[:dims]
                        norm = sum(x * x for x in v) ** 0.5 or 1.0
                        v = [x / norm for x in v]
                    resp.data.add(object="embedding", index=i, embedding=v)
                tokens = sum(map(len, inputs))
                resp.usage.prompt_tokens = tokens
                resp.usage.total_tokens = tokens
                self._count("embedding")
                return resp
            finally:
                slot.release()

    # ------------------------------------------------------------ models
    def _model_msg(self, card) -> pb.Model:
        return pb.Model(id=card.id, object="model", created=card.created or self._started,
                        owned_by=card.owned_by)

    def ListModels(self, request, context):
        return pb.ListModelsResponse(object="list", data=[
            self._model_msg(c) for c in self._models.values()])

    def GetModel(self, request, context):
        card = self._models.get(request.id)
        if card is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"model {request.id!r} not found")
        return self._model_msg(card)


def _s(text: str):
    from google.protobuf import wrappers_pb2
    return wrappers_pb2.StringValue(value=text)


class _aborting:
    """Turns an _Abort raised inside the block into context.abort()."""

    def __init__(self, context) -> None:
        self.context = context

    def __enter__(self):
        return self

    def __exit__(self, et, e, tb):
        if isinstance(e, _Abort):
            self.context.abort(e.code, e.message)
        return False
