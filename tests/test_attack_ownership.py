"""Attacks on ownership (docs/apply.md, "Ownership", "Saved plans", "What mlx will never
do"): a hostile or unlucky sequence of real commands must never let prune delete a model
the user owns, nor a saved plan run anything a fresh plan does not contain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlxstate.apply.journal import JOURNAL_NAME, Journal
from mlxstate.plan.actions import Action
from mlxstate.registry import read_facts
from mlxstate.workspace import derive_workspace
from tests.builders import ollama_store as ob
from tests.helpers import ollama_dir, run_ok, spec_in, state_dir

QWEN, PHI = "qwen2.5:0.5b", "phi3:mini"
QWEN_SRC, PHI_SRC = f"ollama://{QWEN}", f"ollama://{PHI}"
NOTHING = "version: 1\nsettings:\n  prune: true\nmodels: {}\n"


def declares(**models: str) -> str:
    body = "".join(f"  {name}:\n    source: {src}\n" for name, src in models.items())
    return "version: 1\nsettings:\n  prune: true\nmodels:\n" + body


spec = spec_in
run = run_ok


def pull_by_hand(name: str = QWEN) -> None:
    ob.add_model(ollama_dir(), name, ob.default_layers(name, 2048))


def on_disk(name: str = QWEN) -> bool:
    return ob.manifest_path(ollama_dir(), name).is_file()


def remove_by_hand(name: str = QWEN) -> None:
    ob.manifest_path(ollama_dir(), name).unlink()  # `ollama rm` (blobs may stay)


def killed_after_pull(mine: Path) -> None:
    """An apply of ``mine`` was killed after its pull of QWEN finished (journal `applied`)."""
    pull = Action("model/qwen", "create", "ollama.pull", QWEN_SRC, None, 0, "x", "qwen")
    journal = Journal(state_dir(), derive_workspace(mine))
    journal.started(pull)
    journal.write("applied", action=pull.id, status="done")
    journal.close(finished=False)


# -- an interrupted run is adopted once, not at every apply --------------------------------------


def test_a_forgotten_model_is_not_adopted_again_by_an_old_interrupted_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    mine = spec("home", declares(qwen=QWEN_SRC))
    pull_by_hand()
    killed_after_pull(mine)
    run(capsys, "apply", "-y", "-f", str(mine))  # adopted; nothing else to do: no new run line
    run(capsys, "forget", QWEN_SRC, "-f", str(mine))  # the user takes it back
    mine.write_text(NOTHING)

    result = run(capsys, "apply", "-y", "-f", str(mine))
    assert "interrupted" not in result.err
    assert on_disk()  # it was deleted: the old run adopted it again, then prune ran


def test_a_torn_journal_line_does_not_swallow_the_recovered_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    mine = spec("home", declares(qwen=QWEN_SRC))
    pull_by_hand()
    killed_after_pull(mine)
    with (state_dir() / JOURNAL_NAME).open("ab") as journal:
        journal.write(b'{"run": "torn", "event": "sta')  # the crash tore its last line
    run(capsys, "apply", "-y", "-f", str(mine))
    run(capsys, "forget", QWEN_SRC, "-f", str(mine))
    mine.write_text(NOTHING)

    run(capsys, "apply", "-y", "-f", str(mine))
    assert on_disk()


# -- a managed model removed by hand, then pulled by hand again, is the user's -------------------


def test_a_managed_model_removed_and_pulled_again_by_hand_is_never_pruned(
    capsys: pytest.CaptureFixture[str],
) -> None:
    mine = spec("home", NOTHING)
    pull_by_hand()
    run(capsys, "import", QWEN_SRC, "-f", str(mine))
    remove_by_hand()
    doc = json.loads(run(capsys, "plan", "--json", "-f", str(mine)).out)
    assert [(a["kind"], a["subject"]) for a in doc["actions"]] == [("registry.release", QWEN_SRC)]
    run(capsys, "apply", "-y", "-f", str(mine))
    assert read_facts(state_dir()).models == ()

    pull_by_hand()  # months later, for the user's own use
    assert "No changes" in run(capsys, "plan", "-f", str(mine)).out
    run(capsys, "apply", "-y", "-f", str(mine))
    assert on_disk()


def test_an_old_source_removed_and_pulled_again_by_hand_is_never_deleted_as_replaced(
    capsys: pytest.CaptureFixture[str],
) -> None:
    mine = spec("home", declares(chat=QWEN_SRC))
    pull_by_hand()
    pull_by_hand(PHI)
    run(capsys, "import", QWEN_SRC, "-f", str(mine))
    remove_by_hand()
    mine.write_text(declares(chat=PHI_SRC))  # the name now stands for another model
    run(capsys, "apply", "-y", "-f", str(mine))

    pull_by_hand()
    run(capsys, "apply", "-y", "-f", str(mine))
    assert on_disk()


def test_a_models_row_kept_by_another_workspace_is_only_released(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Forgetting a vanished model drops this file's claim only: the other file that
    declares it keeps its claim and installs it again."""
    mine, theirs = spec("home", NOTHING), spec("theirs", declares(qwen=QWEN_SRC))
    pull_by_hand()
    run(capsys, "import", QWEN_SRC, "-f", str(mine))
    run(capsys, "import", QWEN_SRC, "-f", str(theirs))
    remove_by_hand()
    run(capsys, "apply", "-y", "-f", str(mine))
    managed = read_facts(state_dir()).find(QWEN_SRC)
    assert managed is not None and managed.owner_names == (derive_workspace(theirs),)


