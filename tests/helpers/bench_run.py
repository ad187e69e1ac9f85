"""Shared by the tests of `mlx bench run`: an mlx.yaml with benchmarks, fixed machine
conditions, and the figures the fake Ollama's counters imply."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlxstate.bench.engines.base import BenchTarget, EngineError, Loaded, Measurement
from mlxstate.engine import Session
from mlxstate.machine import Conditions
from mlxstate.mlxyaml.load import LoadedSpec
from mlxstate.seams import Seams
from mlxstate.settings import read_environment
from tests.fakes.ollama_server import FakeOllama

__all__ = [
    "CONDITIONS",
    "SEAMS",
    "RecordingEngine",
    "bench_session",
    "expected_gen_tps",
    "expected_prompt_tps",
    "fast_fake",
    "write_bench_spec",
]

CONDITIONS = Conditions(
    on_battery=False,
    battery_percent=None,
    memory_pressure="normal",
    memory_used_percent=42.0,
    swap_used_bytes=0,
)
SEAMS = Seams(conditions=lambda: CONDITIONS)


def write_bench_spec(
    path: Path,
    models: dict[str, str],
    benchmarks: dict[str, list[str]] | None = None,
    *,
    runs: int = 3,
    warmup: int = 1,
    max_tokens: int = 4,
    prompts: list[str] | None = None,
) -> Path:
    """``mlx.yaml`` declaring ``models`` (name -> source) and ``benchmarks`` (name -> model
    names), each benchmark with the same settings."""
    lines = ["version: 1", "models:"]
    for name, source in models.items():
        lines += [f"  {name}:", f"    source: {source}"]
    if benchmarks:
        lines.append("benchmarks:")
        for name, names in benchmarks.items():
            lines += [
                f"  {name}:",
                f"    models: [{', '.join(names)}]",
                f"    runs: {runs}",
                f"    warmup: {warmup}",
                f"    max_tokens: {max_tokens}",
            ]
            if prompts is not None:
                lines.append("    prompts:")
                lines += [f"      - {p!r}" for p in prompts]
    path.write_text("\n".join(lines) + "\n")
    return path


def bench_session(spec: Path) -> tuple[Session, LoadedSpec]:
    session = Session(read_environment(), spec, seams=SEAMS)
    return session, session.load()


def fast_fake(server: FakeOllama, *, eval_ns: int = 20_000_000, prompt_ns: int = 2_000_000) -> None:
    """Known counters: ``1e9 / eval_ns`` generation tok/s, ``1e9 / prompt_ns`` prompt tok/s."""
    server.generate_eval_ns = eval_ns
    server.generate_prompt_ns = prompt_ns


def expected_gen_tps(server: FakeOllama) -> float:
    return 1e9 / server.generate_eval_ns


def expected_prompt_tps(server: FakeOllama) -> float:
    return 1e9 / server.generate_prompt_ns


class RecordingEngine:
    """An engine that measures nothing real: fixed figures, and the targets it was given.
    ``fail`` makes :meth:`load` raise, as an engine whose extra is missing does."""

    name = "mlx"

    def __init__(self, fail: str | None = None) -> None:
        self.fail = fail
        self.targets: list[BenchTarget] = []
        self.prompts: list[str] = []
        self.loaded = Loaded()

    def version(self) -> str | None:
        return "0.0-test"

    def conditions(self) -> dict[str, Any]:
        return {}

    @contextmanager
    def load(self, target: BenchTarget) -> Iterator[RecordingEngine]:
        if self.fail is not None:
            raise EngineError(self.fail)
        self.targets.append(target)
        self.loaded = Loaded({"revision": target.revision})
        yield self

    def generate(self, prompt: str, *, max_tokens: int, seed: int) -> Measurement:
        self.prompts.append(prompt)
        return Measurement(10.0, 3, 300.0, max_tokens, 30.0, peak_memory_bytes=1 << 20)
