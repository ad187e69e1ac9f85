"""``mlx apply`` through the real CLI, in-process, against the loopback fake Ollama and hub.

What is asserted comes from what the fakes serve and the builders wrote (manifest bytes,
blob bytes, file contents), never from mlxstate's own helpers. Nothing here reaches the
internet: the autouse ``offline`` fixture points Ollama and huggingface_hub's import-time
endpoint at a dead loopback port; tests that need a daemon or a hub use the fakes.

Crash safety (kill -9 at fail points, concurrent applies) is in ``test_crash_safety.py``.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import huggingface_hub.constants
import huggingface_hub.file_download
import pytest

import mlxstate.apply.context
import mlxstate.apply.lock
from mlxstate.apply.journal import Journal
from mlxstate.apply.lock import apply_lock
from mlxstate.facts import DiskSpace
from mlxstate.plan.actions import Action
from mlxstate.registry import read_facts
from mlxstate.seams import Seams
from tests.builders import hf_cache as hb
from tests.builders import ollama_store as ob
from tests.builders.common import git_blob_sha1, sha256_hex
from tests.fakes.hf_hub import FakeHfHub
from tests.fakes.ollama_server import FakeOllama, RegistryModel
from tests.helpers import Result, hf_dir, manage, mlx, ollama_dir, state_dir
from tests.helpers.apply import (
    QWEN,
    QWEN_SRC,
    TINY,
    TINY_FILES,
    TINY_SRC,
    go_offline,
    managed,
    no_traceback,
    tree_state,
)

NO_CHANGES = "No changes. Your models match mlx.yaml."
PRUNE_ONLY_SPEC = "version: 1\nsettings:\n  prune: true\nmodels: {}\n"
PROMPT = "Do you want to perform these actions? Only 'yes' will be accepted:"

SPEC = f"""\
version: 1
models:
  qwen:
    source: {QWEN_SRC}
  tiny:
    source: {TINY_SRC}
"""
OLLAMA_SPEC = f"""\
version: 1
models:
  qwen:
    source: {QWEN_SRC}
"""
HF_SPEC = f"""\
version: 1
models:
  tiny:
    source: {TINY_SRC}
"""


# --- environment --------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No daemon and no hub unless a test asks for a fake (which overrides these)."""
    go_offline(monkeypatch)


@pytest.fixture
def ollama(ollama_server: FakeOllama) -> FakeOllama:
    """The fake daemon, with QWEN published in its registry."""
    ollama_server.publish(QWEN, ob.default_layers(QWEN, 2048))
    return ollama_server


@pytest.fixture
def hub(fake_hub: FakeHfHub) -> FakeHfHub:
    """The fake hub (reached through HF_ENDPOINT), with TINY on it."""
    fake_hub.add_repo(TINY, TINY_FILES)
    return fake_hub


# --- helpers ------------------------------------------------------------------------------------


def write_spec(text: str) -> Path:
    path = Path("mlx.yaml")
    path.write_text(text)
    return path


def apply(
    capsys: pytest.CaptureFixture[str], *args: str, code: int = 0, seams: Seams | None = None
) -> Result:
    result = mlx(capsys, "apply", *args, seams=seams)
    no_traceback(result)
    assert result.code == code, (result.out, result.err)
    return result


def plan_exit(capsys: pytest.CaptureFixture[str]) -> Result:
    result = mlx(capsys, "plan", "--detailed-exitcode")
    no_traceback(result)
    return result


def journal_events() -> list[dict[str, Any]]:
    path = state_dir() / "journal.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def pulls(server: FakeOllama) -> int:
    return server.count("POST", "/api/pull")


def manifest_file(name: str) -> Path:
    return ob.manifest_path(ollama_dir(), name)


def assert_pulled(model: RegistryModel) -> None:
    """The manifest is stored byte for byte; every blob exists with its digest's bytes."""
    assert manifest_file(model.name.full).read_bytes() == model.manifest
    for digest, data in model.blobs.items():
        blob = ob.blob_path(ollama_dir(), digest)
        assert blob.is_file(), blob
        assert "sha256:" + sha256_hex(blob.read_bytes()) == digest
        assert blob.read_bytes() == data


def assert_snapshot(hub: FakeHfHub, repo_id: str, files: dict[str, bytes]) -> None:
    """refs/main names the hub's commit; every file is a relative link to a right blob."""
    commit = hub.repo(repo_id).refs["main"]
    base = hb.repo_dir(hf_dir(), repo_id)
    assert (base / "refs" / "main").read_text() == commit
    snapshot = base / "snapshots" / commit
    for rel, data in files.items():
        link = snapshot / rel
        assert link.is_symlink() and not os.path.isabs(os.readlink(link)), link
        assert link.read_bytes() == data
        blob = link.resolve()
        assert blob.parent == base / "blobs"
        assert blob.name in (sha256_hex(data), git_blob_sha1(data))
    assert sorted(p.name for p in snapshot.iterdir()) == sorted(files)
    leftovers = [p for p in base.rglob("*") if p.name.endswith((".incomplete", ".tmp"))]
    assert leftovers == []


def stores() -> dict[str, tuple[Any, ...]]:
    return tree_state(ollama_dir(), hf_dir())


def summary_line(out: str) -> str:
    lines = [ln for ln in out.splitlines() if ln.startswith(("Apply complete!", "Apply finished"))]
    assert len(lines) == 1, out
    return lines[0]