# -- saved plans: data, not authority -------------------------------------------------------------


def _forged(action: dict[str, Any], how: str) -> dict[str, Any] | list[dict[str, Any]]:
    if how == "other-workspaces-model":
        return {**action, "id": f"prune/{PHI_SRC}", "subject": PHI_SRC}
    if how == "kind":
        return {**action, "kind": "hf.delete"}
    if how == "params":
        return {**action, "params": {**action["params"], "replaces": PHI_SRC}}
    if how == "model":
        return {**action, "model": "qwen"}
    return {**action, "op": "replace"}


@pytest.mark.parametrize("how", ["other-workspaces-model", "kind", "params", "model", "op"])
def test_a_forged_saved_plan_action_refuses_the_whole_plan(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, how: str
) -> None:
    mine, theirs = spec("home", NOTHING), spec("theirs", NOTHING)
    pull_by_hand()
    pull_by_hand(PHI)
    run(capsys, "import", QWEN_SRC, "-f", str(mine))
    run(capsys, "import", PHI_SRC, "-f", str(theirs))
    planfile = tmp_path / "plan.json"
    run(capsys, "plan", "--out", str(planfile), "-f", str(mine))
    doc = json.loads(planfile.read_text())
    (prune,) = doc["actions"]
    doc["actions"] = [prune, _forged(prune, how)]
    planfile.write_text(json.dumps(doc))

    result = run(capsys, "apply", str(planfile), code=1)
    if how == "params":  # a param the kind does not take: refused as malformed
        assert "malformed action: ollama.delete: unknown params 'replaces'" in result.err
    else:
        assert "holds actions a fresh plan does not" in result.err
    assert on_disk() and on_disk(PHI)


def test_a_saved_plan_narrowed_by_its_targets_refuses_what_the_narrow_plan_lacks(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    mine = spec("home", NOTHING)
    pull_by_hand()
    run(capsys, "import", QWEN_SRC, "-f", str(mine))
    mine.write_text(NOTHING.replace("models: {}\n", "models:\n  phi:\n    source: " + PHI_SRC))
    pull_by_hand(PHI)
    planfile = tmp_path / "plan.json"
    run(capsys, "plan", "--out", str(planfile), "-f", str(mine))
    doc = json.loads(planfile.read_text())
    doc["options"]["targets"] = ["phi"]  # the prune of qwen is not in a --target phi plan
    planfile.write_text(json.dumps(doc))

    run(capsys, "apply", str(planfile), code=1)
    assert on_disk()


def test_import_records_the_declared_name_over_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """docs/commands.md: the name recorded is the one mlx.yaml declares it under, else
    --name. A source change under prune finds the old model by that name."""
    mine = spec("home", declares(chat=QWEN_SRC))
    pull_by_hand()
    pull_by_hand(PHI)
    run(capsys, "import", QWEN_SRC, "--name", "other", "-f", str(mine))
    managed = read_facts(state_dir()).find(QWEN_SRC)
    assert managed is not None and managed.name_in(derive_workspace(mine)) == "chat"
    mine.write_text(declares(chat=PHI_SRC))
    doc = json.loads(run(capsys, "plan", "--json", "-f", str(mine)).out)
    assert [a["reason"].split(":")[0] for a in doc["actions"]] == ["source changed"]
