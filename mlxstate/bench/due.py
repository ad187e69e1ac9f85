"""Scheduled benchmarks in the watch agent (docs/benchmarks.md, "Schedules").

After a reconcile (never during one) the agent asks :func:`run_due` to run what is due:
the marks in the registry's ``bench_schedule`` table say what was handled, the pure rules
of :mod:`mlxstate.bench.schedule` say what is due now, and each due benchmark is either
skipped with its reason (recorded as a ``skipped`` run) or run by the benchmark runner
without waiting for the apply lock. The runner comes in as a parameter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from mlxstate.bench.history import save_run
from mlxstate.bench.schedule import Due, Mark, evaluate, upcoming
from mlxstate.errors import LockHeld, MlxError
from mlxstate.registry import Registry

if TYPE_CHECKING:
    from mlxstate.bench.record import RunRecord, Trigger
    from mlxstate.engine import Session
    from mlxstate.machine import Conditions
    from mlxstate.mlxyaml.load import LoadedSpec

__all__ = [
    "APPLY_RUNNING",
    "Runner",
    "Skipper",
    "read_marks",
    "run_due",
    "skip_reason",
    "write_marks",
]

APPLY_RUNNING = "apply running"
SUSPENDED = "agent suspended (`mlx resume` restarts it)"


class Runner(Protocol):
    """``mlxstate.bench.runner.run_benchmarks``, as the agent calls it."""

    def __call__(
        self,
        session: Session,
        loaded: LoadedSpec,
        *,
        benchmarks: Sequence[str],
        trigger: Trigger,
        lock_timeout: float,
    ) -> list[RunRecord]: ...


class Skipper(Protocol):
    """``mlxstate.bench.runner.skipped_run``: a ``skipped`` record, not saved."""

    def __call__(
        self,
        session: Session,
        loaded: LoadedSpec,
        benchmark: str,
        model: str,
        trigger: Trigger,
        reason: str,
    ) -> RunRecord: ...


def skip_reason(conditions: Conditions | None, suspended: bool) -> str | None:
    """Why a scheduled run must not start now (None: run it). An unknown power source or
    pressure is no reason: a desktop has no battery, and not every OS reports pressure."""
    if suspended:
        return SUSPENDED
    if conditions is None:
        return None
    if conditions.on_battery:
        return "on battery power"
    if conditions.memory_pressure in ("warn", "critical"):
        return f"memory pressure ({conditions.memory_pressure})"
    return None


def read_marks(registry: Registry, workspace: str) -> dict[str, Mark]:
    rows = registry.conn.execute(
        "SELECT benchmark, schedule, last_due FROM bench_schedule WHERE workspace = ?",
        (workspace,),
    ).fetchall()
    return {name: Mark(text, float(last)) for name, text, last in rows}


def write_marks(
    registry: Registry, workspace: str, marks: Mapping[str, Mark], forget: Sequence[str] = ()
) -> None:
    """Store ``marks`` and drop the marks of the benchmarks in ``forget``."""
    if not marks and not forget:
        return
    with registry.transaction() as conn:
        conn.executemany(
            "DELETE FROM bench_schedule WHERE benchmark = ? AND workspace = ?",
            [(name, workspace) for name in forget],
        )
        conn.executemany(
            "INSERT OR REPLACE INTO bench_schedule (benchmark, workspace, schedule, last_due)"
            " VALUES (?, ?, ?, ?)",
            [(name, workspace, mark.schedule, mark.last_due) for name, mark in marks.items()],
        )


def run_due(
    session: Session,
    loaded: LoadedSpec,
    *,
    now: float,
    suspended: bool,
    runner: Runner,
    skipper: Skipper,
    on_record: Callable[[RunRecord], None],
    stopping: Callable[[], bool] = lambda: False,
) -> tuple[str, float] | None:
    """Run (or skip) every benchmark due at ``now``; returns the next one due and when."""
    settings = session.settings(loaded)
    workspace = settings.workspace or ""
    schedules = {
        name: bench.schedule
        for name, bench in loaded.spec.benchmarks.items()
        if bench.schedule is not None
    }
    tz = session.seams.timezone()
    with Registry.open(settings.state_dir) as registry:
        evaluation = evaluate(schedules, read_marks(registry, workspace), now, tz)
        due_now = {due.benchmark for due in evaluation.due}
        fresh = {n: evaluation.marks[n] for n in evaluation.changed if n not in due_now}
        write_marks(registry, workspace, fresh, evaluation.forget)
        for due in evaluation.due:
            if stopping():
                break  # not started, not marked: it runs as a catch-up next time
            # Marked handled as it starts: a run the agent is stopped in (or killed by) is
            # not started again and again at every restart; it waits for its next due time.
            write_marks(registry, workspace, {due.benchmark: evaluation.marks[due.benchmark]})
            for record in _one(session, loaded, registry, due, suspended, runner, skipper):
                on_record(record)
    return upcoming(schedules, evaluation.marks, tz)


def _one(
    session: Session,
    loaded: LoadedSpec,
    registry: Registry,
    due: Due,
    suspended: bool,
    runner: Runner,
    skipper: Skipper,
) -> list[RunRecord]:
    reason = skip_reason(_conditions(session), suspended)
    if reason is None:
        try:
            return runner(
                session, loaded, benchmarks=[due.benchmark], trigger=due.trigger, lock_timeout=0.0
            )
        except LockHeld:
            reason = APPLY_RUNNING  # never wait: a benchmark next to a download measures noise
        except MlxError as exc:
            return _record_all(session, loaded, registry, due, _one_line(exc), skipper, "failed")
    return _record_all(session, loaded, registry, due, reason, skipper, "skipped")


def _record_all(
    session: Session,
    loaded: LoadedSpec,
    registry: Registry,
    due: Due,
    reason: str,
    skipper: Skipper,
    status: str,
) -> list[RunRecord]:
    records = []
    for model in loaded.spec.benchmarks[due.benchmark].models:
        record = skipper(session, loaded, due.benchmark, model, due.trigger, reason)
        if status == "failed":
            record = dataclasses.replace(record, status="failed")
        save_run(registry, record)
        records.append(record)
    return records


def _conditions(session: Session) -> Conditions | None:
    try:
        return session.seams.conditions()
    except (OSError, RuntimeError, ValueError):
        return None  # unknown conditions are no reason to skip


def _one_line(exc: MlxError) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())
