"""A hostile user of `mlx watch` (docs/watch.md): the file vanishes, becomes a folder or a
symlink loop; a second agent starts on the same state folder; a stale or reused pid; SIGHUP.
The loop must keep going (or refuse in one line), never exit 3, never apply the wrong file.

The real loop runs as a subprocess against a dead Ollama port (an empty spec needs none).
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlxstate.engine import Session
from mlxstate.registry import Registry
from mlxstate.seams import Seams
from mlxstate.settings import read_environment, spec_candidates
from mlxstate.watch.files import git_commit, real_path
from mlxstate.watch.loop import Agent, Event
from mlxstate.watch.state import AgentStore, read_agent
from tests.helpers import dead_url, mlx, state_dir
from tests.helpers.watch import EMPTY, HANG_GUARD, Script, Watch, atomic_save, kinds, sha


class Loop(Watch):
    """``mlx watch --json`` with exactly these arguments (Watch always passes ``-f``)."""

    def __init__(self, *args: str) -> None:
        super().__init__(None, *args)

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read()


@pytest.fixture
def loop(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Loop]]:
    monkeypatch.setenv("OLLAMA_HOST", dead_url())
    spec = Path("mlx.yaml").absolute()
    spec.write_text(EMPTY)
    watch = Loop("-f", str(spec))
    watch.until("applied")  # the reconcile at start
    yield spec, watch
    if watch.proc.poll() is None:
        watch.proc.kill()
        watch.proc.wait()


def _stops_cleanly(watch: Loop, sig: int = signal.SIGTERM) -> None:
    assert watch.stop(sig) == 0
    err = watch.stderr()
    assert "Traceback" not in err and "internal error" not in err, err


def test_a_symlink_loop_is_invalid_not_a_crash(loop: tuple[Path, Loop]) -> None:
    spec, watch = loop
    spec.unlink()
    os.symlink("b", "a")
    os.symlink("a", "b")
    os.symlink("a", spec)
    assert "not applied:" in watch.until("invalid")["message"]
    spec.unlink()
    atomic_save(spec, EMPTY + "# back\n")
    assert watch.until("reconcile")["spec_sha256"] == sha(EMPTY + "# back\n")
    watch.until("applied")
    _stops_cleanly(watch)


def test_real_path_and_git_commit_survive_a_symlink_loop(tmp_path: Path) -> None:
    os.symlink(tmp_path / "b", tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "b")
    assert real_path(tmp_path / "a") == tmp_path / "a"
    assert git_commit(tmp_path / "a") is None


def test_a_deleted_file_is_reported_once_and_its_return_applied(loop: tuple[Path, Loop]) -> None:
    spec, watch = loop
    spec.unlink()
    assert "no mlx.yaml found" in watch.until("invalid")["message"]
    spec.write_text(EMPTY + "# restored\n")
    assert watch.until("reconcile")["spec_sha256"] == sha(EMPTY + "# restored\n")
    watch.until("applied")
    assert watch.proc.poll() is None  # still watching
    _stops_cleanly(watch)
    assert len(watch.since(0, "invalid")) == 1


def test_a_deleted_file_never_makes_the_agent_apply_another_mlx_yaml(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", dead_url())
    Path("mlx.yaml").write_text(EMPTY)
    other = spec_candidates(read_environment())[-1]  # the config folder's mlx.yaml
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_text(EMPTY + "# the other one\n")
    watch = Loop()  # found as every command finds it: ./mlx.yaml first
    try:
        watch.until("applied")
        Path("mlx.yaml").unlink()
        assert "no mlx.yaml found" in watch.until("invalid")["message"]
    finally:
        _stops_cleanly(watch)
    shas = {d.get("spec_sha256") for d in watch.seen}
    assert sha(EMPTY + "# the other one\n") not in shas


def test_a_folder_in_place_of_the_file_is_invalid_then_recovers(loop: tuple[Path, Loop]) -> None:
    spec, watch = loop
    spec.unlink()
    spec.mkdir()
    assert watch.until("invalid")["message"].startswith("not applied:")
    spec.rmdir()
    spec.write_text(EMPTY + "# a file again\n")
    assert watch.until("reconcile")["spec_sha256"] == sha(EMPTY + "# a file again\n")
    watch.until("applied")
    _stops_cleanly(watch)


def test_a_second_agent_on_one_state_folder_refuses(loop: tuple[Path, Loop]) -> None:
    spec, first = loop
    second = subprocess.run(
        [sys.executable, "-m", "mlxstate", "watch", "-f", str(spec)],
        capture_output=True, text=True, timeout=HANG_GUARD, check=False,
    )  # fmt: skip
    assert second.returncode == 1, second.stderr
    assert "another mlx watch is already running for the state folder" in second.stderr
    assert second.stdout == ""  # it never started, so never overwrote the first one's state
    agent = read_agent(state_dir())
    assert agent["running"] and agent["pid"] == first.proc.pid
    _stops_cleanly(first)


def test_reconcile_with_a_stale_or_reused_pid_says_no_agent(
    capsys: pytest.CaptureFixture[str],
) -> None:
    Path("mlx.yaml").write_text(EMPTY)
    with Registry.open(state_dir()) as registry:  # an agent killed -9, its pid now ours
        AgentStore(registry).save({"pid": os.getpid()})
    result = mlx(capsys, "reconcile")
    assert result.code == 1
    assert "no watch agent is running for this state folder" in result.err
    assert read_agent(state_dir())["running"] is False


def test_sighup_stops_cleanly_and_records_it(loop: tuple[Path, Loop]) -> None:
    _, watch = loop
    _stops_cleanly(watch, signal.SIGHUP)
    assert watch.until("stopped")
    assert read_agent(state_dir())["running"] is False


class LockedScript(Script):
    """Another process holds the registry's write lock from the first wait, for a second."""

    def wait(self, timeout: float) -> bool:
        if self.steps and self.polls == 0 and not hasattr(self, "holder"):
            holder = sqlite3.connect(
                state_dir() / "registry.db", isolation_level=None, check_same_thread=False
            )
            holder.execute("BEGIN EXCLUSIVE")
            self.holder = holder
            threading.Timer(1.0, lambda: holder.execute("COMMIT")).start()
        return super().wait(timeout)


