"""Next-token sampling shared by the torch backends (tiny-lm, hf): logit bias,
presence/frequency penalties, temperature (0 = greedy) and nucleus (top_p)."""
from __future__ import annotations

import os
from typing import Optional

import torch

from .backends.base import SamplingParams


def make_generator(seed: Optional[int]) -> torch.Generator:
    """A private generator: seeded from |seed| (reproducible) or from the OS."""
    g = torch.Generator()
    if seed is None:
        seed = int.from_bytes(os.urandom(8), "little") & ((1 << 63) - 1)
    g.manual_seed(seed & ((1 << 63) - 1))
    return g


def sample_next(logits: torch.Tensor, params: SamplingParams, gen: torch.Generator,
                counts: dict[int, int]) -> int:
    """Picks the next token id from the (vocab,) |logits| of the last position.
    |counts| holds how often each id was generated so far (for the penalties)."""
    logits = logits.detach().float().cpu().clone()
    vocab = logits.shape[0]
    for k, v in params.logit_bias.items():
        if 0 <= k < vocab:
            logits[k] += v
    if counts and (params.presence_penalty or params.frequency_penalty):
        ids = torch.tensor(list(counts.keys()), device=logits.device)
        c = torch.tensor(list(counts.values()), dtype=logits.dtype, device=logits.device)
        logits[ids] -= params.frequency_penalty * c + params.presence_penalty
    if params.temperature <= 0.0:
        return int(torch.argmax(logits).item())
    probs = torch.softmax(logits / params.temperature, dim=-1)
    if params.top_p < 1.0:
        sp, si = torch.sort(probs, descending=True)
        keep = (torch.cumsum(sp, dim=-1) - sp) < params.top_p
        keep[0] = True
        sp = sp * keep
        choice = torch.multinomial(sp / sp.sum(), 1, generator=gen)
        return int(si[choice].item())
    return int(torch.multinomial(probs, 1, generator=gen).item())
