"""Dashboard benchmark: the sampler's cost at refresh 1 s, and how fast a reader of the
agent's snapshot answers, on the environment built by make_env.py with the loopback fake
Ollama serving two loaded models.

    uv run python benchmarks/dashboard.py [--seconds 60] [--runs 15] [--keep DIR]

1. A child process runs what the dashboard runs: a Sampler for the environment's mlx.yaml
   (no agent: it plans itself once a minute and scans the stores once a minute), the text
   frame rendered from every snapshot, and the watchfiles watcher on the store folders,
   once a second. psutil samples its CPU time and RSS over two consecutive windows after
   the first frame: the first holds the watcher's start-up (inotify/FSEvents watches on
   every store folder), the second is the steady state (one periodic store scan).
2. `mlx menubar` when it exists, else the same work without its own output: a fresh
   process that reads a fresh `<state_dir>/dashboard.json` and renders it; wall time over
   RUNS processes. `mlx dashboard --once` (which samples the machine itself) for comparison.

Targets: < 2% of one core averaged over 60 s and < 100 MB RSS; the snapshot reader < 0.15 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil
from common import HERE, large_env, mlx_env, timed

sys.path.insert(0, str(HERE.parent))

CPU_FIELDS = ("user", "system", "children_user", "children_system")

SAMPLER = """
import sys, time
from pathlib import Path
from mlxstate.engine import Session
from mlxstate.dashboard.sampler import Sampler
from mlxstate.dashboard.storewatch import StoreWatcher
from mlxstate.dashboard.text import render_text

sampler = Sampler(Session.from_environment(Path(sys.argv[1])))
StoreWatcher(sampler.store_roots(), sampler.stores_changed).start()
refresh = float(sys.argv[2])
render_text(sampler.sample(), sampler.settings.panels)
print("ready", flush=True)
due = time.monotonic()
while True:
    due += refresh
    time.sleep(max(0.0, due - time.monotonic()))
    render_text(sampler.sample(), sampler.settings.panels)
"""

READER = """
import sys
from pathlib import Path
from mlxstate.dashboard.snapshot import read_snapshot
from mlxstate.dashboard.text import render_text

doc = read_snapshot(Path(sys.argv[1]))
assert doc is not None
sys.stdout.write(render_text(doc, ["models", "system", "disk", "benchmarks"]))
"""


def sampler_cost(
    spec: Path, env: dict[str, str], seconds: float, windows: int = 2
) -> list[tuple[float, float, float]]:
    """Per consecutive window: (CPU % of one core, RSS at its end in MB, peak sampled RSS
    in MB). The first starts at the first frame (it holds the watcher's start-up); the
    next ones are the steady state (each holds one periodic store scan)."""
    argv = [sys.executable, "-c", SAMPLER, str(spec), "1.0"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
    out = []
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit("the sampler did not start")
        ps = psutil.Process(proc.pid)
        for _ in range(windows):
            start, cpu0 = time.perf_counter(), ps.cpu_times()
            peak = 0
            while time.perf_counter() - start < seconds:
                time.sleep(1.0)
                peak = max(peak, ps.memory_info().rss)
            cpu1, wall = ps.cpu_times(), time.perf_counter() - start
            used = sum(getattr(cpu1, f) - getattr(cpu0, f) for f in CPU_FIELDS)
            rss = ps.memory_info().rss
            out.append((100.0 * used / wall, rss / 1e6, max(peak, rss) / 1e6))
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def menubar_exists(env: dict[str, str]) -> bool:
    done = subprocess.run(
        [sys.executable, "-m", "mlxstate", "menubar", "--help"], env=env, capture_output=True
    )
    return done.returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="sampler window")
    parser.add_argument("--runs", type=int, default=15, help="reader processes timed")
    parser.add_argument("--keep", type=Path, help="build (or reuse) the environment here")
    args = parser.parse_args()

    from mlxstate.dashboard.sampler import Sampler
    from mlxstate.dashboard.snapshot import write_snapshot
    from mlxstate.engine import Session
    from mlxstate.settings import read_environment
    from tests.builders.ollama_store import read_manifests
    from tests.fakes.ollama_server import FakeOllama

    base = large_env(args.keep)
    home = base / "home"
    folder = base / "dashboard-bench"
    folder.mkdir(exist_ok=True)
    spec = folder / "mlx.yaml"
    spec.write_text((base / "mlx.yaml").read_text())  # a third declared, 10 absent: drift
    models_dir = home / ".ollama" / "models"
    print(f"# {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} cores")
    with FakeOllama(models_dir) as server:
        infos, _ = read_manifests(models_dir)
        for info in infos[:2]:
            server.set_running(info.name.full)
        env = mlx_env(home, OLLAMA_HOST=server.url.rstrip("/"))
        print(f"# environment {base}, {spec.read_text().count('source:')} models declared,")
        print(f"# fake Ollama at {server.url} with {len(server.running)} models loaded")

        for i, (cpu, rss, peak) in enumerate(sampler_cost(spec, env, args.seconds)):
            which = "first" if i == 0 else "next"
            print(f"sampler at refresh 1 s, {which} {args.seconds:.0f} s: {cpu:.2f}% of one "
                  f"core, RSS {rss:.1f} MB (peak {peak:.1f})")  # fmt: skip

        # A fresh snapshot where the agent writes it, made by the sampler in this process.
        old = dict(os.environ)
        os.environ.update(env)
        try:
            sampler = Sampler(Session(read_environment(), spec))
            doc = sampler.sample()
            state_dir = sampler.state_dir()
            write_snapshot(state_dir, doc)
            sampler.close()
        finally:
            os.environ.clear()
            os.environ.update(old)
        size = len(json.dumps(doc))
        if menubar_exists(env):
            label = "mlx menubar, fresh snapshot (whole process)"
            argv = [sys.executable, "-m", "mlxstate", "menubar", "-f", str(spec)]  # as the plugin
            shown = subprocess.run(argv, env=env, capture_output=True, text=True).stdout
            if "stale" in shown or "---" not in shown:
                raise SystemExit(f"mlx menubar did not show the fresh snapshot:\n{shown}")
        else:
            label = "read + render a fresh snapshot (whole process)"
            argv = [sys.executable, "-c", READER, str(state_dir)]
        reader = timed(lambda: subprocess.run(argv, env=env, check=True, capture_output=True),
                       args.runs)  # fmt: skip
        once = [sys.executable, "-m", "mlxstate", "dashboard", "--once", "-f", str(spec)]
        sampling = timed(lambda: subprocess.run(once, env=env, check=True, capture_output=True),
                         max(3, args.runs // 3))  # fmt: skip
        floor = timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True),
                      args.runs)  # fmt: skip
    for name, t in (
        (label, reader),
        ("mlx dashboard --once (samples itself)", sampling),
        ("python -c pass (interpreter floor)", floor),
    ):
        print(f"{name:<52} median {statistics.median(t):.3f} s  "
              f"min {min(t):.3f}  max {max(t):.3f}")  # fmt: skip
    print(f"snapshot size {size} bytes")


if __name__ == "__main__":
    main()
