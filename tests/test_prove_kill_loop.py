"""kill -9 in a loop, with a user acting between the runs (docs/apply.md, crash safety).

Each seed runs a few rounds. A round alternates the workspace's ``mlx.yaml`` between
declaring two models (an Ollama pull from the fake daemon, an HF download from the fake hub)
and declaring none (``prune: true`` deletes them again; in some rounds with the daemon down,
so the on-disk delete runs). Every round:

1. ``mlx apply -y`` runs as a subprocess and is SIGKILLed at a seeded fail point
   (``MLX_FAILPOINT=<name>:<n>``, see mlxstate/apply/failpoints.py; no timing involved).
   A point the run never reaches just lets it finish.
2. A simulated user acts: pulls a missing model by hand into the store (the builders write
   the very bytes the fakes serve), deletes a blob of their own model, or adds an unrelated
   file to a store.
3. The next ``mlx apply -y`` must converge (exit 0, then ``plan --detailed-exitcode`` → 0),
   nothing outside the stores changes (``sentinel``), the user's own files are byte-identical,
   and a model the user pulled by hand stays the user's: ``mlx status --json`` says
   ``managed: false`` and later prunes leave it alone.

Every loop is in the slow tier (``-m slow`` runs only it; the full run includes it) with a
few seeds; ``MLX_KILL_LOOP_SEEDS=N`` runs N of them.
"""

from __future__ import annotations

import json
import os
import random
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.builders import hf_cache as hb
from tests.builders import ollama_store as ob
from tests.fakes.hf_hub import FakeHfHub
from tests.fakes.ollama_server import FakeOllama
from tests.helpers import Sentinel, dead_url, hf_dir, mlx, ollama_dir, run_apply
from tests.helpers.apply import (
    QWEN,
    QWEN_SRC,
    TINY,
    TINY_FILES,
    TINY_SRC,
    hub_offline,
    no_traceback,
    tree_state,
)

pytestmark = pytest.mark.slow  # every test kills real subprocesses

KILLED = -signal.SIGKILL
FAILPOINTS = (
    "lock.taken",
    "journal.started",
    "hf.download.started",
    "effect.done",
    "registry.recorded",
    "journal.done",
    "journal.failed",
    "ollama.delete.manifest",
    "ollama.delete.blob",
)
USERS_MODEL = "phi3:mini"
USERS_REPO = "user/own"
USERS_FILES = {"config.json": b'{"user": true}\n', "w.safetensors": b"\0user weights" * 30}

SETTINGS = """\
version: 1
settings:
  prune: true
  dedup: auto
  cleanup: {partials: true, orphans: true, detached_revisions: true, dangling_links: true}
models:
"""
DECLARED = f"  qwen:\n    source: {QWEN_SRC}\n  tiny:\n    source: {TINY_SRC}\n"
NOTHING = "  nothing:\n    source: ollama://nothing-here:1\n    ensure: absent\n"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process huggingface_hub never reaches out; subprocesses get HF_ENDPOINT."""
    hub_offline(monkeypatch)


@dataclass
class Machine:
    ollama: FakeOllama
    hub: FakeHfHub
    sentinel: Sentinel
    spec: Path
    users: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # path -> fact
    by_hand: set[str] = field(default_factory=set)  # sources the user installed
    log: list[str] = field(default_factory=list)


def setup_machine(request: pytest.FixtureRequest) -> Machine:
    ollama: FakeOllama = request.getfixturevalue("ollama_server")
    hub: FakeHfHub = request.getfixturevalue("fake_hub")
    sentinel: Sentinel = request.getfixturevalue("sentinel")
    ollama.publish(QWEN, ob.default_layers(QWEN, 2048))
    hub.add_repo(TINY, TINY_FILES)
    ob.add_model(ollama_dir(), USERS_MODEL, ob.default_layers(USERS_MODEL, 1024))
    users = hb.add_revision(hf_dir(), USERS_REPO, USERS_FILES)
    sentinel.link_from(users.snapshot_dir / "mine.gguf", sentinel.gguf)
    machine = Machine(ollama, hub, sentinel, Path("ws", "mlx.yaml").resolve())
    machine.spec.parent.mkdir()
    remember_users_files(machine)
    return machine


def users_paths(machine: Machine) -> list[Path]:
    """The user's model, repo and stray files (and whatever they pulled by hand)."""
    paths = [
        ob.manifest_path(ollama_dir(), USERS_MODEL),
        ollama_dir() / "blobs",
        hb.repo_dir(hf_dir(), USERS_REPO),
        hf_dir() / "README-user.txt",
    ]
    if QWEN_SRC in machine.by_hand:
        paths.append(ob.manifest_path(ollama_dir(), QWEN))
    if TINY_SRC in machine.by_hand:
        paths.append(hb.repo_dir(hf_dir(), TINY))
    return paths


