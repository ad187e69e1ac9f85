"""Loading benchmark: does validating mlx.yaml stay linear in the file's size?

Generates files of 1x, 2x and 4x a base size (default 0.5 MB: 0.5 / 1 / 2 MB) with many
models, apps and benchmarks, in two shapes: `valid` and `errors` (an invalid revision per
model, undeclared models in apps, nested app folders), and times the whole validation
(`parse_spec`: YAML with positions, schema, semantic rules, positioned errors). The
loader's 1 MiB cap applies to files read from disk, so text is passed directly here.

Prints CPU seconds (the median of --runs, so other processes on the machine disturb less)
and the ratio to the smallest size measured in the same run. Linear: about 2 and 4;
quadratic: about 4 and 16.

    uv run python benchmarks/load_large.py [--runs 3] [--base-mb 0.5]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

from mlxstate.errors import SpecError
from mlxstate.mlxyaml.load import parse_spec
from mlxstate.settings import read_environment


def generate(target_bytes: int, shape: str) -> str:
    """An mlx.yaml of about ``target_bytes``: models, then apps and benchmarks using them."""
    models: list[str] = []
    apps: list[str] = []
    benches: list[str] = []
    size = 0
    i = 0
    while size < target_bytes:
        if i % 2:
            entry = [f"  m{i}:", f"    source: hf://org-{i % 97}/model-{i}"]
            entry.append(f"    revision: {'bad rev' if shape == 'errors' else 'main'}")
        else:
            entry = [f"  m{i}:", f"    source: ollama://model{i}:7b  # a comment"]
        models += entry
        size += sum(len(line) + 1 for line in entry)
        if i % 10 == 0:
            ghost = f", ghost{i}" if shape == "errors" else ""
            path = f"/tmp/apps/a{i}" + ("/inner" if shape == "errors" and i % 20 == 0 else "")
            block = [f"  a{i}:", f"    path: {path}", f"    models: [m{i}{ghost}]"]
            block += [f"  x{i}:", f"    path: /tmp/other/x{i}"]
            apps += block
            benches += [f"  b{i}:", f"    models: [m{i}]", "    schedule: '@daily'"]
            size += sum(len(line) + 1 for line in block) + 40
        i += 1
    lines = ["version: 1", "models:", *models, "apps:", *apps, "benchmarks:", *benches]
    return "\n".join(lines) + "\n"


def cpu_seconds(text: str, runs: int) -> float:
    env = read_environment()
    base = Path(tempfile.gettempdir())
    times = []
    for _ in range(runs):
        start = time.process_time()
        # The `errors` shape is invalid on purpose: reporting the errors is part of the cost.
        with contextlib.suppress(SpecError):
            parse_spec(text, file="mlx.yaml", base_dir=base, env=env)
        times.append(time.process_time() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--base-mb", type=float, default=0.5)
    args = parser.parse_args()
    print(f"{'shape':<8} {'size':>9} {'MB':>6} {'cpu s':>8} {'ratio':>6}")
    for shape in ("valid", "errors"):
        first: float | None = None
        for factor in (1, 2, 4):
            text = generate(int(args.base_mb * factor * 1_000_000), shape)
            seconds = cpu_seconds(text, args.runs)
            first = first or seconds
            mb = len(text.encode()) / 1e6
            print(f"{shape:<8} {factor:>8}x {mb:6.2f} {seconds:8.2f} {seconds / first:6.2f}")


if __name__ == "__main__":
    main()
