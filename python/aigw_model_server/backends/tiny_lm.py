"""The tiny-lm backend: the small transformer of aigw_model_server/tiny_lm,
trained on first use from the shipped corpus and cached.

The model lives in |model_dir| (tokenizer.json, model.pt, metrics.json). When
it holds no model yet, load() trains one there (under a file lock, so two
servers starting together train once). The default directory is
$AIGW_CACHE_DIR/tiny-lm/<config key> or python/.cache/tiny-lm/<config key>.
"""
from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
import threading
from typing import Iterator, Optional, Sequence

import torch

from ..sampling import make_generator, sample_next
from ..tiny_lm.model import ModelConfig, TinyLM
from ..tiny_lm.tokenizer import BPETokenizer
from ..tiny_lm import train as trainer
from .base import (Backend, ChatTurn, IncrementalDetokenizer, ModelCard,
                   SamplingParams, Token)

log = logging.getLogger("aigw.tiny_lm")


class TinyLMBackend(Backend):
    name = "tiny-lm"
    default_max_tokens = 64
    max_embed_batch = 32

    def __init__(self, model_dir: Optional[str] = None, preset: str = "default",
                 train_config: Optional[trainer.TrainConfig] = None,
                 model_id: str = "tiny-lm", threads: Optional[int] = None) -> None:
        self.cfg = train_config or dataclasses.replace(trainer.PRESETS[preset])
        self.model_dir = model_dir or os.path.join(
            trainer.default_cache_dir(), "tiny-lm", self.cfg.key())
        self.model_id = model_id
        self.threads = threads
        self.tok: Optional[BPETokenizer] = None
        self.model: Optional[TinyLM] = None
        self.metrics: dict = {}

    # ------------------------------------------------------------ lifecycle
    def load(self) -> None:
        os.makedirs(self.model_dir, exist_ok=True)
        weights = os.path.join(self.model_dir, "model.pt")
        if not os.path.exists(weights):
            with open(os.path.join(self.model_dir, ".lock"), "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not os.path.exists(weights):
                    log.info("no tiny-lm model in %s: training one (once)", self.model_dir)
                    trainer.train(self.model_dir, self.cfg, log=log.info)
        self.tok = BPETokenizer.load(os.path.join(self.model_dir, "tokenizer.json"))
        ckpt = torch.load(weights, map_location="cpu")
        model = TinyLM(ModelConfig(**ckpt["config"]))
        model.load_state_dict(ckpt["state_dict"])
        model.eval()
        self.model = model
        try:
            with open(os.path.join(self.model_dir, "metrics.json")) as f:
                self.metrics = json.load(f)
        except OSError:
            self.metrics = {}
        if self.threads:
            torch.set_num_threads(self.threads)
        log.info("tiny-lm loaded from %s (%d params, vocab %d, held-out perplexity %s)",
                 self.model_dir, model.num_params(), self.tok.vocab_size,
                 self.metrics.get("heldout_perplexity"))

    def models(self) -> list[ModelCard]:
        return [ModelCard(id=self.model_id, owned_by="aigw-tiny-lm")]

    @property
    def embedding_dim(self) -> int:
        return self.model.cfg.d_model

    # ------------------------------------------------------------ tokenizer
    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        return self.tok.decode(ids)

    def encode_chat(self, turns: Sequence[ChatTurn]) -> list[int]:
        # The corpus has no dialogue: the conversation becomes plain text the
        # model continues (system text first, each turn on its own paragraph).
        return self.encode("\n\n".join(t.text for t in turns) + "\n\n")

    # ------------------------------------------------------------ inference
    def generate(self, prompt: Sequence[int], params: SamplingParams,
                 cancel: threading.Event) -> Iterator[Token]:
        ctx = self.model.cfg.ctx
        ids = list(prompt) or [self.tok.eos_id]
        gen = make_generator(params.seed)
        detok = IncrementalDetokenizer()
        counts: dict[int, int] = {}
        while not cancel.is_set():
            with torch.no_grad():
                x = torch.tensor([ids[-ctx:]], dtype=torch.long)
                logits = self.model(x)[0, -1]
            nxt = sample_next(logits, params, gen, counts)
            if nxt == self.tok.eos_id:
                yield Token(nxt, detok.flush(), eos=True)
                return
            counts[nxt] = counts.get(nxt, 0) + 1
            ids.append(nxt)
            yield Token(nxt, detok.push(self.tok.token_bytes(nxt)))

    def embed(self, inputs: Sequence[Sequence[int]]) -> list[list[float]]:
        """Mean of the final hidden states over the first ctx tokens of each
        input. Inputs are right-padded into one batch: with causal attention
        the padding never influences the real positions."""
        ctx = self.model.cfg.ctx
        rows = [list(r)[:ctx] or [self.tok.eos_id] for r in inputs]
        t = max(len(r) for r in rows)
        x = torch.zeros(len(rows), t, dtype=torch.long)
        mask = torch.zeros(len(rows), t, 1)
        for i, r in enumerate(rows):
            x[i, :len(r)] = torch.tensor(r)
            mask[i, :len(r)] = 1.0
        with torch.no_grad():
            h = self.model.hidden(x)
            v = (h * mask).sum(1) / mask.sum(1)
            v = torch.nn.functional.normalize(v, dim=-1)
        return v.tolist()
