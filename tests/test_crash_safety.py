"""Crash safety, proven by killing ``mlx apply`` (SPEC §7, issue 5 "Crash safety — prove it").

Each case runs ``python -m mlxstate apply -y`` as a subprocess against the loopback fakes
(the fake Ollama serves the test's ``$OLLAMA_MODELS``; the fake hub is ``$HF_ENDPOINT``),
kills it with SIGKILL — at a fail point (``MLX_FAILPOINT=<name>:<n>``, see
``mlxstate/apply/failpoints.py``) or from outside in the middle of a transfer — then runs
``apply`` again and asserts that:

- the kill really happened (return code -9) and the next apply converges (exit 0), after
  which ``plan --detailed-exitcode`` exits 0;
- the registry manages exactly the models the scenario's applies installed (a model whose
  install finished just before the kill is adopted; a deleted one is forgotten);
- no model data was lost: an unrelated unmanaged Ollama model and HF repo made beforehand
  are byte-identical (every file hashed before and after);
- nothing half-written is where Ollama, the HF library or an app looks: every manifest parses
  and names blobs that exist with the right size and sha256; every file in ``blobs/`` is
  named by its own digest; every snapshot entry is a relative link to a blob whose name is its
  hash; no ``*.tmp``/``*.incomplete`` in ``snapshots/``;
- the second apply says that the first was interrupted, whenever the killed run had begun
  its journal.

Also: Ctrl-C in the middle of a pull (exit 130, then converge), and two applies started
together (exactly one applies; the other exits 1 naming the holder). Small models and files
keep the whole module well under a minute (~20 s on 2 cores).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.builders import hf_cache as hb
from tests.builders import ollama_store as ob
from tests.builders.common import sha256_hex
from tests.fakes.hf_hub import FakeHfHub
from tests.fakes.ollama_server import FakeOllama
from tests.helpers import Result, dead_url, hf_dir, manage, mlx, ollama_dir, state_dir
from tests.helpers.apply import (
    QWEN,
    QWEN_SRC,
    TINY,
    TINY_FILES,
    TINY_SRC,
    check_hf_cache,
    check_ollama_store,
    hub_offline,
    managed,
    no_traceback,
    tree_state,
)

pytestmark = pytest.mark.slow  # kill -9 / Ctrl-C of real subprocesses

KILLED = -signal.SIGKILL
# Hang guards, never reached when all is well (a slow machine only waits longer for the
# state): how long to wait for a polled state, or for a child that should have ended.
DEADLINE = 120.0

# --- the world before the first apply -------------------------------------------------------------

OLD = "llama2:7b"
OLD_SRC = f"ollama://{OLD}"
USERS_MODEL = "phi3:mini"  # unmanaged, never declared: must come through byte for byte
USERS_REPO = "user/own"
BIG_WEIGHTS = bytes(range(256)) * 1200  # 307200 bytes: several chunks/slices on the wire


@dataclass
class World:
    """The fakes of one test and what was there before mlx ran."""

    ollama: FakeOllama | None
    hub: FakeHfHub
    spec: Path
    expected_managed: set[str]
    hf_files: dict[str, bytes] = field(default_factory=lambda: dict(TINY_FILES))
    untouched: dict[str, tuple[Any, ...]] = field(default_factory=dict)


def _untouched_paths() -> list[Path]:
    users = ob.parse_manifest(ollama_dir(), ob.manifest_path(ollama_dir(), USERS_MODEL))
    return [
        users.path,
        *(users.blob_path(b) for b in users.blobs),
        hb.repo_dir(hf_dir(), USERS_REPO),
    ]


def _baseline() -> None:
    """The user's own models. Their template and params blobs are the very ones every
    model built with ``default_layers`` uses, and their HF repo has TINY's files."""
    ob.add_model(ollama_dir(), USERS_MODEL, ob.default_layers(USERS_MODEL, 2048))
    hb.add_revision(hf_dir(), USERS_REPO, TINY_FILES)


def _spec(models: str, settings: str = "") -> Path:
    path = Path("mlx.yaml")
    path.write_text(f"version: 1\n{settings}models:\n{models}")
    return path.resolve()