def test_a_locked_registry_does_not_end_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", dead_url())
    Path("mlx.yaml").write_text(EMPTY)
    script = LockedScript([(1.0, True, EMPTY + "# edited\n")])
    events: list[Event] = []
    session = Session(read_environment(), Path("mlx.yaml"), Seams(clock=script.clock))
    with Registry.open(state_dir(), timeout=0.1) as registry:  # gives up on a lock quickly
        agent = Agent(session, Path("mlx.yaml"), AgentStore(registry), events.append)
        agent.start()
        agent.run(script.wait, script.done)  # the step after the edit meets the lock
        agent.stop()
    logs = [e.message for e in events if e.event == "log"]
    assert any("could not record the agent state: the registry" in m for m in logs), logs
    assert events[-1].event == "stopped", [(e.event, e.message) for e in events]
    reconciles = [e.message for e in events if e.event == "reconcile"]
    assert reconciles == ["reconciling (start)", "reconciling (file)"]  # the edit was applied
    assert kinds(events).count("applied") == 2


def test_a_folder_deleted_and_made_again_is_watched_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", dead_url())
    folder = Path("dotfiles").absolute()
    folder.mkdir()
    spec = folder / "mlx.yaml"
    spec.write_text(EMPTY)
    watch = Loop("-f", str(spec))
    try:
        watch.until("applied")
        shutil.rmtree(folder)
        watch.until("invalid")
        folder.mkdir()  # written at once, before the watcher can look again
        spec.write_text(EMPTY + "# checked out again\n")
        assert watch.until("reconcile")["spec_sha256"] == sha(EMPTY + "# checked out again\n")
    finally:
        _stops_cleanly(watch)


def test_a_burst_of_signals_never_hangs_the_agent(loop: tuple[Path, Loop]) -> None:
    _, watch = loop
    for _ in range(200):  # a second signal arriving inside the first one's handler
        watch.proc.send_signal(signal.SIGTERM)
    assert watch.proc.wait(timeout=HANG_GUARD) == 0
    watch.until("stopped")
