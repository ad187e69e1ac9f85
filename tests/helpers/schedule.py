"""Shared by the tests of scheduled benchmarks: a fake runner that records how it was
called, a fake ``skipped_run``, fixed machine conditions, and the agent in process."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

from mlxstate.bench.record import Host, RunRecord, RunSettings, Sample, Trigger
from mlxstate.engine import Session
from mlxstate.machine import Conditions
from mlxstate.mlxyaml.load import LoadedSpec
from mlxstate.registry import Registry
from mlxstate.seams import Seams
from mlxstate.settings import read_environment
from mlxstate.watch.loop import Agent, Event
from mlxstate.watch.state import AgentStore, agent_lock
from tests.helpers import state_dir
from tests.helpers.apply import QWEN_SRC
from tests.helpers.watch import Script

__all__ = [
    "AC",
    "BATTERY",
    "PRESSURE",
    "UTC_ZONE",
    "FakeRunner",
    "bench_spec",
    "fake_skipped",
    "run_agent",
    "seams",
    "seed",
    "workspace",
]

UTC_ZONE = ZoneInfo("UTC")
AC = Conditions(False, 100.0, "normal", 40.0, 0)
BATTERY = Conditions(True, 80.0, "normal", 40.0, 0)
PRESSURE = Conditions(False, None, "warn", 93.0, 1 << 30)


def bench_spec(schedule: str, interval: str = "10m", models: Sequence[str] = ("qwen",)) -> str:
    """An mlx.yaml declaring the qwen model and one scheduled benchmark ``nightly``."""
    return (
        f"version: 1\nsettings:\n  watch:\n    interval: {interval}\n"
        f"models:\n  qwen:\n    source: {QWEN_SRC}\n"
        f"benchmarks:\n  nightly:\n    models: [{', '.join(models)}]\n"
        f"    schedule: '{schedule}'\n    runs: 2\n    warmup: 0\n    max_tokens: 8\n"
    )


def seams(clock: Callable[[], float], conditions: Conditions = AC, tz: tzinfo = UTC_ZONE) -> Seams:
    return Seams(clock=clock, conditions=lambda: conditions, timezone=lambda: tz)


def _record(benchmark: str, model: str, trigger: Trigger, started: float) -> RunRecord:
    return RunRecord(
        id=f"run-{benchmark}-{model}-{started:.0f}",
        benchmark=benchmark,
        model=model,
        source=QWEN_SRC,
        engine="ollama",
        engine_version=None,
        trigger=trigger,
        started=started,
        status="ok",
        reason=None,
        host=Host("h", "linux", "x86_64", "cpu", 1 << 30),
        settings=RunSettings(runs=2, warmup=0, max_tokens=8, prompts_sha256="0" * 64),
    )


def fake_skipped(
    session: Session,
    loaded: LoadedSpec,
    benchmark: str,
    model: str,
    trigger: Trigger,
    reason: str,
) -> RunRecord:
    record = _record(benchmark, model, trigger, session.seams.clock())
    record.status, record.reason = "skipped", reason
    return record


@dataclass
class FakeRunner:
    """Stands for ``run_benchmarks``: records its calls, returns one ``ok`` run per model
    (or raises ``error``)."""

    calls: list[tuple[list[str], Trigger, float]] = field(default_factory=list)
    error: Exception | None = None

    def __call__(
        self,
        session: Session,
        loaded: LoadedSpec,
        *,
        benchmarks: Sequence[str],
        trigger: Trigger,
        lock_timeout: float,
    ) -> list[RunRecord]:
        self.calls.append((list(benchmarks), trigger, lock_timeout))
        if self.error is not None:
            raise self.error
        records = []
        for name in benchmarks:
            for model in loaded.spec.benchmarks[name].models:
                record = _record(name, model, trigger, session.seams.clock())
                record.samples = [Sample(0, 10.0, 5, 100.0, 8, tps, 0.0) for tps in (40.0, 42.0)]
                records.append(record)
        return records


def workspace() -> str:
    session = Session(read_environment(), Path("mlx.yaml"))
    return session.settings(session.load()).workspace or ""


def seed(name: str, schedule: str, last_due: float) -> None:
    """Store what the agent would have handled before: ``last_due`` for ``name``."""
    with Registry.open(state_dir()) as registry, registry.transaction() as conn:
        conn.execute(
            "INSERT INTO bench_schedule VALUES (?, ?, ?, ?)",
            (name, workspace(), schedule, last_due),
        )


def run_agent(
    script: Script,
    runner: FakeRunner | None = None,
    conditions: Conditions = AC,
    tz: tzinfo = UTC_ZONE,
) -> list[Event]:
    """The loop in process to the end of ``script``, with a fake benchmark runner (None:
    the real one)."""
    events: list[Event] = []
    session = Session(read_environment(), Path("mlx.yaml"), seams(script.clock, conditions, tz))
    with agent_lock(state_dir()), Registry.open(state_dir()) as registry:
        bench = None if runner is None else (runner, fake_skipped)
        agent = Agent(session, Path("mlx.yaml"), AgentStore(registry), events.append, bench)
        agent.start()
        # The script ends after its last step; a look from inside a benchmark run is no step.
        agent.run(script.wait, lambda: not agent.benchmarking and script.done())
        agent.stop()
    return events
