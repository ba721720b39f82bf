"""Trains the tiny-lm tokenizer and model on the shipped corpus (python/data/).

    /usr/bin/python3 -m aigw_model_server.tiny_lm.train [--out DIR] [--preset default|test]

Writes into DIR: tokenizer.json, model.pt, config.json and metrics.json (the
held-out perplexity among others; also printed). The held-out text is the last
10 % of every corpus file, which training never sees. CPU only.
"""
from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import math
import os
import random
import sys
import time
from typing import Callable, Optional

import torch
from torch.nn import functional as F

from .model import ModelConfig, TinyLM
from .tokenizer import BPETokenizer

PKG_DIR = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.dirname(os.path.dirname(PKG_DIR))
DATA_DIR = os.path.join(PYTHON_DIR, "data", "corpus")


@dataclasses.dataclass
class TrainConfig:
    num_merges: int = 255          # vocab = 256 bytes + merges + eos
    d_model: int = 128
    n_layer: int = 3
    n_head: int = 4
    ctx: int = 96
    batch: int = 16
    steps: int = 600
    lr: float = 3e-3
    warmup: int = 40
    max_seconds: float = 300.0     # hard stop whatever |steps| says
    max_chars_per_file: int = 0    # 0 = whole file
    seed: int = 1234

    def key(self) -> str:
        """A short name for the cache directory of this configuration."""
        d = dataclasses.asdict(self)
        d.pop("max_seconds")
        return "v1-" + "-".join(f"{v}" for v in d.values())


PRESETS = {
    "default": TrainConfig(),
    # Trains in a couple of seconds on one core: for tests only.
    "test": TrainConfig(num_merges=40, d_model=32, n_layer=1, n_head=2, ctx=32,
                        batch=8, steps=250, lr=1e-2, warmup=5, max_chars_per_file=12000),
}


def clean(text: str) -> str:
    """Drops the Info tag table and node separators of GNU Info files."""
    cut = text.find("\x1fTag Table:")
    if cut >= 0:
        text = text[:cut]
    return text.replace("\x1f", "")


def load_corpus(data_dir: str = DATA_DIR, max_chars: int = 0) -> tuple[list[str], list[str]]:
    """Returns (train documents, held-out documents): the last 10 % of each file
    (cut at a line break) is held out."""
    train, held = [], []
    files = sorted(glob.glob(os.path.join(data_dir, "*.txt")))
    if not files:
        raise FileNotFoundError(f"no corpus files in {data_dir}")
    for path in files:
        with open(path, encoding="utf-8") as f:
            text = clean(f.read())
        if max_chars:
            text = text[:max_chars]
        cut = text.find("\n", int(len(text) * 0.9))
        cut = cut + 1 if cut >= 0 else int(len(text) * 0.9)
        train.append(text[:cut])
        held.append(text[cut:])
    return train, held


def _stream(tok: BPETokenizer, docs: list[str]) -> torch.Tensor:
    ids: list[int] = []
    for d in docs:
        ids.extend(tok.encode(d))
        ids.append(tok.eos_id)
    return torch.tensor(ids, dtype=torch.long)


