"""Watch benchmark: the idle cost of `mlx watch` and its reaction time to an edit, on the
environment built by make_env.py, with the Ollama daemon down (nothing goes to the network).

    uv run python benchmarks/watch.py [--seconds 60] [--edits 5] [--keep DIR]

Runs `mlx watch --json` as a child with normal priority (a LaunchAgent's Background
ProcessType would throttle it), waits for the reconcile at start, then samples its CPU
time and RSS with psutil over the window: once with the default interval and once with
`interval: 1m` (its window starts 5 s later, so 60 s of it hold one interval resync of the
large environment: the steady state of that interval). In the first run it then saves
mlx.yaml atomically (temp file + rename, as editors do) with a different comment, several
times, and times each save to the `applied` event that ends the reconcile it starts (a plan
with no actions: no network needed). The 300 ms debounce is an upper bound: watchfiles
hands over a batch after 50 ms without a new change, so "beyond the debounce" can be < 0.

Targets: idle < 1% of one core and < 60 MB RSS; edit to `applied` < 2 s beyond the debounce.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
from common import large_env, mlx_env

DEBOUNCE = 0.3  # mlxstate.watch.files.DEBOUNCE_MS
CPU_FIELDS = ("user", "system", "children_user", "children_system")
GUARD = 120.0  # seconds to wait for an event before giving up (a hang, not a measurement)


class Watch:
    """`mlx watch --json -f SPEC` with its events timestamped on arrival."""

    def __init__(self, spec: Path, env: dict[str, str]) -> None:
        argv = [sys.executable, "-m", "mlxstate", "watch", "--json", "-f", str(spec)]
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
        self.events: queue.Queue[tuple[float, dict[str, object]] | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.put((time.perf_counter(), json.loads(line)))
        self.events.put(None)

    def until(self, event: str) -> float:
        """perf_counter() when the next event of this kind arrived."""
        while True:
            item = self.events.get(timeout=GUARD)
            if item is None:
                raise SystemExit(f"mlx watch ended before {event!r}: {self.seen}")
            self.seen.append(str(item[1]["event"]))
            if item[1]["event"] == "failed":
                raise SystemExit(f"reconcile failed: {item[1]['message']}")
            if item[1]["event"] == event:
                return item[0]

    def drain(self) -> list[str]:
        out = []
        while not self.events.empty():
            item = self.events.get_nowait()
            if item is not None:
                out.append(str(item[1]["event"]))
        return out

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=GUARD)


def idle(watch: Watch, seconds: float) -> tuple[float, float, float]:
    """(CPU % of one core, RSS at the end in MB, peak sampled RSS in MB) over the window."""
    proc = psutil.Process(watch.proc.pid)
    start, cpu0 = time.perf_counter(), proc.cpu_times()
    peak = 0
    while time.perf_counter() - start < seconds:
        time.sleep(min(1.0, seconds))
        peak = max(peak, proc.memory_info().rss)
    cpu1, wall = proc.cpu_times(), time.perf_counter() - start
    # Its children count too (the `git rev-parse` of each reconcile, once reaped).
    used = sum(getattr(cpu1, f) - getattr(cpu0, f) for f in CPU_FIELDS)
    rss = proc.memory_info().rss
    return 100.0 * used / wall, rss / 1e6, max(peak, rss) / 1e6


def atomic_save(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def run(
    base: Path, spec_text: str, name: str, seconds: float, edits: int, offset: float = 0.0
) -> None:
    folder = base / "watch-bench"
    folder.mkdir(exist_ok=True)
    spec = folder / "mlx.yaml"
    spec.write_text(spec_text)
    watch = Watch(spec, mlx_env(base / "home"))
    try:
        watch.until("applied")  # the reconcile at start
        time.sleep(offset)
        cpu, rss, peak = idle(watch, seconds)
        during = watch.drain().count("reconcile")
        print(f"{name:<28} idle cpu {cpu:6.2f}% of one core, rss {rss:5.1f} MB "
              f"(peak {peak:5.1f}), {during} reconcile(s) in {seconds:.0f} s")  # fmt: skip
        if not edits:
            return
        to_reconcile, to_applied = [], []
        for i in range(edits):
            time.sleep(1.0)  # let the previous reconcile settle
            t0 = time.perf_counter()
            atomic_save(spec, spec_text + f"# edit {i}\n")
            to_reconcile.append(watch.until("reconcile") - t0)
            to_applied.append(watch.until("applied") - t0)
        for label, times in (("reconcile", to_reconcile), ("applied", to_applied)):
            med = statistics.median(times)
            print(f"{'':<28} save -> {label:<10} median {med:.3f} s (max {max(times):.3f}); "
                  f"{med - DEBOUNCE:+.3f} s beyond the debounce, {edits} edits")  # fmt: skip
    finally:
        watch.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="idle window per run")
    parser.add_argument("--edits", type=int, default=5, help="atomic saves timed")
    parser.add_argument("--keep", type=Path, help="build (or reuse) the environment here")
    args = parser.parse_args()
    base = large_env(args.keep)
    noop = base / "noop.yaml"
    if not noop.exists():  # installed models only: plans no action (as benchmarks/apply.py)
        from make_env import write_spec

        write_spec(noop, 200, 300, missing=0)
    spec_text = noop.read_text()
    models = spec_text.count("source:")
    print(f"# {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} cores")
    print(f"# environment {base} ({models} models declared), Ollama daemon down")
    run(base, spec_text, "default interval (10m)", args.seconds, args.edits)
    one_minute = spec_text.replace("settings:\n", "settings:\n  watch: {interval: 1m}\n", 1)
    # Started 5 s after the reconcile at start, a 60 s window holds the resync due at 60 s:
    # the steady state of a 1m interval is one resync of the whole environment a minute.
    run(base, one_minute, "interval 1m", args.seconds, 0, offset=5.0)


if __name__ == "__main__":
    main()
