"""Scheduled benchmarks run by the watch agent for real: the runner, the Ollama engine and
the loopback fake Ollama; the clock, the time zone and the machine's conditions injected
(docs/benchmarks.md, "Schedules"; docs/watch.md)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from mlxstate.apply.lock import apply_lock
from mlxstate.bench.history import query_runs
from mlxstate.bench.record import RunRecord
from mlxstate.registry import Registry
from tests.builders import ollama_store as ob
from tests.fakes.ollama_server import FakeOllama
from tests.helpers import mlx, state_dir
from tests.helpers.apply import QWEN
from tests.helpers.schedule import BATTERY, bench_spec, run_agent, seams, seed
from tests.helpers.watch import HANG_GUARD, Script, kinds

HOUR = 3600.0


@pytest.fixture
def qwen_published(ollama_server: FakeOllama) -> FakeOllama:
    ollama_server.publish(QWEN, ob.default_layers(QWEN, 2048))
    return ollama_server


def runs() -> list[RunRecord]:
    with Registry.open(state_dir()) as registry:
        return query_runs(registry)


def test_a_due_schedule_is_measured_and_recorded(qwen_published: FakeOllama) -> None:
    Path("mlx.yaml").write_text(bench_spec("@every 1h", interval="2h"))
    # Start (the reconcile installs qwen; the schedule is first seen), then an hour passes.
    events = run_agent(Script([(HOUR, False, None), (1.0, False, None)]))
    assert kinds(events) == ["started", "reconcile", "applied", "benchmark", "stopped"]
    (record,) = runs()
    assert (record.benchmark, record.model, record.trigger, record.status) == (
        "nightly",
        "qwen",
        "schedule",
        "ok",
    )
    assert record.started == 1000.0 + HOUR  # the injected clock
    gen = record.summary()["gen_tps"]
    assert gen is not None and gen.median == pytest.approx(1e9 / qwen_published.generate_eval_ns)
    event = events[3]
    assert (event.extra["run_id"], event.extra["status"]) == (record.id, "ok")
    assert event.extra["gen_tps"] == pytest.approx(gen.median, abs=0.001)
    assert qwen_published.count("POST", "/api/generate") == 10 * 2  # 10 prompts, 2 runs


def test_watch_once_catches_up_a_missed_schedule(
    qwen_published: FakeOllama, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("mlx.yaml").write_text(bench_spec("0 3 * * *"))
    seed("nightly", "0 3 * * *", 3 * HOUR)  # 1970-01-01 03:00; three nights missed since
    clock = seams(lambda: 3 * 24 * HOUR + 9 * HOUR)
    result = mlx(capsys, "watch", "--once", "--json", seams=clock)
    assert result.code == 0, result.err
    events = [json.loads(line) for line in result.out.splitlines()]
    assert [e["event"] for e in events] == [
        "started",
        "reconcile",
        "applied",
        "benchmark",
        "stopped",
    ]
    bench = events[3]
    assert (bench["benchmark"], bench["model"], bench["status"], bench["trigger"]) == (
        "nightly",
        "qwen",
        "ok",
        "catch-up",
    )
    assert [(r.trigger, r.status) for r in runs()] == [("catch-up", "ok")]  # once, not three
    # The next night is what the agent now waits for.
    with Registry.open(state_dir()) as registry:
        from mlxstate.watch.state import AgentStore

        nxt = AgentStore(registry).doc()["next_benchmark"]
    assert nxt == {"benchmark": "nightly", "time": "1970-01-05T03:00:00+00:00"}


def test_on_battery_it_is_skipped_with_the_reason(qwen_published: FakeOllama) -> None:
    Path("mlx.yaml").write_text(bench_spec("@every 1h"))
    seed("nightly", "@every 1h", 1000.0 - HOUR)
    events = run_agent(Script([(1.0, False, None)]), conditions=BATTERY)
    (record,) = runs()
    assert (record.trigger, record.status) == ("schedule", "skipped")
    assert record.reason == "on battery power"
    assert record.conditions["power_source"] == "battery"
    assert qwen_published.count("POST", "/api/generate") == 0
    bench = next(e for e in events if e.event == "benchmark")
    assert bench.message == "nightly/qwen: skipped: on battery power (schedule)"


def test_an_apply_holding_the_lock_skips_it_as_apply_running(qwen_published: FakeOllama) -> None:
    Path("mlx.yaml").write_text(bench_spec("@every 1h", interval="2h"))
    held = ExitStack()

    def someone_applies() -> None:  # an `mlx apply` by hand, right when the run is due
        held.enter_context(apply_lock(state_dir(), 0.0))

    with held:
        run_agent(Script([(HOUR, False, None), (1.0, False, None)], {0: someone_applies}))
    (record,) = runs()
    assert (record.trigger, record.status) == ("schedule", "skipped")
    assert record.reason == "apply running"
    assert qwen_published.count("POST", "/api/generate") == 0


def test_a_model_not_installed_is_skipped_and_nothing_is_downloaded(
    ollama_server: FakeOllama,
) -> None:
    # Nothing published: the reconcile cannot install qwen; the benchmark never pulls it.
    Path("mlx.yaml").write_text(bench_spec("@every 1h"))
    seed("nightly", "@every 1h", 1000.0 - HOUR)
    events = run_agent(Script([(1.0, False, None)]))
    assert "failed" in kinds(events)  # the reconcile
    (record,) = runs()
    assert record.status == "skipped" and record.trigger == "schedule"
    assert record.reason is not None and "is not installed in Ollama" in record.reason
    pulls = ollama_server.count("POST", "/api/pull")
    assert ollama_server.count("POST", "/api/generate") == 0
    assert pulls >= 1  # the reconcile's own attempts only


def test_sigterm_during_a_benchmark_abandons_it_and_exits_0(
    qwen_published: FakeOllama, capsys: pytest.CaptureFixture[str]
) -> None:
    qwen_published.generate_token_delay = 0.05  # each generation streams for a while
    Path("mlx.yaml").write_text(bench_spec("@every 1h"))
    seed("nightly", "@every 1h", 1000.0 - HOUR)  # due at start

    def terminate_while_measuring() -> None:
        deadline = time.monotonic() + HANG_GUARD  # a guard against a hang, not a timing
        while qwen_published.count("POST", "/api/generate") == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)  # `mlx watch` runs in this process

    threading.Thread(target=terminate_while_measuring, daemon=True).start()
    result = mlx(capsys, "watch", "--json", seams=seams(lambda: 1000.0))
    assert result.code == 0, result.err
    events = [json.loads(line) for line in result.out.splitlines()]
    assert [e["event"] for e in events if e["event"] != "log"] == [
        "started",
        "reconcile",
        "applied",
        "stopped",
    ]
    assert any("benchmark was abandoned" in e["message"] for e in events)
    assert runs() == []  # nothing recorded for the model it was measuring
    assert qwen_published.count("POST", "/api/generate") < 20  # it did not run to the end
    with apply_lock(state_dir(), 0.0):  # and the lock the runner held is free
        pass
