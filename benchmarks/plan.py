"""Plan benchmark: `mlx plan` end to end on the large environment of make_env.py
(300 HF repos / 18,000 files, 200 Ollama models, a third of them declared, 10 more declared
but absent) and on one HF repo of 16,000 files, each next to the walk floor (a fresh
interpreter walking the same tree: scandir, readlink, stat), and huggingface_hub's
scan_cache_dir alone on the large cache.

    uv run python benchmarks/plan.py [--runs 7] [--keep DIR] [--big-files 16000]

Targets on a 2-core machine: plan <= 2x the floor; one 16,000-file repo under 0.5 s.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import arguments, floor, large_env, line, mlx_env, ratio, timed

HERE = Path(__file__).resolve().parent


def plan_times(base: Path, runs: int) -> tuple[str, list[float]]:
    """(the plan's last line, wall times of `mlx plan` on ``base``/mlx.yaml)."""
    plan = [sys.executable, "-m", "mlxstate", "plan", "-f", str(base / "mlx.yaml")]
    env = mlx_env(base / "home")
    first = subprocess.run(plan, env=env, capture_output=True, text=True, check=True)
    t = timed(lambda: subprocess.run(plan, env=env, capture_output=True, check=True), runs)
    return first.stdout.strip().splitlines()[-1], t


def main() -> None:
    args = arguments(__doc__ or "", 7, big_files=16000)
    base = large_env(args.keep)
    if not (base / "mlx.yaml").exists():
        from make_env import write_spec

        write_spec(base / "mlx.yaml", 200, 300)
    from make_env import make_big_repo

    big = make_big_repo(base / f"big-{args.big_files}", args.big_files)
    says, t_plan = plan_times(base, args.runs)
    t_floor = floor(base / "home", args.runs)
    _, t_big = plan_times(big, args.runs)
    t_big_floor = floor(big / "home", args.runs)

    from huggingface_hub import scan_cache_dir

    cache = base / "home" / ".cache" / "huggingface" / "hub"
    t_scan = timed(lambda: scan_cache_dir(cache), args.runs)
    print(f"# {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} cores")
    print(f"# {args.runs} runs each (after a warm-up); seconds")
    print(f"# plan says: {says}")
    print(f"{'':<44} {'median':>8} {'min':>8} {'max':>8} {'/floor':>7}")
    print(line("walk floor, large env", t_floor))
    print(line("mlx plan, large env (whole process)", t_plan), ratio(t_plan, t_floor))
    print(line(f"walk floor, one repo of {args.big_files} files", t_big_floor))
    print(line(f"mlx plan, one repo of {args.big_files} files", t_big), ratio(t_big, t_big_floor))
    print(line("huggingface_hub.scan_cache_dir, large env", t_scan))
    print(f"plan / scan_cache_dir (median): {ratio(t_plan, t_scan)}")


if __name__ == "__main__":
    main()
