"""Scheduled benchmarks in the watch agent with a fake runner: what is run, what is skipped
and why, what is recorded, and when the agent wakes (docs/benchmarks.md, "Schedules")."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlxstate.bench.due import read_marks, run_due
from mlxstate.bench.history import query_runs
from mlxstate.bench.record import RunRecord
from mlxstate.bench.schedule import Mark
from mlxstate.engine import Session
from mlxstate.errors import LockHeld, MlxError
from mlxstate.machine import Conditions
from mlxstate.registry import Registry
from mlxstate.settings import read_environment
from mlxstate.watch.state import read_agent
from tests.builders import ollama_store as ob
from tests.fakes.ollama_server import FakeOllama
from tests.helpers import state_dir
from tests.helpers.apply import QWEN
from tests.helpers.schedule import (
    AC,
    BATTERY,
    PRESSURE,
    FakeRunner,
    bench_spec,
    fake_skipped,
    run_agent,
    seams,
    seed,
    workspace,
)
from tests.helpers.watch import Script, kinds

HOUR = 3600.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def marks() -> dict[str, Mark]:
    with Registry.open(state_dir()) as registry:
        return read_marks(registry, workspace())


def due_once(
    clock: Clock,
    runner: FakeRunner,
    conditions: Conditions = AC,
    suspended: bool = False,
) -> tuple[list[RunRecord], tuple[str, float] | None]:
    session = Session(read_environment(), Path("mlx.yaml"), seams(clock, conditions))
    records: list[RunRecord] = []
    upcoming = run_due(
        session,
        session.load(),
        now=clock(),
        suspended=suspended,
        runner=runner,
        skipper=fake_skipped,
        on_record=records.append,
    )
    return records, upcoming


def stored() -> list[tuple[str, str, str, str | None]]:
    with Registry.open(state_dir()) as registry:
        return [(r.model, r.trigger, r.status, r.reason) for r in query_runs(registry)]


def test_first_seen_runs_nothing_and_counts_from_now() -> None:
    Path("mlx.yaml").write_text(bench_spec("@every 1h"))
    runner = FakeRunner()
    records, upcoming = due_once(Clock(10 * HOUR), runner)
    assert records == [] and runner.calls == []
    assert marks() == {"nightly": Mark("@every 1h", 10 * HOUR)}
    assert upcoming == ("nightly", 11 * HOUR)


def test_a_due_benchmark_runs_without_waiting_for_the_lock() -> None:
    Path("mlx.yaml").write_text(bench_spec("@every 1h"))
    seed("nightly", "@every 1h", 10 * HOUR)
    runner = FakeRunner()
    records, upcoming = due_once(Clock(11 * HOUR + 5), runner)
    assert runner.calls == [(["nightly"], "schedule", 0.0)]
    assert [(r.model, r.status, r.trigger) for r in records] == [("qwen", "ok", "schedule")]
    assert marks()["nightly"].last_due == 11 * HOUR
    assert upcoming == ("nightly", 12 * HOUR)
    # Handled: a second look at the same time runs nothing.
    assert due_once(Clock(11 * HOUR + 30), runner)[0] == [] and len(runner.calls) == 1


def test_after_a_day_off_it_runs_once_as_catch_up() -> None:
    Path("mlx.yaml").write_text(bench_spec("0 3 * * *"))
    seed("nightly", "0 3 * * *", 3 * HOUR)  # 1970-01-01 03:00 UTC
    runner = FakeRunner()
    _, upcoming = due_once(Clock(2 * 24 * HOUR + 9 * HOUR), runner)
    assert runner.calls == [(["nightly"], "catch-up", 0.0)]
    assert upcoming == ("nightly", 3 * 24 * HOUR + 3 * HOUR)


@pytest.mark.parametrize(
    ("conditions", "suspended", "reason"),
    [
        (BATTERY, False, "on battery power"),
        (PRESSURE, False, "memory pressure (warn)"),
        (AC, True, "agent suspended (`mlx resume` restarts it)"),
    ],
)
def test_skips_are_recorded_with_the_reason_and_count_as_handled(
    conditions: Conditions, suspended: bool, reason: str
) -> None:
    Path("mlx.yaml").write_text(bench_spec("@every 1h"))
    seed("nightly", "@every 1h", 10 * HOUR)
    runner = FakeRunner()
    records, _ = due_once(Clock(11 * HOUR), runner, conditions, suspended)
    assert runner.calls == []  # nothing was measured
    assert stored() == [("qwen", "schedule", "skipped", reason)]
    assert [r.reason for r in records] == [reason]
    # Skipped is handled: back on AC a minute later, it waits for the next due time.
    assert due_once(Clock(11 * HOUR + 60), runner)[0] == [] and runner.calls == []


def test_an_apply_holding_the_lock_skips_it_as_apply_running() -> None:
    Path("mlx.yaml").write_text(bench_spec("@every 1h"))
    seed("nightly", "@every 1h", 10 * HOUR)
    runner = FakeRunner(error=LockHeld("another mlx apply is running (pid 7)"))
    due_once(Clock(11 * HOUR), runner)
    assert runner.calls == [(["nightly"], "schedule", 0.0)]
    assert stored() == [("qwen", "schedule", "skipped", "apply running")]


def test_a_runner_error_is_recorded_as_failed() -> None:
    Path("mlx.yaml").write_text(bench_spec("@every 1h"))
    seed("nightly", "@every 1h", 10 * HOUR)
    due_once(Clock(11 * HOUR), FakeRunner(error=MlxError("Ollama is not running at x")))
    assert stored() == [("qwen", "schedule", "failed", "Ollama is not running at x")]


def test_a_removed_or_unscheduled_benchmark_forgets_its_mark() -> None:
    Path("mlx.yaml").write_text(bench_spec("@every 1h"))
    seed("nightly", "@every 1h", 10 * HOUR)
    seed("gone", "@daily", 0.0)
    Path("mlx.yaml").write_text(bench_spec("@every 1h").replace("    schedule: '@every 1h'\n", ""))
    records, upcoming = due_once(Clock(20 * HOUR), FakeRunner())
    assert records == [] and upcoming is None
    assert marks() == {}


def test_a_changed_schedule_starts_again_from_now() -> None:
    Path("mlx.yaml").write_text(bench_spec("@every 2h"))
    seed("nightly", "@every 1h", 0.0)  # many hours missed under the old schedule
    runner = FakeRunner()
    records, upcoming = due_once(Clock(20 * HOUR), runner)
    assert records == [] and runner.calls == []
    assert upcoming == ("nightly", 22 * HOUR)


# --- the loop in process: scripted clock, fake runner ---------------------------------------


@pytest.fixture
def qwen_published(ollama_server: FakeOllama) -> FakeOllama:
    ollama_server.publish(QWEN, ob.default_layers(QWEN, 2048))
    return ollama_server


def test_the_agent_wakes_for_a_due_benchmark_between_reconciles(
    qwen_published: FakeOllama,
) -> None:
    # Interval 2h, benchmark every hour: at start it is first seen (nothing runs), an hour
    # later it is due although no reconcile is.
    Path("mlx.yaml").write_text(bench_spec("@every 1h", interval="2h"))
    runner = FakeRunner()
    script = Script([(HOUR - 1, False, None), (1.0, False, None), (1.0, False, None)])
    events = run_agent(script, runner)
    assert kinds(events) == ["started", "reconcile", "applied", "benchmark", "stopped"]
    bench = events[3]
    assert bench.message == "nightly/qwen: 41.0 tok/s generation (median of 2) (schedule)"
    assert (bench.extra["status"], bench.extra["gen_tps"]) == ("ok", 41.0)
    assert bench.document()["event"] == "benchmark"
    assert runner.calls == [(["nightly"], "schedule", 0.0)]
    agent = read_agent(state_dir())
    assert agent["next_benchmark"] is None  # stopped: not running
    with Registry.open(state_dir()) as registry:
        from mlxstate.watch.state import AgentStore

        doc = AgentStore(registry).doc()
    assert doc["next_benchmark"]["benchmark"] == "nightly"
    assert doc["next_benchmark"]["time"] == "1970-01-01T02:16:40+00:00"  # 1000 s + 2 h


def test_the_agent_catches_up_at_start_and_skips_on_battery(qwen_published: FakeOllama) -> None:
    Path("mlx.yaml").write_text(bench_spec("@every 1h"))
    seed("nightly", "@every 1h", -5 * HOUR)  # the agent was off for five slots
    runner = FakeRunner()
    events = run_agent(Script([(1.0, False, None)]), runner, conditions=BATTERY)
    benches = [e for e in events if e.event == "benchmark"]
    assert [(e.extra["status"], e.extra["trigger"], e.extra["reason"]) for e in benches] == [
        ("skipped", "catch-up", "on battery power")
    ]
    assert benches[0].message == "nightly/qwen: skipped: on battery power (catch-up)"
    assert runner.calls == []


def test_a_suspended_agent_records_due_benchmarks_as_skipped(qwen_published: FakeOllama) -> None:
    Path("mlx.yaml").write_text(bench_spec("@every 1h"))
    seed("nightly", "@every 1h", -HOUR)
    with Registry.open(state_dir()) as registry:
        from mlxstate.watch.state import AgentStore

        AgentStore(registry).set_suspended(True)
    runner = FakeRunner()
    events = run_agent(Script([(1.0, False, None)]), runner)
    assert "reconcile" not in kinds(events)
    reason = "agent suspended (`mlx resume` restarts it)"
    assert stored() == [("qwen", "catch-up", "skipped", reason)]


def test_an_invalid_file_runs_no_benchmark_and_a_fix_catches_up(
    qwen_published: FakeOllama,
) -> None:
    Path("mlx.yaml").write_text(bench_spec("@every 1h", interval="2h"))
    runner = FakeRunner()
    broken = bench_spec("@every 1h", interval="2h") + "bogus: 1\n"
    fixed = bench_spec("@every 1h", interval="2h") + "# fixed\n"
    script = Script([(1.0, True, broken), (2 * HOUR, False, None), (1.0, True, fixed)])
    events = run_agent(script, runner)
    assert "invalid" in kinds(events)
    assert runner.calls == [(["nightly"], "catch-up", 0.0)]  # once, after the fix


def test_a_stop_before_a_benchmark_starts_leaves_it_due() -> None:
    Path("mlx.yaml").write_text(bench_spec("@every 1h"))
    seed("nightly", "@every 1h", 10 * HOUR)
    runner = FakeRunner()
    session = Session(read_environment(), Path("mlx.yaml"), seams(Clock(11 * HOUR), AC))
    run_due(
        session,
        session.load(),
        now=11 * HOUR,
        suspended=False,
        runner=runner,
        skipper=fake_skipped,
        on_record=lambda _record: None,
        stopping=lambda: True,
    )
    assert runner.calls == []
    assert marks()["nightly"].last_due == 10 * HOUR  # still due: a catch-up at the next start


def test_status_shows_the_next_benchmark_of_a_running_agent() -> None:
    import os

    from mlxstate.cli.status import agent_line
    from mlxstate.watch.state import agent_document

    nxt = {"benchmark": "nightly", "time": "2026-12-01T03:00:00+00:00"}
    doc = {"pid": os.getpid(), "next_run": "2026-11-30T09:22:03+00:00", "next_benchmark": nxt}
    shown = agent_document(doc, suspended=False)
    assert shown["next_benchmark"] == nxt
    assert agent_line(shown).endswith(", next benchmark nightly 2026-12-01T03:00:00+00:00")
    assert agent_document(doc, suspended=False, locked=False)["next_benchmark"] is None
