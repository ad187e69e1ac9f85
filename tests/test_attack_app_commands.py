"""Hostile input for the app-facing commands: ``mlx show`` on a crafted plan file,
``mlx config``/``link`` edge cases, ``mlx which`` on a hostile store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.builders import hf_cache as hb
from tests.builders import ollama_store as ob
from tests.helpers import hf_dir, mlx, ollama_dir
from tests.helpers.apply import no_traceback

ESC = "\x1b[2J"


def _saved_plan(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """A real plan with one action (a model declared absent), as ``mlx plan --out`` saves it."""
    ob.add_model(ollama_dir(), "old:1b", ob.default_layers("old"))
    Path("mlx.yaml").write_text(
        "version: 1\nmodels:\n  old:\n    source: ollama://old:1b\n    ensure: absent\n"
    )
    assert mlx(capsys, "plan", "--out", "plan.json").code == 0
    doc: dict[str, Any] = json.loads(Path("plan.json").read_text())
    assert doc["actions"]
    return doc


def _show(capsys: pytest.CaptureFixture[str], doc: dict[str, Any], *args: str) -> Any:
    Path("hostile.json").write_text(json.dumps(doc))
    result = mlx(capsys, "show", "hostile.json", *args)
    no_traceback(result)
    return result


def test_show_ignores_skipped_entries_not_shaped_like_a_plan_s(
    capsys: pytest.CaptureFixture[str],
) -> None:
    doc = _saved_plan(capsys)
    doc["skipped"] = [
        {"id": "nameless", "subject": "s", "reason": "r"},
        {"id": {"a": 1}, "subject": "s", "reason": None},
        {"id": "model/kept", "subject": "ollama://kept:1", "reason": "os is linux"},
    ]

    result = _show(capsys, doc)

    assert result.code == 0, result.err
    assert "kept" in result.out
    assert "nameless" not in result.out


def test_show_never_writes_terminal_escapes_from_the_plan_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    doc = _saved_plan(capsys)
    doc["workspace"] = f"ws{ESC}"
    doc["host"] = {"name": f"box{ESC}", "given": True}

    result = _show(capsys, doc)

    assert result.code == 0, result.err
    assert "Workspace: ws" in result.out
    assert "Host: box" in result.out
    assert "\x1b" not in result.out


def test_config_set_1_on_a_true_setting_is_a_change_refused_like_validate(
    capsys: pytest.CaptureFixture[str],
) -> None:
    Path("mlx.yaml").write_text("version: 1\nsettings:\n  prune: true\nmodels: {}\n")

    result = mlx(capsys, "config", "set", "prune", "1")

    assert result.code == 1
    assert "settings.prune: expected true or false, got 1" in result.err
    assert "already so" not in result.out
    assert Path("mlx.yaml").read_text() == "version: 1\nsettings:\n  prune: true\nmodels: {}\n"


def test_config_get_prints_a_default_config_set_accepts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    Path("mlx.yaml").write_text("version: 1\nmodels: {}\n")

    got = mlx(capsys, "config", "get", "watch.interval")
    assert got.code == 0
    default = got.out.strip()

    result = mlx(capsys, "config", "set", "watch.interval", default)
    assert result.code == 0, result.err
    assert default == "10m"


def test_link_creating_an_app_lists_a_repeated_model_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    Path("mlx.yaml").write_text("version: 1\nmodels:\n  a:\n    source: ollama://a:1\n")

    result = mlx(capsys, "link", "box", "a", "a", "--path", "./box")

    assert result.code == 0, result.err
    assert "models: [a]" in Path("mlx.yaml").read_text()
    assert mlx(capsys, "validate").code == 0


def test_which_never_hands_out_a_snapshot_link_pointing_out_of_the_cache(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    secret = tmp_path / "secret.gguf"
    secret.write_bytes(b"not a model of the cache")
    rev = hb.add_revision(hf_dir(), "org/g", {"m.gguf": ob.fake_gguf("g", 2048)})
    link = rev.snapshot_dir / "m.gguf"
    link.unlink()
    link.symlink_to(secret)
    Path("mlx.yaml").write_text("version: 1\nmodels:\n  g:\n    source: hf://org/g\n")

    result = mlx(capsys, "which", "g", "--json")

    no_traceback(result)
    assert result.code == 1
    doc = json.loads(result.out)
    assert doc["present"] is False
    assert doc["gguf"] is None
    assert [f["present"] for f in doc["files"]] == [False]
    assert secret.read_bytes() == b"not a model of the cache"