class FakeTty(io.StringIO):
    """A stdin that says it is a terminal and answers with ``text``."""

    def isatty(self) -> bool:
        return True


# --- creating models ----------------------------------------------------------------------------


def test_apply_pulls_and_downloads_and_records_both_as_managed(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama, hub: FakeHfHub
) -> None:
    write_spec(SPEC)
    shown = mlx(capsys, "plan")
    assert shown.code == 0 and "Plan: 2 to add" in shown.out

    result = apply(capsys, "-y")

    assert "Plan: 2 to add, 0 to change, 0 to destroy." in result.out
    assert summary_line(result.out) == "Apply complete! 2 added, 0 changed, 0 destroyed."
    assert_pulled(ollama.registry[ob.ModelName.parse(QWEN).full])
    assert_snapshot(hub, TINY, TINY_FILES)
    assert managed() == {QWEN_SRC, TINY_SRC}
    names = {m.source: m.name for m in read_facts(state_dir()).models}
    assert names == {QWEN_SRC: "qwen", TINY_SRC: "tiny"}
    assert pulls(ollama) == 1
    # Ollama itself lists the model it now has.
    assert [m["name"] for m in ollama._tags()] == [QWEN]


def test_after_apply_plan_says_no_changes_and_a_second_apply_does_nothing(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama, hub: FakeHfHub
) -> None:
    write_spec(SPEC)
    apply(capsys, "-y")
    before = stores()
    requests = len(ollama.requests), len(hub.requests)

    after_plan = plan_exit(capsys)
    assert after_plan.code == 0, after_plan.out
    assert NO_CHANGES in after_plan.out

    # Nothing to do: no prompt needed, even without -y and without a terminal.
    again = apply(capsys)
    assert NO_CHANGES in again.out
    assert "Apply complete" not in again.out
    assert stores() == before
    assert (len(ollama.requests), len(hub.requests)) == requests


def test_journal_records_each_action_started_then_done_and_the_run_finished(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama, hub: FakeHfHub
) -> None:
    write_spec(SPEC)
    apply(capsys, "-y")
    events = [(e["event"], e.get("action")) for e in journal_events()]
    for action in ("model/qwen", "model/tiny"):
        assert events.index(("started", action)) < events.index(("done", action))
    assert events[-1] == ("finished", None)
    assert len({e["run"] for e in journal_events()}) == 1


# --- asking first -------------------------------------------------------------------------------


def test_without_y_and_without_a_terminal_apply_refuses_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, ollama: FakeOllama
) -> None:
    write_spec(OLLAMA_SPEC)
    monkeypatch.setattr(sys, "stdin", io.StringIO("yes\n"))  # not a terminal: never read
    before = stores()

    result = apply(capsys, code=1)

    assert "pass -y" in result.err
    assert PROMPT not in result.out
    assert stores() == before and pulls(ollama) == 0
    assert managed() == set()


@pytest.mark.parametrize("answer", ["no\n", "y\n", "YES\n", "\n", ""])
def test_on_a_terminal_anything_but_yes_cancels(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    ollama: FakeOllama,
    answer: str,
) -> None:
    write_spec(OLLAMA_SPEC)
    monkeypatch.setattr(sys, "stdin", FakeTty(answer))
    before = stores()

    result = apply(capsys, code=1)

    assert PROMPT in result.out
    assert "cancelled" in result.err
    assert stores() == before and pulls(ollama) == 0
    assert managed() == set()


def test_on_a_terminal_yes_applies(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, ollama: FakeOllama
) -> None:
    write_spec(OLLAMA_SPEC)
    monkeypatch.setattr(sys, "stdin", FakeTty("yes\n"))

    result = apply(capsys)

    assert PROMPT in result.out
    assert result.out.index(PROMPT) < result.out.index("Apply complete!")
    assert summary_line(result.out) == "Apply complete! 1 added, 0 changed, 0 destroyed."
    assert_pulled(ollama.registry[ob.ModelName.parse(QWEN).full])


# --- deleting -----------------------------------------------------------------------------------

ABSENT_SPEC = """\
version: 1
models:
  old:
    source: ollama://llama2:7b
    ensure: absent
"""


@pytest.mark.parametrize("was_managed", [False, True])
def test_ensure_absent_deletes_through_the_api(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama, was_managed: bool
) -> None:
    old = ob.add_model(ollama_dir(), "llama2:7b", ob.default_layers("llama2", 2048))
    keep = ob.add_model(ollama_dir(), "phi3:mini", ob.default_layers("phi3", 2048))
    if was_managed:
        manage("ollama://llama2:7b", "old")
    write_spec(ABSENT_SPEC)
    kept = tree_state(keep.path, *(keep.blob_path(b) for b in keep.blobs))

    result = apply(capsys, "-y")

    assert summary_line(result.out) == "Apply complete! 0 added, 0 changed, 1 destroyed."
    assert ollama.count("DELETE", "/api/delete") == 1
    assert not old.path.exists()
    shared = {b.digest for b in keep.blobs}  # the default template and params layers
    for blob in old.blobs:
        assert old.blob_path(blob).exists() == (blob.digest in shared), blob
    assert tree_state(keep.path, *(keep.blob_path(b) for b in keep.blobs)) == kept
    assert managed() == set()
    assert plan_exit(capsys).code == 0


