"""Model backends. Each lives in its own module and is imported only when
selected, so the echo backend never imports torch."""
from __future__ import annotations

from .base import Backend, BackendUnavailable

NAMES = ("echo", "tiny-lm", "hf")


def create(name: str, model_dir: str | None = None, echo_delay_ms: float = 0.0,
           model_id: str | None = None, tiny_preset: str = "default",
           device: str | None = None) -> Backend:
    """Builds the backend |name|; raises BackendUnavailable with a message a
    person can act on when it cannot be built here."""
    if name == "echo":
        from .echo import EchoBackend
        return EchoBackend(delay_ms=echo_delay_ms, model_id=model_id or "echo")
    if name == "tiny-lm":
        try:
            from .tiny_lm import TinyLMBackend
        except ImportError as e:
            raise BackendUnavailable(
                f"backend 'tiny-lm' needs PyTorch ({e}); install the Debian package "
                f"python3-torch") from e
        return TinyLMBackend(model_dir=model_dir, preset=tiny_preset,
                             model_id=model_id or "tiny-lm")
    if name == "hf":
        from .hf import HFBackend  # raises BackendUnavailable without transformers
        if not model_dir:
            raise BackendUnavailable("backend 'hf' needs --model-dir DIR (a local Hugging "
                                     "Face model directory)")
        return HFBackend(model_dir, model_id=model_id, device=device)
    raise BackendUnavailable(f"unknown backend {name!r} (choose from {', '.join(NAMES)})")