def users_blobs(machine: Machine) -> set[str]:
    """Blob files the user's (and hand-pulled) manifests name."""
    names = [USERS_MODEL, *(QWEN for src in machine.by_hand if src == QWEN_SRC)]
    out = set()
    for name in names:
        path = ob.manifest_path(ollama_dir(), name)
        if path.exists():
            info = ob.parse_manifest(ollama_dir(), path)
            out |= {str(info.blob_path(b)) for b in info.blobs}
    return out


def remember_users_files(machine: Machine) -> None:
    state: dict[str, tuple[Any, ...]] = {}
    blobs = users_blobs(machine)
    for root in users_paths(machine):
        if root.name == "blobs":
            state.update({p: f for p, f in tree_state(root).items() if p in blobs})
        elif root.is_file():
            state[str(root)] = tree_state(root.parent)[str(root)]
        elif root.exists():
            state.update(tree_state(root))
    machine.users = state


def check_users_files(machine: Machine) -> None:
    now: dict[str, tuple[Any, ...]] = {}
    for root in users_paths(machine):
        if root.is_dir():
            now.update(tree_state(root))
        elif root.exists():
            now[str(root)] = tree_state(root.parent)[str(root)]
    lost = {p: f for p, f in machine.users.items() if now.get(p) != f}
    assert not lost, "the user's files changed:\n" + "\n".join(
        f"{p}: {f} -> {now.get(p)}" for p, f in sorted(lost.items())
    )


def write_spec(machine: Machine, declared: bool) -> None:
    machine.spec.write_text(SETTINGS + (DECLARED if declared else NOTHING))


# --- the user's actions -----------------------------------------------------------------------


def user_acts(machine: Machine, rng: random.Random) -> str:
    action = rng.choice(("pull-by-hand", "pull-by-hand", "delete-blob", "add-file", "nothing"))
    if action == "pull-by-hand":
        return pull_by_hand(machine, rng)
    if action == "delete-blob":
        info = ob.parse_manifest(ollama_dir(), ob.manifest_path(ollama_dir(), USERS_MODEL))
        blob = info.blob_path(rng.choice(info.layers))
        if blob.exists():
            blob.unlink()
        return f"deleted {blob.name} of the user's {USERS_MODEL}"
    if action == "add-file":
        (hf_dir() / "README-user.txt").write_text(f"note {rng.random()}\n")
        return "added README-user.txt to the HF cache"
    return "nothing"


def pull_by_hand(machine: Machine, rng: random.Random) -> str:
    """`ollama pull` / `hf download` by hand of a declared model that is not there now."""
    if rng.random() < 0.5 and not ob.manifest_path(ollama_dir(), QWEN).exists():
        ob.add_model(ollama_dir(), QWEN, ob.default_layers(QWEN, 2048))
        machine.by_hand.add(QWEN_SRC)
        return f"pulled {QWEN} by hand"
    snapshots = hb.repo_dir(hf_dir(), TINY) / "snapshots"
    if not (snapshots.is_dir() and any(snapshots.iterdir())):
        hb.add_revision(hf_dir(), TINY, TINY_FILES, commit=machine.hub.repo(TINY).refs["main"])
        machine.by_hand.add(TINY_SRC)
        return f"downloaded {TINY} by hand"
    return "nothing to pull by hand"