def _shared_layers(seed: str) -> list[tuple[str, bytes]]:
    """Distinct weights, but the same license text as every other model built here."""
    return [("model", ob.fake_gguf(seed, 2048)), ("license", b"Apache-2.0 shared text\n")]


def test_with_the_daemon_down_ensure_absent_deletes_on_disk_and_keeps_shared_blobs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    old = ob.add_model(ollama_dir(), "llama2:7b", _shared_layers("llama2"))
    other = ob.add_model(ollama_dir(), "phi3:mini", _shared_layers("phi3"))
    write_spec(ABSENT_SPEC)
    other_files = [other.path, *(other.blob_path(b) for b in other.blobs)]
    kept = tree_state(*other_files)
    shared = {b.digest for b in old.blobs} & {b.digest for b in other.blobs}
    assert len(shared) == 1  # the license layer

    result = apply(capsys, "-y")

    assert summary_line(result.out) == "Apply complete! 0 added, 0 changed, 1 destroyed."
    assert not old.path.exists()
    assert not (ollama_dir() / "manifests" / "registry.ollama.ai" / "library" / "llama2").exists()
    for blob in old.blobs:
        assert old.blob_path(blob).exists() == (blob.digest in shared), blob
    assert tree_state(*other_files) == kept
    assert plan_exit(capsys).code == 0


def test_on_disk_delete_keeps_every_blob_when_another_manifest_cannot_be_read(
    capsys: pytest.CaptureFixture[str],
) -> None:
    old = ob.add_model(ollama_dir(), "llama2:7b", _shared_layers("llama2"))
    broken = ob.write_unparseable_manifest(ollama_dir(), "broken:latest")
    write_spec(ABSENT_SPEC)
    broken_bytes = Path(broken).read_bytes()

    apply(capsys, "-y")

    assert not old.path.exists()
    # Its blobs might be referenced by the manifest nobody can read: Ollama keeps them too.
    assert all(old.blob_path(b).exists() for b in old.blobs)
    assert Path(broken).read_bytes() == broken_bytes


def test_on_disk_delete_of_a_name_written_in_another_case_deletes_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    old = ob.add_model(ollama_dir(), "llama2:7b", _shared_layers("llama2"))
    write_spec(ABSENT_SPEC.replace("ollama://llama2:7b", "ollama://Llama2:7B"))
    result = mlx(capsys, "apply", "-y")
    assert not old.path.exists(), result.out
    assert plan_exit(capsys).code == 0


def test_ensure_absent_deletes_an_hf_repo_and_nothing_else(
    capsys: pytest.CaptureFixture[str],
) -> None:
    gone = hb.add_revision(hf_dir(), TINY, TINY_FILES)
    users = hb.add_revision(hf_dir(), "user/own", TINY_FILES)  # the very same files
    write_spec(f"version: 1\nmodels:\n  t:\n    source: {TINY_SRC}\n    ensure: absent\n")
    users_state = tree_state(users.repo_dir)

    result = apply(capsys, "-y")

    assert summary_line(result.out) == "Apply complete! 0 added, 0 changed, 1 destroyed."
    assert not gone.snapshot_dir.exists()
    assert not (gone.repo_dir / "blobs").exists() or not any((gone.repo_dir / "blobs").iterdir())
    assert tree_state(users.repo_dir) == users_state
    assert plan_exit(capsys).code == 0


PRUNE_SPEC = f"""\
version: 1
settings:
  prune: true
models:
  qwen:
    source: {QWEN_SRC}
"""


def test_prune_deletes_managed_undeclared_models_and_never_unmanaged_ones(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama
) -> None:
    ob.add_model(ollama_dir(), QWEN, ob.default_layers(QWEN, 2048))
    gone = ob.add_model(ollama_dir(), "mistral:7b", ob.default_layers("mistral", 2048))
    users = ob.add_model(ollama_dir(), "phi3:mini", ob.default_layers("phi3", 2048))
    gone_repo = hb.add_revision(hf_dir(), "org/old", {"config.json": b'{"old": 1}\n'})
    users_repo = hb.add_revision(hf_dir(), "user/own", TINY_FILES)
    manage(QWEN_SRC, "qwen")
    manage("ollama://mistral:7b", "mistral")
    manage("hf://org/old", "old")
    write_spec(PRUNE_SPEC)
    users_state = tree_state(users.path, users_repo.repo_dir)

    result = apply(capsys, "-y")

    assert summary_line(result.out) == "Apply complete! 0 added, 0 changed, 2 destroyed."
    assert not gone.path.exists()
    assert not gone_repo.snapshot_dir.exists()
    assert tree_state(users.path, users_repo.repo_dir) == users_state
    assert manifest_file(QWEN).exists()
    assert managed() == {QWEN_SRC}
    assert pulls(ollama) == 0
    assert plan_exit(capsys).code == 0


def test_a_changed_source_with_prune_replaces_the_model_new_first(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama
) -> None:
    ollama.publish("llama3:8b", ob.default_layers("llama3", 2048))
    old = ob.add_model(ollama_dir(), QWEN, ob.default_layers(QWEN, 2048))
    manage(QWEN_SRC, "qwen")
    write_spec(PRUNE_SPEC.replace(QWEN_SRC, "ollama://llama3:8b"))

    result = apply(capsys, "-y")

    assert summary_line(result.out) == "Apply complete! 1 added, 0 changed, 1 destroyed."
    assert_pulled(ollama.registry[ob.ModelName.parse("llama3:8b").full])
    assert not old.path.exists()
    assert managed() == {"ollama://llama3:8b"}
    assert plan_exit(capsys).code == 0


