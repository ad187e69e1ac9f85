"""``mlx watch`` and the agent state: the decisions as plain values, the loop in process
with an injected clock and scripted file events, and the real loop as a subprocess against
the loopback fake Ollama (docs/watch.md).

Subprocess tests read the JSON event stream with a generous timeout: it guards against a
hang, it is not a speed assertion.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlxstate.apply.lock import apply_lock
from mlxstate.engine import Session, is_destructive
from mlxstate.plan.actions import KIND_PARAMS, Action
from mlxstate.registry import Registry
from mlxstate.seams import Seams
from mlxstate.settings import read_environment
from mlxstate.watch.decide import Schedule, backoff
from mlxstate.watch.loop import Agent, Event
from mlxstate.watch.state import AgentStore, agent_lock, read_agent
from tests.builders import ollama_store as ob
from tests.fakes.ollama_server import FakeOllama
from tests.helpers import mlx, ollama_dir, state_dir
from tests.helpers.apply import QWEN, QWEN_SRC
from tests.helpers.watch import EMPTY, HANG_GUARD, Script, Watch, atomic_save, kinds, sha

WITH_QWEN = f"version: 1\nmodels:\n  qwen:\n    source: {QWEN_SRC}\n"


def installed(name: str = QWEN) -> bool:
    return ob.manifest_path(ollama_dir(), name).is_file()


# --- decisions ----------------------------------------------------------------------------------


def test_backoff_starts_at_5s_doubles_and_is_capped_by_the_interval() -> None:
    assert [backoff(n, 60.0) for n in range(1, 6)] == [5.0, 10.0, 20.0, 40.0, 60.0]
    assert backoff(100, 600.0) == 600.0


def test_a_file_event_triggers_only_when_the_content_changed() -> None:
    schedule = Schedule(interval=600.0, next_run=1000.0, last_sha="a")
    assert schedule.trigger(10.0, "a", file_event=True, requested=False) is None  # a touch
    assert schedule.trigger(10.0, "b", file_event=True, requested=False) == "file"
    assert schedule.trigger(10.0, "a", file_event=False, requested=True) == "requested"
    assert schedule.trigger(999.0, "a", file_event=False, requested=False) is None
    assert schedule.trigger(1000.0, "a", file_event=False, requested=False) == "interval"


def test_failures_back_off_stall_and_recover() -> None:
    schedule = Schedule(interval=60.0)
    assert schedule.failed(100.0) == 5.0 and schedule.next_run == 105.0
    schedule.failed(105.0)
    assert not schedule.stalled
    schedule.failed(115.0)
    assert schedule.stalled
    schedule.succeeded(200.0)
    assert schedule.failures == 0 and not schedule.stalled and schedule.next_run == 260.0


def test_an_invalid_content_is_reported_once_per_hash() -> None:
    schedule = Schedule(interval=60.0)
    assert schedule.invalid(0.0, "x") is True
    assert schedule.invalid(60.0, "x") is False
    assert schedule.invalid(61.0, "y") is True


def _action(kind: Any, op: Any) -> Action:
    extra: dict[str, Any] = {}
    if kind == "cleanup.partial":
        extra["params"] = KIND_PARAMS[kind](mtime=0.0, size=0)  # type: ignore[call-arg]
    return Action(
        id="a", op=op, kind=kind, subject="s", download_bytes=None, free_bytes=None, reason="r",
        **extra,
    )  # fmt: skip


def test_what_deletes_hold_holds() -> None:
    assert is_destructive(_action("ollama.delete", "delete"))
    assert is_destructive(_action("hf.download", "replace"))
    assert is_destructive(_action("link.delete", "delete"))
    assert is_destructive(_action("cleanup.partial", "delete"))
    assert not is_destructive(_action("registry.release", "delete"))  # frees nothing
    assert not is_destructive(_action("ollama.pull", "create"))
    assert not is_destructive(_action("link.update", "update"))


def test_watch_settings_default_and_minimum(capsys: pytest.CaptureFixture[str]) -> None:
    Path("mlx.yaml").write_text("version: 1\nsettings:\n  watch:\n    interval: 30s\n")
    result = mlx(capsys, "validate")
    assert result.code == 1
    assert "mlx.yaml:4:15: error: settings.watch.interval: interval must be at least 1m" in (
        result.out
    )
    Path("mlx.yaml").write_text("version: 1\nsettings:\n  watch:\n    deletes: sometimes\n")
    assert mlx(capsys, "validate").code == 1
    Path("mlx.yaml").write_text(EMPTY)
    watch = Session(read_environment()).load().spec.settings.watch
    assert (watch.interval.total_seconds(), watch.deletes) == (600.0, "hold")


# --- the loop in process: injected clock, scripted file events ----------------------------------


def run_agent(script: Script, delays: list[float] | None = None) -> list[Event]:
    """Run the loop to the end of the script; ``delays`` gets, for every failure, how long
    the schedule waits before the retry (its next run minus the clock)."""
    events: list[Event] = []
    session = Session(read_environment(), Path("mlx.yaml"), Seams(clock=script.clock))
    # As `mlx watch` does: the agent lock says an agent runs here (status shows its state).
    with agent_lock(state_dir()), Registry.open(state_dir()) as registry:

        def emit(event: Event) -> None:
            events.append(event)
            if event.event == "failed" and delays is not None:
                delays.append(agent.schedule.next_run - script.now)

        agent = Agent(session, Path("mlx.yaml"), AgentStore(registry), emit)
        agent.start()
        agent.run(script.wait, script.done)
        agent.stop()
    return events


def test_touch_is_no_reconcile_the_interval_is(no_ollama: None) -> None:
    Path("mlx.yaml").write_text(EMPTY)
    script = Script([(1.0, True, None), (1.0, False, None), (600.0, False, None)])
    events = run_agent(script)
    # start, then nothing for the touch, then the interval resync.
    assert kinds(events) == ["started", *["reconcile", "applied"] * 2, "stopped"]
    assert "(interval)" in events[3].message


def test_invalid_content_is_reported_once_then_a_fix_applies(no_ollama: None) -> None:
    Path("mlx.yaml").write_text(EMPTY)
    bad = "version: 1\nbogus: 1\n"
    script = Script([(1.0, True, bad), (600.0, False, None), (1.0, True, EMPTY + "# ok\n")])
    events = run_agent(script)
    assert kinds(events) == ["started", "reconcile", "applied", "invalid", "reconcile",
                             "applied", "stopped"]  # fmt: skip
    assert "bogus: unknown key" in events[3].message
    history = read_agent(state_dir())["history"]
    assert [h["result"] for h in history] == ["applied", "invalid", "invalid", "applied"]


def test_failures_are_recorded_with_backoff_and_stalled(tmp_path: Path) -> None:
    Path("mlx.yaml").write_text(f"version: 1\nsettings:\n  state_dir: {tmp_path / 'st'}\n")
    (tmp_path / "st").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "st" / "apply.lock")  # the lock cannot open
    script = Script([(5.0, False, None), (10.0, False, None)])
    events: list[Event] = []
    session = Session(read_environment(), Path("mlx.yaml"), Seams(clock=script.clock))
    with Registry.open(tmp_path / "st") as registry:
        agent = Agent(session, Path("mlx.yaml"), AgentStore(registry), events.append)
        agent.start()
        agent.run(script.wait, script.done)
        doc = AgentStore(registry).doc()
        (tmp_path / "st" / "apply.lock").unlink()  # the cause goes away
        retry = Script([(20.0, False, None)])
        retry.now = script.now
        agent.clock = retry.clock
        agent.run(retry.wait, retry.done)
        recovered = AgentStore(registry).doc()
    failed = [e for e in events if e.event == "failed"]
    assert [e.extra["failures"] for e in failed] == [1, 2, 3]
    assert "retrying in 5s" in failed[0].message and "retrying in 10s" in failed[1].message
    stalled = next(c for c in doc["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True" and "cannot open the apply lock" in stalled["message"]
    assert events[-1].event == "applied"
    conditions = {c["type"]: c["status"] for c in recovered["conditions"]}
    assert conditions["Stalled"] == "False" and conditions["Ready"] == "True"
    assert recovered["failures"] == 0


def test_a_model_deleted_behind_mlxs_back_is_restored_by_the_interval_resync(
    ollama_server: FakeOllama,
) -> None:
    ollama_server.publish(QWEN, ob.default_layers(QWEN, 2048))
    Path("mlx.yaml").write_text(WITH_QWEN)

    def delete_it() -> None:
        assert installed()  # the reconcile at start pulled it
        ob.manifest_path(ollama_dir(), QWEN).unlink()  # `rm` by hand: no API call

    # Nothing for 599 s, then the interval (default 10m) is due: the resync finds the drift.
    script = Script([(599.0, False, None), (1.0, False, None)], hooks={0: delete_it})
    events = run_agent(script)
    assert kinds(events) == ["started", *["reconcile", "applied"] * 2, "stopped"]
    assert "(interval)" in events[3].message
    assert events[4].extra["actions"] >= 1
    assert ollama_server.count("POST", "/api/pull") == 2
    assert installed()
    assert read_agent(state_dir())["history"][-1]["result"] == "applied"


def test_ollama_down_backs_off_then_recovers_when_it_comes_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers import dead_url

    url = dead_url()  # nothing listens there yet: connections are refused
    monkeypatch.setenv("OLLAMA_HOST", url)
    server = FakeOllama(ollama_dir(), port=int(url.rsplit(":", 1)[1]))
    server.publish(QWEN, ob.default_layers(QWEN, 2048))
    Path("mlx.yaml").write_text(WITH_QWEN)
    stalled: list[dict[str, Any]] = []

    def comes_up() -> None:
        stalled.append(read_agent(state_dir()))
        server.start()  # the daemon starts where mlx already looks

    # The clock moves exactly as far as each backoff: 5 s, then 10 s, then 20 s.
    script = Script([(5.0, False, None), (10.0, False, None), (20.0, False, None)], {2: comes_up})
    delays: list[float] = []
    try:
        events = run_agent(script, delays)
    finally:
        server.stop()
    assert kinds(events) == ["started", *["reconcile", "failed"] * 3, "reconcile", "applied",
                             "stopped"]  # fmt: skip
    assert delays == [5.0, 10.0, 20.0]
    failed = [e for e in events if e.event == "failed"]
    assert [e.extra["failures"] for e in failed] == [1, 2, 3]
    assert "Ollama is not running at" in failed[0].message
    assert "retrying in 5s" in failed[0].message and "retrying in 20s" in failed[2].message
    conds = {c["type"]: c for c in stalled[0]["conditions"]}
    assert conds["Stalled"]["status"] == "True" and conds["Ready"]["status"] == "False"
    assert stalled[0]["failures"] == 3
    assert installed()
    doc = read_agent(state_dir())
    assert doc["failures"] == 0
    assert [h["result"] for h in doc["history"]] == ["failed"] * 3 + ["applied"]


@pytest.fixture
def no_ollama(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.helpers import dead_url

    monkeypatch.setenv("OLLAMA_HOST", dead_url())


# --- the real loop, as a subprocess -------------------------------------------------------------


@pytest.fixture
def watching(ollama_server: FakeOllama) -> Iterator[tuple[Path, Watch]]:
    ollama_server.publish(QWEN, ob.default_layers(QWEN, 2048))
    spec = Path("mlx.yaml").absolute()
    spec.write_text(EMPTY)
    watch = Watch(spec)
    watch.until("started")
    watch.until("applied")  # the reconcile at start
    yield spec, watch
    if watch.proc.poll() is None:
        watch.proc.kill()
        watch.proc.wait()


def test_an_atomic_save_installs_the_model_once_and_a_touch_does_nothing(
    watching: tuple[Path, Watch],
) -> None:
    spec, watch = watching
    mark = len(watch.seen)
    atomic_save(spec, WITH_QWEN)
    assert watch.until("reconcile")["spec_sha256"] == sha(WITH_QWEN)
    assert watch.until("applied")["actions"] >= 1
    assert installed()
    os.utime(spec)  # same bytes: no reconcile
    atomic_save(spec, WITH_QWEN + "# a comment\n")
    # The next reconcile is the one for the comment: the touch made none.
    assert watch.until("reconcile")["spec_sha256"] == sha(WITH_QWEN + "# a comment\n")
    watch.until("applied")
    assert len(watch.since(mark, "reconcile")) == 2
    assert watch.stop() == 0


def test_an_invalid_edit_is_never_applied_and_a_fix_recovers(
    watching: tuple[Path, Watch], capsys: pytest.CaptureFixture[str]
) -> None:
    spec, watch = watching
    bad = WITH_QWEN + "  oops: 1\n"
    atomic_save(spec, bad)
    assert "mlx.yaml:5:9: error: models.oops" in watch.until("invalid")["message"]
    assert not installed()
    agent = json.loads(mlx(capsys, "status", "--json", "-f", str(spec)).out)["agent"]
    ready = next(c for c in agent["conditions"] if c["type"] == "Ready")
    assert agent["running"] is True
    assert (ready["status"], ready["reason"]) == ("False", "ValidationFailed")
    atomic_save(spec, WITH_QWEN)
    watch.until("applied")
    assert installed()
    assert watch.stop() == 0


def test_a_symlinked_file_is_followed_to_its_target(ollama_server: FakeOllama) -> None:
    ollama_server.publish(QWEN, ob.default_layers(QWEN, 2048))
    dotfiles = Path("dotfiles").absolute()
    dotfiles.mkdir()
    (dotfiles / "mlx.yaml").write_text(EMPTY)
    link = Path("config").absolute() / "mlx.yaml"
    link.parent.mkdir()
    link.symlink_to(dotfiles / "mlx.yaml")
    watch = Watch(link)
    try:
        watch.until("applied")
        atomic_save(dotfiles / "mlx.yaml", WITH_QWEN)  # a `git pull` in the dotfiles repo
        assert watch.until("reconcile")["spec_sha256"] == sha(WITH_QWEN)
        watch.until("applied")
        assert installed()
        other = Path("other").absolute()
        other.mkdir()
        (other / "mlx.yaml").write_text(WITH_QWEN + "# other\n")
        tmp = link.with_name("mlx.yaml.new")
        tmp.symlink_to(other / "mlx.yaml")
        os.replace(tmp, link)  # the link re-pointed
        assert watch.until("reconcile")["spec_sha256"] == sha(WITH_QWEN + "# other\n")
        (other / "mlx.yaml").write_text(WITH_QWEN + "# edited in place\n")  # the new target
        assert watch.until("reconcile")["spec_sha256"] == sha(WITH_QWEN + "# edited in place\n")
        assert watch.stop() == 0
    finally:
        if watch.proc.poll() is None:
            watch.proc.kill()
            watch.proc.wait()


def test_held_deletes_are_reported_and_nothing_is_deleted(watching: tuple[Path, Watch]) -> None:
    spec, watch = watching
    atomic_save(spec, WITH_QWEN)
    watch.until("applied")
    assert installed()
    atomic_save(spec, "version: 1\nsettings:\n  prune: true\nmodels: {}\n")
    held = watch.until("held")
    assert held["actions"] and "mlx apply" in held["message"]
    assert installed()  # held, not deleted
    assert watch.stop() == 0


def test_sigterm_exits_0_records_stopped_and_frees_the_lock(
    watching: tuple[Path, Watch], capsys: pytest.CaptureFixture[str]
) -> None:
    spec, watch = watching
    assert watch.stop(signal.SIGTERM) == 0
    watch.until("stopped")
    with apply_lock(state_dir(), 0.0):
        pass  # free: taken at once
    agent = json.loads(mlx(capsys, "status", "--json", "-f", str(spec)).out)["agent"]
    assert agent["running"] is False
    assert mlx(capsys, "reconcile", "-f", str(spec)).code == 1


def test_sigterm_mid_pull_abandons_it_safely_and_apply_converges(
    ollama_server: FakeOllama, capsys: pytest.CaptureFixture[str]
) -> None:
    ollama_server.publish(QWEN, ob.default_layers(QWEN, 2048))
    ollama_server.pull_pause_after = 1  # the pull blocks after its first line
    spec = Path("mlx.yaml").absolute()
    spec.write_text(WITH_QWEN)
    watch = Watch(spec)
    try:
        watch.until("reconcile")
        assert ollama_server.pull_paused.wait(HANG_GUARD)
        assert watch.stop(signal.SIGTERM) == 0
    finally:
        ollama_server.pull_resume.set()
        if watch.proc.poll() is None:
            watch.proc.kill()
            watch.proc.wait()
    watch.until("stopped")
    assert watch.proc.stderr is not None and "Traceback" not in watch.proc.stderr.read()
    assert not installed()  # abandoned mid-pull, not finished
    with apply_lock(state_dir(), 0.0):
        pass  # released
    ollama_server.pull_pause_after = None
    assert mlx(capsys, "apply", "-y").code == 0
    assert mlx(capsys, "plan", "--detailed-exitcode").code == 0
    assert installed()


def test_sigint_exits_130(watching: tuple[Path, Watch]) -> None:
    _, watch = watching
    assert watch.stop(signal.SIGINT) == 130
    watch.until("stopped")


def test_reconcile_asks_the_running_agent(
    watching: tuple[Path, Watch], capsys: pytest.CaptureFixture[str]
) -> None:
    spec, watch = watching
    result = mlx(capsys, "reconcile", "-f", str(spec))
    assert result.code == 0 and f"pid {watch.proc.pid}" in result.out
    assert "(requested)" in watch.until("reconcile")["message"]
    assert watch.stop() == 0


def test_a_suspended_agent_applies_nothing_until_resumed(
    watching: tuple[Path, Watch], capsys: pytest.CaptureFixture[str]
) -> None:
    spec, watch = watching
    assert mlx(capsys, "suspend", "-f", str(spec)).code == 0
    mark = len(watch.seen)
    atomic_save(spec, WITH_QWEN)
    assert mlx(capsys, "resume", "-f", str(spec)).code == 0
    watch.until("applied")
    assert installed()
    # The save while suspended made no reconcile of its own: the one that applied came after
    # the resume (or the save, if the loop saw the resume first) — never two installs.
    assert len(watch.since(mark, "applied")) == 1
    assert watch.stop() == 0


def test_once_reconciles_and_exits(ollama_server: FakeOllama) -> None:
    ollama_server.publish(QWEN, ob.default_layers(QWEN, 2048))
    Path("mlx.yaml").write_text(WITH_QWEN)
    done = subprocess.run(
        [sys.executable, "-m", "mlxstate", "watch", "--once", "--json"],
        capture_output=True, text=True, timeout=HANG_GUARD, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    events = [json.loads(line)["event"] for line in done.stdout.splitlines()]
    assert events == ["started", "reconcile", "applied", "stopped"]
    assert installed()
    Path("mlx.yaml").write_text("version: 1\nbogus: 1\n")
    bad = subprocess.run(
        [sys.executable, "-m", "mlxstate", "watch", "--once"],
        capture_output=True, text=True, timeout=HANG_GUARD, check=False,
    )  # fmt: skip
    assert bad.returncode == 1 and " invalid: " in bad.stdout


def test_a_suspended_agent_is_never_shown_ready() -> None:
    from mlxstate.watch.state import agent_document

    ready = {"type": "Ready", "status": "True", "reason": "Applied", "message": "", "since": None}
    doc = {"pid": os.getpid(), "conditions": [ready]}
    assert agent_document(doc, suspended=False)["conditions"][0]["status"] == "True"
    shown = agent_document(doc, suspended=True)["conditions"][0]
    assert (shown["status"], shown["reason"]) == ("False", "Suspended")
    assert agent_document({"pid": None, "conditions": [ready]}, False)["running"] is False