# --- checks -----------------------------------------------------------------------------------


def status_managed(capsys: pytest.CaptureFixture[str], spec: Path) -> dict[str, bool]:
    result = mlx(capsys, "status", "--json", "-f", str(spec))
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    out = {f"ollama://{m['name']}": m["managed"] for m in doc["stores"]["ollama"]["models"]}
    out |= {f"hf://{r['id']}": r["managed"] for r in doc["stores"]["huggingface"]["repos"]}
    return out


def converge(capsys: pytest.CaptureFixture[str], machine: Machine, what: str) -> None:
    # In this process: only the killed apply must be a separate one.
    second = mlx(capsys, "apply", "-y", "-f", str(machine.spec))
    no_traceback(second)
    assert second.code == 0, (what, second.out, second.err)
    after = mlx(capsys, "plan", "--detailed-exitcode", "-f", str(machine.spec))
    assert after.code == 0, (what, after.out, after.err)
    machine.sentinel.check(what)
    check_users_files(machine)
    managed = status_managed(capsys, machine.spec)
    for source in machine.by_hand:
        assert managed.get(source) is False, f"{what}: {source} pulled by hand became managed"


# --- the loop ---------------------------------------------------------------------------------


def kill_loop(
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
    rounds: int,
) -> None:
    rng = random.Random(seed)
    machine = setup_machine(request)
    daemon = os.environ["OLLAMA_HOST"]
    for n in range(rounds):
        declared = n % 2 == 0
        write_spec(machine, declared)
        # Deletes run with the daemon down half of the time: the on-disk delete.
        down = not declared and rng.random() < 0.5
        monkeypatch.setenv("OLLAMA_HOST", dead_url() if down else daemon)
        point = f"{rng.choice(FAILPOINTS)}:{rng.randint(1, 2)}"
        first = run_apply(machine.spec, failpoint=point)
        assert first.returncode in (KILLED, 0), (point, first.stdout, first.stderr)
        acted = user_acts(machine, rng)
        remember_users_files(machine)
        machine.sentinel.check(f"after the kill at {point}")
        what = (
            f"seed {seed} round {n} ({'declared' if declared else 'prune'}, daemon "
            f"{'down' if down else 'up'}): killed at {point} "
            f"({'killed' if first.returncode == KILLED else 'finished'}), user {acted}"
        )
        machine.log.append(what)
        monkeypatch.setenv("OLLAMA_HOST", daemon)
        converge(capsys, machine, "; ".join(machine.log))


# Seeds of the full run; a soak runs more: MLX_KILL_LOOP_SEEDS=50 uv run pytest -m slow <this file>
SEEDS = int(os.environ.get("MLX_KILL_LOOP_SEEDS", "6"))


@pytest.mark.parametrize("seed", range(SEEDS))
def test_kill_loop_converges_and_never_adopts_a_users_model(
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
) -> None:
    kill_loop(capsys, request, monkeypatch, seed, rounds=4)


@pytest.mark.parametrize("source", [QWEN_SRC, TINY_SRC])
def test_a_model_pulled_by_hand_after_a_kill_before_the_pull_stays_the_users(
    capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest, source: str
) -> None:
    """Minimal reproduction: only ``source`` declared; apply killed right after the
    journal's ``started`` line (nothing downloaded); the user pulls it by hand."""
    machine = setup_machine(request)
    name = "qwen" if source == QWEN_SRC else "tiny"
    machine.spec.write_text(SETTINGS + f"  {name}:\n    source: {source}\n")

    first = run_apply(machine.spec, failpoint="journal.started:1")

    assert first.returncode == KILLED, (first.stdout, first.stderr)
    if source == QWEN_SRC:
        ob.add_model(ollama_dir(), QWEN, ob.default_layers(QWEN, 2048))
    else:
        hb.add_revision(hf_dir(), TINY, TINY_FILES, commit=machine.hub.repo(TINY).refs["main"])
    machine.by_hand.add(source)
    remember_users_files(machine)
    converge(capsys, machine, f"{source} pulled by hand after a kill at journal.started:1")
