"""Apply benchmark.

1. A no-op `mlx apply -y` on the large environment of make_env.py (everything declared is
   installed): the whole process, lock + journal + observe + plan. Target < 1.2 s.
2. Per-action overhead of the executor (journal lines fsynced before and after, the
   precondition re-check, the registry transaction), measured over 100 small actions:
   (a) end to end: 100 tiny models pulled from the loopback fake Ollama server, total / 100;
   (b) bookkeeping alone: the same 100 actions with the pull itself replaced by a no-op.
   Target < 20 ms per action.

    uv run python benchmarks/apply.py [--keep DIR]
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import arguments, floor, large_env, mlx_env, ratio

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def noop_apply(base: Path, runs: int) -> list[float]:
    from make_env import write_spec

    spec = base / "noop.yaml"
    write_spec(spec, 200, 300, missing=0)
    cmd = [sys.executable, "-m", "mlxstate", "apply", "-y", "-f", str(spec)]
    env = mlx_env(base / "home")
    out = []
    for i in range(runs + 1):
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(proc.stdout + proc.stderr)
        if i:
            out.append(time.perf_counter() - start)
    return out


def pulls(count: int) -> tuple[float, float]:
    """(seconds per action end to end, seconds per action of bookkeeping alone)."""
    from mlxstate.apply.executor import Executor
    from mlxstate.apply.journal import Journal
    from mlxstate.apply.ollama_effects import OllamaEffects
    from mlxstate.apply.progress import Display
    from mlxstate.plan.actions import Action
    from mlxstate.registry import Registry
    from mlxstate.settings import Environment, resolve
    from tests.fakes.ollama_server import FakeOllama

    results = []
    for real in (True, False):
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp)
            models = home / ".ollama" / "models"
            models.mkdir(parents=True)
            with FakeOllama(models) as server:
                names = [f"tiny{i:03d}:latest" for i in range(count)]
                for name in names:
                    server.publish(name)
                env = Environment.from_mapping({"HOME": str(home), "OLLAMA_HOST": server.url})
                settings = resolve(None, env)
                effects = OllamaEffects(server.url, models)
                if not real:
                    effects.pull = lambda src, progress: None  # type: ignore[method-assign]
                actions = [
                    Action(
                        f"model/m{i}",
                        "create",
                        "ollama.pull",
                        f"ollama://{n}",
                        None,
                        0,
                        "",
                        f"m{i}",
                    )
                    for i, n in enumerate(names)
                ]
                registry = Registry.open(home / "state")
                journal = Journal(home / "state")
                start = time.perf_counter()
                Executor(settings, registry, journal, Display(False), ollama=effects).run(actions)
                results.append((time.perf_counter() - start) / count)
                journal.close(True)
                registry.close()
    return results[0], results[1]


def main() -> None:
    args = arguments(__doc__ or "", 5)
    import contextlib
    import io

    t = noop_apply(large_env(args.keep), args.runs)
    walk = floor(large_env(args.keep) / "home", args.runs)
    with contextlib.redirect_stderr(io.StringIO()):
        end_to_end, bookkeeping = pulls(100)
    print(f"# {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} cores")
    print(
        f"no-op mlx apply -y (large env, whole process): median {statistics.median(t):.3f} s "
        f"(min {min(t):.3f}, max {max(t):.3f}; {args.runs} runs); "
        f"{ratio(t, walk)} the walk floor ({statistics.median(walk):.3f} s)"
    )
    print(
        f"per action, 100 tiny pulls from the fake Ollama, end to end: {end_to_end * 1000:.1f} ms"
    )
    print(
        f"per action, bookkeeping only (journal + re-check + registry): {bookkeeping * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
