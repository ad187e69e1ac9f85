"""Plan benchmark (issue 4): `mlx plan` end to end on the large environment of make_env.py
(300 HF repos / 18,000 files, 200 Ollama models, a third of them declared, 10 more declared
but absent), next to huggingface_hub.scan_cache_dir alone on the same cache.

    uv run python benchmarks/plan.py [--runs 7] [--keep DIR]

Target on a 2-core machine: under 1.0 s wall, and faster end to end (CLI start included)
than scan_cache_dir alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from observe import line, timed

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the environment here")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="mlx-bench-"))
    home = base / "home"
    if not home.exists():
        subprocess.run([sys.executable, str(HERE / "make_env.py"), str(base)], check=True)
    if not (base / "mlx.yaml").exists():
        from make_env import write_spec

        write_spec(base / "mlx.yaml", 200, 300)
    env = {**os.environ, "HOME": str(home), "NO_COLOR": "1", "OLLAMA_HOST": "127.0.0.1:9"}
    # PYTHONDONTWRITEBYTECODE would make every run recompile every module (some sandboxes
    # set it); users run with cached bytecode, so the warm-up run writes it.
    for key in (
        *("OLLAMA_MODELS", "HF_HOME", "HF_HUB_CACHE", "XDG_CACHE_HOME", "XDG_STATE_HOME"),
        "PYTHONDONTWRITEBYTECODE",
    ):
        env.pop(key, None)
    plan = [sys.executable, "-m", "mlxstate", "plan", "-f", str(base / "mlx.yaml")]
    cache = home / ".cache" / "huggingface" / "hub"

    def run_plan() -> None:
        subprocess.run(plan, env=env, capture_output=True, check=True)

    from huggingface_hub import scan_cache_dir

    first = subprocess.run(plan, env=env, capture_output=True, text=True, check=True)
    t_plan = timed(run_plan, args.runs)
    t_scan = timed(lambda: scan_cache_dir(cache), args.runs)
    print(f"# {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} cores")
    print(f"# {args.runs} runs each (after a warm-up); seconds")
    print(f"# plan says: {first.stdout.strip().splitlines()[-1]}")
    print(f"{'':<44} {'median':>8} {'min':>8} {'max':>8}")
    print(line("mlx plan (whole process)", t_plan))
    print(line("huggingface_hub.scan_cache_dir (in-process)", t_scan))
    ratio = statistics.median(t_plan) / statistics.median(t_scan)
    print(f"plan / scan_cache_dir (median): {ratio:.2f}")


if __name__ == "__main__":
    main()
