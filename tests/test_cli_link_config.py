"""``mlx link``/``unlink``, ``mlx config``, ``mlx show``, the aliases, completion and the
``--json`` documents of the editing commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import mlx

SPEC = """\
# top comment
version: 1   # the version

settings:
  prune: false   # keep things
  # about cleanups
  cleanup:
    partials: true

models:
  a:
    source: ollama://qwen2.5:0.5b   # small
  b:
    source: ollama://llama3.2:1b
apps:
  myapp:
    path: ./app   # where
    models:
      # first
      - a
"""


@pytest.fixture
def spec() -> Path:
    path = Path("mlx.yaml")
    path.write_text(SPEC)
    return path


def ok(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    result = mlx(capsys, *args)
    assert result.code == 0, result.out + result.err
    assert mlx(capsys, "validate").code == 0
    return result.out


def test_link_appends_to_a_block_list_keeping_every_comment(
    capsys: pytest.CaptureFixture[str], spec: Path
) -> None:
    ok(capsys, "link", "myapp", "b")
    assert spec.read_text() == SPEC + "      - b\n"


def test_unlink_removes_the_item_and_its_comment(
    capsys: pytest.CaptureFixture[str], spec: Path
) -> None:
    ok(capsys, "link", "myapp", "b")
    ok(capsys, "unlink", "myapp", "a")
    assert spec.read_text() == SPEC.replace("      # first\n      - a\n", "      - b\n")
    ok(capsys, "unlink", "myapp", "b")
    assert "    models: []\n" in spec.read_text()


def test_link_creates_a_missing_app_with_path_and_layout(
    capsys: pytest.CaptureFixture[str], spec: Path
) -> None:
    out = ok(capsys, "link", "lm", "a", "b", "--path", "./lm", "--layout", "lmstudio", "--json")
    assert json.loads(out) == {
        "file": "mlx.yaml",
        "app": "lm",
        "created": True,
        "linked": ["a", "b"],
        "changed": True,
    }
    added = "  lm:\n    path: ./lm\n    layout: lmstudio\n    models: [a, b]\n"
    assert spec.read_text() == SPEC + added


def test_link_refuses_undeclared_models_and_unknown_apps_changing_nothing(
    capsys: pytest.CaptureFixture[str], spec: Path
) -> None:
    result = mlx(capsys, "link", "myapp", "zz")
    assert result.code == 1 and "no model named 'zz'" in result.err
    result = mlx(capsys, "link", "other", "a")
    assert result.code == 1 and "--path FOLDER" in result.err
    result = mlx(capsys, "unlink", "myap", "a")
    assert result.code == 1 and "did you mean 'myapp'?" in result.err
    result = mlx(capsys, "link", "myapp", "a", "--path", "./elsewhere")
    assert result.code == 1 and "already has path" in result.err
    assert spec.read_text() == SPEC


def test_link_of_a_linked_model_changes_nothing(
    capsys: pytest.CaptureFixture[str], spec: Path
) -> None:
    assert json.loads(ok(capsys, "link", "myapp", "a", "--json"))["changed"] is False
    assert spec.read_text() == SPEC


def test_config_set_replaces_the_value_keeping_the_comment(
    capsys: pytest.CaptureFixture[str], spec: Path
) -> None:
    ok(capsys, "config", "set", "settings.prune", "true")
    assert spec.read_text() == SPEC.replace("prune: false   #", "prune: true   #")


def test_config_set_adds_nested_keys_and_unset_removes_empty_sections(
    capsys: pytest.CaptureFixture[str], spec: Path
) -> None:
    ok(capsys, "config", "set", "cleanup.orphans", "true")
    ok(capsys, "config", "set", "settings.ollama.host", "http://127.0.0.1:11434")
    text = spec.read_text()
    assert "    partials: true\n    orphans: true\n" in text
    assert "  ollama:\n    host: http://127.0.0.1:11434\n" in text
    ok(capsys, "config", "unset", "settings.ollama.host")
    ok(capsys, "config", "unset", "cleanup.orphans")
    assert spec.read_text() == SPEC
    ok(capsys, "config", "unset", "cleanup.partials")  # the section goes with its last key
    section = "  # about cleanups\n  cleanup:\n    partials: true\n"
    assert spec.read_text() == SPEC.replace(section, "")


def test_config_creates_the_settings_section_after_version(
    capsys: pytest.CaptureFixture[str],
) -> None:
    Path("mlx.yaml").write_text("version: 1\nmodels: {}\n")
    ok(capsys, "config", "set", "dedup", "auto")
    assert Path("mlx.yaml").read_text() == "version: 1\nsettings:\n  dedup: auto\nmodels: {}\n"


def test_config_get_prints_the_value_or_the_default(
    capsys: pytest.CaptureFixture[str], spec: Path
) -> None:
    assert ok(capsys, "config", "get", "prune") == "false\n"
    doc = json.loads(ok(capsys, "config", "get", "settings.disk.min_free", "--json"))
    assert doc == {"key": "settings.disk.min_free", "value": 10_000_000_000, "set": False}


def test_config_bad_values_get_the_errors_of_validate_and_change_nothing(
    capsys: pytest.CaptureFixture[str], spec: Path
) -> None:
    result = mlx(capsys, "config", "set", "prune", "yes")
    assert result.code == 1
    assert "mlx.yaml:5:10: error: settings.prune: expected true or false, got 'yes'" in result.err
    result = mlx(capsys, "config", "set", "prunee", "true")
    assert result.code == 1 and "did you mean settings.prune?" in result.err
    result = mlx(capsys, "config", "set", "cleanup", "true")
    assert result.code == 1 and "unknown setting 'cleanup'" in result.err
    result = mlx(capsys, "config", "set", "dedup", "[a, b]")
    assert result.code == 1 and "takes a scalar" in result.err
    assert spec.read_text() == SPEC


def test_config_set_json(capsys: pytest.CaptureFixture[str], spec: Path) -> None:
    doc = json.loads(ok(capsys, "config", "set", "disk.min_free", "20GB", "--json"))
    assert doc == {"key": "settings.disk.min_free", "value": "20GB", "changed": True}


def test_flow_style_settings_fall_back_to_an_exact_tree_edit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    Path("mlx.yaml").write_text("version: 1\nsettings: {prune: false}  # flow\n")
    ok(capsys, "config", "set", "prune", "true")
    ok(capsys, "config", "get", "prune")
    assert mlx(capsys, "config", "get", "prune").out == "true\n"


def test_show_renders_a_saved_plan_like_plan(
    capsys: pytest.CaptureFixture[str], spec: Path
) -> None:
    planned = mlx(capsys, "plan", "--out", "plan.json")
    shown = mlx(capsys, "show", "plan.json")
    assert shown.code == 0
    assert shown.out.splitlines()[:-2] == planned.out.splitlines()[:-4]  # minus "Saved ..."
    doc = json.loads(mlx(capsys, "show", "plan.json", "--json").out)
    saved = json.loads(Path("plan.json").read_text())
    assert doc["actions"] == saved["actions"] and doc["summary"] == saved["summary"]


def test_show_refuses_what_is_not_a_plan(capsys: pytest.CaptureFixture[str]) -> None:
    Path("x.json").write_text("{}")
    result = mlx(capsys, "show", "x.json")
    assert result.code == 1 and "is not a plan written by `mlx plan --out`" in result.err


def test_aliases_run_their_commands(capsys: pytest.CaptureFixture[str], spec: Path) -> None:
    ok(capsys, "remove", "b")
    assert "  b:\n" not in spec.read_text()
    assert mlx(capsys, "scan", "--json").code == 0
    result = mlx(capsys, "sync", "--json")
    assert result.code == 1 and "--json has no prompt" in result.err
    helptext = mlx(capsys, "--help").out
    assert "Alias of `mlx rm`." in helptext and "--install-completion" in helptext


def test_add_and_rm_json(capsys: pytest.CaptureFixture[str], spec: Path) -> None:
    doc = json.loads(ok(capsys, "add", "ollama://gemma3:1b", "--json"))
    assert doc["source"] == "ollama://gemma3:1b" and doc["created"] is False
    doc = json.loads(ok(capsys, "rm", doc["name"], "--json"))
    assert doc["source"] == "ollama://gemma3:1b"