QWEN_DECL = f"  qwen:\n    source: {QWEN_SRC}\n"
TINY_DECL = f"  tiny:\n    source: {TINY_SRC}\n"


def _publish(ollama: FakeOllama, model_size: int = 2048) -> None:
    ollama.publish(QWEN, ob.default_layers(QWEN, model_size))


def _scenario_pull(ollama: FakeOllama | None, hub: FakeHfHub) -> tuple[Path, set[str]]:
    assert ollama is not None
    _publish(ollama)
    return _spec(QWEN_DECL), {QWEN_SRC}


def _scenario_hf(ollama: FakeOllama | None, hub: FakeHfHub) -> tuple[Path, set[str]]:
    hub.add_repo(TINY, TINY_FILES)
    return _spec(TINY_DECL), {TINY_SRC}


def _scenario_mixed(ollama: FakeOllama | None, hub: FakeHfHub) -> tuple[Path, set[str]]:
    assert ollama is not None
    _publish(ollama)
    hub.add_repo(TINY, TINY_FILES)
    return _spec(QWEN_DECL + TINY_DECL), {QWEN_SRC, TINY_SRC}


def _scenario_flaky(ollama: FakeOllama | None, hub: FakeHfHub) -> tuple[Path, set[str]]:
    """The first pull gets a 500 (so the journal writes ``failed``); later ones work."""
    assert ollama is not None
    ollama.fail("/api/pull", 500, times=1)
    return _scenario_mixed(ollama, hub)


def _scenario_delete(ollama: FakeOllama | None, hub: FakeHfHub) -> tuple[Path, set[str]]:
    """``ensure: absent`` of a managed model with the daemon DOWN: the on-disk delete. Three
    of its blobs are its own (weights, license, config), two are shared with the user's."""
    assert ollama is None
    ob.add_model(ollama_dir(), OLD, ob.default_layers(OLD, 2048))
    manage(OLD_SRC, "old")
    return _spec(f"  old:\n    source: {OLD_SRC}\n    ensure: absent\n"), set()


def _scenario_hf_delete(ollama: FakeOllama | None, hub: FakeHfHub) -> tuple[Path, set[str]]:
    """``ensure: absent`` of a managed HF repo holding the same files as the user's repo."""
    hb.add_revision(hf_dir(), TINY, TINY_FILES)
    manage(TINY_SRC, "tiny")
    return _spec(f"  tiny:\n    source: {TINY_SRC}\n    ensure: absent\n"), set()


SCENARIOS: dict[str, tuple[Callable[..., tuple[Path, set[str]]], bool]] = {
    # name: (setup, needs the Ollama daemon)
    "pull": (_scenario_pull, True),
    "hf": (_scenario_hf, True),
    "mixed": (_scenario_mixed, True),
    "flaky": (_scenario_flaky, True),
    "delete": (_scenario_delete, False),
    "hf-delete": (_scenario_hf_delete, True),
}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process calls (plan) never reach out; subprocesses get HF_ENDPOINT from the env."""
    monkeypatch.setenv("OLLAMA_HOST", dead_url())
    hub_offline(monkeypatch)


def make_world(request: pytest.FixtureRequest, scenario: str) -> World:
    setup, needs_daemon = SCENARIOS[scenario]
    hub: FakeHfHub = request.getfixturevalue("fake_hub")
    ollama: FakeOllama | None = request.getfixturevalue("ollama_server") if needs_daemon else None
    _baseline()
    spec, expected = setup(ollama, hub)
    world = World(ollama, hub, spec, expected)
    world.untouched = tree_state(*_untouched_paths())
    return world


# --- running mlx ----------------------------------------------------------------------------------


def _env(failpoint: str | None) -> dict[str, str]:
    """The fixtures' environment (isolated HOME, stores, fakes), passed on explicitly."""
    env = dict(os.environ)
    env["HF_HUB_DISABLE_TELEMETRY"] = "1"
    env.pop("MLX_FAILPOINT", None)
    if failpoint is not None:
        env["MLX_FAILPOINT"] = failpoint
    return env


