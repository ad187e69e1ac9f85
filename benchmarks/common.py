"""Shared helpers of the benchmark scripts (run them from the repo root with `uv run`)."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    fn()  # warm the page cache, imports and bytecode
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def line(label: str, t: list[float]) -> str:
    return f"{label:<44} {statistics.median(t):8.3f} {min(t):8.3f} {max(t):8.3f}"


def arguments(doc: str, runs: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--runs", type=int, default=runs)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the environment here")
    return parser.parse_args()


def large_env(keep: Path | None) -> Path:
    """The folder holding make_env.py's environment (built on first use)."""
    base = keep or Path(tempfile.mkdtemp(prefix="mlx-bench-"))
    if not (base / "home").exists():
        subprocess.run([sys.executable, str(HERE / "make_env.py"), str(base)], check=True)
    return base


def mlx_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of an `mlx` process whose stores are the defaults under ``home``."""
    env = {**os.environ, "HOME": str(home), "NO_COLOR": "1", "OLLAMA_HOST": "127.0.0.1:9"}
    # PYTHONDONTWRITEBYTECODE would make every run recompile every module (some sandboxes
    # set it); users run with cached bytecode, so the warm-up run writes it.
    for key in (
        *("OLLAMA_MODELS", "HF_HOME", "HF_HUB_CACHE", "XDG_CACHE_HOME", "XDG_STATE_HOME"),
        "PYTHONDONTWRITEBYTECODE",
    ):
        env.pop(key, None)
    env.update(extra)
    return env
