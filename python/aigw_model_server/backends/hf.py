"""The hf backend: any local Hugging Face causal-LM directory (config.json,
weights, tokenizer files) through the `transformers` package.

Selecting it without `transformers` (and torch) importable raises
BackendUnavailable with a message that says so; nothing else depends on it.
Generation is a plain key/value-cached decoding loop that samples with the
same sampler as tiny-lm (temperature, top_p, seed, penalties, logit_bias), so
cancellation is checked between tokens. Embeddings are the attention-masked
mean of the last hidden layer, L2-normalised. Runs on CUDA when available.
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Iterator, Optional, Sequence

from .base import Backend, BackendUnavailable, ChatTurn, ModelCard, SamplingParams, Token

import importlib.util

try:
    # Look before importing: importing torch alone takes seconds.
    for _pkg in ("transformers", "torch"):
        if importlib.util.find_spec(_pkg) is None:
            raise ImportError(f"No module named {_pkg!r}")
    import torch
    import transformers
except ImportError as e:  # the server keeps working with the other backends
    raise BackendUnavailable(
        f"backend 'hf' needs the Python packages 'transformers' and 'torch', which are "
        f"not importable here ({e}); install them or choose --backend tiny-lm|echo") from e

from ..sampling import make_generator, sample_next

log = logging.getLogger("aigw.hf")


class HFBackend(Backend):
    name = "hf"
    default_max_tokens = 256
    max_embed_batch = 32

    def __init__(self, model_dir: str, model_id: Optional[str] = None,
                 device: Optional[str] = None) -> None:
        if not os.path.isdir(model_dir):
            raise BackendUnavailable(f"backend 'hf': model directory {model_dir!r} not found")
        self.model_dir = model_dir
        self.model_id = model_id or os.path.basename(os.path.normpath(model_dir))
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tok = None
        self.model = None
        self.eos_ids: set[int] = set()
        self.max_ctx = 2048

    def load(self) -> None:
        self.tok = transformers.AutoTokenizer.from_pretrained(self.model_dir)
        dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
        # transformers 4.56 renamed torch_dtype to dtype (5.x warns on the old name)
        major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
        kw = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
        self.model = transformers.AutoModelForCausalLM.from_pretrained(
            self.model_dir, **{kw: dtype}).to(self.device).eval()
        cfg = self.model.config
        self.max_ctx = (getattr(cfg, "max_position_embeddings", None)
                        or getattr(cfg, "n_positions", None) or 2048)
        eos = getattr(self.model.generation_config, "eos_token_id", None)
        if eos is None:
            eos = self.tok.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}
        log.info("hf model %s loaded on %s (%s parameters)", self.model_dir, self.device,
                 sum(p.numel() for p in self.model.parameters()))

    def models(self) -> list[ModelCard]:
        return [ModelCard(id=self.model_id, owned_by="aigw-hf")]

    @property
    def embedding_dim(self) -> int:
        cfg = self.model.config
        return getattr(cfg, "hidden_size", None) or cfg.n_embd

    def encode(self, text: str) -> list[int]:
        return list(self.tok.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int]) -> str:
        n = len(self.tok)
        for i in ids:
            if not 0 <= i < n:
                raise ValueError(f"token id {i} is outside the vocabulary (0..{n - 1})")
        return self.tok.decode(list(ids))

    def encode_chat(self, turns: Sequence[ChatTurn]) -> list[int]:
        if getattr(self.tok, "chat_template", None):
            msgs = [{"role": t.role, "content": t.text} for t in turns]
            ids = self.tok.apply_chat_template(msgs, add_generation_prompt=True,
                                               tokenize=True, return_dict=False)
            if isinstance(ids, dict):  # a BatchEncoding where return_dict is not honoured
                ids = ids["input_ids"]
            return list(ids)
        return super().encode_chat(turns)

    def generate(self, prompt: Sequence[int], params: SamplingParams,
                 cancel: threading.Event) -> Iterator[Token]:
        prompt = list(prompt)[-(self.max_ctx - 1):] or [next(iter(self.eos_ids), 0)]
        gen = make_generator(params.seed)
        counts: dict[int, int] = {}
        out_ids: list[int] = []
        emitted = ""
        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([prompt], device=self.device),
                             use_cache=True)
            while not cancel.is_set():
                nxt = sample_next(out.logits[0, -1], params, gen, counts)
                if nxt in self.eos_ids:
                    yield Token(nxt, "", eos=True)
                    return
                counts[nxt] = counts.get(nxt, 0) + 1
                out_ids.append(nxt)
                text = self.tok.decode(out_ids, skip_special_tokens=True)
                delta = ""
                if not text.endswith("\ufffd"):  # hold an incomplete character
                    delta, emitted = text[len(emitted):], text
                yield Token(nxt, delta)
                if len(prompt) + len(out_ids) >= self.max_ctx:
                    return
                out = self.model(input_ids=torch.tensor([[nxt]], device=self.device),
                                 past_key_values=out.past_key_values, use_cache=True)

    def embed(self, inputs: Sequence[Sequence[int]]) -> list[list[float]]:
        rows = [list(r)[:self.max_ctx] for r in inputs]
        t = max(len(r) for r in rows)
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0
        ids = torch.full((len(rows), t), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), t), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r)
            mask[i, :len(r)] = 1
        with torch.inference_mode():
            out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                             output_hidden_states=True)
            h = out.hidden_states[-1].float()
            m = mask.to(self.device).unsqueeze(-1).float()
            v = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)
        return v.cpu().tolist()
