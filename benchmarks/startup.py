"""Startup benchmark: how fast `mlx` answers the commands editors and hooks run often.

Runs each command N times as a fresh process and prints median/min/max wall time, next
to `python -c pass` as the interpreter's own floor. Targets on a 2-core machine:
`mlx validate -f examples/mac-studio.yaml` median <= 0.35 s, `mlx --version` <= 0.25 s.

    uv run python benchmarks/startup.py [-n 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _mlx() -> list[str]:
    exe = shutil.which("mlx", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "mlxstate"]


def time_command(argv: list[str], runs: int) -> list[float]:
    """Wall times of ``runs`` executions (after one warm-up run that fills .pyc caches)."""
    env = {**os.environ, "NO_COLOR": "1"}
    # PYTHONDONTWRITEBYTECODE would make every run recompile every module (some sandboxes
    # set it); users run with cached bytecode, so the warm-up run writes it.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, check=False)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr.decode()}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=20)
    args = parser.parse_args()
    mlx = _mlx()
    cases = [
        ("python -c pass", [sys.executable, "-c", "pass"]),
        ("mlx --version", [*mlx, "--version"]),
        (
            "mlx validate -f examples/mac-studio.yaml",
            [*mlx, "validate", "-f", "examples/mac-studio.yaml"],
        ),
        (
            "mlx validate -f examples/minimal.yaml",
            [*mlx, "validate", "-f", "examples/minimal.yaml"],
        ),
    ]
    print(f"# {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} cores")
    print(f"# {args.runs} runs each; seconds")
    print(f"{'command':<44} {'median':>7} {'min':>7} {'max':>7}")
    for label, argv in cases:
        t = time_command(argv, args.runs)
        print(f"{label:<44} {statistics.median(t):7.3f} {min(t):7.3f} {max(t):7.3f}")


if __name__ == "__main__":
    main()
