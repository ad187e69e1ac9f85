"""Plan benchmark (issue 4): `mlx plan` end to end on the large environment of make_env.py
(300 HF repos / 18,000 files, 200 Ollama models, a third of them declared, 10 more declared
but absent), next to huggingface_hub.scan_cache_dir alone on the same cache.

    uv run python benchmarks/plan.py [--runs 7] [--keep DIR]

Target on a 2-core machine: under 1.0 s wall, and faster end to end (CLI start included)
than scan_cache_dir alone.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import arguments, large_env, line, mlx_env, timed

HERE = Path(__file__).resolve().parent


def main() -> None:
    args = arguments(__doc__ or "", 7)
    base = large_env(args.keep)
    home = base / "home"
    if not (base / "mlx.yaml").exists():
        from make_env import write_spec

        write_spec(base / "mlx.yaml", 200, 300)
    env = mlx_env(home)
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
