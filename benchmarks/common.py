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


def arguments(doc: str, runs: int, big_files: int | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--runs", type=int, default=runs)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the environment here")
    if big_files is not None:
        parser.add_argument(
            "--big-files", type=int, default=big_files, help="files of the one-repo case"
        )
    return parser.parse_args()


def large_env(keep: Path | None) -> Path:
    """The folder holding make_env.py's environment (built on first use)."""
    base = keep or Path(tempfile.mkdtemp(prefix="mlx-bench-"))
    if not (base / "home").exists():
        subprocess.run([sys.executable, str(HERE / "make_env.py"), str(base)], check=True)
    return base


# The floor every whole-process number is compared with: a fresh interpreter that walks the
# same tree with the syscalls any observer needs (scandir per folder, readlink per link,
# stat per file) and nothing else. Ratios to it hold across machines better than seconds.
_WALK = """
import os, sys
def walk(path):
    for e in os.scandir(path):
        if e.is_symlink():
            os.readlink(e.path)
        elif e.is_dir():
            walk(e.path)
        else:
            e.stat()
walk(sys.argv[1])
"""


def floor(home: Path, runs: int) -> list[float]:
    """Wall times of ``python -c <walk> home``: interpreter start plus a bare walk."""
    argv = [sys.executable, "-c", _WALK, str(home)]
    return timed(lambda: subprocess.run(argv, check=True), runs)


def ratio(t: list[float], base: list[float]) -> str:
    return f"{statistics.median(t) / statistics.median(base):.2f}x"


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
