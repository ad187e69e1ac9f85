"""Observer benchmark: our HF scanner vs huggingface_hub.scan_cache_dir, and `mlx status`
end to end, on the environment built by make_env.py (next to the walk floor: a fresh
interpreter walking the same tree), and on a typical machine (30 HF repos of 12 files,
20 Ollama models).

    uv run python benchmarks/observe.py [--runs 5] [--keep DIR]

Targets on a 2-core machine: HF scan >= 5x faster than scan_cache_dir on the same
~18,000-file cache; `mlx status` text <= 1.2x `status --json`; typical machine <= 0.15 s.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

from common import arguments, floor, large_env, line, mlx_env, ratio, timed

HERE = Path(__file__).resolve().parent


def main() -> None:
    args = arguments(__doc__ or "", 5)
    home = large_env(args.keep) / "home"
    cache = home / ".cache" / "huggingface" / "hub"

    from huggingface_hub import scan_cache_dir

    from mlxstate.observe.hf_cache import scan_hf_cache

    n_files = sum(len(r.files) for repo in scan_hf_cache(cache).repos for r in repo.revisions)
    ours = timed(lambda: scan_hf_cache(cache), args.runs)
    theirs = timed(lambda: scan_cache_dir(cache), args.runs)
    env = mlx_env(home)
    mlx = [sys.executable, "-m", "mlxstate", "status"]

    def status() -> None:
        subprocess.run(mlx, env=env, capture_output=True, check=True)

    def status_json() -> None:
        subprocess.run([*mlx, "--json"], env=env, capture_output=True, check=True)

    st = timed(status, args.runs)
    sj = timed(status_json, args.runs)
    walk = floor(home, args.runs)
    typical = large_env(args.keep) / "typical"
    if not (typical / "home").exists():
        cmd = [sys.executable, str(HERE / "make_env.py"), str(typical)]
        subprocess.run([*cmd, "--repos", "30", "--files", "12", "--ollama", "20"], check=True)
    small = mlx_env(typical / "home")
    st_small = timed(lambda: subprocess.run(mlx, env=small, capture_output=True), args.runs)
    print(f"# {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} cores")
    print(f"# HF cache: {n_files} files; {args.runs} runs each (after a warm-up); seconds")
    print(f"{'':<44} {'median':>8} {'min':>8} {'max':>8}")
    print(line("mlxstate scan_hf_cache", ours))
    print(line("huggingface_hub.scan_cache_dir", theirs))
    print(f"speed-up (median): {statistics.median(theirs) / statistics.median(ours):.1f}x")
    print(line("walk floor", walk))
    print(line("mlx status (process, daemon down)", st), ratio(st, walk))
    print(line("mlx status --json (process, daemon down)", sj), ratio(sj, walk))
    print(f"status text / status --json (median): {ratio(st, sj)}")
    print(line("mlx status, typical machine", st_small))


if __name__ == "__main__":
    main()