def _command(spec: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mlxstate", "apply", "-y", "-f", str(spec), *extra]


def run_apply(
    spec: Path, *extra: str, failpoint: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command(spec, *extra),
        env=_env(failpoint),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def start_apply(spec: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        _command(spec, *extra),
        env=_env(None),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(what: str, check: Callable[[], bool], proc: subprocess.Popen[str] | None) -> None:
    """Poll ``check`` until true; fail (never hang) if the deadline passes or ``proc`` ends."""
    deadline = time.monotonic() + DEADLINE
    while not check():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"apply ended ({proc.returncode}) before {what}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


# --- what a kill left, and the checks after convergence -------------------------------------------


def unfinished_run() -> list[dict[str, Any]] | None:
    """In-flight events of the journal's last run if it has no ``finished`` line, read
    here independently of mlxstate (the last run is the run id of the last line)."""
    path = state_dir() / "journal.jsonl"
    if not path.exists():
        return None
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    if not events:
        return None
    last = [e for e in events if e.get("run") == events[-1].get("run")]
    if any(e.get("event") == "finished" for e in last):
        return None
    ended = {e.get("action") for e in last if e.get("event") in ("done", "failed", "skipped")}
    return [e for e in last if e.get("event") == "started" and e.get("action") not in ended]


def check_declared_content(world: World) -> None:
    """What the scenario installs is there with exactly the served bytes."""
    if QWEN_SRC in world.expected_managed:
        assert world.ollama is not None
        model = world.ollama.registry[ob.ModelName.parse(QWEN).full]
        assert ob.manifest_path(ollama_dir(), QWEN).read_bytes() == model.manifest
    if TINY_SRC in world.expected_managed:
        commit = world.hub.repo(TINY).refs["main"]
        snapshot = hb.repo_dir(hf_dir(), TINY) / "snapshots" / commit
        assert {p: (snapshot / p).read_bytes() for p in world.hf_files} == world.hf_files
    if "old:" in world.spec.read_text():
        assert not ob.manifest_path(ollama_dir(), OLD).exists()
    if "ensure: absent" in world.spec.read_text() and "tiny:" in world.spec.read_text():
        assert not (hb.repo_dir(hf_dir(), TINY) / "snapshots").exists() or not any(
            (hb.repo_dir(hf_dir(), TINY) / "snapshots").iterdir()
        )


def _says_interrupted(err: str, in_flight: list[dict[str, Any]]) -> bool:
    """One line says the last apply was interrupted, naming each action it was doing."""
    return any(
        "interrupted" in line and all(str(e["action"]) in line for e in in_flight)
        for line in err.splitlines()
    )


def converge_and_check(
    capsys: pytest.CaptureFixture[str], world: World, interrupted: list[dict[str, Any]] | None
) -> Result:
    """The second apply (in this process: only the killed one must be a separate process),
    and every check."""
    second = mlx(capsys, "apply", "-y", "-f", str(world.spec))
    no_traceback(second)
    assert second.code == 0, (second.out, second.err)
    after = mlx(capsys, "plan", "--detailed-exitcode")
    assert after.code == 0, (after.out, after.err)
    check_ollama_store()
    check_hf_cache()
    check_declared_content(world)
    assert tree_state(*_untouched_paths()) == world.untouched, "the user's models changed"
    # An install finished just before the kill is adopted; a finished delete is forgotten.
    assert managed() == world.expected_managed
    if interrupted is not None:
        assert _says_interrupted(second.err, interrupted), second.err
    return second


# --- kill -9 at every fail point ------------------------------------------------------------------

CASES = [
    # (scenario, fail point, n); every case but lock.taken leaves an unfinished journal.
    ("pull", "lock.taken", 1),
    ("pull", "journal.started", 1),
    ("pull", "effect.done", 1),
    ("pull", "registry.recorded", 1),
    ("pull", "journal.done", 1),
    ("hf", "hf.download.started", 1),
    ("hf", "effect.done", 1),
    ("hf", "registry.recorded", 1),
    ("mixed", "journal.started", 2),
    ("mixed", "effect.done", 2),
    ("mixed", "registry.recorded", 2),
    ("mixed", "journal.done", 2),
    ("flaky", "journal.failed", 1),
    ("delete", "journal.started", 1),
    ("delete", "ollama.delete.manifest", 1),
    ("delete", "ollama.delete.blob", 1),
    ("delete", "ollama.delete.blob", 3),
    ("delete", "effect.done", 1),
    ("delete", "registry.recorded", 1),
    ("hf-delete", "effect.done", 1),
    ("hf-delete", "registry.recorded", 1),
]


def _param(scenario: str, point: str, n: int) -> Any:
    return pytest.param(scenario, point, n, id=f"{scenario}-{point}:{n}")


@pytest.mark.parametrize(("scenario", "point", "n"), [_param(*c) for c in CASES])
def test_kill_at_a_fail_point_then_apply_converges(
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
    scenario: str,
    point: str,
    n: int,
) -> None:
    world = make_world(request, scenario)

    first = run_apply(world.spec, failpoint=f"{point}:{n}")

    assert first.returncode == KILLED, (first.returncode, first.stdout, first.stderr)
    interrupted = unfinished_run()
    if point == "lock.taken":
        assert interrupted is None
    else:
        assert interrupted is not None, "a kill inside the run must leave it unfinished"
    # Between the runs, nothing half-written is visible either.
    check_ollama_store()
    check_hf_cache()
    second = converge_and_check(capsys, world, interrupted)
    if point == "lock.taken":
        assert "took over the lock" in second.err  # of the killed apply, named


# --- kill -9 from outside, in the middle of a transfer --------------------------------------------


def test_kill_9_in_the_middle_of_an_ollama_pull_then_apply_converges(
    capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    world = make_world(request, "pull")
    assert world.ollama is not None
    ollama = world.ollama
    _publish(ollama, model_size=1024 * 1024)  # four 256 KiB chunks
    model = ollama.registry[ob.ModelName.parse(QWEN).full]
    weights = next(d for d, data in model.blobs.items() if len(data) == 1024 * 1024)
    partial = Path(f"{ob.blob_path(ollama_dir(), weights)}-partial")
    ollama.pull_pause_after = 3  # hold the stream with one chunk of the weights written

    proc = start_apply(world.spec)
    try:
        wait_for("a partial download of the weights", partial.exists, proc)
    finally:
        proc.kill()
        proc.communicate()
        ollama.pull_resume.set()  # let the server notice the dead connection
    assert proc.returncode == KILLED
    assert not ob.manifest_path(ollama_dir(), QWEN).exists()
    interrupted = unfinished_run()
    assert interrupted and interrupted[0]["action"] == "model/qwen"

    ollama.pull_pause_after = None
    converge_and_check(capsys, world, interrupted)
    assert not partial.exists()


def test_kill_9_in_the_middle_of_an_hf_download_then_apply_converges(
    capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    world = make_world(request, "hf")
    world.hf_files = {**TINY_FILES, "model.safetensors": BIG_WEIGHTS}
    world.hub.add_repo(TINY, world.hf_files)
    blobs = hb.repo_dir(hf_dir(), TINY) / "blobs"

    def downloading() -> bool:
        # The library buffers the body (10 MB reads) before writing: the temp file exists,
        # maybe still empty, for as long as the download runs.
        return blobs.is_dir() and any(blobs.glob(f"{sha256_hex(BIG_WEIGHTS)}*.incomplete"))

    world.hub.throttle(100_000)  # ~3 s for the weights: plenty of time to catch it
    proc = start_apply(world.spec)
    try:
        wait_for("the download of the weights", downloading, proc)
    finally:
        proc.kill()
        proc.communicate()
        world.hub.throttle(None)
    assert proc.returncode == KILLED
    snapshots = hb.repo_dir(hf_dir(), TINY) / "snapshots"
    assert not any(p.name == "model.safetensors" for p in snapshots.rglob("*"))
    interrupted = unfinished_run()

    converge_and_check(capsys, world, interrupted)


@pytest.fixture
def ctrl_c_reaches_children() -> Iterator[None]:
    """A child inherits an ignored SIGINT, and Python then never turns Ctrl-C into
    KeyboardInterrupt: a shell without job control starts background jobs (``pytest &``)
    that way, and the Ctrl-C under test did nothing until the test gave up. The children of
    this test get Python's default handling, whoever started the suite."""
    before = signal.getsignal(signal.SIGINT)
    if before == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.mark.usefixtures("ctrl_c_reaches_children")
def test_ctrl_c_in_the_middle_of_a_pull_exits_130_and_the_next_apply_converges(
    capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    world = make_world(request, "pull")
    assert world.ollama is not None
    ollama = world.ollama
    _publish(ollama, model_size=1024 * 1024)
    model = ollama.registry[ob.ModelName.parse(QWEN).full]
    weights = next(d for d, data in model.blobs.items() if len(data) == 1024 * 1024)
    partial = Path(f"{ob.blob_path(ollama_dir(), weights)}-partial")
    ollama.pull_pause_after = 3  # the stream stops here, a chunk of the weights on disk

    proc = start_apply(world.spec)
    try:
        # A state, not a time: apply is reading the stream the fake holds open.
        wait_for("the pull to stop mid-stream", ollama.pull_paused.is_set, proc)
        assert partial.exists()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=DEADLINE)
    finally:
        proc.kill()
        ollama.pull_resume.set()
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in out + err
    assert not ob.manifest_path(ollama_dir(), QWEN).exists()
    interrupted = unfinished_run()
    assert interrupted and interrupted[0]["action"] == "model/qwen"

    ollama.pull_pause_after = None
    second = converge_and_check(capsys, world, interrupted)
    assert "took over the lock" not in second.err  # Ctrl-C released it properly


# --- two applies at once --------------------------------------------------------------------------


def test_two_concurrent_applies_one_applies_the_other_names_the_holder(
    capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    world = make_world(request, "pull")
    assert world.ollama is not None
    ollama = world.ollama
    ollama.pull_pause_after = 1  # whoever gets the lock holds it, mid-pull, until we say

    procs = [start_apply(world.spec), start_apply(world.spec)]
    try:
        wait_for(
            "one of the two to give up", lambda: any(p.poll() is not None for p in procs), None
        )
        loser = next(p for p in procs if p.poll() is not None)
        winner = next(p for p in procs if p is not loser)
        out, err = loser.communicate()
        assert winner.poll() is None  # still holding the lock, paused in the pull
    finally:
        ollama.pull_resume.set()
    win_out, win_err = winner.communicate(timeout=DEADLINE)

    assert loser.returncode == 1, (out, err)
    assert "another mlx apply is running" in err, err
    # Whom it names: the winner, or (bug, see test_cli_apply.py::
    # test_a_waiter_names_a_holder_that_has_not_written_its_info_yet) nobody, when it read the
    # lock file in the instant between the winner's flock and its info write. Never anyone else.
    named = re.findall(r"pid (\d+)", err)
    assert named in ([str(winner.pid)], []), err
    if named:
        assert socket.gethostname() in err, err
        assert re.search(r"started \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", err), err
    assert "Apply complete" not in out
    assert winner.returncode == 0, (win_out, win_err)
    assert "Apply complete! 1 added, 0 changed, 0 destroyed." in win_out
    assert ollama.count("POST", "/api/pull") == 1
    assert managed() == {QWEN_SRC}
    check_ollama_store()
    check_declared_content(world)
    assert tree_state(*_untouched_paths()) == world.untouched
    assert mlx(capsys, "plan", "--detailed-exitcode").code == 0


def test_a_second_apply_with_a_lock_timeout_waits_and_finds_nothing_to_do(
    request: pytest.FixtureRequest,
) -> None:
    world = make_world(request, "pull")
    assert world.ollama is not None
    ollama = world.ollama
    ollama.pull_pause_after = 1

    first = start_apply(world.spec)
    try:
        wait_for("the first apply to start pulling", lambda: ollama.count("POST") > 0, first)
        second = start_apply(world.spec, "--lock-timeout", "60s")
    finally:
        ollama.pull_resume.set()  # whether or not the second is waiting yet: same outcome
    out1, err1 = first.communicate(timeout=DEADLINE)
    out2, err2 = second.communicate(timeout=DEADLINE)

    assert first.returncode == 0, (out1, err1)
    assert second.returncode == 0, (out2, err2)
    assert "No changes. Your models match mlx.yaml." in out2
    assert ollama.count("POST", "/api/pull") == 1
    assert managed() == {QWEN_SRC}
