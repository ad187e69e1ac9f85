"""Observer benchmark (issue 3): our HF scanner vs huggingface_hub.scan_cache_dir, and
`mlx status` end to end, on the environment built by make_env.py.

    uv run python benchmarks/observe.py [--runs 5] [--keep DIR]

Targets on a 2-core machine: HF scan >= 5x faster than scan_cache_dir on the same
~18,000-file cache; `mlx status` under 0.8 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    fn()  # warm the page cache and imports
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def line(label: str, t: list[float]) -> str:
    return f"{label:<44} {statistics.median(t):8.3f} {min(t):8.3f} {max(t):8.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the environment here")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="mlx-bench-"))
    home = base / "home"
    if not home.exists():
        subprocess.run([sys.executable, str(HERE / "make_env.py"), str(base)], check=True)
    cache = home / ".cache" / "huggingface" / "hub"

    from huggingface_hub import scan_cache_dir

    from mlxstate.observe.hf_cache import scan_hf_cache

    n_files = sum(len(r.files) for repo in scan_hf_cache(cache).repos for r in repo.revisions)
    ours = timed(lambda: scan_hf_cache(cache), args.runs)
    theirs = timed(lambda: scan_cache_dir(cache), args.runs)
    env = {**os.environ, "HOME": str(home), "NO_COLOR": "1", "OLLAMA_HOST": "127.0.0.1:9"}
    # PYTHONDONTWRITEBYTECODE would make every run recompile every module (some sandboxes
    # set it); users run with cached bytecode, so the warm-up run writes it.
    for key in (
        *("OLLAMA_MODELS", "HF_HOME", "HF_HUB_CACHE", "XDG_CACHE_HOME", "XDG_STATE_HOME"),
        "PYTHONDONTWRITEBYTECODE",
    ):
        env.pop(key, None)
    mlx = [sys.executable, "-m", "mlxstate", "status"]

    def status() -> None:
        subprocess.run(mlx, env=env, capture_output=True, check=True)

    def status_json() -> None:
        subprocess.run([*mlx, "--json"], env=env, capture_output=True, check=True)

    st = timed(status, args.runs)
    sj = timed(status_json, args.runs)
    print(f"# {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} cores")
    print(f"# HF cache: {n_files} files; {args.runs} runs each (after a warm-up); seconds")
    print(f"{'':<44} {'median':>8} {'min':>8} {'max':>8}")
    print(line("mlxstate scan_hf_cache", ours))
    print(line("huggingface_hub.scan_cache_dir", theirs))
    print(f"speed-up (median): {statistics.median(theirs) / statistics.median(ours):.1f}x")
    print(line("mlx status (process, daemon down)", st))
    print(line("mlx status --json (process, daemon down)", sj))


if __name__ == "__main__":
    main()