def test_a_failed_replacement_keeps_the_old_model(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama
) -> None:
    old = ob.add_model(ollama_dir(), QWEN, ob.default_layers(QWEN, 2048))
    manage(QWEN_SRC, "qwen")
    write_spec(PRUNE_SPEC.replace(QWEN_SRC, "ollama://llama3:8b"))  # not on the registry

    apply(capsys, "-y", code=1)

    assert old.path.exists() and all(old.blob_path(b).exists() for b in old.blobs)
    assert managed() == {QWEN_SRC}


def test_a_missing_snapshot_file_is_repaired_as_a_change(
    capsys: pytest.CaptureFixture[str], hub: FakeHfHub
) -> None:
    rev = hb.add_revision(hf_dir(), TINY, TINY_FILES, commit=hub.repo(TINY).refs["main"])
    (rev.snapshot_dir / "config.json").unlink()
    write_spec(HF_SPEC)

    result = apply(capsys, "-y")

    assert summary_line(result.out) == "Apply complete! 0 added, 1 changed, 0 destroyed."
    assert_snapshot(hub, TINY, TINY_FILES)
    assert hub.count("GET", ".*/resolve/.*/model.safetensors") == 0  # only what was missing
    assert plan_exit(capsys).code == 0


def test_target_applies_only_that_model(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama, hub: FakeHfHub
) -> None:
    write_spec(SPEC)
    result = apply(capsys, "-y", "--target", "qwen")
    assert summary_line(result.out) == "Apply complete! 1 added, 0 changed, 0 destroyed."
    assert managed() == {QWEN_SRC}
    assert hub.requests == []


# --- failures -----------------------------------------------------------------------------------


def test_ollama_500_fails_that_pull_and_the_independent_download_still_happens(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama, hub: FakeHfHub
) -> None:
    ollama.fail("/api/pull", 500, message="registry is on fire")
    write_spec(SPEC)

    result = apply(capsys, "-y", code=1)

    assert summary_line(result.out) == "Apply finished with errors: 1 done, 1 failed, 0 skipped"
    assert re.search(r"model/qwen: .*500.*registry is on fire", result.out), result.out
    assert not manifest_file(QWEN).exists()
    assert_snapshot(hub, TINY, TINY_FILES)
    assert managed() == {TINY_SRC}
    events = {(e["event"], e.get("action")) for e in journal_events()}
    assert {("failed", "model/qwen"), ("done", "model/tiny"), ("finished", None)} <= events

    # The fault is gone: the next apply does only what is left.
    ollama.clear_faults()
    again = apply(capsys, "-y")
    assert summary_line(again.out) == "Apply complete! 1 added, 0 changed, 0 destroyed."
    assert managed() == {QWEN_SRC, TINY_SRC}
    assert plan_exit(capsys).code == 0


def test_an_error_line_after_http_200_fails_the_pull(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama
) -> None:
    ollama.pull_error_after = 3  # manifest line, then two progress lines, then {"error": ...}
    ollama.pull_error_message = "max retries exceeded: unexpected EOF"
    write_spec(OLLAMA_SPEC)

    result = apply(capsys, "-y", code=1)

    assert summary_line(result.out) == "Apply finished with errors: 0 done, 1 failed, 0 skipped"
    assert "max retries exceeded: unexpected EOF" in result.out
    assert not manifest_file(QWEN).exists()
    assert managed() == set()


def test_an_unknown_model_fails_with_the_registry_s_error(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama
) -> None:
    write_spec(OLLAMA_SPEC.replace(QWEN, "nosuchmodel:1b"))
    result = apply(capsys, "-y", code=1)
    assert "file does not exist" in result.out
    assert managed() == set()


def test_a_dropped_pull_stream_fails_and_the_next_apply_converges(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama
) -> None:
    ollama.pull_drop_after = 3
    write_spec(OLLAMA_SPEC)

    result = apply(capsys, "-y", code=1)

    assert summary_line(result.out) == "Apply finished with errors: 0 done, 1 failed, 0 skipped"
    assert re.search(r"model/qwen: .*(cut off|dropped|before Ollama reported)", result.out)
    assert not manifest_file(QWEN).exists()
    assert managed() == set()

    ollama.pull_drop_after = None
    apply(capsys, "-y")
    assert_pulled(ollama.registry[ob.ModelName.parse(QWEN).full])
    assert managed() == {QWEN_SRC}


