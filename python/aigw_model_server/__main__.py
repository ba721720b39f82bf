"""Command line: /usr/bin/python3 -m aigw_model_server --port 50061 --backend echo"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Optional

from . import stubs


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="aigw_model_server",
                                 description="aigateway.v1.Inference gRPC model server")
    ap.add_argument("--port", type=int, default=50061, help="0 picks a free port")
    ap.add_argument("--host", default="[::]", help="listen address (default all)")
    ap.add_argument("--backend", default="tiny-lm", choices=("tiny-lm", "echo", "hf"))
    ap.add_argument("--model-dir", help="model directory (hf: required; tiny-lm: where "
                    "the trained model is, trained there when missing)")
    ap.add_argument("--model-id", help="model id to serve (default: the backend's)")
    ap.add_argument("--max-concurrency", type=int, default=8,
                    help="inference RPCs in flight; more get RESOURCE_EXHAUSTED")
    ap.add_argument("--echo-delay-ms", type=float, default=0.0,
                    help="echo backend: delay between tokens")
    ap.add_argument("--tiny-preset", default="default", choices=("default", "test"),
                    help="tiny-lm training configuration when it has to train")
    ap.add_argument("--device", help="hf backend: torch device (default cuda when available)")
    ap.add_argument("--no-batching", action="store_true",
                    help="run each embedding request alone (no dynamic batching)")
    ap.add_argument("--batch-max", type=int, default=None, help="max inputs per batch")
    ap.add_argument("--batch-wait-ms", type=float, default=3.0,
                    help="how long a batch waits for more requests")
    ap.add_argument("--grace", type=float, default=10.0,
                    help="seconds in-flight RPCs get to finish on SIGTERM/SIGINT")
    ap.add_argument("--stubs", help="generated stubs directory (default $AIGW_STUBS or "
                    "<repo>/build/gen/python)")
    ap.add_argument("--log-level", default="INFO")
    return ap.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        stubs.setup(args.stubs)
    except stubs.StubsNotFound as e:
        print(f"aigw_model_server: {e}", file=sys.stderr)
        return 2
    from .backends import BackendUnavailable, create
    from .server import ModelServer

    try:
        backend = create(args.backend, model_dir=args.model_dir,
                         echo_delay_ms=args.echo_delay_ms, model_id=args.model_id,
                         tiny_preset=args.tiny_preset, device=args.device)
    except BackendUnavailable as e:
        print(f"aigw_model_server: {e}", file=sys.stderr)
        return 2
    server = ModelServer(backend, port=args.port, host=args.host,
                         max_concurrency=args.max_concurrency, batching=not args.no_batching,
                         batch_max_items=args.batch_max, batch_wait_ms=args.batch_wait_ms)
    stop = threading.Event()
    signals = []

    def on_signal(signum, _frame) -> None:
        signals.append(signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        port = server.start()
    except RuntimeError as e:
        print(f"aigw_model_server: {e}", file=sys.stderr)
        return 1
    print(f"aigw_model_server listening on port {port}", flush=True)
    while not stop.is_set() and not server.load_failed.is_set():
        stop.wait(0.2)
    logging.getLogger("aigw").info("shutting down (grace %.1fs)", args.grace)
    server.stop(args.grace)
    if server.load_failed.is_set() and not signals:
        print(f"aigw_model_server: backend failed to load: {server.load_error}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
