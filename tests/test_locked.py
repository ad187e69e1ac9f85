"""``mlx plan/apply --locked`` and ``--frozen`` against the loopback fakes (docs/lock.md).

Locks are written with ``dump_lock`` from what the fakes serve, never by ``mlx lock``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlxstate.lock.model import (
    HfLock,
    LockEntry,
    OllamaLayer,
    OllamaLock,
    input_hash,
)
from mlxstate.mlxyaml.models import ModelSpec
from tests.builders import ollama_store as ob
from tests.builders.hf_cache import repo_dir
from tests.fakes.hf_hub import FakeHfHub
from tests.fakes.ollama_registry import FakeOllamaRegistry
from tests.fakes.ollama_server import FakeOllama
from tests.helpers import Sentinel, hf_dir, ollama_dir
from tests.helpers.apply import QWEN, QWEN_SRC, TINY, TINY_FILES, go_offline
from tests.helpers.locked import (
    HF_MODEL,
    cache_content,
    cache_files,
    hf_entry,
    run,
    snapshots,
    spec,
    write_lock,
)

WEIGHTS = "model.safetensors"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    go_offline(monkeypatch)


@pytest.fixture
def hub(fake_hub: FakeHfHub) -> FakeHfHub:
    fake_hub.add_repo(TINY, TINY_FILES, lfs={WEIGHTS})
    return fake_hub


# --- the lock must be there and fresh ----------------------------------------------------------


def test_locked_refuses_a_missing_or_stale_lock_and_frozen_uses_it(
    capsys: pytest.CaptureFixture[str], hub: FakeHfHub
) -> None:
    spec(HF_MODEL)
    missing = run(capsys, "plan", "--locked", code=1)
    assert "--locked: there is no" in missing.err and "mlx lock" in missing.err
    assert "mlx.lock" in run(capsys, "apply", "--frozen", "-y", code=1).err
    stale = hf_entry(hub, hub.repo(TINY).refs["main"])
    write_lock(tiny=stale, gone=stale)
    spec(HF_MODEL + "    include: ['*.json']\n")
    out = run(capsys, "plan", "--locked", code=1).err
    assert "is stale for mlx.yaml (2 reasons)" in out
    assert "tiny: its mlx.yaml entry changed since it was locked" in out
    assert "gone: locked but no longer declared" in out
    assert not snapshots()
    # --frozen: no check; the locked commit is still the target.
    frozen = run(capsys, "plan", "--frozen", code=0).out
    assert f"locked at {stale.hf.commit[:12]}" in frozen if stale.hf else False


def test_a_lock_value_that_could_name_a_path_is_refused(
    capsys: pytest.CaptureFixture[str], hub: FakeHfHub
) -> None:
    spec(HF_MODEL)
    entry = hf_entry(hub, hub.repo(TINY).refs["main"])
    assert entry.hf is not None
    bad = LockEntry(entry.source, entry.input_hash, hf=HfLock("main", "../../x", entry.hf.files))
    write_lock(tiny=bad)
    err = run(capsys, "plan", "--locked", code=1).err
    assert "tiny: commit '../../x' is not a 40-hex commit" in err


# --- HF: pinned to the locked commit, verified ----------------------------------------------------


def test_hf_installs_the_locked_commit_not_the_branch_head(
    capsys: pytest.CaptureFixture[str], hub: FakeHfHub
) -> None:
    spec(HF_MODEL)
    locked = hub.repo(TINY).refs["main"]
    write_lock(tiny=hf_entry(hub, locked))
    newer = hub.push(TINY, {**TINY_FILES, "config.json": b'{"v": 2}\n'}, lfs={WEIGHTS})
    plan = run(capsys, "plan", "--locked", "--json", code=0)
    doc = json.loads(plan.out)
    (action,) = doc["actions"]
    assert action["params"]["commit"] == locked and f"locked at {locked[:12]}" in action["reason"]
    assert doc["options"]["locked"] is True and doc["options"]["frozen"] is False
    assert doc["lock"]["sha256"] == hashlib.sha256(Path("mlx.lock").read_bytes()).hexdigest()
    run(capsys, "apply", "--locked", "-y", code=0)
    assert snapshots() == {locked} and newer != locked
    assert "No changes" in run(capsys, "plan", "--locked", code=0).out
    # Without --locked the lock is not followed, and the plan says so.
    assert "mlx.lock is not followed" in run(capsys, "plan", code=0).err


def test_an_installed_commit_other_than_the_lock_is_updated_to_it(
    capsys: pytest.CaptureFixture[str], hub: FakeHfHub
) -> None:
    spec(HF_MODEL)
    old = hub.repo(TINY).refs["main"]
    run(capsys, "apply", "-y", code=0)
    new = hub.push(TINY, {**TINY_FILES, "config.json": b'{"v": 2}\n'}, lfs={WEIGHTS})
    write_lock(tiny=hf_entry(hub, new))
    plan = run(capsys, "plan", "--locked", "--detailed-exitcode", code=2).out
    assert f"observed differs from the lock: main is {old[:12]} here, the lock pins {new[:12]}" in (
        plan
    )
    run(capsys, "apply", "--locked", "-y", code=0)
    assert snapshots() == {old, new}


def test_wrong_bytes_from_the_hub_fail_the_action_and_leave_nothing(
    capsys: pytest.CaptureFixture[str], hub: FakeHfHub, sentinel: Sentinel
) -> None:
    spec(HF_MODEL)
    commit = hub.repo(TINY).refs["main"]
    write_lock(tiny=hf_entry(hub, commit))
    real = TINY_FILES[WEIGHTS]
    hub.tamper[WEIGHTS] = bytes([real[0] ^ 0xFF]) + real[1:]  # same size, other bytes
    result = run(capsys, "apply", "--locked", "-y", code=1)
    assert f"hf://{TINY}@{commit[:12]} does not match mlx.lock: {WEIGHTS}: sha256" in result.out
    assert "removed what this download wrote" in result.out
    assert not repo_dir(hf_dir(), TINY).exists()  # a fresh install: the whole repo went
    sentinel.check()
    del hub.tamper[WEIGHTS]
    run(capsys, "apply", "--locked", "-y", code=0)
    assert snapshots() == {commit}


def test_a_mismatch_on_an_update_removes_only_what_that_download_wrote(
    capsys: pytest.CaptureFixture[str], hub: FakeHfHub
) -> None:
    spec(HF_MODEL)
    old = hub.repo(TINY).refs["main"]
    run(capsys, "apply", "-y", code=0)
    before = cache_files()
    new_weights = bytes(reversed(TINY_FILES[WEIGHTS]))
    new = hub.push(TINY, {**TINY_FILES, WEIGHTS: new_weights}, lfs={WEIGHTS})
    write_lock(tiny=hf_entry(hub, new, wrong=WEIGHTS))  # the lock says another sha256
    out = run(capsys, "apply", "--locked", "-y", code=1).out
    assert "does not match mlx.lock" in out and "removed what this download wrote" in out
    # The library's tree listings and lock files aside, the cache is as before.
    assert cache_content(cache_files()) == cache_content(before) and snapshots() == {old}


# --- Ollama: the registry is asked before the pull -----------------------------------------------


@pytest.fixture
def registry(
    ollama_server: FakeOllama, ollama_registry: FakeOllamaRegistry
) -> Iterator[FakeOllamaRegistry]:
    """The daemon pulls from the fake registry that mlx asks before a pinned pull."""
    ollama_server.upstream = ollama_registry.url
    yield ollama_registry


def ollama_entry(registry: FakeOllamaRegistry) -> LockEntry:
    model = registry.model(QWEN)
    doc = json.loads(model.manifest)
    layers = tuple(
        OllamaLayer(x["digest"], x["size"], x["mediaType"]) for x in [doc["config"], *doc["layers"]]
    )
    digest = "sha256:" + hashlib.sha256(model.manifest).hexdigest()
    declared = ModelSpec.model_validate({"source": QWEN_SRC})
    lock = OllamaLock(model.name.full, digest, layers)
    return LockEntry(QWEN_SRC, input_hash(declared), ollama=lock)


OLLAMA_MODEL = f"  qwen:\n    source: {QWEN_SRC}\n"


def test_ollama_pull_follows_the_lock_and_a_moved_tag_fails(
    capsys: pytest.CaptureFixture[str], ollama_server: FakeOllama, registry: FakeOllamaRegistry
) -> None:
    registry.publish(QWEN, ob.default_layers(QWEN, 2048))
    spec(OLLAMA_MODEL, registry.url)
    entry = ollama_entry(registry)
    write_lock(qwen=entry)
    assert entry.ollama is not None
    doc = json.loads(run(capsys, "plan", "--locked", "--json", code=0).out)
    assert doc["actions"][0]["params"]["locked_digest"] == entry.ollama.digest
    run(capsys, "apply", "--locked", "-y", code=0)
    manifest = ollama_dir() / "manifests/registry.ollama.ai/library" / QWEN.replace(":", "/")
    assert "sha256:" + hashlib.sha256(manifest.read_bytes()).hexdigest() == entry.ollama.digest
    # The tag moves upstream: a fresh store must not get the new manifest.
    manifest.unlink()
    registry.publish(QWEN, ob.default_layers(QWEN, 4096))
    now = ollama_entry(registry)
    assert now.ollama is not None
    out = run(capsys, "apply", "--locked", "-y", code=1).out
    assert (
        f"upstream tag moved for qwen (locked {entry.ollama.digest[:19]}, now "
        f"{now.ollama.digest[:19]}); run `mlx lock --upgrade qwen`"
    ) in out
    assert not manifest.exists() and ollama_server.count("POST", "/api/pull") == 1


def test_an_installed_ollama_model_other_than_the_lock_is_shown(
    capsys: pytest.CaptureFixture[str], ollama_server: FakeOllama, registry: FakeOllamaRegistry
) -> None:
    registry.publish(QWEN, ob.default_layers(QWEN, 2048))
    spec(OLLAMA_MODEL, registry.url)
    run(capsys, "apply", "-y", code=0)
    registry.publish(QWEN, ob.default_layers(QWEN, 4096))
    write_lock(qwen=ollama_entry(registry))
    plan = run(capsys, "plan", "--locked", "--detailed-exitcode", code=2).out
    assert "observed differs from the lock: installed sha256:" in plan
    run(capsys, "apply", "--locked", "-y", code=0)
    assert "No changes" in run(capsys, "plan", "--locked", code=0).out


# --- saved plans ----------------------------------------------------------------------------------


def test_a_saved_plan_runs_only_with_the_lock_it_was_made_with(
    capsys: pytest.CaptureFixture[str], hub: FakeHfHub
) -> None:
    spec(HF_MODEL)
    commit = hub.repo(TINY).refs["main"]
    write_lock(tiny=hf_entry(hub, commit))
    run(capsys, "plan", "--locked", "--out", "p.json", code=0)
    assert "was made with --locked" in run(capsys, "apply", "p.json", "--frozen", code=1).err
    newer = hub.push(TINY, {**TINY_FILES, "config.json": b"{}\n"}, lfs={WEIGHTS})
    write_lock(tiny=hf_entry(hub, newer))
    err = run(capsys, "apply", "p.json", code=1).err
    assert "saved plan is stale: mlx.lock changed since the plan was made" in err
    assert not snapshots()
    run(capsys, "plan", "--locked", "--out", "p.json", code=0)
    run(capsys, "apply", "p.json", code=0)
    assert snapshots() == {newer}


def test_frozen_plans_unpinned_models_from_mlx_yaml_and_says_so(
    capsys: pytest.CaptureFixture[str], hub: FakeHfHub
) -> None:
    spec(HF_MODEL)
    write_lock()
    result = run(capsys, "plan", "--frozen", code=0)
    assert "tiny: not pinned by mlx.lock (--frozen): planned from mlx.yaml as is" in result.err
