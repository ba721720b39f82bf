"""Finds the generated Python stubs (never committed) and puts them on sys.path.

Order: the explicit directory, $AIGW_STUBS, then <repo>/build/gen/python. Build
them with
    cmake -S . -B build -DGW_TESTS=OFF && make -C build python_stubs
"""
from __future__ import annotations

import os
import sys
from typing import Optional

REPO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_STUBS = os.path.join(REPO_DIR, "build", "gen", "python")


class StubsNotFound(RuntimeError):
    pass


def stubs_dir(explicit: Optional[str] = None) -> str:
    return explicit or os.environ.get("AIGW_STUBS") or DEFAULT_STUBS


def setup(explicit: Optional[str] = None) -> str:
    """Puts the stubs directory first on sys.path and returns it."""
    d = os.path.abspath(stubs_dir(explicit))
    if not os.path.exists(os.path.join(d, "aigateway", "v1", "inference_pb2_grpc.py")):
        raise StubsNotFound(
            f"generated stubs not found in {d}: build them with "
            f"'cmake -S {REPO_DIR} -B {REPO_DIR}/build -DGW_TESTS=OFF && "
            f"make -C {REPO_DIR}/build python_stubs', or pass --stubs DIR / set AIGW_STUBS")
    if d not in sys.path:
        sys.path.insert(0, d)
    return d
