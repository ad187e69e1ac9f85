"""Ownership per workspace (docs/apply.md, "Ownership"): two mlx.yaml files on one machine
share the registry, and neither deletes what the other installed; `mlx import` and
`mlx forget` move ownership without touching files."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from mlxstate.registry import DB_NAME, MIGRATIONS, read_facts
from mlxstate.workspace import derive_workspace
from tests.builders import ollama_store as ob
from tests.fakes.ollama_server import FakeOllama
from tests.helpers import (
    REPO_EXAMPLES,
    hf_dir,
    manage,
    ollama_dir,
    run_ok,
    spec_in,
    state_dir,
)

QWEN = "qwen2.5:0.5b"
QWEN_SRC = f"ollama://{QWEN}"
DECLARES_QWEN = f"version: 1\nsettings:\n  prune: true\nmodels:\n  qwen:\n    source: {QWEN_SRC}\n"
DECLARES_NOTHING = "version: 1\nsettings:\n  prune: true\nmodels: {}\n"


@pytest.fixture
def ollama(ollama_server: FakeOllama) -> FakeOllama:
    ollama_server.publish(QWEN, ob.default_layers(QWEN, 2048))
    return ollama_server


spec = spec_in
run = run_ok


def owners(source: str = QWEN_SRC) -> tuple[str, ...]:
    found = read_facts(state_dir()).find(source)
    return found.owner_names if found is not None else ()


def qwen_on_disk() -> bool:
    return ob.manifest_path(ollama_dir(), QWEN).is_file()


def test_another_files_prune_never_deletes_what_this_file_installed(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama
) -> None:
    mine = spec("home", DECLARES_QWEN)
    run(capsys, "apply", "-y", "-f", str(mine))
    assert owners() == (derive_workspace(mine),)
    other = spec("teammate", DECLARES_NOTHING)

    out = run(capsys, "plan", "-f", str(other)).out
    assert "No changes" in out
    run(capsys, "apply", "-y", "-f", str(other))
    assert qwen_on_disk()
    # Its own file still converges and still owns it.
    assert "No changes" in run(capsys, "plan", "-f", str(mine)).out


def test_the_examples_plan_no_deletes_of_models_this_machine_installed(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama
) -> None:
    run(capsys, "apply", "-y", "-f", str(spec("home", DECLARES_QWEN)))
    for example in ("mac-studio.yaml", "ci-team.yaml"):
        doc = json.loads(run(capsys, "plan", "--json", "-f", str(REPO_EXAMPLES / example)).out)
        deletes = [a for a in doc["actions"] if a["op"] in ("delete", "replace")]
        assert not [a for a in deletes if a["subject"] == QWEN_SRC], deletes


def test_a_model_two_files_declare_is_shared_and_released_not_deleted(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama
) -> None:
    first, second = spec("a", DECLARES_QWEN), spec("b", DECLARES_QWEN)
    run(capsys, "apply", "-y", "-f", str(first))
    doc = json.loads(run(capsys, "plan", "--json", "-f", str(second)).out)
    assert [(a["kind"], a["subject"]) for a in doc["actions"]] == [("registry.claim", QWEN_SRC)]
    assert doc["workspace"] == derive_workspace(second)
    run(capsys, "apply", "-y", "-f", str(second))
    assert set(owners()) == {derive_workspace(first), derive_workspace(second)}
    assert "No changes" in run(capsys, "plan", "-f", str(second)).out

    first.write_text(DECLARES_NOTHING)  # the first file drops it: only its claim goes
    doc = json.loads(run(capsys, "plan", "--json", "-f", str(first)).out)
    assert [a["kind"] for a in doc["actions"]] == ["registry.release"]
    assert doc["summary"]["free_bytes"] == 0
    run(capsys, "apply", "-y", "-f", str(first))
    assert qwen_on_disk()
    assert owners() == (derive_workspace(second),)

    second.write_text(DECLARES_NOTHING)  # the last owner drops it: now it goes
    run(capsys, "apply", "-y", "-f", str(second))
    assert not qwen_on_disk()
    assert owners() == ()


def test_import_makes_a_users_model_managed_and_forget_gives_it_back(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ob.add_model(ollama_dir(), QWEN, ob.default_layers(QWEN, 2048))  # pulled by hand
    mine = spec("home", DECLARES_NOTHING)
    assert "No changes" in run(capsys, "plan", "-f", str(mine)).out  # the user's: kept

    out = run(capsys, "import", QWEN_SRC, "-f", str(mine)).out
    assert f"now managed by workspace {derive_workspace(mine)}" in out
    assert "already managed" in run(capsys, "import", QWEN_SRC, "-f", str(mine)).out
    status = json.loads(run(capsys, "status", "--json", "-f", str(mine)).out)
    (model,) = status["stores"]["ollama"]["models"]
    assert model["managed"] and model["owners"] == [derive_workspace(mine)]
    assert status["workspace"] == derive_workspace(mine)

    out = run(capsys, "forget", QWEN_SRC, "-f", str(mine)).out
    assert "no longer managed: its files stay" in out
    run(capsys, "apply", "-y", "-f", str(mine))
    assert qwen_on_disk()  # prune: true, but it is the user's again

    run(capsys, "import", QWEN_SRC, "-f", str(mine))
    run(capsys, "apply", "-y", "-f", str(mine))
    assert not qwen_on_disk()  # imported, undeclared, prune: true → deleted


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["import", QWEN_SRC], "is not in"),
        (["import", "hf://org/missing"], "is not in"),
        (["import", "file:///tmp"], "never managed"),
        (["import", "qwen"], "no scheme"),
        (["import", "hf://../x"], "invalid"),
        (["forget", QWEN_SRC], "is not managed by workspace"),
        (["import", QWEN_SRC, "--lock-timeout", "soon"], "--lock-timeout"),
    ],
)
def test_import_and_forget_refuse_with_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    mine = spec("home", DECLARES_NOTHING)
    result = run(capsys, *args, "-f", str(mine), code=1)
    assert message in result.err
    assert result.err.startswith("error: ")
    assert not (state_dir() / DB_NAME).exists() or read_facts(state_dir()).models == ()


def test_forget_of_another_workspaces_model_names_its_owners(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ob.add_model(ollama_dir(), QWEN, ob.default_layers(QWEN, 2048))
    theirs = spec("theirs", DECLARES_QWEN)
    manage(QWEN_SRC, "qwen", spec=theirs)
    result = run(capsys, "forget", QWEN_SRC, "-f", str(spec("home", DECLARES_NOTHING)), code=1)
    assert derive_workspace(theirs) in result.err
    assert owners() == (derive_workspace(theirs),)


def _v2_registry(rows: list[tuple[str, str]]) -> None:
    state_dir().mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(state_dir() / DB_NAME, isolation_level=None)
    for index, script in enumerate(MIGRATIONS[:2]):
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {index + 1};\nCOMMIT;")
    for source, name in rows:
        conn.execute("INSERT INTO models VALUES (?, ?, NULL, 1.0)", (source, name))
    conn.close()


def test_models_recorded_before_workspaces_are_never_pruned_by_a_file_that_does_not_claim_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ob.add_model(ollama_dir(), QWEN, ob.default_layers(QWEN, 2048))
    _v2_registry([(QWEN_SRC, "qwen")])
    other = spec("teammate", DECLARES_NOTHING)
    result = run(capsys, "apply", "-y", "-f", str(other))
    assert "before workspaces existed" in result.out + result.err
    assert qwen_on_disk()

    mine = spec("home", DECLARES_QWEN)  # the file that declares it claims it...
    run(capsys, "apply", "-y", "-f", str(mine))
    assert owners() == (derive_workspace(mine),)
    mine.write_text(DECLARES_NOTHING)  # ...and its prune may then delete it
    run(capsys, "apply", "-y", "-f", str(mine))
    assert not qwen_on_disk()


def test_settings_workspace_names_the_owner_whatever_the_path(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama
) -> None:
    named = DECLARES_QWEN.replace("  prune: true\n", "  prune: true\n  workspace: dotfiles\n")
    run(capsys, "apply", "-y", "-f", str(spec("one", named)))
    assert owners() == ("dotfiles",)
    # The same workspace from another checkout of the dotfiles: it owns the model too.
    moved = named.replace("  qwen:\n    source: " + QWEN_SRC + "\n", "").replace(
        "models:\n", "models: {}\n"
    )
    run(capsys, "apply", "-y", "-f", str(spec("two", moved)))
    assert not qwen_on_disk()


def test_a_symlinked_mlx_yaml_is_the_same_workspace_as_its_target(tmp_path: Path) -> None:
    real = spec("dotfiles", DECLARES_NOTHING)
    link = tmp_path / "linked.yaml"
    link.symlink_to(real.resolve())
    assert derive_workspace(link) == derive_workspace(real)
    assert derive_workspace(real) != derive_workspace(spec("elsewhere", DECLARES_NOTHING))


def test_status_names_the_workspace_and_each_models_owners(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ob.add_model(ollama_dir(), QWEN, ob.default_layers(QWEN, 2048))
    ob.add_model(ollama_dir(), "phi3:mini", ob.default_layers("phi3", 2048))
    mine, theirs = spec("home", DECLARES_QWEN), spec("theirs", DECLARES_NOTHING)
    manage(QWEN_SRC, "qwen", spec=mine)
    manage("ollama://phi3:mini", "phi", spec=theirs)
    doc: dict[str, Any] = json.loads(run(capsys, "status", "--json", "-f", str(mine)).out)
    models = {m["name"]: m for m in doc["stores"]["ollama"]["models"]}
    assert models[QWEN]["owners"] == [derive_workspace(mine)]
    assert models["phi3:mini"]["owners"] == [derive_workspace(theirs)]
    text = run(capsys, "status", "-f", str(mine)).out
    qwen_row = next(line for line in text.splitlines() if line.lstrip().startswith(QWEN))
    phi_row = next(line for line in text.splitlines() if line.lstrip().startswith("phi3"))
    assert " yes " in qwen_row + " "
    assert derive_workspace(theirs) in phi_row
    assert f"Workspace: {derive_workspace(mine)}" in text
    assert not hf_dir().exists()  # no HF cache at all: status still works


def test_an_interrupted_install_is_adopted_for_the_workspace_that_ran_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """File A's apply was killed after its pull finished; file B runs next: the model is A's
    (B declares nothing and its prune must not delete it)."""
    from mlxstate.apply.journal import Journal
    from mlxstate.plan.actions import Action

    first, second = spec("a", DECLARES_QWEN), spec("b", DECLARES_NOTHING)
    ob.add_model(ollama_dir(), QWEN, ob.default_layers(QWEN, 2048))
    pull = Action("model/qwen", "create", "ollama.pull", QWEN_SRC, None, 0, "x", "qwen")
    journal = Journal(state_dir(), derive_workspace(first))
    journal.started(pull)
    journal.write("applied", action=pull.id, status="done")
    journal.close(finished=False)

    run(capsys, "apply", "-y", "-f", str(second))
    assert owners() == (derive_workspace(first),)
    assert qwen_on_disk()


def test_two_files_naming_one_workspace_are_warned_about(
    capsys: pytest.CaptureFixture[str], ollama: FakeOllama
) -> None:
    named = DECLARES_QWEN.replace("  prune: true\n", "  prune: true\n  workspace: shared\n")
    first = spec("one", named)
    run(capsys, "apply", "-y", "-f", str(first))
    assert "last applied from" not in run(capsys, "plan", "-f", str(first)).err
    second = spec("two", named)
    result = run(capsys, "plan", "-f", str(second))
    assert f"workspace shared was last applied from {first.resolve()}" in result.err
