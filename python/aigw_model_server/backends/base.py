"""The one interface every model backend implements.

A backend turns token ids into more token ids and into embedding vectors. The
server (servicer.py) owns everything else: request validation, chat/completion
framing, stop sequences, max_tokens, n, usage accounting, streaming, cancellation,
batching. A backend therefore only has to provide:

  * ``load()``            slow start-up work (load weights, train, ...); the
                          server reports NOT_SERVING until it returns;
  * ``models()``          the model ids it serves;
  * ``encode`` / ``decode`` and ``encode_chat``  its tokenizer;
  * ``generate()``        an iterator of sampled tokens, one per step, that stops
                          at end-of-sequence; the server closes it early for
                          max_tokens, stop sequences and cancellation;
  * ``embed()``           one L2-normalised vector per input (a list of token
                          ids), all of ``embedding_dim`` floats.

Backends must be safe to call from several threads at once (the server runs
one thread per RPC).
"""
from __future__ import annotations

import abc
import codecs
import dataclasses
import threading
from typing import Iterator, Optional, Sequence


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """One model id served by a backend (the proto's Model message)."""

    id: str
    owned_by: str = "aigw-model-server"
    created: int = 0


@dataclasses.dataclass(frozen=True)
class ChatTurn:
    """One chat message, already reduced to its text."""

    role: str
    text: str
    name: str = ""


@dataclasses.dataclass
class SamplingParams:
    """What a backend needs to sample one choice.

    |temperature| 0 means greedy. |seed| None means "not reproducible"; the
    server passes seed + choice index for choice > 0 so that n choices differ
    but the whole answer is reproducible.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    seed: Optional[int] = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Token:
    """One generated token: its id and the text it adds (may be "" while a
    multi-byte character is incomplete). |eos| marks end of sequence; an eos
    token is not counted and its text is not emitted."""

    id: int
    text: str
    eos: bool = False


class Backend(abc.ABC):
    """Base class of model backends (see the module docstring)."""

    #: the name used with --backend
    name: str = "base"
    #: default max_tokens when the request sets none
    default_max_tokens: int = 256
    #: maximum number of inputs one embed() call is given by the batcher
    max_embed_batch: int = 64
    #: whether embed() gains from dynamic batching (one forward pass for many)
    batch_embeddings: bool = True

    def load(self) -> None:
        """Does the slow start-up work. Called once, from a background thread."""

    @abc.abstractmethod
    def models(self) -> list[ModelCard]:
        """The model ids this backend serves (at least one)."""

    @property
    @abc.abstractmethod
    def embedding_dim(self) -> int:
        """The native length of the vectors embed() returns."""

    @abc.abstractmethod
    def encode(self, text: str) -> list[int]:
        """Text to token ids."""

    @abc.abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """Token ids to text (unknown ids raise ValueError)."""

    def encode_chat(self, turns: Sequence[ChatTurn]) -> list[int]:
        """The prompt a chat conversation becomes. The default is a plain
        transcript ending with the assistant's cue; backends with a chat
        template override it."""
        lines = [f"{t.role}: {t.text}" for t in turns]
        return self.encode("\n".join(lines) + "\nassistant:")

    @abc.abstractmethod
    def generate(self, prompt: Sequence[int], params: SamplingParams,
                 cancel: threading.Event) -> Iterator[Token]:
        """Samples tokens after |prompt|, one per iteration, until an eos token
        (yielded with eos=True) or until the caller stops iterating. Must
        return promptly once |cancel| is set."""

    @abc.abstractmethod
    def embed(self, inputs: Sequence[Sequence[int]]) -> list[list[float]]:
        """One L2-normalised vector of embedding_dim floats per input."""

    def close(self) -> None:
        """Releases what load() acquired."""


class IncrementalDetokenizer:
    """Turns a stream of byte-level token pieces into text deltas, holding back
    an incomplete UTF-8 sequence until its last byte arrives."""

    def __init__(self) -> None:
        self._dec = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, data: bytes) -> str:
        return self._dec.decode(data)

    def flush(self) -> str:
        return self._dec.decode(b"", final=True)


class BackendUnavailable(RuntimeError):
    """Raised when a backend cannot be created (missing package, bad model dir)."""