def test_an_unreachable_daemon_fails_the_pull_saying_how_to_start_ollama(
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_spec(OLLAMA_SPEC)
    result = apply(capsys, "-y", code=1)
    assert summary_line(result.out) == "Apply finished with errors: 0 done, 1 failed, 0 skipped"
    assert "ollama serve" in result.out
    assert os.environ["OLLAMA_HOST"].removeprefix("http://") in result.out
    assert managed() == set()


@pytest.mark.parametrize(
    ("spec_extra", "expected"),
    [
        ("", r"hf://org/missing not found on the hub \(check the id"),
        ("    revision: v9\n", r"no revision 'v9'"),
    ],
    ids=["repo", "revision"],
)
def test_a_hub_404_fails_clearly(
    capsys: pytest.CaptureFixture[str], hub: FakeHfHub, spec_extra: str, expected: str
) -> None:
    repo = "org/missing" if not spec_extra else TINY
    write_spec(f"version: 1\nmodels:\n  m:\n    source: hf://{repo}\n{spec_extra}")

    result = apply(capsys, "-y", code=1)

    assert summary_line(result.out) == "Apply finished with errors: 0 done, 1 failed, 0 skipped"
    assert re.search(expected, result.out), result.out
    assert not hb.repo_dir(hf_dir(), repo).joinpath("snapshots").exists()
    assert managed() == set()


# --- saved plans --------------------------------------------------------------------------------


def test_a_saved_plan_is_applied_without_a_prompt(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    ollama: FakeOllama,
    hub: FakeHfHub,
) -> None:
    write_spec(SPEC)
    saved = mlx(capsys, "plan", "--out", "p.json")
    assert saved.code == 0, saved.err
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # no terminal, no -y

    result = apply(capsys, "p.json")

    assert PROMPT not in result.out
    assert summary_line(result.out) == "Apply complete! 2 added, 0 changed, 0 destroyed."
    assert_pulled(ollama.registry[ob.ModelName.parse(QWEN).full])
    assert_snapshot(hub, TINY, TINY_FILES)
    assert managed() == {QWEN_SRC, TINY_SRC}
    assert plan_exit(capsys).code == 0


def test_a_saved_plan_finds_its_mlx_yaml_from_another_directory(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    ollama: FakeOllama,
) -> None:
    write_spec(OLLAMA_SPEC)
    assert mlx(capsys, "plan", "--out", "p.json").code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    apply(capsys, str(tmp_path / "p.json"))
    assert managed() == {QWEN_SRC}


def _stale(result: Result) -> None:
    assert "saved plan is stale" in result.err


def test_a_saved_plan_is_stale_after_mlx_yaml_changes(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama, hub: FakeHfHub
) -> None:
    write_spec(SPEC)
    assert mlx(capsys, "plan", "--out", "p.json").code == 0
    write_spec(SPEC + "  # a comment is a change too\n")
    before = stores()

    result = apply(capsys, "p.json", code=1)

    _stale(result)
    assert "mlx.yaml changed" in result.err
    assert "model stores" not in result.err
    assert stores() == before and pulls(ollama) == 0 and hub.requests == []
    assert managed() == set()


def test_a_saved_plan_is_stale_after_the_stores_change(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama
) -> None:
    write_spec(OLLAMA_SPEC)
    assert mlx(capsys, "plan", "--out", "p.json").code == 0
    ob.add_model(ollama_dir(), QWEN, ob.default_layers(QWEN, 2048))  # pulled meanwhile
    before = stores()

    result = apply(capsys, "p.json", code=1)

    _stale(result)
    assert "model stores" in result.err
    assert "mlx.yaml changed" not in result.err
    assert stores() == before and pulls(ollama) == 0


def test_a_saved_plan_is_stale_after_the_registry_changes(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama
) -> None:
    write_spec(OLLAMA_SPEC)
    assert mlx(capsys, "plan", "--out", "p.json").code == 0
    manage("hf://org/other", "other")
    result = apply(capsys, "p.json", code=1)
    _stale(result)
    assert pulls(ollama) == 0


def test_a_saved_plan_cannot_be_applied_twice(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama
) -> None:
    write_spec(OLLAMA_SPEC)
    assert mlx(capsys, "plan", "--out", "p.json").code == 0
    apply(capsys, "p.json")
    _stale(apply(capsys, "p.json", code=1))
    assert pulls(ollama) == 1


def _forged(edit: Any) -> None:
    doc = json.loads(Path("p.json").read_text())
    edit(doc)
    Path("p.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("forgery", ["appended-delete", "edited-subject", "edited-param"])
def test_a_saved_plan_with_an_action_added_or_edited_by_hand_is_refused(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama, tmp_path: Path, forgery: str
) -> None:
    """A plan file is data, not authority: only what a fresh plan of the same file and
    state contains is carried out; anything else refuses the whole plan."""
    precious = tmp_path / "precious.txt"
    precious.write_text("the user's")
    users = ob.add_model(ollama_dir(), "phi3:mini", ob.default_layers("phi3", 2048))
    write_spec(OLLAMA_SPEC)
    assert mlx(capsys, "plan", "--out", "p.json").code == 0

    def edit(doc: dict[str, Any]) -> None:
        action = doc["actions"][0]
        if forgery == "appended-delete":
            doc["actions"].append(
                {
                    "id": "cleanup/x",
                    "op": "delete",
                    "kind": "cleanup.orphan",
                    "subject": str(precious),
                    "download_bytes": 0,
                    "free_bytes": 10,
                    "reason": "x",
                    "params": {"mtime": 0, "size": 10},
                }
            )
        elif forgery == "edited-subject":
            action["subject"] = "ollama://phi3:mini"
            action["kind"], action["op"] = "ollama.delete", "delete"
        else:
            action["params"] = {"seed_blob": str(precious), "seed_sha256": "0" * 64}

    _forged(edit)
    result = apply(capsys, "p.json", code=1)
    assert "holds actions a fresh plan does not" in result.err
    assert precious.read_text() == "the user's"
    assert users.path.is_file()
    assert pulls(ollama) == 0


def test_a_saved_refresh_plan_is_checked_against_a_fresh_refresh_plan(
    capsys: pytest.CaptureFixture[str], hub: FakeHfHub
) -> None:
    write_spec(HF_SPEC)
    assert mlx(capsys, "plan", "--refresh", "--out", "p.json").code == 0
    doc = json.loads(Path("p.json").read_text())
    assert doc["options"] == {"refresh": True, "targets": [], "locked": False, "frozen": False}
    assert doc["workspace"]
    apply(capsys, "p.json")
    assert managed() == {TINY_SRC}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no plan file"),
        ("{not json", "is not a plan"),
        ('{"format_version": "9"}', "plan"),
        ('{"format_version": "1", "spec": "x"}', "is not a plan"),
        ('{"format_version": "1", "spec": {"path": 3}}', "is not a plan"),
        ("[" * 100_000, "is not a plan"),
        ("\xff\xfe{", "is not a plan"),
    ],
    ids=["missing", "garbage", "other-format", "spec-str", "path-int", "deep", "latin1"],
)
def test_a_bad_plan_file_is_a_clean_error(
    capsys: pytest.CaptureFixture[str], content: str | None, expected: str
) -> None:
    write_spec(OLLAMA_SPEC)
    if content is not None:
        Path("p.json").write_bytes(content.encode("latin-1"))
    result = apply(capsys, "p.json", code=1)
    assert expected in result.err
    assert managed() == set()