@torch.no_grad()
def evaluate(model: TinyLM, data: torch.Tensor, ctx: int) -> float:
    """Mean next-token cross-entropy (nats) over |data|, in windows of |ctx|
    that overlap by half so that every scored token has >= ctx/2 of context
    (except at the very start)."""
    model.eval()
    total, count = 0.0, 0
    stride = max(1, ctx // 2)
    n = data.numel()
    start = 0
    while start < n - 1:
        end = min(start + ctx, n - 1)
        x = data[start:end][None]
        y = data[start + 1:end + 1][None]
        logits = model(x)
        losses = F.cross_entropy(logits[0], y[0], reduction="none")
        skip = 0 if start == 0 else (ctx - stride)
        total += losses[skip:].sum().item()
        count += losses[skip:].numel()
        if end >= n - 1:
            break
        start += stride
    model.train()
    return total / max(1, count)


def train(out_dir: str, cfg: TrainConfig, data_dir: str = DATA_DIR,
          log: Callable[[str], None] = print, threads: Optional[int] = None) -> dict:
    """Trains tokenizer and model into |out_dir| and returns the metrics."""
    t0 = time.time()
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    prev_threads = torch.get_num_threads()
    threads = threads or int(os.environ.get("AIGW_TRAIN_THREADS", "0")) or os.cpu_count() or 1
    torch.set_num_threads(threads)
    try:
        train_docs, held_docs = load_corpus(data_dir, cfg.max_chars_per_file)
        tok = BPETokenizer.train("".join(train_docs), cfg.num_merges)
        tr = _stream(tok, train_docs)
        va = _stream(tok, held_docs)
        log(f"tokenizer: vocab {tok.vocab_size}, train {tr.numel()} tokens, "
            f"held-out {va.numel()} tokens ({time.time() - t0:.1f}s)")
        mcfg = ModelConfig(vocab_size=tok.vocab_size, d_model=cfg.d_model,
                           n_layer=cfg.n_layer, n_head=cfg.n_head, ctx=cfg.ctx)
        model = TinyLM(mcfg)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01,
                                betas=(0.9, 0.98))
        gen = torch.Generator().manual_seed(cfg.seed)
        t1 = time.time()
        loss_ema = None
        step = 0
        for step in range(1, cfg.steps + 1):
            lr = cfg.lr * min(1.0, step / cfg.warmup)
            lr *= 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
            for g in opt.param_groups:
                g["lr"] = lr
            ix = torch.randint(0, tr.numel() - cfg.ctx - 1, (cfg.batch,), generator=gen)
            x = torch.stack([tr[i:i + cfg.ctx] for i in ix])
            y = torch.stack([tr[i + 1:i + 1 + cfg.ctx] for i in ix])
            loss = F.cross_entropy(model(x).view(-1, mcfg.vocab_size), y.view(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            loss_ema = loss.item() if loss_ema is None else 0.95 * loss_ema + 0.05 * loss.item()
            if step % 100 == 0:
                log(f"step {step}/{cfg.steps} loss {loss_ema:.3f} lr {lr:.2e} "
                    f"({time.time() - t1:.0f}s)")
            if time.time() - t1 > cfg.max_seconds:
                log(f"time budget of {cfg.max_seconds:.0f}s reached at step {step}")
                break
        train_s = time.time() - t1
        val_loss = evaluate(model, va, cfg.ctx)
        held_bytes = sum(len(d.encode("utf-8")) for d in held_docs)
        metrics = {
            "heldout_perplexity": math.exp(val_loss),
            "heldout_loss_nats": val_loss,
            "heldout_bits_per_byte": val_loss * va.numel() / held_bytes / math.log(2),
            "heldout_tokens": int(va.numel()),
            "train_tokens": int(tr.numel()),
            "train_loss_ema": loss_ema,
            "vocab_size": tok.vocab_size,
            "params": model.num_params(),
            "steps": step,
            "train_seconds": round(train_s, 1),
            "total_seconds": round(time.time() - t0, 1),
            "threads": torch.get_num_threads(),
            "config": dataclasses.asdict(cfg),
        }
        os.makedirs(out_dir, exist_ok=True)
        tok.save(os.path.join(out_dir, "tokenizer.json"))
        tmp = os.path.join(out_dir, "model.pt.tmp")
        torch.save({"config": dataclasses.asdict(mcfg), "state_dict": model.state_dict()}, tmp)
        os.replace(tmp, os.path.join(out_dir, "model.pt"))
        with open(os.path.join(out_dir, "metrics.json"), "w") as f:
            json.dump(metrics, f, indent=2)
        log(f"held-out perplexity {metrics['heldout_perplexity']:.2f} "
            f"(vocab {tok.vocab_size}, {metrics['heldout_bits_per_byte']:.3f} bits/byte), "
            f"{step} steps in {train_s:.0f}s; wrote {out_dir}")
        return metrics
    finally:
        torch.set_num_threads(prev_threads)


def default_cache_dir() -> str:
    return os.environ.get("AIGW_CACHE_DIR") or os.path.join(PYTHON_DIR, ".cache")


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="default")
    ap.add_argument("--out", help="output directory (default: the server's cache directory)")
    ap.add_argument("--steps", type=int, help="override the preset's step count")
    ap.add_argument("--data-dir", default=DATA_DIR)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default $AIGW_TRAIN_THREADS or all CPUs; on a "
                         "machine shared with other jobs 1 can be several times faster)")
    args = ap.parse_args(argv)
    cfg = dataclasses.replace(PRESETS[args.preset])
    if args.steps:
        cfg.steps = args.steps
    out = args.out or os.path.join(default_cache_dir(), "tiny-lm", cfg.key())
    train(out, cfg, args.data_dir, log=lambda s: print(s, flush=True), threads=args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