# --- the lock -----------------------------------------------------------------------------------


def _holder_named(err: str) -> None:
    assert f"pid {os.getpid()}" in err, err
    assert socket.gethostname() in err, err
    assert re.search(r"started \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", err), err


def test_a_held_lock_makes_apply_exit_1_naming_the_holder(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama
) -> None:
    write_spec(OLLAMA_SPEC)
    with apply_lock(state_dir()):
        result = apply(capsys, "-y", code=1)
    _holder_named(result.err)
    assert "--lock-timeout" in result.err  # how to wait instead
    assert pulls(ollama) == 0 and managed() == set()
    # Released: the same apply now goes through.
    apply(capsys, "-y")
    assert managed() == {QWEN_SRC}


class _SleepSignals:
    """Stands in for the ``time`` module in the lock: the first sleep (the waiter found
    the lock held) sets ``waiting``."""

    def __init__(self, waiting: threading.Event) -> None:
        self._waiting = waiting

    def sleep(self, seconds: float) -> None:
        self._waiting.set()
        time.sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def test_lock_timeout_waits_then_fails_naming_the_holder(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, ollama: FakeOllama
) -> None:
    write_spec(OLLAMA_SPEC)
    waiting = threading.Event()
    monkeypatch.setattr(mlxstate.apply.lock, "time", _SleepSignals(waiting))
    with apply_lock(state_dir()):
        result = apply(capsys, "-y", "--lock-timeout", "1s", code=1)
    assert waiting.is_set()  # it polled the lock instead of giving up at once
    _holder_named(result.err)
    assert pulls(ollama) == 0


def test_lock_timeout_succeeds_when_the_holder_releases_in_time(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, ollama: FakeOllama
) -> None:
    write_spec(OLLAMA_SPEC)
    held, waiting = threading.Event(), threading.Event()

    def holder() -> None:
        with apply_lock(state_dir()):
            held.set()
            waiting.wait(60)  # release as soon as the apply is waiting for us

    monkeypatch.setattr(mlxstate.apply.lock, "time", _SleepSignals(waiting))
    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(10)
        result = apply(capsys, "-y", "--lock-timeout", "60s")
    finally:
        waiting.set()
        thread.join(10)
    assert waiting.is_set()
    assert summary_line(result.out) == "Apply complete! 1 added, 0 changed, 0 destroyed."
    assert managed() == {QWEN_SRC}


class _HolderPausedBeforeItsInfo:
    """Stands in for ``os`` in the lock module. The holder thread stops right after its
    flock succeeded, before it writes its pid/host/start (its first ftruncate), until
    another thread has read the lock file: the instant a racing apply can hit for real
    (two applies started together hit it about one time in four)."""

    def __init__(self) -> None:
        self.holder: int | None = None
        self.paused = threading.Event()
        self.waiter_read = threading.Event()

    def ftruncate(self, fd: int, length: int) -> None:
        if threading.get_ident() == self.holder and not self.paused.is_set():
            self.paused.set()
            self.waiter_read.wait(10)
        os.ftruncate(fd, length)

    def pread(self, fd: int, n: int, offset: int) -> bytes:
        data = os.pread(fd, n, offset)
        if threading.get_ident() != self.holder:
            self.waiter_read.set()
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


def test_a_waiter_names_a_holder_that_has_not_written_its_info_yet(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, ollama: FakeOllama
) -> None:
    write_spec(OLLAMA_SPEC)
    fake_os = _HolderPausedBeforeItsInfo()
    monkeypatch.setattr(mlxstate.apply.lock, "os", fake_os)
    release = threading.Event()

    def holder() -> None:
        fake_os.holder = threading.get_ident()
        with apply_lock(state_dir()):
            release.wait(30)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert fake_os.paused.wait(10)  # it holds the flock; its info is not written yet
        result = mlx(capsys, "apply", "-y")
    finally:
        fake_os.waiter_read.set()
        release.set()
        thread.join(10)
    assert result.code == 1
    _holder_named(result.err)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_lock_of_a_dead_apply_is_taken_over_with_a_warning(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama
) -> None:
    write_spec(OLLAMA_SPEC)
    pid = _dead_pid()
    state_dir().mkdir(parents=True)
    info = {"pid": pid, "host": socket.gethostname(), "started": time.time() - 60}
    (state_dir() / "apply.lock").write_text(json.dumps(info))

    result = apply(capsys, "-y")

    assert "warning" in result.err and f"pid {pid}" in result.err
    assert managed() == {QWEN_SRC}
    # The next apply finds a released lock: no warning.
    assert "took over" not in apply(capsys, "-y").err


def test_an_invalid_lock_timeout_is_a_clean_error(capsys: pytest.CaptureFixture[str]) -> None:
    write_spec(OLLAMA_SPEC)
    result = apply(capsys, "-y", "--lock-timeout", "soon", code=1)
    assert "--lock-timeout" in result.err


# --- an interrupted apply -----------------------------------------------------------------------


def _pull_action(name: str = "qwen", source: str = QWEN_SRC) -> Action:
    return Action(f"model/{name}", "create", "ollama.pull", source, None, 0, "declared", name)


def _killed_journal(*actions: Action, applied: bool = False) -> None:
    """The journal a SIGKILLed apply leaves: actions started, none ended, no finish line,
    written by the journal's own writer (so the test follows its format). ``applied``: the
    effect had finished (the kill came before the registry write)."""
    journal = Journal(state_dir())
    for action in actions:
        journal.started(action)
        if applied:
            journal.write("applied", action=action.id, status="done")
    journal.close(finished=False)


def _handwritten_journal(*actions: Action, applied: bool = False) -> None:
    """The same, by hand, in the format ``read_interrupted`` reads (a ``run`` line first)."""
    run, now = "c0ffee000001", time.time() - 120
    lines = [{"run": run, "event": "run", "time": now}]
    lines += [
        {
            "run": run,
            "event": "started",
            "time": now,
            "action": a.id,
            "op": a.op,
            "kind": a.kind,
            "subject": a.subject,
        }
        for a in actions
    ]
    if applied:
        lines += [{"run": run, "event": "applied", "time": now, "action": a.id} for a in actions]
    state_dir().mkdir(parents=True, exist_ok=True)
    (state_dir() / "journal.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


def _says_interrupted(err: str) -> None:
    assert re.search(r"warning: .*interrupted.*model/qwen", err), err


def test_a_handwritten_interrupted_journal_is_reported_and_apply_converges(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama
) -> None:
    write_spec(OLLAMA_SPEC)
    _handwritten_journal(_pull_action())
    result = apply(capsys, "-y")
    _says_interrupted(result.err)
    assert_pulled(ollama.registry[ob.ModelName.parse(QWEN).full])
    assert managed() == {QWEN_SRC}


def test_an_interrupted_run_is_reported_only_once(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama
) -> None:
    write_spec(OLLAMA_SPEC)
    _handwritten_journal(_pull_action())
    _says_interrupted(apply(capsys, "-y").err)
    assert "interrupted" not in apply(capsys, "-y").err


def test_a_handwritten_interrupted_create_whose_model_is_there_is_adopted(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama
) -> None:
    ob.add_model(ollama_dir(), QWEN, ob.default_layers(QWEN, 2048))  # the killed pull finished
    write_spec(OLLAMA_SPEC)
    _handwritten_journal(_pull_action(), applied=True)
    result = apply(capsys, "-y")
    _says_interrupted(result.err)
    assert NO_CHANGES in result.out
    assert managed() == {QWEN_SRC}
    assert pulls(ollama) == 0


def test_the_journal_of_a_killed_apply_is_reported_and_apply_converges(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama
) -> None:
    write_spec(OLLAMA_SPEC)
    _killed_journal(_pull_action())
    result = apply(capsys, "-y")
    assert_pulled(ollama.registry[ob.ModelName.parse(QWEN).full])
    _says_interrupted(result.err)


def test_a_killed_create_whose_model_is_there_is_adopted_as_managed(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama
) -> None:
    ob.add_model(ollama_dir(), QWEN, ob.default_layers(QWEN, 2048))
    write_spec(OLLAMA_SPEC)
    _killed_journal(_pull_action(), applied=True)
    result = apply(capsys, "-y")
    assert NO_CHANGES in result.out
    assert managed() == {QWEN_SRC}
    _says_interrupted(result.err)


@pytest.mark.parametrize("handwritten", [False, True])
def test_a_model_pulled_by_hand_after_a_kill_before_the_download_stays_the_users(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama, handwritten: bool
) -> None:
    """Killed before its download began (no `applied` line), then the user pulled the same
    model by hand: nothing shows mlx made it, so it is not adopted, and prune never deletes
    it."""
    write_spec(OLLAMA_SPEC)
    (_handwritten_journal if handwritten else _killed_journal)(_pull_action())
    users = ob.add_model(ollama_dir(), QWEN, ob.default_layers(QWEN, 2048))
    result = apply(capsys, "-y")
    assert NO_CHANGES in result.out
    assert "left to you" in result.err
    assert managed() == set()
    write_spec(PRUNE_ONLY_SPEC)
    apply(capsys, "-y")
    assert users.path.is_file()


def test_an_interrupted_delete_of_an_unmanaged_model_is_not_adopted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An interrupted delete must never make a model managed; a model it did not get to
    delete is deleted now."""
    old = ob.add_model(ollama_dir(), "llama2:7b", ob.default_layers("llama2", 2048))
    write_spec(ABSENT_SPEC)
    delete = Action("model/old", "delete", "ollama.delete", "ollama://llama2:7b", 0, 1, "x", "old")
    _handwritten_journal(delete)
    apply(capsys, "-y")
    assert not old.path.exists()
    assert managed() == set()


# --- disk space ---------------------------------------------------------------------------------


def _little_space(free: int, plenty_first: int = 0) -> tuple[list[Path], Seams]:
    """A free-space probe that says ``free`` bytes everywhere (after ``plenty_first`` calls
    that say 1 TB: the plan's own look), and where it was asked."""
    asked: list[Path] = []

    def disk_space(path: Path) -> DiskSpace:
        asked.append(path)
        return DiskSpace(path, 1, free if len(asked) > plenty_first else 10**12)

    return asked, Seams(disk_space=disk_space)


MIN_FREE_SPEC = f"""\
version: 1
settings:
  disk:
    min_free: 1GB
models:
  qwen:
    source: {QWEN_SRC}
"""


def test_min_free_is_checked_again_right_before_a_download(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, ollama: FakeOllama
) -> None:
    """A broken model: the repair's size is known. Space was enough at plan time (the
    planner's own check passed), but not any more when the download starts."""
    info = ob.add_model(ollama_dir(), QWEN, ob.default_layers(QWEN, 2048))
    ob.remove_blob(ollama_dir(), info.layers[0].digest)  # the 2048-byte GGUF
    write_spec(MIN_FREE_SPEC)
    asked, seams = _little_space(500_000_000, plenty_first=2)  # observe: both stores

    result = apply(capsys, "-y", code=1, seams=seams)

    assert summary_line(result.out) == "Apply finished with errors: 0 done, 1 failed, 0 skipped"
    line = next(ln for ln in result.out.splitlines() if ln.strip().startswith("model/qwen:"))
    assert "not enough disk space" in line
    assert "2.0 kB" in line and "500.0 MB" in line and "1.0 GB" in line, line
    assert asked and pulls(ollama) == 0


def test_min_free_refuses_a_download_of_unknown_size_when_already_below_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, ollama: FakeOllama
) -> None:
    write_spec(MIN_FREE_SPEC)
    _, seams = _little_space(500_000_000)
    result = mlx(capsys, "apply", "-y", seams=seams)
    assert pulls(ollama) == 0
    assert result.code == 1
    assert "not enough disk space" in result.out


def test_disk_full_during_an_hf_download_fails_clearly(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, hub: FakeHfHub
) -> None:
    """ENOSPC where the library really meets it: writing the body into its temp file."""

    def http_get(url: str, temp_file: Any, **_: Any) -> None:
        temp_file.write(b"partial bytes")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(huggingface_hub.file_download, "http_get", http_get)
    write_spec(HF_SPEC)

    result = apply(capsys, "-y", code=1)

    assert summary_line(result.out) == "Apply finished with errors: 0 done, 1 failed, 0 skipped"
    line = next(ln for ln in result.out.splitlines() if ln.strip().startswith("model/tiny:"))
    assert "disk full" in line and TINY in line, line
    base = hb.repo_dir(hf_dir(), TINY)
    assert not any(p.name.endswith(".incomplete") for p in base.rglob("*"))
    assert not any(p.is_symlink() for p in base.rglob("*"))
    assert managed() == set()


@pytest.fixture
def enospc_from_snapshot_download(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def snapshot_download(*_: Any, **__: Any) -> str:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    yield


@pytest.mark.usefixtures("enospc_from_snapshot_download")
def test_disk_full_from_snapshot_download_fails_the_action_and_others_go_on(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama, hub: FakeHfHub
) -> None:
    write_spec(SPEC)
    result = apply(capsys, "-y", code=1)
    assert summary_line(result.out) == "Apply finished with errors: 1 done, 1 failed, 0 skipped"
    assert "disk full" in result.out
    assert managed() == {QWEN_SRC}


# --- output -------------------------------------------------------------------------------------


def test_apply_prints_the_plan_then_the_summary_on_stdout_and_progress_on_stderr(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama
) -> None:
    write_spec(OLLAMA_SPEC)
    result = apply(capsys, "-y")
    assert result.out.index("Plan: 1 to add") < result.out.index("Apply complete!")
    assert "Apply complete" not in result.err
    assert "model/qwen" in result.err  # what it is doing, as it does it


def test_a_manifest_digest_is_the_sha256_of_the_stored_file(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama
) -> None:
    """Ollama's /api/tags digest is sha256(manifest file): the pulled file is never
    re-serialized, so the digest matches the registry's."""
    write_spec(OLLAMA_SPEC)
    apply(capsys, "-y")
    model = ollama.registry[ob.ModelName.parse(QWEN).full]
    assert ollama._tags()[0]["digest"] == hashlib.sha256(model.manifest).hexdigest()
